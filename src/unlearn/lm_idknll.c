/* IdkNLL: the NLL of an "I don't know" answer to each forget question. */
#include "lm_common.h"

/* The mean token NLL of the alternate answers, descended. */
static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return lm_nll_term(s->g, s->idk, s->cfg->gamma, s->S, value);
}

const lethe_lm_method_def lm_idknll = {
    "idknll", LETHE_LM_IDKNLL,
    "NLL of an \"I don't know\" answer to each forget question (needs refusals)",
    "suppression",
    LETHE_LM_NEEDS_IDK, 0, 0, NULL, NULL, forget};
