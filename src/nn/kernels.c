/* Forward/backward kernels for MLPs and small CNNs. */
#include "lethe/kernels.h"
#include "lethe/gemm.h"

#include <math.h>
#include <string.h>

void lethe_linear_forward(float *out, const float *inp, const float *w, const float *b, int B,
                          int C, int OC)
{
    /* out = bias in every row, then += inp @ w^T in the GEMM (no extra pass) */
    if (b)
        for (int i = 0; i < B; i++)
            memcpy(out + (long)i * OC, b, sizeof(float) * (size_t)OC);
    lethe_gemm(0, 1, B, OC, C, 1.0f, inp, C, w, C, b ? 1.0f : 0.0f, out, OC);
}

void lethe_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, int B, int C, int OC)
{
    if (dinp)
        lethe_gemm(0, 0, B, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
    lethe_gemm(1, 0, OC, C, B, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db)
        for (int i = 0; i < B; i++)
            for (int o = 0; o < OC; o++)
                db[o] += dout[(long)i * OC + o];
}

void lethe_relu_forward(float *out, const float *inp, long n)
{
    for (long i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void lethe_relu_backward(float *dinp, const float *dout, const float *inp, long n)
{
    for (long i = 0; i < n; i++)
        dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT2PI 0.39894228040143267794

void lethe_gelu_forward(float *out, const float *inp, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x * INV_SQRT2)));
    }
}

void lethe_gelu_backward(float *dinp, const float *dout, const float *inp, long n)
{
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        double cdf = 0.5 * (1.0 + erf(x * INV_SQRT2));
        double pdf = INV_SQRT2PI * exp(-0.5 * x * x);
        dinp[i] += (float)(dout[i] * (cdf + x * pdf));
    }
}

void lethe_tanh_forward(float *out, const float *inp, long n)
{
    for (long i = 0; i < n; i++)
        out[i] = tanhf(inp[i]);
}

void lethe_tanh_backward(float *dinp, const float *dout, const float *out, long n)
{
    for (long i = 0; i < n; i++)
        dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void lethe_dropout_forward(float *out, const float *inp, const float *mask, long n)
{
    for (long i = 0; i < n; i++)
        out[i] = inp[i] * mask[i];
}

void lethe_dropout_backward(float *dinp, const float *dout, const float *mask, long n)
{
    for (long i = 0; i < n; i++)
        dinp[i] += dout[i] * mask[i];
}

/* The output columns x in [*x0, *x1) of kernel column kx read input
 * columns ix = x + kx - pad inside [0, W); the rest read the zero padding. */
static void valid_span(int kx, int pad, int W, int OW, int *x0, int *x1)
{
    *x0 = pad - kx > 0 ? pad - kx : 0;
    *x1 = W + pad - kx < OW ? W + pad - kx : OW;
    if (*x1 < *x0)
        *x1 = *x0;
}

/* The "same" convolution (K == 2 pad + 1, so OH == H and OW == W): row
 * (c, ky, kx) of the columns is plane c of the image shifted by
 * shift = (ky - pad) W + (kx - pad) in flattened index, except that rows
 * outside [y0, y1) and, within them, the columns that fall off a side are
 * zero. So a row is one long copy, its reads kept inside the plane ([q0, q1)),
 * plus a few zeroed columns. */
typedef struct same_span {
    long shift, q0, q1;
    int y0, y1;   /* rows reading inside the image */
    int xz0, xz1; /* columns [xz0, xz1) of those rows read outside it */
} same_span;

static same_span same_span_of(int ky, int kx, int pad, int H, int W)
{
    same_span s;
    int dx = kx - pad;
    s.y0 = pad - ky > 0 ? pad - ky : 0;
    s.y1 = H + pad - ky < H ? H + pad - ky : H;
    if (s.y1 < s.y0)
        s.y1 = s.y0;
    s.shift = (long)(ky - pad) * W + dx;
    s.q0 = (long)s.y0 * W > -s.shift ? (long)s.y0 * W : -s.shift;
    s.q1 = (long)s.y1 * W < (long)H * W - s.shift ? (long)s.y1 * W : (long)H * W - s.shift;
    if (s.q1 < s.q0)
        s.q1 = s.q0;
    s.xz0 = dx < 0 ? 0 : W - dx;
    s.xz1 = dx < 0 ? -dx : W;
    if (s.xz0 < 0)
        s.xz0 = 0;
    return s;
}

static void im2col_same(float *col, const float *img, int C, int H, int W, int K, int pad)
{
    long P = (long)H * W;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *row = col + ((long)(c * K + ky) * K + kx) * P;
                const float *plane = img + (long)c * P;
                same_span s = same_span_of(ky, kx, pad, H, W);
                for (long q = 0; q < s.q0; q++)
                    row[q] = 0.0f;
                if (s.q1 > s.q0)
                    memcpy(row + s.q0, plane + s.q0 + s.shift,
                           sizeof(float) * (size_t)(s.q1 - s.q0));
                for (long q = s.q1; q < P; q++)
                    row[q] = 0.0f;
                for (int y = s.y0; y < s.y1; y++)
                    for (int x = s.xz0; x < s.xz1; x++)
                        row[(long)y * W + x] = 0.0f;
            }
}

/* The adjoint of im2col_same. The columns reading outside the image are
 * cleared in col (scratch) first, so each row is one long add. */
static void col2im_same_add(float *img, float *col, int C, int H, int W, int K, int pad)
{
    long P = (long)H * W;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *row = col + ((long)(c * K + ky) * K + kx) * P;
                float *plane = img + (long)c * P;
                same_span s = same_span_of(ky, kx, pad, H, W);
                for (int y = s.y0; y < s.y1; y++)
                    for (int x = s.xz0; x < s.xz1; x++)
                        row[(long)y * W + x] = 0.0f;
                for (long q = s.q0; q < s.q1; q++)
                    plane[q + s.shift] += row[q];
            }
}

/* col (C*K*K, OH*OW) from one image (C, H, W): row (c, ky, kx) holds the
 * image shifted by (ky - pad, kx - pad), zero outside. In general the rows
 * are copied a short segment (OW values) at a time, as inline loops (omp
 * simd also keeps the compiler from turning them into memcpy calls). */
static void im2col(float *col, const float *img, int C, int H, int W, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    if (OH == H && OW == W) {
        im2col_same(col, img, C, H, W, K, pad);
        return;
    }
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *row = col + ((long)(c * K + ky) * K + kx) * OH * OW;
                int x0, x1;
                valid_span(kx, pad, W, OW, &x0, &x1);
                for (int y = 0; y < OH; y++) {
                    float *dst = row + (long)y * OW;
                    int iy = y + ky - pad;
                    if (iy < 0 || iy >= H) {
#pragma omp simd
                        for (int x = 0; x < OW; x++)
                            dst[x] = 0.0f;
                        continue;
                    }
                    const float *src = img + ((long)c * H + iy) * W;
                    for (int x = 0; x < x0; x++)
                        dst[x] = 0.0f;
#pragma omp simd
                    for (int x = x0; x < x1; x++)
                        dst[x] = src[x + kx - pad];
                    for (int x = x1; x < OW; x++)
                        dst[x] = 0.0f;
                }
            }
}

/* img (C, H, W) += the columns scattered back (the adjoint of im2col); col
 * is scratch and may be changed. */
static void col2im_add(float *img, float *col, int C, int H, int W, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    if (OH == H && OW == W) {
        col2im_same_add(img, col, C, H, W, K, pad);
        return;
    }
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *row = col + ((long)(c * K + ky) * K + kx) * OH * OW;
                int x0, x1;
                valid_span(kx, pad, W, OW, &x0, &x1);
                for (int y = 0; y < OH; y++) {
                    int iy = y + ky - pad;
                    if (iy < 0 || iy >= H)
                        continue;
                    float *dst = img + ((long)c * H + iy) * W;
                    const float *src = row + (long)y * OW;
#pragma omp simd
                    for (int x = x0; x < x1; x++)
                        dst[x + kx - pad] += src[x];
                }
            }
}

/* The sum of x[0..n), in SUM_LANES interleaved partial sums (a fixed order,
 * so the result is reproducible) that the compiler keeps in one vector. */
#define SUM_LANES 16
static float sum_lanes(const float *x, long n)
{
    float part[SUM_LANES] = {0};
    long i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int j = 0; j < SUM_LANES; j++)
            part[j] += x[i + j];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i];
    for (int j = 0; j < SUM_LANES; j++)
        s += part[j];
    return s;
}

/* Each of the n rows of out (n, len) set to the constant v[row]. */
static void fill_rows(float *out, const float *v, long n, long len)
{
    for (long r = 0; r < n; r++)
        for (long j = 0; j < len; j++)
            out[r * len + j] = v[r];
}

void lethe_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                          float *col, int B, int C, int H, int W, int OC, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, P = OH * OW, CKK = C * K * K;
    for (int i = 0; i < B; i++) {
        im2col(col, inp + (long)i * C * H * W, C, H, W, K, pad);
        float *o = out + (long)i * OC * P;
        /* out = bias, then += w @ col in the GEMM */
        if (b)
            fill_rows(o, b, OC, P);
        lethe_gemm(0, 0, OC, P, CKK, 1.0f, w, CKK, col, P, b ? 1.0f : 0.0f, o, P);
    }
}

void lethe_conv2d_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, float *col, int B, int C, int H,
                           int W, int OC, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, P = OH * OW, CKK = C * K * K;
    for (int i = 0; i < B; i++) {
        const float *d = dout + (long)i * OC * P;
        im2col(col, inp + (long)i * C * H * W, C, H, W, K, pad);
        lethe_gemm(0, 1, OC, CKK, P, 1.0f, d, P, col, P, 1.0f, dw, CKK);
        if (db)
            for (int oc = 0; oc < OC; oc++)
                db[oc] += sum_lanes(d + (long)oc * P, P);
        if (dinp) {
            lethe_gemm(1, 0, CKK, P, OC, 1.0f, w, CKK, d, P, 0.0f, col, P);
            col2im_add(dinp + (long)i * C * H * W, col, C, H, W, K, pad);
        }
    }
}

void lethe_maxpool2_forward(float *out, int32_t *argmax, const float *inp, int B, int C, int H,
                            int W)
{
    /* The first largest of the window (x0, x1; x2, x3) in that order. */
    int OH = H / 2, OW = W / 2;
    for (long bc = 0; bc < (long)B * C; bc++) {
        const float *img = inp + bc * H * W;
        float *o = out + bc * OH * OW;
        int32_t *a = argmax + bc * OH * OW;
        for (int y = 0; y < OH; y++) {
            const float *r0 = img + (2 * y) * W, *r1 = r0 + W;
            for (int x = 0; x < OW; x++) {
                /* Running maxima and 0/1 comparison results combined with
                 * integer arithmetic: no branches on these unpredictable
                 * comparisons. A NaN after the first value is skipped. */
                float v0 = r0[2 * x], v1 = r0[2 * x + 1], v2 = r1[2 * x], v3 = r1[2 * x + 1];
                float m1 = v1 > v0 ? v1 : v0, m2 = v2 > m1 ? v2 : m1;
                float best = v3 > m2 ? v3 : m2;
                int32_t g1 = v1 > v0, g2 = v2 > m1, g3 = v3 > m2;
                int32_t off = g1;
                off += g2 * (W - off);
                off += g3 * (W + 1 - off);
                int32_t at = (2 * y) * W + 2 * x + off;
                o[y * OW + x] = best;
                a[y * OW + x] = at;
            }
        }
    }
}

void lethe_maxpool2_backward(float *dinp, const float *dout, const int32_t *argmax, int B,
                             int C, int H, int W)
{
    int P = (H / 2) * (W / 2);
    for (long bc = 0; bc < (long)B * C; bc++)
        for (int p = 0; p < P; p++)
            dinp[bc * H * W + argmax[bc * P + p]] += dout[bc * P + p];
}

double lethe_softmax_xent(float *dlogits, float *probs, float *losses, const float *logits,
                          const int32_t *labels, int B, int V, float scale)
{
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (long)i * V;
        float zmax = z[0];
        for (int v = 1; v < V; v++)
            zmax = z[v] > zmax ? z[v] : zmax;
        double sum = 0.0;
        for (int v = 0; v < V; v++)
            sum += exp((double)z[v] - zmax);
        double logsum = log(sum) + zmax;
        double loss = logsum - z[labels[i]];
        total += loss;
        if (losses)
            losses[i] = (float)loss;
        for (int v = 0; v < V; v++) {
            double p = exp((double)z[v] - logsum);
            if (probs)
                probs[(long)i * V + v] = (float)p;
            if (dlogits)
                dlogits[(long)i * V + v] += (float)(scale * (p - (v == labels[i])) / B);
        }
    }
    return total / B;
}

double lethe_mse(float *dpred, float *losses, const float *pred, const float *target, int B,
                 int D, float scale)
{
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int d = 0; d < D; d++) {
            double e = (double)pred[(long)i * D + d] - target[(long)i * D + d];
            s += e * e;
            if (dpred)
                dpred[(long)i * D + d] += (float)(scale * 2.0 * e / ((double)B * D));
        }
        if (losses)
            losses[i] = (float)(s / D);
        total += s / D;
    }
    return total / B;
}

double lethe_l1(float *dpred, float *losses, const float *pred, const float *target, int B,
                int D, float scale)
{
    double total = 0.0;
    for (int i = 0; i < B; i++) {
        double s = 0.0;
        for (int d = 0; d < D; d++) {
            double e = (double)pred[(long)i * D + d] - target[(long)i * D + d];
            s += fabs(e);
            if (dpred)
                dpred[(long)i * D + d] += (float)(scale * (e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0) /
                                                  ((double)B * D));
        }
        if (losses)
            losses[i] = (float)(s / D);
        total += s / D;
    }
    return total / B;
}
