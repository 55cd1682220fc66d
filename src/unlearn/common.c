/* Shared machinery of the unlearning methods. */
#include "common.h"
#include "lethe/mem.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_LABELS 0x1abe1ull
#define STREAM_DROPOUT 0xd0d0ull

lethe_optim *ul_optim(const lethe_unlearn_ctx *ctx)
{
    const lethe_hparam *p = ctx->method->params;
    double adam = 0, momentum = 0.9, wd = 0;
    for (int i = 0; p[i].name; i++) {
        if (!strcmp(p[i].name, "adam"))
            adam = ctx->hp[i];
        else if (!strcmp(p[i].name, "momentum"))
            momentum = ctx->hp[i];
        else if (!strcmp(p[i].name, "wd"))
            wd = ctx->hp[i];
    }
    lethe_optim *o = lethe_optim_init(adam != 0 ? LETHE_OPTIM_ADAMW : LETHE_OPTIM_SGD,
                                      ctx->net->n_params);
    if (o) {
        o->momentum = (float)momentum;
        o->weight_decay = (float)wd;
    }
    return o;
}

lethe_status ul_run(lethe_unlearn_ctx *ctx, lethe_optim *opt, const ul_loop *L)
{
    lethe_net *net = ctx->net;
    long n = L->rows->n;
    if (n == 0 || L->epochs <= 0)
        return LETHE_OK;
    long *order = malloc(sizeof(long) * (size_t)n);
    if (!order)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", n);
    long per_epoch = (n + L->batch - 1) / L->batch;
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, L->phase, "steps", (uint64_t)(per_epoch * L->epochs),
                        ctx->quiet);
    lethe_status st = LETHE_OK;
    for (int e = 0; e < L->epochs && st == LETHE_OK; e++) {
        uint64_t key = lethe_rng_hash(ctx->seed, L->stream, (uint64_t)e);
        st = lethe_train_order(ctx->data, L->rows, key, 0, order);
        uint64_t drop = lethe_rng_hash(key, STREAM_DROPOUT, 0);
        for (long b = 0; b < n && st == LETHE_OK; b += L->batch) {
            int B = (int)(n - b < L->batch ? n - b : L->batch);
            memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
            double loss = L->grad(ctx, order + b, B, drop, L->user);
            if (!isfinite(loss)) {
                st = isnan(loss) && lethe_error_detail()[0]
                         ? LETHE_ERR_NOMEM
                         : lethe_fail(LETHE_ERR_FAILED, "%s: the loss diverged in %s (lower lr?)",
                                      ctx->method->name, L->phase);
                break;
            }
            if (L->mask)
                for (long i = 0; i < net->n_params; i++)
                    net->grads[i] *= L->mask[i];
            lethe_optim_step(opt, net->params, net->grads, L->lr);
            if (ctx->log)
                fprintf(ctx->log, "{\"step\":%ld,\"phase\":\"%s\",\"epoch\":%d,\"loss\":%.9g}\n",
                        ctx->steps, L->phase, e, loss);
            ctx->steps++;
            lethe_progress_update(&prog, (uint64_t)(e * per_epoch + b / L->batch + 1));
        }
    }
    lethe_progress_finish(&prog);
    free(order);
    return st;
}

const float *ul_forward(lethe_net *net, const lethe_dataset *ds, const long *rows, int B,
                        int train, uint64_t seed)
{
    if (lethe_net_reserve(net, B) != LETHE_OK)
        return NULL;
    for (int i = 0; i < B; i++) {
        memcpy(net->bx + (size_t)i * (size_t)ds->d, ds->x + (size_t)rows[i] * (size_t)ds->d,
               sizeof(float) * (size_t)ds->d);
        net->bids[i] = ds->ids[rows[i]];
    }
    return lethe_net_forward(net, net->bx, B, train, net->bids, seed);
}

double ul_task_grad(lethe_unlearn_ctx *ctx, const lethe_dataset *ds, const long *rows, int B,
                    uint64_t seed, float scale)
{
    lethe_loss loss = lethe_default_loss(ds->task);
    return lethe_batch_grad(ctx->net, ds, rows, B, loss, 1, seed, scale, NULL);
}

lethe_dataset *ul_view(const lethe_dataset *ds)
{
    lethe_dataset *v = malloc(sizeof *v);
    if (!v)
        return NULL;
    *v = *ds;
    v->y = NULL, v->t = NULL;
    if (ds->y && (v->y = lethe_calloc((size_t)ds->n, sizeof(int32_t))))
        memcpy(v->y, ds->y, sizeof(int32_t) * (size_t)ds->n);
    size_t nt = (size_t)ds->n * (size_t)ds->n_targets;
    if (ds->t && (v->t = lethe_calloc(nt, sizeof(float))))
        memcpy(v->t, ds->t, sizeof(float) * nt);
    if ((ds->y && !v->y) || (ds->t && !v->t)) {
        ul_view_free(v);
        return NULL;
    }
    return v;
}

void ul_view_free(lethe_dataset *v)
{
    if (!v)
        return;
    lethe_free(v->y);
    lethe_free(v->t);
    free(v);
}

lethe_status ul_rows_union(lethe_rows *out, const lethe_rows *a, const lethe_rows *b)
{
    out->n = 0;
    out->row = malloc(sizeof(long) * (size_t)(a->n + b->n + 1));
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    long i = 0, j = 0;
    while (i < a->n || j < b->n) {
        long r = j >= b->n || (i < a->n && a->row[i] <= b->row[j]) ? a->row[i++] : b->row[j++];
        if (out->n == 0 || out->row[out->n - 1] != r)
            out->row[out->n++] = r;
    }
    return LETHE_OK;
}

void ul_random_labels(lethe_dataset *v, const lethe_rows *rows, uint64_t seed)
{
    for (long i = 0; i < rows->n; i++) {
        long r = rows->row[i];
        lethe_rng g = lethe_rng_init(lethe_rng_hash(seed, STREAM_LABELS, v->ids[r]), 0);
        uint32_t k = lethe_rng_below(&g, (uint32_t)v->n_classes - 1);
        v->y[r] = (int32_t)k >= v->y[r] ? (int32_t)k + 1 : (int32_t)k;
    }
}
