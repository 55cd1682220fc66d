/* SatImp: saturation-importance weighted ascent, each answer token's
 * log-probability weighted by p^beta1 (1 - p)^beta2 (held constant). */
#include "lm_common.h"

#include <math.h>

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 5;
    c->beta2 = 1;
    c->gamma = 0.1;
}

/* w = p^beta1 (1 - p)^beta2, from the log-probability. */
static double weight(const lethe_lm_cfg *cfg, double lp)
{
    double p = exp(lp);
    return exp(cfg->beta * lp) * pow(1.0 - p, cfg->beta2);
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return lm_weighted_term(s, weight, value);
}

const lethe_lm_method_def lm_satimp = {
    "satimp", LETHE_LM_SATIMP,
    "saturation-importance weighted gradient ascent",
    "removal",
    0, LETHE_LM_READS_BETA | LETHE_LM_READS_BETA2, 0, defaults, NULL, forget};
