/* The sharded ensemble shared by SISA and S3T: placement of samples,
 * directories and their configuration, deletion requests, prediction. */
#include "ensemble_impl.h"

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/net.h"
#include "lethe/recipe.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/task.h"
#include "lethe/sha256.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STREAM_SHARD 0x5a4dull
#define STREAM_SLICE 0x511cull

/* ---- placement, keys and paths ---- */

void ex_assign(const lethe_dataset *ds, uint64_t seed, int shards, int slices, int *shard_of,
               int *slice_of)
{
    for (long i = 0; i < ds->n; i++) {
        uint64_t id = ds->ids[i];
        shard_of[i] = (int)(lethe_id_uniform(seed, STREAM_SHARD, id) * shards);
        slice_of[i] = (int)(lethe_id_uniform(seed, STREAM_SLICE, id) * slices);
    }
}

void ex_path(const lethe_ensemble *e, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", e->dir, name);
}

void lethe_ensemble_ckpt_path(const lethe_ensemble *e, const char *key, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/ckpt/%s.safetensors", e->dir, key);
}

void lethe_ensemble_model_path(const lethe_ensemble *e, int shard, char *buf, size_t cap)
{
    if (e->model[shard][0])
        lethe_ensemble_ckpt_path(e, e->model[shard], buf, cap);
    else
        buf[0] = 0;
}

long ex_steps(const lethe_ensemble *e, long n_cum)
{
    return (long)ceil(2.0 * e->cfg.epochs / (e->slices + 1) * (double)n_cum / e->cfg.batch);
}

void ex_root_key(const lethe_ensemble *e, const char *tag, int with_clip, int shard,
                 char key[65])
{
    lethe_sha256 h;
    char buf[1200], clip[40] = "";
    if (with_clip)
        snprintf(clip, sizeof clip, "|%.9g", e->cfg.clip);
    int n = snprintf(buf, sizeof buf, "%s|%s|%ld|%d|%s|%d|%.9g|%.9g|%.9g%s|%d|%d|%d|%llu|%d|%d",
                     tag, e->task, e->opts.limit, e->opts.window, e->spec, (int)e->cfg.optim,
                     e->cfg.lr, e->cfg.weight_decay, e->cfg.momentum, clip, e->cfg.batch,
                     e->cfg.epochs, (int)e->cfg.loss, (unsigned long long)e->seed, e->slices,
                     shard);
    lethe_sha256_init(&h);
    lethe_sha256_update(&h, buf, (size_t)n);
    lethe_sha256_final(&h, key);
}

/* ---- directories ---- */

static const char *upper(const char *kind)
{
    return strcmp(kind, "sisa") ? "S3T" : "SISA";
}

static const char *other_kind(const char *kind)
{
    return strcmp(kind, "sisa") ? "sisa" : "s3t";
}

/* DIR/KIND.json and the other engine's configuration file. */
static void config_paths(const lethe_ensemble *e, char path[4200], char other[4200])
{
    snprintf(path, 4200, "%s/%s.json", e->dir, e->kind);
    snprintf(other, 4200, "%s/%s.json", e->dir, other_kind(e->kind));
}

void ex_init(lethe_ensemble *e, const char *dir, const char *kind, const char *task,
             const lethe_task_opts *opts, const char *spec, const lethe_train_cfg *cfg,
             int shards, int slices, uint64_t seed)
{
    snprintf(e->dir, sizeof e->dir, "%s", dir);
    e->kind = kind;
    snprintf(e->task, sizeof e->task, "%s", task);
    snprintf(e->spec, sizeof e->spec, "%s", spec);
    e->opts = opts ? *opts : (lethe_task_opts){0};
    e->cfg = *cfg;
    e->shards = shards, e->slices = slices, e->seed = seed;
}

void ex_keep(lethe_ensemble *e)
{
    lethe_rundir_commit(e->rd);
    e->rd = NULL;
}

void ex_handover(lethe_ensemble *e, lethe_ensemble *out)
{
    if (out)
        out->rd = e->rd;
    else
        lethe_rundir_abort(e->rd);
    e->rd = NULL;
}

void ex_free(lethe_ensemble *e)
{
    lethe_rundir_abort(e->rd);
    lethe_dataset_free(e->train);
    lethe_dataset_free(e->test);
    free(e->shard_of);
    free(e->slice_of);
    free(e->excluded);
    free(e->deleted);
    free(e->model);
    lethe_ledger_free(e->ledger);
}

/* The common keys of KIND.json, in file order. */
static cJSON *config_json(const lethe_ensemble *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", e->kind);
    cJSON_AddStringToObject(j, "data", e->task);
    cJSON_AddNumberToObject(j, "limit", (double)e->opts.limit);
    cJSON_AddNumberToObject(j, "window", e->opts.window);
    cJSON_AddStringToObject(j, "spec", e->spec);
    cJSON_AddNumberToObject(j, "shards", e->shards);
    cJSON_AddNumberToObject(j, "slices", e->slices);
    cJSON_AddNumberToObject(j, "seed", (double)e->seed);
    cJSON_AddStringToObject(j, "optim", e->cfg.optim == LETHE_OPTIM_SGD ? "sgd" : "adamw");
    cJSON_AddNumberToObject(j, "lr", e->cfg.lr);
    cJSON_AddNumberToObject(j, "weight_decay", e->cfg.weight_decay);
    cJSON_AddNumberToObject(j, "momentum", e->cfg.momentum);
    cJSON_AddNumberToObject(j, "batch", e->cfg.batch);
    cJSON_AddNumberToObject(j, "epochs", e->cfg.epochs);
    cJSON_AddNumberToObject(j, "loss", e->cfg.loss);
    return j;
}

/* The text of KIND.json: the common settings, the keys extra() adds and
 * the ids of the excluded rows (NULL when out of memory; the caller frees). */
static char *config_text(const lethe_ensemble *e, const lethe_rows *excluded,
                         void (*extra)(cJSON *j, const void *self), const void *self)
{
    cJSON *j = config_json(e);
    if (extra)
        extra(j, self);
    cJSON *ex = cJSON_AddArrayToObject(j, "excluded");
    for (long i = 0; excluded && i < excluded->n; i++)
        cJSON_AddItemToArray(ex, cJSON_CreateNumber((double)e->train->ids[excluded->row[i]]));
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    return txt;
}

lethe_status ex_matches(lethe_ensemble *e, const lethe_rows *excluded,
                        void (*extra)(cJSON *j, const void *self), const void *self)
{
    char path[4200], other[4200];
    struct stat sb;
    config_paths(e, path, other);
    if (stat(path, &sb) != 0)
        return LETHE_ERR_NOT_FOUND;
    lethe_status st = e->train ? LETHE_OK : lethe_task_load(e->task, &e->opts, &e->train,
                                                            &e->test);
    unsigned char *have = NULL;
    size_t n = 0;
    char *want = st == LETHE_OK ? config_text(e, excluded, extra, self) : NULL;
    if (st == LETHE_OK && !want)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = lethe_file_read(path, &have, &n);
    if (st == LETHE_OK && (n != strlen(want) || memcmp(have, want, n)))
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the ensemble in %s was created with other "
                        "settings (data, model, shards, slices, seed, training or excluded "
                        "ids); it cannot be resumed with these", path, e->dir);
    free(have);
    free(want);
    return st;
}

lethe_status ex_create(lethe_ensemble *e, int force, const lethe_rows *excluded,
                       const char *exclude, void (*extra)(cJSON *j, const void *self),
                       const void *self)
{
    char path[4200], other[4200], ck[4200];
    const lethe_task_info *named;
    const char *inputs[] = {lethe_task_find(e->task, &named) == LETHE_OK ? NULL : e->task,
                            exclude ? lethe_split_file(exclude) : NULL};
    config_paths(e, path, other);
    ex_path(e, "ckpt", ck, sizeof ck);
    lethe_status st = lethe_rundir_begin(e->dir, force, inputs, 2, &e->rd);
    /* forced over an earlier ensemble: none of its state may carry over */
    const char *old[] = {path, other, "state.json", "ledger.log", "ckpt"};
    for (size_t i = 0; st == LETHE_OK && force && i < sizeof old / sizeof old[0]; i++) {
        char p[4200];
        if (i < 2)
            snprintf(p, sizeof p, "%s", old[i]);
        else
            ex_path(e, old[i], p, sizeof p);
        if (lethe_remove_tree(p) != 0 && errno != ENOENT)
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
    }
    if (st == LETHE_OK)
        st = lethe_run_mkdir(ck);
    if (st == LETHE_OK && !e->train)
        st = lethe_task_load(e->task, &e->opts, &e->train, &e->test);
    if (st == LETHE_OK) {
        char *txt = config_text(e, excluded, extra, self);
        st = txt ? lethe_file_write_atomic(path, txt, strlen(txt))
                 : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(txt);
    }
    return st;
}

lethe_status ex_open(lethe_ensemble *e, const char *dir, const char *kind, cJSON **j)
{
    char path[4200], other[4200];
    struct stat sb;
    *j = NULL;
    snprintf(e->dir, sizeof e->dir, "%s", dir);
    e->kind = kind;
    config_paths(e, path, other);
    if (stat(path, &sb) != 0 && stat(other, &sb) == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s is a %s directory, not an %s one; use lethe %s",
                          dir, upper(other_kind(kind)), upper(kind), other_kind(kind));
    if (stat(path, &sb) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: not a%s %s directory (no %s.json)", dir,
                          strcmp(kind, "sisa") ? "n" : "", upper(kind), kind);
    lethe_status st = lethe_json_read(path, j);
    return st == LETHE_OK ? ex_config(e, dir, kind, *j, path) : st;
}

lethe_status ex_config(lethe_ensemble *e, const char *dir, const char *kind, const cJSON *j,
                       const char *path)
{
    lethe_status st = LETHE_OK;
    const char *k = NULL, *task = NULL, *spec = NULL, *optim = NULL;
    long long limit = 0, window = 0, shards = 0, slices = 0, seed = 0, batch = 0, epochs = 0,
              loss = 0;
    double lr = 0, wd = 0, mom = 0;
    if (st == LETHE_OK && ((st = lethe_json_get_string(j, "kind", path, &k)) != LETHE_OK ||
                           strcmp(k, kind)))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: not a%s %s configuration", path,
                        strcmp(kind, "sisa") ? "n" : "", upper(kind));
    if (st == LETHE_OK) /* stops at the first missing or mistyped key */
        (void)((st = lethe_json_get_string(j, "data", path, &task)) != LETHE_OK ||
               (st = lethe_json_get_string(j, "spec", path, &spec)) != LETHE_OK ||
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
               (st = lethe_json_get_number(j, "momentum", path, &mom)) != LETHE_OK);
    if (st == LETHE_OK && (shards < 1 || shards > 1024 || slices < 1 || slices > 256 ||
                           batch < 1 || epochs < 1 || loss < 0 || loss > 2 || seed < 0))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: a setting is out of range", path);
    if (st != LETHE_OK)
        return st;
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.optim = strcmp(optim, "sgd") ? LETHE_OPTIM_ADAMW : LETHE_OPTIM_SGD;
    cfg.lr = (float)lr, cfg.weight_decay = (float)wd, cfg.momentum = (float)mom;
    cfg.batch = (int)batch, cfg.epochs = (int)epochs, cfg.loss = (lethe_loss)loss;
    cfg.sched = LETHE_SCHED_CONSTANT;
    cfg.quiet = 1;
    lethe_task_opts opts = {(long)limit, (int)window};
    ex_init(e, dir, kind, task, &opts, spec, &cfg, (int)shards, (int)slices, (uint64_t)seed);
    return LETHE_OK;
}

/* mark[r] = 1 for the row of each of ids[0..n); an id not in ds is
 * LETHE_ERR_FORMAT naming `where` (the file that listed it). */
static lethe_status mark_ids(const lethe_ensemble *e, const uint64_t *ids, long n, char *mark,
                             const char *where)
{
    for (long k = 0; k < n; k++) {
        long r = lethe_dataset_find(e->train, ids[k]);
        if (r < 0)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: id %llu is not in %s", where,
                              (unsigned long long)ids[k], e->task);
        mark[r] = 1;
    }
    return LETHE_OK;
}

/* Open and replay the ledger, setting deleted[r] = 1 for every id that any
 * request names. */
static lethe_status replay(const lethe_ensemble *e, lethe_ledger **out)
{
    char path[4200];
    ex_path(e, "ledger.log", path, sizeof path);
    lethe_status st = lethe_ledger_open(path, out);
    for (long q = 0; st == LETHE_OK && q < (*out)->n_req; q++) {
        char where[4300];
        snprintf(where, sizeof where, "%s: request %ld", path, q + 1);
        st = mark_ids(e, (*out)->req[q].ids, (*out)->req[q].n_ids, e->deleted, where);
    }
    return st;
}

lethe_status ex_setup(lethe_ensemble *e, const cJSON *j)
{
    lethe_status st = ex_place(e, j);
    return st == LETHE_OK ? replay(e, &e->ledger) : st;
}

lethe_status ex_place(lethe_ensemble *e, const cJSON *j)
{
    char path[4200], other[4200];
    const cJSON *ex = NULL;
    config_paths(e, path, other);
    lethe_status st = lethe_json_get_array(j, "excluded", path, &ex);
    if (st == LETHE_OK && !e->train)
        st = lethe_task_load(e->task, &e->opts, &e->train, &e->test);
    if (st != LETHE_OK)
        return st;
    long n = e->train->n;
    e->shard_of = malloc(sizeof(int) * (size_t)n);
    e->slice_of = malloc(sizeof(int) * (size_t)n);
    e->excluded = calloc((size_t)n, 1);
    e->deleted = calloc((size_t)n, 1);
    e->model = calloc((size_t)e->shards, sizeof *e->model);
    if (!e->shard_of || !e->slice_of || !e->excluded || !e->deleted || !e->model)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_assign(e->train, e->seed, e->shards, e->slices, e->shard_of, e->slice_of);
    const cJSON *v;
    cJSON_ArrayForEach(v, ex)
    {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: excluded ids must be numbers", path);
        uint64_t id = (uint64_t)v->valuedouble;
        if ((st = mark_ids(e, &id, 1, e->excluded, path)) != LETHE_OK)
            return st;
        e->n_excluded++;
    }
    return LETHE_OK;
}

lethe_status ex_replay(lethe_ensemble *e)
{
    lethe_ledger *fresh = NULL;
    lethe_status st = replay(e, &fresh);
    if (st != LETHE_OK)
        return st;
    lethe_ledger_free(e->ledger);
    e->ledger = fresh;
    return LETHE_OK;
}

lethe_status ex_lock(lethe_ensemble *e, lethe_runlock **lock)
{
    lethe_ledger *fresh = NULL;
    *lock = NULL;
    lethe_status st = e->rd ? LETHE_OK : lethe_runlock_acquire(e->dir, 1, lock);
    if (st == LETHE_OK)
        st = replay(e, &fresh);
    if (st != LETHE_OK) {
        lethe_ledger_free(fresh);
        lethe_runlock_release(*lock);
        *lock = NULL;
        return st;
    }
    lethe_ledger_free(e->ledger);
    e->ledger = fresh;
    return LETHE_OK;
}

/* ---- requests and prediction ---- */

lethe_status lethe_ensemble_request(lethe_ensemble *e, const lethe_rows *rows, long *req_id)
{
    if (rows->n < 1)
        return lethe_fail(LETHE_ERR_INVALID, "a deletion request needs at least one id");
    lethe_runlock *lock;
    lethe_status st = ex_lock(e, &lock);
    if (st != LETHE_OK)
        return st;
    uint64_t *ids = malloc(sizeof(uint64_t) * (size_t)rows->n);
    if (!ids)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; st == LETHE_OK && i < rows->n; i++) {
        long r = rows->row[i];
        uint64_t id = e->train->ids[r];
        long q = e->deleted[r] ? lethe_ledger_find(e->ledger, id) : 0;
        if (q)
            st = lethe_fail(LETHE_ERR_INVALID, "id %llu was already deleted by request %ld",
                            (unsigned long long)id, q);
        else if (e->excluded[r])
            st = lethe_fail(LETHE_ERR_INVALID, "id %llu was excluded from training",
                            (unsigned long long)id);
        else
            ids[i] = id;
    }
    if (st == LETHE_OK)
        st = lethe_ledger_receive(e->ledger, ids, rows->n, req_id);
    if (st == LETHE_OK)
        for (long i = 0; i < rows->n; i++)
            e->deleted[rows->row[i]] = 1;
    free(ids);
    lethe_runlock_release(lock);
    return st;
}

long lethe_ensemble_samples(const lethe_ensemble *e, int shard)
{
    long n = 0;
    for (long i = 0; i < e->train->n; i++)
        n += e->shard_of[i] == shard && !e->excluded[i] && !e->deleted[i];
    return n;
}

int lethe_ensemble_live(const lethe_ensemble *e)
{
    int live = 0;
    for (int k = 0; k < e->shards; k++)
        live += e->model[k][0] != 0;
    return live;
}

long lethe_ensemble_outputs(const lethe_ensemble *e)
{
    lethe_net *net = lethe_net_init(e->spec);
    long n = net ? net->n_out : 1;
    lethe_net_free(net);
    return n;
}

void ex_aggregate(const lethe_ensemble *e, const float *p, float *o, long n, long no, int live)
{
    lethe_aggregate how = e->train->task == LETHE_TASK_REGRESS ? LETHE_AGG_LOGITS : e->aggregate;
    for (long i = 0; i < n; i++, p += no, o += no) {
        if (how == LETHE_AGG_LOGITS) {
            for (long c = 0; c < no; c++)
                o[c] += p[c] / (float)live;
        } else if (how == LETHE_AGG_VOTE) {
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

lethe_status lethe_ensemble_predict(const lethe_ensemble *e, int shard, const lethe_dataset *ds,
                                    const lethe_rows *rows, float *out)
{
    int live = lethe_ensemble_live(e);
    if (shard >= e->shards)
        return lethe_fail(LETHE_ERR_INVALID, "%s has shards 0-%d, not %d", e->dir, e->shards - 1,
                          shard);
    if (shard >= 0 && !e->model[shard][0])
        return lethe_fail(LETHE_ERR_FAILED, "%s: shard %d has no model: %s", e->dir, shard,
                          e->why_dead);
    if (shard < 0 && live == 0)
        return lethe_fail(LETHE_ERR_FAILED, "%s: no model remains: %s", e->dir, e->why_none);
    long n = rows ? rows->n : ds->n;
    lethe_net *net = lethe_net_init(e->spec);
    if (!net)
        return LETHE_ERR_INVALID;
    long no = net->n_out;
    float *y = malloc(sizeof(float) * (size_t)(n * no + 1));
    lethe_status st = y ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (shard < 0)
        memset(out, 0, sizeof(float) * (size_t)(n * no));
    int first = shard < 0 ? 0 : shard, last = shard < 0 ? e->shards - 1 : shard;
    for (int k = first; k <= last && st == LETHE_OK; k++) {
        char path[4200];
        if (!e->model[k][0])
            continue;
        lethe_ensemble_model_path(e, k, path, sizeof path);
        if ((st = lethe_net_load_params(net, path)) == LETHE_OK &&
            (st = lethe_predict(net, ds, rows, shard < 0 ? y : out)) == LETHE_OK && shard < 0)
            ex_aggregate(e, y, out, n, no, live);
    }
    free(y);
    lethe_net_free(net);
    return st;
}

/* ---- what an ensemble trains on ------------------------------------------- */

lethe_status lethe_ensemble_recipe_load(const lethe_ensemble_recipe_cfg *c,
                                        lethe_ensemble_recipe *r)
{
    lethe_recipe rec;
    *r = (lethe_ensemble_recipe){.opts = {c->limit, 0}};
    lethe_status st = lethe_task_load(c->data, &r->opts, &r->train, &r->test);
    if (st == LETHE_OK)
        st = lethe_recipe_default(r->train, c->model, &rec);
    if (st == LETHE_OK && !strcmp(rec.model, "linear"))
        st = lethe_fail(LETHE_ERR_INVALID, "an ensemble trains an mlp or a cnn, not a linear "
                        "model");
    if (st == LETHE_OK && c->widths) {
        if (strcmp(rec.model, "mlp"))
            st = lethe_fail(LETHE_ERR_INVALID, "hidden widths are for an mlp, not a %s",
                            rec.model);
        else
            snprintf(rec.widths, sizeof rec.widths, "%s", c->widths);
    }
    if (st == LETHE_OK)
        st = lethe_recipe_spec(&rec, r->train, r->spec, sizeof r->spec);
    if (st == LETHE_OK && c->exclude)
        st = lethe_split_select(r->train, c->exclude, 0, &r->excl);
    if (st != LETHE_OK)
        return st;
    if (c->epochs > 0)
        rec.cfg.epochs = (int)c->epochs;
    if (c->batch > 0)
        rec.cfg.batch = (int)c->batch;
    if (c->lr > 0)
        rec.cfg.lr = (float)c->lr;
    r->cfg = rec.cfg;
    return LETHE_OK;
}

void lethe_ensemble_recipe_free(lethe_ensemble_recipe *r)
{
    lethe_rows_free(&r->excl);
    lethe_dataset_free(r->train);
    lethe_dataset_free(r->test);
}
