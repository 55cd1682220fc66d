/* SimNPO: reference-free, length-normalised NPO. */
#include "lm_common.h"

#include <stdlib.h>

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 4.5;
    c->delta = 0;
    c->gamma = 0.125;
}

/* SimNPO: -(2/beta) mean_b logsigmoid(beta (NLL_b / |y_b| - delta)). */
static lethe_status simnpo_term(lethe_gpt *g, const lethe_lm_batch *f, const lethe_lm_cfg *cfg,
                                lm_scratch *S, double *value)
{
    int B = f->B;
    long N = (long)B * f->T;
    lethe_status st = lm_fwd(g, f);
    if (st != LETHE_OK)
        return st;
    double *s = calloc((size_t)B, sizeof *s);
    int *n = calloc((size_t)B, sizeof *n);
    if (!s || !n || !lm_grow(&S->dloss, (size_t)N)) {
        free(s);
        free(n);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    lm_seq_stats(g, s, n);
    double beta = cfg->beta, total = 0;
    for (int b = 0; b < B; b++) {
        double x = beta * (-s[b] / n[b] - cfg->delta);
        total += -(2.0 / beta) * lm_log_sigmoid(x);
        /* dL/dlogp = (2/B) lm_sigmoid(-x) / n_b */
        float wgt = (float)(-cfg->gamma * 2.0 * lm_sigmoid(-x) / ((double)B * n[b]));
        for (int t = 0; t < f->T; t++) {
            long i = (long)b * f->T + t;
            S->dloss[i] = f->targets[i] >= 0 ? wgt : 0.0f;
        }
    }
    *value = total / B;
    lethe_gpt_backward_weighted(g, S->dloss);
    free(s);
    free(n);
    return LETHE_OK;
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return simnpo_term(s->g, s->forget, s->cfg, s->S, value);
}

const lethe_lm_method_def lm_simnpo = {
    "simnpo", LETHE_LM_SIMNPO,
    "reference-free, length-normalised NPO",
    "removal",
    0, LETHE_LM_READS_BETA | LETHE_LM_READS_DELTA, 0, defaults, lm_check_beta, forget};
