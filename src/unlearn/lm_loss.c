/* Language-model unlearning losses (lethe/lm_unlearn.h): OpenUnlearning's
 * trainer losses (src/trainer/utils.py and the handlers in src/trainer/unlearn) on
 * lethe's GPT, each forward followed by its backward so every term
 * accumulates into g->grads. Values are summed in double. */
#include "lm_common.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_RMU 0x524D55ull

/* The block RMU steers. */
int lm_rmu_layer(const lethe_lm_cfg *cfg, const lethe_gpt *g)
{
    if (cfg->rmu_layer >= 0)
        return cfg->rmu_layer;
    int L = g->cfg.n_layer;
    return L - 1 < 7 ? L - 1 : 7;
}

/* The retain term in use (NONE when its weight is 0). */
static lethe_lm_retain retain_kind(const lethe_lm_cfg *cfg)
{
    return cfg->alpha == 0 ? LETHE_LM_RETAIN_NONE : cfg->retain;
}

lethe_status lethe_lm_check(const lethe_lm_cfg *cfg, const lethe_gpt *g, const lethe_gpt *ref)
{
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg->method);
    if (!def)
        return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: method %d is out of range",
                          (int)cfg->method);
    const char *name = def->name;
    if (!lethe_lm_retain_name(cfg->retain))
        return lethe_fail(LETHE_ERR_INVALID, "%s: retain kind %d is out of range", name,
                          (int)cfg->retain);
    if (cfg->retain == LETHE_LM_RETAIN_EMBED && !(def->reads & LETHE_LM_READS_RMU))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the embed retain loss is RMU's only "
                          "(use nll or kl)", name);
    if ((def->needs & LETHE_LM_FORGET_ONLY) && cfg->retain != LETHE_LM_RETAIN_NONE)
        return lethe_fail(LETHE_ERR_INVALID, "%s fine-tunes on the forget set only: its "
                          "retain loss must be none", name);
    if (!isfinite(cfg->gamma) || !isfinite(cfg->alpha) || !isfinite(cfg->beta) ||
        !isfinite(cfg->beta2) || !isfinite(cfg->delta) || !isfinite(cfg->steering))
        return lethe_fail(LETHE_ERR_INVALID, "%s: gamma, alpha, beta, beta2, delta and "
                          "steering must be finite", name);
    lethe_status st = def->check ? def->check(cfg, g) : LETHE_OK;
    if (st != LETHE_OK)
        return st;
    lethe_lm_retain r = retain_kind(cfg);
    int need_ref = lethe_lm_needs_reference(cfg);
    if (need_ref && !ref)
        return lethe_fail(LETHE_ERR_INVALID, "%s%s%s needs a reference model (a frozen copy "
                          "of the starting model)", name, r == LETHE_LM_RETAIN_KL ? " with a KL "
                          "retain term" : "", r == LETHE_LM_RETAIN_EMBED ? " (embed retain)" : "");
    if (need_ref && memcmp(&ref->cfg, &g->cfg, sizeof g->cfg))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the reference model's configuration differs "
                          "from the model's", name);
    return LETHE_OK;
}

lethe_status lm_check_beta(const lethe_lm_cfg *cfg, const lethe_gpt *g)
{
    (void)g;
    if (!(cfg->beta > 0))
        return lethe_fail(LETHE_ERR_INVALID, "%s: beta = %g must be positive (the loss "
                          "divides by it)", lethe_lm_method_name(cfg->method), cfg->beta);
    return LETHE_OK;
}

int lethe_lm_needs_reference(const lethe_lm_cfg *c)
{
    const lethe_lm_method_def *def = lethe_lm_method_def_of(c->method);
    lethe_lm_retain r = retain_kind(c);
    return (def && (def->needs & LETHE_LM_NEEDS_REF)) || r == LETHE_LM_RETAIN_KL ||
           r == LETHE_LM_RETAIN_EMBED;
}

int lethe_lm_needs_retain(const lethe_lm_cfg *c) { return retain_kind(c) != LETHE_LM_RETAIN_NONE; }

int lethe_lm_needs_idk(const lethe_lm_cfg *c)
{
    const lethe_lm_method_def *def = lethe_lm_method_def_of(c->method);
    return def && (def->needs & LETHE_LM_NEEDS_IDK);
}

void lethe_lm_rmu_control(float *c, int C, double steering, uint64_t seed)
{
    /* two passes over the same draws: the norm, then the scaled vector */
    lethe_rng r = lethe_rng_init(seed, STREAM_RMU);
    double norm = 0;
    for (int d = 0; d < C; d++) {
        double u = lethe_rng_uniform(&r);
        norm += u * u;
    }
    norm = sqrt(norm);
    r = lethe_rng_init(seed, STREAM_RMU);
    for (int d = 0; d < C; d++) {
        double u = lethe_rng_uniform(&r);
        c[d] = (float)(norm > 0 ? steering * u / norm : 0.0);
    }
}

/* ---- helpers ------------------------------------------------------------ */

double lm_log_sigmoid(double x)
{
    return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x));
}

double lm_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

static lethe_status check_batch(const lethe_gpt *g, const lethe_lm_batch *b, const char *what,
                                const char *method)
{
    if (!b || !b->tokens || !b->targets)
        return lethe_fail(LETHE_ERR_INVALID, "%s needs a %s batch", method, what);
    if (b->B < 1 || b->T < 1 || b->T > g->cfg.n_positions)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the %s batch is %d x %d (need B >= 1 and "
                          "1 <= T <= %d)", method, what, b->B, b->T, g->cfg.n_positions);
    for (int i = 0; i < b->B; i++) {
        int n = 0;
        for (int t = 0; t < b->T; t++)
            n += b->targets[(long)i * b->T + t] >= 0;
        if (n == 0)
            return lethe_fail(LETHE_ERR_INVALID, "%s: sequence %d of the %s batch has no "
                              "answer token (every target is -1)", method, i, what);
    }
    return LETHE_OK;
}

lethe_status lm_fwd(lethe_gpt *m, const lethe_lm_batch *b)
{
    return lethe_gpt_forward(m, b->tokens, b->targets, b->B, b->T);
}

void lm_seq_stats(const lethe_gpt *m, double *s, int *n)
{
    for (int b = 0; b < m->B; b++) {
        double acc = 0;
        int cnt = 0;
        for (int t = 0; t < m->T; t++) {
            long i = (long)b * m->T + t;
            if (m->targets[i] >= 0) {
                acc += m->logprobs[i];
                cnt++;
            }
        }
        if (s)
            s[b] = acc;
        if (n)
            n[b] = cnt;
    }
}

float *lm_grow(float **p, size_t n)
{
    float *q = realloc(*p, sizeof **p * (n ? n : 1));
    if (q)
        *p = q;
    return q;
}

lethe_status lm_nll_term(lethe_gpt *g, const lethe_lm_batch *b, double w, lm_scratch *S,
                             double *value)
{
    lethe_status st = lm_fwd(g, b);
    if (st != LETHE_OK)
        return st;
    long N = (long)b->B * b->T;
    double s = 0;
    for (long i = 0; i < N; i++)
        s -= g->logprobs[i];
    *value = s / g->n_targets;
    if (w != 0) {
        if (!lm_grow(&S->dloss, (size_t)N))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        float d = (float)(w / g->n_targets);
        for (long i = 0; i < N; i++)
            S->dloss[i] = g->targets[i] >= 0 ? d : 0.0f;
        lethe_gpt_backward_weighted(g, S->dloss);
    }
    return LETHE_OK;
}

/* KL retain: sum over every position of KL(p_ref || p_theta) / (B T),
 * backpropagated with weight w. */
static lethe_status kl_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *b, double w,
                            lm_scratch *S, double *value)
{
    long N = (long)b->B * b->T;
    int V = g->cfg.vocab_size;
    lethe_status st = lm_fwd(ref, b);
    if (st != LETHE_OK)
        return st;
    if (!lm_grow(&S->buf, (size_t)(N * V)) || !lm_grow(&S->dloss, (size_t)N))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the KL term");
    memcpy(S->buf, ref->logits, sizeof(float) * (size_t)(N * V));
    memcpy(S->dloss, ref->lse, sizeof(float) * (size_t)N); /* the reference's lse */
    if ((st = lm_fwd(g, b)) != LETHE_OK)
        return st;
    double total = 0;
    float *dl = S->buf; /* overwritten row by row with the gradient */
    for (long i = 0; i < N; i++) {
        float *zr = S->buf + i * V;
        const float *z = g->logits + i * V;
        double lr_ = S->dloss[i], lt = g->lse[i], kl = 0;
        for (int v = 0; v < V; v++) {
            double lpr = (double)zr[v] - lr_, lpt = (double)z[v] - lt;
            double pr = exp(lpr), pt = exp(lpt);
            kl += pr * (lpr - lpt);
            dl[i * V + v] = (float)(w * (pt - pr) / (double)N);
        }
        total += kl;
    }
    *value = total / (double)N;
    if (w != 0)
        lethe_gpt_backward_logits(g, dl);
    return LETHE_OK;
}

/* RMU's activation loss on hidden state i of the last forward of g against
 * the target tgt (one vector c of C when per_row is 0, or (B, T, C)):
 * mean over sequences of (sum over answer positions of mean_d (h - tgt)^2)
 * / (answer positions); backpropagated with weight w. */
lethe_status lm_act_term(lethe_gpt *g, int i, const float *tgt, int per_row, double w,
                             lm_scratch *S, double *value)
{
    int B = g->B, T = g->T, C = g->cfg.n_embd;
    long N = (long)B * T;
    const float *h = lethe_gpt_hidden(g, i);
    LETHE_ASSERT(h);
    if (!lm_grow(&S->dloss, (size_t)(N * C)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the activation loss");
    float *dh = S->dloss;
    double total = 0;
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            n += g->targets[(long)b * T + t] >= 0;
        double acc = 0, k = 2.0 * w / ((double)B * n * C);
        for (int t = 0; t < T; t++) {
            long r = (long)b * T + t;
            int on = g->targets[r] >= 0;
            double sq = 0;
            for (int d = 0; d < C; d++) {
                double diff = (double)h[r * C + d] - (double)tgt[per_row ? r * C + d : d];
                sq += diff * diff;
                dh[r * C + d] = on ? (float)(k * diff) : 0.0f;
            }
            if (on)
                acc += sq / C;
        }
        total += acc / n;
    }
    *value = total / B;
    if (w != 0)
        lethe_gpt_backward_hidden(g, i, dh);
    return LETHE_OK;
}

/* ---- the forget terms ----------------------------------------------------- */

/* NPO and IdkDPO (compute_dpo_loss): -(2/beta) mean_b logsigmoid(beta (win -
 * lose)), with win / lose the log-ratio theta - ref of the sequence
 * log-probabilities (win 0 for NPO). */
lethe_status lm_dpo_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *win,
                             const lethe_lm_batch *lose, double beta, double gamma, lm_scratch *S,
                             double *value)
{
    int B = lose->B;
    lethe_status st;
    double *rw = calloc((size_t)B, sizeof *rw), *rl = calloc((size_t)B, sizeof *rl);
    double *tw = calloc((size_t)B, sizeof *tw), *tl = calloc((size_t)B, sizeof *tl);
    long N = (long)B * (win && win->T > lose->T ? win->T : lose->T);
    if (!rw || !rl || !tw || !tl || !lm_grow(&S->dloss, (size_t)N)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (win) {
        if ((st = lm_fwd(ref, win)) != LETHE_OK)
            goto done;
        lm_seq_stats(ref, rw, NULL);
        if ((st = lm_fwd(g, win)) != LETHE_OK)
            goto done;
        lm_seq_stats(g, tw, NULL);
    }
    if ((st = lm_fwd(ref, lose)) != LETHE_OK)
        goto done;
    lm_seq_stats(ref, rl, NULL);
    if ((st = lm_fwd(g, lose)) != LETHE_OK) /* g's activations: the lose batch */
        goto done;
    lm_seq_stats(g, tl, NULL);
    double total = 0;
    for (int b = 0; b < B; b++) {
        double x = beta * ((tw[b] - rw[b]) - (tl[b] - rl[b]));
        total += -(2.0 / beta) * lm_log_sigmoid(x);
        /* dL/dx = -(2/beta) lm_sigmoid(-x) / B; dx/dlogp_lose = -beta, dx/dlogp_win = beta */
        rw[b] = gamma * 2.0 * lm_sigmoid(-x) / B; /* reused: the coefficient k_b */
    }
    *value = total / B;
    /* lose tokens: dL/dlogp = +k_b, so the weight on -logp is -k_b */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < lose->T; t++) {
            long i = (long)b * lose->T + t;
            S->dloss[i] = lose->targets[i] >= 0 ? (float)-rw[b] : 0.0f;
        }
    lethe_gpt_backward_weighted(g, S->dloss);
    if (win) {
        if ((st = lm_fwd(g, win)) != LETHE_OK)
            goto done;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < win->T; t++) {
                long i = (long)b * win->T + t;
                S->dloss[i] = win->targets[i] >= 0 ? (float)rw[b] : 0.0f;
            }
        lethe_gpt_backward_weighted(g, S->dloss);
    }
    st = LETHE_OK;
done:
    free(rw);
    free(rl);
    free(tw);
    free(tl);
    return st;
}

/* WGA and SatImp: L = -mean_t [sg(w_t) CE_t] = mean_t w_t logp_t. */
lethe_status lm_weighted_term(const lethe_lm_step *s,
                              double (*weight)(const lethe_lm_cfg *cfg, double lp),
                              double *value)
{
    lethe_gpt *g = s->g;
    const lethe_lm_batch *f = s->forget;
    const lethe_lm_cfg *cfg = s->cfg;
    lm_scratch *S = s->S;
    long N = (long)f->B * f->T;
    lethe_status st = lm_fwd(g, f);
    if (st != LETHE_OK)
        return st;
    if (!lm_grow(&S->dloss, (size_t)N))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    double total = 0;
    int cnt = g->n_targets;
    for (long i = 0; i < N; i++) {
        if (g->targets[i] < 0) {
            S->dloss[i] = 0;
            continue;
        }
        double lp = g->logprobs[i], w = weight(cfg, lp);
        total += w * lp;
        S->dloss[i] = (float)(-cfg->gamma * w / cnt);
    }
    *value = total / cnt;
    lethe_gpt_backward_weighted(g, S->dloss);
    return LETHE_OK;
}

/* GradAscent's term: minus the forget batch's mean token NLL, ascended. */
lethe_status lm_ascent_forget(const lethe_lm_step *s, double *value)
{
    lethe_status st = lm_nll_term(s->g, s->forget, -s->cfg->gamma, s->S, value);
    *value = -*value;
    return st;
}

/* A fine-tune's term: the forget batch's mean token NLL, descended. */
lethe_status lm_descent_forget(const lethe_lm_step *s, double *value)
{
    return lm_nll_term(s->g, s->forget, s->cfg->gamma, s->S, value);
}

/* ---- the step loss -------------------------------------------------------- */

lethe_status lethe_lm_loss(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                           const lethe_lm_batch *forget, const lethe_lm_batch *retain,
                           const lethe_lm_batch *idk, const float *control, lethe_lm_terms *out)
{
    lethe_status st = lethe_lm_check(cfg, g, ref);
    if (st != LETHE_OK)
        return st;
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg->method);
    const char *name = def->name;
    lethe_lm_retain rk = retain_kind(cfg);
    if ((st = check_batch(g, forget, "forget", name)) != LETHE_OK)
        return st;
    if (rk != LETHE_LM_RETAIN_NONE && (st = check_batch(g, retain, "retain", name)) != LETHE_OK)
        return st;
    if (def->needs & LETHE_LM_NEEDS_IDK) {
        if ((st = check_batch(g, idk, "idk (alternate answer)", name)) != LETHE_OK)
            return st;
        if (idk->B != forget->B)
            return lethe_fail(LETHE_ERR_INVALID, "%s: the idk batch has %d sequences, the "
                              "forget batch %d (one alternate answer per question)", name,
                              idk->B, forget->B);
    }

    lm_scratch S = {0};
    double f = 0, r = 0, gamma = cfg->gamma;
    lethe_lm_step step = {g, ref, cfg, forget, idk, control, &S};
    st = def->forget(&step, &f);
    if (st == LETHE_OK) {
        switch (rk) {
        case LETHE_LM_RETAIN_NONE: break;
        case LETHE_LM_RETAIN_NLL: st = lm_nll_term(g, retain, cfg->alpha, &S, &r); break;
        case LETHE_LM_RETAIN_KL: st = kl_term(g, ref, retain, cfg->alpha, &S, &r); break;
        case LETHE_LM_RETAIN_EMBED: {
            int layer = lm_rmu_layer(cfg, g) + 1; /* hidden-state index */
            long n = (long)retain->B * retain->T * g->cfg.n_embd;
            if ((st = lm_fwd(ref, retain)) != LETHE_OK)
                break;
            if (!lm_grow(&S.buf, (size_t)n)) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for RMU's retain term");
                break;
            }
            memcpy(S.buf, lethe_gpt_hidden(ref, layer), sizeof(float) * (size_t)n);
            if ((st = lm_fwd(g, retain)) == LETHE_OK)
                st = lm_act_term(g, layer, S.buf, 1, cfg->alpha, &S, &r);
            break;
        }
        }
    }
    free(S.dloss);
    free(S.buf);
    if (st != LETHE_OK)
        return st;
    if (out) {
        out->forget = f;
        out->retain = r;
        out->loss = gamma * f + (rk == LETHE_LM_RETAIN_NONE ? 0.0 : cfg->alpha * r);
    }
    return LETHE_OK;
}
