/* In-memory data sets for classifiers and regressors, and the row subsets
 * (splits) that training, unlearning and evaluation work on.
 *
 * Every sample has a stable 64-bit id; everything random about a sample
 * (its place in an epoch, its dropout masks, whether it is in a validation
 * or forget split) is keyed by that id (DESIGN §5). */
#ifndef LETHE_DATASET_H
#define LETHE_DATASET_H

#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_task { LETHE_TASK_CLASSIFY, LETHE_TASK_REGRESS } lethe_task;

typedef struct lethe_dataset {
    char name[64];
    lethe_task task;
    long n;          /* samples */
    int d;           /* features per sample; c * h * w == d */
    int c, h, w;     /* image shape, or (d, 1, 1) */
    int n_classes;   /* classify: labels are 0 .. n_classes - 1 */
    int n_targets;   /* regress: targets per sample */
    float *x;        /* (n, d) features */
    int32_t *y;      /* (n) labels, classify only */
    float *t;        /* (n, n_targets) targets, regress only */
    uint64_t *ids;   /* (n) stable ids, unique */
    /* regress: t holds (target - t_shift) / t_scale; metrics in the data's
     * units multiply errors by t_scale. Set to 0 and 1 by alloc. */
    double t_shift, t_scale;
} lethe_dataset;

/* An empty data set with room for n samples; NULL (detail set) on failure.
 * Free with lethe_dataset_free. */
lethe_dataset *lethe_dataset_alloc(const char *name, lethe_task task, long n, int d,
                                   int n_targets);
void lethe_dataset_free(lethe_dataset *ds); /* NULL is a no-op */

/* The row holding id, or -1. Linear scan unless ids are 0..n-1 in order. */
long lethe_dataset_find(const lethe_dataset *ds, uint64_t id);

/* A subset of rows of one data set, in ascending row order. */
typedef struct lethe_rows {
    long n;
    long *row; /* (n) */
} lethe_rows;

void lethe_rows_free(lethe_rows *r); /* frees r->row; safe on a zeroed struct */
/* All rows 0..n-1. */
lethe_status lethe_rows_all(lethe_rows *out, long n);
/* Rows of `from` not in `drop` (both ascending). */
lethe_status lethe_rows_minus(lethe_rows *out, const lethe_rows *from, const lethe_rows *drop);

/* A keyed uniform value in [0, 1) for sample id under (seed, stream): the
 * basis of random splits, so membership never depends on other samples. */
double lethe_id_uniform(uint64_t seed, uint64_t stream, uint64_t id);

LETHE_API_END
#endif
