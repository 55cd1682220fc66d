/* Fine-tuning on question-answer pairs (NLL descent on the answer tokens):
 * TOFU's targets (on full.json) and oracles (on retainXX.json), and WHP's
 * reinforced model. Alpha 5 is recorded as the reinforcement fine-tunes'
 * and unused. */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_NONE;
    c->alpha = 5;
}

const lethe_lm_method_def lm_sft = {
    "sft", LETHE_LM_SFT,
    "fine-tune on the pairs (NLL on answer tokens): TOFU targets (full.json) and oracles "
    "(retainXX.json)",
    "none",
    LETHE_LM_FORGET_ONLY, 0, 5, defaults, NULL, lm_descent_forget};
