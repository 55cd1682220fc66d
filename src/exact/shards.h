/* Pieces shared by SISA and S3T (internal to src/exact): the keyed shard and
 * slice of every sample, and the ledger replayed onto the training set. */
#ifndef LETHE_EXACT_SHARDS_H
#define LETHE_EXACT_SHARDS_H

#include "lethe/dataset.h"
#include "lethe/ledger.h"
#include "lethe/runlock.h"

/* shard_of[i] and slice_of[i] of every row of ds: uniform in [0, shards) and
 * [0, slices), keyed by (seed, the sample's id), so a sample's place never
 * depends on the other samples. */
void ex_assign(const lethe_dataset *ds, uint64_t seed, int shards, int slices, int *shard_of,
               int *slice_of);

/* mark[r] = 1 for the row of each of ids[0..n); an id not in ds is
 * LETHE_ERR_FORMAT naming `where` (the file that listed it). */
lethe_status ex_mark_ids(const lethe_dataset *ds, const char *task, const uint64_t *ids, long n,
                         char *mark, const char *where);

/* Open and replay the ledger at path, setting deleted[r] = 1 for every id
 * that any request names. */
lethe_status ex_replay(const char *path, const lethe_dataset *ds, const char *task,
                       char *deleted, lethe_ledger **out);

/* Take dir's lock (waiting for it) and replay dir/ledger.log again onto
 * deleted, replacing *led: requests that other writers recorded since *led
 * was read are then known. On failure nothing is held. */
lethe_status ex_lock(const char *dir, const lethe_dataset *ds, const char *task, char *deleted,
                     lethe_ledger **led, lethe_runlock **lock);

#endif
