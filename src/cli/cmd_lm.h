/* The settings of `lethe unlearn` on a GPT run, for the pipeline that runs
 * an unlearning stage with them (lethe tofu run, after --). */
#ifndef LETHE_CLI_CMD_LM_H
#define LETHE_CLI_CMD_LM_H

#include "lethe/lm_unlearn.h"

/* The settings of `lethe unlearn` (argv[0] stands for the verb; no files,
 * no method, no output) into *ov, messages prefixed by verb. 0, -1 (help
 * shown) or an exit code. */
int cmd_unlearn_lm_overrides(const char *verb, int argc, char **argv, lethe_lm_overrides *ov);
/* The same for a pipeline's unlearn stages: the words after "--" of its
 * command line (argv[optind] on, once its own options are parsed). With any,
 * *set = ov and *args, *n_args the words; otherwise nothing is set. 0, -1
 * (help shown) or an exit code. */
int cmd_unlearn_lm_after_dashes(const char *verb, int argc, char **argv, lethe_lm_overrides *ov,
                                const lethe_lm_overrides **set, const char *const **args,
                                int *n_args);

#endif
