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
 * ledger.log; the configuration, requests and prediction are the sharded
 * ensemble's (lethe/ensemble.h). lethe_sisa_sync first trains what the
 * requests recorded so far call for without the directory's lock (so that
 * requests are recorded meanwhile), then takes the lock (lethe/runlock.h),
 * replays the ledger again under it, trains what requests recorded
 * meanwhile call for, and writes the state.
 *
 * Over MPI (lethe/mpi.h), rank 0 holds the directory and runs the command;
 * the other ranks run lethe_sisa_worker. In lethe_sisa_sync, rank 0 hands
 * the shards that need training to the ranks (itself included), heaviest
 * first, each to the rank with the least work so far; it sends each rank
 * the configuration, the deleted rows and the checkpoint a shard resumes
 * from, and the ranks send back the bytes of every checkpoint they train,
 * which rank 0 writes (atomically) as it arrives. The directory then
 * holds exactly what one process writes: the same checkpoints, state and
 * ledger. Ranks need no shared filesystem, only the same task data. A
 * directory being created is kept from the start of such a sync, so a rank
 * that dies leaves the checkpoints finished so far, and the next sync of
 * the directory (lethe_sisa_resume) reuses them. */
#ifndef LETHE_SISA_H
#define LETHE_SISA_H

#include <stdint.h>
#include <stdio.h>

#include "lethe/ensemble.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* The defaults of a SISA ensemble (lethe sisa train). */
enum { LETHE_SISA_SHARDS = 4, LETHE_SISA_SLICES = 1 };

typedef struct lethe_sisa {
    lethe_ensemble e;          /* aggregate: vote or mean; model: each shard's last
                                  slice ("" when every sample of it is deleted) */
    long trained_slices;       /* slices trained by the last sync (0: all reused) */
    FILE *notes;               /* where a sync over several ranks says which rank trains
                                  which shards (NULL: nowhere) */
} lethe_sisa;

/* Start a SISA directory for the recipe. dir is created by the rule of
 * lethe_rundir_begin (lethe/rundir.h): an existing, non-empty one is
 * refused unless force (an ensemble in it is then replaced), dir may not
 * be, hold or lie in the task's file, and it stays locked, and is removed
 * by lethe_sisa_free (or a signal), until the first lethe_sisa_sync
 * completes. excluded names training rows never to use; exclude, when not
 * NULL, is the split they were selected by (lethe_split_select, lethe/task.h),
 * and a file it reads is an input too, which dir may not be, hold or lie in. */
lethe_status lethe_sisa_create(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, const char *exclude, int force,
                               lethe_sisa **out);
/* As lethe_sisa_create without force, but a directory that already holds
 * a SISA ensemble created with exactly these settings (and excluded ids) is
 * opened instead, to finish a training that was interrupted: its
 * checkpoints are reused by the next sync. One created with other settings
 * is LETHE_ERR_INVALID. */
lethe_status lethe_sisa_resume(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, const char *exclude,
                               lethe_sisa **out);
/* Open an existing directory, replaying its ledger. */
lethe_status lethe_sisa_open(const char *dir, lethe_sisa **out);
void lethe_sisa_free(lethe_sisa *s); /* NULL is a no-op */

/* Bring every shard up to date with the deletions (excluded and every
 * ledger request), train what is missing, write state.json, remove stale
 * checkpoints and mark pending requests applied. Idempotent. The shards
 * serve models (lethe_ensemble_predict on &s->e) from the first sync on. */
lethe_status lethe_sisa_sync(lethe_sisa *s);

/* Point s->e.model at the checkpoints that the last lethe_sisa_sync left in
 * state.json, checked as sync checks them (a missing or damaged file is
 * LETHE_ERR_FORMAT), without training anything: a shard that holds an id
 * of a pending request, or no sample, serves nothing ("") until the next
 * sync. A directory never synced is LETHE_ERR_NOT_FOUND. */
lethe_status lethe_sisa_served(lethe_sisa *s);

/* On a rank other than 0: train what rank 0's syncs hand over, until rank
 * 0 calls lethe_sisa_workers_stop. A failure of the work handed over is
 * sent to rank 0, which reports it (naming this rank and the shard) and
 * fails its sync; this returns LETHE_OK then, and an error only when the
 * messages themselves fail. */
lethe_status lethe_sisa_worker(void);
/* On rank 0, once its command is done: release the other ranks. A no-op
 * outside MPI. */
void lethe_sisa_workers_stop(void);

LETHE_API_END
#endif
