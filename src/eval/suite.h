/* Building blocks the classification and regression suites share (internal
 * to src/eval; defined in suite.c). */
#ifndef LETHE_EVAL_SUITE_H
#define LETHE_EVAL_SUITE_H

#include "lethe/eval.h"
#include "lethe/train.h"

/* The mean of v[0..n); NaN when n is 0. */
double eval_mean(const double *v, long n);

/* Start a suite: zero its result (size bytes at result), note the start
 * time in *t0, and check its inputs: train and test sets of the suite's task
 * with matching shapes, non-empty forget, retain and test sets, and nets
 * (oracle, original may be NULL) that fit the data. */
lethe_status eval_start(void *result, size_t size, double *t0, lethe_task task,
                        const lethe_dataset *train, const lethe_dataset *test,
                        const lethe_rows *forget, const lethe_rows *retain,
                        const lethe_net *model, const lethe_net *oracle,
                        const lethe_net *original);

/* Relearning: fine-tune a copy of a net (Adam, no weight decay, dropout on)
 * on rows of a data set in a keyed order, and count optimizer steps until
 * `done` says the target is reached, asked after every step (and before the
 * first unless first_step is set). */
typedef struct eval_relearn {
    const lethe_dataset *ds;
    const lethe_rows *rows;
    lethe_loss loss;
    float lr;
    int batch;
    int epochs;               /* at most this many epochs */
    long max_steps;           /* and at most this many steps */
    int first_step;           /* take one step before the first check */
    uint64_t seed, dropout_stream;
    /* *reached = 1 when the copy has reached the target */
    lethe_status (*done)(lethe_net *copy, void *user, int *reached);
    void *user;
    lethe_progress *progress; /* NULL, or updated (its count kept) after every step */
} eval_relearn;

lethe_status eval_relearn_run(lethe_net *net, const eval_relearn *r, long *steps, int *reached);

/* A suite's progress over its stages (p may be NULL): begin sets the
 * total, stage_done counts one more. */
void eval_progress_begin(lethe_progress *p, int stages);
void eval_stage_done(lethe_progress *p);

/* Allocate n elements (at least one) for p, or fail the suite: sets st and
 * jumps to done. */
#define EVAL_ALLOC(p, n)                                                           \
    do {                                                                           \
        long n_ = (n);                                                             \
        if (!((p) = malloc(sizeof *(p) * (size_t)(n_ > 0 ? n_ : 1)))) {            \
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld samples", n_); \
            goto done;                                                             \
        }                                                                          \
    } while (0)

/* free() each of the n pointers. */
void eval_free_each(void **p, size_t n);

/* Copy the n metrics of list into m (room for LETHE_EVAL_MAX_METRICS);
 * returns n. */
int eval_metrics_copy(lethe_eval_metric *m, const lethe_eval_metric *list, size_t n);
/* A step count as a metric value: NaN when not measured (negative). */
double eval_steps(long steps);

#endif
