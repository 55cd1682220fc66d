/* SISA: sharded, isolated, sliced, aggregated training (Bourtoule et al.
 * 2021), with exact deletion.
 *
 * Each training sample goes to a shard and a slice by a keyed hash of its
 * id, so deleting samples never moves another one. Shard s trains slice by
 * slice on cumulative data, from the previous slice's checkpoint, for a
 * budget of optimizer steps: slice r gets ceil(2E/(R+1) * n_r / batch)
 * steps, where n_r counts the samples of slices 0..r, so the whole shard
 * sees about E epochs. Checkpoints are content-addressed: the key of slice r
 * hashes the key of slice r-1 with the ids of slice r and its budget, so a
 * prefix that holds no deleted sample keeps its key and is reused, and
 * deletion retrains each affected shard from its first affected slice.
 * Checkpoints that were trained on deleted samples are removed. A served
 * checkpoint that is missing or differs from the sha256 in state.json is
 * reported as damage (LETHE_ERR_FORMAT), never silently retrained.
 *
 * A directory holds sisa.json (the configuration), ckpt/KEY.safetensors,
 * state.json (each shard's current checkpoint and its sha256) and
 * ledger.log (lethe/ledger.h).
 *
 * Writers take the directory's lock (lethe/runlock.h): lethe_sisa_request
 * and lethe_sisa_sync each hold it for their duration and first replay the
 * ledger again, so handles in other threads or processes never overwrite or
 * miss each other's requests. */
#ifndef LETHE_SISA_H
#define LETHE_SISA_H

#include <cJSON.h>
#include <stdint.h>

#include "lethe/dataset.h"
#include "lethe/ledger.h"
#include "lethe/recipe.h"
#include "lethe/task.h"

typedef enum lethe_aggregate { LETHE_AGG_VOTE, LETHE_AGG_MEAN } lethe_aggregate;

typedef struct lethe_sisa {
    char dir[4096];
    char task[64];
    lethe_task_opts opts;
    char spec[512];
    lethe_train_cfg cfg;       /* per-slice settings; steps come from the budget */
    int shards, slices;
    uint64_t seed;
    lethe_aggregate aggregate;
    lethe_dataset *train, *test;
    int *shard_of, *slice_of;  /* per training row */
    char *deleted;             /* per training row: excluded or requested */
    long n_excluded;           /* deleted at creation (--exclude) */
    lethe_ledger *ledger;
    char (*current)[65];       /* per shard: the key of its last slice */
    long trained_slices;       /* slices trained by the last sync (0: all reused) */
} lethe_sisa;

/* Start a SISA directory for the recipe (dir is created; an existing
 * sisa.json is an error). excluded names training rows never to use. */
lethe_status lethe_sisa_create(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, lethe_sisa **out);
/* Open an existing directory, replaying its ledger. */
lethe_status lethe_sisa_open(const char *dir, lethe_sisa **out);
void lethe_sisa_free(lethe_sisa *s); /* NULL is a no-op */

/* Bring every shard up to date with the deletions (excluded and every
 * ledger request), train what is missing, write state.json, remove stale
 * checkpoints and mark pending requests applied. Idempotent. */
lethe_status lethe_sisa_sync(lethe_sisa *s);

/* Check ids and record a deletion request (durable when this returns).
 * Ids not in the training set, or already deleted, are LETHE_ERR_INVALID
 * and nothing is recorded. */
lethe_status lethe_sisa_request(lethe_sisa *s, const lethe_rows *rows, long *req_id);

/* Training samples of shard that are not deleted. */
long lethe_sisa_samples(const lethe_sisa *s, int shard);

/* Outputs for rows of ds (NULL: all): shard >= 0 gives that shard's logits
 * (or predictions); -1 the aggregate over the shards that still hold a
 * sample: vote counts (classifiers, vote), mean probabilities (classifiers,
 * mean) or mean predictions (regressors). out holds (n, n_out). A shard
 * whose every sample is deleted has no model: naming it, or asking for the
 * aggregate when every sample is deleted, is LETHE_ERR_FAILED. */
lethe_status lethe_sisa_predict(lethe_sisa *s, int shard, const lethe_dataset *ds,
                                const lethe_rows *rows, float *out);

/* The path of shard s's current model file into buf. */
void lethe_sisa_model_path(const lethe_sisa *s, int shard, char *buf, size_t cap);

#endif
