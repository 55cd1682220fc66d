/* The settings of `lethe unlearn` on a GPT run, for the pipeline that runs
 * an unlearning stage with them (lethe tofu run, after --). */
#ifndef LETHE_CLI_CMD_LM_H
#define LETHE_CLI_CMD_LM_H

#include "lethe/lm_unlearn.h"

/* The settings of `lethe unlearn` (argv[0] stands for the verb; no files,
 * no method, no output) into *ov, messages prefixed by verb. 0, -1 (help
 * shown) or an exit code. */
int cmd_unlearn_lm_overrides(const char *verb, int argc, char **argv, lethe_lm_overrides *ov);

#endif
