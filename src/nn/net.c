/* Feed-forward networks: spec parsing, the parameter arena, forward and
 * backward through the kernels of lethe/kernels.h. */
#include "lethe/net.h"
#include "lethe/kernels.h"
#include "lethe/mem.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long layer_in_size(const lethe_layer *l) { return (long)l->in_c * l->in_h * l->in_w; }
static long layer_out_size(const lethe_layer *l) { return (long)l->out_c * l->out_h * l->out_w; }

/* Parse "N" or "CxHxW" into a shape. */
static int parse_shape(const char *s, int *c, int *h, int *w)
{
    char tail;
    if (sscanf(s, "%dx%dx%d%c", c, h, w, &tail) == 3)
        return *c > 0 && *h > 0 && *w > 0 ? 0 : -1;
    *h = *w = 1;
    if (sscanf(s, "%d%c", c, &tail) == 1)
        return *c > 0 ? 0 : -1;
    return -1;
}

static lethe_status add_layer(lethe_net *net, const char *tok, int *c, int *h, int *w)
{
    if (net->n_layers == LETHE_NET_MAX_LAYERS)
        return lethe_fail(LETHE_ERR_INVALID, "model spec: more than %d layers",
                          LETHE_NET_MAX_LAYERS);
    lethe_layer *l = &net->layers[net->n_layers];
    memset(l, 0, sizeof *l);
    l->in_c = *c, l->in_h = *h, l->in_w = *w;
    l->out_c = *c, l->out_h = *h, l->out_w = *w;
    const char *eq = strchr(tok, '=');
    size_t name_len = eq ? (size_t)(eq - tok) : strlen(tok);
    const char *arg = eq ? eq + 1 : NULL;
    char extra;
    int n = 0;
    double p = 0;
#define IS(name) (name_len == strlen(name) && !strncmp(tok, name, name_len))
    if (IS("linear") && arg && sscanf(arg, "%d%c", &n, &extra) == 1 && n > 0) {
        l->kind = LETHE_LAYER_LINEAR;
        l->in_c = (int)layer_in_size(l);
        l->in_h = l->in_w = 1;
        l->out_c = n, l->out_h = l->out_w = 1;
        l->w_len = (long)n * l->in_c;
        l->b_len = n;
    } else if (IS("conv") && arg && sscanf(arg, "%d%c", &n, &extra) == 1 && n > 0) {
        l->kind = LETHE_LAYER_CONV;
        l->out_c = n;
        l->w_len = (long)n * l->in_c * 9;
        l->b_len = n;
    } else if (IS("pool") && !arg) {
        if (*h % 2 || *w % 2)
            return lethe_fail(LETHE_ERR_INVALID,
                              "model spec: pool needs an even height and width, got %dx%d", *h,
                              *w);
        l->kind = LETHE_LAYER_POOL;
        l->out_h = *h / 2, l->out_w = *w / 2;
    } else if (IS("relu") && !arg) {
        l->kind = LETHE_LAYER_RELU;
    } else if (IS("gelu") && !arg) {
        l->kind = LETHE_LAYER_GELU;
    } else if (IS("tanh") && !arg) {
        l->kind = LETHE_LAYER_TANH;
    } else if (IS("dropout") && arg && sscanf(arg, "%lf%c", &p, &extra) == 1 && p >= 0 && p < 1) {
        l->kind = LETHE_LAYER_DROPOUT;
        l->p = (float)p;
    } else {
        return lethe_fail(LETHE_ERR_INVALID,
                          "model spec: bad layer '%s' (expected linear=N, conv=N, pool, relu, "
                          "gelu, tanh or dropout=P with 0 <= P < 1)",
                          tok);
    }
#undef IS
    l->w_off = net->n_params;
    l->b_off = l->w_off + l->w_len;
    net->n_params += l->w_len + l->b_len;
    *c = l->out_c, *h = l->out_h, *w = l->out_w;
    net->n_layers++;
    return LETHE_OK;
}

static lethe_status parse_spec(lethe_net *net, const char *spec)
{
    if (strlen(spec) >= sizeof net->spec)
        return lethe_fail(LETHE_ERR_INVALID, "model spec longer than %zu characters",
                          sizeof net->spec - 1);
    strcpy(net->spec, spec);
    char buf[sizeof net->spec];
    strcpy(buf, spec);
    char *save = NULL, *tok = strtok_r(buf, ";", &save);
    int c, h, w;
    if (!tok || strncmp(tok, "in=", 3) || parse_shape(tok + 3, &c, &h, &w))
        return lethe_fail(LETHE_ERR_INVALID,
                          "model spec '%s' must start with in=N or in=CxHxW", spec);
    net->n_in = (long)c * h * w;
    while ((tok = strtok_r(NULL, ";", &save))) {
        lethe_status st = add_layer(net, tok, &c, &h, &w);
        if (st)
            return st;
    }
    if (net->n_layers == 0)
        return lethe_fail(LETHE_ERR_INVALID, "model spec '%s' has no layers", spec);
    net->n_out = (long)c * h * w;
    return LETHE_OK;
}

lethe_net *lethe_net_init(const char *spec)
{
    lethe_net *net = calloc(1, sizeof *net);
    if (!net) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (parse_spec(net, spec) != LETHE_OK)
        goto fail;
    net->params = lethe_calloc((size_t)net->n_params, sizeof(float));
    net->grads = lethe_calloc((size_t)net->n_params, sizeof(float));
    net->acts = calloc((size_t)net->n_layers + 1, sizeof(float *));
    if (!net->params || !net->grads || !net->acts) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld parameters", net->n_params);
        goto fail;
    }
    return net;
fail:
    lethe_net_free(net);
    return NULL;
}

static void free_work(lethe_net *net)
{
    if (net->acts)
        for (int i = 0; i <= net->n_layers; i++) {
            lethe_free(net->acts[i]);
            net->acts[i] = NULL;
        }
    lethe_free(net->dbuf[0]);
    lethe_free(net->dbuf[1]);
    lethe_free(net->masks);
    lethe_free(net->argmax);
    lethe_free(net->col);
    lethe_free(net->bx);
    lethe_free(net->bt);
    lethe_free(net->bdout);
    lethe_free(net->bloss);
    lethe_free(net->by);
    lethe_free(net->bids);
    net->dbuf[0] = net->dbuf[1] = net->masks = net->col = NULL;
    net->bx = net->bt = net->bdout = net->bloss = NULL;
    net->argmax = net->by = NULL;
    net->bids = NULL;
    net->cap = 0;
}

void lethe_net_free(lethe_net *net)
{
    if (!net)
        return;
    free_work(net);
    free(net->acts);
    lethe_free(net->params);
    lethe_free(net->grads);
    free(net);
}

lethe_status lethe_net_mlp_spec(char *buf, int bufsize, const char *widths, const char *act,
                                double dropout)
{
    if (strcmp(act, "relu") && strcmp(act, "gelu") && strcmp(act, "tanh"))
        return lethe_fail(LETHE_ERR_INVALID, "activation '%s' is not relu, gelu or tanh", act);
    if (!(dropout >= 0 && dropout < 1))
        return lethe_fail(LETHE_ERR_INVALID, "dropout %g is not in [0, 1)", dropout);
    int w[LETHE_NET_MAX_LAYERS], n = 0;
    const char *s = widths;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 1 << 24 || (*end && *end != '-') || n == 12)
            return lethe_fail(LETHE_ERR_INVALID,
                              "MLP widths '%s' must be positive integers joined by '-', "
                              "at most 12 of them",
                              widths);
        w[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (n < 2)
        return lethe_fail(LETHE_ERR_INVALID, "MLP widths '%s' need an input and an output",
                          widths);
    int used = snprintf(buf, (size_t)bufsize, "in=%d", w[0]);
    for (int i = 1; i < n && used < bufsize; i++) {
        used += snprintf(buf + used, (size_t)(bufsize - used), ";linear=%d", w[i]);
        if (i < n - 1 && used < bufsize)
            used += snprintf(buf + used, (size_t)(bufsize - used), ";%s", act);
        if (i < n - 1 && dropout > 0 && used < bufsize)
            used += snprintf(buf + used, (size_t)(bufsize - used), ";dropout=%g", dropout);
    }
    if (used >= bufsize)
        return lethe_fail(LETHE_ERR_INVALID, "MLP widths '%s' make too long a spec", widths);
    return LETHE_OK;
}

void lethe_net_init_params(lethe_net *net, uint64_t seed)
{
    for (int i = 0; i < net->n_layers; i++) {
        lethe_layer *l = &net->layers[i];
        if (!l->w_len)
            continue;
        long fan_in = l->kind == LETHE_LAYER_CONV ? (long)l->in_c * 9 : l->in_c;
        double bound = 1.0 / sqrt((double)fan_in);
        lethe_rng r = lethe_rng_init(seed, (uint64_t)i);
        for (long k = 0; k < l->w_len + l->b_len; k++)
            net->params[l->w_off + k] = (float)((2.0 * lethe_rng_uniform(&r) - 1.0) * bound);
    }
}

lethe_status lethe_net_reserve(lethe_net *net, int B)
{
    if (B <= net->cap)
        return LETHE_OK;
    free_work(net);
    long max_size = net->n_in, n_mask = 0, n_arg = 0, n_col = 1;
    for (int i = 0; i < net->n_layers; i++) {
        const lethe_layer *l = &net->layers[i];
        long out = layer_out_size(l);
        max_size = out > max_size ? out : max_size;
        if (l->kind == LETHE_LAYER_DROPOUT)
            n_mask += out;
        if (l->kind == LETHE_LAYER_POOL)
            n_arg += out;
        if (l->kind == LETHE_LAYER_CONV && (long)l->in_c * 9 * l->in_h * l->in_w > n_col)
            n_col = (long)l->in_c * 9 * l->in_h * l->in_w;
    }
    int ok = 1;
    for (int i = 0; i <= net->n_layers; i++) {
        long size = i == 0 ? net->n_in : layer_out_size(&net->layers[i - 1]);
        ok &= (net->acts[i] = lethe_calloc((size_t)B * (size_t)size, sizeof(float))) != NULL;
    }
    ok &= (net->dbuf[0] = lethe_calloc((size_t)B * (size_t)max_size, sizeof(float))) != NULL;
    ok &= (net->dbuf[1] = lethe_calloc((size_t)B * (size_t)max_size, sizeof(float))) != NULL;
    ok &= (net->masks = lethe_calloc((size_t)B * (size_t)n_mask + 1, sizeof(float))) != NULL;
    ok &= (net->argmax = lethe_calloc((size_t)B * (size_t)n_arg + 1, sizeof(int32_t))) != NULL;
    ok &= (net->col = lethe_calloc((size_t)n_col, sizeof(float))) != NULL;
    ok &= (net->bx = lethe_calloc((size_t)B * (size_t)net->n_in, sizeof(float))) != NULL;
    ok &= (net->bt = lethe_calloc((size_t)B * (size_t)net->n_out, sizeof(float))) != NULL;
    ok &= (net->bdout = lethe_calloc((size_t)B * (size_t)net->n_out, sizeof(float))) != NULL;
    ok &= (net->bloss = lethe_calloc((size_t)B, sizeof(float))) != NULL;
    ok &= (net->by = lethe_calloc((size_t)B, sizeof(int32_t))) != NULL;
    ok &= (net->bids = lethe_calloc((size_t)B, sizeof(uint64_t))) != NULL;
    if (!ok) {
        free_work(net);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for a batch of %d samples", B);
    }
    net->cap = B;
    return LETHE_OK;
}

/* Offsets of layer i's dropout mask / pooling indices within their buffers. */
static long mask_offset(const lethe_net *net, int i, int B)
{
    long off = 0;
    for (int k = 0; k < i; k++)
        if (net->layers[k].kind == LETHE_LAYER_DROPOUT)
            off += (long)B * layer_out_size(&net->layers[k]);
    return off;
}

static long argmax_offset(const lethe_net *net, int i, int B)
{
    long off = 0;
    for (int k = 0; k < i; k++)
        if (net->layers[k].kind == LETHE_LAYER_POOL)
            off += (long)B * layer_out_size(&net->layers[k]);
    return off;
}

static void draw_mask(float *mask, long n, float p, uint64_t seed, uint64_t id, int layer)
{
    lethe_rng r = lethe_rng_init(seed, id);
    lethe_rng_seek(&r, (uint64_t)layer << 40);
    float keep = 1.0f / (1.0f - p);
    for (long j = 0; j < n; j++)
        mask[j] = lethe_rng_uniformf(&r) < p ? 0.0f : keep;
}

/* Forward through net's layers with the parameters params (laid out as
 * net->params), in net's work space. */
static const float *forward(lethe_net *net, const float *params, const float *x, int B,
                            int train, const uint64_t *ids, uint64_t seed)
{
    if (lethe_net_reserve(net, B) != LETHE_OK)
        return NULL;
    if (x != net->acts[0])
        memmove(net->acts[0], x, sizeof(float) * (size_t)B * (size_t)net->n_in);
    for (int i = 0; i < net->n_layers; i++) {
        const lethe_layer *l = &net->layers[i];
        const float *in = net->acts[i];
        float *out = net->acts[i + 1];
        const float *w = params + l->w_off, *b = params + l->b_off;
        long n = (long)B * layer_out_size(l);
        switch (l->kind) {
        case LETHE_LAYER_LINEAR:
            lethe_linear_forward(out, in, w, b, B, l->in_c, l->out_c);
            break;
        case LETHE_LAYER_CONV:
            lethe_conv2d_forward(out, in, w, b, net->col, B, l->in_c, l->in_h, l->in_w, l->out_c,
                                 3, 1);
            break;
        case LETHE_LAYER_POOL:
            lethe_maxpool2_forward(out, net->argmax + argmax_offset(net, i, B), in, B, l->in_c,
                                   l->in_h, l->in_w);
            break;
        case LETHE_LAYER_RELU: lethe_relu_forward(out, in, n); break;
        case LETHE_LAYER_GELU: lethe_gelu_forward(out, in, n); break;
        case LETHE_LAYER_TANH: lethe_tanh_forward(out, in, n); break;
        case LETHE_LAYER_DROPOUT:
            if (train && l->p > 0) {
                float *mask = net->masks + mask_offset(net, i, B);
                long size = layer_out_size(l);
                for (int s = 0; s < B; s++)
                    draw_mask(mask + s * size, size, l->p, seed, ids ? ids[s] : (uint64_t)s, i);
                lethe_dropout_forward(out, in, mask, n);
            } else {
                float *mask = net->masks + mask_offset(net, i, B);
                for (long k = 0; k < n; k++)
                    mask[k] = 1.0f;
                memcpy(out, in, sizeof(float) * (size_t)n);
            }
            break;
        }
    }
    return net->acts[net->n_layers];
}

const float *lethe_net_forward(lethe_net *net, const float *x, int B, int train,
                               const uint64_t *ids, uint64_t seed)
{
    return forward(net, net->params, x, B, train, ids, seed);
}

const float *lethe_net_forward_with(lethe_net *work, const float *params, const float *x, int B)
{
    return forward(work, params, x, B, 0, NULL, 0);
}

void lethe_net_backward(lethe_net *net, const float *dout, int B, float *dx)
{
    LETHE_ASSERT(B <= net->cap);
    const float *cur = dout;
    int which = 0;
    for (int i = net->n_layers - 1; i >= 0; i--) {
        const lethe_layer *l = &net->layers[i];
        int need_din = i > 0 || dx;
        float *din = net->dbuf[which];
        which ^= 1;
        long n_in = (long)B * layer_in_size(l), n_out = (long)B * layer_out_size(l);
        if (need_din)
            memset(din, 0, sizeof(float) * (size_t)n_in);
        const float *in = net->acts[i], *out = net->acts[i + 1];
        const float *w = net->params + l->w_off;
        float *dw = net->grads + l->w_off, *db = net->grads + l->b_off;
        switch (l->kind) {
        case LETHE_LAYER_LINEAR:
            lethe_linear_backward(need_din ? din : NULL, dw, db, cur, in, w, B, l->in_c, l->out_c);
            break;
        case LETHE_LAYER_CONV:
            lethe_conv2d_backward(need_din ? din : NULL, dw, db, cur, in, w, net->col, B, l->in_c,
                                  l->in_h, l->in_w, l->out_c, 3, 1);
            break;
        case LETHE_LAYER_POOL:
            if (need_din)
                lethe_maxpool2_backward(din, cur, net->argmax + argmax_offset(net, i, B), B,
                                        l->in_c, l->in_h, l->in_w);
            break;
        case LETHE_LAYER_RELU:
            if (need_din) lethe_relu_backward(din, cur, in, n_out);
            break;
        case LETHE_LAYER_GELU:
            if (need_din) lethe_gelu_backward(din, cur, in, n_out);
            break;
        case LETHE_LAYER_TANH:
            if (need_din) lethe_tanh_backward(din, cur, out, n_out);
            break;
        case LETHE_LAYER_DROPOUT:
            if (need_din)
                lethe_dropout_backward(din, cur, net->masks + mask_offset(net, i, B), n_out);
            break;
        }
        cur = din;
    }
    if (dx)
        memcpy(dx, cur, sizeof(float) * (size_t)B * (size_t)net->n_in);
}

const float *lethe_net_activation(const lethe_net *net, int i, long *size)
{
    LETHE_ASSERT(i >= 0 && i <= net->n_layers);
    if (size)
        *size = i == 0 ? net->n_in : layer_out_size(&net->layers[i - 1]);
    return net->acts[i];
}

int lethe_net_embedding_layer(const lethe_net *net)
{
    for (int i = net->n_layers - 1; i >= 0; i--)
        if (net->layers[i].kind == LETHE_LAYER_LINEAR)
            return i;
    return net->n_layers;
}
