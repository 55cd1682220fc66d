/* Boundary Shrink (Chen et al., "Boundary unlearning", CVPR 2023). For each
 * forget sample x with label y, an FGSM step on the original model in
 * evaluation mode, x' = x + bound sign(d CE(original(x), y) / dx), crosses
 * the nearest decision boundary; the nearest-but-wrong label is
 * argmax original(x'), or the second best class of original(x') when the
 * attack did not leave y. The model is then fine-tuned on the forget set
 * with x -> that label, shrinking the forgotten region into its
 * neighbours. Only forget samples are read.
 *
 * Departures from the reference: it trains on argmax original(x') even when
 * that is y (a failed attack then reinforces y); here the second best class
 * is taken, as the method intends. x' is not clamped to an input range:
 * lethe's tabular features are standardised and have none, and x' only
 * serves to find the neighbouring class. The labels depend on the frozen
 * original only, so they are computed once rather than every step.
 *
 * Defaults: bound 0.1, SGD momentum 0.9 and 10 epochs over the forget set
 * as published; lr 1e-5, twice SalUn's 5e-6; batch 64. Ten passes over a 10%
 * forget set cost about one epoch of training, a twelfth of the 12-epoch
 * Fashion-MNIST recipe. Measured on the Fashion-MNIST MLP: class forgetting
 * ends at forget accuracy 4% with retain accuracy 92.1% (oracle 0% and
 * 92.7%). The method is meant for class forgetting: on 10% random
 * forgetting, where every class loses some samples to its neighbour, these
 * settings cost 11 points of retain accuracy; lr 5e-6 (SalUn's setting)
 * cuts that to 3 (retain 89.1%, oracle 92.2%) but leaves 20% of a
 * forgotten class recognised. Larger rates wreck random forgetting outright
 * (retain 44% at lr 1e-3). The tiny digits set gives only a few dozen
 * steps; it needs lr about 1e-3 to move. */
#include "common.h"
#include "lethe/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lethe_hparam params[] = {
    {"lr", 1e-5, "learning rate"},
    {"epochs", 10, "passes over the forget set"},
    {"batch", 64, "samples per step"},
    {"bound", 0.1, "FGSM step size (L-infinity bound)"},
    {"momentum", 0.9, "SGD momentum"},
    {"wd", 0, "weight decay"},
    {"adam", 0, "1: AdamW instead of SGD"},
    {NULL, 0, NULL}};

lethe_status ul_boundary_targets(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                 float bound, int32_t *labels, float *xadv)
{
    enum { CHUNK = 128 };
    int V = (int)net->n_out, d = ds->d;
    float *dx = malloc(sizeof(float) * CHUNK * (size_t)d);
    float *xa = malloc(sizeof(float) * CHUNK * (size_t)d);
    float *saved = malloc(sizeof(float) * (size_t)net->n_params);
    lethe_status st = LETHE_OK;
    if (!dx || !xa || !saved) {
        st = lethe_fail(LETHE_ERR_NOMEM, "boundary-shrink: out of memory");
        goto done;
    }
    /* the backward pass accumulates into the net's gradients: keep them */
    memcpy(saved, net->grads, sizeof(float) * (size_t)net->n_params);
    for (long b = 0; b < rows->n; b += CHUNK) {
        int B = (int)(rows->n - b < CHUNK ? rows->n - b : CHUNK);
        const long *r = rows->row + b;
        const float *z = ul_forward(net, ds, r, B, 0, 0);
        if (!z) {
            st = LETHE_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < B; i++)
            net->by[i] = ds->y[r[i]];
        memset(net->bdout, 0, sizeof(float) * (size_t)B * (size_t)V);
        lethe_softmax_xent(net->bdout, NULL, NULL, z, net->by, B, V, 1.0f);
        lethe_net_backward(net, net->bdout, B, dx);
        for (long k = 0; k < (long)B * d; k++) {
            float g = dx[k];
            xa[k] = net->bx[k] + (g > 0 ? bound : g < 0 ? -bound : 0.0f);
        }
        const float *za = lethe_net_forward(net, xa, B, 0, NULL, 0);
        if (!za) {
            st = LETHE_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < B; i++) {
            const float *zi = za + (long)i * V;
            int best = -1, second = -1;
            for (int v = 0; v < V; v++) {
                if (best < 0 || zi[v] > zi[best])
                    second = best, best = v;
                else if (second < 0 || zi[v] > zi[second])
                    second = v;
            }
            labels[b + i] = best == ds->y[r[i]] ? second : best;
        }
        if (xadv)
            memcpy(xadv + b * d, xa, sizeof(float) * (size_t)B * (size_t)d);
    }
    memcpy(net->grads, saved, sizeof(float) * (size_t)net->n_params);
done:
    free(saved);
    free(xa);
    free(dx);
    return st;
}

static double task_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                        void *user)
{
    return ul_task_grad(ctx, user, rows, B, seed, 1.0f);
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    const lethe_rows *f = ctx->forget;
    float bound = (float)lethe_hp(ctx, "bound");
    if (!(bound > 0))
        return lethe_fail(LETHE_ERR_INVALID, "boundary-shrink: bound = %g must be positive",
                          (double)bound);
    if (ctx->net->n_out < 2)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "boundary-shrink needs at least two classes");
    lethe_optim *opt = ul_optim(ctx);
    lethe_dataset *shrunk = ul_view(ctx->data);
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)(f->n ? f->n : 1));
    lethe_status st = !opt || !shrunk || !labels
                          ? lethe_fail(LETHE_ERR_NOMEM, "boundary-shrink: out of memory")
                          : ul_boundary_targets(ctx->original, ctx->data, f, bound, labels, NULL);
    if (st == LETHE_OK) {
        for (long i = 0; i < f->n; i++)
            shrunk->y[f->row[i]] = labels[i];
        ul_loop L = {f, (int)lethe_hp(ctx, "batch"), (int)lethe_hp(ctx, "epochs"),
                     (float)lethe_hp(ctx, "lr"), task_grad, shrunk, NULL, 0xb5, "boundary-shrink"};
        st = ul_run(ctx, opt, &L);
    }
    free(labels);
    ul_view_free(shrunk);
    lethe_optim_free(opt);
    return st;
}

const lethe_method ul_boundary = {"boundary-shrink",
                                  "relabel each forget sample to the class an FGSM step on the "
                                  "original reaches, and fine-tune on that",
                                  LETHE_FOR_CLASSIFY, "suppression", 1, 0, params, run};
