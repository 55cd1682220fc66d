/* Optimizers over flat parameter arrays, learning-rate schedules and
 * gradient clipping. The updates follow PyTorch's torch.optim.SGD and
 * torch.optim.AdamW step for step, so runs can be compared with a twin. */
#ifndef LETHE_OPTIM_H
#define LETHE_OPTIM_H

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_optim_kind { LETHE_OPTIM_SGD, LETHE_OPTIM_ADAMW } lethe_optim_kind;

typedef struct lethe_optim {
    lethe_optim_kind kind;
    float lr;           /* base learning rate; the schedule scales it */
    float momentum;     /* SGD */
    float beta1, beta2; /* AdamW */
    float eps;          /* AdamW */
    float weight_decay; /* SGD: L2 added to the gradient; AdamW: decoupled */
    long n;             /* parameters */
    long t;             /* steps taken */
    float *m, *v;       /* state: SGD momentum buffer in m; AdamW moments */
} lethe_optim;

/* Defaults: SGD lr 0.01 momentum 0.9; AdamW lr 1e-3, betas (0.9, 0.999),
 * eps 1e-8, weight decay 0.01. Allocates state for n parameters. Returns
 * NULL (detail set) on failure; free with lethe_optim_free. */
lethe_optim *lethe_optim_init(lethe_optim_kind kind, long n);
void lethe_optim_free(lethe_optim *o); /* NULL is a no-op */

/* One update of params with grads at learning rate lr (the schedule's value). */
void lethe_optim_step(lethe_optim *o, float *params, const float *grads, float lr);
/* lethe_optim_step, then grads set to zero in the same pass over memory:
 * for loops that accumulate each step's gradient from zero. */
void lethe_optim_step_zero_grad(lethe_optim *o, float *params, float *grads, float lr);

/* Parse "sgd" / "adamw". */
lethe_status lethe_optim_parse(const char *name, lethe_optim_kind *kind);

typedef enum lethe_sched_kind {
    LETHE_SCHED_CONSTANT,
    LETHE_SCHED_STEP,   /* lr * gamma^(floor(step / step_size)) */
    LETHE_SCHED_COSINE  /* linear warm-up, then cosine from lr to min_lr */
} lethe_sched_kind;

typedef struct lethe_sched {
    lethe_sched_kind kind;
    float lr;
    long total;      /* steps in the run */
    long warmup;     /* cosine: warm-up steps */
    float min_lr;    /* cosine: final rate */
    long step_size;  /* step: steps between decays */
    float gamma;     /* step: decay factor */
} lethe_sched;

/* The learning rate at step t (0-based). */
float lethe_sched_lr(const lethe_sched *s, long t);
/* Parse "constant", "step", "cosine". */
lethe_status lethe_sched_parse(const char *name, lethe_sched_kind *kind);

/* The L2 norm of g (accumulated in double). */
double lethe_grad_norm(const float *g, long n);
/* If ||g|| > max_norm, scale g by max_norm / (||g|| + 1e-6), as PyTorch's
 * clip_grad_norm_; returns the norm before clipping. */
double lethe_grad_clip(float *g, long n, double max_norm);

LETHE_API_END
#endif
