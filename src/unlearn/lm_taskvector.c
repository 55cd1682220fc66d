/* Task Vector: a copy of the model fine-tuned on the forget set (the
 * reinforced model), then theta <- theta - alpha (reinforced - theta)
 * (lethe_lm_unlearn, lethe_lm_task_vector). */
#include "lm_common.h"

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_NONE;
    c->alpha = 5;
}

/* g <- g - alpha (reinforced - g). */
static lethe_status finish(const lethe_lm_cfg *cfg, lethe_gpt *g, const lethe_gpt *reinforced)
{
    return lethe_lm_task_vector(g, reinforced, cfg->alpha);
}

const lethe_lm_method_def lm_taskvector = {
    "taskvector", LETHE_LM_TASKVECTOR,
    "theta - alpha (theta_reinforced - theta), reinforced = fine-tuned on forget",
    "removal",
    LETHE_LM_FORGET_ONLY | LETHE_LM_OWN_ALPHA, 0, 0,
    defaults, NULL, lm_descent_forget, NULL, NULL, finish};
