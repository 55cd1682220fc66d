/* UNDIAL: self-distillation from the reference with the gold logit lowered
 * by beta. Its default alpha 0 switches the retain term off. */
#include "lm_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void defaults(lethe_lm_cfg *c)
{
    c->beta = 10;
    c->alpha = 0;
}

void lethe_lm_undial_target(double *q, const float *z, int V, int y, double beta)
{
    double mx = -INFINITY;
    for (int v = 0; v < V; v++) {
        q[v] = (double)z[v] - (v == y ? beta : 0.0);
        if (q[v] > mx)
            mx = q[v];
    }
    double s = 0;
    for (int v = 0; v < V; v++)
        s += (q[v] = exp(q[v] - mx));
    for (int v = 0; v < V; v++)
        q[v] /= s;
}

/* UNDIAL: mean over every position of CE(p_theta, softmax(ref - beta
 * onehot(y))); positions without a target keep the reference unadjusted. */
static lethe_status undial_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *f,
                                const lethe_lm_cfg *cfg, lm_scratch *S, double *value)
{
    long N = (long)f->B * f->T;
    int V = g->cfg.vocab_size;
    lethe_status st = lm_fwd(ref, f);
    if (st != LETHE_OK)
        return st;
    double *q = malloc(sizeof *q * (size_t)V);
    if (!q || !lm_grow(&S->buf, (size_t)(N * V))) {
        free(q);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for UNDIAL");
    }
    memcpy(S->buf, ref->logits, sizeof(float) * (size_t)(N * V));
    if ((st = lm_fwd(g, f)) != LETHE_OK) {
        free(q);
        return st;
    }
    double total = 0;
    for (long i = 0; i < N; i++) {
        lethe_lm_undial_target(q, S->buf + i * V, V, g->targets[i], cfg->beta);
        const float *z = g->logits + i * V;
        double lse = g->lse[i], ce = 0;
        float *d = S->buf + i * V; /* the reference row is no longer needed */
        for (int v = 0; v < V; v++) {
            double lp = (double)z[v] - lse;
            ce -= q[v] * lp;
            d[v] = (float)(cfg->gamma * (exp(lp) - q[v]) / (double)N);
        }
        total += ce;
    }
    *value = total / (double)N;
    free(q);
    lethe_gpt_backward_logits(g, S->buf);
    return LETHE_OK;
}

static lethe_status forget(const lethe_lm_step *s, double *value)
{
    return undial_term(s->g, s->ref, s->forget, s->cfg, s->S, value);
}

const lethe_lm_method_def lm_undial = {
    "undial", LETHE_LM_UNDIAL,
    "self-distillation from the reference with the gold logit lowered (alpha 0: no retain)",
    "removal",
    LETHE_LM_NEEDS_REF, LETHE_LM_READS_BETA, 0, defaults, NULL, forget};
