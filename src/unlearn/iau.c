/* IAU: Influence Approximation Unlearning.
 *
 * Removing a sample z has, to first order, the same influence on the
 * parameters as adding a sample whose gradient is -grad l(z). IAU therefore
 * replaces the influence-function solve H^-1 grad l with one gradient step:
 *
 *   g = grad mean_{D_r} loss - grad mean_{D_f} loss
 *   theta <- one step of a fresh Adam on g (lr 1e-3)
 *
 * The retain term is the paper's gradient correction: it keeps the step
 * from over-forgetting. Adam's first step from zero moments changes each
 * parameter by -lr * g / (|g| + eps), that is -lr * sign(g) wherever
 * |g| >> eps = 1e-8.
 *
 * Cost: one pass over the data. Every forget and retain sample is
 * forwarded and backpropagated exactly once, accumulating g in place with
 * no update in between; then one optimizer step. The log line of the step
 * records the samples forwarded. The passes run in training mode (dropout
 * on, its masks keyed by sample id), as the model was trained. steps = k > 1
 * repeats this k times (k passes, one Adam whose moments carry across).
 *
 * The other half of IAU acts at training time: `lethe train --grad-penalty
 * 0.005` adds the paper's gradient restriction alpha * ||grad loss|| to the
 * training loss (through a finite-difference Hessian-vector product),
 * which keeps per-sample gradients small so that one step can remove a
 * sample's influence without damaging the rest. The step itself runs on
 * any model, trained with the restriction or without it. */
#include "common.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>

#define STREAM_DROPOUT 0x1a0ull

static const lethe_hparam params[] = {
    {"lr", 1e-3, "Adam learning rate of the step"},
    {"steps", 1, "full-batch steps (each one pass over the data)"},
    {"batch", 256, "samples per forward (accumulated; no update in between)"},
    {NULL, 0, NULL}};

/* Accumulate scale * (gradient of the mean loss over rows) into the net's
 * gradients, `batch` rows at a time. Returns the mean loss, NAN on failure;
 * counts the samples forwarded into *forwarded. */
static double accumulate(lethe_unlearn_ctx *ctx, const lethe_rows *rows, int batch, float scale,
                         uint64_t seed, long *forwarded)
{
    lethe_loss loss = lethe_default_loss(ctx->data->task);
    double total = 0;
    for (long b = 0; b < rows->n; b += batch) {
        int B = (int)(rows->n - b < batch ? rows->n - b : batch);
        /* lethe_batch_grad scales the gradient of the batch mean; weight by
         * B / n so the batches add up to the mean over all of rows */
        float w = (float)((double)B / (double)rows->n);
        double m = lethe_batch_grad(ctx->net, ctx->data, rows->row + b, B, loss, 1, seed,
                                    scale * w, NULL);
        if (!isfinite(m))
            return m;
        total += m * B;
        *forwarded += B;
    }
    return total / (double)rows->n;
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_net *net = ctx->net;
    double sv = lethe_hp(ctx, "steps");
    if (!(sv >= 1 && sv <= 1e6 && sv == floor(sv)))
        return lethe_fail(LETHE_ERR_INVALID, "iau: steps = %g must be a whole number >= 1", sv);
    int steps = (int)sv, batch = (int)lethe_hp(ctx, "batch");
    float lr = (float)lethe_hp(ctx, "lr");
    lethe_optim *adam = lethe_optim_init(LETHE_OPTIM_ADAMW, net->n_params);
    if (!adam)
        return LETHE_ERR_NOMEM;
    adam->weight_decay = 0; /* a fresh torch.optim.Adam */
    lethe_status st = LETHE_OK;
    for (int s = 0; s < steps && st == LETHE_OK; s++) {
        for (long i = 0; i < net->n_params; i++)
            net->grads[i] = 0;
        long forwarded = 0;
        lethe_error_clear(); /* a detail set below means out of memory */
        uint64_t seed = lethe_rng_hash(ctx->seed, STREAM_DROPOUT, (uint64_t)s);
        double lr_loss = accumulate(ctx, ctx->retain, batch, 1.0f, seed, &forwarded);
        double lf_loss = isfinite(lr_loss)
                             ? accumulate(ctx, ctx->forget, batch, -1.0f, seed, &forwarded)
                             : lr_loss;
        if (!isfinite(lr_loss) || !isfinite(lf_loss)) {
            st = lethe_error_detail()[0]
                     ? LETHE_ERR_NOMEM
                     : lethe_fail(LETHE_ERR_FAILED, "iau: the loss is not finite (lower lr?)");
            break;
        }
        double gnorm = lethe_grad_norm(net->grads, net->n_params);
        lethe_optim_step(adam, net->params, net->grads, lr);
        if (ctx->log)
            fprintf(ctx->log,
                    "{\"step\":%ld,\"phase\":\"iau\",\"retain_loss\":%.9g,\"forget_loss\":%.9g,"
                    "\"grad_norm\":%.9g,\"forwarded\":%ld}\n",
                    ctx->steps, lr_loss, lf_loss, gnorm, forwarded);
        ctx->steps++;
    }
    lethe_optim_free(adam);
    return st;
}

const lethe_method ul_iau = {"iau",
                             "one Adam step on grad(retain loss) - grad(forget loss)",
                             LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS, "removal", 1, 1, params,
                             run};
