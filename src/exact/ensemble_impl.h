/* The shared core of SISA and S3T (internal to src/exact): directories,
 * configuration, setup and keys. The public half is lethe/ensemble.h. */
#ifndef LETHE_EXACT_ENSEMBLE_IMPL_H
#define LETHE_EXACT_ENSEMBLE_IMPL_H

#include <cJSON.h>

#include "lethe/ensemble.h"
#include "lethe/runlock.h"

/* shard_of[i] and slice_of[i] of every row of ds: uniform in [0, shards) and
 * [0, slices), keyed by (seed, the sample's id), so a sample's place never
 * depends on the other samples. */
void ex_assign(const lethe_dataset *ds, uint64_t seed, int shards, int slices, int *shard_of,
               int *slice_of);

/* Take e's directory lock (waiting for it; *lock is NULL while e->rd
 * already holds it) and replay its ledger again onto e->deleted: requests
 * that other writers recorded since e->ledger was read are then known. On
 * failure nothing is held. */
lethe_status ex_lock(lethe_ensemble *e, lethe_runlock **lock);
/* The same replay without the lock: a reader's view of the requests (a
 * record being written is not seen yet). Nothing may be written on it. */
lethe_status ex_replay(lethe_ensemble *e);

/* A first sync or train completed: keep the directory being created, and
 * release its lock. */
void ex_keep(lethe_ensemble *e);

/* DIR/name into buf. */
void ex_path(const lethe_ensemble *e, const char *name, char *buf, size_t cap);

/* Optimizer steps for a step on n_cum samples: ceil(2E/(R+1) n_cum / batch). */
long ex_steps(const lethe_ensemble *e, long n_cum);

/* The root of shard's checkpoint chains: the sha256 of tag and every
 * setting that shapes training (the clip too when with_clip). */
void ex_root_key(const lethe_ensemble *e, const char *tag, int with_clip, int shard,
                 char key[65]);

/* Settings of a new directory (the data is not loaded). */
void ex_init(lethe_ensemble *e, const char *dir, const char *kind, const char *task,
             const lethe_task_opts *opts, const char *spec, const lethe_train_cfg *cfg,
             int shards, int slices, uint64_t seed);

/* Create e's directory by the rule of lethe_rundir_begin (an existing,
 * non-empty one refused unless force, where the ensemble files in it are
 * removed first; not the task's file nor the file the split exclude reads;
 * e->rd holds it locked until ex_keep, and ex_free removes it otherwise),
 * then ckpt/ and KIND.json: the common settings, the keys extra() adds
 * (self is its argument) and the excluded ids. */
lethe_status ex_create(lethe_ensemble *e, int force, const lethe_rows *excluded,
                       const char *exclude, void (*extra)(cJSON *j, const void *self),
                       const void *self);

/* Read the common settings of DIR/KIND.json into e; *j (to free) keeps the
 * file for the engine's own keys. The engine then calls ex_setup. */
lethe_status ex_open(lethe_ensemble *e, const char *dir, const char *kind, cJSON **j);
/* The same from a configuration j already parsed (path names it in
 * messages), with dir as e's directory. */
lethe_status ex_config(lethe_ensemble *e, const char *dir, const char *kind, const cJSON *j,
                       const char *path);

/* Load the data, place every sample, mark the excluded ids (from e's
 * configuration j) and replay the ledger. */
lethe_status ex_setup(lethe_ensemble *e, const cJSON *j);
/* ex_setup without the ledger: e->deleted stays all zero and e->ledger
 * NULL (a process that trains for another one and has no directory). */
lethe_status ex_place(lethe_ensemble *e, const cJSON *j);

/* Whether DIR/KIND.json is exactly what ex_create would write for e (set
 * by ex_init), `excluded`, extra() and self: LETHE_OK when it is,
 * LETHE_ERR_NOT_FOUND (no message) when there is no such file,
 * LETHE_ERR_INVALID when it differs. Loads e's data when not loaded. */
lethe_status ex_matches(lethe_ensemble *e, const lethe_rows *excluded,
                        void (*extra)(cJSON *j, const void *self), const void *self);

/* After ex_create: hand e's directory under creation to the engine opened
 * on it, out (NULL when opening failed: it is then removed). */
void ex_handover(lethe_ensemble *e, lethe_ensemble *out);

/* Add one shard's outputs p (n, no) to the aggregate o (n, no, zeroed
 * before the first shard) of `live` shards, as lethe_ensemble_predict does
 * (shards in ascending order). */
void ex_aggregate(const lethe_ensemble *e, const float *p, float *o, long n, long no, int live);

void ex_free(lethe_ensemble *e); /* frees what e owns, not e */

#endif
