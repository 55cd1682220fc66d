/* The prompt classifier's features (hashed n-grams and mean-pooled hidden
 * states; the definitions are in guard_classifier.h) and the sparse matrix
 * of rows the fit reads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_classifier.h"
#include "lethe/guard_index.h"
#include "guard_impl.h"

/* ---- extractors --------------------------------------------------------------- */

lethe_status lethe_guard_feat_hash(int dim, lethe_guard_feat *out)
{
    if (dim == 0)
        dim = LETHE_GUARD_HASH_DIM;
    if (dim < 2 || dim > LETHE_GUARD_MAX_DIM)
        return lethe_fail(LETHE_ERR_INVALID, "guard features: %d hash buckets (2 to %d allowed)",
                          dim, LETHE_GUARD_MAX_DIM);
    *out = (lethe_guard_feat){LETHE_GUARD_FEAT_HASH, dim, -1, NULL, NULL};
    return LETHE_OK;
}

lethe_status lethe_guard_feat_model(const lethe_gpt *g, const lethe_tokenizer_t *tok, int layer,
                                    lethe_guard_feat *out)
{
    if (!g)
        return lethe_fail(LETHE_ERR_INVALID, "guard features: no model for model features");
    int L = g->cfg.n_layer;
    if (layer == -1)
        layer = L - 1;
    if (layer < 0 || layer > L + 1)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard features: hidden state %d of a %d-layer model (0 to %d)", layer,
                          L, L + 1);
    *out = (lethe_guard_feat){LETHE_GUARD_FEAT_MODEL, g->cfg.n_embd, layer, g, tok};
    return LETHE_OK;
}

/* ---- hashed n-grams --------------------------------------------------------- */

static void add_ngram(float *out, int dim, unsigned char tag, const unsigned char *p, size_t n)
{
    uint64_t h = guard_ngram_hash(tag, p, n);
    size_t bucket = (size_t)((h & ~(1ull << 63)) % (uint64_t)dim);
    out[bucket] += (h >> 63) ? -1.0f : 1.0f;
}

static lethe_status hash_features(int dim, const void *text, size_t len, float *out)
{
    memset(out, 0, (size_t)dim * sizeof *out);
    unsigned char *pad = malloc(len + 2);
    if (!pad)
        return lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory for %zu bytes", len);
    /* pad = " " + normalised text + " " */
    size_t n = lethe_guard_normalize(text, len, pad + 1);
    if (n == 0) {
        free(pad);
        return LETHE_OK;
    }
    const unsigned char *t = pad + 1;
    pad[0] = ' ';
    pad[n + 1] = ' ';
    /* words, and each word with the one before it */
    size_t start = 0, prev = (size_t)-1;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && t[i] != ' ')
            continue;
        add_ngram(out, dim, 'U', t + start, i - start);
        if (prev != (size_t)-1)
            add_ngram(out, dim, 'B', t + prev, i - prev);
        prev = start;
        start = i + 1;
    }
    /* character 3- to 5-grams of the padded text */
    for (size_t k = 3; k <= 5; k++)
        for (size_t i = 0; i + k <= n + 2; i++)
            add_ngram(out, dim, 'C', pad + i, k);
    free(pad);
    double ss = 0;
    for (int j = 0; j < dim; j++)
        ss += (double)out[j] * out[j];
    double norm = sqrt(ss);
    for (int j = 0; j < dim && norm > 0; j++) /* signed counts can cancel to 0 */
        out[j] = (float)(out[j] / norm);
    return LETHE_OK;
}

/* ---- mean-pooled hidden states ---------------------------------------------- */

lethe_status lethe_guard_features_tokens(const lethe_guard_feat *f, lethe_gpt_ctx *ctx,
                                         const int32_t *tokens, size_t n, float *out)
{
    if (f->kind != LETHE_GUARD_FEAT_MODEL || !f->gpt)
        return lethe_fail(LETHE_ERR_INVALID, "guard features: token features need a model");
    const lethe_gpt *g = f->gpt;
    int C = g->cfg.n_embd, Tmax = g->cfg.n_positions;
    if (n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "guard features: the prompt has no tokens");
    if (f->dim != C || f->layer < 0 || f->layer > g->cfg.n_layer + 1)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard features: extractor (dim %d, layer %d) does not fit the model",
                          f->dim, f->layer);
    /* a long prompt keeps its end */
    int T = n > (size_t)Tmax ? Tmax : (int)n;
    const int32_t *use = tokens + (n - (size_t)T);
    lethe_gpt_ctx *own = NULL;
    if (!ctx) {
        own = ctx = lethe_gpt_ctx_new();
        if (!ctx)
            return LETHE_ERR_NOMEM;
    }
    double *acc = calloc((size_t)C, sizeof *acc);
    lethe_status st = acc ? lethe_gpt_ctx_forward_to(ctx, g, use, 1, T, f->layer)
                          : lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory");
    if (st == LETHE_OK) {
        const float *h = lethe_gpt_ctx_hidden(ctx, f->layer);
        LETHE_ASSERT(h);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < C; j++)
                acc[j] += h[(size_t)t * C + j];
        for (int j = 0; j < C; j++)
            out[j] = (float)(acc[j] / T);
    }
    free(acc);
    lethe_gpt_ctx_free(own);
    return st;
}

static lethe_status model_features(const lethe_guard_feat *f, const void *text, size_t len,
                                   float *out)
{
    if (!f->tok)
        return lethe_fail(LETHE_ERR_INVALID, "guard features: text features need a tokenizer");
    uint32_t *ids = NULL;
    size_t n = 0;
    lethe_status st = lethe_tokenizer_encode(f->tok, text, len, &ids, &n);
    if (st != LETHE_OK)
        return st;
    int32_t *tokens = n ? malloc(n * sizeof *tokens) : NULL;
    if (n && !tokens)
        st = lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory for %zu tokens", n);
    for (size_t i = 0; st == LETHE_OK && i < n; i++) {
        if (ids[i] >= (uint32_t)f->gpt->cfg.vocab_size)
            st = lethe_fail(LETHE_ERR_INVALID,
                            "guard features: token %u is outside the model's %d-token vocabulary",
                            ids[i], f->gpt->cfg.vocab_size);
        else
            tokens[i] = (int32_t)ids[i];
    }
    free(ids);
    if (st == LETHE_OK)
        st = lethe_guard_features_tokens(f, NULL, tokens, n, out);
    free(tokens);
    return st;
}

lethe_status lethe_guard_features(const lethe_guard_feat *f, const void *text, size_t len,
                                  float *out)
{
    switch (f->kind) {
    case LETHE_GUARD_FEAT_HASH:
        if (f->dim < 2 || f->dim > LETHE_GUARD_MAX_DIM)
            return lethe_fail(LETHE_ERR_INVALID, "guard features: %d hash buckets", f->dim);
        return hash_features(f->dim, text, len, out);
    case LETHE_GUARD_FEAT_MODEL:
        return model_features(f, text, len, out);
    }
    return lethe_fail(LETHE_ERR_INVALID, "guard features: unknown kind %d", (int)f->kind);
}

/* ---- rows ------------------------------------------------------------------ */

struct lethe_guard_rows {
    int dim;
    size_t n, cap_rows;
    size_t *start;  /* (n + 1) row i is entries [start[i], start[i + 1]) */
    size_t nnz, cap_nnz;
    int32_t *col;   /* (nnz) */
    float *val;     /* (nnz) */
};

lethe_guard_rows_t *lethe_guard_rows_new(int dim)
{
    if (dim < 1 || dim > LETHE_GUARD_MAX_DIM) {
        lethe_fail(LETHE_ERR_INVALID, "guard features: %d features per row", dim);
        return NULL;
    }
    lethe_guard_rows_t *m = calloc(1, sizeof *m);
    if (m)
        m->start = calloc(1, sizeof *m->start);
    if (!m || !m->start) {
        free(m);
        lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory");
        return NULL;
    }
    m->dim = dim;
    return m;
}

void lethe_guard_rows_free(lethe_guard_rows_t *m)
{
    if (!m)
        return;
    free(m->start);
    free(m->col);
    free(m->val);
    free(m);
}

lethe_status lethe_guard_rows_add(lethe_guard_rows_t *m, const float *x)
{
    size_t k = 0;
    for (int j = 0; j < m->dim; j++) {
        if (!isfinite(x[j]))
            return lethe_fail(LETHE_ERR_INVALID, "guard features: feature %d of row %zu is %g",
                              j, m->n, (double)x[j]);
        k += x[j] != 0;
    }
    if (m->n + 1 > m->cap_rows) {
        size_t cap = m->cap_rows ? 2 * m->cap_rows : 64;
        size_t *s = realloc(m->start, (cap + 1) * sizeof *s);
        if (!s)
            return lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory for %zu rows", cap);
        m->start = s;
        m->cap_rows = cap;
    }
    if (m->nnz + k > m->cap_nnz) {
        size_t cap = m->cap_nnz ? m->cap_nnz : 1024;
        while (cap < m->nnz + k)
            cap *= 2;
        int32_t *c = realloc(m->col, cap * sizeof *c);
        if (c)
            m->col = c;
        float *v = c ? realloc(m->val, cap * sizeof *v) : NULL;
        if (!v)
            return lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory for %zu values",
                              cap);
        m->val = v;
        m->cap_nnz = cap;
    }
    for (int j = 0; j < m->dim; j++)
        if (x[j] != 0) {
            m->col[m->nnz] = j;
            m->val[m->nnz++] = x[j];
        }
    m->start[++m->n] = m->nnz;
    return LETHE_OK;
}

lethe_status lethe_guard_rows_add_text(lethe_guard_rows_t *m, const lethe_guard_feat *f,
                                       const void *text, size_t len)
{
    if (f->dim != m->dim)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard features: %d features from the extractor, %d per row", f->dim,
                          m->dim);
    float *x = malloc((size_t)m->dim * sizeof *x);
    if (!x)
        return lethe_fail(LETHE_ERR_NOMEM, "guard features: out of memory");
    lethe_status st = lethe_guard_features(f, text, len, x);
    if (st == LETHE_OK)
        st = lethe_guard_rows_add(m, x);
    free(x);
    return st;
}

size_t lethe_guard_rows_count(const lethe_guard_rows_t *m)
{
    return m->n;
}

int lethe_guard_rows_dim(const lethe_guard_rows_t *m)
{
    return m->dim;
}

size_t lethe_guard_rows_sparse(const lethe_guard_rows_t *m, size_t i, const int32_t **col,
                              const float **val)
{
    LETHE_ASSERT(i < m->n);
    size_t k = m->start[i + 1] - m->start[i];
    *col = k ? m->col + m->start[i] : NULL; /* no arrays yet while every row is 0 */
    *val = k ? m->val + m->start[i] : NULL;
    return k;
}

void lethe_guard_rows_get(const lethe_guard_rows_t *m, size_t i, float *out)
{
    LETHE_ASSERT(i < m->n);
    memset(out, 0, (size_t)m->dim * sizeof *out);
    for (size_t k = m->start[i]; k < m->start[i + 1]; k++)
        out[m->col[k]] = m->val[k];
}
