/* The training loop for feed-forward networks.
 *
 * Deterministic (DESIGN §5): each epoch visits the training rows in the order
 * of a keyed hash of their ids, batches are consecutive runs of that order,
 * dropout masks are keyed by (seed, epoch, id), and the validation split is
 * chosen by a keyed hash of each id. Removing a sample therefore leaves the
 * relative order and the random draws of every other sample unchanged. */
#ifndef LETHE_TRAIN_H
#define LETHE_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "lethe/dataset.h"
#include "lethe/net.h"
#include "lethe/optim.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_loss { LETHE_LOSS_XENT, LETHE_LOSS_MSE, LETHE_LOSS_L1 } lethe_loss;

typedef struct lethe_train_cfg {
    lethe_optim_kind optim;
    float lr, momentum, weight_decay;
    lethe_sched_kind sched;
    long warmup;          /* cosine warm-up steps */
    float min_lr;         /* cosine final rate */
    long step_size;       /* step schedule: steps between decays */
    float gamma;          /* step schedule: decay factor */
    int batch;
    int epochs;           /* used when steps == 0 */
    long steps;           /* optimizer-step budget; 0: epochs * batches per epoch */
    float clip;           /* max gradient norm; 0: no clipping */
    lethe_loss loss;      /* xent for classifiers; mse or l1 for regressors */
    double val_frac;      /* fraction of rows held out for validation; 0: none */
    int patience;         /* early stopping after this many epochs without a
                             better validation loss; 0: never (needs val_frac) */
    float grad_penalty;   /* alpha of IAU's alpha * ||grad L||; 0: off */
    uint64_t seed;
    int quiet;            /* no progress output */
} lethe_train_cfg;

/* Defaults: AdamW lr 1e-3 wd 0.01 (SGD: momentum 0.9), constant schedule,
 * batch 128, 3 epochs, no clipping, no validation, seed 0. */
void lethe_train_defaults(lethe_train_cfg *cfg);

typedef struct lethe_train_result {
    long steps;
    int epochs;
    double last_loss;     /* mean training loss of the last epoch */
    double best_val_loss; /* lowest validation loss (NAN without validation) */
    int best_epoch;       /* its epoch; its parameters are the ones kept */
    long n_train, n_val;
    double seconds;
} lethe_train_result;

/* Train net in place on rows of ds. Writes one JSON line per step (and per
 * validation) to log when log is not NULL. */
lethe_status lethe_train(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                         const lethe_train_cfg *cfg, FILE *log, lethe_train_result *res);

/* Forward and backward one batch of rows: accumulates scale * d(mean loss)
 * into net->grads and returns the mean loss. train != 0 enables dropout
 * keyed by (seed, id). losses (B) receives per-sample losses when not NULL.
 * Returns NAN (detail set) when out of memory. */
double lethe_batch_grad(lethe_net *net, const lethe_dataset *ds, const long *rows, int B,
                        lethe_loss loss, int train, uint64_t seed, float scale, float *losses);

/* Like lethe_batch_grad, plus alpha * d||g||/dtheta where g is the batch
 * gradient, through a finite-difference Hessian-vector product
 * H (g/||g||) ~ (g(theta + r g/||g||) - g(theta)) / r: two backward passes. */
double lethe_batch_grad_penalized(lethe_net *net, const lethe_dataset *ds, const long *rows,
                                  int B, lethe_loss loss, int train, uint64_t seed, float alpha);

/* The visiting order of epoch `epoch`: rows sorted by the keyed hash of
 * their ids under (seed, epoch). out receives rows->n rows. */
lethe_status lethe_train_order(const lethe_dataset *ds, const lethe_rows *rows, uint64_t seed,
                               int epoch, long *out);

/* The loss lethe uses for a task when none is named. */
lethe_loss lethe_default_loss(lethe_task task);

LETHE_API_END
#endif
