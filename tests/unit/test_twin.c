/* lethe's networks against their PyTorch twins (tests/ref/make_torch_twin.py):
 * logits, loss, every parameter gradient, and 10 AdamW and 10 SGD steps.
 * Tolerances: logits and loss 1e-5, gradients 1e-4, parameters after 10
 * steps 1e-4 (absolute plus relative); float32 on both sides. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/kernels.h"
#include "lethe/net.h"
#include "lethe/optim.h"
#include "lethe/safetensors.h"

static float *tensor(const lethe_safetensors *st, const char *name, size_t *numel)
{
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    if (!t)
        return NULL;
    float *v = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    if (lethe_safetensors_to_f32(st, t, v) != LETHE_OK) {
        free(v);
        return NULL;
    }
    if (numel)
        *numel = t->numel;
    return v;
}

/* Load tensors "<prefix>layers.I.weight|bias" into dst (an arena layout). */
static int load_params(const lethe_safetensors *st, const lethe_net *net, const char *prefix,
                       float *dst)
{
    for (int i = 0; i < net->n_layers; i++) {
        const lethe_layer *l = &net->layers[i];
        if (!l->w_len)
            continue;
        char name[96];
        size_t n;
        float *v;
        snprintf(name, sizeof name, "%slayers.%d.weight", prefix, i);
        if (!(v = tensor(st, name, &n)) || (long)n != l->w_len) {
            free(v);
            return -1;
        }
        memcpy(dst + l->w_off, v, n * sizeof(float));
        free(v);
        snprintf(name, sizeof name, "%slayers.%d.bias", prefix, i);
        if (!(v = tensor(st, name, &n)) || (long)n != l->b_len) {
            free(v);
            return -1;
        }
        memcpy(dst + l->b_off, v, n * sizeof(float));
        free(v);
    }
    return 0;
}

static double worst_diff(const float *a, const float *b, long n)
{
    double w = 0;
    for (long i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i])));
    return w;
}

/* Run 10 steps of `kind` from the initial parameters on the fixture's batch. */
static double run_steps(lethe_net *net, const float *init, const float *x, const int32_t *y,
                        int B, lethe_optim_kind kind, const float *want)
{
    memcpy(net->params, init, sizeof(float) * (size_t)net->n_params);
    lethe_optim *o = lethe_optim_init(kind, net->n_params);
    float lr = 1e-2f;
    if (kind == LETHE_OPTIM_SGD) {
        o->momentum = 0.9f, o->weight_decay = 1e-3f, lr = 0.05f;
    }
    float *dlogits = calloc((size_t)(B * net->n_out), sizeof(float));
    for (int s = 0; s < 10; s++) {
        memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
        memset(dlogits, 0, sizeof(float) * (size_t)(B * net->n_out));
        const float *logits = lethe_net_forward(net, x, B, 0, NULL, 0);
        lethe_softmax_xent(dlogits, NULL, NULL, logits, y, B, (int)net->n_out, 1.0f);
        lethe_net_backward(net, dlogits, B, NULL);
        lethe_optim_step(o, net->params, net->grads, lr);
    }
    free(dlogits);
    lethe_optim_free(o);
    return worst_diff(net->params, want, net->n_params);
}

static void check_twin(const char *file)
{
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", file);
    lethe_safetensors *st = NULL;
    CHECK_OK(lethe_safetensors_open(path, &st));
    const char *spec = lethe_safetensors_meta(st, "spec");
    CHECK(spec);
    lethe_net *net = lethe_net_init(spec);
    CHECK(net);
    size_t nx = 0, ny = 0, nl = 0;
    float *x = tensor(st, "x", &nx), *yf = tensor(st, "y", &ny), *want = tensor(st, "logits", &nl);
    CHECK(x && yf && want);
    int B = (int)ny;
    int32_t *y = malloc(sizeof(int32_t) * ny);
    for (size_t i = 0; i < ny; i++)
        y[i] = (int32_t)yf[i];
    float *init = calloc((size_t)net->n_params, sizeof(float));
    float *g_want = calloc((size_t)net->n_params, sizeof(float));
    float *p_adamw = calloc((size_t)net->n_params, sizeof(float));
    float *p_sgd = calloc((size_t)net->n_params, sizeof(float));
    int loaded = !load_params(st, net, "init.", init) && !load_params(st, net, "grad.", g_want) &&
                 !load_params(st, net, "adamw10.", p_adamw) &&
                 !load_params(st, net, "sgd10.", p_sgd);
    double e_logits = 1, e_loss = 1, e_grad = 1, e_adamw = 1, e_sgd = 1;
    if (loaded && (long)nx == B * net->n_in && (long)nl == B * net->n_out) {
        memcpy(net->params, init, sizeof(float) * (size_t)net->n_params);
        const float *logits = lethe_net_forward(net, x, B, 0, NULL, 0);
        e_logits = worst_diff(logits, want, (long)nl);
        float *dlogits = calloc(nl, sizeof(float));
        double loss = lethe_softmax_xent(dlogits, NULL, NULL, logits, y, B, (int)net->n_out, 1);
        e_loss = fabs(loss - atof(lethe_safetensors_meta(st, "loss")));
        memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
        lethe_net_backward(net, dlogits, B, NULL);
        e_grad = worst_diff(net->grads, g_want, net->n_params);
        free(dlogits);
        e_adamw = run_steps(net, init, x, y, B, LETHE_OPTIM_ADAMW, p_adamw);
        e_sgd = run_steps(net, init, x, y, B, LETHE_OPTIM_SGD, p_sgd);
    }
    free(x), free(yf), free(want), free(y), free(init), free(g_want), free(p_adamw), free(p_sgd);
    lethe_net_free(net);
    lethe_safetensors_free(st);
    CHECK_MSG(loaded, "%s: fixture tensors missing or mis-shaped", file);
    CHECK_MSG(e_logits < 1e-5, "%s: logits differ by %g", file, e_logits);
    CHECK_MSG(e_loss < 1e-5, "%s: loss differs by %g", file, e_loss);
    CHECK_MSG(e_grad < 1e-4, "%s: gradients differ by %g", file, e_grad);
    CHECK_MSG(e_adamw < 1e-4, "%s: AdamW parameters differ by %g", file, e_adamw);
    CHECK_MSG(e_sgd < 1e-4, "%s: SGD parameters differ by %g", file, e_sgd);
}

TEST(twin_mlp_relu) { check_twin("twin_mlp_relu.safetensors"); }
TEST(twin_mlp_gelu_tanh) { check_twin("twin_mlp_gelu_tanh.safetensors"); }
TEST(twin_cnn) { check_twin("twin_cnn.safetensors"); }
