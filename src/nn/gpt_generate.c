/* GPT-2 generation: the key/value cache and its forward (one sequence's
 * rows, or one row of each of several caches: batched decoding), greedy
 * decoding and sampling a step at a time over a batch of sequences
 * (temperature, top-k, top-p), beam search, stop conditions, hooks; and the
 * per-position moments of log p used by scoring. */
#include "lethe/gpt_generate.h"
#include "lethe/gemm.h"
#include "lethe/gpt_quant.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "vmath.h"

/* ---- the key/value cache ------------------------------------------------ */

/* The scratch of a cached forward: the activations of `rows` rows fed at
 * once, and what `segs` caches fed at once need. */
struct lethe_gpt_kv_work {
    int rows, segs;
    float *x, *ln, *qkv, *atty, *fch, *fchg, *mean, *rstd; /* (rows, C or 3C or 4C or 1) */
    float *att;    /* (segs NH, n_positions) attention scores, one row per (cache, head) */
    float *logits; /* (segs, V) the head's output when segs > 1 */
    int *row0;     /* (segs + 1) the first row of each cache */
};

static void work_free_rows(struct lethe_gpt_kv_work *w)
{
    free(w->x), free(w->ln), free(w->qkv), free(w->atty), free(w->fch), free(w->fchg);
    free(w->mean), free(w->rstd);
    w->x = w->ln = w->qkv = w->atty = w->fch = w->fchg = w->mean = w->rstd = NULL;
    w->rows = 0;
}

static void work_free_segs(struct lethe_gpt_kv_work *w)
{
    free(w->att), free(w->logits), free(w->row0);
    w->att = w->logits = NULL, w->row0 = NULL;
    w->segs = 0;
}

static void work_free(struct lethe_gpt_kv_work *w)
{
    if (!w)
        return;
    work_free_rows(w);
    work_free_segs(w);
    free(w);
}

/* *wp (made when NULL) grown to hold forwards of `rows` rows into `segs`
 * caches of model g. On failure *wp holds less but stays valid. */
static lethe_status work_reserve(struct lethe_gpt_kv_work **wp, const lethe_gpt *g, int rows,
                                 int segs)
{
    struct lethe_gpt_kv_work *w = *wp;
    if (w && rows <= w->rows && segs <= w->segs)
        return LETHE_OK;
    if (!w && !(w = *wp = calloc(1, sizeof *w)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    const lethe_gpt_config *c = &g->cfg;
    size_t C = (size_t)c->n_embd;
    if (rows > w->rows) {
        size_t N = (size_t)rows;
        work_free_rows(w);
        w->x = malloc(sizeof(float) * N * C);
        w->ln = malloc(sizeof(float) * N * C);
        w->qkv = malloc(sizeof(float) * N * 3 * C);
        w->atty = malloc(sizeof(float) * N * C);
        w->fch = malloc(sizeof(float) * N * 4 * C);
        w->fchg = malloc(sizeof(float) * N * 4 * C);
        w->mean = malloc(sizeof(float) * N);
        w->rstd = malloc(sizeof(float) * N);
        if (!w->x || !w->ln || !w->qkv || !w->atty || !w->fch || !w->fchg || !w->mean ||
            !w->rstd) {
            work_free_rows(w);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        w->rows = rows;
    }
    if (segs > w->segs) {
        size_t S = (size_t)segs;
        work_free_segs(w);
        w->att = malloc(sizeof(float) * S * (size_t)c->n_head * (size_t)c->n_positions);
        w->logits = segs > 1 ? malloc(sizeof(float) * S * (size_t)c->vocab_size) : NULL;
        w->row0 = malloc(sizeof(int) * (S + 1));
        if (!w->att || (segs > 1 && !w->logits) || !w->row0) {
            work_free_segs(w);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        w->segs = segs;
    }
    return LETHE_OK;
}

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
    if (!kv->k || !kv->v || !kv->logits) {
        lethe_gpt_kv_free(kv);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return kv;
}

void lethe_gpt_kv_free(lethe_gpt_kv *kv)
{
    if (!kv)
        return;
    work_free(kv->work);
    free(kv->k), free(kv->v), free(kv->logits);
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

/* Products of at most this many rows go row by row through lethe_gemv,
 * which reads the weights in place: with CBLAS, sgemm first copies all of
 * them into panels, which two or three rows do not repay. */
#define GEMV_ROWS 3

/* out = res + b + inp w, as the full forward forms its residual sums; few
 * rows (decoding steps) through lethe_gemv. */
static void residual_proj(float *out, const float *inp, const float *w, const lethe_qmat *qw,
                          const float *b, int N, int IC, int C)
{
    for (long n = 0; n < N; n++)
        for (int k = 0; k < C; k++)
            out[n * C + k] += b[k];
    if (N > GEMV_ROWS)
        lethe_gemm(0, 0, N, C, IC, 1.0f, inp, IC, w, C, 1.0f, out, C);
    else
        for (long n = 0; n < N; n++)
            if (qw)
                lethe_qgemv(qw, inp + n * IC, out + n * C, 1);
            else
                lethe_gemv(0, C, IC, 1.0f, inp + n * IC, w, C, 1.0f, out + n * C);
}

/* out = b + inp w (lethe_conv1d_forward); few rows through lethe_gemv, or
 * from quantized weights qw (when not NULL) through lethe_qgemv. */
static void proj(float *out, const float *inp, const float *w, const lethe_qmat *qw,
                 const float *b, int N, int IC, int OC)
{
    if (N > GEMV_ROWS) {
        lethe_conv1d_forward(out, inp, w, b, N, IC, OC);
        return;
    }
    for (long n = 0; n < N; n++) {
        if (b)
            memcpy(out + n * OC, b, sizeof(float) * (size_t)OC);
        if (qw)
            lethe_qgemv(qw, inp + n * IC, out + n * OC, b != NULL);
        else
            lethe_gemv(0, OC, IC, 1.0f, inp + n * IC, w, OC, b ? 1.0f : 0.0f, out + n * OC);
    }
}

/* Block l's quantized matrix k, or NULL for a model without them. */
static const lethe_qmat *qmat(const lethe_gpt *g, int l, int k)
{
    return g->quant ? lethe_gpt_quant_block(g->quant, l, k) : NULL;
}

/* Head h of the cached attention of one cache, for its n rows at positions
 * p0.. (their keys and values already appended to K, Vc (cap, C)): qkv
 * (n, 3C) in, the head's columns of atty (n, C) out; s (p0 + n) scores. */
static void attend_head(float *atty, const float *qkv, const float *K, const float *Vc, int n,
                        int p0, int h, int C, int NH, float *s)
{
    const int hs = C / NH;
    const float scale = 1.0f / sqrtf((float)hs);
    for (int i = 0; i < n; i++) {
        const float *q = qkv + (long)i * 3 * C + (long)h * hs;
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
        float *y = atty + (long)i * C + (long)h * hs;
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

/* Task (cache s, head h) of a forward's attention at layer l. */
static void attend_task(struct lethe_gpt_kv_work *w, lethe_gpt_kv *const *kv, int l, int task,
                        int C, int NH)
{
    const int s = task / NH, h = task % NH, r0 = w->row0[s], n = w->row0[s + 1] - r0;
    const lethe_gpt_kv *c = kv[s];
    const long plane = (long)c->cap * C;
    attend_head(w->atty + (long)r0 * C, w->qkv + (long)r0 * 3 * C, c->k + l * plane,
                c->v + l * plane, n, c->len, h, C, NH,
                w->att + (long)task * c->g->cfg.n_positions);
}

/* One forward of S caches of model g through w (reserved for them): cache
 * kv[s] takes cnt[s] tokens (cnt NULL: one each), consecutive in tokens, at
 * its positions kv[s]->len onwards; their keys and values are appended and
 * the next-token logits after its last one left in kv[s]->logits. The rows
 * of every cache go through each product together; attention runs per
 * cache over its own keys. hook (may be NULL) sees each cache's input
 * embeddings. The caller has checked the caches (distinct, of g, with
 * room) and the tokens. With one cache this is the forward of one sequence,
 * row for row. */
static void forward_caches(const lethe_gpt *g, struct lethe_gpt_kv_work *w,
                           lethe_gpt_kv *const *kv, const int *cnt, int S,
                           const int32_t *tokens, lethe_gpt_embed_hook hook, void *hook_ctx)
{
    const lethe_gpt_config *c = &g->cfg;
    const int C = c->n_embd, L = c->n_layer, V = c->vocab_size, NH = c->n_head;
    const float *wte = g->params + g->tensors[0].offset, *wpe = g->params + g->tensors[1].offset;
    long work = 0; /* attention multiply-adds / C: whether threads are worth it */
    w->row0[0] = 0;
    for (int s = 0; s < S; s++) {
        int n = cnt ? cnt[s] : 1;
        w->row0[s + 1] = w->row0[s] + n;
        work += (long)n * (kv[s]->len + n);
    }
    const int N = w->row0[S];
    LETHE_ASSERT(N <= w->rows && S <= w->segs);
    for (int s = 0; s < S; s++) {
        const int r0 = w->row0[s], n = w->row0[s + 1] - r0, p0 = kv[s]->len;
        for (int i = 0; i < n; i++) {
            const float *e = wte + (long)tokens[r0 + i] * C, *p = wpe + (long)(p0 + i) * C;
            float *x = w->x + (long)(r0 + i) * C;
            for (int k = 0; k < C; k++)
                x[k] = e[k] + p[k];
        }
        if (hook)
            hook(hook_ctx, p0, n, tokens + r0, w->x + (long)r0 * C, C);
    }
    for (int l = 0; l < L; l++) {
        lethe_gpt_block p = lethe_gpt_block_params(g, l);
        lethe_layernorm_forward(w->ln, w->mean, w->rstd, w->x, p.ln_1_w, p.ln_1_b, N, C);
        proj(w->qkv, w->ln, p.attn_w, qmat(g, l, LETHE_QUANT_ATTN), p.attn_b, N, C, 3 * C);
        for (int s = 0; s < S; s++) {
            const long plane = (long)kv[s]->cap * C;
            float *K = kv[s]->k + l * plane, *Vc = kv[s]->v + l * plane;
            for (int r = w->row0[s], pos = kv[s]->len; r < w->row0[s + 1]; r++, pos++) {
                memcpy(K + (long)pos * C, w->qkv + (long)r * 3 * C + C, sizeof(float) * C);
                memcpy(Vc + (long)pos * C, w->qkv + (long)r * 3 * C + 2 * C, sizeof(float) * C);
            }
        }
        PAR_FOR(work * C > (1L << 16), int, task, S * NH, attend_task(w, kv, l, task, C, NH));
        residual_proj(w->x, w->atty, p.attn_proj_w, qmat(g, l, LETHE_QUANT_ATTN_PROJ),
                      p.attn_proj_b, N, C, C);
        lethe_layernorm_forward(w->ln, w->mean, w->rstd, w->x, p.ln_2_w, p.ln_2_b, N, C);
        proj(w->fch, w->ln, p.fc_w, qmat(g, l, LETHE_QUANT_FC), p.fc_b, N, C, 4 * C);
        lethe_gelu_tanh_forward(w->fchg, w->fch, (long)N * 4 * C);
        residual_proj(w->x, w->fchg, p.fc_proj_w, qmat(g, l, LETHE_QUANT_FC_PROJ),
                      p.fc_proj_b, N, 4 * C, C);
    }
    /* ln_f and the tied head, for each cache's last row only */
    const lethe_gpt_tensor *tf = &g->tensors[g->n_tensors - 2];
    for (int s = 0; s < S; s++)
        lethe_layernorm_forward(w->ln + (long)s * C, w->mean + s, w->rstd + s,
                                w->x + (long)(w->row0[s + 1] - 1) * C,
                                g->params + tf[0].offset, g->params + tf[1].offset, 1, C);
    float *out = S == 1 ? kv[0]->logits : w->logits;
    /* few rows: each straight into its cache's logits (a row at w->logits +
     * s V is misaligned for odd V, and OpenBLAS's sgemv then ran at half
     * speed) */
    if (S > GEMV_ROWS)
        lethe_gemm(0, 1, S, V, C, 1.0f, w->ln, C, wte, C, 0.0f, out, V);
    else
        for (int s = 0; s < S; s++)
            if (g->quant)
                lethe_qgemv(&g->quant->mats[0], w->ln + (long)s * C, kv[s]->logits, 0);
            else
                lethe_gemv(1, V, C, 1.0f, w->ln + (long)s * C, wte, C, 0.0f, kv[s]->logits);
    for (int s = 0; s < S; s++) {
        if (S > GEMV_ROWS)
            memcpy(kv[s]->logits, w->logits + (long)s * V, sizeof(float) * (size_t)V);
        kv[s]->len += w->row0[s + 1] - w->row0[s];
    }
}

static lethe_status check_tokens(const int32_t *tokens, int n, int V)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lethe_fail(LETHE_ERR_INVALID,
                              "GPT cache: token %d is outside the vocabulary [0, %d)", tokens[i],
                              V);
    return LETHE_OK;
}

lethe_status lethe_gpt_kv_forward(lethe_gpt_kv *kv, const int32_t *tokens, int n,
                                  lethe_gpt_embed_hook hook, void *hook_ctx)
{
    if (n < 1 || kv->len + n > kv->cap)
        return lethe_fail(LETHE_ERR_INVALID,
                          "GPT cache: %d positions after %d exceed n_positions %d", n, kv->len,
                          kv->cap);
    lethe_status st = check_tokens(tokens, n, kv->g->cfg.vocab_size);
    if (st == LETHE_OK)
        st = work_reserve(&kv->work, kv->g, n, 1);
    if (st == LETHE_OK)
        forward_caches(kv->g, kv->work, &kv, &n, 1, tokens, hook, hook_ctx);
    return st;
}

/* ---- the batch workspace ---------------------------------------------------- */

struct lethe_gen_batch {
    const lethe_gpt *g;
    struct lethe_gpt_kv_work *work; /* the forward's activations */
    int cap;                        /* entries in kv and tok */
    lethe_gpt_kv **kv;              /* (cap) the caches a step feeds */
    int32_t *tok;                   /* (cap) their tokens */
    int *idx;                       /* (V) the sampler's order */
    double *prob;                   /* (V) the sampler's probabilities */
};

/* w grown to B sequences. On failure w holds less but stays valid. */
static lethe_status batch_reserve(lethe_gen_batch_t *w, int B)
{
    lethe_status st = work_reserve(&w->work, w->g, B, B);
    if (st || B <= w->cap)
        return st;
    lethe_gpt_kv **kv = realloc(w->kv, sizeof *kv * (size_t)B);
    if (kv)
        w->kv = kv;
    int32_t *tok = realloc(w->tok, sizeof *tok * (size_t)B);
    if (tok)
        w->tok = tok;
    if (!kv || !tok)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    w->cap = B;
    return LETHE_OK;
}

lethe_gen_batch_t *lethe_gen_batch_new(const lethe_gpt *g, int max_b)
{
    if (max_b < 1) {
        lethe_fail(LETHE_ERR_INVALID, "generate: a batch of %d sequences (need 1 or more)",
                   max_b);
        return NULL;
    }
    lethe_gen_batch_t *w = calloc(1, sizeof *w);
    if (!w) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    w->g = g;
    size_t V = (size_t)g->cfg.vocab_size;
    w->idx = malloc(sizeof(int) * V);
    w->prob = malloc(sizeof(double) * V);
    if (!w->idx || !w->prob || batch_reserve(w, max_b)) {
        lethe_gen_batch_free(w);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return w;
}

void lethe_gen_batch_free(lethe_gen_batch_t *w)
{
    if (!w)
        return;
    work_free(w->work);
    free(w->kv), free(w->tok), free(w->idx), free(w->prob);
    free(w);
}

lethe_status lethe_gpt_kv_forward_batch(lethe_gen_batch_t *w, lethe_gpt_kv *const *kv,
                                        const int32_t *tokens, int B)
{
    if (B < 1)
        return lethe_fail(LETHE_ERR_INVALID, "GPT cache: a batch of %d caches (need 1 or more)",
                          B);
    for (int b = 0; b < B; b++) {
        if (kv[b]->g != w->g)
            return lethe_fail(LETHE_ERR_INVALID,
                              "GPT cache: cache %d of the batch belongs to another model", b);
        if (kv[b]->len + 1 > kv[b]->cap)
            return lethe_fail(LETHE_ERR_INVALID,
                              "GPT cache: cache %d of the batch is full (n_positions %d)", b,
                              kv[b]->cap);
        for (int a = 0; a < b; a++)
            if (kv[a] == kv[b])
                return lethe_fail(LETHE_ERR_INVALID,
                                  "GPT cache: caches %d and %d of the batch are the same", a, b);
    }
    lethe_status st = check_tokens(tokens, B, w->g->cfg.vocab_size);
    if (st == LETHE_OK)
        st = work_reserve(&w->work, w->g, B, B);
    if (st == LETHE_OK)
        forward_caches(w->g, w->work, kv, NULL, B, tokens, NULL, NULL);
    return st;
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

/* ---- greedy and sampling, a step at a time ---------------------------------- */

struct lethe_gen_seq {
    const lethe_gpt *g;
    lethe_gen_opts o;     /* the caller's, copied */
    lethe_gpt_kv *kv;     /* the cache (NULL with no_cache) */
    lethe_gpt_ctx *ctx;   /* no_cache: the full forward's activations */
    float *z;             /* (V) the next-token logits: kv->logits, or owned with no_cache */
    int32_t *seq;         /* (n_prompt + room) the prompt and the tokens chosen */
    int len;              /* tokens in seq */
    lethe_gen_result res; /* the new tokens so far (tokens, logprobs (max_new)), score, stop */
    lethe_rng r;          /* sampling: Philox (seed, stream 0) */
    textbuf text;         /* stop strings: the text generated so far */
    int done;
    lethe_status err;     /* a failure that finished the sequence */
    char err_msg[256];    /* its detail */
};

static lethe_status check_hooked(const float *z, int V, double *lse)
{
    *lse = lethe_vlogsumexp(z, V);
    if (!isfinite(*lse))
        return lethe_fail(LETHE_ERR_INVALID, "generate: no finite logit left to choose from");
    return LETHE_OK;
}

/* The checks lethe_gpt_generate and lethe_gen_seq_new share. */
static lethe_status check_args(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                               const lethe_gen_opts *o)
{
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
    return LETHE_OK;
}

/* no_cache: z = the next-token logits of seq[0..len) from a full forward. */
static lethe_status seq_full_forward(lethe_gen_seq_t *s)
{
    int V = s->g->cfg.vocab_size;
    lethe_status st = lethe_gpt_ctx_forward(s->ctx, s->g, s->seq, NULL, 1, s->len);
    if (st == LETHE_OK)
        memcpy(s->z, s->ctx->logits + (long)(s->len - 1) * V, sizeof(float) * (size_t)V);
    return st;
}

/* Finish s with the failure st (its detail kept for lethe_gen_seq_result). */
static void seq_fail(lethe_gen_seq_t *s, lethe_status st)
{
    s->err = st;
    snprintf(s->err_msg, sizeof s->err_msg, "%s", lethe_error_detail());
    s->done = 1;
}

/* Whether s can take no more tokens: max_new, then the context limit. */
static void seq_check_room(lethe_gen_seq_t *s)
{
    if (s->res.n >= s->o.max_new)
        s->res.stop = LETHE_GEN_MAX, s->done = 1;
    else if (s->len >= s->g->cfg.n_positions)
        s->res.stop = LETHE_GEN_CONTEXT, s->done = 1;
}

/* Arguments checked. */
static lethe_status seq_new(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                            const lethe_gen_opts *o, lethe_gen_seq_t **out)
{
    *out = NULL;
    const int V = g->cfg.vocab_size, npos = g->cfg.n_positions;
    const int room = o->max_new < npos - n_prompt ? o->max_new : npos - n_prompt;
    const size_t n_new = (size_t)(o->max_new > 0 ? o->max_new : 1);
    lethe_gen_seq_t *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s->g = g, s->o = *o;
    s->seq = malloc(sizeof(int32_t) * (size_t)(n_prompt + room));
    s->res.tokens = malloc(sizeof(int32_t) * n_new);
    s->res.logprobs = malloc(sizeof(float) * n_new);
    if (o->no_cache) {
        s->ctx = lethe_gpt_ctx_new();
        s->z = malloc(sizeof(float) * (size_t)V);
    } else if ((s->kv = lethe_gpt_kv_new(g))) {
        s->z = s->kv->logits;
    }
    lethe_status st = LETHE_OK;
    if (!s->seq || !s->res.tokens || !s->res.logprobs || !s->z || (o->no_cache && !s->ctx))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK) {
        memcpy(s->seq, prompt, sizeof(int32_t) * (size_t)n_prompt);
        s->len = n_prompt;
        s->r = lethe_rng_init(o->seed, 0);
        s->res.stop = LETHE_GEN_MAX;
        seq_check_room(s);
    }
    if (st == LETHE_OK && !s->done) {
        if (s->kv) {
            st = lethe_gpt_kv_forward(s->kv, prompt, n_prompt, o->embed_hook, o->embed_ctx);
            /* the prompt's scratch is not needed again: steps run in a batch's */
            work_free(s->kv->work);
            s->kv->work = NULL;
        } else {
            st = seq_full_forward(s);
        }
    }
    if (st) {
        lethe_gen_seq_free(s);
        return st;
    }
    *out = s;
    return LETHE_OK;
}

lethe_status lethe_gen_seq_new(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                               const lethe_gen_opts *o, lethe_gen_seq_t **out)
{
    *out = NULL;
    lethe_status st = check_args(g, prompt, n_prompt, o);
    if (st == LETHE_OK && o->beam > 1)
        st = lethe_fail(LETHE_ERR_INVALID, "generate: beam search does not run a step at a "
                                           "time (lethe_gpt_generate runs it)");
    return st ? st : seq_new(g, prompt, n_prompt, o, out);
}

void lethe_gen_seq_free(lethe_gen_seq_t *s)
{
    if (!s)
        return;
    lethe_gpt_kv_free(s->kv);
    lethe_gpt_ctx_free(s->ctx);
    if (!s->kv)
        free(s->z);
    free(s->seq), free(s->text.b);
    lethe_gen_result_free(&s->res);
    free(s);
}

int lethe_gen_seq_done(const lethe_gen_seq_t *s) { return s->done; }

/* Choose s's next token from s->z (w: the sampler's scratch) and apply the
 * stop conditions. */
static void seq_choose(lethe_gen_seq_t *s, lethe_gen_batch_t *w)
{
    const lethe_gen_opts *o = &s->o;
    const int V = s->g->cfg.vocab_size;
    float *z = s->z;
    if (o->logits_hook)
        o->logits_hook(o->logits_ctx, z, V, s->seq, s->len, 0);
    double lse;
    lethe_status st = check_hooked(z, V, &lse);
    if (st) {
        seq_fail(s, st);
        return;
    }
    int t = o->temperature > 0.0f ? sample(z, V, o, &s->r, w->idx, w->prob) : argmax(z, V);
    lethe_gen_result *res = &s->res;
    s->seq[s->len++] = t;
    res->tokens[res->n] = t;
    res->logprobs[res->n] = (float)((double)z[t] - lse);
    res->score += res->logprobs[res->n];
    res->n++;
    if (t == o->eos) {
        res->stop = LETHE_GEN_EOS, s->done = 1;
        return;
    }
    if (o->on_token && o->on_token(o->token_ctx, t, res->logprobs[res->n - 1])) {
        res->stop = LETHE_GEN_CANCEL, s->done = 1;
        return;
    }
    if (o->n_stop) {
        if ((st = text_append(&s->text, o->tok, t))) {
            seq_fail(s, st);
            return;
        }
        if (text_stops(&s->text, o)) {
            res->stop = LETHE_GEN_STOP, s->done = 1;
            return;
        }
    }
    seq_check_room(s);
}

lethe_status lethe_gen_step(lethe_gen_batch_t *w, lethe_gen_seq_t *const *seqs, int B)
{
    if (B < 0)
        return lethe_fail(LETHE_ERR_INVALID, "generate: a step of %d sequences", B);
    for (int b = 0; b < B; b++) {
        if (!seqs[b])
            return lethe_fail(LETHE_ERR_INVALID, "generate: sequence %d of the step is NULL", b);
        if (seqs[b]->g != w->g)
            return lethe_fail(LETHE_ERR_INVALID,
                              "generate: sequence %d of the step belongs to another model", b);
        for (int a = 0; a < b; a++)
            if (seqs[a] == seqs[b])
                return lethe_fail(LETHE_ERR_INVALID,
                                  "generate: sequences %d and %d of the step are the same", a, b);
    }
    lethe_status st = B > 0 ? batch_reserve(w, B) : LETHE_OK;
    if (st)
        return st;
    int n = 0;
    for (int b = 0; b < B; b++) {
        lethe_gen_seq_t *s = seqs[b];
        if (s->done)
            continue;
        seq_choose(s, w);
        if (s->done)
            continue;
        if (s->kv) {
            w->kv[n] = s->kv;
            w->tok[n++] = s->seq[s->len - 1];
        } else if ((st = seq_full_forward(s))) {
            seq_fail(s, st);
        }
    }
    /* a few sequences step one by one: with CBLAS, a forward of two or three
     * rows took longer than as many forwards of one */
    if (n > GEMV_ROWS)
        forward_caches(w->g, w->work, w->kv, NULL, n, w->tok, NULL, NULL);
    else
        for (int i = 0; i < n; i++)
            forward_caches(w->g, w->work, w->kv + i, NULL, 1, w->tok + i, NULL, NULL);
    return LETHE_OK;
}

lethe_status lethe_gen_seq_result(lethe_gen_seq_t *s, lethe_gen_result *res)
{
    memset(res, 0, sizeof *res);
    if (!s->done)
        return lethe_fail(LETHE_ERR_INVALID, "generate: the sequence is not finished");
    if (s->err)
        return lethe_fail(s->err, "%s", s->err_msg);
    *res = s->res;
    s->res.tokens = NULL, s->res.logprobs = NULL, s->res.n = 0;
    return LETHE_OK;
}

/* Greedy decoding and sampling: one sequence stepped alone. */
static lethe_status gen_single(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                               const lethe_gen_opts *o, lethe_gen_result *res)
{
    lethe_gen_seq_t *s = NULL;
    lethe_gen_batch_t *w = NULL;
    lethe_status st = seq_new(g, prompt, n_prompt, o, &s);
    if (st == LETHE_OK && !s->done && !(w = lethe_gen_batch_new(g, 1)))
        st = LETHE_ERR_NOMEM;
    while (st == LETHE_OK && !s->done)
        st = lethe_gen_step(w, &s, 1);
    if (st == LETHE_OK)
        st = lethe_gen_seq_result(s, res);
    lethe_gen_seq_free(s);
    lethe_gen_batch_free(w);
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
    lethe_status st = check_args(g, prompt, n_prompt, o);
    if (st)
        return st;
    st = o->beam > 1 ? gen_beam(g, prompt, n_prompt, o, res)
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
