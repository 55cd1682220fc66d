/* GradAscent: gradient ascent on the forget answers' NLL, no retain term. */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_NONE;
}

const lethe_lm_method_def lm_ga = {
    "ga", LETHE_LM_GA,
    "gradient ascent on the forget answers (GradAscent)",
    "removal",
    0, 0, 0, defaults, NULL, lm_ascent_forget};
