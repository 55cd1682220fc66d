/* Whole-network checks: spec parsing, finite-difference gradients through
 * MLPs and a CNN, dropout keyed by sample id, activations. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/kernels.h"
#include "lethe/net.h"
#include "lethe/rng.h"

TEST(net_spec_parsing)
{
    char spec[256];
    CHECK_OK(lethe_net_mlp_spec(spec, sizeof spec, "784-256-256-10", "relu", 0.1));
    CHECK(!strcmp(spec, "in=784;linear=256;relu;dropout=0.1;linear=256;relu;dropout=0.1;linear=10"));
    lethe_net *net = lethe_net_init(spec);
    CHECK(net);
    CHECK(net->n_in == 784 && net->n_out == 10);
    CHECK(net->n_params == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
    CHECK(lethe_net_embedding_layer(net) == 6);
    lethe_net_free(net);
    net = lethe_net_init("in=1x28x28;conv=16;relu;pool;conv=32;relu;pool;linear=128;relu;linear=10");
    CHECK(net);
    CHECK(net->layers[5].out_c == 32 && net->layers[5].out_h == 7 && net->layers[6].in_c == 1568);
    CHECK(net->n_out == 10);
    CHECK(net->n_params == 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 49 * 128 + 128 + 1280 + 10);
    lethe_net_free(net);
    lethe_net_free(NULL);
    const char *bad[] = {"linear=3", "in=0;linear=2", "in=4", "in=4;linear=0", "in=4;bogus",
                         "in=4;dropout=1", "in=1x3x3;pool", "in=4;relu=2", "in=4;linear=3x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lethe_error_clear();
        net = lethe_net_init(bad[i]);
        CHECK_MSG(!net && strstr(lethe_error_detail(), "model spec"), "'%s' accepted", bad[i]);
    }
    CHECK_STATUS(lethe_net_mlp_spec(spec, sizeof spec, "784", "relu", 0), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_net_mlp_spec(spec, sizeof spec, "784-x", "relu", 0), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_net_mlp_spec(spec, sizeof spec, "4-4", "sigmoid", 0), LETHE_ERR_INVALID);
}

/* L = sum(out .* R) through the network, in double. */
static double net_loss(lethe_net *net, const float *x, int B, const float *R)
{
    uint64_t ids[8] = {5, 9, 2, 7, 1, 3, 4, 6};
    const float *out = lethe_net_forward(net, x, B, 1, ids, 77);
    double s = 0;
    for (long i = 0; i < B * net->n_out; i++)
        s += (double)out[i] * R[i];
    return s;
}

static double check_net_gradients(const char *spec, int B)
{
    lethe_net *net = lethe_net_init(spec);
    if (!net)
        return 1e9;
    lethe_net_init_params(net, 1);
    lethe_rng r = lethe_rng_init(2, 0);
    float *x = malloc(sizeof(float) * (size_t)(B * net->n_in));
    float *R = malloc(sizeof(float) * (size_t)(B * net->n_out));
    float *dx = malloc(sizeof(float) * (size_t)(B * net->n_in));
    for (long i = 0; i < B * net->n_in; i++)
        x[i] = (float)lethe_rng_normal(&r);
    for (long i = 0; i < B * net->n_out; i++)
        R[i] = (float)lethe_rng_normal(&r);
    net_loss(net, x, B, R);
    memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
    lethe_net_backward(net, R, B, dx);
    double worst = 0;
    const float eps = 1e-3f;
    /* every input coordinate, and a spread of parameters */
    for (long i = 0; i < B * net->n_in; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = net_loss(net, x, B, R);
        x[i] = keep - eps;
        double lm = net_loss(net, x, B, R);
        x[i] = keep;
        double num = (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(num - dx[i]) / fmax(1, fabs(num)));
    }
    long stride = net->n_params / 300 + 1;
    for (long k = 0; k < net->n_params; k += stride) {
        float keep = net->params[k];
        net->params[k] = keep + eps;
        double lp = net_loss(net, x, B, R);
        net->params[k] = keep - eps;
        double lm = net_loss(net, x, B, R);
        net->params[k] = keep;
        double num = (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(num - net->grads[k]) / fmax(1, fabs(num)));
    }
    free(x);
    free(R);
    free(dx);
    lethe_net_free(net);
    return worst;
}

TEST(net_gradients_mlp)
{
    const char *specs[] = {"in=6;linear=5;gelu;linear=4;tanh;linear=3",
                           "in=6;linear=7;relu;dropout=0.3;linear=3",
                           "in=5;linear=2"};
    for (int i = 0; i < 3; i++) {
        double worst = check_net_gradients(specs[i], 4);
        CHECK_MSG(worst < 2e-2, "%s: worst relative error %g", specs[i], worst);
    }
}

TEST(net_gradients_cnn)
{
    double worst = check_net_gradients("in=2x6x6;conv=3;relu;pool;conv=2;gelu;linear=4", 3);
    CHECK_MSG(worst < 2e-2, "worst relative error %g", worst);
}

/* A sample's dropout mask depends on its id, not on its batch position or
 * on the other samples in the batch. */
TEST(net_dropout_keyed_by_id)
{
    lethe_net *net = lethe_net_init("in=3;linear=64;dropout=0.5;linear=2");
    CHECK(net);
    lethe_net_init_params(net, 3);
    float x[9] = {1, 2, 3, -1, 0.5f, 2, 0, 1, -2};
    uint64_t ids_a[3] = {10, 11, 12}, ids_b[2] = {12, 10};
    float out_a[6], out_b[4];
    memcpy(out_a, lethe_net_forward(net, x, 3, 1, ids_a, 9), sizeof out_a);
    float xb[6] = {0, 1, -2, 1, 2, 3};
    memcpy(out_b, lethe_net_forward(net, xb, 2, 1, ids_b, 9), sizeof out_b);
    CHECK(!memcmp(out_a + 4, out_b, 2 * sizeof(float)));
    CHECK(!memcmp(out_a, out_b + 2, 2 * sizeof(float)));
    /* a different seed draws a different mask; eval mode draws none */
    float out_c[6], out_e[6], out_e2[6];
    memcpy(out_c, lethe_net_forward(net, x, 3, 1, ids_a, 10), sizeof out_c);
    CHECK(memcmp(out_a, out_c, sizeof out_a) != 0);
    memcpy(out_e, lethe_net_forward(net, x, 3, 0, NULL, 0), sizeof out_e);
    memcpy(out_e2, lethe_net_forward(net, x + 3, 1, 0, NULL, 0), 2 * sizeof(float));
    CHECK(!memcmp(out_e + 2, out_e2, 2 * sizeof(float)));
    long size;
    const float *h = lethe_net_activation(net, 2, &size);
    CHECK(size == 64 && h);
    int zeros = 0;
    lethe_net_forward(net, x, 3, 1, ids_a, 9);
    h = lethe_net_activation(net, 2, &size);
    for (int i = 0; i < 64; i++)
        zeros += h[i] == 0.0f;
    lethe_net_free(net);
    CHECK(zeros > 16 && zeros < 48);
}

TEST(net_init_matches_pytorch_bounds)
{
    lethe_net *net = lethe_net_init("in=100;linear=50;relu;linear=10");
    CHECK(net);
    lethe_net_init_params(net, 4);
    float lo = 1, hi = -1;
    for (long k = 0; k < 100 * 50 + 50; k++) {
        lo = fminf(lo, net->params[k]);
        hi = fmaxf(hi, net->params[k]);
    }
    lethe_net_free(net);
    CHECK(lo >= -0.1f && hi <= 0.1f && lo < -0.09f && hi > 0.09f);
}
