/* Networks cut into segments, for methods that put a gradient on an
 * intermediate representation.
 *
 * lethe_net_backward starts from the output. LAF backpropagates a gradient
 * on the embedding into the layers below it, and Blindspot adds the
 * gradient of an attention-transfer loss at every hidden activation. Both
 * cut the network at those layers into consecutive segments, each a
 * lethe_net of its own built from the same layer tokens, whose parameter
 * and gradient arrays are views into the whole network's arena (a
 * segment's layers are a contiguous run of the arena, laid out in the same
 * order). The segments share the parameters by construction: an optimizer
 * step on the whole network is seen by every segment, and each segment's
 * backward accumulates into the whole network's gradient array. */
#include "common.h"
#include "lethe/mem.h"
#include "lethe/rng.h"

#include <stdio.h>
#include <string.h>

#define STREAM_SEGMENT 0x5e6ull

/* The token of layer l in a spec ("linear=64", "relu", ...). */
static int layer_token(char *buf, size_t cap, const lethe_layer *l)
{
    switch (l->kind) {
    case LETHE_LAYER_LINEAR: return snprintf(buf, cap, ";linear=%d", l->out_c);
    case LETHE_LAYER_CONV: return snprintf(buf, cap, ";conv=%d", l->out_c);
    case LETHE_LAYER_POOL: return snprintf(buf, cap, ";pool");
    case LETHE_LAYER_RELU: return snprintf(buf, cap, ";relu");
    case LETHE_LAYER_GELU: return snprintf(buf, cap, ";gelu");
    case LETHE_LAYER_TANH: return snprintf(buf, cap, ";tanh");
    case LETHE_LAYER_DROPOUT: return snprintf(buf, cap, ";dropout=%.9g", (double)l->p);
    }
    return snprintf(buf, cap, ";?");
}

/* Start of layer i's parameters in net's arena (n_params for i == n_layers). */
static long arena_start(const lethe_net *net, int i)
{
    return i < net->n_layers ? net->layers[i].w_off : net->n_params;
}

/* The activation size at boundary b (the input of layer b). */
static long boundary_size(const lethe_net *net, int b)
{
    long size;
    lethe_net_activation(net, b, &size);
    return size;
}

/* Detach segment s's views so lethe_net_free does not free the arena. */
static void seg_free(lethe_net *seg)
{
    if (!seg)
        return;
    seg->params = NULL;
    seg->grads = NULL;
    lethe_net_free(seg);
}

void ul_chain_free(ul_chain *c)
{
    for (int s = 0; s < c->n; s++)
        seg_free(c->seg[s]);
    lethe_free(c->g[0]);
    lethe_free(c->g[1]);
    memset(c, 0, sizeof *c);
}

lethe_status ul_chain_init(ul_chain *c, lethe_net *net, const int *cuts, int n_cuts)
{
    memset(c, 0, sizeof *c);
    c->net = net;
    c->b[0] = 0;
    for (int k = 0; k < n_cuts; k++) {
        LETHE_ASSERT(cuts[k] > c->b[k] && cuts[k] < net->n_layers);
        c->b[k + 1] = cuts[k];
    }
    c->n = n_cuts + 1;
    c->b[c->n] = net->n_layers;
    for (int s = 0; s < c->n; s++) {
        const lethe_layer *first = &net->layers[c->b[s]];
        char spec[sizeof net->spec];
        int used = snprintf(spec, sizeof spec, "in=%dx%dx%d", first->in_c, first->in_h,
                            first->in_w);
        if (first->in_h == 1 && first->in_w == 1)
            used = snprintf(spec, sizeof spec, "in=%d", first->in_c);
        for (int i = c->b[s]; i < c->b[s + 1] && used < (int)sizeof spec; i++)
            used += layer_token(spec + used, sizeof spec - (size_t)used, &net->layers[i]);
        if (used >= (int)sizeof spec) {
            ul_chain_free(c);
            return lethe_fail(LETHE_ERR_INVALID, "model spec too long to cut into segments");
        }
        lethe_net *seg = lethe_net_init(spec);
        if (!seg) {
            ul_chain_free(c);
            return LETHE_ERR_NOMEM;
        }
        c->seg[s] = seg;
        long off = arena_start(net, c->b[s]);
        LETHE_ASSERT(seg->n_params == arena_start(net, c->b[s + 1]) - off);
        LETHE_ASSERT(seg->n_out == boundary_size(net, c->b[s + 1]));
        lethe_free(seg->params);
        lethe_free(seg->grads);
        seg->params = net->params + off;
        seg->grads = net->grads + off;
    }
    return LETHE_OK;
}

const float *ul_chain_forward(ul_chain *c, const float *x, int B, int train, const uint64_t *ids,
                              uint64_t seed)
{
    const float *cur = x;
    for (int s = 0; s < c->n && cur; s++)
        cur = lethe_net_forward(c->seg[s], cur, B, train, ids,
                                lethe_rng_hash(seed, STREAM_SEGMENT, (uint64_t)s));
    return cur;
}

const float *ul_chain_act(const ul_chain *c, int k, long *size)
{
    LETHE_ASSERT(k >= 0 && k <= c->n);
    if (k < c->n)
        return lethe_net_activation(c->seg[k], 0, size);
    const lethe_net *last = c->seg[c->n - 1];
    return lethe_net_activation(last, last->n_layers, size);
}

lethe_status ul_chain_backward(ul_chain *c, const float *const *dact, int B, float *dx)
{
    long max = 0;
    for (int k = 0; k <= c->n; k++) {
        long size = boundary_size(c->net, c->b[k]);
        max = size > max ? size : max;
    }
    if (B > c->cap) {
        lethe_free(c->g[0]);
        lethe_free(c->g[1]);
        c->g[0] = lethe_calloc((size_t)B * (size_t)max, sizeof(float));
        c->g[1] = lethe_calloc((size_t)B * (size_t)max, sizeof(float));
        c->cap = c->g[0] && c->g[1] ? B : 0;
        if (!c->cap)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a batch of %d", B);
    }
    /* g[cur] holds the gradient at boundary k, starting at the output */
    int cur = 0;
    long n = (long)B * boundary_size(c->net, c->b[c->n]);
    if (dact && dact[c->n])
        memcpy(c->g[cur], dact[c->n], sizeof(float) * (size_t)n);
    else
        memset(c->g[cur], 0, sizeof(float) * (size_t)n);
    for (int s = c->n - 1; s >= 0; s--) {
        float *below = s > 0 ? c->g[cur ^ 1] : dx;
        lethe_net_backward(c->seg[s], c->g[cur], B, below);
        if (s == 0)
            break;
        cur ^= 1;
        if (dact && dact[s]) {
            long m = (long)B * boundary_size(c->net, c->b[s]);
            for (long i = 0; i < m; i++)
                c->g[cur][i] += dact[s][i];
        }
    }
    return LETHE_OK;
}
