/* Language-model unlearning (lethe/lm_unlearn.h): every loss against a
 * direct double-precision recomputation from the logits (or hidden states)
 * of a tiny model, its gradient against central differences of that
 * recomputation on every parameter, the limits and identities of the
 * losses, and the driver (determinism, GA lowering the forget likelihood,
 * RMU's freezing, Task Vector, WHP in generation, LoRA).
 *
 * Model: {vocab 13, positions 8, n_embd 8, n_layer 2, n_head 2} (1,928
 * parameters), GPT-2's initialisation plus U(-0.3, 0.3) noise so its
 * distributions are far from uniform; the reference is a copy with another
 * U(-0.05, 0.05) of noise.
 *
 * Tolerances:
 *   value: |lethe - direct| <= 1e-6 + 2e-5 |direct| (the engine's logprobs
 *     and lse are float; the direct recomputation takes float logits to
 *     double);
 *   gradient: step h = 1e-2 on each of the 1,928 parameters, the direct
 *     value (double from the float forward) at p +- h;
 *     ||num - ana|| <= 1e-2 ||num||, and every |num - ana| <= 2e-3 max|num|
 *     + 3e-2 |num|. Stop-gradient quantities (WGA's and SatImp's weights,
 *     CE-U's target) are frozen at the unperturbed parameters in the
 *     recomputation, as the losses' gradients treat them;
 *   limits: NPO vs GA cosine > 0.999 at beta 1e-4; identities (IdkDPO's
 *     (2/beta) log 2, KL against itself, RMU at its target, UNDIAL's sum)
 *     to 1e-12 or exactly;
 *   driver: bit-identical reruns; the forget NLL must rise by > 0.05 nats. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../test.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_train.h"
#include "lethe/lm_unlearn.h"
#include "lethe/lora.h"
#include "lethe/rng.h"
#include "lethe/rundir.h"
#include "lethe/tofu_pipeline.h"

static const lethe_gpt_config TINY = {13, 8, 8, 2, 2};
#define V 13
#define MAXN 64

static void noise(lethe_gpt *g, float a, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 3);
    for (long i = 0; i < g->n_params; i++)
        g->params[i] += a * (2.0f * lethe_rng_uniformf(&r) - 1.0f);
}

static lethe_gpt *model(uint64_t seed)
{
    lethe_gpt *g = lethe_gpt_init(&TINY);
    if (g) {
        lethe_gpt_init_params(g, seed);
        noise(g, 0.3f, seed + 100);
    }
    return g;
}

/* A batch of B x T with the first `prompt` positions unlabelled and, in
 * the last row, the final position unlabelled (padding). */
typedef struct tb {
    int32_t tok[MAXN], tgt[MAXN];
    lethe_lm_batch b;
} tb;

static void make_batch(tb *x, int B, int T, int prompt, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 5);
    for (int i = 0; i < B * T; i++) {
        int t = i % T;
        x->tok[i] = (int32_t)lethe_rng_below(&r, V);
        x->tgt[i] = t < prompt ? -1 : (int32_t)lethe_rng_below(&r, V);
    }
    x->tgt[B * T - 1] = -1;
    x->b = (lethe_lm_batch){x->tok, x->tgt, B, T};
}

/* ---- the direct recomputation ------------------------------------------ */

static double lse_d(const float *z)
{
    double m = -INFINITY, s = 0;
    for (int v = 0; v < V; v++)
        m = z[v] > m ? z[v] : m;
    for (int v = 0; v < V; v++)
        s += exp((double)z[v] - m);
    return m + log(s);
}

static double logsig(double x) { return -log1p(exp(-x)); }

static int fw(lethe_gpt *m, const lethe_lm_batch *b)
{
    return lethe_gpt_forward(m, b->tokens, b->targets, b->B, b->T) == LETHE_OK;
}

/* Per sequence: sum of answer log-probs, count. */
static void seq_d(lethe_gpt *m, const lethe_lm_batch *b, double *s, int *n)
{
    LETHE_ASSERT(fw(m, b));
    for (int i = 0; i < b->B; i++) {
        s[i] = 0;
        n[i] = 0;
        for (int t = 0; t < b->T; t++) {
            long k = (long)i * b->T + t;
            if (b->targets[k] < 0)
                continue;
            const float *z = m->logits + k * V;
            s[i] += (double)z[b->targets[k]] - lse_d(z);
            n[i]++;
        }
    }
}

static double nll_d(lethe_gpt *m, const lethe_lm_batch *b)
{
    double s[MAXN], tot = 0;
    int n[MAXN], cnt = 0;
    LETHE_ASSERT(b->B <= MAXN);
    seq_d(m, b, s, n);
    for (int i = 0; i < b->B; i++) {
        tot -= s[i];
        cnt += n[i];
    }
    return tot / cnt;
}

static double kl_d(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *b)
{
    static float zr[MAXN * V];
    long N = (long)b->B * b->T;
    LETHE_ASSERT(fw(ref, b));
    memcpy(zr, ref->logits, sizeof(float) * (size_t)(N * V));
    LETHE_ASSERT(fw(g, b));
    double tot = 0;
    for (long i = 0; i < N; i++) {
        double lr = lse_d(zr + i * V), lt = lse_d(g->logits + i * V);
        for (int v = 0; v < V; v++) {
            double a = zr[i * V + v] - lr, c = g->logits[i * V + v] - lt;
            tot += exp(a) * (a - c);
        }
    }
    return tot / (double)N;
}

/* RMU's activation loss of hidden state li of m's last forward against
 * tgt (per_row: (N, C); else one vector). */
static double act_d(const lethe_gpt *m, int li, const float *tgt, int per_row)
{
    const float *h = lethe_gpt_hidden(m, li);
    int C = m->cfg.n_embd;
    double tot = 0;
    for (int b = 0; b < m->B; b++) {
        double acc = 0;
        int n = 0;
        for (int t = 0; t < m->T; t++) {
            long r = (long)b * m->T + t;
            if (m->targets[r] < 0)
                continue;
            double sq = 0;
            for (int d = 0; d < C; d++) {
                double e = (double)h[r * C + d] - tgt[per_row ? r * C + d : d];
                sq += e * e;
            }
            acc += sq / C;
            n++;
        }
        tot += acc / n;
    }
    return tot / m->B;
}

/* Frozen stop-gradient quantities: per position (WGA / SatImp weight) or
 * per position and token (CE-U target). */
static double frz[MAXN * V];
static int use_frz;

static double direct(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *c, const lethe_lm_batch *f,
                     const lethe_lm_batch *r, const lethe_lm_batch *k, const float *control)
{
    double F = 0, R = 0, s[8], rs[8], w[8], rw[8];
    int n[8];
    LETHE_ASSERT(f->B <= 8 && (!k || k->B <= 8));
    double beta = c->beta;
    int B = f->B;
    long N = (long)f->B * f->T;
    static float zr[MAXN * V];
    switch (c->method) {
    case LETHE_LM_GA:
    case LETHE_LM_GRADDIFF: F = -nll_d(g, f); break;
    case LETHE_LM_TASKVECTOR:
    case LETHE_LM_WHP: F = nll_d(g, f); break;
    case LETHE_LM_NPO:
        seq_d(ref, f, rs, n);
        seq_d(g, f, s, n);
        for (int i = 0; i < B; i++)
            F += -(2 / beta) * logsig(-beta * (s[i] - rs[i])) / B;
        break;
    case LETHE_LM_SIMNPO:
        seq_d(g, f, s, n);
        for (int i = 0; i < B; i++)
            F += -(2 / beta) * logsig(beta * (-s[i] / n[i] - c->delta)) / B;
        break;
    case LETHE_LM_IDKNLL: F = nll_d(g, k); break;
    case LETHE_LM_IDKDPO:
        seq_d(ref, k, rw, n);
        seq_d(g, k, w, n);
        seq_d(ref, f, rs, n);
        seq_d(g, f, s, n);
        for (int i = 0; i < B; i++)
            F += -(2 / beta) * logsig(beta * ((w[i] - rw[i]) - (s[i] - rs[i]))) / B;
        break;
    case LETHE_LM_RMU:
        LETHE_ASSERT(fw(g, f));
        F = act_d(g, c->rmu_layer + 1, control, 0);
        break;
    case LETHE_LM_UNDIAL:
        LETHE_ASSERT(fw(ref, f));
        memcpy(zr, ref->logits, sizeof(float) * (size_t)(N * V));
        LETHE_ASSERT(fw(g, f));
        for (long i = 0; i < N; i++) {
            double q[V], m = -INFINITY, S = 0, lt = lse_d(g->logits + i * V);
            for (int v = 0; v < V; v++) {
                q[v] = zr[i * V + v] - (v == f->targets[i] ? beta : 0);
                m = q[v] > m ? q[v] : m;
            }
            for (int v = 0; v < V; v++)
                S += (q[v] = exp(q[v] - m));
            for (int v = 0; v < V; v++)
                F -= q[v] / S * (g->logits[i * V + v] - lt) / (double)N;
        }
        break;
    case LETHE_LM_WGA:
    case LETHE_LM_SATIMP: {
        LETHE_ASSERT(fw(g, f));
        int cnt = 0;
        for (long i = 0; i < N; i++) {
            if (f->targets[i] < 0)
                continue;
            const float *z = g->logits + i * V;
            double lp = z[f->targets[i]] - lse_d(z), p = exp(lp);
            if (!use_frz)
                frz[i] = c->method == LETHE_LM_WGA ? pow(p, beta)
                                                   : pow(p, beta) * pow(1 - p, c->beta2);
            F += frz[i] * lp;
            cnt++;
        }
        F /= cnt;
        break;
    }
    case LETHE_LM_CEU: {
        LETHE_ASSERT(fw(g, f));
        int M = 0;
        for (int b = 0; b < B; b++) {
            int seen = 0;
            for (int t = 0; t < f->T; t++) {
                long i = (long)b * f->T + t;
                int y = f->targets[i];
                if (y < 0 || ++seen <= c->ceu_ignore)
                    continue;
                const float *z = g->logits + i * V;
                double lt = lse_d(z);
                if (!use_frz) {
                    double S = 0;
                    for (int v = 0; v < V; v++)
                        S += v == y ? 0 : exp((double)z[v]);
                    for (int v = 0; v < V; v++)
                        frz[i * V + v] = v == y ? 0 : exp((double)z[v]) / S;
                }
                for (int v = 0; v < V; v++)
                    F -= frz[i * V + v] * (z[v] - lt);
                M++;
            }
        }
        F /= M;
        break;
    }
    default: LETHE_ASSERT(0);
    }
    lethe_lm_retain rk = c->alpha == 0 ? LETHE_LM_RETAIN_NONE : c->retain;
    if (rk == LETHE_LM_RETAIN_NLL)
        R = nll_d(g, r);
    else if (rk == LETHE_LM_RETAIN_KL)
        R = kl_d(g, ref, r);
    else if (rk == LETHE_LM_RETAIN_EMBED) {
        static float hr[MAXN * 8];
        LETHE_ASSERT(fw(ref, r));
        memcpy(hr, lethe_gpt_hidden(ref, c->rmu_layer + 1),
               sizeof(float) * (size_t)(r->B * r->T * 8));
        LETHE_ASSERT(fw(g, r));
        R = act_d(g, c->rmu_layer + 1, hr, 1);
    }
    return c->gamma * F + (rk == LETHE_LM_RETAIN_NONE ? 0 : c->alpha * R);
}

/* ---- the check every loss passes ------------------------------------------ */

typedef struct fixture {
    lethe_gpt *g, *ref;
    tb f, r, k;
    float control[8];
} fixture;

static int fixture_init(fixture *x)
{
    x->g = model(1);
    x->ref = x->g ? lethe_lm_clone(x->g) : NULL;
    if (!x->ref)
        return 0;
    noise(x->ref, 0.05f, 9);
    make_batch(&x->f, 3, 8, 3, 11);
    make_batch(&x->r, 3, 6, 2, 12);
    make_batch(&x->k, 3, 5, 3, 13);
    lethe_lm_rmu_control(x->control, 8, 2.0, 4);
    return 1;
}

static void fixture_free(fixture *x)
{
    lethe_gpt_free(x->g);
    lethe_gpt_free(x->ref);
}

/* Parameters checked by finite differences: every FD_STRIDE-th (every
 * tensor is larger than the stride, so each is sampled), or a sparser sample
 * when LETHE_TEST_QUICK is set (the valgrind run, 30 times slower). */
#define FD_STRIDE 3
static long fd_stride(void)
{
    return test_quick() ? 8 * FD_STRIDE : FD_STRIDE;
}

/* Value and gradient of cfg against the recomputation; 1 when both pass
 * (failures are reported through test_fail_at by the caller's CHECK). */
static int check_loss(fixture *x, const lethe_lm_cfg *cfg, const char *label)
{
    lethe_gpt *g = x->g;
    long P = g->n_params;
    float *ana = malloc(sizeof *ana * (size_t)P);
    if (!ana)
        return 0;
    lethe_lm_terms terms;
    lethe_gpt_zero_grad(g);
    use_frz = 0;
    lethe_status st = lethe_lm_loss(g, x->ref, cfg, &x->f.b, &x->r.b, &x->k.b, x->control, &terms);
    if (st != LETHE_OK) {
        printf("  %s: lethe_lm_loss: %s\n", label, lethe_error_detail());
        free(ana);
        return 0;
    }
    memcpy(ana, g->grads, sizeof *ana * (size_t)P);
    double want = direct(g, x->ref, cfg, &x->f.b, &x->r.b, &x->k.b, x->control);
    int ok = fabs(terms.loss - want) <= 1e-6 + 2e-5 * fabs(want);
    use_frz = 1;
    double h = 1e-2, num2 = 0, err2 = 0, maxnum = 0, worst = 0;
    double *num = calloc((size_t)P, sizeof *num);
    const long stride = fd_stride();
    for (long i = 0; i < P; i += stride) {
        float p = g->params[i];
        g->params[i] = p + (float)h;
        double a = direct(g, x->ref, cfg, &x->f.b, &x->r.b, &x->k.b, x->control);
        g->params[i] = p - (float)h;
        double b = direct(g, x->ref, cfg, &x->f.b, &x->r.b, &x->k.b, x->control);
        g->params[i] = p;
        num[i] = (a - b) / (2 * h);
        num2 += num[i] * num[i];
        err2 += (num[i] - ana[i]) * (num[i] - ana[i]);
        if (fabs(num[i]) > maxnum)
            maxnum = fabs(num[i]);
    }
    int elem_ok = 1;
    for (long i = 0; i < P; i += stride) {
        double e = fabs(num[i] - ana[i]), tol = 2e-3 * maxnum + 3e-2 * fabs(num[i]);
        if (e / (tol > 0 ? tol : 1e-300) > worst)
            worst = e / (tol > 0 ? tol : 1e-300);
        if (e > tol)
            elem_ok = 0;
    }
    double rel = sqrt(err2 / (num2 > 0 ? num2 : 1e-300));
    printf("  %-12s value %.10g direct %.10g | grad rel err %.2e, max|g| %.3g, worst elem "
           "err/tol %.2f\n", label, terms.loss, want, rel, maxnum, worst);
    ok = ok && num2 > 0 && rel <= 1e-2 && elem_ok;
    free(num);
    free(ana);
    return ok;
}

static lethe_lm_cfg cfg_of(lethe_lm_method m)
{
    lethe_lm_cfg c;
    lethe_lm_defaults(m, &c);
    c.rmu_layer = 1;
    return c;
}

/* ---- names, defaults, checks ---------------------------------------------- */

TEST(lm_names_defaults)
{
    lethe_lm_cfg c;
    for (int m = 0; m < LETHE_LM_N_METHODS; m++) {
        CHECK_OK(lethe_lm_parse(lethe_lm_method_name((lethe_lm_method)m), &c));
        CHECK(c.method == (lethe_lm_method)m);
    }
    CHECK_OK(lethe_lm_parse("npo_klr", &c));
    CHECK(c.method == LETHE_LM_NPO && c.retain == LETHE_LM_RETAIN_KL && c.beta == 0.1);
    CHECK_OK(lethe_lm_parse("ga_klr", &c));
    CHECK(c.method == LETHE_LM_GRADDIFF && c.retain == LETHE_LM_RETAIN_KL);
    CHECK_OK(lethe_lm_parse("simnpo", &c));
    CHECK(c.beta == 4.5 && c.gamma == 0.125 && c.alpha == 1 && c.delta == 0);
    CHECK_OK(lethe_lm_parse("satimp", &c));
    CHECK(c.beta == 5 && c.beta2 == 1 && c.gamma == 0.1 && c.alpha == 1);
    CHECK_OK(lethe_lm_parse("undial", &c));
    CHECK(c.beta == 10 && c.alpha == 0);
    CHECK_OK(lethe_lm_parse("rmu", &c));
    CHECK(c.steering == 2 && c.retain == LETHE_LM_RETAIN_EMBED && c.rmu_blocks == 3);
    CHECK_OK(lethe_lm_parse("ga", &c));
    CHECK(c.retain == LETHE_LM_RETAIN_NONE);
    CHECK_STATUS(lethe_lm_parse("gradascent", &c), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "simnpo"));
    lethe_lm_retain r;
    CHECK_OK(lethe_lm_retain_parse("kl", &r));
    CHECK(r == LETHE_LM_RETAIN_KL);
    CHECK_STATUS(lethe_lm_retain_parse("mse", &r), LETHE_ERR_INVALID);

    lethe_gpt *g = model(1);
    CHECK(g);
    lethe_lm_defaults(LETHE_LM_NPO, &c);
    CHECK_STATUS(lethe_lm_check(&c, g, NULL), LETHE_ERR_INVALID); /* NPO reads a reference */
    CHECK(strstr(lethe_error_detail(), "reference"));
    CHECK_OK(lethe_lm_check(&c, g, g));
    lethe_lm_defaults(LETHE_LM_SIMNPO, &c);
    CHECK_OK(lethe_lm_check(&c, g, NULL));
    lethe_lm_defaults(LETHE_LM_GA, &c);
    c.retain = LETHE_LM_RETAIN_EMBED;
    CHECK_STATUS(lethe_lm_check(&c, g, g), LETHE_ERR_INVALID);
    lethe_lm_defaults(LETHE_LM_RMU, &c);
    c.rmu_layer = 2; /* blocks 0..1 */
    CHECK_STATUS(lethe_lm_check(&c, g, g), LETHE_ERR_INVALID);
    c.rmu_layer = -1; /* auto: min(7, L - 1) = 1 */
    CHECK_OK(lethe_lm_check(&c, g, g));
    lethe_lm_defaults(LETHE_LM_NPO, &c);
    c.beta = 0;
    CHECK_STATUS(lethe_lm_check(&c, g, g), LETHE_ERR_INVALID);
    /* a forget sequence without any answer token */
    int32_t tok[4] = {1, 2, 3, 4}, tgt[4] = {-1, -1, -1, -1};
    lethe_lm_batch b = {tok, tgt, 1, 4};
    lethe_lm_defaults(LETHE_LM_GA, &c);
    CHECK_STATUS(lethe_lm_loss(g, NULL, &c, &b, NULL, NULL, NULL, NULL), LETHE_ERR_INVALID);
    lethe_gpt_free(g);
}

/* ---- every loss: value and gradient --------------------------------------- */

#define LOSS_TEST(tname, setup)                                          \
    TEST(tname)                                                          \
    {                                                                    \
        fixture x;                                                       \
        CHECK(fixture_init(&x));                                         \
        lethe_lm_cfg c;                                                  \
        setup;                                                           \
        int ok = check_loss(&x, &c, #tname + 3);                         \
        fixture_free(&x);                                                \
        CHECK(ok);                                                       \
    }

LOSS_TEST(lm_loss_ga, c = cfg_of(LETHE_LM_GA))
LOSS_TEST(lm_loss_graddiff, c = cfg_of(LETHE_LM_GRADDIFF))
LOSS_TEST(lm_loss_ga_klr, { c = cfg_of(LETHE_LM_GRADDIFF); c.retain = LETHE_LM_RETAIN_KL; })
LOSS_TEST(lm_loss_npo_gdr, c = cfg_of(LETHE_LM_NPO))
LOSS_TEST(lm_loss_npo_klr, { c = cfg_of(LETHE_LM_NPO); c.retain = LETHE_LM_RETAIN_KL; })
LOSS_TEST(lm_loss_npo_beta2, { c = cfg_of(LETHE_LM_NPO); c.beta = 2; })
LOSS_TEST(lm_loss_simnpo, { c = cfg_of(LETHE_LM_SIMNPO); c.delta = 0.5; })
LOSS_TEST(lm_loss_idknll, c = cfg_of(LETHE_LM_IDKNLL))
LOSS_TEST(lm_loss_idkdpo, { c = cfg_of(LETHE_LM_IDKDPO); c.beta = 1; })
LOSS_TEST(lm_loss_rmu, c = cfg_of(LETHE_LM_RMU))
LOSS_TEST(lm_loss_rmu_layer0, { c = cfg_of(LETHE_LM_RMU); c.rmu_layer = 0; c.alpha = 3; })
LOSS_TEST(lm_loss_undial, { c = cfg_of(LETHE_LM_UNDIAL); c.beta = 2; })
LOSS_TEST(lm_loss_undial_klr,
          { c = cfg_of(LETHE_LM_UNDIAL); c.alpha = 0.5; c.retain = LETHE_LM_RETAIN_KL; })
LOSS_TEST(lm_loss_wga, c = cfg_of(LETHE_LM_WGA))
LOSS_TEST(lm_loss_satimp, { c = cfg_of(LETHE_LM_SATIMP); c.beta = 1.5; })
LOSS_TEST(lm_loss_ceu, c = cfg_of(LETHE_LM_CEU))
LOSS_TEST(lm_loss_ceu_ignore0, { c = cfg_of(LETHE_LM_CEU); c.ceu_ignore = 0; c.gamma = 2; })
LOSS_TEST(lm_loss_reinforce, c = cfg_of(LETHE_LM_TASKVECTOR))

/* ---- limits and identities ------------------------------------------------ */

TEST(lm_npo_tends_to_ga)
{
    fixture x;
    CHECK(fixture_init(&x));
    lethe_gpt *g = x.g;
    long P = g->n_params;
    float *ga = malloc(sizeof *ga * (size_t)P);
    CHECK(ga);
    lethe_lm_cfg c = cfg_of(LETHE_LM_GA);
    lethe_gpt_zero_grad(g);
    CHECK_OK(lethe_lm_loss(g, x.ref, &c, &x.f.b, NULL, NULL, NULL, NULL));
    memcpy(ga, g->grads, sizeof *ga * (size_t)P);
    double cosv[2];
    const double betas[2] = {1e-4, 10};
    for (int k = 0; k < 2; k++) {
        c = cfg_of(LETHE_LM_NPO);
        c.retain = LETHE_LM_RETAIN_NONE;
        c.beta = betas[k];
        lethe_gpt_zero_grad(g);
        CHECK_OK(lethe_lm_loss(g, x.ref, &c, &x.f.b, NULL, NULL, NULL, NULL));
        double d = 0, a = 0, b = 0;
        for (long i = 0; i < P; i++) {
            d += (double)ga[i] * g->grads[i];
            a += (double)ga[i] * ga[i];
            b += (double)g->grads[i] * g->grads[i];
        }
        cosv[k] = d / sqrt(a * b);
    }
    printf("  cos(NPO, GA): beta 1e-4 %.8f, beta 10 %.6f\n", cosv[0], cosv[1]);
    free(ga);
    fixture_free(&x);
    CHECK(cosv[0] > 0.999);
    CHECK(cosv[1] < cosv[0]); /* the reference-relative weighting matters at large beta */
}

TEST(lm_simnpo_needs_no_reference)
{
    fixture x;
    CHECK(fixture_init(&x));
    lethe_lm_cfg c = cfg_of(LETHE_LM_SIMNPO);
    lethe_lm_terms t1, t2;
    lethe_gpt_zero_grad(x.g);
    CHECK_OK(lethe_lm_loss(x.g, NULL, &c, &x.f.b, &x.r.b, NULL, NULL, &t1));
    CHECK_OK(lethe_lm_loss(x.g, x.ref, &c, &x.f.b, &x.r.b, NULL, NULL, &t2));
    CHECK(t1.loss == t2.loss && isfinite(t1.loss)); /* the reference is not read */
    fixture_free(&x);
}

TEST(lm_idkdpo_at_init)
{
    fixture x;
    CHECK(fixture_init(&x));
    lethe_gpt *same = lethe_lm_clone(x.g);
    CHECK(same);
    lethe_lm_cfg c = cfg_of(LETHE_LM_IDKDPO);
    lethe_lm_terms t;
    CHECK_OK(lethe_lm_loss(x.g, same, &c, &x.f.b, &x.r.b, &x.k.b, NULL, &t));
    double want = 2.0 / c.beta * log(2.0);
    printf("  IdkDPO at init: %.15g, (2/beta) log 2 = %.15g\n", t.forget, want);
    CHECK_CLOSE(t.forget, want, 1e-12, 0);
    /* against a different reference it is not (2/beta) log 2 */
    CHECK_OK(lethe_lm_loss(x.g, x.ref, &c, &x.f.b, &x.r.b, &x.k.b, NULL, &t));
    CHECK(fabs(t.forget - want) > 1e-3);
    lethe_gpt_free(same);
    fixture_free(&x);
}

TEST(lm_kl_retain_self_zero)
{
    fixture x;
    CHECK(fixture_init(&x));
    lethe_gpt *same = lethe_lm_clone(x.g);
    CHECK(same);
    lethe_lm_cfg c = cfg_of(LETHE_LM_GRADDIFF);
    c.retain = LETHE_LM_RETAIN_KL;
    c.gamma = 0; /* the KL term alone */
    lethe_lm_terms t;
    lethe_gpt_zero_grad(x.g);
    CHECK_OK(lethe_lm_loss(x.g, same, &c, &x.f.b, &x.r.b, NULL, NULL, &t));
    CHECK(t.retain == 0 && t.loss == 0);
    for (long i = 0; i < x.g->n_params; i++)
        CHECK(x.g->grads[i] == 0);
    /* and positive against another model */
    CHECK_OK(lethe_lm_loss(x.g, x.ref, &c, &x.f.b, &x.r.b, NULL, NULL, &t));
    CHECK(t.retain > 1e-6);
    lethe_gpt_free(same);
    fixture_free(&x);
}

TEST(lm_rmu_at_target)
{
    fixture x;
    CHECK(fixture_init(&x));
    /* one sequence with a single answer position: steer toward its own
     * hidden state there */
    int32_t tok[6] = {1, 5, 7, 2, 9, 3}, tgt[6] = {-1, -1, -1, 4, -1, -1};
    lethe_lm_batch b = {tok, tgt, 1, 6};
    CHECK_OK(lethe_gpt_forward(x.g, tok, tgt, 1, 6));
    float c8[8];
    memcpy(c8, lethe_gpt_hidden(x.g, 2) + 3 * 8, sizeof c8);
    lethe_lm_cfg c = cfg_of(LETHE_LM_RMU);
    c.retain = LETHE_LM_RETAIN_NONE;
    lethe_lm_terms t;
    lethe_gpt_zero_grad(x.g);
    CHECK_OK(lethe_lm_loss(x.g, NULL, &c, &b, NULL, NULL, c8, &t));
    CHECK(t.forget == 0 && t.loss == 0);
    for (long i = 0; i < x.g->n_params; i++)
        CHECK(x.g->grads[i] == 0);
    c8[0] += 0.5f; /* off target: positive loss, nonzero gradient */
    CHECK_OK(lethe_lm_loss(x.g, NULL, &c, &b, NULL, NULL, c8, &t));
    CHECK_CLOSE(t.forget, 0.25 / 8, 1e-6, 0);
    double n2 = 0;
    for (long i = 0; i < x.g->n_params; i++)
        n2 += (double)x.g->grads[i] * x.g->grads[i];
    CHECK(n2 > 0);
    /* the control vector: norm = steering, non-negative, keyed by the seed */
    float u[8], v[8];
    lethe_lm_rmu_control(u, 8, 2.0, 4);
    lethe_lm_rmu_control(v, 8, 2.0, 5);
    double nu = 0;
    for (int d = 0; d < 8; d++) {
        CHECK(u[d] >= 0);
        nu += (double)u[d] * u[d];
    }
    CHECK_CLOSE(sqrt(nu), 2.0, 1e-6, 0);
    CHECK(memcmp(u, v, sizeof u));
    fixture_free(&x);
}

TEST(lm_undial_target)
{
    float z[V];
    double q[V], p[V];
    lethe_rng r = lethe_rng_init(2, 0);
    for (int k = 0; k < 20; k++) {
        for (int v = 0; v < V; v++)
            z[v] = 4.0f * (2.0f * lethe_rng_uniformf(&r) - 1.0f);
        int y = k % V;
        lethe_lm_undial_target(q, z, V, y, 10.0);
        lethe_lm_undial_target(p, z, V, -1, 10.0);
        double s = 0, sp = 0;
        for (int v = 0; v < V; v++) {
            s += q[v];
            sp += p[v];
        }
        CHECK_CLOSE(s, 1.0, 1e-12, 0);
        CHECK_CLOSE(sp, 1.0, 1e-12, 0);
        /* the gold token loses probability by exp(-beta) relative to the rest */
        CHECK_CLOSE(q[y] / q[(y + 1) % V], exp(-10.0) * p[y] / p[(y + 1) % V], 1e-9, 0);
        CHECK(q[y] < p[y]);
    }
}

TEST(lm_ceu_nothing_left)
{
    fixture x;
    CHECK(fixture_init(&x));
    int32_t tok[4] = {1, 2, 3, 4}, tgt[4] = {-1, -1, 5, -1};
    lethe_lm_batch b = {tok, tgt, 1, 4};
    lethe_lm_cfg c = cfg_of(LETHE_LM_CEU);
    CHECK_STATUS(lethe_lm_loss(x.g, NULL, &c, &b, NULL, NULL, NULL, NULL), LETHE_ERR_INVALID);
    c.ceu_ignore = 0;
    CHECK_OK(lethe_lm_loss(x.g, NULL, &c, &b, NULL, NULL, NULL, NULL));
    fixture_free(&x);
}

/* ---- the driver ------------------------------------------------------------ */

/* n QA-like sequences of T: prompt 3 tokens, then answer targets. */
typedef struct qa_set {
    int32_t *tok, *tgt;
    lethe_lm_set s;
} qa_set;

static int qa_make(qa_set *q, long n, int T, uint64_t seed)
{
    q->tok = malloc(sizeof(int32_t) * (size_t)(n * T));
    q->tgt = malloc(sizeof(int32_t) * (size_t)(n * T));
    if (!q->tok || !q->tgt)
        return 0;
    lethe_rng r = lethe_rng_init(seed, 21);
    for (long i = 0; i < n; i++) {
        for (int t = 0; t < T; t++)
            q->tok[i * T + t] = (int32_t)lethe_rng_below(&r, V);
        for (int t = 0; t < T; t++)
            q->tgt[i * T + t] = t < 3 ? -1 : (t + 1 < T ? q->tok[i * T + t + 1] : 0);
    }
    q->s = (lethe_lm_set){q->tok, q->tgt, n, T};
    return 1;
}

static void qa_free(qa_set *q)
{
    free(q->tok);
    free(q->tgt);
}

/* Mean answer NLL of a set. */
static double set_nll(lethe_gpt *g, const lethe_lm_set *s)
{
    lethe_lm_batch b = {s->tokens, s->targets, (int)s->n, s->T};
    return nll_d(g, &b);
}

/* A tiny model fit a few steps to the forget sequences (so there is
 * something to unlearn). */
static lethe_gpt *trained(const qa_set *f)
{
    lethe_gpt *g = model(3);
    if (!g)
        return NULL;
    lethe_lm_cfg c = cfg_of(LETHE_LM_WHP); /* NLL descent on the set */
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 30;
    s.batch = 4;
    s.lr = 1e-2f;
    s.warmup = 0;
    s.constant = 1;
    s.seed = 77;
    if (lethe_lm_unlearn(g, NULL, &c, &f->s, NULL, NULL, &s, NULL, NULL) != LETHE_OK) {
        lethe_gpt_free(g);
        return NULL;
    }
    return g;
}

static int same_params(const lethe_gpt *a, const lethe_gpt *b)
{
    return !memcmp(a->params, b->params, sizeof(float) * (size_t)a->n_params);
}

TEST(lm_order_and_pairing)
{
    enum { N = 101 };
    long a[N], b[N], c[N];
    int seen[N] = {0};
    CHECK_OK(lethe_lm_order(N, 5, 0, a));
    CHECK_OK(lethe_lm_order(N, 5, 0, b));
    CHECK_OK(lethe_lm_order(N, 5, 1, c));
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a));
    for (int i = 0; i < N; i++) {
        CHECK(!seen[a[i]]);
        seen[a[i]] = 1;
    }
    /* dropping the last item keeps the others' relative order */
    long d[N - 1];
    CHECK_OK(lethe_lm_order(N - 1, 5, 0, d));
    for (int i = 0, j = 0; i < N; i++)
        if (a[i] != N - 1)
            CHECK(d[j++] == a[i]);
    /* the retain pick: in range, keyed, roughly uniform */
    int hist[4] = {0};
    for (long i = 0; i < 4000; i++) {
        long r = lethe_lm_retain_pick(i, 4, 9, 0);
        CHECK(r >= 0 && r < 4);
        hist[r]++;
        CHECK(r == lethe_lm_retain_pick(i, 4, 9, 0));
    }
    for (int k = 0; k < 4; k++)
        CHECK(hist[k] > 850 && hist[k] < 1150);
    /* the schedule: Hugging Face's linear warm-up and decay */
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.lr = 1.0f;
    CHECK(lethe_lm_sched_lr(&s, 4, 12, 0) == 0.0f);
    CHECK(lethe_lm_sched_lr(&s, 4, 12, 2) == 0.5f);
    CHECK(lethe_lm_sched_lr(&s, 4, 12, 4) == 1.0f);
    CHECK(lethe_lm_sched_lr(&s, 4, 12, 8) == 0.5f);
    s.constant = 1;
    CHECK(lethe_lm_sched_lr(&s, 4, 12, 8) == 1.0f);
}

TEST(lm_driver_ga_deterministic)
{
    qa_set f, r;
    CHECK(qa_make(&f, 10, 8, 1) && qa_make(&r, 7, 8, 2));
    lethe_gpt *base = trained(&f);
    CHECK(base);
    lethe_gpt *a = lethe_lm_clone(base), *b = lethe_lm_clone(base), *c = lethe_lm_clone(base);
    CHECK(a && b && c);
    lethe_lm_cfg cfg = cfg_of(LETHE_LM_GA);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 3;
    s.batch = 4;
    s.lr = 3e-3f;
    s.warmup = 0;
    s.seed = 5;
    char *la = NULL, *lb = NULL;
    size_t na = 0, nb = 0;
    FILE *fa = open_memstream(&la, &na), *fb = open_memstream(&lb, &nb);
    CHECK(fa && fb);
    lethe_lm_result ra, rb;
    CHECK_OK(lethe_lm_unlearn(a, NULL, &cfg, &f.s, NULL, NULL, &s, fa, &ra));
    CHECK_OK(lethe_lm_unlearn(b, NULL, &cfg, &f.s, NULL, NULL, &s, fb, &rb));
    fclose(fa);
    fclose(fb);
    CHECK(ra.steps == 9); /* 3 epochs x ceil(10 / 4) */
    CHECK(same_params(a, b));
    CHECK(na == nb && !memcmp(la, lb, na));
    CHECK(strstr(la, "{\"step\":0,\"epoch\":0,\"lr\":"));
    s.seed = 6; /* another seed: another batch order, other bits */
    CHECK_OK(lethe_lm_unlearn(c, NULL, &cfg, &f.s, NULL, NULL, &s, NULL, NULL));
    CHECK(!same_params(a, c));
    double before = set_nll(base, &f.s), after = set_nll(a, &f.s);
    printf("  GA: forget NLL %.4f -> %.4f (log-likelihood lowered)\n", before, after);
    CHECK(after > before + 0.05);
    /* GradDiff (retain paired) and NPO run and are deterministic too */
    lethe_lm_cfg nc = cfg_of(LETHE_LM_NPO);
    lethe_gpt *n1 = lethe_lm_clone(base), *n2 = lethe_lm_clone(base);
    CHECK(n1 && n2);
    CHECK_OK(lethe_lm_unlearn(n1, base, &nc, &f.s, &r.s, NULL, &s, NULL, NULL));
    CHECK_OK(lethe_lm_unlearn(n2, base, &nc, &f.s, &r.s, NULL, &s, NULL, NULL));
    CHECK(same_params(n1, n2) && !same_params(n1, base));
    CHECK_STATUS(lethe_lm_unlearn(n1, base, &nc, &f.s, NULL, NULL, &s, NULL, NULL),
                 LETHE_ERR_INVALID); /* NPO's default retain NLL needs a retain set */
    free(la);
    free(lb);
    lethe_gpt_free(n1);
    lethe_gpt_free(n2);
    lethe_gpt_free(a);
    lethe_gpt_free(b);
    lethe_gpt_free(c);
    lethe_gpt_free(base);
    qa_free(&f);
    qa_free(&r);
}

/* A run of one step (a forget set within one batch, one epoch) has no
 * warm-up: inside one its only step would run at rate 0 and leave the model
 * unchanged. Longer runs keep the warm-up of one epoch. */
TEST(lm_driver_one_step_moves)
{
    qa_set f;
    CHECK(qa_make(&f, 3, 8, 4));
    lethe_gpt *base = model(3), *g = lethe_lm_clone(base);
    CHECK(base && g);
    lethe_lm_cfg c = cfg_of(LETHE_LM_GA);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s); /* warm-up one epoch */
    s.epochs = 1;
    s.quiet = 1;
    s.lr = 1e-2f;
    CHECK(lethe_lm_sched_warmup(&s, 1, 1) == 0);
    CHECK(lethe_lm_sched_warmup(&s, 1, 2) == 1);
    CHECK(lethe_lm_sched_warmup(&s, 3, 3) == 3);
    s.warmup = 5;
    CHECK(lethe_lm_sched_warmup(&s, 1, 1) == 0 && lethe_lm_sched_warmup(&s, 1, 2) == 5);
    s.warmup = -1;
    char *log = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&log, &n);
    CHECK(fp);
    lethe_lm_result res;
    CHECK_OK(lethe_lm_unlearn(g, NULL, &c, &f.s, NULL, NULL, &s, fp, &res));
    fclose(fp);
    CHECK(res.steps == 1);
    CHECK(!same_params(g, base));
    CHECK(log && strstr(log, "\"lr\":0.00999"));
    /* a rate of 0 takes no effective step: refused */
    s.lr = 0;
    CHECK_STATUS(lethe_lm_unlearn(g, NULL, &c, &f.s, NULL, NULL, &s, NULL, NULL),
                 LETHE_ERR_INVALID);
    free(log);
    lethe_gpt_free(g);
    lethe_gpt_free(base);
    qa_free(&f);
}

/* The method table: one row per method in the enum's order, names that
 * parse back; a run refuses what it cannot store or lacks, in messages that
 * name no command-line option. */
TEST(lm_method_table)
{
    CHECK(lethe_lm_methods_count() == LETHE_LM_N_METHODS);
    for (size_t i = 0; i < lethe_lm_methods_count(); i++) {
        const lethe_lm_method_def *d = lethe_lm_methods_at(i);
        CHECK(d && d->id == (lethe_lm_method)i && d->forget && d->description);
        CHECK(lethe_lm_method_def_of(d->id) == d);
        lethe_lm_cfg c;
        CHECK_OK(lethe_lm_parse(d->name, &c));
        CHECK(c.method == d->id);
        CHECK(!(d->needs & LETHE_LM_FORGET_ONLY) || c.retain == LETHE_LM_RETAIN_NONE);
    }
    CHECK(lethe_lm_methods_at(LETHE_LM_N_METHODS) == NULL);
    lethe_lm_run_cfg rc;
    CHECK_OK(lethe_lm_run_init(&rc, "sft"));
    CHECK(rc.sched.epochs == 5 && rc.cfg.method == LETHE_LM_SFT);
    CHECK_OK(lethe_lm_run_init(&rc, "npo_klr"));
    CHECK(rc.sched.epochs == 10 && rc.cfg.retain == LETHE_LM_RETAIN_KL);
    CHECK(!strcmp(rc.name, "npo_klr") && !strcmp(rc.sched.label, "npo"));
    CHECK(lethe_lm_needs_reference(&rc.cfg) && lethe_lm_needs_retain(&rc.cfg));
    CHECK_STATUS(lethe_lm_run_init(&rc, "ft"), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "sft") && strstr(lethe_error_detail(), "npo_klr"));
    CHECK_OK(lethe_lm_run_init(&rc, "whp"));
    rc.run = "/nonexistent", rc.out = "/nonexistent/out", rc.forget = "/nonexistent/f.json";
    CHECK_STATUS(lethe_lm_run(&rc, NULL), LETHE_ERR_UNSUPPORTED);
    CHECK(!strstr(lethe_error_detail(), "--"));
    CHECK_OK(lethe_lm_run_init(&rc, "graddiff"));
    rc.run = "/nonexistent", rc.out = "/nonexistent/out", rc.forget = "/nonexistent/f.json";
    CHECK_STATUS(lethe_lm_run(&rc, NULL), LETHE_ERR_INVALID); /* no retain pairs */
    CHECK(strstr(lethe_error_detail(), "retain") && !strstr(lethe_error_detail(), "--"));
    rc.cfg.alpha = 0; /* no retain term: the files are read next */
    CHECK_STATUS(lethe_lm_run(&rc, NULL), LETHE_ERR_NOT_FOUND);
    char s[96];
    lethe_lm_defaults(LETHE_LM_SATIMP, &rc.cfg);
    lethe_lm_settings_text(&rc.cfg, s, sizeof s);
    CHECK(!strcmp(s, "beta 5 beta2 1"));
    lethe_lm_defaults(LETHE_LM_RMU, &rc.cfg);
    lethe_lm_settings_text(&rc.cfg, s, sizeof s);
    CHECK(!strcmp(s, "steering 2 layer auto 3 blocks"));
}

TEST(lm_driver_idk_undial)
{
    qa_set f, r, k;
    CHECK(qa_make(&f, 6, 8, 1) && qa_make(&r, 5, 8, 2) && qa_make(&k, 6, 6, 3));
    lethe_gpt *base = model(4), *g = lethe_lm_clone(base);
    CHECK(base && g);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 2;
    s.batch = 4;
    s.lr = 1e-3f;
    lethe_lm_cfg c = cfg_of(LETHE_LM_IDKDPO);
    CHECK_OK(lethe_lm_unlearn(g, base, &c, &f.s, &r.s, &k.s, &s, NULL, NULL));
    k.s.n = 5; /* one alternate answer per forget question */
    CHECK_STATUS(lethe_lm_unlearn(g, base, &c, &f.s, &r.s, &k.s, &s, NULL, NULL),
                 LETHE_ERR_INVALID);
    c = cfg_of(LETHE_LM_UNDIAL); /* alpha 0: no retain set needed */
    CHECK_OK(lethe_lm_unlearn(g, base, &c, &f.s, NULL, NULL, &s, NULL, NULL));
    lethe_gpt_free(g);
    lethe_gpt_free(base);
    qa_free(&f);
    qa_free(&r);
    qa_free(&k);
}

TEST(lm_driver_rmu_freezes)
{
    qa_set f, r;
    CHECK(qa_make(&f, 6, 8, 1) && qa_make(&r, 5, 8, 2));
    lethe_gpt *base = model(4), *g = lethe_lm_clone(base), *h = lethe_lm_clone(base);
    CHECK(base && g && h);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 2;
    s.batch = 3;
    s.lr = 1e-2f;
    s.warmup = 0;
    lethe_lm_cfg c = cfg_of(LETHE_LM_RMU);
    c.rmu_layer = 1;
    c.rmu_blocks = 1; /* block 1 only */
    CHECK_OK(lethe_lm_unlearn(g, base, &c, &f.s, &r.s, NULL, &s, NULL, NULL));
    c.rmu_proj_only = 1; /* block 1's mlp.c_proj.weight only */
    CHECK_OK(lethe_lm_unlearn(h, base, &c, &f.s, &r.s, NULL, &s, NULL, NULL));
    int changed_in = 0, changed_h = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        size_t bytes = sizeof(float) * (size_t)t->numel;
        int in = !strncmp(t->name, "h.1.", 4);
        int same_g = !memcmp(g->params + t->offset, base->params + t->offset, bytes);
        int same_h = !memcmp(h->params + t->offset, base->params + t->offset, bytes);
        if (!in)
            CHECK_MSG(same_g && same_h, "%s changed outside the trained block", t->name);
        else
            changed_in += !same_g;
        if (strcmp(t->name, "h.1.mlp.c_proj.weight"))
            CHECK_MSG(same_h, "%s changed with proj_only", t->name);
        else
            changed_h = !same_h;
    }
    CHECK(changed_in >= 6 && changed_h);
    lethe_gpt_free(g);
    lethe_gpt_free(h);
    lethe_gpt_free(base);
    qa_free(&f);
    qa_free(&r);
}

TEST(lm_task_vector)
{
    qa_set f;
    CHECK(qa_make(&f, 6, 8, 1));
    lethe_gpt *base = model(4), *g = lethe_lm_clone(base), *reinf = lethe_lm_clone(base);
    CHECK(base && g && reinf);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 2;
    s.batch = 4;
    s.lr = 1e-3f;
    s.warmup = 0;
    lethe_lm_cfg c = cfg_of(LETHE_LM_TASKVECTOR);
    CHECK_OK(lethe_lm_unlearn(g, NULL, &c, &f.s, NULL, NULL, &s, NULL, NULL));
    /* by hand: reinforce a copy (WHP's training), then theta - alpha tau */
    lethe_lm_cfg w = cfg_of(LETHE_LM_WHP);
    CHECK_OK(lethe_lm_unlearn(reinf, NULL, &w, &f.s, NULL, NULL, &s, NULL, NULL));
    CHECK(set_nll(reinf, &f.s) < set_nll(base, &f.s)); /* reinforced: more likely */
    long diff = 0;
    for (long i = 0; i < g->n_params; i++) {
        float p = base->params[i], want = p - 5.0f * (reinf->params[i] - p);
        CHECK(g->params[i] == want);
        diff += g->params[i] != p;
    }
    CHECK(diff > g->n_params / 2);
    lethe_gpt_free(g);
    lethe_gpt_free(reinf);
    lethe_gpt_free(base);
    qa_free(&f);
}

/* Greedy decoding by full forwards of both models with WHP's logits. */
static void whp_greedy(lethe_gpt *base, lethe_gpt *reinf, const int32_t *prompt, int np, int n,
                       double alpha, int32_t *out)
{
    int32_t seq[8];
    memcpy(seq, prompt, sizeof *seq * (size_t)np);
    float zb[V], zr[V];
    for (int k = 0; k < n; k++) {
        int len = np + k;
        LETHE_ASSERT(lethe_gpt_forward(base, seq, NULL, 1, len) == LETHE_OK);
        memcpy(zb, base->logits + (len - 1) * V, sizeof zb);
        LETHE_ASSERT(lethe_gpt_forward(reinf, seq, NULL, 1, len) == LETHE_OK);
        memcpy(zr, reinf->logits + (len - 1) * V, sizeof zr);
        lethe_lm_whp_logits(zb, zb, zr, 1, V, alpha);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (zb[v] > zb[best])
                best = v;
        seq[len] = out[k] = best;
    }
}

TEST(lm_whp)
{
    float b[6] = {1, 2, 3, -1, 0, 5}, r[6] = {2, 1, 3, 0, -2, 5.5f}, o[6];
    lethe_lm_whp_logits(o, b, r, 2, 3, 2.0);
    const float want[6] = {-1, 2, 3, -3, 0, 4};
    CHECK(!memcmp(o, want, sizeof o));

    lethe_gpt *base = model(4), *reinf = lethe_lm_clone(base);
    CHECK(base && reinf);
    int32_t prompt[3] = {1, 4, 7}, manual[5], plain0[5];
    /* the reinforced model: the base fine-tuned on its own greedy
     * continuation of the prompt (WHP's setting: it knows the text better) */
    whp_greedy(base, base, prompt, 3, 5, 0.0, plain0);
    int32_t rt[8 * 4], ry[8 * 4];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 8; t++) {
            rt[i * 8 + t] = t < 3 ? prompt[t] : plain0[t - 3];
            ry[i * 8 + t] = t >= 2 && t < 7 ? plain0[t - 2] : -1;
        }
    lethe_lm_set rs = {rt, ry, 4, 8};
    lethe_lm_cfg wc = cfg_of(LETHE_LM_WHP);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 5;
    s.batch = 4;
    s.lr = 1e-2f;
    s.warmup = 0;
    CHECK_OK(lethe_lm_unlearn(reinf, NULL, &wc, &rs, NULL, NULL, &s, NULL, NULL));
    whp_greedy(base, reinf, prompt, 3, 5, 5.0, manual);
    lethe_lm_whp *w = lethe_lm_whp_new(reinf, 5.0);
    CHECK(w);
    lethe_gen_opts o2;
    lethe_gen_defaults(&o2);
    o2.max_new = 5;
    o2.logits_hook = lethe_lm_whp_hook;
    o2.logits_ctx = w;
    lethe_gen_result res, plain;
    CHECK_OK(lethe_gpt_generate(base, prompt, 3, &o2, &res));
    CHECK_OK(lethe_lm_whp_status(w));
    CHECK(res.n == 5 && !memcmp(res.tokens, manual, sizeof manual));
    /* a second generation reuses the hook (its cache is refed) */
    lethe_gen_result again;
    CHECK_OK(lethe_gpt_generate(base, prompt, 3, &o2, &again));
    CHECK(again.n == 5 && !memcmp(again.tokens, manual, sizeof manual));
    /* the adjustment changes what is generated here */
    o2.logits_hook = NULL;
    CHECK_OK(lethe_gpt_generate(base, prompt, 3, &o2, &plain));
    int32_t unadj[5];
    whp_greedy(base, base, prompt, 3, 5, 5.0, unadj); /* reinforced = base: no change */
    CHECK(!memcmp(plain.tokens, unadj, sizeof unadj));
    printf("  WHP tokens %d %d %d %d %d, plain %d %d %d %d %d\n", manual[0], manual[1],
           manual[2], manual[3], manual[4], plain.tokens[0], plain.tokens[1], plain.tokens[2],
           plain.tokens[3], plain.tokens[4]);
    CHECK(memcmp(plain.tokens, manual, sizeof manual));
    lethe_gen_result_free(&res);
    lethe_gen_result_free(&again);
    lethe_gen_result_free(&plain);
    lethe_lm_whp_free(w);
    lethe_gpt_free(base);
    lethe_gpt_free(reinf);
}

TEST(lm_driver_lora)
{
    qa_set f;
    CHECK(qa_make(&f, 6, 8, 1));
    lethe_gpt *base = model(4), *g = lethe_lm_clone(base);
    CHECK(base && g);
    lethe_lora_config lc;
    lethe_lora_config_defaults(&lc);
    lc.rank = 2;
    lethe_lora *l = lethe_lora_init(g, &lc, 3);
    CHECK(l);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 3;
    s.batch = 3;
    s.lr = 1e-2f;
    s.warmup = 0;
    s.lora = l;
    lethe_lm_cfg c = cfg_of(LETHE_LM_GA);
    CHECK_OK(lethe_lm_unlearn(g, NULL, &c, &f.s, NULL, NULL, &s, NULL, NULL));
    double before = set_nll(base, &f.s), after = set_nll(g, &f.s);
    CHECK(after > before);
    lethe_lora_unmerge(l, g); /* only the adapter was trained */
    CHECK(same_params(g, base));
    c = cfg_of(LETHE_LM_TASKVECTOR);
    CHECK_STATUS(lethe_lm_unlearn(g, NULL, &c, &f.s, NULL, NULL, &s, NULL, NULL),
                 LETHE_ERR_INVALID);
    lethe_lora_free(l);
    lethe_gpt_free(g);
    lethe_gpt_free(base);
    qa_free(&f);
}

/* Settings given over a run's defaults: each one applied, the rest left,
 * the impossible ones refused in words that name no command-line flag. */
TEST(lm_run_apply_overrides)
{
    lethe_lm_run_cfg rc, base;
    lethe_lm_overrides o;
    CHECK_OK(lethe_lm_run_init(&base, "npo"));
    lethe_lm_overrides_init(&o);
    rc = base;
    CHECK_OK(lethe_lm_run_apply(&rc, &o)); /* nothing given: nothing changes */
    CHECK(!memcmp(&rc, &base, sizeof rc));
    o.epochs = 3, o.lr = 2e-4, o.beta = 0.5, o.retain_loss = "kl", o.seed = 7, o.warmup = 0;
    o.lora_rank = 4;
    CHECK_OK(lethe_lm_run_apply(&rc, &o));
    CHECK(rc.sched.epochs == 3 && rc.sched.lr == 2e-4f && rc.cfg.beta == 0.5);
    CHECK(rc.cfg.retain == LETHE_LM_RETAIN_KL && rc.sched.seed == 7 && rc.sched.warmup == 0);
    CHECK(rc.lora_rank == 4 && rc.sched.batch == base.sched.batch);
    CHECK(rc.cfg.gamma == base.cfg.gamma && rc.cfg.alpha == base.cfg.alpha);

    lethe_lm_overrides_init(&o);
    o.retain_loss = "nll";
    CHECK_OK(lethe_lm_run_init(&rc, "sft"));
    CHECK_STATUS(lethe_lm_run_apply(&rc, &o), LETHE_ERR_INVALID); /* forget pairs only */
    CHECK(!strstr(lethe_error_detail(), "--"));
    CHECK_OK(lethe_lm_run_init(&rc, "npo"));
    o.retain_loss = "bogus";
    CHECK_STATUS(lethe_lm_run_apply(&rc, &o), LETHE_ERR_INVALID);
    lethe_lm_overrides_init(&o);
    o.lora_rank = 2;
    CHECK_OK(lethe_lm_run_init(&rc, "taskvector"));
    CHECK_STATUS(lethe_lm_run_apply(&rc, &o), LETHE_ERR_INVALID); /* whole models */
    CHECK(!strstr(lethe_error_detail(), "--"));
    lethe_error_clear();
}

/* The pipeline refuses what it cannot run before it writes anything. */
TEST(tofu_pipeline_refuses_bad_settings)
{
    char work[] = "/tmp/lethe-pipe-XXXXXX";
    CHECK(mkdtemp(work) != NULL);
    char w[64];
    snprintf(w, sizeof w, "%s/w", work);
    lethe_tofu_pipeline_cfg c;
    lethe_tofu_pipeline_result r;
    static const struct {
        const char *split, *method, *name;
        lethe_status want;
    } bad[] = {{"retain90", "npo", NULL, LETHE_ERR_INVALID},
               {"forget00", "npo", NULL, LETHE_ERR_INVALID},
               {"forget10", "sft", NULL, LETHE_ERR_INVALID},
               {"forget10", "bogus", NULL, LETHE_ERR_NOT_FOUND},
               {"forget10", "npo", "../up", LETHE_ERR_INVALID},
               {"forget10", "npo", ".hidden", LETHE_ERR_INVALID}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lethe_tofu_pipeline_defaults(&c);
        c.work = w, c.split = bad[i].split, c.method = bad[i].method, c.name = bad[i].name;
        CHECK_STATUS(lethe_tofu_pipeline_run(&c, &r), bad[i].want);
        CHECK(r.summary == NULL && !strstr(lethe_error_detail(), "--"));
    }
    lethe_tofu_pipeline_defaults(&c);
    c.work = w, c.sft_epochs = 0;
    CHECK_STATUS(lethe_tofu_pipeline_run(&c, &r), LETHE_ERR_INVALID);
    struct stat sb;
    CHECK(stat(w, &sb) != 0); /* nothing written */
    /* a missing benchmark is reported as such */
    lethe_tofu_pipeline_defaults(&c);
    c.work = w, c.data = "/nonexistent/bench";
    lethe_status st = lethe_tofu_pipeline_run(&c, &r);
    CHECK(st == LETHE_ERR_NOT_FOUND || st == LETHE_ERR_IO);
    CHECK(strstr(lethe_error_detail(), "/nonexistent/bench") != NULL);
    lethe_error_clear();
    CHECK(lethe_remove_tree(work) == 0);
}
