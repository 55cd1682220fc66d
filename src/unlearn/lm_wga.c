/* WGA: weighted gradient ascent, each answer token's log-probability weighted
 * by p^beta (held constant). */
#include "lm_common.h"

#include <math.h>

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 1;
}

/* w = p^beta, from the log-probability. */
static double weight(const lethe_lm_cfg *cfg, double lp)
{
    return exp(cfg->beta * lp);
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return lm_weighted_term(s, weight, value);
}

const lethe_lm_method_def lm_wga = {
    "wga", LETHE_LM_WGA,
    "weighted gradient ascent",
    "removal",
    0, LETHE_LM_READS_BETA, 0, defaults, NULL, forget};
