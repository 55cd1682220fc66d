/* The sharded, sliced ensemble that SISA (lethe/sisa.h) and S3T
 * (lethe/s3t.h) share: the configuration, the keyed shard and slice of every
 * training sample, the ids excluded at creation, deletion requests through
 * the directory's ledger, and prediction by the shards' aggregate.
 *
 * A directory holds KIND.json (KIND is "sisa" or "s3t": the configuration,
 * common keys first), ckpt/KEY.safetensors, state.json and ledger.log
 * (lethe/ledger.h). Writers hold the directory's lock (lethe/runlock.h) and
 * replay the ledger again under it, so handles in other threads or
 * processes never overwrite or miss each other's requests. */
#ifndef LETHE_ENSEMBLE_H
#define LETHE_ENSEMBLE_H

#include "lethe/rundir.h"
#include <stddef.h>
#include <stdint.h>

#include "lethe/dataset.h"
#include "lethe/ledger.h"
#include "lethe/task.h"
#include "lethe/train.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_aggregate {
    LETHE_AGG_VOTE,   /* classifiers: count each shard's top class */
    LETHE_AGG_MEAN,   /* classifiers: mean of the shards' probabilities */
    LETHE_AGG_LOGITS  /* mean of the shards' logits */
} lethe_aggregate;    /* regressors always average the predictions */

typedef struct lethe_ensemble {
    char dir[4096];
    const char *kind;          /* "sisa" or "s3t" */
    char task[64];
    lethe_task_opts opts;
    char spec[512];
    lethe_train_cfg cfg;       /* per-step settings; steps come from the budget */
    int shards, slices;
    uint64_t seed;
    lethe_aggregate aggregate;
    lethe_dataset *train, *test;
    int *shard_of, *slice_of;  /* per training row */
    char *excluded;            /* per training row: left out at creation */
    char *deleted;             /* per training row: named by a ledger request */
    long n_excluded;
    lethe_ledger *ledger;
    char (*model)[65];         /* per shard: the key of the checkpoint it serves;
                                  "" when it has none */
    const char *why_dead;      /* why a shard has no model, and why none has */
    const char *why_none;
    lethe_rundir *rd;          /* a directory being created (lethe/rundir.h):
                                  locked, and removed unless the first sync or
                                  train completes */
} lethe_ensemble;

/* Check ids and record a deletion request, durably, under the directory's
 * lock. Ids excluded at creation or named by an earlier request are
 * LETHE_ERR_INVALID and nothing is recorded. */
lethe_status lethe_ensemble_request(lethe_ensemble *e, const lethe_rows *rows, long *req_id);

/* Training samples of shard that are neither excluded nor deleted. */
long lethe_ensemble_samples(const lethe_ensemble *e, int shard);

/* Shards that serve a model. */
int lethe_ensemble_live(const lethe_ensemble *e);

/* Outputs per sample of the ensemble's models (classes or targets). */
long lethe_ensemble_outputs(const lethe_ensemble *e);

/* Outputs for rows of ds (NULL: all) into out (n, outputs): shard >= 0
 * gives that shard's logits (or predictions); -1 the aggregate of the
 * shards that serve a model. A shard without a model, or the aggregate when
 * no shard has one, is LETHE_ERR_FAILED saying why. */
lethe_status lethe_ensemble_predict(const lethe_ensemble *e, int shard, const lethe_dataset *ds,
                                    const lethe_rows *rows, float *out);

/* The path of checkpoint `key` into buf. */
void lethe_ensemble_ckpt_path(const lethe_ensemble *e, const char *key, char *buf, size_t cap);

/* The path of the model shard k serves into buf ("" when it has none). */
void lethe_ensemble_model_path(const lethe_ensemble *e, int shard, char *buf, size_t cap);

/* ---- what an ensemble trains on ------------------------------------------ */

/* A task, its default recipe (lethe_recipe_default) with the given
 * overrides, and the rows left out. */
typedef struct lethe_ensemble_recipe_cfg {
    const char *data;    /* the task */
    long limit;          /* > 0: its first `limit` training samples only */
    const char *model;   /* mlp or cnn; NULL: the task's default (a linear default is
                            refused: shards of a linear model are not what this is for) */
    const char *widths;  /* mlp hidden widths, e.g. "64-64"; NULL: the recipe's */
    long epochs, batch;  /* <= 0: the recipe's */
    double lr;           /* <= 0: the recipe's */
    const char *exclude; /* a split to train without (lethe_split_select, seed 0); NULL */
} lethe_ensemble_recipe_cfg;

typedef struct lethe_ensemble_recipe {
    lethe_task_opts opts;
    lethe_dataset *train, *test;
    lethe_rows excl;     /* the excluded rows (empty without a split) */
    lethe_train_cfg cfg; /* per-step settings */
    char spec[512];      /* the network */
} lethe_ensemble_recipe;

/* Load c's task and resolve its recipe into r (free with
 * lethe_ensemble_recipe_free, also after a failure). LETHE_ERR_INVALID (a
 * linear model, widths for another model than an mlp), the task's and the
 * split's errors. */
lethe_status lethe_ensemble_recipe_load(const lethe_ensemble_recipe_cfg *c,
                                        lethe_ensemble_recipe *r);
void lethe_ensemble_recipe_free(lethe_ensemble_recipe *r);

LETHE_API_END
#endif
