/* Gaussian fine-tuning (Deep Regression Unlearning, Tarun et al. 2023):
 * replace each forget target with a draw from N(mean, sd) of the training
 * targets, then fine-tune on forget and retain together (Adam, lr 1e-3). */
#include "common.h"
#include "lethe/rng.h"

#include <math.h>

#define STREAM_NOISE 0x6a05ull

static const lethe_hparam params[] = {
    {"lr", 1e-3, "learning rate"},
    {"epochs", 1, "passes over forget and retain"},
    {"batch", 32, "samples per step"},
    {"adam", 1, "1: AdamW, 0: SGD"},
    {"wd", 0, "weight decay"},
    {NULL, 0, NULL}};

void ul_gaussian_targets(lethe_dataset *v, const lethe_rows *rows, uint64_t seed)
{
    size_t m = (size_t)v->n * (size_t)v->n_targets;
    for (int k = 0; k < v->n_targets; k++) {
        double s = 0, s2 = 0;
        for (size_t i = (size_t)k; i < m; i += (size_t)v->n_targets)
            s += v->t[i], s2 += (double)v->t[i] * v->t[i];
        double mean = s / (double)v->n, var = s2 / (double)v->n - mean * mean;
        double sd = var > 0 ? sqrt(var) : 0;
        for (long i = 0; i < rows->n; i++) {
            long r = rows->row[i];
            lethe_rng g = lethe_rng_init(lethe_rng_hash(seed, STREAM_NOISE, v->ids[r]),
                                         (uint64_t)k);
            v->t[(size_t)r * (size_t)v->n_targets + (size_t)k] =
                (float)(mean + sd * lethe_rng_normal(&g));
        }
    }
}

static double task_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                        void *user)
{
    return ul_task_grad(ctx, user, rows, B, seed, 1.0f);
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_optim *opt = ul_optim(ctx);
    lethe_dataset *noisy = ul_view(ctx->data);
    lethe_rows all = {0};
    lethe_status st = !opt || !noisy ? lethe_fail(LETHE_ERR_NOMEM, "gaussian: out of memory")
                                     : ul_rows_union(&all, ctx->forget, ctx->retain);
    if (st == LETHE_OK) {
        ul_gaussian_targets(noisy, ctx->forget, ctx->seed);
        ul_loop L = {&all, (int)lethe_hp(ctx, "batch"), (int)lethe_hp(ctx, "epochs"),
                     (float)lethe_hp(ctx, "lr"), task_grad, noisy, NULL, 4, "gaussian"};
        st = ul_run(ctx, opt, &L);
    }
    lethe_rows_free(&all);
    ul_view_free(noisy);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_gaussian = {"gaussian",
                                  "forget targets replaced by Gaussian draws, then fine-tune on all",
                                  LETHE_FOR_REGRESS, "removal", 1, 1, params, run};
