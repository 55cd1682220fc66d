/* CE-U: cross-entropy unlearning, towards the model's own distribution
 * with the gold token removed. */
#include "lm_common.h"

#include <math.h>
#include <string.h>

static void defaults(lethe_lm_cfg *c)
{
    c->retain = LETHE_LM_RETAIN_NONE;
}

static lethe_status check(const lethe_lm_cfg *cfg, const lethe_gpt *g)
{
    (void)g;
    if (cfg->ceu_ignore < 0)
        return lethe_fail(LETHE_ERR_INVALID, "ceu: ignore = %d must be >= 0", cfg->ceu_ignore);
    return LETHE_OK;
}

/* CE-U: mean over the answer positions (after the first ceu_ignore of each
 * sequence) of CE(p_theta, sg(softmax(z with z_y = -inf))). */
static lethe_status ceu_term(lethe_gpt *g, const lethe_lm_batch *f, const lethe_lm_cfg *cfg,
                             lm_scratch *S, double *value)
{
    int B = f->B, T = f->T, V = g->cfg.vocab_size;
    long N = (long)B * T;
    lethe_status st = lm_fwd(g, f);
    if (st != LETHE_OK)
        return st;
    if (!lm_grow(&S->buf, (size_t)(N * V)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for CE-U");
    long M = 0;
    for (int b = 0; b < B; b++) {
        int seen = 0;
        for (int t = 0; t < T; t++) {
            long i = (long)b * T + t;
            int on = g->targets[i] >= 0 && ++seen > cfg->ceu_ignore;
            S->buf[i * V] = on ? 1.0f : 0.0f; /* a flag, replaced below */
            M += on;
        }
    }
    if (M == 0)
        return lethe_fail(LETHE_ERR_INVALID, "ceu: no answer token is left after ignoring the "
                          "first %d of each sequence", cfg->ceu_ignore);
    double total = 0;
    for (long i = 0; i < N; i++) {
        float *d = S->buf + i * V;
        int on = d[0] != 0.0f, y = g->targets[i];
        if (!on) {
            memset(d, 0, sizeof(float) * (size_t)V);
            continue;
        }
        const float *z = g->logits + i * V;
        double lse = g->lse[i], mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++)
            if (v != y && z[v] > mx)
                mx = z[v];
        for (int v = 0; v < V; v++)
            if (v != y)
                s += exp((double)z[v] - mx);
        double lse_q = mx + log(s), ce = 0;
        for (int v = 0; v < V; v++) {
            double lp = (double)z[v] - lse;
            double qv = v == y ? 0.0 : exp((double)z[v] - lse_q);
            ce -= qv * lp;
            d[v] = (float)(cfg->gamma * (exp(lp) - qv) / (double)M);
        }
        total += ce;
    }
    *value = total / (double)M;
    lethe_gpt_backward_logits(g, S->buf);
    return LETHE_OK;
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return ceu_term(s->g, s->forget, s->cfg, s->S, value);
}

const lethe_lm_method_def lm_ceu = {
    "ceu", LETHE_LM_CEU,
    "cross-entropy unlearning",
    "removal",
    0, LETHE_LM_READS_IGNORE, 0, defaults, check, forget};
