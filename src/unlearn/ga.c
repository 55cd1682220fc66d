/* GA: gradient ascent on the forget set (minimise -loss on D_f).
 * SalUn's code: SGD lr 1e-4, 5 epochs. */
#include "common.h"

static const lethe_hparam params[] = {
    {"lr", 1e-4, "learning rate"},
    {"epochs", 5, "passes over the forget set"},
    {"batch", 128, "samples per step"},
    {"momentum", 0.9, "SGD momentum"},
    {"wd", 0, "weight decay"},
    {"adam", 0, "1: AdamW instead of SGD"},
    {NULL, 0, NULL}};

static double ascent_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                          void *user)
{
    (void)user;
    return ul_task_grad(ctx, ctx->data, rows, B, seed, -1.0f);
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_optim *opt = ul_optim(ctx);
    if (!opt)
        return LETHE_ERR_NOMEM;
    ul_loop L = {ctx->forget, (int)lethe_hp(ctx, "batch"), (int)lethe_hp(ctx, "epochs"),
                 (float)lethe_hp(ctx, "lr"), ascent_grad, NULL, NULL, 2, "ga"};
    lethe_status st = ul_run(ctx, opt, &L);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_ga = {"ga", "gradient ascent on the forget set",
                            LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS, "suppression", 1, 0, params,
                            run};
