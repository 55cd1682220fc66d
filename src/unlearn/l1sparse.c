/* l1-sparse: fine-tune on the retain set with an l1 penalty on the weights
 * that decays linearly to zero, alpha_t = alpha (1 - t / T) (Jia et al.,
 * "Model sparsity can simplify machine unlearning"). */
#include "common.h"

#include <math.h>

static const lethe_hparam params[] = {
    {"lr", 0.01, "learning rate"},
    {"epochs", 1, "passes over the retain set"},
    {"batch", 128, "samples per step"},
    {"alpha", 1e-4, "initial l1 strength"},
    {"momentum", 0.9, "SGD momentum"},
    {"wd", 5e-4, "weight decay"},
    {"adam", 0, "1: AdamW instead of SGD"},
    {NULL, 0, NULL}};

typedef struct state {
    long total; /* steps in the run */
} state;

static double sparse_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                          void *user)
{
    const state *s = user;
    double loss = ul_task_grad(ctx, ctx->data, rows, B, seed, 1.0f);
    double a = lethe_hp(ctx, "alpha") * (1.0 - (double)ctx->steps / (double)s->total);
    lethe_net *net = ctx->net;
    double l1 = 0;
    for (long i = 0; i < net->n_params; i++) {
        float w = net->params[i];
        net->grads[i] += (float)a * (float)((w > 0) - (w < 0));
        l1 += fabsf(w);
    }
    return loss + a * l1;
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_optim *opt = ul_optim(ctx);
    if (!opt)
        return LETHE_ERR_NOMEM;
    int batch = (int)lethe_hp(ctx, "batch"), epochs = (int)lethe_hp(ctx, "epochs");
    state s = {(ctx->retain->n + batch - 1) / batch * epochs};
    ul_loop L = {ctx->retain, batch, epochs, (float)lethe_hp(ctx, "lr"), sparse_grad, &s, NULL, 3,
                 "l1-sparse"};
    lethe_status st = ul_run(ctx, opt, &L);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_l1sparse = {"l1-sparse",
                                  "fine-tune on retain with a decaying l1 penalty on the weights",
                                  LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS, "removal", 1, 1, params,
                                  run};
