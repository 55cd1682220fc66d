/* Finite-difference gradient checks for every kernel in lethe/kernels.h.
 *
 * Each check takes a scalar L = sum(out .* R) for a fixed random R, computes
 * dL/dx analytically through the backward kernel, and compares it with the
 * central difference (L(x + eps) - L(x - eps)) / 2 eps at every coordinate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/kernels.h"
#include "lethe/rng.h"

#define EPS 1e-3f
#define TOL 1e-2

static lethe_rng rng;

static float *randv(long n, float lo, float hi)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * lethe_rng_uniformf(&rng);
    return x;
}

static float *zeros(long n) { return calloc((size_t)n, sizeof(float)); }

static double dot(const float *a, const float *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Compare analytic gradient g of L with respect to x against central
 * differences of L, where eval() recomputes L from the current x. Returns
 * the worst mismatch relative to max(1, |numeric|). */
typedef double (*eval_fn)(void *ctx);
static double fd_worst(float *x, const float *g, long n, eval_fn eval, void *ctx)
{
    double worst = 0;
    for (long i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + EPS;
        double lp = eval(ctx);
        x[i] = keep - EPS;
        double lm = eval(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * EPS);
        double err = fabs(num - g[i]) / fmax(1.0, fabs(num));
        worst = err > worst ? err : worst;
    }
    return worst;
}

struct lin { int B, C, OC; float *x, *w, *b, *out, *R; };
static double lin_eval(void *p)
{
    struct lin *c = p;
    lethe_linear_forward(c->out, c->x, c->w, c->b, c->B, c->C, c->OC);
    return dot(c->out, c->R, (long)c->B * c->OC);
}

TEST(kernel_linear_gradients)
{
    rng = lethe_rng_init(11, 0);
    struct lin c = {3, 5, 4, NULL, NULL, NULL, NULL, NULL};
    c.x = randv(15, -1, 1); c.w = randv(20, -1, 1); c.b = randv(4, -1, 1);
    c.out = zeros(12); c.R = randv(12, -1, 1);
    float *dx = zeros(15), *dw = zeros(20), *db = zeros(4);
    lin_eval(&c);
    lethe_linear_backward(dx, dw, db, c.R, c.x, c.w, 3, 5, 4);
    double ex = fd_worst(c.x, dx, 15, lin_eval, &c), ew = fd_worst(c.w, dw, 20, lin_eval, &c),
           eb = fd_worst(c.b, db, 4, lin_eval, &c);
    /* the forward itself: out[1][2] = x[1] . w[2] + b[2] */
    lin_eval(&c);
    double direct = c.b[2];
    for (int k = 0; k < 5; k++)
        direct += (double)c.x[5 + k] * c.w[10 + k];
    double got = c.out[1 * 4 + 2];
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.R); free(dx); free(dw); free(db);
    CHECK_MSG(ex < TOL && ew < TOL && eb < TOL, "dx %g dw %g db %g", ex, ew, eb);
    CHECK_CLOSE(got, direct, 1e-6, 1e-6);
}

struct act { int kind; long n; float *x, *out, *R; };
static double act_eval(void *p)
{
    struct act *c = p;
    if (c->kind == 0) lethe_relu_forward(c->out, c->x, c->n);
    if (c->kind == 1) lethe_gelu_forward(c->out, c->x, c->n);
    if (c->kind == 2) lethe_tanh_forward(c->out, c->x, c->n);
    return dot(c->out, c->R, c->n);
}

TEST(kernel_activation_gradients)
{
    rng = lethe_rng_init(12, 0);
    for (int kind = 0; kind < 3; kind++) {
        struct act c = {kind, 64, randv(64, -3, 3), zeros(64), randv(64, -1, 1)};
        for (long i = 0; i < c.n; i++) /* keep relu away from its kink */
            if (fabsf(c.x[i]) < 0.05f)
                c.x[i] = 0.1f;
        float *dx = zeros(64);
        act_eval(&c);
        if (kind == 0) lethe_relu_backward(dx, c.R, c.x, c.n);
        if (kind == 1) lethe_gelu_backward(dx, c.R, c.x, c.n);
        if (kind == 2) lethe_tanh_backward(dx, c.R, c.out, c.n);
        double e = fd_worst(c.x, dx, c.n, act_eval, &c);
        /* spot values: gelu(1) = 0.8413447, tanh(0.5) */
        float one = 1.0f, half = 0.5f, y;
        lethe_gelu_forward(&y, &one, 1);
        double g1 = y;
        lethe_tanh_forward(&y, &half, 1);
        double t = y;
        free(c.x); free(c.out); free(c.R); free(dx);
        CHECK_MSG(e < TOL, "activation %d: %g", kind, e);
        CHECK_CLOSE(g1, 0.8413447460685429, 1e-6, 0);
        CHECK_CLOSE(t, tanh(0.5), 1e-6, 0);
    }
}

TEST(kernel_dropout_is_mask_product)
{
    float x[4] = {1, 2, 3, 4}, m[4] = {0, 2, 2, 0}, y[4], dx[4] = {0};
    lethe_dropout_forward(y, x, m, 4);
    CHECK(y[0] == 0 && y[1] == 4 && y[2] == 6 && y[3] == 0);
    lethe_dropout_backward(dx, x, m, 4);
    CHECK(dx[0] == 0 && dx[1] == 4 && dx[2] == 6 && dx[3] == 0);
}

struct conv { int B, C, H, W, OC, K, pad; float *x, *w, *b, *out, *R, *col; long nout; };
static double conv_eval(void *p)
{
    struct conv *c = p;
    lethe_conv2d_forward(c->out, c->x, c->w, c->b, c->col, c->B, c->C, c->H, c->W, c->OC, c->K,
                         c->pad);
    return dot(c->out, c->R, c->nout);
}

TEST(kernel_conv2d_gradients)
{
    rng = lethe_rng_init(13, 0);
    for (int pad = 0; pad < 2; pad++) {
        struct conv c = {2, 3, 6, 5, 4, 3, pad};
        int OH = c.H + 2 * pad - c.K + 1, OW = c.W + 2 * pad - c.K + 1;
        long nx = (long)c.B * c.C * c.H * c.W, nw = (long)c.OC * c.C * c.K * c.K;
        c.nout = (long)c.B * c.OC * OH * OW;
        c.x = randv(nx, -1, 1); c.w = randv(nw, -1, 1); c.b = randv(c.OC, -1, 1);
        c.out = zeros(c.nout); c.R = randv(c.nout, -1, 1);
        c.col = zeros((long)c.C * c.K * c.K * OH * OW);
        float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(c.OC);
        conv_eval(&c);
        lethe_conv2d_backward(dx, dw, db, c.R, c.x, c.w, c.col, c.B, c.C, c.H, c.W, c.OC, c.K,
                              pad);
        double ex = fd_worst(c.x, dx, nx, conv_eval, &c), ew = fd_worst(c.w, dw, nw, conv_eval, &c),
               eb = fd_worst(c.b, db, c.OC, conv_eval, &c);
        /* one output by the definition: image 1, channel 2, position (1, 2) */
        conv_eval(&c);
        double direct = c.b[2];
        for (int ch = 0; ch < c.C; ch++)
            for (int ky = 0; ky < c.K; ky++)
                for (int kx = 0; kx < c.K; kx++) {
                    int iy = 1 + ky - pad, ix = 2 + kx - pad;
                    if (iy >= 0 && iy < c.H && ix >= 0 && ix < c.W)
                        direct += (double)c.w[((2 * c.C + ch) * c.K + ky) * c.K + kx] *
                                  c.x[((1 * c.C + ch) * c.H + iy) * c.W + ix];
                }
        double got = c.out[((1 * c.OC + 2) * OH + 1) * OW + 2];
        free(c.x); free(c.w); free(c.b); free(c.out); free(c.R); free(c.col);
        free(dx); free(dw); free(db);
        CHECK_MSG(ex < TOL && ew < TOL && eb < TOL, "pad %d: dx %g dw %g db %g", pad, ex, ew, eb);
        CHECK_CLOSE(got, direct, 1e-5, 1e-5);
    }
}

struct pool { int B, C, H, W; float *x, *out, *R; int32_t *arg; };
static double pool_eval(void *p)
{
    struct pool *c = p;
    lethe_maxpool2_forward(c->out, c->arg, c->x, c->B, c->C, c->H, c->W);
    return dot(c->out, c->R, (long)c->B * c->C * (c->H / 2) * (c->W / 2));
}

TEST(kernel_maxpool_gradients)
{
    rng = lethe_rng_init(14, 0);
    struct pool c = {2, 2, 4, 6};
    long nx = 2 * 2 * 4 * 6, no = nx / 4;
    c.x = randv(nx, -1, 1); c.out = zeros(no); c.R = randv(no, -1, 1);
    c.arg = calloc((size_t)no, sizeof(int32_t));
    float *dx = zeros(nx);
    pool_eval(&c);
    lethe_maxpool2_backward(dx, c.R, c.arg, 2, 2, 4, 6);
    double e = fd_worst(c.x, dx, nx, pool_eval, &c);
    pool_eval(&c);
    float m = fmaxf(fmaxf(c.x[0], c.x[1]), fmaxf(c.x[6], c.x[7]));
    float got = c.out[0];
    free(c.x); free(c.out); free(c.R); free(c.arg); free(dx);
    CHECK_MSG(e < TOL, "dx %g", e);
    CHECK(got == m);
}

struct loss { int kind, B, V; float *z, *t; int32_t *y; };
static double loss_eval(void *p)
{
    struct loss *c = p;
    if (c->kind == 0) return lethe_softmax_xent(NULL, NULL, NULL, c->z, c->y, c->B, c->V, 1);
    if (c->kind == 1) return lethe_mse(NULL, NULL, c->z, c->t, c->B, c->V, 1);
    return lethe_l1(NULL, NULL, c->z, c->t, c->B, c->V, 1);
}

TEST(kernel_loss_gradients)
{
    rng = lethe_rng_init(15, 0);
    for (int kind = 0; kind < 3; kind++) {
        int32_t y[4] = {0, 3, 4, 1};
        struct loss c = {kind, 4, 5, randv(20, -2, 2), randv(20, -2, 2), y};
        for (int i = 0; i < 20; i++) /* keep l1 away from its kink */
            if (fabsf(c.z[i] - c.t[i]) < 0.05f)
                c.z[i] += 0.1f;
        float *dz = zeros(20), losses[4], probs[20];
        double L = 0;
        if (kind == 0) L = lethe_softmax_xent(dz, probs, losses, c.z, y, 4, 5, 1);
        if (kind == 1) L = lethe_mse(dz, losses, c.z, c.t, 4, 5, 1);
        if (kind == 2) L = lethe_l1(dz, losses, c.z, c.t, 4, 5, 1);
        double e = fd_worst(c.z, dz, 20, loss_eval, &c);
        /* per-sample losses by the definition, and their mean */
        double mean = 0, worst = 0;
        for (int i = 0; i < 4; i++) {
            double want = 0;
            if (kind == 0) {
                double s = 0;
                for (int v = 0; v < 5; v++)
                    s += exp(c.z[i * 5 + v]);
                want = log(s) - c.z[i * 5 + y[i]];
            } else {
                for (int v = 0; v < 5; v++) {
                    double d = c.z[i * 5 + v] - c.t[i * 5 + v];
                    want += (kind == 1 ? d * d : fabs(d)) / 5;
                }
            }
            worst = fmax(worst, fabs(want - losses[i]) / fmax(1, fabs(want)));
            mean += want / 4;
        }
        free(c.z); free(c.t); free(dz);
        CHECK_MSG(e < TOL, "loss %d: %g", kind, e);
        CHECK_MSG(worst < 1e-6, "loss %d per-sample mismatch %g", kind, worst);
        CHECK_CLOSE(L, mean, 1e-6, 0);
    }
}

#include "../../src/nn/vmath.h"

/* The vectorised exp and logistic function of the GPT kernels against libm in
 * double, on a fine grid over the whole clamped range and around 0. */
TEST(kernel_vexpf_accuracy)
{
    double worst = 0.0, worst_sig = 0.0;
    for (long i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double rel = fabs((double)lethe_vexpf(x) - exp((double)x)) / exp((double)x);
        worst = rel > worst ? rel : worst;
        float y = -20.0f + 40.0f * (float)i / 2000000.0f;
        double ref = 1.0 / (1.0 + exp(-(double)y));
        double e = fabs((double)lethe_vsigmoidf(y) - ref) / ref;
        worst_sig = e > worst_sig ? e : worst_sig;
    }
    CHECK(worst < 2e-7);
    CHECK(worst_sig < 3e-7);
    /* clamped, never 0 or infinite */
    CHECK(lethe_vexpf(-1000.0f) > 0.0f && lethe_vexpf(-1000.0f) < 2e-38f);
    CHECK(isfinite(lethe_vexpf(1000.0f)));
    CHECK(lethe_vexpf(0.0f) == 1.0f);
    printf("  vexpf: worst relative error %.2e; sigmoid %.2e\n", worst, worst_sig);
}
