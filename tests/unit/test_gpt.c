/* The GPT-2 model (lethe/gpt.h): its kernels and the whole model against
 * central differences, against its PyTorch twin (tests/ref/make_gpt_fixtures.py),
 * causality, batch and thread-count invariance, the tensor table, presets,
 * initialisation and safetensors round trips.
 *
 * Tolerances (float32 throughout; differences are taken in double):
 *   kernels, finite differences: eps 1e-3 on L = sum(out .* R),
 *     |num - ana| / max(1, |num|) < 2e-3;
 *   whole model, finite differences: eps 1e-2 on the mean loss, every
 *     parameter, |num - ana| <= 5e-4 + 1e-2 |num|;
 *   twin: logits, log-probabilities, hidden states and loss within 1e-5,
 *     gradients within 1e-5, both as |a - b| / (1 + |b|) over every element
 *     (gradients also relative to the largest one, < 1e-4); parameters after
 *     10 AdamW steps within 1e-4 (all but the key biases, which do not
 *     change the output, so their gradient is rounding noise that Adam
 *     turns into full steps). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../test.h"
#include "lethe/gpt.h"
#include "lethe/optim.h"
#include "lethe/rng.h"
#include "lethe/safetensors.h"

#define EPS 1e-3f
#define TOL 2e-3

static lethe_rng rng;

static float *randv(long n, float lo, float hi)
{
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * lethe_rng_uniformf(&rng);
    return x;
}

static float *zeros(long n) { return calloc((size_t)(n ? n : 1), sizeof(float)); }

static double dot(const float *a, const float *b, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* The worst |num - g| / max(1, |num|) over x[0..n), num the central
 * difference of eval() with step EPS. */
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
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "gpt kernel finite differences: %ld values, worst %.3g\n", n, worst);
    return worst;
}

static double worst_diff(const float *a, const float *b, long n);

/* ---- kernels ------------------------------------------------------------ */

struct ln { int N, C; float *x, *w, *b, *out, *mean, *rstd, *R; };
static double ln_eval(void *p)
{
    struct ln *c = p;
    lethe_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return dot(c->out, c->R, (long)c->N * c->C);
}

TEST(gpt_kernel_layernorm_gradients)
{
    rng = lethe_rng_init(101, 0);
    struct ln c = {4, 7};
    long n = 28;
    c.x = randv(n, -2, 2); c.w = randv(7, 0.5f, 1.5f); c.b = randv(7, -1, 1);
    c.out = zeros(n); c.mean = zeros(4); c.rstd = zeros(4); c.R = randv(n, -1, 1);
    float *dx = zeros(n), *dw = zeros(7), *db = zeros(7);
    ln_eval(&c);
    lethe_layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, 4, 7);
    double ex = fd_worst(c.x, dx, n, ln_eval, &c), ew = fd_worst(c.w, dw, 7, ln_eval, &c),
           eb = fd_worst(c.b, db, 7, ln_eval, &c);
    /* row 1 by the definition (biased variance, eps 1e-5) */
    ln_eval(&c);
    double m = 0, v = 0, worst = 0;
    for (int k = 0; k < 7; k++)
        m += c.x[7 + k] / 7.0;
    for (int k = 0; k < 7; k++)
        v += (c.x[7 + k] - m) * (c.x[7 + k] - m) / 7.0;
    for (int k = 0; k < 7; k++) {
        double want = (c.x[7 + k] - m) / sqrt(v + 1e-5) * c.w[k] + c.b[k];
        worst = fmax(worst, fabs(want - c.out[7 + k]));
    }
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.mean); free(c.rstd); free(c.R);
    free(dx); free(dw); free(db);
    CHECK_MSG(ex < TOL && ew < TOL && eb < TOL, "dx %g dw %g db %g", ex, ew, eb);
    CHECK_MSG(worst < 1e-5, "layernorm forward off by %g", worst);
}

struct gelu { long n; float *x, *out, *R; };
static double gelu_eval(void *p)
{
    struct gelu *c = p;
    lethe_gelu_tanh_forward(c->out, c->x, c->n);
    return dot(c->out, c->R, c->n);
}

TEST(gpt_kernel_gelu_tanh_gradients)
{
    rng = lethe_rng_init(102, 0);
    struct gelu c = {64, randv(64, -4, 4), zeros(64), randv(64, -1, 1)};
    float *dx = zeros(64);
    gelu_eval(&c);
    lethe_gelu_tanh_backward(dx, c.R, c.x, 64);
    double e = fd_worst(c.x, dx, 64, gelu_eval, &c);
    /* torch.nn.functional.gelu(1.0, approximate='tanh') = 0.8411920070648193 */
    float one = 1.0f, y;
    lethe_gelu_tanh_forward(&y, &one, 1);
    free(c.x); free(c.out); free(c.R); free(dx);
    CHECK_MSG(e < TOL, "gelu %g", e);
    CHECK_CLOSE(y, 0.8411920070648193, 1e-6, 0);
}

struct c1d { int N, C, OC; float *x, *w, *b, *out, *R; };
static double c1d_eval(void *p)
{
    struct c1d *c = p;
    lethe_conv1d_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
    return dot(c->out, c->R, (long)c->N * c->OC);
}

TEST(gpt_kernel_conv1d_gradients)
{
    rng = lethe_rng_init(103, 0);
    struct c1d c = {3, 5, 6};
    c.x = randv(15, -1, 1); c.w = randv(30, -1, 1); c.b = randv(6, -1, 1);
    c.out = zeros(18); c.R = randv(18, -1, 1);
    float *dx = zeros(15), *dw = zeros(30), *db = zeros(6);
    c1d_eval(&c);
    lethe_conv1d_backward(dx, dw, db, c.R, c.x, c.w, 3, 5, 6);
    double ex = fd_worst(c.x, dx, 15, c1d_eval, &c), ew = fd_worst(c.w, dw, 30, c1d_eval, &c),
           eb = fd_worst(c.b, db, 6, c1d_eval, &c);
    /* out[2][4] = sum_k x[2][k] w[k][4] + b[4]: weights stored (in, out) */
    c1d_eval(&c);
    double direct = c.b[4];
    for (int k = 0; k < 5; k++)
        direct += (double)c.x[10 + k] * c.w[k * 6 + 4];
    double got = c.out[2 * 6 + 4];
    free(c.x); free(c.w); free(c.b); free(c.out); free(c.R); free(dx); free(dw); free(db);
    CHECK_MSG(ex < TOL && ew < TOL && eb < TOL, "dx %g dw %g db %g", ex, ew, eb);
    CHECK_CLOSE(got, direct, 1e-5, 1e-6);
}

struct attn { int B, T, C, NH; float *qkv, *out, *att, *R; };
static double attn_eval(void *p)
{
    struct attn *c = p;
    lethe_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->R, (long)c->B * c->T * c->C);
}

/* Attention by its definition, in double: the worst difference from out. */
static double attn_direct_worst(const struct attn *c)
{
    int hs = c->C / c->NH, C3 = 3 * c->C;
    double worst = 0, *s = malloc(sizeof(double) * (size_t)c->T);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->NH; h++)
            for (int t = 0; t < c->T; t++) {
                const float *q = c->qkv + ((long)b * c->T + t) * C3 + h * hs;
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const float *k = c->qkv + ((long)b * c->T + j) * C3 + c->C + h * hs;
                    s[j] = 0;
                    for (int i = 0; i < hs; i++)
                        s[j] += (double)q[i] * k[i];
                    s[j] /= sqrt((double)hs);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++)
                    sum += (s[j] = exp(s[j] - mx));
                for (int i = 0; i < hs; i++) {
                    double y = 0;
                    for (int j = 0; j <= t; j++)
                        y += s[j] / sum * c->qkv[((long)b * c->T + j) * C3 + 2 * c->C + h * hs + i];
                    double got = c->out[((long)b * c->T + t) * c->C + h * hs + i];
                    worst = fmax(worst, fabs(got - y));
                }
            }
    free(s);
    return worst;
}

static void check_attention(int B, int T, int C, int NH, uint64_t seed)
{
    rng = lethe_rng_init(seed, 0);
    struct attn c = {B, T, C, NH};
    long nq = (long)B * T * 3 * C, no = (long)B * T * C, na = (long)B * NH * T * T;
    c.qkv = randv(nq, -1.5f, 1.5f); c.out = zeros(no); c.att = zeros(na); c.R = randv(no, -1, 1);
    float *dqkv = zeros(nq), *datt = zeros(na);
    attn_eval(&c);
    double direct = attn_direct_worst(&c);
    lethe_attention_backward(dqkv, datt, c.R, c.qkv, c.att, B, T, C, NH);
    double e = fd_worst(c.qkv, dqkv, nq, attn_eval, &c);
    free(c.qkv); free(c.out); free(c.att); free(c.R); free(dqkv); free(datt);
    CHECK_MSG(e < TOL, "attention B %d T %d C %d NH %d: dqkv %g", B, T, C, NH, e);
    CHECK_MSG(direct < 1e-5, "attention B %d T %d: forward off by %g", B, T, direct);
}

TEST(gpt_kernel_attention_gradients)
{
    check_attention(2, 5, 8, 2, 104);
    /* longer than one 64-row block of the causal products */
    check_attention(1, 70, 4, 2, 105);
}

struct emb { int B, T, C; int32_t *tok; float *wte, *wpe, *out, *R; };
static double emb_eval(void *p)
{
    struct emb *c = p;
    lethe_embed_forward(c->out, c->tok, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->R, (long)c->B * c->T * c->C);
}

TEST(gpt_kernel_embedding_gradients)
{
    rng = lethe_rng_init(106, 0);
    int32_t tok[6] = {3, 1, 3, 0, 3, 4}; /* token 3 three times */
    struct emb c = {2, 3, 4, tok};
    c.wte = randv(20, -1, 1); c.wpe = randv(16, -1, 1); /* V 5, n_positions 4 */
    c.out = zeros(24); c.R = randv(24, -1, 1);
    float *dwte = zeros(20), *dwpe = zeros(16);
    emb_eval(&c);
    lethe_embed_backward(dwte, dwpe, c.R, tok, 2, 3, 4);
    double et = fd_worst(c.wte, dwte, 20, emb_eval, &c), ep = fd_worst(c.wpe, dwpe, 16, emb_eval, &c);
    emb_eval(&c);
    double want = (double)c.wte[4 * 4 + 2] + c.wpe[2 * 4 + 2], got = c.out[5 * 4 + 2];
    int untouched = dwte[2 * 4] == 0.0f && dwpe[3 * 4] == 0.0f; /* token 2, position 3 unused */
    free(c.wte); free(c.wpe); free(c.out); free(c.R); free(dwte); free(dwpe);
    CHECK_MSG(et < TOL && ep < TOL, "dwte %g dwpe %g", et, ep);
    CHECK_CLOSE(got, want, 1e-6, 0);
    CHECK(untouched);
}

struct xent { int N, V; float *z, *lse, *lp, *w; int32_t *y; };
static double xent_eval(void *p)
{
    struct xent *c = p;
    lethe_xent_forward(c->lse, c->lp, c->z, c->y, c->N, c->V);
    double s = 0;
    for (int n = 0; n < c->N; n++)
        s -= (double)c->w[n] * c->lp[n];
    return s;
}

TEST(gpt_kernel_xent_gradients)
{
    rng = lethe_rng_init(107, 0);
    int32_t y[5] = {2, -1, 0, 6, 3};
    struct xent c = {5, 7, randv(35, -3, 3), zeros(5), zeros(5), randv(5, -1, 1), y};
    float *dz = zeros(35);
    int count = lethe_xent_forward(c.lse, c.lp, c.z, y, 5, 7);
    lethe_xent_backward(dz, c.w, c.z, c.lse, y, 5, 7);
    double e = fd_worst(c.z, dz, 35, xent_eval, &c);
    xent_eval(&c);
    double worst = 0;
    for (int n = 0; n < 5; n++) {
        double s = 0;
        for (int v = 0; v < 7; v++)
            s += exp(c.z[n * 7 + v]);
        double want = y[n] < 0 ? 0.0 : c.z[n * 7 + y[n]] - log(s);
        worst = fmax(worst, fabs(want - c.lp[n]));
    }
    int ignored_zero = 1;
    for (int v = 0; v < 7; v++)
        ignored_zero &= dz[7 + v] == 0.0f;
    free(c.z); free(c.lse); free(c.lp); free(c.w); free(dz);
    CHECK(count == 4);
    CHECK_MSG(e < TOL, "dlogits %g", e);
    CHECK_MSG(worst < 1e-5, "log-probabilities off by %g", worst);
    CHECK(ignored_zero);
}

/* ---- the model ------------------------------------------------------------ */

TEST(gpt_presets_and_table)
{
    lethe_gpt_config c;
    CHECK_OK(lethe_gpt_preset("tiny", &c));
    CHECK(lethe_gpt_config_params(&c) == 1088256);
    CHECK_OK(lethe_gpt_preset("small", &c));
    CHECK(lethe_gpt_config_params(&c) == 10126336);
    CHECK_OK(lethe_gpt_preset("gpt2", &c));
    CHECK(c.vocab_size == 50257 && c.n_positions == 1024 && c.n_embd == 768 && c.n_layer == 12 &&
          c.n_head == 12);
    CHECK(lethe_gpt_config_params(&c) == 124439808);
    CHECK_STATUS(lethe_gpt_preset("huge", &c), LETHE_ERR_INVALID);
    lethe_gpt_config bad = {11, 5, 8, 2, 3};
    CHECK_STATUS(lethe_gpt_config_check(&bad), LETHE_ERR_INVALID);
    CHECK(lethe_gpt_init(&bad) == NULL);

    CHECK_OK(lethe_gpt_preset("tiny", &c));
    lethe_gpt *g = lethe_gpt_init(&c);
    CHECK(g);
    int ok = g->n_params == 1088256 && g->n_tensors == 2 + 12 * 4 + 2;
    long next = 0;
    for (int i = 0; i < g->n_tensors; i++) { /* contiguous, in order */
        ok &= g->tensors[i].offset == next;
        next += g->tensors[i].numel;
    }
    ok &= next == g->n_params;
    long shape[2];
    int rank;
    float *p = lethe_gpt_param(g, "h.2.attn.c_attn.weight", shape, &rank);
    ok &= p != NULL && rank == 2 && shape[0] == 128 && shape[1] == 384;
    ok &= lethe_gpt_param(g, "transformer.h.2.attn.c_attn.weight", NULL, NULL) == p;
    p = lethe_gpt_param(g, "h.3.mlp.c_proj.weight", shape, &rank);
    ok &= p != NULL && rank == 2 && shape[0] == 512 && shape[1] == 128;
    p = lethe_gpt_param(g, "h.0.mlp.c_fc.bias", shape, &rank);
    ok &= p != NULL && rank == 1 && shape[0] == 512;
    ok &= lethe_gpt_param(g, "wte.weight", shape, NULL) == g->params && shape[0] == 2048;
    ok &= lethe_gpt_param(g, "ln_f.bias", NULL, NULL) == g->params + g->n_params - 128;
    ok &= lethe_gpt_param(g, "h.4.ln_1.weight", NULL, NULL) == NULL;
    ok &= lethe_gpt_param(g, "lm_head.weight", NULL, NULL) == NULL;
    lethe_gpt_block b = lethe_gpt_block_params(g, 1);
    ok &= b.fc_proj_w == lethe_gpt_param(g, "h.1.mlp.c_proj.weight", NULL, NULL);
    ok &= b.ln_1_w == lethe_gpt_param(g, "h.1.ln_1.weight", NULL, NULL);
    lethe_gpt_free(g);
    lethe_gpt_free(NULL);
    CHECK(ok);
}

/* Sample mean and standard deviation of a tensor. */
static void moments(const lethe_gpt *g, const char *name, double *mean, double *sd)
{
    const lethe_gpt_tensor *t = lethe_gpt_find(g, name);
    double s = 0, s2 = 0;
    for (long i = 0; i < t->numel; i++) {
        double v = g->params[t->offset + i];
        s += v;
        s2 += v * v;
    }
    *mean = s / t->numel;
    *sd = sqrt(s2 / t->numel - *mean * *mean);
}

TEST(gpt_init_as_gpt2)
{
    lethe_gpt_config c;
    CHECK_OK(lethe_gpt_preset("tiny", &c));
    lethe_gpt *g = lethe_gpt_init(&c), *h = lethe_gpt_init(&c);
    CHECK(g && h);
    lethe_gpt_init_params(g, 7);
    lethe_gpt_init_params(h, 7);
    int same = !memcmp(g->params, h->params, sizeof(float) * (size_t)g->n_params);
    lethe_gpt_init_params(h, 8);
    int differs = memcmp(g->params, h->params, sizeof(float) * (size_t)g->n_params) != 0;
    double m_wte, s_wte, m_fc, s_fc, m_proj, s_proj, m_lnw, s_lnw, m_b, s_b;
    moments(g, "wte.weight", &m_wte, &s_wte);
    moments(g, "h.1.mlp.c_fc.weight", &m_fc, &s_fc);
    moments(g, "h.3.attn.c_proj.weight", &m_proj, &s_proj);
    moments(g, "h.2.ln_2.weight", &m_lnw, &s_lnw);
    moments(g, "h.2.attn.c_attn.bias", &m_b, &s_b);
    const float *lnf_w = lethe_gpt_param(g, "ln_f.weight", NULL, NULL);
    int lnf_one = lnf_w[0] == 1.0f && lnf_w[127] == 1.0f;
    lethe_gpt_free(g);
    lethe_gpt_free(h);
    CHECK(same && differs);
    CHECK_CLOSE(s_wte, 0.02, 0.01, 0);
    CHECK_CLOSE(m_wte, 0, 0, 2e-4);
    CHECK_CLOSE(s_fc, 0.02, 0.01, 0);
    CHECK_CLOSE(s_proj, 0.02 / sqrt(8.0), 0.01, 0); /* 0.02 / sqrt(2 L), L = 4 */
    CHECK(m_lnw == 1.0 && s_lnw == 0.0 && m_b == 0.0 && s_b == 0.0 && lnf_one);
}

/* Fill params with a non-degenerate draw: weights N(0, 0.3), biases
 * N(0, 0.1), LayerNorm weights 1 + N(0, 0.1). */
static void random_params(lethe_gpt *g, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 99);
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        int ln_w = strstr(t->name, "ln_") && strstr(t->name, ".weight");
        for (long k = 0; k < t->numel; k++) {
            double z = lethe_rng_normal(&r);
            g->params[t->offset + k] =
                (float)(ln_w ? 1.0 + 0.1 * z : t->rank == 1 ? 0.1 * z : 0.3 * z);
        }
    }
}

static const lethe_gpt_config micro = {11, 5, 8, 2, 2};
static const int32_t micro_tokens[10] = {3, 0, 10, 3, 7, 1, 1, 9, 4, 2};
static const int32_t micro_targets[10] = {0, 10, 3, 7, -1, 1, 9, 4, 2, 5};

struct whole { lethe_gpt *g; };
static double whole_eval(void *p)
{
    struct whole *c = p;
    LETHE_ASSERT(lethe_gpt_forward(c->g, micro_tokens, micro_targets, 2, 5) == LETHE_OK);
    return c->g->loss;
}

TEST(gpt_model_gradients_finite_differences)
{
    lethe_gpt *g = lethe_gpt_init(&micro);
    CHECK(g);
    random_params(g, 5);
    CHECK_OK(lethe_gpt_forward(g, micro_tokens, micro_targets, 2, 5));
    CHECK(g->n_targets == 9);
    lethe_gpt_zero_grad(g);
    lethe_gpt_backward(g);
    float *ana = malloc(sizeof(float) * (size_t)g->n_params);
    memcpy(ana, g->grads, sizeof(float) * (size_t)g->n_params);
    struct whole c = {g};
    const float eps = 1e-2f;
    double worst = 0, worst_abs = 0, gmax = 0;
    long worst_i = 0, bad = 0;
    for (long i = 0; i < g->n_params; i++) {
        float keep = g->params[i];
        g->params[i] = keep + eps;
        double lp = whole_eval(&c);
        g->params[i] = keep - eps;
        double lm = whole_eval(&c);
        g->params[i] = keep;
        double num = (lp - lm) / (2.0 * eps), d = fabs(num - ana[i]);
        double excess = d / (5e-4 + 1e-2 * fabs(num));
        if (excess > 1)
            bad++;
        if (excess > worst)
            worst = excess, worst_i = i;
        worst_abs = fmax(worst_abs, d);
        gmax = fmax(gmax, fabs(num));
    }
    long n = g->n_params;
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "gpt finite differences: %ld parameters, max abs diff %.3g, worst %.3g "
                "of the tolerance, largest gradient %.3g\n", n, worst_abs, worst, gmax);
    free(ana);
    lethe_gpt_free(g);
    CHECK_MSG(bad == 0, "%ld of %ld gradients off; worst at %ld (%.3g of the tolerance), max "
              "abs diff %.3g, largest gradient %.3g", bad, n, worst_i, worst, worst_abs, gmax);
    CHECK(n == 1888);
}

/* A loss on a hidden state, sum(h_i .* R), and one on the logits,
 * sum(logits .* R): their backward entry points against finite differences
 * over every parameter of the micro model. */
struct hidden_loss { lethe_gpt *g; int i; const float *R; };
static double hidden_eval(void *p)
{
    struct hidden_loss *c = p;
    LETHE_ASSERT(lethe_gpt_forward(c->g, micro_tokens, micro_targets, 2, 5) == LETHE_OK);
    long n = 10L * (c->i < 0 ? c->g->cfg.vocab_size : c->g->cfg.n_embd);
    const float *h = c->i < 0 ? c->g->logits : lethe_gpt_hidden(c->g, c->i);
    return dot(h, c->R, n);
}

TEST(gpt_backward_from_hidden_states_and_logits)
{
    lethe_gpt *g = lethe_gpt_init(&micro);
    CHECK(g);
    random_params(g, 6);
    rng = lethe_rng_init(108, 0);
    float *R = randv(10L * micro.vocab_size, -1, 1);
    float *ana = malloc(sizeof(float) * (size_t)g->n_params);
    /* i = -1 stands for the logits */
    const int states[4] = {-1, 1, micro.n_layer, micro.n_layer + 1};
    for (int s = 0; s < 4; s += test_quick() ? 2 : 1) { /* quick: the logits and block 1 */
        struct hidden_loss c = {g, states[s], R};
        hidden_eval(&c);
        lethe_gpt_zero_grad(g);
        if (c.i < 0)
            lethe_gpt_backward_logits(g, R);
        else
            lethe_gpt_backward_hidden(g, c.i, R);
        memcpy(ana, g->grads, sizeof(float) * (size_t)g->n_params);
        double worst = fd_worst(g->params, ana, g->n_params, hidden_eval, &c);
        /* the blocks above state i get no gradient */
        long above = 0;
        if (c.i >= 1 && c.i <= micro.n_layer)
            for (int t = 2 + 12 * c.i; t < g->n_tensors; t++)
                for (long k = 0; k < g->tensors[t].numel; k++)
                    above += ana[g->tensors[t].offset + k] != 0.0f;
        /* 5 TOL: a sum over the whole state carries more float noise than
         * one kernel's output; a wrong gradient is off by its own size */
        CHECK_MSG(worst < 5 * TOL && above == 0, "state %d: worst relative error %.3g, %ld "
                  "nonzero gradients above it", c.i, worst, above);
    }
    /* the logits' route agrees with the loss's own backward */
    CHECK_OK(lethe_gpt_forward(g, micro_tokens, micro_targets, 2, 5));
    lethe_gpt_zero_grad(g);
    lethe_gpt_backward(g);
    memcpy(ana, g->grads, sizeof(float) * (size_t)g->n_params);
    float *dl = zeros(10L * micro.vocab_size);
    for (int n = 0; n < 10; n++) {
        if (micro_targets[n] < 0)
            continue;
        for (int v = 0; v < micro.vocab_size; v++)
            dl[n * micro.vocab_size + v] =
                (float)(exp(g->logits[n * micro.vocab_size + v] - g->lse[n]) / g->n_targets);
        dl[n * micro.vocab_size + micro_targets[n]] -= 1.0f / (float)g->n_targets;
    }
    lethe_gpt_zero_grad(g);
    lethe_gpt_backward_logits(g, dl);
    CHECK(worst_diff(ana, g->grads, g->n_params) < 1e-6);
    free(dl), free(R), free(ana);
    lethe_gpt_free(g);
}

TEST(gpt_causal)
{
    lethe_gpt *g = lethe_gpt_init(&micro);
    CHECK(g);
    random_params(g, 6);
    int V = micro.vocab_size, ok = 1;
    float *base = malloc(sizeof(float) * 5 * (size_t)V);
    CHECK_OK(lethe_gpt_forward(g, micro_tokens, NULL, 1, 5));
    memcpy(base, g->logits, sizeof(float) * 5 * (size_t)V);
    for (int t = 0; t < 5; t++) {
        int32_t tok[5];
        memcpy(tok, micro_tokens, sizeof tok);
        tok[t] = (tok[t] + 5) % V;
        if (lethe_gpt_forward(g, tok, NULL, 1, 5) != LETHE_OK) {
            ok = 0;
            break;
        }
        /* positions before t: the same bits; position t: changed */
        ok &= !memcmp(base, g->logits, sizeof(float) * (size_t)(t * V));
        ok &= memcmp(base + t * V, g->logits + t * V, sizeof(float) * (size_t)V) != 0;
    }
    free(base);
    lethe_gpt_free(g);
    CHECK(ok);
}

TEST(gpt_batch_invariant_and_errors)
{
    lethe_gpt *g = lethe_gpt_init(&micro);
    CHECK(g);
    random_params(g, 7);
    long nl = 10L * micro.vocab_size;
    float *both = malloc(sizeof(float) * (size_t)nl);
    CHECK_OK(lethe_gpt_forward(g, micro_tokens, micro_targets, 2, 5));
    memcpy(both, g->logits, sizeof(float) * (size_t)nl);
    float lp_both = g->logprobs[7];
    CHECK_OK(lethe_gpt_forward(g, micro_tokens + 5, micro_targets + 5, 1, 5));
#ifdef __AVX512F__
    /* lethe's own GEMM: a sequence's bits do not depend on its batch */
    int same = !memcmp(both + nl / 2, g->logits, sizeof(float) * (size_t)(nl / 2)) &&
               g->logprobs[2] == lp_both;
#else
    /* CBLAS promises no such thing: equal within rounding */
    int same = worst_diff(g->logits, both + nl / 2, nl / 2) < 1e-5 &&
               fabs(g->logprobs[2] - lp_both) < 1e-5;
#endif
    /* hidden states: 0 embeddings, 1..L blocks, L + 1 ln_f */
    int hidden = lethe_gpt_hidden(g, 0) == g->encoded && lethe_gpt_hidden(g, 3) == g->lnf &&
                 lethe_gpt_hidden(g, 2) == g->res3 + 5 * 8 && !lethe_gpt_hidden(g, 4) &&
                 !lethe_gpt_hidden(g, -1);
    int32_t bad_tok[5] = {0, 1, 11, 2, 3}, bad_tgt[5] = {0, 1, 2, -2, 3};
    lethe_status s1 = lethe_gpt_forward(g, micro_tokens, NULL, 1, 6);
    lethe_status s2 = lethe_gpt_forward(g, bad_tok, NULL, 1, 5);
    lethe_status s3 = lethe_gpt_forward(g, micro_tokens, bad_tgt, 1, 5);
    free(both);
    lethe_gpt_free(g);
    CHECK(same);
    CHECK(hidden);
    CHECK(s1 == LETHE_ERR_INVALID && s2 == LETHE_ERR_INVALID && s3 == LETHE_ERR_INVALID);
}

/* A context's forward is the model's, bit for bit, and leaves the model's own
 * activations alone; one context serves models of two architectures. */
TEST(gpt_context_forward_leaves_the_model_alone)
{
    lethe_gpt *g = lethe_gpt_init(&micro);
    const lethe_gpt_config wide = {13, 6, 12, 1, 3};
    lethe_gpt *h = lethe_gpt_init(&wide);
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    CHECK(g && h && x);
    random_params(g, 7);
    random_params(h, 8);
    CHECK_OK(lethe_gpt_forward(g, micro_tokens + 5, micro_targets + 5, 1, 5));
    long nl = 5L * micro.vocab_size;
    float *own = malloc(sizeof(float) * (size_t)nl);
    memcpy(own, g->logits, sizeof(float) * (size_t)nl);
    CHECK_OK(lethe_gpt_ctx_forward(x, h, micro_tokens, NULL, 1, 6));
    CHECK(x->B == 1 && x->T == 6 && !lethe_gpt_ctx_hidden(x, 3));
    CHECK_OK(lethe_gpt_ctx_forward(x, g, micro_tokens, micro_targets, 2, 5));
    /* the model still holds its own last forward */
    CHECK(g->B == 1 && g->T == 5 && !memcmp(own, g->logits, sizeof(float) * (size_t)nl));
    CHECK_OK(lethe_gpt_forward(g, micro_tokens, micro_targets, 2, 5));
    CHECK(!memcmp(x->logits, g->logits, sizeof(float) * 2 * (size_t)nl));
    CHECK(!memcmp(x->logprobs, g->logprobs, sizeof(float) * 10) && x->loss == g->loss &&
          x->n_targets == g->n_targets);
    for (int i = 0; i <= micro.n_layer + 1; i++)
        CHECK(!memcmp(lethe_gpt_ctx_hidden(x, i), lethe_gpt_hidden(g, i), sizeof(float) * 80));
    CHECK(!lethe_gpt_ctx_hidden(x, micro.n_layer + 2));
    /* a forward stopped at hidden state i gives that state's bits */
    lethe_gpt_ctx *y = lethe_gpt_ctx_new();
    for (int i = 0; i <= micro.n_layer + 1; i++) {
        CHECK_OK(lethe_gpt_ctx_forward_to(y, g, micro_tokens, 2, 5, i));
        CHECK(!memcmp(lethe_gpt_ctx_hidden(y, i), lethe_gpt_hidden(g, i), sizeof(float) * 80));
        CHECK(y->n_targets == 0);
    }
    CHECK_STATUS(lethe_gpt_ctx_forward_to(y, g, micro_tokens, 2, 5, micro.n_layer + 2),
                 LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gpt_ctx_forward_to(y, g, micro_tokens, 2, 5, -1), LETHE_ERR_INVALID);
    lethe_gpt_ctx_free(y);
    CHECK_STATUS(lethe_gpt_ctx_forward(x, g, micro_tokens, NULL, 1, 6), LETHE_ERR_INVALID);
    CHECK(!lethe_gpt_ctx_hidden(x, 0));
    free(own);
    lethe_gpt_ctx_free(x);
    lethe_gpt_ctx_free(NULL);
    lethe_gpt_free(h);
    lethe_gpt_free(g);
}

#ifdef _OPENMP
/* Logits and gradients of the tiny preset on 2 x T tokens with n threads. */
static void run_threads(lethe_gpt *g, const int32_t *tok, const int32_t *tgt, int T, int n,
                        float *logits, float *grads)
{
    int keep = omp_get_max_threads();
    omp_set_num_threads(n);
    LETHE_ASSERT(lethe_gpt_forward(g, tok, tgt, 2, T) == LETHE_OK);
    lethe_gpt_zero_grad(g);
    lethe_gpt_backward(g);
    omp_set_num_threads(keep);
    memcpy(logits, g->logits, sizeof(float) * 2 * (size_t)T * (size_t)g->cfg.vocab_size);
    memcpy(grads, g->grads, sizeof(float) * (size_t)g->n_params);
}

TEST(gpt_same_bits_any_thread_count)
{
    lethe_gpt_config c;
    CHECK_OK(lethe_gpt_preset("tiny", &c));
    lethe_gpt *g = lethe_gpt_init(&c);
    CHECK(g);
    lethe_gpt_init_params(g, 3);
    int32_t tok[192], tgt[192];
    for (int i = 0; i < 192; i++) {
        tok[i] = (int32_t)(lethe_rng_hash(1, 0, (uint64_t)i) % 2048);
        tgt[i] = (int32_t)(lethe_rng_hash(1, 1, (uint64_t)i) % 2048);
    }
    const int T = test_quick() ? 24 : 96;
    size_t nl = 2 * (size_t)T * (size_t)c.vocab_size;
    float *l1 = malloc(sizeof(float) * nl), *l2 = malloc(sizeof(float) * nl);
    float *g1 = malloc(sizeof(float) * (size_t)g->n_params);
    float *g2 = malloc(sizeof(float) * (size_t)g->n_params);
    run_threads(g, tok, tgt, T, 1, l1, g1);
    run_threads(g, tok, tgt, T, 4, l2, g2);
    int same = !memcmp(l1, l2, sizeof(float) * nl) &&
               !memcmp(g1, g2, sizeof(float) * (size_t)g->n_params);
    double loss = g->loss;
    free(l1), free(l2), free(g1), free(g2);
    lethe_gpt_free(g);
    CHECK(same);
    CHECK_CLOSE(loss, log(2048.0), 0.01, 0); /* near-uniform predictions at init */
}
#endif

/* ---- the PyTorch twin ------------------------------------------------------ */

static float *fx_tensor(const lethe_safetensors *st, const char *name, size_t *numel)
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

/* Load "<prefix>NAME" for every tensor of the table into dst (arena layout). */
static int fx_arena(const lethe_safetensors *st, const lethe_gpt *g, const char *prefix,
                    float *dst)
{
    for (int i = 0; i < g->n_tensors; i++) {
        char name[96];
        size_t n = 0;
        snprintf(name, sizeof name, "%s%s", prefix, g->tensors[i].name);
        float *v = fx_tensor(st, name, &n);
        if (!v || (long)n != g->tensors[i].numel) {
            free(v);
            return -1;
        }
        memcpy(dst + g->tensors[i].offset, v, n * sizeof(float));
        free(v);
    }
    return 0;
}

/* The worst |a - b| / (1 + |b|). */
static double worst_diff(const float *a, const float *b, long n)
{
    double w = 0;
    for (long i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i])));
    return w;
}

static int meta_int(const lethe_safetensors *st, const char *key)
{
    const char *v = lethe_safetensors_meta(st, key);
    return v ? atoi(v) : 0;
}

TEST(gpt_twin_pytorch)
{
    lethe_safetensors *st = NULL;
    CHECK_OK(lethe_safetensors_open(FIXTURES "gpt_twin.safetensors", &st));
    lethe_gpt_config c = {meta_int(st, "vocab_size"), meta_int(st, "n_positions"),
                          meta_int(st, "n_embd"), meta_int(st, "n_layer"), meta_int(st, "n_head")};
    lethe_gpt *g = lethe_gpt_init(&c);
    CHECK(g);
    size_t ntok = 0, nlog = 0, nlp = 0;
    float *tokf = fx_tensor(st, "tokens", &ntok), *tgtf = fx_tensor(st, "targets", NULL);
    float *want_logits = fx_tensor(st, "logits", &nlog), *want_lp = fx_tensor(st, "logprobs", &nlp);
    const lethe_st_tensor *tt = lethe_safetensors_find(st, "tokens");
    int B = tt && tt->rank == 2 ? (int)tt->shape[0] : 0, T = tt && tt->rank == 2 ? (int)tt->shape[1] : 0;
    long P = g->n_params, N = (long)B * T, C = c.n_embd;
    float *init = zeros(P), *g_want = zeros(P), *p_adamw = zeros(P);
    int loaded = tokf && tgtf && want_logits && want_lp && N > 0 &&
                 !fx_arena(st, g, "init.", init) && !fx_arena(st, g, "grad.", g_want) &&
                 !fx_arena(st, g, "adamw10.", p_adamw) && (long)nlog == N * c.vocab_size &&
                 (long)nlp == N;
    double e_logits = 1, e_lp = 1, e_hidden = 1, e_loss = 1, e_grad = 1, e_grad_rel = 1,
           e_adamw = 1, key_bias_grad = 1;
    if (loaded) {
        int32_t *tok = malloc(sizeof(int32_t) * (size_t)N), *tgt = malloc(sizeof(int32_t) * (size_t)N);
        for (long n = 0; n < N; n++)
            tok[n] = (int32_t)tokf[n], tgt[n] = (int32_t)tgtf[n];
        memcpy(g->params, init, sizeof(float) * (size_t)P);
        lethe_status s = lethe_gpt_forward(g, tok, tgt, B, T);
        if (s == LETHE_OK) {
            e_logits = worst_diff(g->logits, want_logits, N * c.vocab_size);
            e_lp = worst_diff(g->logprobs, want_lp, N);
            e_loss = fabs(g->loss - atof(lethe_safetensors_meta(st, "loss")));
            e_hidden = 0;
            for (int i = 0; i <= c.n_layer + 1; i++) {
                char name[32];
                snprintf(name, sizeof name, "hidden.%d", i);
                size_t nh = 0;
                float *h = fx_tensor(st, name, &nh);
                e_hidden = fmax(e_hidden, h && (long)nh == N * C
                                              ? worst_diff(lethe_gpt_hidden(g, i), h, N * C)
                                              : 1.0);
                free(h);
            }
            lethe_gpt_zero_grad(g);
            lethe_gpt_backward(g);
            e_grad = worst_diff(g->grads, g_want, P);
            double gmax = 0, dmax = 0;
            for (long i = 0; i < P; i++) {
                gmax = fmax(gmax, fabs(g_want[i]));
                dmax = fmax(dmax, fabs(g->grads[i] - g_want[i]));
            }
            e_grad_rel = dmax / gmax;
            key_bias_grad = 0;
            /* 10 AdamW steps, weight decay on every parameter (lethe_optim's rule) */
            lethe_optim *o = lethe_optim_init(LETHE_OPTIM_ADAMW, P);
            memcpy(g->params, init, sizeof(float) * (size_t)P);
            for (int k = 0; k < 10 && o; k++) {
                lethe_gpt_zero_grad(g);
                if (lethe_gpt_forward(g, tok, tgt, B, T) != LETHE_OK)
                    break;
                lethe_gpt_backward(g);
                lethe_optim_step(o, g->params, g->grads, 1e-2f);
            }
            /* The key biases (c_attn.bias[C, 2C)) do not change the output
             * (they add one constant to a row of scores), so their gradient is
             * rounding noise (~1e-10) that Adam scales up to full steps, on
             * both sides differently: they are left out of the comparison. */
            for (int l = 0; l < c.n_layer; l++) {
                long off = lethe_gpt_block_params(g, l).attn_b + C - g->params;
                for (long k = 0; k < C; k++) {
                    key_bias_grad = fmax(key_bias_grad, fabs(g_want[off + k]));
                    g->params[off + k] = p_adamw[off + k] = 0.0f;
                }
            }
            e_adamw = worst_diff(g->params, p_adamw, P);
            lethe_optim_free(o);
        }
        free(tok);
        free(tgt);
    }
    free(tokf), free(tgtf), free(want_logits), free(want_lp);
    free(init), free(g_want), free(p_adamw);
    lethe_gpt_free(g);
    lethe_safetensors_free(st);
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "gpt twin: logits %.3g logprobs %.3g hidden %.3g loss %.3g grads %.3g "
                "(%.3g of the largest) adamw10 %.3g key-bias grads %.3g\n", e_logits, e_lp,
                e_hidden, e_loss, e_grad, e_grad_rel, e_adamw, key_bias_grad);
    CHECK_MSG(loaded, "gpt_twin.safetensors: tensors missing or mis-shaped");
    CHECK_MSG(e_logits < 1e-5, "logits differ by %g", e_logits);
    CHECK_MSG(e_lp < 1e-5, "log-probabilities differ by %g", e_lp);
    CHECK_MSG(e_hidden < 1e-5, "hidden states differ by %g", e_hidden);
    CHECK_MSG(e_loss < 1e-5, "loss differs by %g", e_loss);
    CHECK_MSG(e_grad < 1e-5 && e_grad_rel < 1e-4, "gradients differ by %g (%g of the largest)",
              e_grad, e_grad_rel);
    CHECK_MSG(e_adamw < 1e-4, "parameters after 10 AdamW steps differ by %g", e_adamw);
    CHECK_MSG(key_bias_grad < 1e-6, "key-bias gradients %g, expected rounding noise",
              key_bias_grad);
}

/* ---- checkpoints ------------------------------------------------------------ */

static const char *gpt_tmp(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/lethe-test-%ld-%s", (long)getpid(), name);
    return buf;
}

TEST(gpt_save_load_round_trip)
{
    lethe_gpt *g = lethe_gpt_init(&micro), *h = NULL;
    CHECK(g);
    random_params(g, 8);
    char path[256];
    snprintf(path, sizeof path, "%s", gpt_tmp("gpt.safetensors"));
    lethe_st_meta meta[1] = {{"method", "none"}};
    CHECK_OK(lethe_gpt_save(g, path, meta, 1));
    lethe_status s = lethe_gpt_load(path, &h);
    int same = s == LETHE_OK && h && !memcmp(&g->cfg, &h->cfg, sizeof g->cfg) &&
               !memcmp(g->params, h->params, sizeof(float) * (size_t)g->n_params);
    lethe_safetensors *st = NULL;
    int has_meta = lethe_safetensors_open(path, &st) == LETHE_OK &&
                   lethe_safetensors_meta(st, "method") &&
                   !strcmp(lethe_safetensors_meta(st, "n_head"), "2");
    lethe_safetensors_free(st);
    unlink(path);
    lethe_gpt_free(g);
    lethe_gpt_free(h);
    CHECK_OK(s);
    CHECK(same && has_meta);
}

TEST(gpt_load_hugging_face_names)
{
    /* "transformer."-prefixed names, no config in the metadata, an extra
     * lm_head.weight and attention-mask buffer: the config comes from the
     * shapes, with head_dim 64 */
    lethe_gpt_config c = {13, 6, 64, 2, 1};
    lethe_gpt *g = lethe_gpt_init(&c), *h = NULL;
    CHECK(g);
    random_params(g, 9);
    int n = g->n_tensors;
    lethe_st_f32 *ts = calloc((size_t)n + 2, sizeof *ts);
    char (*names)[64] = calloc((size_t)n, sizeof *names);
    size_t *shapes = calloc(2 * (size_t)n, sizeof *shapes), mask_shape[4] = {1, 1, 6, 6};
    float mask[36] = {0};
    for (int i = 0; i < n; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        snprintf(names[i], sizeof names[i], "transformer.%s", t->name);
        shapes[2 * i] = (size_t)t->shape[0], shapes[2 * i + 1] = (size_t)t->shape[1];
        ts[i] = (lethe_st_f32){names[i], (size_t)t->rank, shapes + 2 * i, g->params + t->offset};
    }
    ts[n] = (lethe_st_f32){"lm_head.weight", 2, shapes, g->params};
    ts[n + 1] = (lethe_st_f32){"transformer.h.0.attn.bias", 4, mask_shape, mask};
    char path[256];
    snprintf(path, sizeof path, "%s", gpt_tmp("hf.safetensors"));
    lethe_status sw = lethe_safetensors_write(path, ts, (size_t)n + 2, NULL, 0);
    lethe_status s = sw == LETHE_OK ? lethe_gpt_load(path, &h) : sw;
    int same = s == LETHE_OK && h && !memcmp(&g->cfg, &h->cfg, sizeof g->cfg) &&
               !memcmp(g->params, h->params, sizeof(float) * (size_t)g->n_params);
    unlink(path);
    /* a missing tensor is reported by name */
    lethe_status s_missing = lethe_safetensors_write(path, ts, 5, NULL, 0);
    lethe_gpt *none = NULL;
    if (s_missing == LETHE_OK)
        s_missing = lethe_gpt_load(path, &none);
    unlink(path);
    free(ts), free(names), free(shapes);
    lethe_gpt_free(g);
    lethe_gpt_free(h);
    CHECK_OK(s);
    CHECK(same);
    CHECK(s_missing == LETHE_ERR_NOT_FOUND && none == NULL);
}
