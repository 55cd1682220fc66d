/* The training loop: learning, determinism, the keyed order under exclusion,
 * validation and early stopping, and the gradient-norm penalty. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/rng.h"
#include "lethe/train.h"

/* Two Gaussian blobs in 4-D, labels 0/1, ids 1000 + i. */
static lethe_dataset *blobs(long n)
{
    lethe_dataset *ds = lethe_dataset_alloc("blobs", LETHE_TASK_CLASSIFY, n, 4, 0);
    ds->n_classes = 2;
    lethe_rng r = lethe_rng_init(5, 0);
    for (long i = 0; i < n; i++) {
        int y = (int)(i % 2);
        ds->y[i] = y;
        ds->ids[i] = 1000 + (uint64_t)i;
        for (int k = 0; k < 4; k++)
            ds->x[i * 4 + k] = (float)(lethe_rng_normal(&r) + (y ? 1.5 : -1.5) * (k < 2));
    }
    return ds;
}

static double accuracy(lethe_net *net, const lethe_dataset *ds)
{
    const float *out = lethe_net_forward(net, ds->x, (int)ds->n, 0, NULL, 0);
    long right = 0;
    for (long i = 0; i < ds->n; i++)
        right += (out[i * 2 + 1] > out[i * 2]) == ds->y[i];
    return (double)right / (double)ds->n;
}

static lethe_net *train_blobs(lethe_dataset *ds, const lethe_rows *rows, lethe_train_cfg *cfg,
                              lethe_train_result *res)
{
    lethe_net *net = lethe_net_init("in=4;linear=16;relu;dropout=0.2;linear=2");
    lethe_net_init_params(net, cfg->seed);
    if (lethe_train(net, ds, rows, cfg, NULL, res) != LETHE_OK) {
        lethe_net_free(net);
        return NULL;
    }
    return net;
}

TEST(train_learns_and_is_deterministic)
{
    lethe_dataset *ds = blobs(400);
    lethe_rows all;
    CHECK_OK(lethe_rows_all(&all, ds->n));
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.batch = 32;
    cfg.epochs = 5;
    cfg.lr = 1e-2f;
    cfg.seed = 3;
    cfg.quiet = 1;
    lethe_train_result r1, r2;
    lethe_net *a = train_blobs(ds, &all, &cfg, &r1), *b = train_blobs(ds, &all, &cfg, &r2);
    CHECK(a && b);
    int same = !memcmp(a->params, b->params, sizeof(float) * (size_t)a->n_params);
    double acc = accuracy(a, ds);
    cfg.seed = 4;
    lethe_net *c = train_blobs(ds, &all, &cfg, &r2);
    int differ = memcmp(a->params, c->params, sizeof(float) * (size_t)a->n_params) != 0;
    lethe_net_free(a);
    lethe_net_free(b);
    lethe_net_free(c);
    lethe_rows_free(&all);
    lethe_dataset_free(ds);
    CHECK(same);
    CHECK(differ);
    CHECK_MSG(acc > 0.95, "accuracy %.3f", acc);
    CHECK(r1.steps == 5 * 13 && r1.epochs == 5);
}

/* Removing samples leaves the relative order of the others unchanged in
 * every epoch, and their validation membership too. */
TEST(train_order_survives_exclusion)
{
    lethe_dataset *ds = blobs(300);
    lethe_rows all, drop = {0, NULL}, kept;
    CHECK_OK(lethe_rows_all(&all, ds->n));
    drop.row = malloc(sizeof(long) * 30);
    for (long i = 0; i < 30; i++)
        drop.row[drop.n++] = i * 10 + 3;
    CHECK_OK(lethe_rows_minus(&kept, &all, &drop));
    CHECK(kept.n == 270);
    long *o_all = malloc(sizeof(long) * 300), *o_kept = malloc(sizeof(long) * 300);
    int ok = 1;
    for (int epoch = 0; epoch < 3; epoch++) {
        CHECK_OK(lethe_train_order(ds, &all, 11, epoch, o_all));
        CHECK_OK(lethe_train_order(ds, &kept, 11, epoch, o_kept));
        long j = 0;
        for (long i = 0; i < 300; i++)
            if (o_all[i] % 10 != 3)
                ok &= o_all[i] == o_kept[j++];
        ok &= j == 270;
    }
    CHECK_OK(lethe_train_order(ds, &all, 12, 0, o_kept));
    int moved = 0;
    for (long i = 0; i < 270; i++)
        moved += o_all[i] != o_kept[i];
    free(o_all);
    free(o_kept);
    lethe_rows_free(&all);
    lethe_rows_free(&drop);
    lethe_rows_free(&kept);
    lethe_dataset_free(ds);
    CHECK(ok);
    CHECK(moved > 200);
}

TEST(train_validation_and_early_stopping)
{
    lethe_dataset *ds = blobs(400);
    lethe_rows all;
    CHECK_OK(lethe_rows_all(&all, ds->n));
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.batch = 16, cfg.epochs = 40, cfg.lr = 0.05f, cfg.seed = 1, cfg.quiet = 1;
    cfg.val_frac = 0.25, cfg.patience = 2;
    lethe_train_result res;
    lethe_net *net = train_blobs(ds, &all, &cfg, &res);
    CHECK(net);
    lethe_net_free(net);
    lethe_rows_free(&all);
    lethe_dataset_free(ds);
    CHECK(res.n_val > 60 && res.n_val < 140 && res.n_train + res.n_val == 400);
    CHECK(!isnan(res.best_val_loss) && res.best_epoch >= 0);
    CHECK_MSG(res.epochs < 40 && res.epochs <= res.best_epoch + 3, "epochs %d best %d",
              res.epochs, res.best_epoch);
}

TEST(train_rejects_mismatched_model)
{
    lethe_dataset *ds = blobs(10);
    lethe_rows all;
    CHECK_OK(lethe_rows_all(&all, ds->n));
    lethe_net *net = lethe_net_init("in=5;linear=2");
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    lethe_train_result res;
    lethe_status st = lethe_train(net, ds, &all, &cfg, NULL, &res);
    lethe_net_free(net);
    lethe_rows_free(&all);
    lethe_dataset_free(ds);
    CHECK(st == LETHE_ERR_INVALID && strstr(lethe_error_detail(), "5 features"));
}

/* F(theta) = L(theta) + alpha ||grad L(theta)||. The penalized gradient must
 * match central differences of F, with grad L from the analytic backward. */
static double penalized_objective(lethe_net *net, const lethe_dataset *ds, const long *rows,
                                  int B, float alpha)
{
    memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
    double L = lethe_batch_grad(net, ds, rows, B, LETHE_LOSS_XENT, 0, 0, 1.0f, NULL);
    double s = 0;
    for (long i = 0; i < net->n_params; i++)
        s += (double)net->grads[i] * net->grads[i];
    return L + alpha * sqrt(s);
}

TEST(train_gradient_penalty_matches_finite_differences)
{
    lethe_dataset *ds = blobs(8);
    lethe_net *net = lethe_net_init("in=4;linear=5;tanh;linear=2");
    lethe_net_init_params(net, 2);
    long rows[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const float alpha = 0.5f;
    float *g = calloc((size_t)net->n_params, sizeof(float));
    memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
    lethe_batch_grad_penalized(net, ds, rows, 8, LETHE_LOSS_XENT, 0, 0, alpha);
    memcpy(g, net->grads, sizeof(float) * (size_t)net->n_params);
    double worst = 0, eps = 1e-2;
    for (long k = 0; k < net->n_params; k++) {
        float keep = net->params[k];
        net->params[k] = keep + (float)eps;
        double fp = penalized_objective(net, ds, rows, 8, alpha);
        net->params[k] = keep - (float)eps;
        double fm = penalized_objective(net, ds, rows, 8, alpha);
        net->params[k] = keep;
        double num = (fp - fm) / (2 * eps);
        worst = fmax(worst, fabs(num - g[k]) / fmax(0.05, fabs(num)));
    }
    free(g);
    lethe_net_free(net);
    lethe_dataset_free(ds);
    CHECK_MSG(worst < 2e-2, "worst relative error %g", worst);
}

TEST(train_regression_mse)
{
    lethe_dataset *ds = lethe_dataset_alloc("line", LETHE_TASK_REGRESS, 256, 2, 1);
    lethe_rng r = lethe_rng_init(8, 0);
    for (long i = 0; i < 256; i++) {
        ds->ids[i] = (uint64_t)i;
        ds->x[2 * i] = (float)lethe_rng_normal(&r);
        ds->x[2 * i + 1] = (float)lethe_rng_normal(&r);
        ds->t[i] = 2 * ds->x[2 * i] - ds->x[2 * i + 1] + 0.5f;
    }
    lethe_rows all;
    CHECK_OK(lethe_rows_all(&all, 256));
    lethe_net *net = lethe_net_init("in=2;linear=1");
    lethe_net_init_params(net, 1);
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.loss = LETHE_LOSS_MSE, cfg.optim = LETHE_OPTIM_SGD, cfg.lr = 0.05f, cfg.weight_decay = 0;
    cfg.batch = 16, cfg.epochs = 20, cfg.quiet = 1;
    lethe_train_result res;
    CHECK_OK(lethe_train(net, ds, &all, &cfg, NULL, &res));
    float w0 = net->params[0], w1 = net->params[1], b = net->params[2];
    lethe_net_free(net);
    lethe_rows_free(&all);
    lethe_dataset_free(ds);
    CHECK_CLOSE(w0, 2.0, 0, 1e-3);
    CHECK_CLOSE(w1, -1.0, 0, 1e-3);
    CHECK_CLOSE(b, 0.5, 0, 1e-3);
}
