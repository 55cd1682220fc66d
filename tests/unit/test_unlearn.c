/* The unlearning interface and the methods FT, GA, RL, l1-sparse and
 * Gaussian fine-tuning on tiny problems. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../../src/unlearn/common.h"
#include "lethe/rng.h"

/* Two Gaussian blobs per class in 4-D, ids 1000 + i. */
static lethe_dataset *blobs(lethe_task task, long n)
{
    lethe_dataset *ds = lethe_dataset_alloc("blobs", task, n, 4, 1);
    lethe_rng g = lethe_rng_init(5, 0);
    ds->n_classes = 3;
    for (long i = 0; i < n; i++) {
        int k = (int)(i % 3);
        for (int j = 0; j < 4; j++)
            ds->x[i * 4 + j] = (float)(lethe_rng_normal(&g) + (j == k ? 2.5 : 0));
        if (ds->y)
            ds->y[i] = k;
        if (ds->t)
            ds->t[i] = (float)(ds->x[i * 4] - 0.5 * ds->x[i * 4 + 1] + 0.1 * lethe_rng_normal(&g));
        ds->ids[i] = 1000 + (uint64_t)i;
    }
    return ds;
}

typedef struct fixture {
    lethe_dataset *ds;
    lethe_net *net, *orig;
    lethe_rows all, forget, retain;
    lethe_unlearn_ctx ctx;
} fixture;

static void setup(fixture *f, lethe_task task, const char *method, const char *const *sets,
                  size_t n_sets)
{
    memset(f, 0, sizeof *f);
    f->ds = blobs(task, 300);
    const char *spec = task == LETHE_TASK_CLASSIFY ? "in=4;linear=16;relu;linear=3"
                                                   : "in=4;linear=16;relu;linear=1";
    f->net = lethe_net_init(spec);
    f->orig = lethe_net_init(spec);
    lethe_net_init_params(f->net, 1);
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.epochs = 20, cfg.batch = 32, cfg.quiet = 1, cfg.loss = lethe_default_loss(task);
    lethe_rows_all(&f->all, f->ds->n);
    lethe_train(f->net, f->ds, &f->all, &cfg, NULL, &(lethe_train_result){0});
    memcpy(f->orig->params, f->net->params, sizeof(float) * (size_t)f->net->n_params);
    f->forget.row = malloc(sizeof(long) * 300);
    for (long i = 0; i < 300; i += 10)
        f->forget.row[f->forget.n++] = i; /* 30 samples, all class 0 */
    lethe_rows_minus(&f->retain, &f->all, &f->forget);
    const lethe_method *m;
    CHECK_OK(lethe_method_find(method, &m));
    CHECK_OK(lethe_unlearn_hparams(&f->ctx, m, sets, n_sets));
    f->ctx.net = f->net, f->ctx.original = f->orig, f->ctx.data = f->ds;
    f->ctx.forget = &f->forget, f->ctx.retain = &f->retain;
    f->ctx.seed = 9, f->ctx.quiet = 1;
}

static void teardown(fixture *f)
{
    lethe_rows_free(&f->all);
    lethe_rows_free(&f->forget);
    lethe_rows_free(&f->retain);
    lethe_net_free(f->net);
    lethe_net_free(f->orig);
    lethe_dataset_free(f->ds);
}

static double mean_loss(lethe_net *net, const lethe_dataset *ds, const lethe_rows *r)
{
    double loss = lethe_batch_grad(net, ds, r->row, (int)r->n, lethe_default_loss(ds->task), 0, 0,
                                   0.0f, NULL);
    return loss;
}

TEST(unlearn_table_and_hparams)
{
    const lethe_method *m;
    CHECK_STATUS(lethe_method_find("nope", &m), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "ft"));
    for (size_t i = 0; i < lethe_methods_count(); i++) {
        const lethe_method *a = lethe_methods_at(i);
        CHECK(a->run && a->params && a->description && a->tasks);
        CHECK(!strcmp(a->intent, "removal") || !strcmp(a->intent, "suppression"));
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(a->name, lethe_methods_at(j)->name));
    }
    lethe_unlearn_ctx ctx = {0};
    CHECK_OK(lethe_method_find("ft", &m));
    const char *ok[] = {"lr=0.5", "epochs=3"};
    CHECK_OK(lethe_unlearn_hparams(&ctx, m, ok, 2));
    CHECK(lethe_hp(&ctx, "lr") == 0.5 && lethe_hp(&ctx, "epochs") == 3);
    CHECK(lethe_hp(&ctx, "batch") == 128);
    const char *bad1[] = {"learning_rate=1"}, *bad2[] = {"lr=fast"}, *bad3[] = {"lr"};
    CHECK_STATUS(lethe_unlearn_hparams(&ctx, m, bad1, 1), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "keys: lr, epochs"));
    CHECK_STATUS(lethe_unlearn_hparams(&ctx, m, bad2, 1), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_unlearn_hparams(&ctx, m, bad3, 1), LETHE_ERR_INVALID);
}

TEST(unlearn_refuses_wrong_task_and_bad_settings)
{
    fixture f;
    setup(&f, LETHE_TASK_CLASSIFY, "gaussian", NULL, 0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_UNSUPPORTED);
    CHECK(strstr(lethe_error_detail(), "regressors only"));
    teardown(&f);
    const char *sets[] = {"epochs=0.5"};
    setup(&f, LETHE_TASK_CLASSIFY, "ft", sets, 1);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_INVALID);
    teardown(&f);
    setup(&f, LETHE_TASK_REGRESS, "rl", NULL, 0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_UNSUPPORTED);
    teardown(&f);
}

/* FT reads only retain samples: scrambling forget features changes nothing. */
TEST(unlearn_ft_ignores_forget_samples)
{
    fixture a, b;
    setup(&a, LETHE_TASK_CLASSIFY, "ft", NULL, 0);
    setup(&b, LETHE_TASK_CLASSIFY, "ft", NULL, 0);
    for (long i = 0; i < b.forget.n; i++)
        for (int j = 0; j < 4; j++)
            b.ds->x[b.forget.row[i] * 4 + j] = 100.0f;
    CHECK_OK(lethe_unlearn_run(&a.ctx));
    CHECK_OK(lethe_unlearn_run(&b.ctx));
    CHECK(a.ctx.steps == 3 && b.ctx.steps == 3); /* 270 retain rows, batch 128 */
    CHECK(!memcmp(a.net->params, b.net->params, sizeof(float) * (size_t)a.net->n_params));
    CHECK(memcmp(a.net->params, a.orig->params, sizeof(float) * (size_t)a.net->n_params));
    teardown(&a);
    teardown(&b);
}

TEST(unlearn_ga_raises_forget_loss)
{
    const char *sets[] = {"lr=0.5", "epochs=5"};
    fixture f;
    setup(&f, LETHE_TASK_CLASSIFY, "ga", sets, 2);
    double before = mean_loss(f.net, f.ds, &f.forget);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    double after = mean_loss(f.net, f.ds, &f.forget);
    CHECK_MSG(after > before + 0.5, "forget loss %g -> %g", before, after);
    CHECK(f.ctx.steps == 5);
    teardown(&f);
}

TEST(unlearn_rl_labels_are_other_classes)
{
    lethe_dataset *ds = blobs(LETHE_TASK_CLASSIFY, 3000);
    lethe_dataset *v = ul_view(ds), *w = ul_view(ds);
    lethe_rows all;
    lethe_rows_all(&all, ds->n);
    ul_random_labels(v, &all, 4);
    ul_random_labels(w, &all, 4);
    long same = 0, count[3] = {0}, changed_from0 = 0;
    for (long i = 0; i < ds->n; i++) {
        same += v->y[i] == ds->y[i];
        CHECK(v->y[i] >= 0 && v->y[i] < 3 && v->y[i] == w->y[i]);
        if (ds->y[i] == 0)
            count[v->y[i]]++, changed_from0++;
    }
    CHECK(same == 0);
    /* from class 0, classes 1 and 2 about equally often */
    CHECK_MSG(labs(count[1] - count[2]) < 4 * (long)sqrt((double)changed_from0),
              "%ld vs %ld", count[1], count[2]);
    CHECK(ds->x == v->x && ds->y != v->y);
    lethe_rows_free(&all);
    ul_view_free(v);
    ul_view_free(w);
    lethe_dataset_free(ds);
}

TEST(unlearn_rl_forgets_on_blobs)
{
    fixture f;
    const char *sets[] = {"epochs=3", "lr=0.05", "batch=16"};
    setup(&f, LETHE_TASK_CLASSIFY, "rl", sets, 3);
    lethe_rows fr = f.forget;
    float *out = malloc(sizeof(float) * 3 * (size_t)fr.n);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    lethe_net *net = f.net;
    long correct = 0;
    for (long i = 0; i < fr.n; i++) {
        const float *y = lethe_net_forward(net, f.ds->x + fr.row[i] * 4, 1, 0, NULL, 0);
        correct += y[0] > y[1] && y[0] > y[2];
    }
    CHECK_MSG(correct < fr.n / 2, "%ld of %ld forget samples still right", correct, fr.n);
    free(out);
    teardown(&f);
}

TEST(unlearn_l1sparse_shrinks_weights)
{
    const char *a_sets[] = {"alpha=0", "epochs=5"}, *b_sets[] = {"alpha=0.05", "epochs=5"};
    fixture a, b;
    setup(&a, LETHE_TASK_CLASSIFY, "l1-sparse", a_sets, 2);
    setup(&b, LETHE_TASK_CLASSIFY, "l1-sparse", b_sets, 2);
    CHECK_OK(lethe_unlearn_run(&a.ctx));
    CHECK_OK(lethe_unlearn_run(&b.ctx));
    double na = 0, nb = 0;
    for (long i = 0; i < a.net->n_params; i++)
        na += fabsf(a.net->params[i]), nb += fabsf(b.net->params[i]);
    CHECK_MSG(nb < na - 1, "l1 norm %g with the penalty, %g without", nb, na);
    /* alpha = 0 is plain FT */
    fixture c;
    const char *c_sets[] = {"epochs=5"};
    setup(&c, LETHE_TASK_CLASSIFY, "ft", c_sets, 1);
    c.ctx.seed = a.ctx.seed;
    CHECK_OK(lethe_unlearn_run(&c.ctx));
    CHECK(c.ctx.steps == a.ctx.steps);
    teardown(&a);
    teardown(&b);
    teardown(&c);
}

TEST(unlearn_gaussian_targets_have_training_spread)
{
    lethe_dataset *ds = blobs(LETHE_TASK_REGRESS, 20000);
    lethe_dataset *v = ul_view(ds);
    lethe_rows half = {0, malloc(sizeof(long) * 10000)};
    for (long i = 0; i < 20000; i += 2)
        half.row[half.n++] = i;
    double s = 0, s2 = 0;
    for (long i = 0; i < ds->n; i++)
        s += ds->t[i], s2 += (double)ds->t[i] * ds->t[i];
    double mean = s / 20000, sd = sqrt(s2 / 20000 - mean * mean);
    ul_gaussian_targets(v, &half, 3);
    double m = 0, m2 = 0, corr = 0;
    for (long i = 0; i < half.n; i++) {
        double t = v->t[half.row[i]];
        m += t, m2 += t * t, corr += (t - mean) * (ds->t[half.row[i]] - mean);
    }
    m /= (double)half.n;
    double got_sd = sqrt(m2 / (double)half.n - m * m);
    CHECK_CLOSE(m, mean, 0, 0.05 * sd);
    CHECK_CLOSE(got_sd, sd, 0.05, 0);
    CHECK_MSG(fabs(corr / (double)half.n) < 0.05 * sd * sd, "draws follow the true targets");
    for (long i = 1; i < 20000; i += 2)
        CHECK(v->t[i] == ds->t[i]);
    lethe_rows_free(&half);
    ul_view_free(v);
    lethe_dataset_free(ds);
}

TEST(unlearn_gaussian_runs_on_regression)
{
    fixture f;
    const char *sets[] = {"epochs=2"};
    setup(&f, LETHE_TASK_REGRESS, "gaussian", sets, 1);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(f.ctx.steps == 2 * ((300 + 31) / 32));
    teardown(&f);
}
