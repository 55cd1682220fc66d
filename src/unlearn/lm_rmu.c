/* RMU: representation misdirection. The output of one block is steered to
 * a fixed random control vector on the forget answers and kept at the
 * reference's on the retain answers (the EMBED retain term); only the
 * blocks up to it train (lethe_lm_unlearn). */
#include "lm_common.h"

#include <stdio.h>
#include <string.h>

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_EMBED;
}

static lethe_status check(const lethe_lm_cfg *cfg, const lethe_gpt *g)
{
    int l = lm_rmu_layer(cfg, g);
    if (l >= g->cfg.n_layer)
        return lethe_fail(LETHE_ERR_INVALID, "rmu: layer %d does not exist (the model has "
                          "blocks 0..%d)", l, g->cfg.n_layer - 1);
    if (cfg->rmu_blocks < 0)
        return lethe_fail(LETHE_ERR_INVALID, "rmu: blocks = %d must be >= 0", cfg->rmu_blocks);
    return LETHE_OK;
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    if (!s->control)
        return lethe_fail(LETHE_ERR_INVALID, "rmu needs its control vector "
                          "(lethe_lm_rmu_control)");
    lethe_status st = lm_fwd(s->g, s->forget);
    if (st == LETHE_OK)
        st = lm_act_term(s->g, lm_rmu_layer(s->cfg, s->g) + 1, s->control, 0, s->cfg->gamma,
                         s->S, value);
    return st;
}

/* The blocks lm_rmu_layer - rmu_blocks + 1 .. lm_rmu_layer (with
 * rmu_proj_only, their mlp.c_proj.weight only); every tensor when
 * rmu_blocks is 0. */
static void trainable(const lethe_lm_cfg *cfg, const lethe_gpt *g, unsigned char *tr)
{
    int hi = lm_rmu_layer(cfg, g), lo = hi - cfg->rmu_blocks + 1;
    for (int i = 0; i < g->n_tensors; i++) {
        const char *name = g->tensors[i].name;
        int l;
        if (cfg->rmu_blocks == 0)
            tr[i] = 1;
        else if (sscanf(name, "h.%d.", &l) == 1 && l >= lo && l <= hi)
            tr[i] = !cfg->rmu_proj_only || strstr(name, "mlp.c_proj.weight") != NULL;
        else
            tr[i] = 0;
    }
}

static void control(const lethe_lm_cfg *cfg, float *c, int C, uint64_t seed)
{
    lethe_lm_rmu_control(c, C, cfg->steering, seed);
}

const lethe_lm_method_def lm_rmu = {
    "rmu", LETHE_LM_RMU,
    "representation misdirection: steer a block's output to a random vector",
    "removal",
    0, LETHE_LM_READS_RMU, 0, defaults, check, forget, trainable, control, NULL};
