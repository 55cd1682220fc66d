/* SISA training and exact deletion over content-addressed checkpoints. */
#include "lethe/sisa.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/mem.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/sha256.h"
#include "shards.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
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
    lethe_dataset_free(s->train);
    lethe_dataset_free(s->test);
    free(s->shard_of);
    free(s->slice_of);
    free(s->deleted);
    free(s->current);
    lethe_ledger_free(s->ledger);
    free(s);
}

static void path_in(const lethe_sisa *s, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", s->dir, name);
}

void lethe_sisa_model_path(const lethe_sisa *s, int shard, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/ckpt/%s.safetensors", s->dir, s->current[shard]);
}

/* Load data, assign shards and slices, mark excluded rows. */
static lethe_status setup(lethe_sisa *s, const uint64_t *excluded, long n_excluded)
{
    lethe_status st = lethe_task_load(s->task, &s->opts, &s->train, &s->test);
    if (st != LETHE_OK)
        return st;
    long n = s->train->n;
    s->shard_of = malloc(sizeof(int) * (size_t)n);
    s->slice_of = malloc(sizeof(int) * (size_t)n);
    s->deleted = calloc((size_t)n, 1);
    s->current = calloc((size_t)s->shards, sizeof *s->current);
    if (!s->shard_of || !s->slice_of || !s->deleted || !s->current)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_assign(s->train, s->seed, s->shards, s->slices, s->shard_of, s->slice_of);
    char path[4200];
    path_in(s, "sisa.json", path, sizeof path);
    if ((st = ex_mark_ids(s->train, s->task, excluded, n_excluded, s->deleted, path)) !=
        LETHE_OK)
        return st;
    s->n_excluded = n_excluded;
    path_in(s, "ledger.log", path, sizeof path);
    if ((st = ex_replay(path, s->train, s->task, s->deleted, &s->ledger)) != LETHE_OK)
        return st;
    return LETHE_OK;
}

static cJSON *config_json(const lethe_sisa *s, const lethe_rows *excluded)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", "sisa");
    cJSON_AddStringToObject(j, "data", s->task);
    cJSON_AddNumberToObject(j, "limit", (double)s->opts.limit);
    cJSON_AddNumberToObject(j, "window", s->opts.window);
    cJSON_AddStringToObject(j, "spec", s->spec);
    cJSON_AddNumberToObject(j, "shards", s->shards);
    cJSON_AddNumberToObject(j, "slices", s->slices);
    cJSON_AddNumberToObject(j, "seed", (double)s->seed);
    cJSON_AddStringToObject(j, "aggregate", s->aggregate == LETHE_AGG_VOTE ? "vote" : "mean");
    cJSON_AddStringToObject(j, "optim", s->cfg.optim == LETHE_OPTIM_SGD ? "sgd" : "adamw");
    cJSON_AddNumberToObject(j, "lr", s->cfg.lr);
    cJSON_AddNumberToObject(j, "weight_decay", s->cfg.weight_decay);
    cJSON_AddNumberToObject(j, "momentum", s->cfg.momentum);
    cJSON_AddNumberToObject(j, "batch", s->cfg.batch);
    cJSON_AddNumberToObject(j, "epochs", s->cfg.epochs);
    cJSON_AddNumberToObject(j, "loss", s->cfg.loss);
    cJSON *ex = cJSON_AddArrayToObject(j, "excluded");
    for (long i = 0; excluded && i < excluded->n; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateNumber((double)s->train->ids[excluded->row[i]]));
    return j;
}

lethe_status lethe_sisa_create(const char *dir, const char *task, const lethe_task_opts *opts,
                               const char *spec, const lethe_train_cfg *cfg, int shards,
                               int slices, uint64_t seed, lethe_aggregate agg,
                               const lethe_rows *excluded, lethe_sisa **out)
{
    *out = NULL;
    if (shards < 1 || shards > 1024 || slices < 1 || slices > 256)
        return lethe_fail(LETHE_ERR_INVALID, "shards must be 1-1024 and slices 1-256");
    lethe_sisa *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->task, sizeof s->task, "%s", task);
    snprintf(s->spec, sizeof s->spec, "%s", spec);
    s->opts = opts ? *opts : (lethe_task_opts){0};
    s->cfg = *cfg;
    s->shards = shards, s->slices = slices, s->seed = seed, s->aggregate = agg;
    char path[4200], ck[4200];
    struct stat sb;
    path_in(s, "sisa.json", path, sizeof path);
    path_in(s, "ckpt", ck, sizeof ck);
    lethe_runlock *lock = NULL;
    lethe_status st = lethe_run_mkdir(ck);
    if (st == LETHE_OK)
        st = lethe_runlock_acquire(dir, 1, &lock);
    if (st == LETHE_OK && stat(path, &sb) == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s already exists; use another --out", path);
    if (st == LETHE_OK)
        st = lethe_task_load(task, &s->opts, &s->train, &s->test);
    cJSON *j = NULL;
    if (st == LETHE_OK) {
        j = config_json(s, excluded);
        lethe_dataset_free(s->train);
        lethe_dataset_free(s->test);
        s->train = s->test = NULL;
        char *txt = cJSON_Print(j);
        st = txt ? lethe_file_write_atomic(path, txt, strlen(txt))
                 : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(txt);
    }
    cJSON_Delete(j);
    lethe_runlock_release(lock);
    lethe_sisa_free(s);
    return st == LETHE_OK ? lethe_sisa_open(dir, out) : st;
}

lethe_status lethe_sisa_open(const char *dir, lethe_sisa **out)
{
    *out = NULL;
    lethe_sisa *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    char path[4200];
    path_in(s, "sisa.json", path, sizeof path);
    cJSON *j = NULL;
    struct stat sb;
    lethe_status st = stat(path, &sb) != 0
                          ? lethe_fail(LETHE_ERR_IO, "%s: not a SISA directory (no sisa.json)",
                                       dir)
                          : lethe_json_read(path, &j);
    const char *kind = NULL, *task = NULL, *spec = NULL, *agg = NULL, *optim = NULL;
    long long limit = 0, window = 0, shards = 0, slices = 0, seed = 0, batch = 0, epochs = 0,
              loss = 0;
    double lr = 0, wd = 0, mom = 0;
    const cJSON *ex = NULL;
    if (st == LETHE_OK && ((st = lethe_json_get_string(j, "kind", path, &kind)) != LETHE_OK ||
                           strcmp(kind, "sisa")))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: not a SISA configuration", path);
    if (st == LETHE_OK) /* stops at the first missing or mistyped key */
        (void)((st = lethe_json_get_string(j, "data", path, &task)) != LETHE_OK ||
         (st = lethe_json_get_string(j, "spec", path, &spec)) != LETHE_OK ||
         (st = lethe_json_get_string(j, "aggregate", path, &agg)) != LETHE_OK ||
         (st = lethe_json_get_string(j, "optim", path, &optim)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "limit", path, &limit)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "window", path, &window)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "shards", path, &shards)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "slices", path, &slices)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "seed", path, &seed)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "batch", path, &batch)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "epochs", path, &epochs)) != LETHE_OK ||
         (st = lethe_json_get_int(j, "loss", path, &loss)) != LETHE_OK ||
         (st = lethe_json_get_number(j, "lr", path, &lr)) != LETHE_OK ||
         (st = lethe_json_get_number(j, "weight_decay", path, &wd)) != LETHE_OK ||
         (st = lethe_json_get_number(j, "momentum", path, &mom)) != LETHE_OK ||
         (st = lethe_json_get_array(j, "excluded", path, &ex)) != LETHE_OK);
    if (st == LETHE_OK && (shards < 1 || shards > 1024 || slices < 1 || slices > 256 ||
                           batch < 1 || epochs < 1 || loss < 0 || loss > 2 || seed < 0))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: a setting is out of range", path);
    long n_ex = 0;
    uint64_t *exids = NULL;
    if (st == LETHE_OK) {
        snprintf(s->task, sizeof s->task, "%s", task);
        snprintf(s->spec, sizeof s->spec, "%s", spec);
        s->opts.limit = (long)limit, s->opts.window = (int)window;
        s->shards = (int)shards, s->slices = (int)slices, s->seed = (uint64_t)seed;
        s->aggregate = strcmp(agg, "mean") ? LETHE_AGG_VOTE : LETHE_AGG_MEAN;
        lethe_train_defaults(&s->cfg);
        s->cfg.optim = strcmp(optim, "sgd") ? LETHE_OPTIM_ADAMW : LETHE_OPTIM_SGD;
        s->cfg.lr = (float)lr, s->cfg.weight_decay = (float)wd, s->cfg.momentum = (float)mom;
        s->cfg.batch = (int)batch, s->cfg.epochs = (int)epochs, s->cfg.loss = (lethe_loss)loss;
        s->cfg.quiet = 1;
        n_ex = cJSON_GetArraySize(ex);
        exids = malloc(sizeof(uint64_t) * (size_t)(n_ex + 1));
        if (!exids)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        for (long i = 0; st == LETHE_OK && i < n_ex; i++) {
            const cJSON *v = cJSON_GetArrayItem(ex, (int)i);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0)
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: excluded ids must be numbers", path);
            else
                exids[i] = (uint64_t)v->valuedouble;
        }
    }
    if (st == LETHE_OK)
        st = setup(s, exids, n_ex);
    free(exids);
    cJSON_Delete(j);
    if (st != LETHE_OK) {
        lethe_sisa_free(s);
        return st;
    }
    *out = s;
    return LETHE_OK;
}

/* The key of the configuration and shard: the root of its chain. */
static void root_key(const lethe_sisa *s, int shard, char key[65])
{
    lethe_sha256 h;
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "lethe-sisa-1|%s|%ld|%d|%s|%d|%.9g|%.9g|%.9g|%d|%d|%d|%llu|%d|%d",
                     s->task, s->opts.limit, s->opts.window, s->spec, (int)s->cfg.optim,
                     s->cfg.lr, s->cfg.weight_decay, s->cfg.momentum, s->cfg.batch,
                     s->cfg.epochs, (int)s->cfg.loss, (unsigned long long)s->seed, s->slices,
                     shard);
    lethe_sha256_init(&h);
    lethe_sha256_update(&h, buf, (size_t)n);
    lethe_sha256_final(&h, key);
}

/* The checkpoint and sha256 that state.json records for each shard, into
 * was[2k] and was[2k + 1] ("" when there is no state.json yet). */
static lethe_status read_state(const lethe_sisa *s, char (*was)[65])
{
    char path[4200];
    struct stat sb;
    path_in(s, "state.json", path, sizeof path);
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
            k >= s->shards || k != (int)k) {
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

/* Train (or reuse) shard s's slices; chain[r] receives each slice's key.
 * was_key and was_sha: what state.json says the shard served. */
static lethe_status sync_shard(lethe_sisa *s, int shard, char (*chain)[65], const char *was_key,
                               const char *was_sha)
{
    const lethe_dataset *ds = s->train;
    lethe_rows cum = {0, malloc(sizeof(long) * (size_t)(ds->n + 1))};
    lethe_net *net = NULL;
    const char *prev = NULL;
    char prev_path[4200], path[4200], key[65];
    lethe_status st = cum.row ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    root_key(s, shard, key);
    for (int r = 0; r < s->slices && st == LETHE_OK; r++) {
        lethe_sha256 h;
        lethe_sha256_init(&h);
        lethe_sha256_update(&h, key, 64);
        /* cumulative rows stay ascending: rebuild from slices 0..r */
        cum.n = 0;
        for (long i = 0; i < ds->n; i++)
            if (s->shard_of[i] == shard && s->slice_of[i] <= r && !s->deleted[i]) {
                cum.row[cum.n++] = i;
                if (s->slice_of[i] == r)
                    lethe_sha256_update(&h, &ds->ids[i], sizeof(uint64_t));
            }
        long steps = (long)ceil(2.0 * s->cfg.epochs / (s->slices + 1) * (double)cum.n /
                                s->cfg.batch);
        lethe_sha256_update(&h, &steps, sizeof steps);
        lethe_sha256_final(&h, key);
        memcpy(chain[r], key, 65);
        snprintf(path, sizeof path, "%s/ckpt/%s.safetensors", s->dir, key);
        struct stat sb;
        if (r == s->slices - 1 && !strcmp(key, was_key) &&
            (st = check_served(shard, path, was_sha)) != LETHE_OK)
            break;
        if (stat(path, &sb) == 0) { /* trained before on exactly this prefix */
            snprintf(prev_path, sizeof prev_path, "%s", path);
            prev = prev_path;
            continue;
        }
        if (!net) {
            if (!(net = lethe_net_init(s->spec))) {
                st = LETHE_ERR_INVALID;
                break;
            }
            if (prev)
                st = lethe_net_load_params(net, prev);
            else
                lethe_net_init_params(net, lethe_rng_hash(s->seed, STREAM_TRAIN, (uint64_t)shard));
        }
        if (st == LETHE_OK && steps > 0) {
            lethe_train_cfg cfg = s->cfg;
            cfg.steps = steps;
            cfg.sched = LETHE_SCHED_CONSTANT;
            cfg.val_frac = 0, cfg.patience = 0, cfg.quiet = 1;
            cfg.seed = lethe_rng_hash(s->seed, STREAM_TRAIN + 1 + (uint64_t)shard, (uint64_t)r);
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
    snprintf(dir, sizeof dir, "%s/ckpt", s->dir);
    DIR *d = opendir(dir);
    if (!d)
        return lethe_fail(LETHE_ERR_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    long total = (long)s->shards * s->slices;
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

lethe_status lethe_sisa_sync(lethe_sisa *s)
{
    lethe_runlock *lock;
    lethe_status st = ex_lock(s->dir, s->train, s->task, s->deleted, &s->ledger, &lock);
    if (st != LETHE_OK)
        return st;
    char (*chains)[65] = calloc((size_t)s->shards * (size_t)s->slices, 65);
    char (*was)[65] = calloc(2 * (size_t)s->shards, 65);
    st = chains && was ? read_state(s, was) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s->trained_slices = 0;
    for (int k = 0; k < s->shards && st == LETHE_OK; k++) {
        st = sync_shard(s, k, chains + (size_t)k * (size_t)s->slices, was[2 * k],
                        was[2 * k + 1]);
        if (st == LETHE_OK)
            memcpy(s->current[k], chains[(size_t)k * (size_t)s->slices + (size_t)s->slices - 1],
                   65);
    }
    cJSON *j = st == LETHE_OK ? cJSON_CreateObject() : NULL;
    if (j) {
        cJSON *arr = cJSON_AddArrayToObject(j, "shards");
        char path[4200], hex[65];
        for (int k = 0; k < s->shards && st == LETHE_OK; k++) {
            lethe_sisa_model_path(s, k, path, sizeof path);
            if ((st = lethe_sha256_file(path, hex)) != LETHE_OK)
                break;
            long n = 0;
            for (long i = 0; i < s->train->n; i++)
                n += s->shard_of[i] == k && !s->deleted[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "shard", k);
            cJSON_AddStringToObject(o, "checkpoint", s->current[k]);
            cJSON_AddStringToObject(o, "sha256", hex);
            cJSON_AddNumberToObject(o, "samples", (double)n);
            cJSON_AddItemToArray(arr, o);
        }
        char *txt = st == LETHE_OK ? cJSON_Print(j) : NULL;
        path_in(s, "state.json", path, sizeof path);
        if (txt)
            st = lethe_file_write_atomic(path, txt, strlen(txt));
        free(txt);
        cJSON_Delete(j);
    }
    if (st == LETHE_OK)
        st = prune(s, chains);
    for (long q = 0; st == LETHE_OK && q < s->ledger->n_req; q++)
        st = lethe_ledger_applied(s->ledger, q + 1);
    free(chains);
    free(was);
    lethe_runlock_release(lock);
    return st;
}

lethe_status lethe_sisa_request(lethe_sisa *s, const lethe_rows *rows, long *req_id)
{
    lethe_runlock *lock;
    lethe_status st = ex_lock(s->dir, s->train, s->task, s->deleted, &s->ledger, &lock);
    if (st != LETHE_OK)
        return st;
    uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)(rows->n + 1));
    if (!ids)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; st == LETHE_OK && i < rows->n; i++) {
        long r = rows->row[i];
        uint64_t id = s->train->ids[r];
        long q = s->deleted[r] ? lethe_ledger_find(s->ledger, id) : 0;
        if (q)
            st = lethe_fail(LETHE_ERR_INVALID, "id %llu was already deleted by request %ld",
                            (unsigned long long)id, q);
        else if (s->deleted[r])
            st = lethe_fail(LETHE_ERR_INVALID, "id %llu was excluded from training",
                            (unsigned long long)id);
        else
            ids[i] = id;
    }
    if (st == LETHE_OK)
        st = lethe_ledger_receive(s->ledger, ids, rows->n, req_id);
    if (st == LETHE_OK)
        for (long i = 0; i < rows->n; i++)
            s->deleted[rows->row[i]] = 1;
    free(ids);
    lethe_runlock_release(lock);
    return st;
}

long lethe_sisa_samples(const lethe_sisa *s, int shard)
{
    long n = 0;
    for (long i = 0; i < s->train->n; i++)
        n += s->shard_of[i] == shard && !s->deleted[i];
    return n;
}

lethe_status lethe_sisa_predict(lethe_sisa *s, int shard, const lethe_dataset *ds,
                                const lethe_rows *rows, float *out)
{
    int live = 0;
    for (int k = 0; k < s->shards; k++)
        live += lethe_sisa_samples(s, k) > 0;
    if (shard >= 0 && lethe_sisa_samples(s, shard) == 0)
        return lethe_fail(LETHE_ERR_FAILED, "every training sample of shard %d of %s has been "
                          "deleted: the shard has no model", shard, s->dir);
    if (shard < 0 && live == 0)
        return lethe_fail(LETHE_ERR_FAILED, "every training sample of %s has been deleted: no "
                          "model remains to predict with", s->dir);
    long n = rows ? rows->n : ds->n;
    lethe_net *net = lethe_net_init(s->spec);
    if (!net)
        return LETHE_ERR_INVALID;
    long no = net->n_out;
    float *y = malloc(sizeof(float) * (size_t)(n * no + 1));
    lethe_status st = y ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (shard < 0)
        memset(out, 0, sizeof(float) * (size_t)(n * no));
    int first = shard < 0 ? 0 : shard, last = shard < 0 ? s->shards - 1 : shard;
    for (int k = first; k <= last && st == LETHE_OK; k++) {
        char path[4200];
        if (shard < 0 && lethe_sisa_samples(s, k) == 0)
            continue; /* an untrained model does not vote */
        lethe_sisa_model_path(s, k, path, sizeof path);
        if ((st = lethe_net_load_params(net, path)) != LETHE_OK ||
            (st = lethe_predict(net, ds, rows, shard < 0 ? y : out)) != LETHE_OK || shard >= 0)
            continue;
        for (long i = 0; i < n; i++) {
            float *p = y + i * no, *o = out + i * no;
            if (ds->task == LETHE_TASK_REGRESS) {
                for (long c = 0; c < no; c++)
                    o[c] += p[c] / (float)live;
            } else if (s->aggregate == LETHE_AGG_VOTE) {
                long best = 0;
                for (long c = 1; c < no; c++)
                    best = p[c] > p[best] ? c : best;
                o[best] += 1;
            } else {
                double mx = p[0], z = 0;
                for (long c = 1; c < no; c++)
                    mx = p[c] > mx ? p[c] : mx;
                for (long c = 0; c < no; c++)
                    z += exp(p[c] - mx);
                for (long c = 0; c < no; c++)
                    o[c] += (float)(exp(p[c] - mx) / z / live);
            }
        }
    }
    free(y);
    lethe_net_free(net);
    return st;
}
