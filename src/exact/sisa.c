/* SISA training and exact deletion over content-addressed checkpoints. */
#include "lethe/sisa.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/mpi.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"
#include "ensemble_impl.h"
#include "sisa_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STREAM_TRAIN 0x7a1aull

void lethe_sisa_free(lethe_sisa *s)
{
    if (!s)
        return;
    ex_free(&s->e);
    free(s);
}

static void aggregate_name(cJSON *j, const void *self)
{
    const lethe_sisa *s = self;
    cJSON_AddStringToObject(j, "aggregate", s->e.aggregate == LETHE_AGG_VOTE ? "vote" : "mean");
}

lethe_status lethe_sisa_create(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, const char *exclude, int force,
                               lethe_sisa **out)
{
    *out = NULL;
    if (shards < 1 || shards > 1024 || slices < 1 || slices > 256)
        return lethe_fail(LETHE_ERR_INVALID, "shards must be 1-1024 and slices 1-256");
    if (agg == LETHE_AGG_LOGITS)
        return lethe_fail(LETHE_ERR_INVALID, "SISA aggregates by vote or mean");
    lethe_sisa *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_init(&s->e, dir, "sisa", task, opts, spec, cfg, shards, slices, seed);
    s->e.aggregate = agg;
    lethe_status st = ex_create(&s->e, force, excluded, exclude, aggregate_name, s);
    if (st == LETHE_OK)
        st = lethe_sisa_open(dir, out);
    ex_handover(&s->e, *out ? &(*out)->e : NULL);
    lethe_sisa_free(s);
    return st;
}

lethe_status lethe_sisa_resume(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, const char *exclude,
                               lethe_sisa **out)
{
    *out = NULL;
    if (shards < 1 || shards > 1024 || slices < 1 || slices > 256)
        return lethe_fail(LETHE_ERR_INVALID, "shards must be 1-1024 and slices 1-256");
    lethe_sisa *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_init(&s->e, dir, "sisa", task, opts, spec, cfg, shards, slices, seed);
    s->e.aggregate = agg;
    lethe_status st = ex_matches(&s->e, excluded, aggregate_name, s);
    lethe_sisa_free(s);
    if (st == LETHE_ERR_NOT_FOUND)
        return lethe_sisa_create(dir, task, opts, spec, cfg, shards, slices, seed, agg,
                                 excluded, exclude, 0, out);
    return st == LETHE_OK ? lethe_sisa_open(dir, out) : st;
}

lethe_status lethe_sisa_open(const char *dir, lethe_sisa **out)
{
    *out = NULL;
    lethe_sisa *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    cJSON *j = NULL;
    const char *agg = NULL;
    char path[4200];
    lethe_status st = ex_open(&s->e, dir, "sisa", &j);
    ex_path(&s->e, "sisa.json", path, sizeof path);
    if (st == LETHE_OK)
        st = lethe_json_get_string(j, "aggregate", path, &agg);
    if (st == LETHE_OK) {
        s->e.aggregate = strcmp(agg, "mean") ? LETHE_AGG_VOTE : LETHE_AGG_MEAN;
        s->e.why_dead = "every one of its training samples has been deleted";
        s->e.why_none = "every training sample has been deleted";
        st = ex_setup(&s->e, j);
    }
    cJSON_Delete(j);
    if (st != LETHE_OK) {
        lethe_sisa_free(s);
        return st;
    }
    *out = s;
    return LETHE_OK;
}

/* The checkpoint and sha256 that state.json records for each shard, into
 * was[2k] and was[2k + 1] ("" when there is no state.json yet). */
lethe_status sisa_read_state(const lethe_sisa *s, char (*was)[65])
{
    char path[4200];
    struct stat sb;
    ex_path(&s->e, "state.json", path, sizeof path);
    if (stat(path, &sb) != 0)
        return LETHE_OK;
    cJSON *j = NULL;
    const cJSON *arr = NULL, *o;
    lethe_status st = lethe_json_read(path, &j);
    if (st == LETHE_OK)
        st = lethe_json_get_array(j, "shards", path, &arr);
    if (st != LETHE_OK)
        arr = NULL;
    cJSON_ArrayForEach(o, arr)
    {
        const char *key = cJSON_GetStringValue(cJSON_GetObjectItem(o, "checkpoint"));
        const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(o, "sha256"));
        double k = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "shard"));
        if (!key || !sha || strlen(key) != 64 || strlen(sha) != 64 || !(k >= 0) ||
            k >= s->e.shards || k != (int)k) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: a shard entry is damaged", path);
            break;
        }
        memcpy(was[2 * (int)k], key, 65);
        memcpy(was[2 * (int)k + 1], sha, 65);
    }
    cJSON_Delete(j);
    return st;
}

/* A checkpoint that state.json lists for the shard must be there, intact:
 * it is what the shard served, and the key says nothing changed since. */
static lethe_status check_served(int shard, const char *path, const char *want_sha)
{
    char hex[65];
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: the checkpoint of shard %d that state.json "
                          "lists is missing; the directory is damaged (restore the file, or "
                          "remove state.json to retrain it)", path, shard);
    lethe_status st = lethe_sha256_file(path, hex);
    if (st == LETHE_OK && strcmp(hex, want_sha))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the checkpoint of shard %d is damaged (its "
                        "sha256 is not the one state.json records); restore the file, or "
                        "remove it and state.json to retrain it", path, shard);
    return st;
}

lethe_status lethe_sisa_served(lethe_sisa *s)
{
    lethe_ensemble *e = &s->e;
    char path[4200];
    struct stat sb;
    ex_path(e, "state.json", path, sizeof path);
    if (stat(path, &sb) != 0)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no state.json: the ensemble was never "
                          "trained", e->dir);
    char (*was)[65] = calloc(2 * (size_t)e->shards, 65);
    char *stale = calloc((size_t)e->shards, 1);
    lethe_status st = was && stale ? sisa_read_state(s, was)
                                   : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long q = 0; st == LETHE_OK && q < e->ledger->n_req; q++) {
        const lethe_request *r = &e->ledger->req[q];
        for (long i = 0; r->state == LETHE_REQ_RECEIVED && i < r->n_ids; i++) {
            long row = lethe_dataset_find(e->train, r->ids[i]);
            if (row >= 0)
                stale[e->shard_of[row]] = 1;
        }
    }
    for (int k = 0; k < e->shards && st == LETHE_OK; k++) {
        e->model[k][0] = 0;
        if (stale[k] || !was[2 * k][0] || lethe_ensemble_samples(e, k) == 0)
            continue;
        lethe_ensemble_ckpt_path(e, was[2 * k], path, sizeof path);
        if ((st = check_served(k, path, was[2 * k + 1])) == LETHE_OK)
            memcpy(e->model[k], was[2 * k], 65);
    }
    free(was);
    free(stale);
    return st;
}

/* The key of shard's slice r into key, which holds the key of slice r - 1
 * (the root for r = 0), the slice's cumulative rows (ascending) into cum;
 * returns the slice's optimizer steps. */
long sisa_slice_key(const lethe_sisa *s, int shard, int r, char key[65], lethe_rows *cum)
{
    const lethe_dataset *ds = s->e.train;
    lethe_sha256 h;
    lethe_sha256_init(&h);
    lethe_sha256_update(&h, key, 64);
    cum->n = 0;
    for (long i = 0; i < ds->n; i++)
        if (s->e.shard_of[i] == shard && s->e.slice_of[i] <= r && !s->e.excluded[i] &&
            !s->e.deleted[i]) {
            cum->row[cum->n++] = i;
            if (s->e.slice_of[i] == r)
                lethe_sha256_update(&h, &ds->ids[i], sizeof(uint64_t));
        }
    long steps = ex_steps(&s->e, cum->n);
    lethe_sha256_update(&h, &steps, sizeof steps);
    lethe_sha256_final(&h, key);
    return steps;
}

/* Train (or reuse) shard s's slices; chain[r] receives each slice's key.
 * was_key and was_sha: what state.json says the shard served. Slices below
 * `known` are taken to exist (a rank training for rank 0 holds only the
 * last of them); saved, when not NULL, is called with every checkpoint
 * saved. */
lethe_status sisa_sync_shard(lethe_sisa *s, int shard, char (*chain)[65], const char *was_key,
                               const char *was_sha, int known, sisa_saved_fn saved, void *ctx)
{
    const lethe_dataset *ds = s->e.train;
    lethe_rows cum = {0, malloc(sizeof(long) * (size_t)(ds->n + 1))};
    lethe_net *net = NULL;
    const char *prev = NULL;
    char prev_path[4200], path[4200], key[65];
    lethe_status st = cum.row ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_root_key(&s->e, "lethe-sisa-1", 0, shard, key);
    for (int r = 0; r < s->e.slices && st == LETHE_OK; r++) {
        long steps = sisa_slice_key(s, shard, r, key, &cum);
        memcpy(chain[r], key, 65);
        lethe_ensemble_ckpt_path(&s->e, key, path, sizeof path);
        struct stat sb;
        if (r == s->e.slices - 1 && !strcmp(key, was_key) &&
            (st = check_served(shard, path, was_sha)) != LETHE_OK)
            break;
        if (r < known || stat(path, &sb) == 0) { /* trained before on exactly this prefix */
            snprintf(prev_path, sizeof prev_path, "%s", path);
            prev = prev_path;
            continue;
        }
        if (!net) {
            if (!(net = lethe_net_init(s->e.spec))) {
                st = LETHE_ERR_INVALID;
                break;
            }
            if (prev)
                st = lethe_net_load_params(net, prev);
            else
                lethe_net_init_params(net,
                                      lethe_rng_hash(s->e.seed, STREAM_TRAIN, (uint64_t)shard));
        }
        if (st == LETHE_OK && steps > 0) {
            lethe_train_cfg cfg = s->e.cfg;
            cfg.steps = steps;
            cfg.sched = LETHE_SCHED_CONSTANT;
            cfg.val_frac = 0, cfg.patience = 0, cfg.quiet = 1;
            cfg.seed = lethe_rng_hash(s->e.seed, STREAM_TRAIN + 1 + (uint64_t)shard, (uint64_t)r);
            lethe_train_result res;
            st = lethe_train(net, ds, &cum, &cfg, NULL, &res);
        }
        char sh[16], sl[16], n[24];
        snprintf(sh, sizeof sh, "%d", shard);
        snprintf(sl, sizeof sl, "%d", r);
        snprintf(n, sizeof n, "%ld", cum.n);
        const char *meta[] = {"kind", "sisa", "key", key, "shard", sh, "slice", sl,
                              "samples", n};
        if (st == LETHE_OK)
            st = lethe_net_save(net, path, meta, 5);
        if (st == LETHE_OK && saved)
            st = saved(ctx, shard, r, key, path);
        if (st == LETHE_OK) {
            s->trained_slices++;
            snprintf(prev_path, sizeof prev_path, "%s", path);
            prev = prev_path;
        }
    }
    lethe_net_free(net);
    free(cum.row);
    return st;
}

/* Remove checkpoints that no current chain uses: they were trained on
 * samples that have since been deleted. */
static lethe_status prune(const lethe_sisa *s, char (*chains)[65])
{
    char dir[4200], path[4500];
    ex_path(&s->e, "ckpt", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return lethe_fail(LETHE_ERR_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    long total = (long)s->e.shards * s->e.slices;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 64 + 12 || strcmp(e->d_name + 64, ".safetensors"))
            continue;
        int used = 0;
        for (long i = 0; i < total && !used; i++)
            used = !strncmp(chains[i], e->d_name, 64);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!used && unlink(path) != 0) {
            closedir(d);
            return lethe_fail(LETHE_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        }
    }
    closedir(d);
    return LETHE_OK;
}

/* state.json: each shard's last checkpoint, its sha256 and its samples;
 * the shards that hold a sample serve it. */
static lethe_status write_state(lethe_sisa *s, char (*chains)[65])
{
    lethe_ensemble *e = &s->e;
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "shards");
    char path[4200], hex[65];
    lethe_status st = arr ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; k < e->shards && st == LETHE_OK; k++) {
        const char *key = chains[(size_t)k * (size_t)e->slices + (size_t)e->slices - 1];
        long n = lethe_ensemble_samples(e, k);
        lethe_ensemble_ckpt_path(e, key, path, sizeof path);
        if ((st = lethe_sha256_file(path, hex)) != LETHE_OK)
            break;
        snprintf(e->model[k], sizeof e->model[k], "%s", n ? key : "");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "shard", k);
        cJSON_AddStringToObject(o, "checkpoint", key);
        cJSON_AddStringToObject(o, "sha256", hex);
        cJSON_AddNumberToObject(o, "samples", (double)n);
        cJSON_AddItemToArray(arr, o);
    }
    char *txt = st == LETHE_OK ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    ex_path(e, "state.json", path, sizeof path);
    if (st == LETHE_OK)
        st = txt ? lethe_file_write_atomic(path, txt, strlen(txt))
                 : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    free(txt);
    return st;
}

/* Train, without the directory's lock, the checkpoints that the requests
 * recorded so far call for. Training is the long part of a sync, and
 * requests are recorded under the lock: this way they are not held up by
 * it. Checkpoints are content-addressed and written atomically, so the
 * locked pass that follows finds these by their keys, trains only what
 * requests recorded meanwhile call for, and is the one that decides. A
 * failure here is left for that pass to meet and report. */
static void train_unlocked(lethe_sisa *s, char (*chains)[65], char (*was)[65])
{
    lethe_ensemble *e = &s->e;
    if (e->rd || ex_replay(e) != LETHE_OK || sisa_read_state(s, was) != LETHE_OK)
        return;
    for (int k = 0; k < e->shards; k++)
        if (sisa_sync_shard(s, k, chains + (size_t)k * (size_t)e->slices, was[2 * k],
                       was[2 * k + 1], 0, NULL, NULL) != LETHE_OK)
            return;
}

lethe_status lethe_sisa_sync(lethe_sisa *s)
{
    lethe_ensemble *e = &s->e;
    char (*chains)[65] = calloc((size_t)e->shards * (size_t)e->slices, 65);
    char (*was)[65] = calloc(2 * (size_t)e->shards, 65);
    if (!chains || !was) {
        free(chains), free(was);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    s->trained_slices = 0;
    lethe_status st = LETHE_OK;
    if (lethe_mpi_size() > 1 && lethe_mpi_rank() == 0)
        st = sisa_train_ranks(s, chains, was);
    else
        train_unlocked(s, chains, was);
    lethe_runlock *lock = NULL;
    if (st == LETHE_OK)
        st = ex_lock(e, &lock);
    if (st != LETHE_OK) {
        free(chains), free(was);
        return st;
    }
    st = sisa_read_state(s, was);
    for (int k = 0; k < e->shards && st == LETHE_OK; k++)
        st = sisa_sync_shard(s, k, chains + (size_t)k * (size_t)e->slices, was[2 * k],
                        was[2 * k + 1], 0, NULL, NULL);
    if (st == LETHE_OK)
        st = write_state(s, chains);
    if (st == LETHE_OK)
        st = prune(s, chains);
    for (long q = 0; st == LETHE_OK && q < e->ledger->n_req; q++)
        st = lethe_ledger_applied(e->ledger, q + 1);
    free(chains);
    free(was);
    lethe_runlock_release(lock);
    if (st == LETHE_OK)
        ex_keep(e);
    return st;
}
