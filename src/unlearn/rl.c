/* RL: random labels. Each epoch, a pass over the forget set with every
 * label replaced by a random other class (keyed by the sample id), then a
 * pass over the retain set with the true labels. SalUn's code: lr 0.01. */
#include "common.h"

static const lethe_hparam params[] = {
    {"lr", 0.01, "learning rate"},
    {"epochs", 1, "rounds of (forget pass, retain pass)"},
    {"batch", 128, "samples per step"},
    {"momentum", 0.9, "SGD momentum"},
    {"wd", 5e-4, "weight decay"},
    {"adam", 0, "1: AdamW instead of SGD"},
    {NULL, 0, NULL}};

static double task_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                        void *user)
{
    return ul_task_grad(ctx, user, rows, B, seed, 1.0f);
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_optim *opt = ul_optim(ctx);
    lethe_dataset *relabeled = ul_view(ctx->data);
    lethe_status st = LETHE_OK;
    if (!opt || !relabeled) {
        st = lethe_fail(LETHE_ERR_NOMEM, "rl: out of memory");
        goto done;
    }
    ul_random_labels(relabeled, ctx->forget, ctx->seed);
    int batch = (int)lethe_hp(ctx, "batch");
    float lr = (float)lethe_hp(ctx, "lr");
    for (int e = 0; e < (int)lethe_hp(ctx, "epochs") && st == LETHE_OK; e++) {
        ul_loop f = {ctx->forget, batch, 1, lr, task_grad, relabeled, NULL, 30 + 2 * (uint64_t)e,
                     "rl-forget"};
        ul_loop r = {ctx->retain, batch, 1, lr, task_grad, (void *)ctx->data, NULL,
                     31 + 2 * (uint64_t)e, "rl-retain"};
        if ((st = ul_run(ctx, opt, &f)) == LETHE_OK)
            st = ul_run(ctx, opt, &r);
    }
done:
    ul_view_free(relabeled);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_rl = {"rl", "random other labels on the forget set, true ones on retain",
                            LETHE_FOR_CLASSIFY, "removal", 1, 1, params, run};
