/* The GPT commands' halves, for running them in this process (lethe tofu
 * run): parsing a command line into a library run's configuration, and
 * printing its result. */
#ifndef LETHE_CLI_CMD_LM_H
#define LETHE_CLI_CMD_LM_H

#include <stdio.h>

#include "lethe/gpt_train.h"
#include "lethe/lm_unlearn.h"

/* argv of `lethe train --model gpt ...` (argv[0] the verb) into *run, notes
 * to stderr unless quiet; *json set by --json. 0: run it; -1: done (help);
 * otherwise the exit code, its message printed on stderr. */
int cmd_train_gpt_prepare(int argc, char **argv, lethe_gpt_run_cfg *run, int *json);
/* The summary of a finished run on out (JSON with json). */
void cmd_train_gpt_report(FILE *out, const lethe_gpt_run_cfg *run, int json,
                          const lethe_gpt_run_result *res);

/* Likewise for `lethe unlearn ...` on a GPT run. */
int cmd_unlearn_lm_prepare(int argc, char **argv, lethe_lm_run_cfg *run, int *json);
void cmd_unlearn_lm_report(FILE *out, const lethe_lm_run_cfg *run, int json,
                           const lethe_lm_run_result *res);

#endif
