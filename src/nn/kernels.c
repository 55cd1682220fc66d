/* Forward/backward kernels for MLPs and small CNNs. */
#include "lethe/kernels.h"
#include "lethe/gemm.h"

#include <math.h>
#include <string.h>

void lethe_linear_forward(float *out, const float *inp, const float *w, const float *b, int B,
                          int C, int OC)
{
    lethe_gemm(0, 1, B, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    if (b)
        for (int i = 0; i < B; i++)
            for (int o = 0; o < OC; o++)
                out[(long)i * OC + o] += b[o];
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

/* col (C*K*K, OH*OW) from one image (C, H, W). */
static void im2col(float *col, const float *img, int C, int H, int W, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *row = col + ((long)(c * K + ky) * K + kx) * OH * OW;
                for (int y = 0; y < OH; y++) {
                    int iy = y + ky - pad;
                    for (int x = 0; x < OW; x++) {
                        int ix = x + kx - pad;
                        row[y * OW + x] = iy >= 0 && iy < H && ix >= 0 && ix < W
                                              ? img[((long)c * H + iy) * W + ix]
                                              : 0.0f;
                    }
                }
            }
}

/* img (C, H, W) += the columns scattered back (the adjoint of im2col). */
static void col2im_add(float *img, const float *col, int C, int H, int W, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *row = col + ((long)(c * K + ky) * K + kx) * OH * OW;
                for (int y = 0; y < OH; y++) {
                    int iy = y + ky - pad;
                    if (iy < 0 || iy >= H)
                        continue;
                    for (int x = 0; x < OW; x++) {
                        int ix = x + kx - pad;
                        if (ix >= 0 && ix < W)
                            img[((long)c * H + iy) * W + ix] += row[y * OW + x];
                    }
                }
            }
}

void lethe_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                          float *col, int B, int C, int H, int W, int OC, int K, int pad)
{
    int OH = H + 2 * pad - K + 1, OW = W + 2 * pad - K + 1, P = OH * OW, CKK = C * K * K;
    for (int i = 0; i < B; i++) {
        im2col(col, inp + (long)i * C * H * W, C, H, W, K, pad);
        float *o = out + (long)i * OC * P;
        lethe_gemm(0, 0, OC, P, CKK, 1.0f, w, CKK, col, P, 0.0f, o, P);
        if (b)
            for (int oc = 0; oc < OC; oc++)
                for (int p = 0; p < P; p++)
                    o[(long)oc * P + p] += b[oc];
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
                for (int p = 0; p < P; p++)
                    db[oc] += d[(long)oc * P + p];
        if (dinp) {
            lethe_gemm(1, 0, CKK, P, OC, 1.0f, w, CKK, d, P, 0.0f, col, P);
            col2im_add(dinp + (long)i * C * H * W, col, C, H, W, K, pad);
        }
    }
}

void lethe_maxpool2_forward(float *out, int32_t *argmax, const float *inp, int B, int C, int H,
                            int W)
{
    int OH = H / 2, OW = W / 2;
    for (long bc = 0; bc < (long)B * C; bc++) {
        const float *img = inp + bc * H * W;
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int best = (2 * y) * W + 2 * x;
                int cand[3] = {best + 1, best + W, best + W + 1};
                for (int k = 0; k < 3; k++)
                    if (img[cand[k]] > img[best])
                        best = cand[k];
                long o = bc * OH * OW + y * OW + x;
                out[o] = img[best];
                argmax[o] = best;
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
