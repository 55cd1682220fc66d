/* NPO: negative preference optimisation against the reference. */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 0.1;
}

/* -(2/beta) mean_b logsigmoid(-beta (logp_theta - logp_ref)) of the forget
 * sequences (compute_dpo_loss with no preferred answer). */
static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return lm_dpo_term(s->g, s->ref, NULL, s->forget, s->cfg->beta, s->cfg->gamma, s->S, value);
}

const lethe_lm_method_def lm_npo = {
    "npo", LETHE_LM_NPO,
    "negative preference optimisation against the reference (npo_gdr, npo_klr)",
    "removal",
    LETHE_LM_NEEDS_REF, LETHE_LM_READS_BETA, 0, defaults, lm_check_beta, forget};
