/* The training loop. */
#include "lethe/train.h"
#include "lethe/kernels.h"
#include "lethe/mem.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Streams of the keyed hash, one per purpose. */
#define STREAM_ORDER 0x100000000ull /* + epoch */
#define STREAM_DROPOUT 0x200000000ull
#define STREAM_VAL 0x300000000ull

void lethe_train_defaults(lethe_train_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->optim = LETHE_OPTIM_ADAMW;
    cfg->lr = 1e-3f;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 0.01f;
    cfg->sched = LETHE_SCHED_CONSTANT;
    cfg->min_lr = 0.0f;
    cfg->gamma = 0.1f;
    cfg->batch = 128;
    cfg->epochs = 3;
    cfg->loss = LETHE_LOSS_XENT;
}

lethe_loss lethe_default_loss(lethe_task task)
{
    return task == LETHE_TASK_CLASSIFY ? LETHE_LOSS_XENT : LETHE_LOSS_MSE;
}

double lethe_batch_grad(lethe_net *net, const lethe_dataset *ds, const long *rows, int B,
                        lethe_loss loss, int train, uint64_t seed, float scale, float *losses)
{
    long d = ds->d, nout = net->n_out;
    if (lethe_net_reserve(net, B) != LETHE_OK)
        return NAN;
    /* Gather the inputs straight into the network's input buffer, which
     * lethe_net_forward then uses in place. */
    float *x = net->acts[0];
    for (int i = 0; i < B; i++) {
        long r = rows[i];
        memcpy(x + i * d, ds->x + r * d, sizeof(float) * (size_t)d);
        net->bids[i] = ds->ids[r];
        if (ds->task == LETHE_TASK_CLASSIFY)
            net->by[i] = ds->y[r];
        else
            memcpy(net->bt + i * nout, ds->t + r * ds->n_targets, sizeof(float) * (size_t)nout);
    }
    const float *out = lethe_net_forward(net, x, B, train, net->bids, seed);
    if (!out)
        return NAN;
    float *dout = net->bdout;
    memset(dout, 0, sizeof(float) * (size_t)(B * nout));
    float *per = losses ? losses : net->bloss;
    double mean;
    if (loss == LETHE_LOSS_XENT)
        mean = lethe_softmax_xent(dout, NULL, per, out, net->by, B, (int)nout, scale);
    else if (loss == LETHE_LOSS_MSE)
        mean = lethe_mse(dout, per, out, net->bt, B, (int)nout, scale);
    else
        mean = lethe_l1(dout, per, out, net->bt, B, (int)nout, scale);
    lethe_net_backward(net, dout, B, NULL);
    return mean;
}

double lethe_batch_grad_penalized(lethe_net *net, const lethe_dataset *ds, const long *rows,
                                  int B, lethe_loss loss, int train, uint64_t seed, float alpha)
{
    long n = net->n_params;
    float *g = lethe_calloc((size_t)n, sizeof(float));
    if (!g) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for the gradient penalty");
        return NAN;
    }
    float *saved = net->grads;
    net->grads = g;
    double mean = lethe_batch_grad(net, ds, rows, B, loss, train, seed, 1.0f, NULL);
    double norm = lethe_grad_norm(g, n);
    if (isfinite(mean) && norm > 0) {
        /* theta + r v, with v = g / ||g||; r relative to the parameter scale */
        double r = 1e-3 * (1.0 + lethe_grad_norm(net->params, n) / sqrt((double)n));
        float *gp = lethe_calloc((size_t)n, sizeof(float));
        if (!gp) {
            net->grads = saved;
            lethe_free(g);
            lethe_fail(LETHE_ERR_NOMEM, "out of memory for the gradient penalty");
            return NAN;
        }
        for (long i = 0; i < n; i++)
            net->params[i] += (float)(r * g[i] / norm);
        net->grads = gp;
        lethe_batch_grad(net, ds, rows, B, loss, train, seed, 1.0f, NULL);
        for (long i = 0; i < n; i++)
            net->params[i] -= (float)(r * g[i] / norm);
        for (long i = 0; i < n; i++)
            saved[i] += g[i] + (float)(alpha * (gp[i] - g[i]) / r);
        lethe_free(gp);
    } else {
        for (long i = 0; i < n; i++)
            saved[i] += g[i];
    }
    net->grads = saved;
    lethe_free(g);
    return mean;
}

struct keyed {
    uint64_t key;
    long row;
};

static int by_key(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Sort rows into the keyed order of one epoch (order has n entries). */
static void epoch_order(struct keyed *order, const lethe_dataset *ds, const long *rows, long n,
                        uint64_t seed, int epoch)
{
    for (long i = 0; i < n; i++) {
        order[i].key = lethe_rng_hash(seed, STREAM_ORDER + (uint64_t)epoch, ds->ids[rows[i]]);
        order[i].row = rows[i];
    }
    qsort(order, (size_t)n, sizeof *order, by_key);
}

lethe_status lethe_train_order(const lethe_dataset *ds, const lethe_rows *rows, uint64_t seed,
                               int epoch, long *out)
{
    struct keyed *order = malloc(sizeof *order * (size_t)(rows->n ? rows->n : 1));
    if (!order)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", rows->n);
    epoch_order(order, ds, rows->row, rows->n, seed, epoch);
    for (long i = 0; i < rows->n; i++)
        out[i] = order[i].row;
    free(order);
    return LETHE_OK;
}

/* Mean loss over rows, in evaluation mode. */
static double eval_loss(lethe_net *net, const lethe_dataset *ds, const long *rows, long n,
                        lethe_loss loss, int batch)
{
    double total = 0;
    float *grads = net->grads;
    float *scratch = lethe_calloc((size_t)net->n_params, sizeof(float));
    if (!scratch)
        return NAN;
    net->grads = scratch; /* lethe_batch_grad accumulates; keep the real ones clean */
    for (long i = 0; i < n; i += batch) {
        int B = (int)(n - i < batch ? n - i : batch);
        total += B * lethe_batch_grad(net, ds, rows + i, B, loss, 0, 0, 0.0f, NULL);
    }
    net->grads = grads;
    lethe_free(scratch);
    return total / (double)n;
}

lethe_status lethe_train(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                         const lethe_train_cfg *cfg, FILE *log, lethe_train_result *res)
{
    lethe_status st = LETHE_OK;
    memset(res, 0, sizeof *res);
    res->best_val_loss = NAN;
    res->best_epoch = -1;
    if (cfg->batch <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "batch size must be positive, got %d", cfg->batch);
    if ((ds->task == LETHE_TASK_CLASSIFY) != (cfg->loss == LETHE_LOSS_XENT))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the loss does not fit a %s task", ds->name,
                          ds->task == LETHE_TASK_CLASSIFY ? "classification" : "regression");
    long want_out = ds->task == LETHE_TASK_CLASSIFY ? ds->n_classes : ds->n_targets;
    if (net->n_in != ds->d || net->n_out != want_out)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the model maps %ld features to %ld outputs, the data has %d "
                          "features and %ld outputs",
                          ds->name, net->n_in, net->n_out, ds->d, want_out);
    double t0 = lethe_now();
    struct keyed *order = malloc(sizeof *order * (size_t)(rows->n ? rows->n : 1));
    long *train_rows = malloc(sizeof(long) * (size_t)(rows->n ? rows->n : 1));
    long *val_rows = malloc(sizeof(long) * (size_t)(rows->n ? rows->n : 1));
    long *batch_rows = malloc(sizeof(long) * (size_t)cfg->batch);
    float *best = cfg->patience > 0 ? lethe_calloc((size_t)net->n_params, sizeof(float)) : NULL;
    lethe_optim *opt = lethe_optim_init(cfg->optim, net->n_params);
    if (!order || !train_rows || !val_rows || !batch_rows || !opt ||
        (cfg->patience > 0 && !best)) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory setting up training");
        goto done;
    }
    opt->momentum = cfg->momentum;
    opt->weight_decay = cfg->weight_decay;
    long n_train = 0, n_val = 0;
    for (long i = 0; i < rows->n; i++) {
        long r = rows->row[i];
        if (cfg->val_frac > 0 && lethe_id_uniform(cfg->seed, STREAM_VAL, ds->ids[r]) < cfg->val_frac)
            val_rows[n_val++] = r;
        else
            train_rows[n_train++] = r;
    }
    if (n_train == 0) {
        st = lethe_fail(LETHE_ERR_INVALID, "%s: no training samples left", ds->name);
        goto done;
    }
    res->n_train = n_train;
    res->n_val = n_val;
    long per_epoch = (n_train + cfg->batch - 1) / cfg->batch;
    long total = cfg->steps > 0 ? cfg->steps : (long)cfg->epochs * per_epoch;
    lethe_sched sched = {cfg->sched, cfg->lr, total, cfg->warmup, cfg->min_lr, cfg->step_size,
                         cfg->gamma};
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, "train", "steps", (uint64_t)total, cfg->quiet);
    long step = 0;
    int since_best = 0;
    memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
    for (int epoch = 0; step < total; epoch++) {
        epoch_order(order, ds, train_rows, n_train, cfg->seed, epoch);
        uint64_t drop_seed = lethe_rng_hash(cfg->seed, STREAM_DROPOUT, (uint64_t)epoch);
        double epoch_loss = 0;
        long epoch_n = 0;
        for (long b = 0; b < n_train && step < total; b += cfg->batch) {
            int B = (int)(n_train - b < cfg->batch ? n_train - b : cfg->batch);
            for (int k = 0; k < B; k++)
                batch_rows[k] = order[b + k].row;
            /* net->grads is zero here: cleared before the loop and by each step */
            double loss =
                cfg->grad_penalty > 0
                    ? lethe_batch_grad_penalized(net, ds, batch_rows, B, cfg->loss, 1, drop_seed,
                                                 cfg->grad_penalty)
                    : lethe_batch_grad(net, ds, batch_rows, B, cfg->loss, 1, drop_seed, 1.0f,
                                       NULL);
            if (!isfinite(loss)) {
                st = lethe_error_detail()[0] && isnan(loss)
                         ? LETHE_ERR_NOMEM
                         : lethe_fail(LETHE_ERR_FAILED,
                                      "%s: the loss diverged at step %ld (a lower learning "
                                      "rate?)", ds->name, step);
                goto done;
            }
            if (cfg->clip > 0)
                lethe_grad_clip(net->grads, net->n_params, cfg->clip);
            float lr = lethe_sched_lr(&sched, step);
            lethe_optim_step_zero_grad(opt, net->params, net->grads, lr);
            epoch_loss += loss * B;
            epoch_n += B;
            if (log)
                fprintf(log, "{\"step\":%ld,\"epoch\":%d,\"lr\":%.9g,\"loss\":%.9g}\n", step,
                        epoch, lr, loss);
            step++;
            lethe_progress_update(&prog, (uint64_t)step);
        }
        res->epochs = epoch + 1;
        res->last_loss = epoch_n ? epoch_loss / (double)epoch_n : NAN;
        if (n_val > 0) {
            double vl = eval_loss(net, ds, val_rows, n_val, cfg->loss, cfg->batch);
            if (log)
                fprintf(log, "{\"epoch\":%d,\"train_loss\":%.9g,\"val_loss\":%.9g}\n", epoch,
                        res->last_loss, vl);
            if (isnan(res->best_val_loss) || vl < res->best_val_loss) {
                res->best_val_loss = vl;
                res->best_epoch = epoch;
                since_best = 0;
                if (best)
                    memcpy(best, net->params, sizeof(float) * (size_t)net->n_params);
            } else if (cfg->patience > 0 && ++since_best >= cfg->patience) {
                break;
            }
        }
    }
    if (best && res->best_epoch >= 0)
        memcpy(net->params, best, sizeof(float) * (size_t)net->n_params);
    lethe_progress_finish(&prog);
    res->steps = step;
done:
    res->seconds = lethe_now() - t0;
    free(order);
    free(train_rows);
    free(val_rows);
    free(batch_rows);
    lethe_free(best);
    lethe_optim_free(opt);
    return st;
}
