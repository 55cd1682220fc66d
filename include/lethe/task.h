/* Learning tasks: a registered data set turned into train and test
 * lethe_datasets ready for a model, and the row subsets (splits) that
 * --exclude and --forget name.
 *
 * Features are standardised with the mean and standard deviation of the
 * training rows only (images are scaled to [0, 1] instead); regression
 * targets likewise, with the shift and scale kept on the data set so metrics
 * are reported in the data's own units. Sample ids are stable: the row's
 * index in the source (Fashion-MNIST: train 0..59999, test 60000..69999;
 * US births: the index of the predicted day). Tabular sets without a test
 * split hold out a fixed 20% chosen by a keyed hash of the id (seed 0, so
 * the test set is part of the task, not of the run). */
#ifndef LETHE_TASK_H
#define LETHE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/dataset.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_task_info {
    const char *name;          /* "fashion-mnist", "digits", "boston", ... */
    const char *data;          /* the registry entry it reads (lethe/data.h) */
    lethe_task task;
    const char *description;   /* one line */
    const char *default_model; /* "mlp", "cnn" or "linear" */
} lethe_task_info;

size_t lethe_tasks_count(void);
const lethe_task_info *lethe_tasks_at(size_t i);
/* LETHE_ERR_NOT_FOUND with the known names as a hint. */
lethe_status lethe_task_find(const char *name, const lethe_task_info **out);

typedef struct lethe_task_opts {
    long limit;  /* keep the first `limit` training samples; 0: all */
    int window;  /* us-births: days of history per sample; 0: default 14 */
} lethe_task_opts;

/* Load task `name` (data not installed: LETHE_ERR_NOT_FOUND naming the
 * package and `lethe data install NAME`). The caller frees both with
 * lethe_dataset_free. opts may be NULL for the defaults. */
lethe_status lethe_task_load(const char *name, const lethe_task_opts *opts,
                             lethe_dataset **train, lethe_dataset **test);

/* Rows of ds selected by spec:
 *   random:F        each sample with probability F, by a keyed hash of its
 *                   id under (seed, forget stream)
 *   class:K[,K...]  every sample of the listed classes (classifiers)
 *   range:LO:HI     targets in [LO, HI), in the data's units (regressors)
 *   ids:FILE        the ids in FILE, one per line ('#' comments allowed)
 * A FILE that is not among these forms is read as ids:FILE. An unknown id,
 * a class out of range or an empty selection is LETHE_ERR_INVALID naming
 * the problem; an unreadable file LETHE_ERR_IO. out is ascending. */
lethe_status lethe_split_select(const lethe_dataset *ds, const char *spec, uint64_t seed,
                                lethe_rows *out);
/* The file spec reads (FILE of ids:FILE, or spec itself when it is none of
 * the other forms), or NULL for random:, class:, range: and a NULL spec. */
const char *lethe_split_file(const char *spec);

/* A hash of the ids in rows (or of every id and value in ds when rows is
 * NULL), as 16 hex digits into buf[17]: provenance for model files. */
void lethe_rows_hash(const lethe_dataset *ds, const lethe_rows *rows, char buf[17]);

LETHE_API_END
#endif
