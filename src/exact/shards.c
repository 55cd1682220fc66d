/* Shard and slice assignment and ledger replay, shared by SISA and S3T. */
#include "shards.h"

#include "lethe/rng.h"

#include <stdio.h>

#define STREAM_SHARD 0x5a4dull
#define STREAM_SLICE 0x511cull

void ex_assign(const lethe_dataset *ds, uint64_t seed, int shards, int slices, int *shard_of,
               int *slice_of)
{
    for (long i = 0; i < ds->n; i++) {
        uint64_t id = ds->ids[i];
        shard_of[i] = (int)(lethe_id_uniform(seed, STREAM_SHARD, id) * shards);
        slice_of[i] = (int)(lethe_id_uniform(seed, STREAM_SLICE, id) * slices);
    }
}

lethe_status ex_mark_ids(const lethe_dataset *ds, const char *task, const uint64_t *ids, long n,
                         char *mark, const char *where)
{
    for (long k = 0; k < n; k++) {
        long r = lethe_dataset_find(ds, ids[k]);
        if (r < 0)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: id %llu is not in %s", where,
                              (unsigned long long)ids[k], task);
        mark[r] = 1;
    }
    return LETHE_OK;
}

lethe_status ex_replay(const char *path, const lethe_dataset *ds, const char *task,
                       char *deleted, lethe_ledger **out)
{
    lethe_status st = lethe_ledger_open(path, out);
    for (long q = 0; st == LETHE_OK && q < (*out)->n_req; q++) {
        char where[4300];
        snprintf(where, sizeof where, "%s: request %ld", path, q + 1);
        st = ex_mark_ids(ds, task, (*out)->req[q].ids, (*out)->req[q].n_ids, deleted, where);
    }
    return st;
}

lethe_status ex_lock(const char *dir, const lethe_dataset *ds, const char *task, char *deleted,
                     lethe_ledger **led, lethe_runlock **lock)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ledger.log", dir);
    lethe_ledger *fresh = NULL;
    lethe_status st = lethe_runlock_acquire(dir, 1, lock);
    if (st == LETHE_OK)
        st = ex_replay(path, ds, task, deleted, &fresh);
    if (st != LETHE_OK) {
        lethe_ledger_free(fresh);
        lethe_runlock_release(*lock);
        *lock = NULL;
        return st;
    }
    lethe_ledger_free(*led);
    *led = fresh;
    return LETHE_OK;
}
