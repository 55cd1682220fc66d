/* Language-model unlearning losses (lethe/lm_unlearn.h): OpenUnlearning's
 * trainer losses (src/trainer/utils.py and the handlers in src/trainer/unlearn) on
 * lethe's GPT, each forward followed by its backward so every term
 * accumulates into g->grads. Values are summed in double. */
#include "lethe/lm_unlearn.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_RMU 0x524D55ull

static const char *const method_names[LETHE_LM_N_METHODS] = {
    "ga",     "graddiff", "npo", "simnpo", "idknll", "idkdpo",     "rmu",
    "undial", "wga",      "satimp", "ceu", "taskvector", "whp"};
static const char *const retain_names[4] = {"none", "nll", "kl", "embed"};

const char *lethe_lm_method_name(lethe_lm_method m)
{
    return (unsigned)m < LETHE_LM_N_METHODS ? method_names[m] : NULL;
}

const char *lethe_lm_retain_name(lethe_lm_retain r)
{
    return (unsigned)r < 4 ? retain_names[r] : NULL;
}

void lethe_lm_defaults(lethe_lm_method m, lethe_lm_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->method = m;
    c->retain = LETHE_LM_RETAIN_NLL;
    c->gamma = 1;
    c->alpha = 1;
    c->rmu_layer = -1;
    c->rmu_blocks = 3;
    c->steering = 2;
    c->ceu_ignore = 1;
    switch (m) {
    case LETHE_LM_GA: c->retain = LETHE_LM_RETAIN_NONE; break;
    case LETHE_LM_GRADDIFF: break;
    case LETHE_LM_NPO: c->beta = 0.1; break;
    case LETHE_LM_SIMNPO:
        c->beta = 4.5;
        c->delta = 0;
        c->gamma = 0.125;
        break;
    case LETHE_LM_IDKNLL: break;
    case LETHE_LM_IDKDPO: c->beta = 0.1; break;
    case LETHE_LM_RMU: c->retain = LETHE_LM_RETAIN_EMBED; break;
    case LETHE_LM_UNDIAL:
        c->beta = 10;
        c->alpha = 0;
        break;
    case LETHE_LM_WGA: c->beta = 1; break;
    case LETHE_LM_SATIMP:
        c->beta = 5;
        c->beta2 = 1;
        c->gamma = 0.1;
        break;
    case LETHE_LM_CEU: c->retain = LETHE_LM_RETAIN_NONE; break;
    case LETHE_LM_TASKVECTOR:
    case LETHE_LM_WHP:
        c->retain = LETHE_LM_RETAIN_NONE;
        c->alpha = 5;
        break;
    default: break;
    }
}

lethe_status lethe_lm_parse(const char *name, lethe_lm_cfg *cfg)
{
    static const struct {
        const char *name;
        lethe_lm_method m;
        lethe_lm_retain r;
    } variants[] = {{"ga_gdr", LETHE_LM_GRADDIFF, LETHE_LM_RETAIN_NLL},
                    {"ga_klr", LETHE_LM_GRADDIFF, LETHE_LM_RETAIN_KL},
                    {"npo_gdr", LETHE_LM_NPO, LETHE_LM_RETAIN_NLL},
                    {"npo_klr", LETHE_LM_NPO, LETHE_LM_RETAIN_KL}};
    for (int m = 0; m < LETHE_LM_N_METHODS; m++)
        if (!strcmp(name, method_names[m])) {
            lethe_lm_defaults((lethe_lm_method)m, cfg);
            return LETHE_OK;
        }
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (!strcmp(name, variants[i].name)) {
            lethe_lm_defaults(variants[i].m, cfg);
            cfg->retain = variants[i].r;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_NOT_FOUND,
                      "unknown LM unlearning method '%s'; the methods are: ga, graddiff, "
                      "ga_gdr, ga_klr, npo, npo_gdr, npo_klr, simnpo, idknll, idkdpo, rmu, "
                      "undial, wga, satimp, ceu, taskvector, whp",
                      name);
}

lethe_status lethe_lm_retain_parse(const char *name, lethe_lm_retain *r)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, retain_names[i])) {
            *r = (lethe_lm_retain)i;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID,
                      "unknown retain loss '%s' (expected none, nll, kl or embed)", name);
}

/* The block RMU steers. */
static int rmu_layer(const lethe_lm_cfg *cfg, const lethe_gpt *g)
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
    const char *name = lethe_lm_method_name(cfg->method);
    if (!name)
        return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: method %d is out of range",
                          (int)cfg->method);
    if (!lethe_lm_retain_name(cfg->retain))
        return lethe_fail(LETHE_ERR_INVALID, "%s: retain kind %d is out of range", name,
                          (int)cfg->retain);
    lethe_lm_method m = cfg->method;
    if (cfg->retain == LETHE_LM_RETAIN_EMBED && m != LETHE_LM_RMU)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the embed retain loss is RMU's only "
                          "(use nll or kl)", name);
    if ((m == LETHE_LM_TASKVECTOR || m == LETHE_LM_WHP) && cfg->retain != LETHE_LM_RETAIN_NONE)
        return lethe_fail(LETHE_ERR_INVALID, "%s fine-tunes a reinforced model on the forget "
                          "set only: its retain loss must be none", name);
    if (!isfinite(cfg->gamma) || !isfinite(cfg->alpha) || !isfinite(cfg->beta) ||
        !isfinite(cfg->beta2) || !isfinite(cfg->delta) || !isfinite(cfg->steering))
        return lethe_fail(LETHE_ERR_INVALID, "%s: gamma, alpha, beta, beta2, delta and "
                          "steering must be finite", name);
    if ((m == LETHE_LM_NPO || m == LETHE_LM_SIMNPO || m == LETHE_LM_IDKDPO) && !(cfg->beta > 0))
        return lethe_fail(LETHE_ERR_INVALID, "%s: beta = %g must be positive (the loss "
                          "divides by it)", name, cfg->beta);
    if (m == LETHE_LM_CEU && cfg->ceu_ignore < 0)
        return lethe_fail(LETHE_ERR_INVALID, "ceu: ignore = %d must be >= 0", cfg->ceu_ignore);
    if (m == LETHE_LM_RMU) {
        int l = rmu_layer(cfg, g);
        if (l >= g->cfg.n_layer)
            return lethe_fail(LETHE_ERR_INVALID, "rmu: layer %d does not exist (the model has "
                              "blocks 0..%d)", l, g->cfg.n_layer - 1);
        if (cfg->rmu_blocks < 0)
            return lethe_fail(LETHE_ERR_INVALID, "rmu: blocks = %d must be >= 0",
                              cfg->rmu_blocks);
    }
    lethe_lm_retain r = retain_kind(cfg);
    int need_ref = m == LETHE_LM_NPO || m == LETHE_LM_IDKDPO || m == LETHE_LM_UNDIAL ||
                   r == LETHE_LM_RETAIN_KL || r == LETHE_LM_RETAIN_EMBED;
    if (need_ref && !ref)
        return lethe_fail(LETHE_ERR_INVALID, "%s%s%s needs a reference model (a frozen copy "
                          "of the starting model)", name, r == LETHE_LM_RETAIN_KL ? " with a KL "
                          "retain term" : "", r == LETHE_LM_RETAIN_EMBED ? " (embed retain)" : "");
    if (need_ref && memcmp(&ref->cfg, &g->cfg, sizeof g->cfg))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the reference model's configuration differs "
                          "from the model's", name);
    return LETHE_OK;
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

/* ---- helpers ------------------------------------------------------------ */

static double log_sigmoid(double x)
{
    return x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x));
}

static double sigmoid(double x)
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

static lethe_status fwd(lethe_gpt *m, const lethe_lm_batch *b)
{
    return lethe_gpt_forward(m, b->tokens, b->targets, b->B, b->T);
}

/* Per sequence of the last forward of m: the sum of the answer tokens'
 * log-probabilities (s) and their count (n); either may be NULL. */
static void seq_stats(const lethe_gpt *m, double *s, int *n)
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

typedef struct scratch {
    float *dloss; /* (N) */
    float *buf;   /* (N, max(V, C)) */
} scratch;

static float *grow_f(float **p, size_t n)
{
    float *q = realloc(*p, sizeof **p * (n ? n : 1));
    if (q)
        *p = q;
    return q;
}

/* NLL term: forward m on b, return the mean token NLL (positive) and
 * backpropagate w times it (w 0: no backward). */
static lethe_status nll_term(lethe_gpt *g, const lethe_lm_batch *b, double w, scratch *S,
                             double *value)
{
    lethe_status st = fwd(g, b);
    if (st != LETHE_OK)
        return st;
    long N = (long)b->B * b->T;
    double s = 0;
    for (long i = 0; i < N; i++)
        s -= g->logprobs[i];
    *value = s / g->n_targets;
    if (w != 0) {
        if (!grow_f(&S->dloss, (size_t)N))
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
                            scratch *S, double *value)
{
    long N = (long)b->B * b->T;
    int V = g->cfg.vocab_size;
    lethe_status st = fwd(ref, b);
    if (st != LETHE_OK)
        return st;
    if (!grow_f(&S->buf, (size_t)(N * V)) || !grow_f(&S->dloss, (size_t)N))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the KL term");
    memcpy(S->buf, ref->logits, sizeof(float) * (size_t)(N * V));
    memcpy(S->dloss, ref->lse, sizeof(float) * (size_t)N); /* the reference's lse */
    if ((st = fwd(g, b)) != LETHE_OK)
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
static lethe_status act_term(lethe_gpt *g, int i, const float *tgt, int per_row, double w,
                             scratch *S, double *value)
{
    int B = g->B, T = g->T, C = g->cfg.n_embd;
    long N = (long)B * T;
    const float *h = lethe_gpt_hidden(g, i);
    LETHE_ASSERT(h);
    if (!grow_f(&S->dloss, (size_t)(N * C)))
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
static lethe_status dpo_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *win,
                             const lethe_lm_batch *lose, double beta, double gamma, scratch *S,
                             double *value)
{
    int B = lose->B;
    lethe_status st;
    double *rw = calloc((size_t)B, sizeof *rw), *rl = calloc((size_t)B, sizeof *rl);
    double *tw = calloc((size_t)B, sizeof *tw), *tl = calloc((size_t)B, sizeof *tl);
    long N = (long)B * (win && win->T > lose->T ? win->T : lose->T);
    if (!rw || !rl || !tw || !tl || !grow_f(&S->dloss, (size_t)N)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (win) {
        if ((st = fwd(ref, win)) != LETHE_OK)
            goto done;
        seq_stats(ref, rw, NULL);
        if ((st = fwd(g, win)) != LETHE_OK)
            goto done;
        seq_stats(g, tw, NULL);
    }
    if ((st = fwd(ref, lose)) != LETHE_OK)
        goto done;
    seq_stats(ref, rl, NULL);
    if ((st = fwd(g, lose)) != LETHE_OK) /* g's activations: the lose batch */
        goto done;
    seq_stats(g, tl, NULL);
    double total = 0;
    for (int b = 0; b < B; b++) {
        double x = beta * ((tw[b] - rw[b]) - (tl[b] - rl[b]));
        total += -(2.0 / beta) * log_sigmoid(x);
        /* dL/dx = -(2/beta) sigmoid(-x) / B; dx/dlogp_lose = -beta, dx/dlogp_win = beta */
        rw[b] = gamma * 2.0 * sigmoid(-x) / B; /* reused: the coefficient k_b */
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
        if ((st = fwd(g, win)) != LETHE_OK)
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

/* SimNPO: -(2/beta) mean_b logsigmoid(beta (NLL_b / |y_b| - delta)). */
static lethe_status simnpo_term(lethe_gpt *g, const lethe_lm_batch *f, const lethe_lm_cfg *cfg,
                                scratch *S, double *value)
{
    int B = f->B;
    long N = (long)B * f->T;
    lethe_status st = fwd(g, f);
    if (st != LETHE_OK)
        return st;
    double *s = calloc((size_t)B, sizeof *s);
    int *n = calloc((size_t)B, sizeof *n);
    if (!s || !n || !grow_f(&S->dloss, (size_t)N)) {
        free(s);
        free(n);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    seq_stats(g, s, n);
    double beta = cfg->beta, total = 0;
    for (int b = 0; b < B; b++) {
        double x = beta * (-s[b] / n[b] - cfg->delta);
        total += -(2.0 / beta) * log_sigmoid(x);
        /* dL/dlogp = (2/B) sigmoid(-x) / n_b */
        float wgt = (float)(-cfg->gamma * 2.0 * sigmoid(-x) / ((double)B * n[b]));
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

/* WGA and SatImp: L = -mean_t [sg(w_t) CE_t] = mean_t w_t logp_t with
 * w = p^beta (WGA) or p^beta1 (1 - p)^beta2 (SatImp). */
static lethe_status weighted_term(lethe_gpt *g, const lethe_lm_batch *f, const lethe_lm_cfg *cfg,
                                  scratch *S, double *value)
{
    long N = (long)f->B * f->T;
    lethe_status st = fwd(g, f);
    if (st != LETHE_OK)
        return st;
    if (!grow_f(&S->dloss, (size_t)N))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    double total = 0;
    int cnt = g->n_targets;
    for (long i = 0; i < N; i++) {
        if (g->targets[i] < 0) {
            S->dloss[i] = 0;
            continue;
        }
        double lp = g->logprobs[i], p = exp(lp), w;
        if (cfg->method == LETHE_LM_WGA)
            w = exp(cfg->beta * lp);
        else
            w = exp(cfg->beta * lp) * pow(1.0 - p, cfg->beta2);
        total += w * lp;
        S->dloss[i] = (float)(-cfg->gamma * w / cnt);
    }
    *value = total / cnt;
    lethe_gpt_backward_weighted(g, S->dloss);
    return LETHE_OK;
}

/* UNDIAL: mean over every position of CE(p_theta, softmax(ref - beta
 * onehot(y))); positions without a target keep the reference unadjusted. */
static lethe_status undial_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *f,
                                const lethe_lm_cfg *cfg, scratch *S, double *value)
{
    long N = (long)f->B * f->T;
    int V = g->cfg.vocab_size;
    lethe_status st = fwd(ref, f);
    if (st != LETHE_OK)
        return st;
    double *q = malloc(sizeof *q * (size_t)V);
    if (!q || !grow_f(&S->buf, (size_t)(N * V))) {
        free(q);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for UNDIAL");
    }
    memcpy(S->buf, ref->logits, sizeof(float) * (size_t)(N * V));
    if ((st = fwd(g, f)) != LETHE_OK) {
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

/* CE-U: mean over the answer positions (after the first ceu_ignore of each
 * sequence) of CE(p_theta, sg(softmax(z with z_y = -inf))). */
static lethe_status ceu_term(lethe_gpt *g, const lethe_lm_batch *f, const lethe_lm_cfg *cfg,
                             scratch *S, double *value)
{
    int B = f->B, T = f->T, V = g->cfg.vocab_size;
    long N = (long)B * T;
    lethe_status st = fwd(g, f);
    if (st != LETHE_OK)
        return st;
    if (!grow_f(&S->buf, (size_t)(N * V)))
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

/* ---- the step loss -------------------------------------------------------- */

lethe_status lethe_lm_loss(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                           const lethe_lm_batch *forget, const lethe_lm_batch *retain,
                           const lethe_lm_batch *idk, const float *control, lethe_lm_terms *out)
{
    lethe_status st = lethe_lm_check(cfg, g, ref);
    if (st != LETHE_OK)
        return st;
    const char *name = lethe_lm_method_name(cfg->method);
    lethe_lm_method m = cfg->method;
    lethe_lm_retain rk = retain_kind(cfg);
    if ((st = check_batch(g, forget, "forget", name)) != LETHE_OK)
        return st;
    if (rk != LETHE_LM_RETAIN_NONE && (st = check_batch(g, retain, "retain", name)) != LETHE_OK)
        return st;
    if (m == LETHE_LM_IDKNLL || m == LETHE_LM_IDKDPO) {
        if ((st = check_batch(g, idk, "idk (alternate answer)", name)) != LETHE_OK)
            return st;
        if (idk->B != forget->B)
            return lethe_fail(LETHE_ERR_INVALID, "%s: the idk batch has %d sequences, the "
                              "forget batch %d (one alternate answer per question)", name,
                              idk->B, forget->B);
    }
    if (m == LETHE_LM_RMU && !control)
        return lethe_fail(LETHE_ERR_INVALID, "rmu needs its control vector "
                          "(lethe_lm_rmu_control)");

    scratch S = {0};
    double f = 0, r = 0, gamma = cfg->gamma;
    int layer = m == LETHE_LM_RMU ? rmu_layer(cfg, g) + 1 : 0; /* hidden-state index */
    switch (m) {
    case LETHE_LM_GA:
    case LETHE_LM_GRADDIFF:
        st = nll_term(g, forget, -gamma, &S, &f);
        f = -f;
        break;
    case LETHE_LM_NPO: st = dpo_term(g, ref, NULL, forget, cfg->beta, gamma, &S, &f); break;
    case LETHE_LM_SIMNPO: st = simnpo_term(g, forget, cfg, &S, &f); break;
    case LETHE_LM_IDKNLL: st = nll_term(g, idk, gamma, &S, &f); break;
    case LETHE_LM_IDKDPO: st = dpo_term(g, ref, idk, forget, cfg->beta, gamma, &S, &f); break;
    case LETHE_LM_RMU:
        if ((st = fwd(g, forget)) == LETHE_OK)
            st = act_term(g, layer, control, 0, gamma, &S, &f);
        break;
    case LETHE_LM_UNDIAL: st = undial_term(g, ref, forget, cfg, &S, &f); break;
    case LETHE_LM_WGA:
    case LETHE_LM_SATIMP: st = weighted_term(g, forget, cfg, &S, &f); break;
    case LETHE_LM_CEU: st = ceu_term(g, forget, cfg, &S, &f); break;
    case LETHE_LM_TASKVECTOR:
    case LETHE_LM_WHP: st = nll_term(g, forget, gamma, &S, &f); break;
    default: LETHE_ASSERT(0);
    }
    if (st == LETHE_OK) {
        switch (rk) {
        case LETHE_LM_RETAIN_NONE: break;
        case LETHE_LM_RETAIN_NLL: st = nll_term(g, retain, cfg->alpha, &S, &r); break;
        case LETHE_LM_RETAIN_KL: st = kl_term(g, ref, retain, cfg->alpha, &S, &r); break;
        case LETHE_LM_RETAIN_EMBED: {
            long n = (long)retain->B * retain->T * g->cfg.n_embd;
            if ((st = fwd(ref, retain)) != LETHE_OK)
                break;
            if (!grow_f(&S.buf, (size_t)n)) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for RMU's retain term");
                break;
            }
            memcpy(S.buf, lethe_gpt_hidden(ref, layer), sizeof(float) * (size_t)n);
            if ((st = fwd(g, retain)) == LETHE_OK)
                st = act_term(g, layer, S.buf, 1, cfg->alpha, &S, &r);
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
