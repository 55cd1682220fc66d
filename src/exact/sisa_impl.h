/* Shared by sisa.c (one process) and sisa_ranks.c (several ranks); not
 * installed. */
#ifndef LETHE_SISA_IMPL_H
#define LETHE_SISA_IMPL_H

#include "lethe/sisa.h"

/* Called with each checkpoint sisa_sync_shard saves (a rank sends it on). */
typedef lethe_status (*sisa_saved_fn)(void *ctx, int shard, int slice, const char *key,
                                      const char *path);

/* The checkpoint and sha256 that state.json records for each shard, into
 * was[2k] and was[2k + 1] ("" when there is no state.json yet). */
lethe_status sisa_read_state(const lethe_sisa *s, char (*was)[65]);
/* The key of shard's slice r into key, which holds the key of slice r - 1
 * (the root for r = 0), the slice's cumulative rows (ascending) into cum;
 * returns the slice's optimizer steps. */
long sisa_slice_key(const lethe_sisa *s, int shard, int r, char key[65], lethe_rows *cum);
/* Train (or reuse) shard's slices; chain[r] receives each slice's key.
 * was_key and was_sha: what state.json says the shard served. Slices below
 * `known` are taken to exist; saved, when not NULL, is called with every
 * checkpoint saved. */
lethe_status sisa_sync_shard(lethe_sisa *s, int shard, char (*chain)[65], const char *was_key,
                             const char *was_sha, int known, sisa_saved_fn saved, void *ctx);
/* Rank 0's half of a sync over several ranks: plan, hand out, train its own
 * shards, write what the others send (sisa_ranks.c). */
lethe_status sisa_train_ranks(lethe_sisa *s, char (*chains)[65], char (*was)[65]);

#endif
