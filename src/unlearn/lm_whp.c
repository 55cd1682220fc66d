/* Who's Harry Potter: the model fine-tuned on the forget set is the
 * reinforced model of a logit adjustment at generation time
 * (lethe_lm_whp_hook); a run does not store it as an unlearned model. */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_NONE;
    c->alpha = 5;
}

const lethe_lm_method_def lm_whp = {
    "whp", LETHE_LM_WHP,
    "Who's Harry Potter: a logit adjustment at generation; not a stored model (refused)",
    "suppression",
    LETHE_LM_FORGET_ONLY | LETHE_LM_OWN_ALPHA | LETHE_LM_NOT_STORED, 0, 0,
    defaults, NULL, lm_descent_forget};
