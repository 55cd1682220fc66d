/* IdkDPO: DPO with the "I don't know" answer preferred over the forget answer. */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 0.1;
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return lm_dpo_term(s->g, s->ref, s->idk, s->forget, s->cfg->beta, s->cfg->gamma, s->S, value);
}

const lethe_lm_method_def lm_idkdpo = {
    "idkdpo", LETHE_LM_IDKDPO,
    "DPO preferring the \"I don't know\" answer (needs refusals)",
    "suppression",
    LETHE_LM_NEEDS_REF | LETHE_LM_NEEDS_IDK, LETHE_LM_READS_BETA, 0,
    defaults, lm_check_beta, forget};
