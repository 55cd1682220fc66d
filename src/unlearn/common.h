/* Building blocks shared by the unlearning methods (internal to src/unlearn). */
#ifndef LETHE_UNLEARN_COMMON_H
#define LETHE_UNLEARN_COMMON_H

#include "lethe/optim.h"
#include "lethe/train.h"
#include "lethe/unlearn.h"

/* Accumulate the gradient of one batch (rows[0..B)) into ctx->net->grads
 * and return its mean loss; NAN (detail set) on failure. */
typedef double (*ul_grad_fn)(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                             void *user);

/* A pass of optimisation over rows in the keyed order of their ids. */
typedef struct ul_loop {
    const lethe_rows *rows;
    int batch, epochs;
    float lr;               /* constant rate */
    ul_grad_fn grad;
    void *user;
    const float *mask;      /* gradient mask (n_params) or NULL */
    uint64_t stream;        /* keeps the order of different phases apart */
    const char *phase;      /* names the phase in the log */
} ul_loop;

/* The optimizer the method's hyperparameters name: "adam" = 1 gives AdamW,
 * else SGD; "momentum" and "wd" when declared. NULL (detail set) on failure. */
lethe_optim *ul_optim(const lethe_unlearn_ctx *ctx);

/* Run L with opt (its state carries across calls). */
lethe_status ul_run(lethe_unlearn_ctx *ctx, lethe_optim *opt, const ul_loop *L);

/* Stage rows into the net's batch buffers and forward them. */
const float *ul_forward(lethe_net *net, const lethe_dataset *ds, const long *rows, int B,
                        int train, uint64_t seed);

/* Cross-entropy (classifiers) or the data's regression loss on a batch,
 * scaled by `scale` (negative for ascent); ds may carry replaced labels. */
double ul_task_grad(lethe_unlearn_ctx *ctx, const lethe_dataset *ds, const long *rows, int B,
                    uint64_t seed, float scale);

/* A view of ds sharing its features and ids with its own labels / targets,
 * copied from ds; free with ul_view_free. NULL on out-of-memory. */
lethe_dataset *ul_view(const lethe_dataset *ds);
void ul_view_free(lethe_dataset *v);

/* The union of two ascending row sets into a new one. */
lethe_status ul_rows_union(lethe_rows *out, const lethe_rows *a, const lethe_rows *b);

/* Replace each forget label by a uniformly drawn other class, keyed by
 * (seed, id). */
void ul_random_labels(lethe_dataset *v, const lethe_rows *rows, uint64_t seed);

/* Gaussian fine-tuning's targets: each target of rows replaced by a draw
 * from N(mean, sd) of all of v's targets, keyed by (seed, id). */
void ul_gaussian_targets(lethe_dataset *v, const lethe_rows *rows, uint64_t seed);

#endif
