/* Forward/backward kernels of the GPT-2 blocks: LayerNorm, GELU (tanh form),
 * Conv1D projections, causal multi-head attention, embeddings, softmax
 * cross-entropy over the vocabulary.
 *
 * Threads share out rows (or attention heads) whose outputs are disjoint;
 * a sum over rows (bias, LayerNorm and embedding gradients) is shared out by
 * columns, each column summed on one thread in row order, so results do not
 * depend on the thread count. */
#include "lethe/gemm.h"
#include "lethe/gpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "vmath.h"

/* Loops with fewer multiply-adds than this stay on one thread. */
#define PAR_MIN (1L << 16)
/* Rows of the attention matrix per product: the causal mask means a block of
 * query rows [r0, r1) only needs keys [0, r1). */
#define ATT_BLK 64
/* Columns per thread's share of a sum over rows (parameter gradients). */
#define LN_COLS 64
/* Elements per share of an elementwise loop. */
#define CHUNK 4096


/* Row sums in float, as simd reductions: a fixed order for a given build,
 * whatever the thread count. */
static void ln_forward_row(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, int n, int C)
{
    {
        const float *x = inp + (long)n * C;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++)
            s += x[c];
        float m = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        float r = 1.0f / sqrtf(v / (float)C + 1e-5f);
        float *y = out + (long)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - m) * r * w[c] + b[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void lethe_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                             const float *w, const float *b, int N, int C)
{
    PAR_FOR((long)N * C > PAR_MIN, int, n, N, ln_forward_row(out, mean, rstd, inp, w, b, n, C));
}

/* dinp row n += rstd (g - mean(g) - xhat mean(g xhat)), with g = dout w */
static void ln_backward_row(float *dinp, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int n, int C)
{
    {
        const float *x = inp + (long)n * C, *dy = dout + (long)n * C;
        float m = mean[n], r = rstd[n];
        float sg = 0.0f, sgx = 0.0f;
#pragma omp simd reduction(+ : sg, sgx)
        for (int c = 0; c < C; c++) {
            float g = dy[c] * w[c];
            sg += g;
            sgx += g * ((x[c] - m) * r);
        }
        float mg = sg / (float)C, mgx = sgx / (float)C;
        float *dx = dinp + (long)n * C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * r;
            dx[c] += r * (dy[c] * w[c] - mg - xhat * mgx);
        }
    }
}

/* The parameter gradients' columns [c0, c0 + LN_COLS): sums over rows, in
 * row order. */
static void ln_param_cols(float *dw, float *db, const float *dout, const float *inp,
                          const float *mean, const float *rstd, int N, int C, int c0)
{
    int c1 = c0 + LN_COLS < C ? c0 + LN_COLS : C;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (long)n * C, *dy = dout + (long)n * C;
        float m = mean[n], r = rstd[n];
#pragma omp simd
        for (int c = c0; c < c1; c++) {
            dw[c] += dy[c] * ((x[c] - m) * r);
            db[c] += dy[c];
        }
    }
}

void lethe_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                              const float *inp, const float *w, const float *mean,
                              const float *rstd, int N, int C)
{
    int big = (long)N * C > PAR_MIN, nc = (C + LN_COLS - 1) / LN_COLS;
    PAR_FOR(big, int, n, N, ln_backward_row(dinp, dout, inp, w, mean, rstd, n, C));
    PAR_FOR(big, int, k, nc, ln_param_cols(dw, db, dout, inp, mean, rstd, N, C, k * LN_COLS));
}

#define GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_A 0.044715f

/* With u = K (x + A x^3):  0.5 (1 + tanh u) = sigmoid(2 u), so
 * gelu(x) = x s and gelu'(x) = s + 2 x s (1 - s) u', s = sigmoid(2 u). */
static void gelu_forward_chunk(float *out, const float *inp, long n, long k)
{
    long i1 = (k + 1) * CHUNK < n ? (k + 1) * CHUNK : n;
#pragma omp simd
    for (long i = k * CHUNK; i < i1; i++) {
        float x = inp[i];
        out[i] = x * lethe_vsigmoidf(2.0f * GELU_K * (x + GELU_A * x * x * x));
    }
}

static void gelu_backward_chunk(float *dinp, const float *dout, const float *inp, long n,
                                long k)
{
    long i1 = (k + 1) * CHUNK < n ? (k + 1) * CHUNK : n;
#pragma omp simd
    for (long i = k * CHUNK; i < i1; i++) {
        float x = inp[i];
        float s = lethe_vsigmoidf(2.0f * GELU_K * (x + GELU_A * x * x * x));
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        dinp[i] = dout[i] * (s + 2.0f * x * s * (1.0f - s) * du);
    }
}

void lethe_gelu_tanh_forward(float *out, const float *inp, long n)
{
    PAR_FOR(n > PAR_MIN, long, k, (n + CHUNK - 1) / CHUNK, gelu_forward_chunk(out, inp, n, k));
}

void lethe_gelu_tanh_backward(float *dinp, const float *dout, const float *inp, long n)
{
    PAR_FOR(n > PAR_MIN, long, k, (n + CHUNK - 1) / CHUNK,
            gelu_backward_chunk(dinp, dout, inp, n, k));
}

void lethe_conv1d_forward(float *out, const float *inp, const float *w, const float *b, int N,
                          int C, int OC)
{
    /* out = bias in every row, then += inp w in the product */
    if (b)
        for (int n = 0; n < N; n++)
            memcpy(out + (long)n * OC, b, sizeof(float) * (size_t)OC);
    lethe_gemm(0, 0, N, OC, C, 1.0f, inp, C, w, OC, b ? 1.0f : 0.0f, out, OC);
}

/* db[o] += sum over rows of dout[n, o] for o in [o0, o0 + LN_COLS), rows in
 * order. */
static void bias_cols(float *db, const float *dout, int N, int OC, int o0)
{
    int o1 = o0 + LN_COLS < OC ? o0 + LN_COLS : OC;
    for (int n = 0; n < N; n++) {
        const float *d = dout + (long)n * OC;
#pragma omp simd
        for (int o = o0; o < o1; o++)
            db[o] += d[o];
    }
}

void lethe_conv1d_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, int N, int C, int OC)
{
    if (dinp)
        lethe_gemm(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 1.0f, dinp, C);
    lethe_gemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    if (!db)
        return;
    /* the bias gradient: sums over rows in row order; threads share out columns */
    PAR_FOR((long)N * OC > PAR_MIN, int, k, (OC + LN_COLS - 1) / LN_COLS,
            bias_cols(db, dout, N, OC, k * LN_COLS));
}

/* Row t of scores s (keys [0, t]) to probabilities in place; keys t+1 .. T-1
 * are set to 0. */
static void causal_softmax_row(float *s, int t, int T)
{
    float mx = s[0];
#pragma omp simd reduction(max : mx)
    for (int j = 1; j <= t; j++)
        mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= t; j++) {
        float e = lethe_vexpf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int j = 0; j <= t; j++)
        s[j] *= inv;
    for (int j = t + 1; j < T; j++)
        s[j] = 0.0f;
}

/* One head's keys (or values), T rows hs wide and `stride` apart, as hs rows
 * of T: the products against them then read contiguous rows instead of
 * forming a transposed result. */
static void head_transpose(float *dst, const float *src, long stride, int T, int hs)
{
    for (int j = 0; j < T; j++)
        for (int e = 0; e < hs; e++)
            dst[(long)e * T + j] = src[(long)j * stride + e];
}

/* Scores rows [r0, r0 + m) against keys [0, r1): s = alpha X K^T, from the
 * transposed copy kt (hs x T) when there is one, else from K in place. Both
 * routes sum every element in the same order (lethe_gemm). */
static void scores(float *s, int T, const float *x, long ldx, const float *k, long ldk,
                   const float *kt, int m, int r1, int hs, float alpha)
{
    if (kt)
        lethe_gemm(0, 0, m, r1, hs, alpha, x, (int)ldx, kt, T, 0.0f, s, T);
    else
        lethe_gemm(0, 1, m, r1, hs, alpha, x, (int)ldx, k, (int)ldk, 0.0f, s, T);
}

/* One (sequence, head) pair bh of the attention forward; kt is scratch for
 * the transposed keys (T x hs), or NULL to read the keys in place. */
static void attention_forward_head(float *out, float *att, const float *qkv, int T, int C,
                                   int NH, int bh, float *kt)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    int b = bh / NH, h = bh % NH;
    const float *q = qkv + (long)b * T * C3 + (long)h * hs;
    const float *k = q + C, *v = q + 2 * C;
    float *a = att + (long)bh * T * T;
    float *y = out + (long)b * T * C + (long)h * hs;
    if (kt)
        head_transpose(kt, k, C3, T, hs);
    for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
        int r1 = r0 + ATT_BLK < T ? r0 + ATT_BLK : T, m = r1 - r0;
        /* scores of query rows [r0, r1) against keys [0, r1) */
        scores(a + (long)r0 * T, T, q + (long)r0 * C3, C3, k, C3, kt, m, r1, hs, scale);
        for (int t = r0; t < r1; t++)
            causal_softmax_row(a + (long)t * T, t, T);
        /* y rows [r0, r1) = P[r0:r1, 0:r1] V[0:r1] */
        lethe_gemm(0, 0, m, hs, r1, 1.0f, a + (long)r0 * T, T, v, C3, 0.0f,
                   y + (long)r0 * C, C);
    }
}

/* The attention's work is shared out by (sequence, head), each thread with
 * one transposed head of scratch (without memory, read in place). */
#define FOR_HEADS(big, T, hs, n, buf, call)                                    \
    do {                                                                       \
        if (big) {                                                             \
            _Pragma("omp parallel")                                            \
            {                                                                  \
                float *buf = malloc(sizeof(float) * (size_t)(T) * (hs));       \
                _Pragma("omp for schedule(static)")                            \
                for (int bh = 0; bh < (n); bh++)                               \
                    call;                                                      \
                free(buf);                                                     \
            }                                                                  \
        } else {                                                               \
            float *buf = malloc(sizeof(float) * (size_t)(T) * (hs));           \
            for (int bh = 0; bh < (n); bh++)                                   \
                call;                                                          \
            free(buf);                                                         \
        }                                                                      \
    } while (0)

void lethe_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                             int NH)
{
    int big = (long)B * NH * T * T * (C / NH) > PAR_MIN;
    FOR_HEADS(big, T, C / NH, B * NH, kt,
              attention_forward_head(out, att, qkv, T, C, NH, bh, kt));
}

/* One (sequence, head) pair of the attention backward; vt as kt above. */
static void attention_backward_head(float *dqkv, float *datt, const float *dout,
                                    const float *qkv, const float *att, int T, int C, int NH,
                                    int bh, float *vt)
{
    const int hs = C / NH, C3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hs);
    int b = bh / NH, h = bh % NH;
    const float *q = qkv + (long)b * T * C3 + (long)h * hs;
    const float *k = q + C, *v = q + 2 * C;
    float *dq = dqkv + (long)b * T * C3 + (long)h * hs;
    float *dk = dq + C, *dv = dq + 2 * C;
    const float *a = att + (long)bh * T * T;
    float *ds = datt + (long)bh * T * T;
    const float *dy = dout + (long)b * T * C + (long)h * hs;
    if (vt)
        head_transpose(vt, v, C3, T, hs);
    for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
        int r1 = r0 + ATT_BLK < T ? r0 + ATT_BLK : T, m = r1 - r0;
        /* dP = dY V^T over keys [0, r1) */
        scores(ds + (long)r0 * T, T, dy + (long)r0 * C, C, v, C3, vt, m, r1, hs, 1.0f);
        /* through the softmax: dS = P (dP - sum_j P dP); 0 above the diagonal */
        for (int t = r0; t < r1; t++) {
            const float *p = a + (long)t * T;
            float *d = ds + (long)t * T;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j <= t; j++)
                dot += p[j] * d[j];
#pragma omp simd
            for (int j = 0; j <= t; j++)
                d[j] = p[j] * (d[j] - dot);
            for (int j = t + 1; j < T; j++)
                d[j] = 0.0f;
        }
        /* dQ rows [r0, r1) += scale dS[r0:r1, 0:r1] K[0:r1] */
        lethe_gemm(0, 0, m, hs, r1, scale, ds + (long)r0 * T, T, k, C3, 1.0f,
                   dq + (long)r0 * C3, C3);
    }
    for (int c0 = 0; c0 < T; c0 += ATT_BLK) {
        int c1 = c0 + ATT_BLK < T ? c0 + ATT_BLK : T, m = c1 - c0;
        /* key rows [c0, c1) see queries [c0, T) only */
        lethe_gemm(1, 0, m, hs, T - c0, scale, ds + (long)c0 * T + c0, T,
                   q + (long)c0 * C3, C3, 1.0f, dk + (long)c0 * C3, C3);
        lethe_gemm(1, 0, m, hs, T - c0, 1.0f, a + (long)c0 * T + c0, T,
                   dy + (long)c0 * C, C, 1.0f, dv + (long)c0 * C3, C3);
    }
}

void lethe_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                              const float *att, int B, int T, int C, int NH)
{
    int big = (long)B * NH * T * T * (C / NH) > PAR_MIN;
    FOR_HEADS(big, T, C / NH, B * NH, vt,
              attention_backward_head(dqkv, datt, dout, qkv, att, T, C, NH, bh, vt));
}

static void embed_row(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                      int T, int C, int n)
{
    const float *e = wte + (long)tokens[n] * C, *p = wpe + (long)(n % T) * C;
    float *y = out + (long)n * C;
#pragma omp simd
    for (int c = 0; c < C; c++)
        y[c] = e[c] + p[c];
}

void lethe_embed_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                         int B, int T, int C)
{
    PAR_FOR((long)B * T * C > PAR_MIN, int, n, B * T, embed_row(out, tokens, wte, wpe, T, C, n));
}

/* Columns [c0, c0 + LN_COLS) of the embeddings' gradients, in position
 * order: a token seen twice gets its sums in a fixed order. */
static void embed_cols(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                       int N, int T, int C, int c0)
{
    int c1 = c0 + LN_COLS < C ? c0 + LN_COLS : C;
    for (int n = 0; n < N; n++) {
        float *de = dwte + (long)tokens[n] * C, *dp = dwpe + (long)(n % T) * C;
        const float *d = dout + (long)n * C;
#pragma omp simd
        for (int c = c0; c < c1; c++) {
            de[c] += d[c];
            dp[c] += d[c];
        }
    }
}

void lethe_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                          int B, int T, int C)
{
    PAR_FOR((long)B * T * C > PAR_MIN, int, k, (C + LN_COLS - 1) / LN_COLS,
            embed_cols(dwte, dwpe, dout, tokens, B * T, T, C, k * LN_COLS));
}

static void xent_forward_row(float *lse, float *logprobs, const float *logits,
                             const int32_t *targets, int V, int n)
{
    const float *z = logits + (long)n * V;
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int v = 1; v < V; v++)
        mx = z[v] > mx ? z[v] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V; v++)
        s += lethe_vexpf(z[v] - mx);
    float l = mx + logf(s);
    lse[n] = l;
    logprobs[n] = targets[n] >= 0 ? z[targets[n]] - l : 0.0f;
}

int lethe_xent_forward(float *lse, float *logprobs, const float *logits, const int32_t *targets,
                       int N, int V)
{
    PAR_FOR((long)N * V > PAR_MIN, int, n, N,
            xent_forward_row(lse, logprobs, logits, targets, V, n));
    int count = 0;
    for (int n = 0; n < N; n++)
        count += targets[n] >= 0;
    return count;
}

static void xent_backward_row(float *dlogits, const float *dloss, const float *logits,
                              const float *lse, const int32_t *targets, int V, int n)
{
    float *dz = dlogits + (long)n * V;
    if (targets[n] < 0 || dloss[n] == 0.0f) {
        memset(dz, 0, sizeof(float) * (size_t)V);
        return;
    }
    const float *z = logits + (long)n * V;
    float dl = dloss[n], l = lse[n];
#pragma omp simd
    for (int v = 0; v < V; v++)
        dz[v] = dl * lethe_vexpf(z[v] - l);
    dz[targets[n]] -= dl;
}

void lethe_xent_backward(float *dlogits, const float *dloss, const float *logits,
                         const float *lse, const int32_t *targets, int N, int V)
{
    PAR_FOR((long)N * V > PAR_MIN, int, n, N,
            xent_backward_row(dlogits, dloss, logits, lse, targets, V, n));
}
