/* The classifier unlearning methods SalUn, SCRUB, Bad Teacher, Boundary
 * Shrink and Fisher forgetting, and their shared KL helper, each checked on
 * a tiny problem against a computation of its own. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../../src/unlearn/common.h"
#include "lethe/kernels.h"
#include "lethe/rng.h"

#define D 4
#define K 3

/* Three Gaussian blobs in 4-D, class i % 3, ids 500 + i. */
static lethe_dataset *make_blobs(long n, lethe_task task)
{
    lethe_dataset *ds = lethe_dataset_alloc("blobs", task, n, D, 1);
    lethe_rng g = lethe_rng_init(11, 0);
    ds->n_classes = K;
    for (long i = 0; i < n; i++) {
        int k = (int)(i % K);
        for (int j = 0; j < D; j++)
            ds->x[i * D + j] = (float)(0.8 * lethe_rng_normal(&g) + (j == k ? 2.0 : 0.0));
        if (ds->y)
            ds->y[i] = k;
        if (ds->t)
            ds->t[i] = ds->x[i * D];
        ds->ids[i] = 500 + (uint64_t)i;
    }
    return ds;
}

typedef struct fix {
    lethe_dataset *ds;
    lethe_net *net, *orig;
    lethe_rows all, forget, retain;
    lethe_unlearn_ctx ctx;
} fix;

/* A trained 4-16-3 MLP; forget = all of class 0 (whole_class) or every
 * tenth row. */
static int fix_init(fix *f, const char *method, int whole_class, const char *const *sets,
                    size_t n_sets)
{
    memset(f, 0, sizeof *f);
    f->ds = make_blobs(300, LETHE_TASK_CLASSIFY);
    f->net = lethe_net_init("in=4;linear=16;relu;linear=3");
    f->orig = lethe_net_init("in=4;linear=16;relu;linear=3");
    lethe_net_init_params(f->net, 3);
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.epochs = 30, cfg.batch = 16, cfg.quiet = 1, cfg.loss = LETHE_LOSS_XENT;
    lethe_rows_all(&f->all, f->ds->n);
    lethe_train_result res;
    if (lethe_train(f->net, f->ds, &f->all, &cfg, NULL, &res) != LETHE_OK)
        return -1;
    memcpy(f->orig->params, f->net->params, sizeof(float) * (size_t)f->net->n_params);
    f->forget.row = malloc(sizeof(long) * 300);
    for (long i = 0; i < 300; i++)
        if (whole_class ? f->ds->y[i] == 0 : i % 10 == 4)
            f->forget.row[f->forget.n++] = i;
    lethe_rows_minus(&f->retain, &f->all, &f->forget);
    const lethe_method *m;
    if (lethe_method_find(method, &m) != LETHE_OK ||
        lethe_unlearn_hparams(&f->ctx, m, sets, n_sets) != LETHE_OK)
        return -1;
    f->ctx.net = f->net, f->ctx.original = f->orig, f->ctx.data = f->ds;
    f->ctx.forget = &f->forget, f->ctx.retain = &f->retain;
    f->ctx.seed = 21, f->ctx.quiet = 1;
    return 0;
}

static void fix_free(fix *f)
{
    lethe_rows_free(&f->all);
    lethe_rows_free(&f->forget);
    lethe_rows_free(&f->retain);
    lethe_net_free(f->net);
    lethe_net_free(f->orig);
    lethe_dataset_free(f->ds);
}

/* Percent of rows whose argmax is their label. */
static double accuracy(lethe_net *net, const lethe_dataset *ds, const lethe_rows *r)
{
    const float *z = ul_forward(net, ds, r->row, (int)r->n, 0, 0);
    long right = 0;
    for (long i = 0; i < r->n; i++) {
        const float *zi = z + i * K;
        int best = 0;
        for (int v = 1; v < K; v++)
            best = zi[v] > zi[best] ? v : best;
        right += best == ds->y[r->row[i]];
    }
    return 100.0 * (double)right / (double)r->n;
}

/* KL(softmax(t / T) || softmax(s / T)) written out directly, in double. */
static double kl_ref(const double *t, const double *s, int V, double T)
{
    double mt = t[0], ms = s[0], zt = 0, zs = 0, kl = 0;
    for (int v = 1; v < V; v++)
        mt = fmax(mt, t[v]), ms = fmax(ms, s[v]);
    for (int v = 0; v < V; v++)
        zt += exp((t[v] - mt) / T), zs += exp((s[v] - ms) / T);
    for (int v = 0; v < V; v++) {
        double pt = exp((t[v] - mt) / T) / zt, ps = exp((s[v] - ms) / T) / zs;
        kl += pt * log(pt / ps);
    }
    return kl;
}

/* Mean KL_T(teacher || student) over rows, without dropout. */
static double mean_kl(lethe_net *teacher, lethe_net *student, const lethe_dataset *ds,
                      const lethe_rows *r, double T)
{
    int n = (int)r->n;
    double *t = malloc(sizeof(double) * (size_t)n * K), s[K], sum = 0;
    const float *zt = ul_forward(teacher, ds, r->row, n, 0, 0);
    for (long k = 0; k < (long)n * K; k++)
        t[k] = zt[k];
    const float *zs = ul_forward(student, ds, r->row, n, 0, 0);
    for (int i = 0; i < n; i++) {
        for (int v = 0; v < K; v++)
            s[v] = zs[i * K + v];
        sum += kl_ref(t + i * K, s, K, T);
    }
    free(t);
    return sum / n;
}

TEST(ulc_kl_value_and_gradient_by_finite_differences)
{
    enum { B = 3, V = 5 };
    float t[B * V], s[B * V], ds[B * V] = {0}, losses[B];
    lethe_rng g = lethe_rng_init(2, 0);
    for (int k = 0; k < B * V; k++)
        t[k] = (float)(2 * lethe_rng_normal(&g)), s[k] = (float)(2 * lethe_rng_normal(&g));
    const double T = 2.0, scale = 1.7;
    double mean = ul_kl_t(ds, losses, t, s, B, V, T, (float)scale);
    double td[V], sd[V], want = 0;
    for (int i = 0; i < B; i++) {
        for (int v = 0; v < V; v++)
            td[v] = t[i * V + v], sd[v] = s[i * V + v];
        double kl = kl_ref(td, sd, V, T);
        CHECK_CLOSE(losses[i], kl, 1e-5, 1e-7);
        want += kl / B;
        /* central differences of scale * mean KL in each student logit */
        for (int v = 0; v < V; v++) {
            const double h = 1e-4;
            sd[v] += h;
            double up = kl_ref(td, sd, V, T);
            sd[v] -= 2 * h;
            double down = kl_ref(td, sd, V, T);
            sd[v] += h;
            double fd = scale * (up - down) / (2 * h) / B;
            CHECK_CLOSE(ds[i * V + v], fd, 1e-4, 1e-6);
        }
    }
    CHECK_CLOSE(mean, want, 1e-9, 1e-12);
    /* KL of a distribution with itself is 0 with a zero gradient */
    float d0[B * V] = {0};
    CHECK_CLOSE(ul_kl_t(d0, NULL, t, t, B, V, T, 1.0f), 0.0, 0, 1e-12);
    for (int k = 0; k < B * V; k++)
        CHECK(fabsf(d0[k]) < 1e-7f);
    /* the tempered softmax */
    double p[V], sum = 0;
    ul_softmax_t(p, t, V, T);
    for (int v = 0; v < V; v++)
        sum += p[v];
    CHECK_CLOSE(sum, 1.0, 0, 1e-12);
    CHECK_CLOSE(p[1] / p[0], exp((t[1] - t[0]) / T), 1e-9, 0);
}

TEST(ulc_keyed_subset_fraction_and_stability)
{
    lethe_dataset *ds = make_blobs(6000, LETHE_TASK_CLASSIFY);
    lethe_rows all, odd = {0, malloc(sizeof(long) * 3000)}, a, b;
    lethe_rows_all(&all, ds->n);
    for (long i = 1; i < ds->n; i += 2)
        odd.row[odd.n++] = i;
    CHECK_OK(ul_rows_subset(&a, ds, &all, 0.3, 5, 7));
    CHECK_OK(ul_rows_subset(&b, ds, &odd, 0.3, 5, 7));
    CHECK_MSG(labs(a.n - 1800) < 4 * 36, "%ld of 6000 rows kept at 0.3", a.n);
    /* a row's membership does not depend on which other rows exist */
    long j = 0;
    for (long i = 0; i < a.n; i++)
        if (a.row[i] % 2) {
            CHECK(j < b.n && b.row[j] == a.row[i]);
            j++;
        }
    CHECK(j == b.n);
    lethe_rows_free(&all);
    lethe_rows_free(&odd);
    lethe_rows_free(&a);
    lethe_rows_free(&b);
    lethe_dataset_free(ds);
}

TEST(ulc_salun_mask_has_the_fraction_and_the_largest_gradients)
{
    fix f;
    CHECK(fix_init(&f, "salun", 0, NULL, 0) == 0);
    long n = f.net->n_params;
    float *mask = malloc(sizeof(float) * (size_t)n);
    /* independent: |gradient of the mean CE over the forget set, one batch| */
    float *g = calloc((size_t)n, sizeof(float));
    float *keep = f.orig->grads;
    f.orig->grads = g;
    lethe_batch_grad(f.orig, f.ds, f.forget.row, (int)f.forget.n, LETHE_LOSS_XENT, 0, 0, 1.0f,
                     NULL);
    f.orig->grads = keep;
    const double qs[] = {0.5, 0.1, 0.0, 1.0};
    for (int t = 0; t < 4; t++) {
        CHECK_OK(ul_salun_mask(&f.ctx, qs[t], mask));
        long in = 0;
        float lo = INFINITY, hi = 0;
        for (long i = 0; i < n; i++) {
            CHECK(mask[i] == 0.0f || mask[i] == 1.0f);
            if (mask[i] == 1.0f)
                in++, lo = fminf(lo, fabsf(g[i]));
            else
                hi = fmaxf(hi, fabsf(g[i]));
        }
        CHECK_MSG(in == (long)floor(qs[t] * (double)n), "q %g: %ld of %ld in the mask", qs[t],
                  in, n);
        if (in > 0 && in < n)
            CHECK_MSG(lo >= hi * (1 - 1e-5f) - 1e-9f, "q %g: masked |g| %g < unmasked %g", qs[t],
                      (double)lo, (double)hi);
    }
    /* the mask leaves the model's gradients clean */
    for (long i = 0; i < n; i++)
        CHECK(f.net->grads[i] == 0.0f);
    CHECK_STATUS(ul_salun_mask(&f.ctx, 1.5, mask), LETHE_ERR_INVALID);
    free(g);
    free(mask);
    fix_free(&f);
}

TEST(ulc_salun_changes_only_masked_weights)
{
    fix f;
    const char *sets[] = {"lr=0.05", "epochs=3", "batch=16"};
    CHECK(fix_init(&f, "salun", 1, sets, 3) == 0);
    long n = f.net->n_params;
    float *mask = malloc(sizeof(float) * (size_t)n);
    CHECK_OK(ul_salun_mask(&f.ctx, 0.5, mask));
    double before = accuracy(f.net, f.ds, &f.forget);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    long moved = 0, in = 0;
    for (long i = 0; i < n; i++) {
        if (mask[i] == 0.0f)
            CHECK_MSG(f.net->params[i] == f.orig->params[i], "parameter %ld outside the mask "
                      "moved", i);
        else
            in++, moved += f.net->params[i] != f.orig->params[i];
    }
    CHECK_MSG(moved > in * 3 / 4, "%ld of %ld masked parameters moved", moved, in);
    double after = accuracy(f.net, f.ds, &f.forget);
    CHECK_MSG(before > 90 && after < 20, "forget accuracy %g -> %g", before, after);
    CHECK_MSG(accuracy(f.net, f.ds, &f.retain) > 90, "retain accuracy %g",
              accuracy(f.net, f.ds, &f.retain));
    free(mask);
    fix_free(&f);
}

/* SCRUB with and without max passes: the max passes push the forget
 * outputs away from the teacher while the min passes keep retain close. */
TEST(ulc_scrub_max_step_raises_forget_kl)
{
    fix a, b;
    const char *a_sets[] = {"epochs=3", "msteps=0", "lr=0.01", "batch=16", "fbatch=16"};
    const char *b_sets[] = {"epochs=3", "msteps=2", "lr=0.01", "batch=16", "fbatch=16"};
    CHECK(fix_init(&a, "scrub", 1, a_sets, 5) == 0);
    CHECK(fix_init(&b, "scrub", 1, b_sets, 5) == 0);
    CHECK_CLOSE(mean_kl(b.orig, b.net, b.ds, &b.forget, 2.0), 0.0, 0, 1e-12);
    CHECK_OK(lethe_unlearn_run(&a.ctx));
    CHECK_OK(lethe_unlearn_run(&b.ctx));
    /* steps: 3 retain passes of 200 / 16, 2 max passes of 100 / 16 */
    CHECK(a.ctx.steps == 3 * 13 && b.ctx.steps == 3 * 13 + 2 * 7);
    double fa = mean_kl(a.orig, a.net, a.ds, &a.forget, 2.0);
    double fb = mean_kl(b.orig, b.net, b.ds, &b.forget, 2.0);
    double rb = mean_kl(b.orig, b.net, b.ds, &b.retain, 2.0);
    CHECK_MSG(fb > 4 * fa && fb > 0.3, "forget KL %g with max steps, %g without", fb, fa);
    CHECK_MSG(rb < fb / 5, "retain KL %g against forget KL %g", rb, fb);
    CHECK_MSG(accuracy(b.net, b.ds, &b.retain) > 95, "retain accuracy %g",
              accuracy(b.net, b.ds, &b.retain));
    fix_free(&a);
    fix_free(&b);
}

TEST(ulc_bad_teacher_moves_forget_outputs_to_the_random_teacher)
{
    fix f;
    const char *sets[] = {"batch=16", "epochs=3", "subset=0.5", "lr=0.01"};
    CHECK(fix_init(&f, "bad-teacher", 1, sets, 4) == 0);
    /* the method reads no label: hand it the data without them */
    lethe_dataset blind = *f.ds;
    blind.y = NULL;
    f.ctx.data = &blind;
    lethe_net *bad = ul_bad_teacher(&f.ctx);
    lethe_net *bad2 = ul_bad_teacher(&f.ctx);
    CHECK(bad && bad2);
    CHECK(!memcmp(bad->params, bad2->params, sizeof(float) * (size_t)bad->n_params));
    CHECK(memcmp(bad->params, f.orig->params, sizeof(float) * (size_t)bad->n_params));
    double f0 = mean_kl(bad, f.net, f.ds, &f.forget, 1.0);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    double f1 = mean_kl(bad, f.net, f.ds, &f.forget, 1.0);
    double r1 = mean_kl(f.orig, f.net, f.ds, &f.retain, 1.0);
    CHECK_MSG(f1 < f0 / 10, "forget KL to the random teacher %g -> %g", f0, f1);
    CHECK_MSG(r1 < 0.2, "retain KL to the original %g", r1);
    CHECK_MSG(accuracy(f.net, f.ds, &f.retain) > 95, "retain accuracy %g",
              accuracy(f.net, f.ds, &f.retain));
    /* steps: forget (100) plus a keyed half of retain (200), batch 16 */
    lethe_rows sub;
    CHECK_OK(ul_rows_subset(&sub, f.ds, &f.retain, 0.5, 21, 0xbad5));
    CHECK(f.ctx.steps == 3 * ((100 + sub.n + 15) / 16));
    lethe_rows_free(&sub);
    lethe_net_free(bad);
    lethe_net_free(bad2);
    fix_free(&f);
}

/* d CE / dx by central differences, for the sign check of FGSM. */
static double input_fd(lethe_net *net, const float *x, int32_t y, int j)
{
    float xp[D];
    double out[2];
    for (int s = 0; s < 2; s++) {
        memcpy(xp, x, sizeof xp);
        xp[j] += s ? -1e-3f : 1e-3f;
        const float *z = lethe_net_forward(net, xp, 1, 0, NULL, 0);
        out[s] = lethe_softmax_xent(NULL, NULL, NULL, z, &y, 1, K, 1.0f);
    }
    return (out[0] - out[1]) / 2e-3;
}

TEST(ulc_boundary_fgsm_moves_by_the_bound_to_a_wrong_label)
{
    fix f;
    CHECK(fix_init(&f, "boundary-shrink", 0, NULL, 0) == 0);
    long n = f.forget.n;
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)n);
    float *xa = malloc(sizeof(float) * (size_t)n * D);
    const float bound = 0.1f;
    CHECK_OK(ul_boundary_targets(f.orig, f.ds, &f.forget, bound, labels, xa));
    long checked = 0, second = 0;
    for (long i = 0; i < n; i++) {
        const float *x = f.ds->x + f.forget.row[i] * D;
        int32_t y = f.ds->y[f.forget.row[i]];
        CHECK(labels[i] != y && labels[i] >= 0 && labels[i] < K);
        for (int j = 0; j < D; j++) {
            double step = (double)xa[i * D + j] - x[j], fd = input_fd(f.orig, x, y, j);
            CHECK_MSG(fabs(fabs(step) - bound) < 1e-6 || step == 0, "step %g", step);
            if (fabs(fd) > 1e-4) {
                CHECK_MSG(step * fd > 0, "sample %ld coordinate %d: step %g, dCE/dx %g", i, j,
                          step, fd);
                checked++;
            }
        }
        /* the label is the argmax at x', or the second best when that is y */
        const float *z = lethe_net_forward(f.orig, xa + i * D, 1, 0, NULL, 0);
        int order[K] = {0, 1, 2};
        for (int a = 0; a < K; a++)
            for (int b = a + 1; b < K; b++)
                if (z[order[b]] > z[order[a]]) {
                    int tmp = order[a];
                    order[a] = order[b], order[b] = tmp;
                }
        CHECK(labels[i] == (order[0] == y ? order[1] : order[0]));
        second += order[0] == y;
    }
    CHECK_MSG(checked > n * D / 2, "only %ld coordinates had a clear input gradient", checked);
    CHECK_MSG(second > 0, "every attack crossed a boundary; the second-best rule went untested");
    /* the original is left as it was */
    for (long i = 0; i < f.net->n_params; i++)
        CHECK(f.orig->grads[i] == 0.0f && f.orig->params[i] == f.net->params[i]);
    free(labels);
    free(xa);
    fix_free(&f);
}

TEST(ulc_boundary_shrink_forgets_a_class_into_its_neighbours)
{
    fix f;
    const char *sets[] = {"lr=0.01", "epochs=10", "batch=16"};
    CHECK(fix_init(&f, "boundary-shrink", 1, sets, 3) == 0);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)f.forget.n);
    CHECK_OK(ul_boundary_targets(f.orig, f.ds, &f.forget, 0.1f, labels, NULL));
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(f.ctx.steps == 10 * 7);
    long hit = 0;
    const float *z = ul_forward(f.net, f.ds, f.forget.row, (int)f.forget.n, 0, 0);
    for (long i = 0; i < f.forget.n; i++) {
        const float *zi = z + i * K;
        int best = 0;
        for (int v = 1; v < K; v++)
            best = zi[v] > zi[best] ? v : best;
        hit += best == labels[i];
    }
    CHECK_MSG(hit > f.forget.n * 9 / 10, "%ld of %ld forget samples on their target", hit,
              f.forget.n);
    free(labels);
    fix_free(&f);
}

TEST(ulc_fisher_diag_matches_per_class_gradients)
{
    fix f;
    CHECK(fix_init(&f, "fisher", 0, NULL, 0) == 0);
    long n = f.net->n_params;
    lethe_rows some = {0, malloc(sizeof(long) * 40)};
    for (long i = 0; i < 40; i++)
        some.row[some.n++] = f.retain.row[i * 5];
    double *F = malloc(sizeof(double) * (size_t)n), *want = calloc((size_t)n, sizeof(double));
    float *grads = malloc(sizeof(float) * (size_t)n);
    memcpy(grads, f.net->grads, sizeof(float) * (size_t)n);
    CHECK_OK(ul_fisher_diag(f.net, f.ds, &some, F));
    /* independent: the gradient of CE at each label y, weighted by p(y | x) */
    lethe_dataset *v = ul_view(f.ds);
    float *g = calloc((size_t)n, sizeof(float)), *keep = f.orig->grads;
    f.orig->grads = g;
    for (long k = 0; k < some.n; k++) {
        long r = some.row[k];
        const float *z = ul_forward(f.orig, f.ds, &r, 1, 0, 0);
        double p[K], zmax = fmax(z[0], fmax(z[1], z[2])), sum = 0;
        for (int y = 0; y < K; y++)
            sum += p[y] = exp(z[y] - zmax);
        for (int y = 0; y < K; y++) {
            v->y[r] = y;
            memset(g, 0, sizeof(float) * (size_t)n);
            lethe_batch_grad(f.orig, v, &r, 1, LETHE_LOSS_XENT, 0, 0, 1.0f, NULL);
            for (long i = 0; i < n; i++)
                want[i] += p[y] / sum * g[i] * g[i] / (double)some.n;
        }
    }
    f.orig->grads = keep;
    for (long i = 0; i < n; i++)
        CHECK_CLOSE(F[i], want[i], 1e-4, 1e-12);
    CHECK(!memcmp(grads, f.net->grads, sizeof(float) * (size_t)n)); /* left as they were */
    free(grads);
    free(g);
    ul_view_free(v);
    free(F);
    free(want);
    lethe_rows_free(&some);
    fix_free(&f);
}

/* Every parameter's noise, divided by the standard deviation the formula
 * gives it, should be N(0, 1) over seeds; and a seed repeats exactly. */
TEST(ulc_fisher_noise_has_the_specified_variance)
{
    enum { SEEDS = 60 };
    const char *sets[] = {"alpha=1e-4", "samples=0"};
    fix f;
    CHECK(fix_init(&f, "fisher", 0, sets, 2) == 0);
    long n = f.net->n_params;
    double *F = malloc(sizeof(double) * (size_t)n), *sd = malloc(sizeof(double) * (size_t)n);
    CHECK_OK(ul_fisher_diag(f.orig, f.ds, &f.retain, F));
    const lethe_layer *head = &f.net->layers[lethe_net_embedding_layer(f.net)];
    for (long i = 0; i < n; i++) {
        int is_head = i >= head->w_off;
        double cap = is_head ? 1e2 : 1e3, var = 1.0 / (F[i] + 1e-8);
        sd[i] = sqrt(1e-4 * (var < cap ? var : cap) * (is_head ? 10 : 1));
    }
    double z2[2] = {0, 0}, zsum = 0;
    long count[2] = {0, 0};
    float *first = malloc(sizeof(float) * (size_t)n);
    for (int s = 0; s < SEEDS; s++) {
        memcpy(f.net->params, f.orig->params, sizeof(float) * (size_t)n);
        f.ctx.seed = 100 + (uint64_t)s;
        CHECK_OK(lethe_unlearn_run(&f.ctx));
        if (s == 0)
            memcpy(first, f.net->params, sizeof(float) * (size_t)n);
        for (long i = 0; i < n; i++) {
            double z = ((double)f.net->params[i] - f.orig->params[i]) / sd[i];
            int h = i >= head->w_off;
            z2[h] += z * z, zsum += z, count[h]++;
        }
    }
    for (int h = 0; h < 2; h++) {
        double m = z2[h] / (double)count[h];
        CHECK_MSG(fabs(m - 1) < 5 * sqrt(2.0 / (double)count[h]),
                  "%s: mean squared z %g over %ld draws", h ? "head" : "body", m, count[h]);
    }
    double total = (double)(count[0] + count[1]);
    CHECK_MSG(fabs(zsum / total) < 5 / sqrt(total), "mean z %g", zsum / total);
    /* the same seed gives the same model; another seed another one */
    memcpy(f.net->params, f.orig->params, sizeof(float) * (size_t)n);
    f.ctx.seed = 100;
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(!memcmp(first, f.net->params, sizeof(float) * (size_t)n));
    CHECK(f.ctx.steps == 0);
    free(first);
    free(sd);
    free(F);
    fix_free(&f);
}

TEST(ulc_fisher_silences_a_wholly_forgotten_class)
{
    fix c, r;
    CHECK(fix_init(&c, "fisher", 1, NULL, 0) == 0);
    CHECK(fix_init(&r, "fisher", 0, NULL, 0) == 0);
    CHECK_OK(lethe_unlearn_run(&c.ctx));
    CHECK_OK(lethe_unlearn_run(&r.ctx));
    const lethe_layer *head = &c.net->layers[lethe_net_embedding_layer(c.net)];
    double mc = 0, mr = 0, mo = 0;
    for (int k = 0; k < head->in_c; k++) {
        long i = head->w_off + k; /* row 0: class 0 */
        mc += fabs(c.net->params[i]), mr += fabs(r.net->params[i]), mo += fabs(c.orig->params[i]);
    }
    /* class forgetting: mean 0, variance 1e-3 (mean |w| about 0.025) */
    CHECK_MSG(mc / head->in_c < 0.06 && mo / head->in_c > 0.2, "row 0 mean |w| %g (was %g)",
              mc / head->in_c, mo / head->in_c);
    CHECK(fabs(c.net->params[head->b_off]) < 0.15);
    /* random forgetting keeps the row */
    CHECK_MSG(fabs(mr - mo) / head->in_c < 0.05, "row 0 mean |w| %g, was %g", mr / head->in_c,
              mo / head->in_c);
    /* the class's logit falls to about zero on its samples */
    double before = 0, after = 0;
    const float *z = ul_forward(c.orig, c.ds, c.forget.row, (int)c.forget.n, 0, 0);
    for (long i = 0; i < c.forget.n; i++)
        before += fabs(z[i * K]) / (double)c.forget.n;
    z = ul_forward(c.net, c.ds, c.forget.row, (int)c.forget.n, 0, 0);
    for (long i = 0; i < c.forget.n; i++)
        after += fabs(z[i * K]) / (double)c.forget.n;
    CHECK_MSG(after < before / 5, "mean |logit 0| on class 0: %g -> %g", before, after);
    fix_free(&c);
    fix_free(&r);
}

TEST(ulc_methods_are_deterministic_and_refuse_regression)
{
    const char *names[] = {"salun", "scrub", "bad-teacher", "boundary-shrink", "fisher"};
    for (int m = 0; m < 5; m++) {
        fix a, b;
        CHECK(fix_init(&a, names[m], 0, NULL, 0) == 0);
        CHECK(fix_init(&b, names[m], 0, NULL, 0) == 0);
        CHECK_OK(lethe_unlearn_run(&a.ctx));
        CHECK_OK(lethe_unlearn_run(&b.ctx));
        CHECK_MSG(!memcmp(a.net->params, b.net->params, sizeof(float) * (size_t)a.net->n_params),
                  "%s: two runs differ", names[m]);
        CHECK_MSG(memcmp(a.net->params, a.orig->params, sizeof(float) * (size_t)a.net->n_params),
                  "%s: the model did not change", names[m]);
        lethe_dataset *reg = make_blobs(30, LETHE_TASK_REGRESS);
        a.ctx.data = reg;
        CHECK_STATUS(lethe_unlearn_run(&a.ctx), LETHE_ERR_UNSUPPORTED);
        lethe_dataset_free(reg);
        fix_free(&a);
        fix_free(&b);
    }
}
