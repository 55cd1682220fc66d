/* GPT-2 generation: the key/value cache, greedy decoding, sampling
 * (temperature, top-k, top-p), beam search, stop conditions, hooks; and the
 * per-position moments of log p used by scoring. */
#include "lethe/gpt_generate.h"
#include "lethe/gemm.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "vmath.h"

/* ---- the key/value cache ------------------------------------------------ */

lethe_gpt_kv *lethe_gpt_kv_new(const lethe_gpt *g)
{
    const lethe_gpt_config *c = &g->cfg;
    lethe_gpt_kv *kv = calloc(1, sizeof *kv);
    if (!kv) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = (size_t)c->n_layer * (size_t)c->n_positions * (size_t)c->n_embd;
    kv->g = g;
    kv->cap = c->n_positions;
    kv->k = malloc(sizeof(float) * n);
    kv->v = malloc(sizeof(float) * n);
    kv->logits = calloc((size_t)c->vocab_size, sizeof(float));
    kv->att = malloc(sizeof(float) * (size_t)c->n_head * (size_t)c->n_positions);
    if (!kv->k || !kv->v || !kv->logits || !kv->att) {
        lethe_gpt_kv_free(kv);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return kv;
}

static void free_scratch(lethe_gpt_kv *kv)
{
    free(kv->x), free(kv->ln), free(kv->qkv), free(kv->atty), free(kv->fch), free(kv->fchg);
    free(kv->mean), free(kv->rstd);
    kv->x = kv->ln = kv->qkv = kv->atty = kv->fch = kv->fchg = kv->mean = kv->rstd = NULL;
    kv->cap_rows = 0;
}

void lethe_gpt_kv_free(lethe_gpt_kv *kv)
{
    if (!kv)
        return;
    free_scratch(kv);
    free(kv->k), free(kv->v), free(kv->logits), free(kv->att);
    free(kv);
}

void lethe_gpt_kv_reset(lethe_gpt_kv *kv) { kv->len = 0; }

void lethe_gpt_kv_copy(lethe_gpt_kv *dst, const lethe_gpt_kv *src)
{
    const lethe_gpt_config *c = &src->g->cfg;
    LETHE_ASSERT(dst->g == src->g);
    size_t row = (size_t)c->n_embd, plane = (size_t)src->cap * row;
    for (int l = 0; l < c->n_layer; l++) {
        memcpy(dst->k + l * plane, src->k + l * plane, sizeof(float) * (size_t)src->len * row);
        memcpy(dst->v + l * plane, src->v + l * plane, sizeof(float) * (size_t)src->len * row);
    }
    memcpy(dst->logits, src->logits, sizeof(float) * (size_t)c->vocab_size);
    dst->len = src->len;
}

static lethe_status reserve_rows(lethe_gpt_kv *kv, int n)
{
    if (n <= kv->cap_rows)
        return LETHE_OK;
    free_scratch(kv);
    size_t C = (size_t)kv->g->cfg.n_embd, N = (size_t)n;
    kv->x = malloc(sizeof(float) * N * C);
    kv->ln = malloc(sizeof(float) * N * C);
    kv->qkv = malloc(sizeof(float) * N * 3 * C);
    kv->atty = malloc(sizeof(float) * N * C);
    kv->fch = malloc(sizeof(float) * N * 4 * C);
    kv->fchg = malloc(sizeof(float) * N * 4 * C);
    kv->mean = malloc(sizeof(float) * N);
    kv->rstd = malloc(sizeof(float) * N);
    if (!kv->x || !kv->ln || !kv->qkv || !kv->atty || !kv->fch || !kv->fchg || !kv->mean ||
        !kv->rstd) {
        free_scratch(kv);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    kv->cap_rows = n;
    return LETHE_OK;
}

/* out = res + b + inp w, as the full forward forms its residual sums. */
static void residual_proj(float *out, const float *inp, const float *w, const float *b, int N,
                          int IC, int C)
{
    for (long n = 0; n < N; n++)
        for (int k = 0; k < C; k++)
            out[n * C + k] += b[k];
    lethe_gemm(0, 0, N, C, IC, 1.0f, inp, IC, w, C, 1.0f, out, C);
}

/* Head h of the cached attention for rows [0, n) at positions p0.. (keys and
 * values already appended): kv->atty's head columns. */
static void kv_attend_head(lethe_gpt_kv *kv, const float *K, const float *Vc, int n, int p0,
                           int h)
{
    const int C = kv->g->cfg.n_embd, hs = C / kv->g->cfg.n_head;
    const float scale = 1.0f / sqrtf((float)hs);
    float *s = kv->att + (long)h * kv->cap;
    for (int i = 0; i < n; i++) {
        const float *q = kv->qkv + (long)i * 3 * C + (long)h * hs;
        int t = p0 + i; /* keys 0 .. t */
        float mx = -INFINITY;
        for (int j = 0; j <= t; j++) {
            const float *kr = K + (long)j * C + (long)h * hs;
            float d = 0.0f;
            for (int e = 0; e < hs; e++)
                d += q[e] * kr[e];
            s[j] = d * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j <= t; j++) {
            s[j] = lethe_vexpf(s[j] - mx);
            sum += s[j];
        }
        float inv = 1.0f / sum;
        float *y = kv->atty + (long)i * C + (long)h * hs;
        for (int e = 0; e < hs; e++)
            y[e] = 0.0f;
        for (int j = 0; j <= t; j++) {
            const float *vr = Vc + (long)j * C + (long)h * hs;
            float a = s[j] * inv;
            for (int e = 0; e < hs; e++)
                y[e] += a * vr[e];
        }
    }
}

lethe_status lethe_gpt_kv_forward(lethe_gpt_kv *kv, const int32_t *tokens, int n,
                                  lethe_gpt_embed_hook hook, void *hook_ctx)
{
    const lethe_gpt *g = kv->g;
    const lethe_gpt_config *c = &g->cfg;
    int C = c->n_embd, L = c->n_layer, V = c->vocab_size, NH = c->n_head;
    if (n < 1 || kv->len + n > kv->cap)
        return lethe_fail(LETHE_ERR_INVALID,
                          "GPT cache: %d positions after %d exceed n_positions %d", n, kv->len,
                          kv->cap);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lethe_fail(LETHE_ERR_INVALID,
                              "GPT cache: token %d is outside the vocabulary [0, %d)", tokens[i],
                              V);
    lethe_status st = reserve_rows(kv, n);
    if (st)
        return st;
    const int p0 = kv->len;
    const float *wte = g->params + g->tensors[0].offset, *wpe = g->params + g->tensors[1].offset;
    for (int i = 0; i < n; i++) {
        const float *e = wte + (long)tokens[i] * C, *p = wpe + (long)(p0 + i) * C;
        float *x = kv->x + (long)i * C;
        for (int k = 0; k < C; k++)
            x[k] = e[k] + p[k];
    }
    if (hook)
        hook(hook_ctx, p0, n, tokens, kv->x, C);
    const long plane = (long)kv->cap * C;
    for (int l = 0; l < L; l++) {
        lethe_gpt_block p = lethe_gpt_block_params(g, l);
        float *K = kv->k + l * plane, *Vc = kv->v + l * plane;
        lethe_layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x, p.ln_1_w, p.ln_1_b, n, C);
        lethe_conv1d_forward(kv->qkv, kv->ln, p.attn_w, p.attn_b, n, C, 3 * C);
        for (int i = 0; i < n; i++) {
            memcpy(K + (long)(p0 + i) * C, kv->qkv + (long)i * 3 * C + C, sizeof(float) * C);
            memcpy(Vc + (long)(p0 + i) * C, kv->qkv + (long)i * 3 * C + 2 * C,
                   sizeof(float) * C);
        }
        PAR_FOR((long)n * (p0 + n) * C > (1L << 16), int, h, NH,
                kv_attend_head(kv, K, Vc, n, p0, h));
        residual_proj(kv->x, kv->atty, p.attn_proj_w, p.attn_proj_b, n, C, C);
        lethe_layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x, p.ln_2_w, p.ln_2_b, n, C);
        lethe_conv1d_forward(kv->fch, kv->ln, p.fc_w, p.fc_b, n, C, 4 * C);
        lethe_gelu_tanh_forward(kv->fchg, kv->fch, (long)n * 4 * C);
        residual_proj(kv->x, kv->fchg, p.fc_proj_w, p.fc_proj_b, n, 4 * C, C);
    }
    /* ln_f and the tied head, for the last row only */
    const lethe_gpt_tensor *tf = &g->tensors[g->n_tensors - 2];
    lethe_layernorm_forward(kv->ln, kv->mean, kv->rstd, kv->x + (long)(n - 1) * C,
                            g->params + tf[0].offset, g->params + tf[1].offset, 1, C);
    lethe_gemm(0, 1, 1, V, C, 1.0f, kv->ln, C, wte, C, 0.0f, kv->logits, V);
    kv->len = p0 + n;
    return LETHE_OK;
}

/* ---- choosing tokens ------------------------------------------------------ */

const char *lethe_gen_stop_name(int reason)
{
    switch (reason) {
    case LETHE_GEN_EOS: return "eos";
    case LETHE_GEN_STOP: return "stop";
    case LETHE_GEN_CONTEXT: return "context";
    case LETHE_GEN_CANCEL: return "cancel";
    default: return "max";
    }
}

void lethe_gen_defaults(lethe_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_new = 32;
    o->top_p = 1.0f;
    o->beam = 1;
    o->eos = -1;
}

void lethe_gen_result_free(lethe_gen_result *res)
{
    if (!res)
        return;
    free(res->tokens);
    free(res->logprobs);
    res->tokens = NULL, res->logprobs = NULL, res->n = 0;
}


static int argmax(const float *z, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        best = z[v] > z[best] ? v : best;
    return best;
}

/* Sort ids by logit (arg: the logits), largest first, smaller id first on
 * ties. */
static int by_logit(const void *a, const void *b, void *arg)
{
    const float *key = arg;
    int i = *(const int *)a, j = *(const int *)b;
    float x = key[i], y = key[j];
    if (x != y)
        return x > y ? -1 : 1;
    return (i > j) - (i < j);
}

/* Sample from softmax(z / temperature) restricted by top-k and top-p. idx and
 * prob are (V) scratch. One uniform from r. */
static int sample(const float *z, int V, const lethe_gen_opts *o, lethe_rng *r, int *idx,
                  double *prob)
{
    for (int v = 0; v < V; v++)
        idx[v] = v;
    qsort_r(idx, (size_t)V, sizeof *idx, by_logit, (void *)z);
    int m = V;
    while (m > 1 && !isfinite(z[idx[m - 1]]))
        m--;
    if (o->top_k > 0 && o->top_k < m)
        m = o->top_k;
    double mx = z[idx[0]], sum = 0.0;
    for (int i = 0; i < m; i++) {
        prob[i] = exp(((double)z[idx[i]] - mx) / o->temperature);
        sum += prob[i];
    }
    for (int i = 0; i < m; i++)
        prob[i] /= sum;
    if (o->top_p > 0.0f && o->top_p < 1.0f) {
        double cum = 0.0;
        int keep = m;
        for (int i = 0; i < m; i++) {
            cum += prob[i];
            if (cum >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
        sum = 0.0;
        for (int i = 0; i < keep; i++)
            sum += prob[i];
        for (int i = 0; i < keep; i++)
            prob[i] /= sum;
        m = keep;
    }
    double u = lethe_rng_uniform(r), cum = 0.0;
    for (int i = 0; i < m; i++) {
        cum += prob[i];
        if (u < cum)
            return idx[i];
    }
    return idx[m - 1];
}

/* ---- stop conditions ------------------------------------------------------ */

/* The generated text so far, grown a token at a time. */
typedef struct textbuf {
    char *b;
    size_t len, cap;
} textbuf;

static lethe_status text_append(textbuf *t, const lethe_tokenizer_t *tok, int32_t id)
{
    size_t n;
    const unsigned char *s = lethe_tokenizer_token(tok, (uint32_t)id, &n);
    if (!s)
        return lethe_fail(LETHE_ERR_INVALID, "generate: id %d is not in the tokenizer", id);
    if (t->len + n > t->cap) {
        size_t cap = (t->len + n) * 2 + 64;
        char *b = realloc(t->b, cap);
        if (!b)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        t->b = b, t->cap = cap;
    }
    memcpy(t->b + t->len, s, n);
    t->len += n;
    return LETHE_OK;
}

static int text_stops(const textbuf *t, const lethe_gen_opts *o)
{
    for (int i = 0; i < o->n_stop; i++) {
        size_t n = strlen(o->stop[i]);
        if (n && n <= t->len && !memcmp(t->b + t->len - n, o->stop[i], n))
            return 1;
    }
    return 0;
}

/* ---- greedy and sampling ---------------------------------------------------- */

/* The next-token logits of seq[0..len) into z: from the cache (feeding what it
 * lacks) or from a full forward. */
static lethe_status next_logits(const lethe_gpt *g, lethe_gpt_kv *kv, lethe_gpt_ctx *x,
                                const int32_t *seq, int len, const lethe_gen_opts *o, float *z)
{
    int V = g->cfg.vocab_size;
    lethe_status st;
    if (kv) {
        st = lethe_gpt_kv_forward(kv, seq + kv->len, len - kv->len,
                                  kv->len == 0 ? o->embed_hook : NULL, o->embed_ctx);
        if (st == LETHE_OK)
            memcpy(z, kv->logits, sizeof(float) * (size_t)V);
        return st;
    }
    st = lethe_gpt_ctx_forward(x, g, seq, NULL, 1, len);
    if (st == LETHE_OK)
        memcpy(z, x->logits + (long)(len - 1) * V, sizeof(float) * (size_t)V);
    return st;
}

static lethe_status check_hooked(const float *z, int V, double *lse)
{
    *lse = lethe_vlogsumexp(z, V);
    if (!isfinite(*lse))
        return lethe_fail(LETHE_ERR_INVALID, "generate: no finite logit left to choose from");
    return LETHE_OK;
}

static lethe_status gen_single(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                               const lethe_gen_opts *o, lethe_gen_result *res)
{
    int V = g->cfg.vocab_size, npos = g->cfg.n_positions;
    int cap = n_prompt + (o->max_new < npos - n_prompt ? o->max_new : npos - n_prompt);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(cap > 0 ? cap : 1));
    float *z = malloc(sizeof(float) * (size_t)V);
    int *idx = malloc(sizeof(int) * (size_t)V);
    double *prob = malloc(sizeof(double) * (size_t)V);
    res->tokens = malloc(sizeof(int32_t) * (size_t)(o->max_new > 0 ? o->max_new : 1));
    res->logprobs = malloc(sizeof(float) * (size_t)(o->max_new > 0 ? o->max_new : 1));
    lethe_gpt_kv *kv = o->no_cache ? NULL : lethe_gpt_kv_new(g);
    lethe_gpt_ctx *x = o->no_cache ? lethe_gpt_ctx_new() : NULL;
    textbuf text = {0};
    lethe_status st = LETHE_OK;
    if (!seq || !z || !idx || !prob || !res->tokens || !res->logprobs || (!kv && !x))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_rng r = lethe_rng_init(o->seed, 0);
    int len = n_prompt;
    if (st == LETHE_OK)
        memcpy(seq, prompt, sizeof(int32_t) * (size_t)n_prompt);
    res->stop = LETHE_GEN_MAX;
    while (st == LETHE_OK && res->n < o->max_new) {
        if (len >= npos) {
            res->stop = LETHE_GEN_CONTEXT;
            break;
        }
        if ((st = next_logits(g, kv, x, seq, len, o, z)))
            break;
        if (o->logits_hook)
            o->logits_hook(o->logits_ctx, z, V, seq, len, 0);
        double lse;
        if ((st = check_hooked(z, V, &lse)))
            break;
        int t = o->temperature > 0.0f ? sample(z, V, o, &r, idx, prob) : argmax(z, V);
        seq[len++] = t;
        res->tokens[res->n] = t;
        res->logprobs[res->n] = (float)((double)z[t] - lse);
        res->score += res->logprobs[res->n];
        res->n++;
        if (t == o->eos) {
            res->stop = LETHE_GEN_EOS;
            break;
        }
        if (o->on_token && o->on_token(o->token_ctx, t, res->logprobs[res->n - 1])) {
            res->stop = LETHE_GEN_CANCEL;
            break;
        }
        if (o->n_stop) {
            if ((st = text_append(&text, o->tok, t)))
                break;
            if (text_stops(&text, o)) {
                res->stop = LETHE_GEN_STOP;
                break;
            }
        }
    }
    free(seq), free(z), free(idx), free(prob), free(text.b);
    lethe_gpt_kv_free(kv);
    lethe_gpt_ctx_free(x);
    return st;
}

/* ---- beam search ------------------------------------------------------------ */

typedef struct hyp {
    int32_t *seq;   /* (n_prompt + max_new) */
    float *lp;      /* (max_new) per new token */
    int len;        /* tokens in seq */
    double score;   /* sum of lp */
    int stop;
    textbuf text;
} hyp;

typedef struct cand {
    int beam, token;
    double score;
    float lp;
} cand;

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->beam != y->beam)
        return x->beam < y->beam ? -1 : 1;
    return (x->token > y->token) - (x->token < y->token);
}

static double rank_of(const hyp *h, int n_prompt, int norm)
{
    int n = h->len - n_prompt;
    return norm && n > 0 ? h->score / n : h->score;
}

static lethe_status hyp_copy(hyp *dst, const hyp *src, int n_lp)
{
    memcpy(dst->seq, src->seq, sizeof(int32_t) * (size_t)src->len);
    memcpy(dst->lp, src->lp, sizeof(float) * (size_t)(n_lp > 0 ? n_lp : 0));
    dst->len = src->len, dst->score = src->score, dst->stop = src->stop;
    dst->text.len = 0;
    if (src->text.len > dst->text.cap) {
        char *b = realloc(dst->text.b, src->text.len);
        if (!b)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        dst->text.b = b, dst->text.cap = src->text.len;
    }
    if (src->text.len)
        memcpy(dst->text.b, src->text.b, src->text.len);
    dst->text.len = src->text.len;
    return LETHE_OK;
}

static lethe_status gen_beam(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                             const lethe_gen_opts *o, lethe_gen_result *res)
{
    const int V = g->cfg.vocab_size, npos = g->cfg.n_positions, W = o->beam;
    const int slots = 3 * W; /* W alive, W next, W finished */
    const int seq_cap = n_prompt + o->max_new;
    hyp *h = calloc((size_t)slots, sizeof *h);
    lethe_gpt_kv **kv = calloc((size_t)(2 * W), sizeof *kv);
    float *z = malloc(sizeof(float) * (size_t)W * (size_t)V);
    cand *cands = malloc(sizeof(cand) * (size_t)W * 2 * (size_t)W);
    int *idx = malloc(sizeof(int) * (size_t)V);
    lethe_status st = LETHE_OK;
    if (!h || !kv || !z || !cands || !idx)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int i = 0; st == LETHE_OK && i < slots; i++) {
        h[i].seq = malloc(sizeof(int32_t) * (size_t)seq_cap);
        h[i].lp = malloc(sizeof(float) * (size_t)(o->max_new > 0 ? o->max_new : 1));
        if (!h[i].seq || !h[i].lp)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; st == LETHE_OK && i < 2 * W; i++)
        if (!(kv[i] = lethe_gpt_kv_new(g)))
            st = LETHE_ERR_NOMEM;
    hyp *alive = h, *next = h + W, *fin = h + 2 * W;
    lethe_gpt_kv **kv_alive = kv, **kv_next = kv + W;
    int n_alive = 1, n_fin = 0;
    if (st == LETHE_OK) {
        memcpy(alive[0].seq, prompt, sizeof(int32_t) * (size_t)n_prompt);
        alive[0].len = n_prompt;
        st = lethe_gpt_kv_forward(kv_alive[0], prompt, n_prompt, o->embed_hook, o->embed_ctx);
    }
    int step = 0;
    while (st == LETHE_OK && n_alive > 0 && n_fin < W) {
        if (step == o->max_new || alive[0].len >= npos) {
            /* out of room: the alive beams finish as they are */
            int why = step == o->max_new ? LETHE_GEN_MAX : LETHE_GEN_CONTEXT;
            for (int b = 0; b < n_alive && n_fin < W && st == LETHE_OK; b++) {
                alive[b].stop = why;
                st = hyp_copy(&fin[n_fin++], &alive[b], step);
            }
            break;
        }
        /* each beam's 2W best continuations */
        int nc = 0;
        for (int b = 0; b < n_alive; b++) {
            float *zb = z + (long)b * V;
            memcpy(zb, kv_alive[b]->logits, sizeof(float) * (size_t)V);
            if (o->logits_hook)
                o->logits_hook(o->logits_ctx, zb, V, alive[b].seq, alive[b].len, b);
            double lse;
            if ((st = check_hooked(zb, V, &lse)))
                break;
            for (int v = 0; v < V; v++)
                idx[v] = v;
            qsort_r(idx, (size_t)V, sizeof *idx, by_logit, zb);
            for (int i = 0; i < 2 * W && i < V && isfinite(zb[idx[i]]); i++) {
                float lp = (float)((double)zb[idx[i]] - lse);
                cands[nc++] = (cand){b, idx[i], alive[b].score + lp, lp};
            }
        }
        if (st)
            break;
        qsort(cands, (size_t)nc, sizeof *cands, by_score);
        int n_next = 0;
        for (int i = 0; i < nc && n_next < W && n_fin < W && st == LETHE_OK; i++) {
            const cand *c = &cands[i];
            hyp *dst = &next[n_next];
            if ((st = hyp_copy(dst, &alive[c->beam], step)))
                break;
            dst->seq[dst->len++] = c->token;
            dst->lp[step] = c->lp;
            dst->score = c->score;
            int stop = -1;
            if (c->token == o->eos)
                stop = LETHE_GEN_EOS;
            else if (o->n_stop) {
                if ((st = text_append(&dst->text, o->tok, c->token)))
                    break;
                if (text_stops(&dst->text, o))
                    stop = LETHE_GEN_STOP;
            }
            if (stop >= 0) {
                dst->stop = stop;
                st = hyp_copy(&fin[n_fin++], dst, step + 1);
            } else {
                lethe_gpt_kv_copy(kv_next[n_next], kv_alive[c->beam]);
                n_next++;
            }
        }
        if (st)
            break;
        /* the next beams become the alive ones; feed their new tokens */
        hyp *th = alive;
        alive = next, next = th;
        lethe_gpt_kv **tk = kv_alive;
        kv_alive = kv_next, kv_next = tk;
        n_alive = n_next;
        step++;
        for (int b = 0; b < n_alive && st == LETHE_OK && n_fin < W; b++)
            if (step < o->max_new && alive[b].len < npos)
                st = lethe_gpt_kv_forward(kv_alive[b], alive[b].seq + alive[b].len - 1, 1, NULL,
                                          NULL);
    }
    if (st == LETHE_OK && n_fin == 0) /* max_new 0 */
        st = hyp_copy(&fin[n_fin++], &alive[0], 0);
    if (st == LETHE_OK) {
        int best = 0;
        for (int i = 1; i < n_fin; i++)
            if (rank_of(&fin[i], n_prompt, o->length_norm) >
                rank_of(&fin[best], n_prompt, o->length_norm))
                best = i;
        const hyp *b = &fin[best];
        int n = b->len - n_prompt;
        res->tokens = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
        res->logprobs = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!res->tokens || !res->logprobs) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        } else {
            memcpy(res->tokens, b->seq + n_prompt, sizeof(int32_t) * (size_t)n);
            memcpy(res->logprobs, b->lp, sizeof(float) * (size_t)n);
            res->n = n, res->score = b->score, res->stop = b->stop;
        }
    }
    for (int i = 0; h && i < slots; i++)
        free(h[i].seq), free(h[i].lp), free(h[i].text.b);
    for (int i = 0; kv && i < 2 * W; i++)
        lethe_gpt_kv_free(kv[i]);
    free(h), free(kv), free(z), free(cands), free(idx);
    return st;
}

lethe_status lethe_gpt_generate(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                                const lethe_gen_opts *o, lethe_gen_result *res)
{
    memset(res, 0, sizeof *res);
    const lethe_gpt_config *c = &g->cfg;
    if (n_prompt < 1 || n_prompt > c->n_positions)
        return lethe_fail(LETHE_ERR_INVALID,
                          "generate: the prompt has %d tokens (need 1 to n_positions %d)",
                          n_prompt, c->n_positions);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= c->vocab_size)
            return lethe_fail(LETHE_ERR_INVALID,
                              "generate: prompt token %d is outside the vocabulary [0, %d)",
                              prompt[i], c->vocab_size);
    if (o->max_new < 0 || o->beam < 0 || o->top_k < 0 || o->n_stop < 0 ||
        !(o->temperature >= 0.0f) || !(o->top_p >= 0.0f))
        return lethe_fail(LETHE_ERR_INVALID, "generate: max_new, beam, top_k, temperature and "
                                             "top_p must not be negative");
    if (o->n_stop > 0 && !o->tok)
        return lethe_fail(LETHE_ERR_INVALID, "generate: stop strings need a tokenizer");
    if (o->no_cache && o->embed_hook)
        return lethe_fail(LETHE_ERR_INVALID, "generate: the embedding hook needs the cache");
    if (o->no_cache && o->beam > 1)
        return lethe_fail(LETHE_ERR_INVALID, "generate: beam search needs the cache");
    lethe_status st = o->beam > 1 ? gen_beam(g, prompt, n_prompt, o, res)
                                  : gen_single(g, prompt, n_prompt, o, res);
    for (int i = 0; st == LETHE_OK && o->beam > 1 && o->on_token && i < res->n; i++)
        if (res->tokens[i] == o->eos || o->on_token(o->token_ctx, res->tokens[i], res->logprobs[i]))
            break;
    if (st)
        lethe_gen_result_free(res);
    return st;
}

/* ---- scoring ------------------------------------------------------------------ */

void lethe_gpt_logit_moments(const float *logits, int V, double *mu, double *sigma2)
{
    double lse = lethe_vlogsumexp(logits, V), m = 0.0, s2 = 0.0;
    for (int v = 0; v < V; v++) {
        double lp = (double)logits[v] - lse;
        if (!isfinite(lp))
            continue;
        double p = exp(lp);
        m += p * lp;
        s2 += p * lp * lp;
    }
    *mu = m;
    s2 -= m * m;
    *sigma2 = s2 > 0.0 ? s2 : 0.0;
}
