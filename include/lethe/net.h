/* Feed-forward networks (MLPs and small CNNs) over one flat parameter arena.
 *
 * A network is a sequence of layers described by a spec string, e.g.
 *   "in=784;linear=256;relu;dropout=0.1;linear=10"
 *   "in=1x28x28;conv=16;relu;pool;conv=32;relu;pool;linear=128;relu;linear=10"
 * Layers: linear=N (fully connected; flattens its input), conv=N (3x3,
 * stride 1, padding 1), pool (2x2 max), relu, gelu, tanh, dropout=P.
 * Parameters, gradients and optimizer state are each one contiguous float
 * array (DESIGN §4.1); layer i's weight and bias are views into it, named
 * "layers.I.weight" / "layers.I.bias" in model files (PyTorch's nn.Linear
 * (out, in) and nn.Conv2d (out, in, 3, 3) layouts).
 *
 * Evaluation is per-sample deterministic (no batch statistics); dropout masks
 * are drawn from the sample ids, so a sample's draws do not depend on which
 * other samples share its batch (DESIGN §5). */
#ifndef LETHE_NET_H
#define LETHE_NET_H

#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_NET_MAX_LAYERS 32

typedef enum lethe_layer_kind {
    LETHE_LAYER_LINEAR,
    LETHE_LAYER_CONV,
    LETHE_LAYER_POOL,
    LETHE_LAYER_RELU,
    LETHE_LAYER_GELU,
    LETHE_LAYER_TANH,
    LETHE_LAYER_DROPOUT
} lethe_layer_kind;

typedef struct lethe_layer {
    lethe_layer_kind kind;
    int in_c, in_h, in_w;    /* input shape; fully connected inputs are (n, 1, 1) */
    int out_c, out_h, out_w; /* output shape */
    long w_off, w_len;       /* weight view in the arena (0 length if none) */
    long b_off, b_len;
    float p;                 /* dropout probability */
} lethe_layer;

typedef struct lethe_net {
    char spec[512];
    int n_layers;
    lethe_layer layers[LETHE_NET_MAX_LAYERS];
    long n_in, n_out;        /* features per sample in and out */
    long n_params;
    float *params;           /* (n_params) */
    float *grads;            /* (n_params) */
    /* Work space for batches of up to `cap` samples, grown on demand. */
    int cap;
    float **acts;            /* acts[i]: input of layer i (cap, size_i); acts[n_layers]: output */
    float *dbuf[2];          /* ping-pong gradients of activations */
    float *masks;            /* dropout masks, per dropout layer, (cap, size) each */
    int32_t *argmax;         /* pooling indices, per pool layer */
    float *col;              /* im2col scratch */
    /* Batch staging for callers (training, evaluation), (cap, ...) each. */
    float *bx;               /* (cap, n_in) inputs */
    float *bt;               /* (cap, n_out) regression targets */
    float *bdout;            /* (cap, n_out) output gradients */
    float *bloss;            /* (cap) per-sample losses */
    int32_t *by;             /* (cap) labels */
    uint64_t *bids;          /* (cap) sample ids */
} lethe_net;

/* Parse `spec` and allocate parameters (zero) and gradients. NULL (detail
 * set) on a bad spec. Free with lethe_net_free. */
lethe_net *lethe_net_init(const char *spec);
void lethe_net_free(lethe_net *net); /* NULL is a no-op */

/* The spec of an MLP: widths "784-256-256-10" with activation relu|gelu|tanh
 * after every hidden layer, and dropout p (0 for none) after each activation.
 * Writes into buf; returns LETHE_ERR_INVALID on a bad width list. */
lethe_status lethe_net_mlp_spec(char *buf, int bufsize, const char *widths, const char *act,
                                double dropout);

/* PyTorch's default initialisation: weight and bias ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)), drawn from (seed, stream = layer index). */
void lethe_net_init_params(lethe_net *net, uint64_t seed);

/* Make room for batches of B samples (done by forward as needed). */
lethe_status lethe_net_reserve(lethe_net *net, int B);

/* Forward B samples x (B, n_in) to the output (B, n_out), which stays valid
 * until the next forward. train != 0 applies dropout with masks drawn from
 * (seed, ids[i]); ids may be NULL when train == 0. NULL (detail set) on
 * out-of-memory. */
const float *lethe_net_forward(lethe_net *net, const float *x, int B, int train,
                               const uint64_t *ids, uint64_t seed);

/* Evaluation-mode forward of B samples x (B, n_in) through work's layers
 * with the parameters params (work->n_params floats, laid out as
 * work->params: those of another net of the same spec), into work's space:
 * the output (B, n_out) stays valid until work's next forward. params is
 * only read, so one model serves several threads at once, each forwarding
 * through a work net of its own. NULL (detail set) on out-of-memory. */
const float *lethe_net_forward_with(lethe_net *work, const float *params, const float *x, int B);

/* Backpropagate dout (B, n_out) through the last forward, accumulating
 * parameter gradients into net->grads (+=). If dx is not NULL, the gradient
 * with respect to the input is written (=) to dx (B, n_in). */
void lethe_net_backward(lethe_net *net, const float *dout, int B, float *dx);

/* The input of layer i (0 <= i <= n_layers) from the last forward, (B, size);
 * i == n_layers is the output. lethe_net_embedding_layer gives the index of
 * the penultimate representation (the input of the last linear layer). */
const float *lethe_net_activation(const lethe_net *net, int i, long *size);
int lethe_net_embedding_layer(const lethe_net *net);

LETHE_API_END
#endif
