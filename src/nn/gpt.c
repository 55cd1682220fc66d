/* GPT-2: configuration, the named parameter arena, initialisation, forward
 * and backward through the kernels of gpt_kernels.c, safetensors io. */
#include "lethe/gpt.h"
#include "lethe/gemm.h"
#include "lethe/gpt_quant.h"
#include "lethe/mem.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of the logits' gradient formed at once in backward: (LOGIT_CHUNK, V)
 * scratch instead of (N, V). The head's products are split at this many rows
 * (a multiple of the GEMM's k-pass), which does not change their sums. */
#define LOGIT_CHUNK 256

static void ctx_release(lethe_gpt_ctx *x);

/* ---- configuration ---------------------------------------------------- */

lethe_status lethe_gpt_preset(const char *name, lethe_gpt_config *cfg)
{
    static const struct {
        const char *name;
        lethe_gpt_config cfg;
    } presets[] = {
        {"tiny", {2048, 256, 128, 4, 4}},
        {"small", {8192, 512, 256, 10, 8}},
        {"gpt2", {50257, 1024, 768, 12, 12}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(name, presets[i].name)) {
            *cfg = presets[i].cfg;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID, "unknown GPT preset '%s' (expected tiny, small or gpt2)",
                      name);
}

lethe_status lethe_gpt_config_check(const lethe_gpt_config *cfg)
{
    const char *bad = cfg->vocab_size <= 0    ? "vocab_size"
                      : cfg->n_positions <= 0 ? "n_positions"
                      : cfg->n_embd <= 0      ? "n_embd"
                      : cfg->n_layer <= 0     ? "n_layer"
                      : cfg->n_head <= 0      ? "n_head"
                                              : NULL;
    if (bad)
        return lethe_fail(LETHE_ERR_INVALID, "GPT config: %s must be positive", bad);
    if (cfg->n_embd % cfg->n_head)
        return lethe_fail(LETHE_ERR_INVALID, "GPT config: n_embd %d is not a multiple of n_head %d",
                          cfg->n_embd, cfg->n_head);
    return LETHE_OK;
}

long lethe_gpt_config_params(const lethe_gpt_config *c)
{
    long C = c->n_embd;
    return (long)c->vocab_size * C + (long)c->n_positions * C +
           (long)c->n_layer * (12 * C * C + 13 * C) + 2 * C;
}

/* ---- the tensor table ------------------------------------------------- */

/* A block's tensors in arena order: name suffix, rows and columns in units
 * of C (0 columns: a vector). */
static const struct {
    const char *suffix;
    int rows, cols;
} block_tensors[12] = {
    {"ln_1.weight", 1, 0},  {"ln_1.bias", 1, 0},       {"attn.c_attn.weight", 1, 3},
    {"attn.c_attn.bias", 3, 0}, {"attn.c_proj.weight", 1, 1}, {"attn.c_proj.bias", 1, 0},
    {"ln_2.weight", 1, 0},  {"ln_2.bias", 1, 0},       {"mlp.c_fc.weight", 1, 4},
    {"mlp.c_fc.bias", 4, 0}, {"mlp.c_proj.weight", 4, 1}, {"mlp.c_proj.bias", 1, 0},
};

static void add_tensor(lethe_gpt *g, const char *name, long rows, long cols)
{
    lethe_gpt_tensor *t = &g->tensors[g->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->offset = g->n_params;
    t->rank = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols ? cols : 1;
    t->numel = rows * t->shape[1];
    g->n_params += t->numel;
}

static void build_table(lethe_gpt *g)
{
    const lethe_gpt_config *c = &g->cfg;
    long C = c->n_embd;
    char name[LETHE_GPT_NAME_MAX];
    add_tensor(g, "wte.weight", c->vocab_size, C);
    add_tensor(g, "wpe.weight", c->n_positions, C);
    for (int l = 0; l < c->n_layer; l++)
        for (int i = 0; i < 12; i++) {
            snprintf(name, sizeof name, "h.%d.%s", l, block_tensors[i].suffix);
            add_tensor(g, name, block_tensors[i].rows * C, block_tensors[i].cols * C);
        }
    add_tensor(g, "ln_f.weight", C, 0);
    add_tensor(g, "ln_f.bias", C, 0);
}

lethe_gpt *lethe_gpt_init(const lethe_gpt_config *cfg)
{
    if (lethe_gpt_config_check(cfg) != LETHE_OK)
        return NULL;
    lethe_gpt *g = calloc(1, sizeof *g);
    if (!g) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    g->cfg = *cfg;
    g->tensors = calloc((size_t)(4 + 12 * cfg->n_layer), sizeof *g->tensors);
    if (!g->tensors) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    build_table(g);
    LETHE_ASSERT(g->n_params == lethe_gpt_config_params(cfg));
    g->params = lethe_calloc((size_t)g->n_params, sizeof(float));
    g->grads = lethe_calloc((size_t)g->n_params, sizeof(float));
    if (!g->params || !g->grads) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld GPT parameters", g->n_params);
        goto fail;
    }
    return g;
fail:
    lethe_gpt_free(g);
    return NULL;
}

void lethe_gpt_free(lethe_gpt *g)
{
    if (!g)
        return;
    lethe_free(g->params);
    lethe_free(g->grads);
    lethe_gpt_quant_free(g->quant);
    ctx_release(&g->own);
    free(g->tensors);
    free(g);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void lethe_gpt_init_params(lethe_gpt *g, uint64_t seed)
{
    double std_proj = 0.02 / sqrt(2.0 * g->cfg.n_layer);
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        float *p = g->params + t->offset;
        if (t->rank == 1) {
            /* LayerNorm weights 1; biases (LayerNorm's and the projections') 0 */
            float v = ends_with(t->name, "ln_1.weight") || ends_with(t->name, "ln_2.weight") ||
                              !strcmp(t->name, "ln_f.weight")
                          ? 1.0f
                          : 0.0f;
            for (long k = 0; k < t->numel; k++)
                p[k] = v;
            continue;
        }
        double std = ends_with(t->name, "c_proj.weight") ? std_proj : 0.02;
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        long pairs = (t->numel + 1) / 2;
        /* Box-Muller on block k of stream i: two 53-bit uniforms give the
         * cosine (element 2k) and sine (element 2k + 1) normals. Each block
         * stands alone, so threads may share them out. */
#pragma omp parallel for schedule(static) if (pairs > (1L << 14))
        for (long k = 0; k < pairs; k++) {
            uint32_t ctr[4] = {(uint32_t)k, (uint32_t)((uint64_t)k >> 32), (uint32_t)i, 0}, w[4];
            lethe_philox4x32(ctr, key, w);
            double u1 = 1.0 - (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1.0p-53;
            double u2 = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) * 0x1.0p-53;
            double r = std * sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
            p[2 * k] = (float)(r * cos(a));
            if (2 * k + 1 < t->numel)
                p[2 * k + 1] = (float)(r * sin(a));
        }
    }
}

const lethe_gpt_tensor *lethe_gpt_find(const lethe_gpt *g, const char *name)
{
    if (!strncmp(name, "transformer.", 12))
        name += 12;
    for (int i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

float *lethe_gpt_param(const lethe_gpt *g, const char *name, long shape[2], int *rank)
{
    const lethe_gpt_tensor *t = lethe_gpt_find(g, name);
    if (!t)
        return NULL;
    if (shape)
        shape[0] = t->shape[0], shape[1] = t->shape[1];
    if (rank)
        *rank = t->rank;
    return g->params + t->offset;
}

/* Block l's views into base, an array of the arena's layout. */
static lethe_gpt_block block_in(const lethe_gpt *g, float *base, int l)
{
    LETHE_ASSERT(l >= 0 && l < g->cfg.n_layer);
    const lethe_gpt_tensor *t = &g->tensors[2 + 12 * l];
    lethe_gpt_block b = {
        base + t[0].offset, base + t[1].offset, base + t[2].offset,  base + t[3].offset,
        base + t[4].offset, base + t[5].offset, base + t[6].offset,  base + t[7].offset,
        base + t[8].offset, base + t[9].offset, base + t[10].offset, base + t[11].offset,
    };
    return b;
}

lethe_gpt_block lethe_gpt_block_params(const lethe_gpt *g, int l)
{
    return block_in(g, g->params, l);
}

void lethe_gpt_zero_grad(lethe_gpt *g)
{
    memset(g->grads, 0, sizeof(float) * (size_t)g->n_params);
}

/* ---- activations ------------------------------------------------------ */

/* Carve the activation and scratch blocks of x for capacity (B, T) of
 * architecture c; with a base NULL only count. Returns the floats each
 * block needs. */
static void layout(lethe_gpt_ctx *x, const lethe_gpt_config *c, int B, int T, float *acts,
                   long *n_acts, float *work, long *n_work)
{
    long C = c->n_embd, L = c->n_layer, V = c->vocab_size, NH = c->n_head;
    long N = (long)B * T, used = 0;
#define CARVE(base, ptr, count)                         \
    do {                                                \
        if (base)                                       \
            x->ptr = (base) + used;                     \
        used += ((count) + 15) / 16 * 16; /* 64-byte aligned */ \
    } while (0)
    CARVE(acts, encoded, N * C);
    CARVE(acts, ln1, L * N * C);
    CARVE(acts, ln1_mean, L * N);
    CARVE(acts, ln1_rstd, L * N);
    CARVE(acts, qkv, L * N * 3 * C);
    CARVE(acts, att, L * B * NH * T * T);
    CARVE(acts, atty, L * N * C);
    CARVE(acts, res2, L * N * C);
    CARVE(acts, ln2, L * N * C);
    CARVE(acts, ln2_mean, L * N);
    CARVE(acts, ln2_rstd, L * N);
    CARVE(acts, fch, L * N * 4 * C);
    CARVE(acts, fch_gelu, L * N * 4 * C);
    CARVE(acts, res3, L * N * C);
    CARVE(acts, lnf, N * C);
    CARVE(acts, lnf_mean, N);
    CARVE(acts, lnf_rstd, N);
    CARVE(acts, logits, N * V);
    CARVE(acts, lse, N);
    CARVE(acts, logprobs, N);
    *n_acts = used;
    used = 0;
    CARVE(work, dres, N * C);
    CARVE(work, dln, N * C);
    CARVE(work, dqkv, N * 3 * C);
    CARVE(work, datty, N * C);
    CARVE(work, datt, B * NH * T * T);
    CARVE(work, dfch, N * 4 * C);
    CARVE(work, dlogits, (N < LOGIT_CHUNK ? N : LOGIT_CHUNK) * V);
    CARVE(work, dloss, N);
    *n_work = used;
#undef CARVE
}

static void ctx_release(lethe_gpt_ctx *x)
{
    lethe_free(x->acts);
    lethe_free(x->work);
    free(x->tokens);
    free(x->targets);
    memset(x, 0, sizeof *x);
}

/* Room in x for B sequences of T tokens of architecture c, with the
 * backward's scratch when work is set. */
static lethe_status reserve(lethe_gpt_ctx *x, const lethe_gpt_config *c, int B, int T,
                            int work)
{
    if (x->acts && memcmp(&x->acts_cfg, c, sizeof *c))
        ctx_release(x); /* another architecture: start over */
    if (x->acts && B <= x->cap_B && T <= x->cap_T && (x->has_work || !work))
        return LETHE_OK;
    int cB = B > x->cap_B ? B : x->cap_B, cT = T > x->cap_T ? T : x->cap_T;
    work = work || x->has_work;
    ctx_release(x);
    long n_acts, n_work;
    layout(x, c, cB, cT, NULL, &n_acts, NULL, &n_work);
    x->acts = lethe_calloc((size_t)n_acts, sizeof(float));
    x->work = work ? lethe_calloc((size_t)n_work, sizeof(float)) : NULL;
    x->tokens = calloc((size_t)cB * cT, sizeof(int32_t));
    x->targets = calloc((size_t)cB * cT, sizeof(int32_t));
    if (!x->acts || (work && !x->work) || !x->tokens || !x->targets) {
        ctx_release(x);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for GPT activations (B %d, T %d)", cB,
                          cT);
    }
    layout(x, c, cB, cT, x->acts, &n_acts, x->work, &n_work);
    x->acts_cfg = *c;
    x->cap_B = cB, x->cap_T = cT, x->has_work = work;
    return LETHE_OK;
}

lethe_gpt_ctx *lethe_gpt_ctx_new(void)
{
    lethe_gpt_ctx *x = calloc(1, sizeof *x);
    if (!x)
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return x;
}

void lethe_gpt_ctx_free(lethe_gpt_ctx *x)
{
    if (!x)
        return;
    ctx_release(x);
    free(x);
}

/* ---- forward ---------------------------------------------------------- */

/* The forward of g into x (with the backward's scratch when work is set). */
/* The forward pass; with stop >= 0 it ends once hidden state `stop`
 * (lethe_gpt_hidden's numbering) is computed, leaving logits, logprobs and
 * loss unset (zero targets). */
static lethe_status forward(lethe_gpt_ctx *x, const lethe_gpt *g, const int32_t *tokens,
                            const int32_t *targets, int B, int T, int work, int stop)
{
    const lethe_gpt_config *c = &g->cfg;
    int C = c->n_embd, L = c->n_layer, V = c->vocab_size, NH = c->n_head;
    x->B = x->T = 0;
    if (B <= 0 || T <= 0 || T > c->n_positions)
        return lethe_fail(LETHE_ERR_INVALID,
                          "GPT forward: batch %d x %d (need B >= 1, 1 <= T <= n_positions %d)", B,
                          T, c->n_positions);
    long N = (long)B * T;
    for (long n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V)
            return lethe_fail(LETHE_ERR_INVALID, "GPT forward: token %d at position %ld is "
                              "outside the vocabulary [0, %d)", tokens[n], n, V);
        if (targets && (targets[n] < -1 || targets[n] >= V))
            return lethe_fail(LETHE_ERR_INVALID, "GPT forward: target %d at position %ld is "
                              "neither -1 nor in [0, %d)", targets[n], n, V);
    }
    lethe_status st = reserve(x, c, B, T, work);
    if (st)
        return st;
    x->B = B, x->T = T;
    memcpy(x->tokens, tokens, sizeof(int32_t) * (size_t)N);
    for (long n = 0; n < N; n++)
        x->targets[n] = targets ? targets[n] : -1;

    const float *wte = g->params + g->tensors[0].offset, *wpe = g->params + g->tensors[1].offset;
    lethe_embed_forward(x->encoded, tokens, wte, wpe, B, T, C);
    int blocks = stop >= 0 && stop <= L ? stop : L;
    for (int l = 0; l < blocks; l++) {
        lethe_gpt_block p = lethe_gpt_block_params(g, l);
        const float *res = l == 0 ? x->encoded : x->res3 + (l - 1) * N * C;
        float *ln1 = x->ln1 + l * N * C, *ln2 = x->ln2 + l * N * C;
        float *qkv = x->qkv + l * N * 3 * C, *atty = x->atty + l * N * C;
        float *res2 = x->res2 + l * N * C, *res3 = x->res3 + l * N * C;
        float *fch = x->fch + l * N * 4 * C, *fch_gelu = x->fch_gelu + l * N * 4 * C;
        float *att = x->att + (long)l * B * NH * T * T;
        lethe_layernorm_forward(ln1, x->ln1_mean + l * N, x->ln1_rstd + l * N, res, p.ln_1_w,
                                p.ln_1_b, (int)N, C);
        lethe_conv1d_forward(qkv, ln1, p.attn_w, p.attn_b, (int)N, C, 3 * C);
        lethe_attention_forward(atty, att, qkv, B, T, C, NH);
        /* res2 = res + c_proj(atty): the residual is the product's C input */
        memcpy(res2, res, sizeof(float) * (size_t)(N * C));
        for (long n = 0; n < N; n++)
            for (int k = 0; k < C; k++)
                res2[n * C + k] += p.attn_proj_b[k];
        lethe_gemm(0, 0, (int)N, C, C, 1.0f, atty, C, p.attn_proj_w, C, 1.0f, res2, C);
        lethe_layernorm_forward(ln2, x->ln2_mean + l * N, x->ln2_rstd + l * N, res2, p.ln_2_w,
                                p.ln_2_b, (int)N, C);
        lethe_conv1d_forward(fch, ln2, p.fc_w, p.fc_b, (int)N, C, 4 * C);
        lethe_gelu_tanh_forward(fch_gelu, fch, N * 4 * C);
        memcpy(res3, res2, sizeof(float) * (size_t)(N * C));
        for (long n = 0; n < N; n++)
            for (int k = 0; k < C; k++)
                res3[n * C + k] += p.fc_proj_b[k];
        lethe_gemm(0, 0, (int)N, C, 4 * C, 1.0f, fch_gelu, 4 * C, p.fc_proj_w, C, 1.0f, res3, C);
    }
    if (blocks < L) {
        x->n_targets = 0, x->loss = 0.0f;
        return LETHE_OK;
    }
    const lethe_gpt_tensor *tf = &g->tensors[g->n_tensors - 2];
    lethe_layernorm_forward(x->lnf, x->lnf_mean, x->lnf_rstd, x->res3 + (L - 1) * N * C,
                            g->params + tf[0].offset, g->params + tf[1].offset, (int)N, C);
    if (stop >= 0) { /* L or L + 1: the head is not needed */
        x->n_targets = 0, x->loss = 0.0f;
        return LETHE_OK;
    }
    /* the tied head: logits = lnf wte^T */
    lethe_gemm(0, 1, (int)N, V, C, 1.0f, x->lnf, C, wte, C, 0.0f, x->logits, V);
    x->n_targets = lethe_xent_forward(x->lse, x->logprobs, x->logits, x->targets, (int)N, V);
    double sum = 0.0;
    for (long n = 0; n < N; n++)
        sum -= x->logprobs[n];
    x->loss = x->n_targets ? (float)(sum / x->n_targets) : 0.0f;
    return LETHE_OK;
}

lethe_status lethe_gpt_forward(lethe_gpt *g, const int32_t *tokens, const int32_t *targets,
                               int B, int T)
{
    return forward(&g->own, g, tokens, targets, B, T, 1, -1);
}

lethe_status lethe_gpt_ctx_forward(lethe_gpt_ctx *x, const lethe_gpt *g, const int32_t *tokens,
                                   const int32_t *targets, int B, int T)
{
    return forward(x, g, tokens, targets, B, T, 0, -1);
}

lethe_status lethe_gpt_ctx_forward_to(lethe_gpt_ctx *x, const lethe_gpt *g,
                                      const int32_t *tokens, int B, int T, int hidden)
{
    if (hidden < 0 || hidden > g->cfg.n_layer + 1)
        return lethe_fail(LETHE_ERR_INVALID, "GPT forward: hidden state %d (0 to %d)", hidden,
                          g->cfg.n_layer + 1);
    return forward(x, g, tokens, NULL, B, T, 0, hidden);
}

const float *lethe_gpt_ctx_hidden(const lethe_gpt_ctx *x, int i)
{
    long N = (long)x->B * x->T, C = x->acts_cfg.n_embd, L = x->acts_cfg.n_layer;
    if (!x->B || i < 0 || i > L + 1)
        return NULL;
    if (i == 0)
        return x->encoded;
    if (i == L + 1)
        return x->lnf;
    return x->res3 + (i - 1) * N * C;
}

const float *lethe_gpt_hidden(const lethe_gpt *g, int i)
{
    return lethe_gpt_ctx_hidden(&g->own, i);
}

/* ---- backward --------------------------------------------------------- */

void lethe_gpt_backward(lethe_gpt *g)
{
    LETHE_ASSERT(g->B > 0);
    long N = (long)g->B * g->T;
    float w = g->n_targets ? 1.0f / (float)g->n_targets : 0.0f;
    for (long n = 0; n < N; n++)
        g->dloss[n] = g->targets[n] >= 0 ? w : 0.0f;
    lethe_gpt_backward_weighted(g, g->dloss);
}

/* A projection's backward with dinp written (not accumulated): dinp = dout
 * w^T; dw, db accumulate. */
static void proj_backward(float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, long N, int C, int OC)
{
    lethe_gemm(0, 1, (int)N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
    lethe_conv1d_backward(NULL, dw, db, dout, inp, w, (int)N, C, OC);
}

/* Backpropagate g->dres, the gradient of the output of block top - 1 (of the
 * embeddings when top is 0), through blocks top - 1 .. 0 and the
 * embeddings. */
static void backward_blocks(lethe_gpt *g, int top)
{
    const lethe_gpt_config *c = &g->cfg;
    int B = g->B, T = g->T, C = c->n_embd, NH = c->n_head;
    long N = (long)B * T;
    float *dwte = g->grads + g->tensors[0].offset, *dwpe = g->grads + g->tensors[1].offset;
    float *dres = g->dres;
    for (int l = top - 1; l >= 0; l--) {
        lethe_gpt_block p = lethe_gpt_block_params(g, l), d = block_in(g, g->grads, l);
        const float *res = l == 0 ? g->encoded : g->res3 + (l - 1) * N * C;
        const float *ln1 = g->ln1 + l * N * C, *ln2 = g->ln2 + l * N * C;
        const float *qkv = g->qkv + l * N * 3 * C, *atty = g->atty + l * N * C;
        const float *res2 = g->res2 + l * N * C;
        const float *fch = g->fch + l * N * 4 * C, *fch_gelu = g->fch_gelu + l * N * 4 * C;
        const float *att = g->att + (long)l * B * NH * T * T;
        /* dres is the gradient of res3; it flows on unchanged to res2 */
        proj_backward(g->dfch, d.fc_proj_w, d.fc_proj_b, dres, fch_gelu, p.fc_proj_w, N, 4 * C,
                      C);
        lethe_gelu_tanh_backward(g->dfch, g->dfch, fch, N * 4 * C);
        proj_backward(g->dln, d.fc_w, d.fc_b, g->dfch, ln2, p.fc_w, N, C, 4 * C);
        lethe_layernorm_backward(dres, d.ln_2_w, d.ln_2_b, g->dln, res2, p.ln_2_w,
                                 g->ln2_mean + l * N, g->ln2_rstd + l * N, (int)N, C);
        /* dres is now the gradient of res2; it flows on unchanged to res */
        proj_backward(g->datty, d.attn_proj_w, d.attn_proj_b, dres, atty, p.attn_proj_w, N, C,
                      C);
        memset(g->dqkv, 0, sizeof(float) * (size_t)(N * 3 * C));
        lethe_attention_backward(g->dqkv, g->datt, g->datty, qkv, att, B, T, C, NH);
        proj_backward(g->dln, d.attn_w, d.attn_b, g->dqkv, ln1, p.attn_w, N, C, 3 * C);
        lethe_layernorm_backward(dres, d.ln_1_w, d.ln_1_b, g->dln, res, p.ln_1_w,
                                 g->ln1_mean + l * N, g->ln1_rstd + l * N, (int)N, C);
    }
    lethe_embed_backward(dwte, dwpe, dres, g->tokens, B, T, C);
}

/* dlnf (in g->dln) through ln_f into g->dres, then every block. */
static void backward_from_lnf(lethe_gpt *g, const float *dlnf)
{
    long N = (long)g->B * g->T, C = g->cfg.n_embd, L = g->cfg.n_layer;
    const lethe_gpt_tensor *tf = &g->tensors[g->n_tensors - 2];
    memset(g->dres, 0, sizeof(float) * (size_t)(N * C));
    lethe_layernorm_backward(g->dres, g->grads + tf[0].offset, g->grads + tf[1].offset, dlnf,
                             g->res3 + (L - 1) * N * C, g->params + tf[0].offset, g->lnf_mean,
                             g->lnf_rstd, (int)N, (int)C);
    backward_blocks(g, (int)L);
}

void lethe_gpt_backward_weighted(lethe_gpt *g, const float *dloss)
{
    LETHE_ASSERT(g->B > 0);
    long N = (long)g->B * g->T;
    int C = g->cfg.n_embd, V = g->cfg.vocab_size;
    const float *wte = g->params + g->tensors[0].offset;
    float *dwte = g->grads + g->tensors[0].offset;
    /* the head, LOGIT_CHUNK rows at a time: dlnf = dlogits wte, dwte += dlogits^T lnf */
    float *dlnf = g->dln;
    for (long r0 = 0; r0 < N; r0 += LOGIT_CHUNK) {
        int m = (int)(N - r0 < LOGIT_CHUNK ? N - r0 : LOGIT_CHUNK);
        lethe_xent_backward(g->dlogits, dloss + r0, g->logits + r0 * V, g->lse + r0,
                            g->targets + r0, m, V);
        lethe_gemm(0, 0, m, C, V, 1.0f, g->dlogits, V, wte, C, 0.0f, dlnf + r0 * C, C);
        lethe_gemm(1, 0, V, C, m, 1.0f, g->dlogits, V, g->lnf + r0 * C, C, 1.0f, dwte, C);
    }
    backward_from_lnf(g, dlnf);
}

void lethe_gpt_backward_logits(lethe_gpt *g, const float *dlogits)
{
    LETHE_ASSERT(g->B > 0);
    long N = (long)g->B * g->T;
    int C = g->cfg.n_embd, V = g->cfg.vocab_size;
    const float *wte = g->params + g->tensors[0].offset;
    float *dwte = g->grads + g->tensors[0].offset;
    /* in the same row chunks as the loss's backward, so both sum alike */
    for (long r0 = 0; r0 < N; r0 += LOGIT_CHUNK) {
        int m = (int)(N - r0 < LOGIT_CHUNK ? N - r0 : LOGIT_CHUNK);
        lethe_gemm(0, 0, m, C, V, 1.0f, dlogits + r0 * V, V, wte, C, 0.0f, g->dln + r0 * C, C);
        lethe_gemm(1, 0, V, C, m, 1.0f, dlogits + r0 * V, V, g->lnf + r0 * C, C, 1.0f, dwte, C);
    }
    backward_from_lnf(g, g->dln);
}

void lethe_gpt_backward_hidden(lethe_gpt *g, int i, const float *dh)
{
    LETHE_ASSERT(g->B > 0 && i >= 0 && i <= g->cfg.n_layer + 1);
    long N = (long)g->B * g->T, C = g->cfg.n_embd;
    if (i == g->cfg.n_layer + 1) {
        memcpy(g->dln, dh, sizeof(float) * (size_t)(N * C));
        backward_from_lnf(g, g->dln);
        return;
    }
    memcpy(g->dres, dh, sizeof(float) * (size_t)(N * C));
    backward_blocks(g, i);
}

/* ---- checkpoints ------------------------------------------------------ */

static const char *const config_keys[5] = {"vocab_size", "n_positions", "n_embd", "n_layer",
                                           "n_head"};

lethe_status lethe_gpt_save(const lethe_gpt *g, const char *path, const lethe_st_meta *meta,
                            size_t n_meta)
{
    lethe_status st = LETHE_OK;
    lethe_st_f32 *ts = calloc((size_t)g->n_tensors, sizeof *ts);
    size_t *shapes = calloc((size_t)g->n_tensors * 2, sizeof *shapes);
    lethe_st_meta *all = calloc(n_meta + 5, sizeof *all);
    char values[5][16];
    if (!ts || !shapes || !all) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        shapes[2 * i] = (size_t)t->shape[0];
        shapes[2 * i + 1] = (size_t)t->shape[1];
        ts[i] = (lethe_st_f32){t->name, (size_t)t->rank, shapes + 2 * i, g->params + t->offset};
    }
    const lethe_gpt_config *c = &g->cfg;
    const int cv[5] = {c->vocab_size, c->n_positions, c->n_embd, c->n_layer, c->n_head};
    for (int k = 0; k < 5; k++) {
        snprintf(values[k], sizeof values[k], "%d", cv[k]);
        all[k] = (lethe_st_meta){(char *)config_keys[k], values[k]};
    }
    for (size_t k = 0; k < n_meta; k++)
        all[5 + k] = meta[k];
    st = lethe_safetensors_write(path, ts, (size_t)g->n_tensors, all, n_meta + 5);
done:
    free(ts);
    free(shapes);
    free(all);
    return st;
}

/* The tensor `name` of st, with or without the "transformer." prefix. */
static const lethe_st_tensor *find_either(const lethe_safetensors *st, const char *name)
{
    char full[LETHE_GPT_NAME_MAX + 16];
    snprintf(full, sizeof full, "transformer.%s", name);
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    return t ? t : lethe_safetensors_find(st, full);
}

lethe_status lethe_gpt_load(const char *path, lethe_gpt **out)
{
    *out = NULL;
    lethe_safetensors *st = NULL;
    lethe_gpt *g = NULL;
    lethe_status s = lethe_safetensors_open(path, &st);
    if (s)
        return s;
    lethe_gpt_config cfg = {0};
    int cv[5], from_meta = 1;
    for (int k = 0; k < 5; k++) {
        const char *v = lethe_safetensors_meta(st, config_keys[k]);
        char *end = NULL;
        long x = v ? strtol(v, &end, 10) : 0;
        if (!v || *end || x <= 0 || x > (1L << 30)) {
            from_meta = 0;
            break;
        }
        cv[k] = (int)x;
    }
    if (from_meta) {
        cfg = (lethe_gpt_config){cv[0], cv[1], cv[2], cv[3], cv[4]};
    } else {
        const lethe_st_tensor *wte = find_either(st, "wte.weight");
        const lethe_st_tensor *wpe = find_either(st, "wpe.weight");
        if (!wte || !wpe || wte->rank != 2 || wpe->rank != 2 || wte->shape[1] != wpe->shape[1]) {
            s = lethe_fail(LETHE_ERR_FORMAT, "%s: no GPT config in the metadata and no 2-D "
                           "wte.weight / wpe.weight of equal width to infer it from", path);
            goto done;
        }
        cfg.vocab_size = (int)wte->shape[0];
        cfg.n_positions = (int)wpe->shape[0];
        cfg.n_embd = (int)wte->shape[1];
        char name[LETHE_GPT_NAME_MAX];
        for (cfg.n_layer = 0;; cfg.n_layer++) {
            snprintf(name, sizeof name, "h.%d.ln_1.weight", cfg.n_layer);
            if (!find_either(st, name))
                break;
        }
        cfg.n_head = cfg.n_embd % 64 ? 1 : cfg.n_embd / 64;
    }
    g = lethe_gpt_init(&cfg);
    if (!g) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: bad GPT config: %s", path, lethe_error_detail());
        goto done;
    }
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        const lethe_st_tensor *ft = find_either(st, t->name);
        if (!ft) {
            s = lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no tensor '%s' (or 'transformer.%s')", path,
                           t->name, t->name);
            goto done;
        }
        size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]};
        s = lethe_safetensors_load_f32(st, ft->name, (size_t)t->rank, shape,
                                       g->params + t->offset);
        if (s)
            goto done;
    }
    *out = g;
    g = NULL;
done:
    lethe_gpt_free(g);
    lethe_safetensors_free(st);
    return s;
}
