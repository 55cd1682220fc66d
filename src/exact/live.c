/* Live models: a run's models in memory, predictions from many threads,
 * deletions with their guarantees and the background work that follows
 * them (lethe/live.h).
 *
 * Predictions read a snapshot of the served set: an immutable array of
 * components (one per shard, or the one model), reference-counted under
 * l->mu. A deletion records its request, builds the next snapshot without
 * the affected components (with S3T's cut prefixes already loaded) and
 * makes it current before it returns; a prediction already holding the old
 * one finishes with it, and the last holder frees what no snapshot uses.
 *
 * block[k] is the last request that took slot k out. The background thread
 * brings the directory up to date with its own handle (lethe_sisa_sync or
 * lethe_s3t_apply, both under the directory's lock and covering every
 * request recorded before they took it) and puts back only the slots that
 * no later request took out. */
#include "lethe/live.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cJSON.h>

#include "ensemble_impl.h"
#include "lethe/linear.h"
#include "lethe/net.h"
#include "lethe/run.h"
#include "lethe/s3t.h"
#include "lethe/sha256.h"
#include "lethe/sisa.h"
#include "lethe/task.h"

#define BATCH 256        /* rows per forward, as lethe_predict */
#define RETRY_SECONDS 5  /* a failed background run is tried again after this */
#define POOL 32          /* idle work nets kept for the next predictions */

enum kind { K_SISA, K_S3T, K_RIDGE, K_LOGISTIC, K_NET };
static const char *const kind_name[] = {"sisa", "s3t", "ridge", "logistic", "net"};

static const char *const WHY_RETRAIN = "it is retraining after a deletion";
static const char *const WHY_LOAD = "its model could not be loaded after a deletion";
static const char *const WHY_PENDING = "a deletion request is recorded that could not be applied";

/* One served model, shared by the snapshots that hold it. */
typedef struct comp {
    lethe_net *net;  /* its parameters; forwards run through work nets */
    char key[65];    /* the checkpoint's key, or the model file's sha256 */
    char name[96];   /* "shardK@KEY" or "KIND@SHA16" */
    int refs;        /* snapshots holding it (under mu) */
} comp;

/* A served set, never changed once published. */
typedef struct snap {
    int refs;        /* predictions using it, + 1 while current (under mu) */
    int live;        /* slots that serve */
    comp *c[];       /* per slot: NULL when out */
} snap;

struct lethe_live {
    char dir[4096];
    enum kind kind;
    char spec[512];         /* every component's architecture */
    long features, outputs;
    int classifier, slots;  /* slots: shards, or 1 */
    lethe_sisa *sisa;       /* the handle deletions go through (under wmu) */
    lethe_s3t *s3t;
    lethe_ensemble *e;      /* its ensemble; NULL for a single model */
    pthread_mutex_t wmu;    /* one deletion at a time */
    pthread_mutex_t mu;     /* everything below */
    snap *cur;
    long *block;            /* per slot: the last request that took it out */
    long covered;           /* requests up to this one are served as applied */
    const char **why;       /* per slot: why it is out */
    lethe_net *pool[POOL];  /* idle work nets */
    int n_pool;
    lethe_status health;
    char health_msg[512];
    pthread_cond_t cv;      /* the background thread waits on it */
    pthread_t thread;
    int started, stop;
    long todo, done;        /* background runs asked for, and finished */
};

/* ---- components and snapshots ---- */

static void comp_free(comp *c)
{
    if (c) {
        lethe_net_free(c->net);
        free(c);
    }
}

/* A component holding net (taken over), into *out. */
static lethe_status comp_new(lethe_net *net, const char *key, const char *name, comp **out)
{
    if (!(*out = calloc(1, sizeof **out))) {
        lethe_net_free(net);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    (*out)->net = net;
    snprintf((*out)->key, sizeof (*out)->key, "%s", key);
    snprintf((*out)->name, sizeof (*out)->name, "%s", name);
    return LETHE_OK;
}

/* Shard k's checkpoint `key` of e, into *out. */
static lethe_status shard_comp(const lethe_live_t *l, const lethe_ensemble *e, int k,
                               const char *key, comp **out)
{
    char path[4200], name[96];
    *out = NULL;
    lethe_net *net = lethe_net_init(l->spec);
    if (!net)
        return LETHE_ERR_NOMEM;
    lethe_ensemble_ckpt_path(e, key, path, sizeof path);
    lethe_status st = lethe_net_load_params(net, path);
    if (st != LETHE_OK) {
        lethe_net_free(net);
        return st;
    }
    snprintf(name, sizeof name, "shard%d@%s", k, key);
    return comp_new(net, key, name, out);
}

/* The run's model.safetensors (already loaded into net, or NULL: load it
 * here), named KIND@SHA16, into *out. net is taken over. */
static lethe_status model_comp(const lethe_live_t *l, lethe_net *net, comp **out)
{
    char path[4200], sha[65], name[96];
    *out = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", l->dir);
    lethe_status st = net ? LETHE_OK : lethe_net_load(path, &net);
    if (st == LETHE_OK)
        st = lethe_sha256_file(path, sha);
    if (st != LETHE_OK) {
        lethe_net_free(net);
        return st;
    }
    snprintf(name, sizeof name, "%s@%.16s", kind_name[l->kind], sha);
    return comp_new(net, sha, name, out);
}

static snap *snap_alloc(const lethe_live_t *l)
{
    snap *s = calloc(1, sizeof *s + sizeof(comp *) * (size_t)l->slots);
    if (!s)
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return s;
}

/* Drop a reference to s (under mu), freeing what no snapshot holds. */
static void snap_unref(lethe_live_t *l, snap *s)
{
    if (!s || --s->refs > 0)
        return;
    for (int k = 0; k < l->slots; k++)
        if (s->c[k] && --s->c[k]->refs == 0)
            comp_free(s->c[k]);
    free(s);
}

/* Make s the served set (under mu): slot k takes fresh[k] (NULL: out)
 * where set[k], and keeps its component elsewhere. */
static void publish(lethe_live_t *l, snap *s, comp *const *fresh, const char *set)
{
    s->refs = 1, s->live = 0;
    for (int k = 0; k < l->slots; k++) {
        s->c[k] = set[k] ? fresh[k] : l->cur ? l->cur->c[k] : NULL;
        if (s->c[k])
            s->c[k]->refs++, s->live++;
    }
    snap *old = l->cur;
    l->cur = s;
    snap_unref(l, old);
}

/* Record a failure for lethe_live_health (under mu). */
static void set_health(lethe_live_t *l, lethe_status st, const char *msg)
{
    l->health = st;
    snprintf(l->health_msg, sizeof l->health_msg, "%s", msg);
}

/* ---- the background thread ---- */

/* Serve the models the background handle e names in the slots where they
 * differ (or that are out), unless a request after `covered` took the slot
 * out: what it trained or cut does not hold that request yet. */
static lethe_status refresh(lethe_live_t *l, const lethe_ensemble *e, long covered)
{
    comp **fresh = calloc((size_t)l->slots, sizeof *fresh);
    char *set = calloc((size_t)l->slots, 1);
    snap *s = snap_alloc(l);
    lethe_status st = fresh && set && s ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&l->mu);
    for (int k = 0; st == LETHE_OK && k < l->slots; k++) {
        const comp *c = l->cur->c[k];
        set[k] = l->block[k] <= covered && (!c || strcmp(c->key, e->model[k]));
    }
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; st == LETHE_OK && k < l->slots; k++)
        if (set[k] && e->model[k][0] && (st = shard_comp(l, e, k, e->model[k], &fresh[k])))
            set[k] = 0;
    int any = 0;
    pthread_mutex_lock(&l->mu);
    for (int k = 0; set && k < l->slots; k++) {
        set[k] = set[k] && l->block[k] <= covered; /* a deletion meanwhile */
        if (set[k])
            l->why[k] = fresh[k] ? NULL : e->why_dead, any = 1;
    }
    if (any)
        publish(l, s, fresh, set), s = NULL;
    if (st == LETHE_OK && covered > l->covered)
        l->covered = covered;
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; fresh && set && k < l->slots; k++)
        if (!set[k])
            comp_free(fresh[k]);
    free(s);
    free(fresh);
    free(set);
    return st;
}

/* One background run on the thread's own handle: retrain (SISA) or apply
 * (S3T) every recorded request, then serve the result. A handle that
 * failed is dropped, and opened again next time. */
static lethe_status background_run(lethe_live_t *l, lethe_sisa **sisa, lethe_s3t **s3t)
{
    lethe_status st = LETHE_OK;
    const lethe_ensemble *e;
    if (l->kind == K_SISA) {
        if (!*sisa)
            st = lethe_sisa_open(l->dir, sisa);
        if (st == LETHE_OK)
            st = lethe_sisa_sync(*sisa);
        e = *sisa ? &(*sisa)->e : NULL;
    } else {
        if (!*s3t)
            st = lethe_s3t_open(l->dir, s3t);
        if (st == LETHE_OK)
            st = lethe_s3t_apply(*s3t);
        e = *s3t ? &(*s3t)->e : NULL;
    }
    if (st == LETHE_OK)
        st = refresh(l, e, e->ledger->n_req);
    if (st != LETHE_OK) {
        lethe_sisa_free(*sisa);
        lethe_s3t_free(*s3t);
        *sisa = NULL, *s3t = NULL;
    }
    return st;
}

static void *worker(void *arg)
{
    lethe_live_t *l = arg;
    lethe_sisa *sisa = NULL;
    lethe_s3t *s3t = NULL;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->done == l->todo) {
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        long todo = l->todo;
        pthread_mutex_unlock(&l->mu);
        lethe_status st = background_run(l, &sisa, &s3t);
        pthread_mutex_lock(&l->mu);
        if (st == LETHE_OK) {
            l->done = todo;
            l->health = LETHE_OK, l->health_msg[0] = 0;
            continue;
        }
        set_health(l, st, lethe_error_detail());
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += RETRY_SECONDS;
        while (!l->stop && l->todo == todo &&
               pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&l->mu);
    lethe_sisa_free(sisa);
    lethe_s3t_free(s3t);
    return NULL;
}

/* ---- opening ---- */

static int exists(const char *dir, const char *name)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* An ensemble's kind, or K_NET for a run that open_single tells apart. */
static lethe_status detect(lethe_live_t *l)
{
    struct stat sb;
    if (stat(l->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_IO, "%s: no such directory", l->dir);
    l->kind = exists(l->dir, "sisa.json") ? K_SISA : exists(l->dir, "s3t.json") ? K_S3T : K_NET;
    if (l->kind == K_NET && !exists(l->dir, "config.json"))
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: not a run directory (no sisa.json, s3t.json "
                          "or config.json)", l->dir);
    return LETHE_OK;
}

/* An ensemble: the handle, the shards that serve, the background thread's
 * first run when requests are pending. */
static lethe_status open_ensemble(lethe_live_t *l)
{
    lethe_status st;
    if (l->kind == K_SISA) {
        if ((st = lethe_sisa_open(l->dir, &l->sisa)) == LETHE_OK)
            st = lethe_sisa_served(l->sisa);
        l->e = l->sisa ? &l->sisa->e : NULL;
    } else {
        st = lethe_s3t_open(l->dir, &l->s3t); /* applies what a crash left pending */
        if (st == LETHE_OK && !l->s3t->trained)
            st = lethe_fail(LETHE_ERR_INVALID, "%s: training has not finished", l->dir);
        l->e = l->s3t ? &l->s3t->e : NULL;
    }
    if (st != LETHE_OK)
        return st;
    lethe_ensemble *e = l->e;
    snprintf(l->spec, sizeof l->spec, "%s", e->spec);
    l->features = e->train->d;
    l->outputs = lethe_ensemble_outputs(e);
    l->classifier = e->train->task == LETHE_TASK_CLASSIFY;
    l->slots = e->shards;
    long pending = lethe_ledger_pending(e->ledger);
    comp **fresh = calloc((size_t)l->slots, sizeof *fresh);
    char *set = malloc((size_t)l->slots);
    snap *s = snap_alloc(l);
    l->block = calloc((size_t)l->slots, sizeof *l->block);
    l->why = calloc((size_t)l->slots, sizeof *l->why);
    st = fresh && set && s && l->block && l->why ? LETHE_OK
                                                 : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; st == LETHE_OK && k < l->slots; k++) {
        set[k] = 1;
        if (e->model[k][0])
            st = shard_comp(l, e, k, e->model[k], &fresh[k]);
        else if (pending && lethe_ensemble_samples(e, k) > 0) { /* SISA: stale */
            l->why[k] = WHY_RETRAIN;
            l->block[k] = e->ledger->n_req;
        } else {
            l->why[k] = e->why_dead;
        }
    }
    if (st == LETHE_OK) {
        publish(l, s, fresh, set);
        s = NULL;
        l->todo = pending > 0;
        l->covered = e->ledger->n_req;
    }
    for (int k = 0; st != LETHE_OK && fresh && k < l->slots; k++)
        comp_free(fresh[k]);
    free(s);
    free(fresh);
    free(set);
    return st;
}

/* A linear run (config.json's "model" is ridge or logistic; requests a
 * crash left pending are applied first) or a plain one. */
static lethe_status open_single(lethe_live_t *l)
{
    lethe_run *run = NULL;
    lethe_ledger *led = NULL;
    lethe_linear_kind lk;
    const lethe_task_info *info = NULL;
    lethe_status st = lethe_run_load(l->dir, &run), rd = LETHE_ERR_NOT_FOUND;
    const char *model = st ? NULL : cJSON_GetStringValue(cJSON_GetObjectItem(run->config, "model"));
    if (st == LETHE_OK && model && lethe_linear_kind_parse(model, &lk) == LETHE_OK)
        l->kind = lk == LETHE_LINEAR_RIDGE ? K_RIDGE : K_LOGISTIC;
    else if (st == LETHE_OK && (st = lethe_task_find(run->task, &info)) == LETHE_OK)
        lethe_error_clear(); /* a plain run: the kind parse's message is no failure */
    if (st == LETHE_OK && l->kind != K_NET)
        rd = lethe_ledger_read(l->dir, &led);
    if (rd == LETHE_OK && lethe_ledger_pending(led) > 0) {
        lethe_linear_forget_opts o = {0};
        lethe_linear_run *r = NULL;
        st = lethe_linear_run_forget(l->dir, &o, &r);
        lethe_linear_run_free(r);
        lethe_net_free(run->net); /* the file changed: load it again */
        run->net = NULL;
    } else if (rd != LETHE_OK && rd != LETHE_ERR_NOT_FOUND) {
        st = rd;
    }
    lethe_ledger_free(led);
    l->slots = 1;
    l->block = calloc(1, sizeof *l->block);
    l->why = calloc(1, sizeof *l->why);
    snap *s = snap_alloc(l);
    comp *c = NULL;
    if (st == LETHE_OK && (!l->block || !l->why || !s))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK) {
        l->classifier = l->kind == K_LOGISTIC || (info && info->task == LETHE_TASK_CLASSIFY);
        st = model_comp(l, run->net, &c);
        run->net = NULL; /* taken over */
    }
    if (st == LETHE_OK) {
        snprintf(l->spec, sizeof l->spec, "%s", c->net->spec);
        l->features = c->net->n_in;
        l->outputs = c->net->n_out;
        publish(l, s, &c, "\1"), s = NULL;
    }
    free(s);
    lethe_run_free(run);
    return st;
}

lethe_status lethe_live_open(const char *dir, lethe_live_t **out)
{
    *out = NULL;
    lethe_live_t *l = calloc(1, sizeof *l);
    if (!l)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&l->wmu, NULL);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    snprintf(l->dir, sizeof l->dir, "%s", dir);
    lethe_status st = detect(l);
    if (st == LETHE_OK)
        st = l->kind == K_SISA || l->kind == K_S3T ? open_ensemble(l) : open_single(l);
    if (st == LETHE_OK && l->e) {
        int rc = pthread_create(&l->thread, NULL, worker, l);
        if (rc != 0)
            st = lethe_fail(LETHE_ERR_FAILED, "%s: cannot start the background thread: %s", dir,
                            strerror(rc));
        l->started = rc == 0;
    }
    if (st != LETHE_OK) {
        lethe_live_free(l);
        return st;
    }
    *out = l;
    return LETHE_OK;
}

void lethe_live_free(lethe_live_t *l)
{
    if (!l)
        return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    snap_unref(l, l->cur);
    for (int i = 0; i < l->n_pool; i++)
        lethe_net_free(l->pool[i]);
    free(l->block);
    free(l->why);
    lethe_sisa_free(l->sisa);
    lethe_s3t_free(l->s3t);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->wmu);
    free(l);
}

const char *lethe_live_kind(const lethe_live_t *l) { return kind_name[l->kind]; }
long lethe_live_features(const lethe_live_t *l) { return l->features; }
long lethe_live_outputs(const lethe_live_t *l) { return l->outputs; }
int lethe_live_classifier(const lethe_live_t *l) { return l->classifier; }

/* ---- predictions ---- */

/* An idle work net, or a new one. */
static lethe_net *work_get(lethe_live_t *l)
{
    pthread_mutex_lock(&l->mu);
    lethe_net *w = l->n_pool ? l->pool[--l->n_pool] : NULL;
    pthread_mutex_unlock(&l->mu);
    return w ? w : lethe_net_init(l->spec);
}

static void work_put(lethe_live_t *l, lethe_net *w)
{
    pthread_mutex_lock(&l->mu);
    if (l->n_pool < POOL)
        l->pool[l->n_pool++] = w, w = NULL;
    pthread_mutex_unlock(&l->mu);
    lethe_net_free(w);
}

/* Outputs y (n, outputs) of rows x (n, features) under params, in batches
 * as lethe_predict makes them. */
static lethe_status forward_rows(const lethe_live_t *l, lethe_net *w, const float *params,
                                 const float *x, long n, float *y)
{
    for (long i = 0; i < n; i += BATCH) {
        int B = (int)(n - i < BATCH ? n - i : BATCH);
        const float *o = lethe_net_forward_with(w, params, x + i * l->features, B);
        if (!o)
            return LETHE_ERR_NOMEM;
        memcpy(y + i * l->outputs, o, sizeof(float) * (size_t)B * (size_t)l->outputs);
    }
    return LETHE_OK;
}

/* Why nothing serves (under mu). */
static lethe_status none_serves(const lethe_live_t *l)
{
    const char *why = "no model was loaded";
    int first = -1;
    for (int k = l->slots - 1; k >= 0; k--)
        if (l->why[k])
            why = l->why[k], first = k;
    if (!l->e)
        return lethe_fail(LETHE_ERR_FAILED, "%s: no model serves: %s", l->dir, why);
    return lethe_fail(LETHE_ERR_FAILED, "%s: no shard serves a model (shard %d: %s)", l->dir,
                      first, why);
}

lethe_status lethe_live_predict(lethe_live_t *l, const float *x, long n, long d, float *out,
                                char *components, size_t cap)
{
    if (components && cap)
        components[0] = 0;
    if (n < 1 || !x || !out)
        return lethe_fail(LETHE_ERR_INVALID, "a prediction needs at least one row");
    if (d != l->features)
        return lethe_fail(LETHE_ERR_INVALID, "rows of %ld features; the model takes %ld", d,
                          l->features);
    for (long i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return lethe_fail(LETHE_ERR_INVALID, "row %ld, feature %ld is not a finite number",
                              i / d, i % d);
    pthread_mutex_lock(&l->mu);
    snap *s = l->cur;
    s->refs++;
    lethe_status st = s->live ? LETHE_OK : none_serves(l);
    pthread_mutex_unlock(&l->mu);
    lethe_net *w = st == LETHE_OK ? work_get(l) : NULL;
    float *y = l->e && st == LETHE_OK ? malloc(sizeof(float) * (size_t)(n * l->outputs)) : NULL;
    if (st == LETHE_OK && (!w || (l->e && !y)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", n);
    if (st == LETHE_OK && l->e)
        memset(out, 0, sizeof(float) * (size_t)(n * l->outputs));
    size_t used = 0;
    for (int k = 0; st == LETHE_OK && k < l->slots; k++) {
        const comp *c = s->c[k];
        if (!c)
            continue;
        st = forward_rows(l, w, c->net->params, x, n, l->e ? y : out);
        if (st == LETHE_OK && l->e)
            ex_aggregate(l->e, y, out, n, l->outputs, s->live);
        if (components && used + 1 < cap) {
            int len = snprintf(components + used, cap - used, "%s%s", used ? "," : "", c->name);
            used = len < 0 ? used : used + (size_t)len < cap ? used + (size_t)len : cap - 1;
        }
    }
    free(y);
    if (w)
        work_put(l, w);
    pthread_mutex_lock(&l->mu);
    snap_unref(l, s);
    pthread_mutex_unlock(&l->mu);
    return st;
}

/* ---- deletions ---- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Record the request, then serve without what it touched: SISA drops the
 * shards, S3T switches them to their surviving prefixes. s: the next
 * snapshot, taken over. */
static lethe_status delete_ensemble(lethe_live_t *l, const uint64_t *ids, long n, long *req,
                                    snap *s)
{
    lethe_ensemble *e = l->e;
    lethe_rows rows = {0, malloc(sizeof(long) * (size_t)n)};
    comp **fresh = calloc((size_t)l->slots, sizeof *fresh);
    char *set = calloc((size_t)l->slots, 1), (*was)[65] = malloc(65 * (size_t)l->slots);
    lethe_status st = rows.row && fresh && set && was
                          ? LETHE_OK
                          : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; st == LETHE_OK && i < n; i++)
        if ((rows.row[rows.n++] = lethe_dataset_find(e->train, ids[i])) < 0)
            st = lethe_fail(LETHE_ERR_INVALID, "id %llu is not in the %s training set",
                            (unsigned long long)ids[i], e->task);
    if (st == LETHE_OK) {
        qsort(rows.row, (size_t)rows.n, sizeof(long), cmp_long);
        long k = 0;
        for (long i = 0; i < rows.n; i++)
            if (k == 0 || rows.row[k - 1] != rows.row[i])
                rows.row[k++] = rows.row[i];
        rows.n = k;
        memcpy(was, e->model, 65 * (size_t)l->slots);
        st = lethe_ensemble_request(e, &rows, req); /* durable from here on */
    }
    lethe_status load = LETHE_OK;
    if (st == LETHE_OK && l->kind == K_SISA) {
        for (long i = 0; i < rows.n; i++)
            set[e->shard_of[rows.row[i]]] = 1;
    } else if (st == LETHE_OK) {
        lethe_s3t_truncate(l->s3t);
        for (int k = 0; k < l->slots; k++) {
            set[k] = strcmp(was[k], e->model[k]) != 0;
            if (set[k] && e->model[k][0] && load == LETHE_OK)
                load = shard_comp(l, e, k, e->model[k], &fresh[k]);
        }
    }
    if (st == LETHE_OK) {
        pthread_mutex_lock(&l->mu);
        for (int k = 0; k < l->slots; k++)
            if (set[k]) {
                l->block[k] = *req;
                l->why[k] = fresh[k] ? NULL
                            : l->kind == K_SISA ? WHY_RETRAIN
                            : e->model[k][0]    ? WHY_LOAD
                                                : e->why_dead;
            }
        publish(l, s, fresh, set);
        s = NULL;
        if (load != LETHE_OK)
            set_health(l, load, lethe_error_detail());
        l->todo++;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    free(s);
    free(rows.row);
    free(fresh);
    free(set);
    free(was);
    return st;
}

/* Remove the samples from the linear run on disk, then serve its new
 * model. After a failure that may have come once the request was recorded,
 * serve what the directory holds, or nothing while its ledger holds a
 * request pending. */
static lethe_status delete_linear(lethe_live_t *l, const uint64_t *ids, long n, long *req, snap *s)
{
    lethe_linear_forget_opts o = {.id_list = ids, .n_id_list = n};
    lethe_linear_run *r = NULL;
    lethe_status st = lethe_linear_run_forget(l->dir, &o, &r), load = LETHE_OK;
    if (st == LETHE_ERR_INVALID) { /* refused: nothing recorded */
        free(s);
        return st;
    }
    char msg[512];
    long pending = 0;
    snprintf(msg, sizeof msg, "%s", lethe_error_detail());
    if (st == LETHE_OK) {
        *req = r->request;
    } else {
        lethe_ledger *led = NULL;
        lethe_status rd = lethe_ledger_read(l->dir, &led);
        pending = rd == LETHE_OK ? lethe_ledger_pending(led) : rd != LETHE_ERR_NOT_FOUND;
        lethe_ledger_free(led);
    }
    lethe_linear_run_free(r);
    comp *c = NULL;
    if (!pending)
        load = model_comp(l, NULL, &c);
    pthread_mutex_lock(&l->mu);
    l->block[0] = *req;
    l->why[0] = c ? NULL : pending ? WHY_PENDING : WHY_LOAD;
    if (st != LETHE_OK || load != LETHE_OK)
        set_health(l, st != LETHE_OK ? st : load, st != LETHE_OK ? msg : lethe_error_detail());
    publish(l, s, &c, "\1");
    pthread_mutex_unlock(&l->mu);
    return st == LETHE_OK ? LETHE_OK : lethe_fail(st, "%s", msg);
}

lethe_status lethe_live_delete(lethe_live_t *l, const uint64_t *ids, long n, long *req_id)
{
    *req_id = 0;
    if (l->kind == K_NET)
        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s is a plain classifier or regressor run: deletions need a SISA, S3T "
                          "or linear (ridge, logistic) run; retrain without the samples, or "
                          "unlearn them", l->dir);
    if (n < 1 || !ids)
        return lethe_fail(LETHE_ERR_INVALID, "a deletion needs at least one id");
    snap *s = snap_alloc(l); /* before the request: publishing cannot fail after it */
    if (!s)
        return LETHE_ERR_NOMEM;
    pthread_mutex_lock(&l->wmu);
    lethe_status st = l->e ? delete_ensemble(l, ids, n, req_id, s)
                           : delete_linear(l, ids, n, req_id, s);
    pthread_mutex_unlock(&l->wmu);
    return st;
}

/* ---- requests and health ---- */

lethe_status lethe_live_request_state(lethe_live_t *l, long req_id, lethe_req_state *state)
{
    lethe_ledger *led = NULL;
    lethe_status st = lethe_ledger_read(l->dir, &led);
    if (st == LETHE_ERR_NOT_FOUND || (st == LETHE_OK && (req_id < 1 || req_id > led->n_req)))
        st = lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no deletion request %ld (the ledger holds %ld)",
                        l->dir, req_id, led ? led->n_req : 0);
    if (st == LETHE_OK) {
        *state = led->req[req_id - 1].state;
        pthread_mutex_lock(&l->mu);
        if (l->e && req_id > l->covered) /* applied on disk, not yet served */
            *state = LETHE_REQ_RECEIVED;
        pthread_mutex_unlock(&l->mu);
    }
    lethe_ledger_free(led);
    return st;
}

long lethe_live_pending(lethe_live_t *l)
{
    lethe_ledger *led = NULL;
    lethe_status st = lethe_ledger_read(l->dir, &led);
    long n = st == LETHE_OK ? lethe_ledger_pending(led) : st == LETHE_ERR_NOT_FOUND ? 0 : -1;
    if (st == LETHE_ERR_NOT_FOUND)
        lethe_error_clear();
    lethe_ledger_free(led);
    return n;
}

lethe_status lethe_live_health(lethe_live_t *l, char *msg, size_t cap)
{
    pthread_mutex_lock(&l->mu);
    lethe_status st = l->health;
    if (msg && cap)
        snprintf(msg, cap, "%s", st == LETHE_OK ? "" : l->health_msg);
    pthread_mutex_unlock(&l->mu);
    return st;
}
