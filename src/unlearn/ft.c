/* FT: fine-tune on the retain set only, letting the forget set fade
 * (catastrophic forgetting). SalUn's code: SGD lr 0.01, momentum 0.9. */
#include "common.h"

#include <stdlib.h>

static const lethe_hparam params[] = {
    {"lr", 0.01, "learning rate"},
    {"epochs", 1, "passes over the retain set"},
    {"batch", 128, "samples per step"},
    {"momentum", 0.9, "SGD momentum"},
    {"wd", 5e-4, "weight decay"},
    {"adam", 0, "1: AdamW instead of SGD"},
    {NULL, 0, NULL}};

static double retain_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                          void *user)
{
    (void)user;
    return ul_task_grad(ctx, ctx->data, rows, B, seed, 1.0f);
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_optim *opt = ul_optim(ctx);
    if (!opt)
        return LETHE_ERR_NOMEM;
    ul_loop L = {ctx->retain, (int)lethe_hp(ctx, "batch"), (int)lethe_hp(ctx, "epochs"),
                 (float)lethe_hp(ctx, "lr"), retain_grad, NULL, NULL, 1, "ft"};
    lethe_status st = ul_run(ctx, opt, &L);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_ft = {"ft", "fine-tune on the retain set only", LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS,
                            "removal", 1, 1, params, run};
