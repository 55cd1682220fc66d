/* Neural-network kernels as forward/backward pairs (DESIGN §4.2).
 *
 * Pure functions on raw row-major float pointers: no allocation, a shape
 * comment on every argument, gradients named d... and accumulated with +=
 * (callers zero them once per step). Scratch buffers, where needed, are
 * passed in and their sizes stated. */
#ifndef LETHE_KERNELS_H
#define LETHE_KERNELS_H

#include <stdint.h>

#include "lethe/api.h"
LETHE_API_BEGIN

/* ---- fully connected: out = inp @ w^T + b ---------------------------- */
void lethe_linear_forward(float *out,       /* (B, OC) */
                          const float *inp, /* (B, C) */
                          const float *w,   /* (OC, C) */
                          const float *b,   /* (OC) or NULL */
                          int B, int C, int OC);
void lethe_linear_backward(float *dinp,       /* (B, C) or NULL to skip */
                           float *dw,         /* (OC, C) */
                           float *db,         /* (OC) or NULL */
                           const float *dout, /* (B, OC) */
                           const float *inp,  /* (B, C) */
                           const float *w,    /* (OC, C) */
                           int B, int C, int OC);

/* ---- elementwise activations over n values ---------------------------- */
/* Backward takes the forward input `inp` (and for tanh the output). */
void lethe_relu_forward(float *out, const float *inp, long n);
void lethe_relu_backward(float *dinp, const float *dout, const float *inp, long n);
/* GELU with the exact erf form (PyTorch's nn.GELU() default). */
void lethe_gelu_forward(float *out, const float *inp, long n);
void lethe_gelu_backward(float *dinp, const float *dout, const float *inp, long n);
void lethe_tanh_forward(float *out, const float *inp, long n);
void lethe_tanh_backward(float *dinp, const float *dout, const float *out, long n);

/* Inverted dropout: out = inp * mask, where mask holds 0 or 1/(1-p); the
 * mask is drawn by the caller (keyed by sample id, DESIGN §5). */
void lethe_dropout_forward(float *out, const float *inp, const float *mask, long n);
void lethe_dropout_backward(float *dinp, const float *dout, const float *mask, long n);

/* ---- 2-D convolution, stride 1, zero padding `pad`, via im2col + GEMM --- */
/* Output size: OH = H + 2 pad - K + 1, OW likewise. */
void lethe_conv2d_forward(float *out,       /* (B, OC, OH, OW) */
                          const float *inp, /* (B, C, H, W) */
                          const float *w,   /* (OC, C, K, K) */
                          const float *b,   /* (OC) or NULL */
                          float *col,       /* scratch (C*K*K, OH*OW) */
                          int B, int C, int H, int W, int OC, int K, int pad);
void lethe_conv2d_backward(float *dinp,       /* (B, C, H, W) or NULL */
                           float *dw,         /* (OC, C, K, K) */
                           float *db,         /* (OC) or NULL */
                           const float *dout, /* (B, OC, OH, OW) */
                           const float *inp,  /* (B, C, H, W) */
                           const float *w,    /* (OC, C, K, K) */
                           float *col,        /* scratch (C*K*K, OH*OW) */
                           int B, int C, int H, int W, int OC, int K, int pad);

/* ---- 2x2 max pooling, stride 2 (H and W even) -------------------------- */
void lethe_maxpool2_forward(float *out,       /* (B, C, H/2, W/2) */
                            int32_t *argmax,  /* (B, C, H/2, W/2) index into inp */
                            const float *inp, /* (B, C, H, W) */
                            int B, int C, int H, int W);
void lethe_maxpool2_backward(float *dinp,        /* (B, C, H, W) */
                             const float *dout,  /* (B, C, H/2, W/2) */
                             const int32_t *argmax, int B, int C, int H, int W);

/* ---- losses: each returns the mean loss over the batch, writes the
 *      per-sample losses (for membership attacks and per-sample evaluation)
 *      and the gradient of the mean, scaled by `scale`, into d... (+=). --- */

/* Softmax cross-entropy over V classes. probs may alias nothing. */
double lethe_softmax_xent(float *dlogits,      /* (B, V) or NULL */
                          float *probs,        /* (B, V) out, or NULL */
                          float *losses,       /* (B) out, or NULL */
                          const float *logits, /* (B, V) */
                          const int32_t *labels, /* (B), each in [0, V) */
                          int B, int V, float scale);
/* Mean squared error per sample: mean over D outputs of (pred - target)^2. */
double lethe_mse(float *dpred, float *losses, const float *pred, const float *target, int B,
                 int D, float scale);
/* Mean absolute error per sample (subgradient 0 at equality). */
double lethe_l1(float *dpred, float *losses, const float *pred, const float *target, int B,
                int D, float scale);

LETHE_API_END
#endif
