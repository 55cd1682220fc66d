/* Live models (lethe/live.h): predictions equal the library's own; a
 * deletion takes what it touches out of the served set before it returns
 * (S3T's cut prefixes serve at once, SISA's shards come back after the
 * background retrain); pending requests are applied after a restart; linear
 * runs apply the removal inside the deletion; and while threads predict,
 * no prediction that started after a deletion returned uses a component it
 * took out. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../test.h"
#include "lethe/json.h"
#include "lethe/ledger.h"
#include "lethe/linear.h"
#include "lethe/live.h"
#include "lethe/progress.h"
#include "lethe/recipe.h"
#include "lethe/run.h"
#include "lethe/runlock.h"
#include "lethe/s3t.h"
#include "lethe/sisa.h"

#define COMPS 1024

static void remove_tree(const char *root)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", root);
}

/* A small digits recipe (fewer samples and epochs under test_quick). */
static int recipe(const char *widths, lethe_task_opts *o, lethe_train_cfg *cfg, char spec[512])
{
    lethe_dataset *tr, *te;
    lethe_recipe r;
    *o = (lethe_task_opts){.limit = test_quick() ? 200 : 400};
    if (lethe_task_load("digits", o, &tr, &te) != LETHE_OK)
        return 0;
    lethe_recipe_default(tr, "mlp", &r);
    if (widths)
        snprintf(r.widths, sizeof r.widths, "%s", widths);
    r.cfg.epochs = test_quick() ? 2 : 4;
    r.cfg.sched = LETHE_SCHED_CONSTANT;
    lethe_recipe_spec(&r, tr, spec, 512);
    *cfg = r.cfg;
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    return 1;
}

static lethe_sisa *make_sisa(const char *dir, int shards, int slices)
{
    lethe_task_opts o;
    lethe_train_cfg cfg;
    char spec[512];
    lethe_sisa *s = NULL;
    if (!recipe(NULL, &o, &cfg, spec) ||
        lethe_sisa_create(dir, "digits", &o, spec, &cfg, shards, slices, 7, LETHE_AGG_MEAN, NULL,
                          NULL, 0, &s) != LETHE_OK ||
        lethe_sisa_sync(s) != LETHE_OK) {
        fprintf(stderr, "  %s\n", lethe_error_detail());
        lethe_sisa_free(s);
        return NULL;
    }
    return s;
}

static lethe_s3t *make_s3t(const char *dir, int shards, int slices, int budget)
{
    lethe_task_opts o;
    lethe_train_cfg cfg;
    char spec[512];
    lethe_s3t *s = NULL;
    if (!recipe("32-32-32", &o, &cfg, spec) ||
        lethe_s3t_create(dir, "digits", &o, spec, &cfg, shards, slices, budget,
                         LETHE_S3T_CYCLIC, NULL, 0, 7, NULL, NULL, 0, &s) != LETHE_OK ||
        lethe_s3t_train(s) != LETHE_OK) {
        fprintf(stderr, "  %s\n", lethe_error_detail());
        lethe_s3t_free(s);
        return NULL;
    }
    return s;
}

/* The id of the nth training sample of (shard, slice); slice -1: any. */
static uint64_t id_in(const lethe_ensemble *e, int shard, int slice, int nth)
{
    for (long i = 0; i < e->train->n; i++)
        if (e->shard_of[i] == shard && (slice < 0 || e->slice_of[i] == slice) && nth-- == 0)
            return e->train->ids[i];
    return UINT64_MAX;
}

/* The key components names for shard k, "" when it names none. */
static void comp_key(const char *comps, int k, char key[65])
{
    char tag[32];
    int len = snprintf(tag, sizeof tag, "shard%d@", k);
    key[0] = 0;
    for (const char *p = comps; (p = strstr(p, tag)); p++)
        if (p == comps || p[-1] == ',') {
            snprintf(key, 65, "%.64s", p + len);
            return;
        }
}

/* Live predictions on e's test rows equal lethe_ensemble_predict's, bit
 * for bit; the components used into comps. */
static int same_as_ensemble(lethe_live_t *l, const lethe_ensemble *e, char *comps)
{
    long n = e->test->n, no = lethe_ensemble_outputs(e);
    float *a = malloc(sizeof(float) * (size_t)(n * no)), *b = malloc(sizeof(float) * (size_t)(n * no));
    int same = a && b &&
               lethe_live_predict(l, e->test->x, n, e->test->d, a, comps, COMPS) == LETHE_OK &&
               lethe_ensemble_predict(e, -1, e->test, NULL, b) == LETHE_OK &&
               !memcmp(a, b, sizeof(float) * (size_t)(n * no));
    if (!same)
        fprintf(stderr, "  %s\n", lethe_error_detail());
    free(a);
    free(b);
    return same;
}

/* Poll until request req is applied, for at most `seconds`. */
static int wait_applied(lethe_live_t *l, long req, double seconds)
{
    double t0 = lethe_now();
    lethe_req_state st = LETHE_REQ_RECEIVED;
    while (lethe_live_request_state(l, req, &st) == LETHE_OK && st != LETHE_REQ_APPLIED &&
           lethe_now() - t0 < seconds)
        usleep(2000);
    return st == LETHE_REQ_APPLIED;
}

TEST(live_predicts_as_the_ensemble)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300], comps[COMPS], key[65];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/sisa", root);
    lethe_sisa *s = make_sisa(dir, 3, 2);
    CHECK(s != NULL);
    lethe_live_t *l;
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK(!strcmp(lethe_live_kind(l), "sisa") && lethe_live_features(l) == 64 &&
          lethe_live_outputs(l) == 10 && lethe_live_classifier(l) == 1);
    CHECK_MSG(s->e.test->n > 256, "the test rows should span two batches");
    CHECK(same_as_ensemble(l, &s->e, comps));
    for (int k = 0; k < 3; k++) {
        comp_key(comps, k, key);
        CHECK_MSG(!strcmp(key, s->e.model[k]), "shard %d: %s", k, comps);
    }
    float out[10];
    CHECK_STATUS(lethe_live_predict(l, s->e.test->x, 1, 63, out, NULL, 0), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_live_predict(l, s->e.test->x, 0, 64, out, NULL, 0), LETHE_ERR_INVALID);
    /* components cut at cap, still terminated */
    char small[12];
    CHECK_OK(lethe_live_predict(l, s->e.test->x, 1, 64, out, small, sizeof small));
    CHECK(strlen(small) == sizeof small - 1 && !strncmp(small, "shard0@", 7));
    lethe_live_free(l);
    lethe_sisa_free(s);

    snprintf(dir, sizeof dir, "%s/s3t", root);
    lethe_s3t *t = make_s3t(dir, 2, 2, 2);
    CHECK(t != NULL);
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK(!strcmp(lethe_live_kind(l), "s3t") && lethe_live_outputs(l) == 10);
    CHECK(same_as_ensemble(l, &t->e, comps));
    for (int k = 0; k < 2; k++) {
        comp_key(comps, k, key);
        CHECK(!strcmp(key, t->e.model[k]));
    }
    lethe_live_free(l);
    lethe_s3t_free(t);
    remove_tree(root);
}

/* The checkpoint state.json records for shard k. */
static int state_checkpoint(const char *dir, int k, char key[65])
{
    char path[400];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "%s/state.json", dir);
    key[0] = 0;
    if (lethe_json_read(path, &j) != LETHE_OK)
        return 0;
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "shards"), k);
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, "checkpoint"));
    snprintf(key, 65, "%s", v ? v : "");
    cJSON_Delete(j);
    return v != NULL;
}

TEST(live_s3t_serves_the_cut_prefix_at_once)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300], comps[COMPS], old[65], now[65], rec[65];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/s3t", root);
    lethe_s3t *s = make_s3t(dir, 2, 2, 2); /* orders 0-1 and 1-0 */
    CHECK(s != NULL);
    lethe_live_t *l;
    CHECK_OK(lethe_live_open(dir, &l));
    float out[10];
    const float *x = s->e.test->x;
    CHECK_OK(lethe_live_predict(l, x, 1, 64, out, comps, COMPS));
    comp_key(comps, 0, old);
    CHECK(old[0] != 0);
    /* a sample of slice 1 of shard 0: order 0-1 keeps its prefix 0 */
    uint64_t id = id_in(&s->e, 0, 1, 0);
    long req = 0;
    double t0 = lethe_now();
    CHECK_OK(lethe_live_delete(l, &id, 1, &req));
    double t1 = lethe_now();
    CHECK_OK(lethe_live_predict(l, x, 1, 64, out, comps, COMPS));
    double t2 = lethe_now();
    comp_key(comps, 0, now);
    CHECK_MSG(!strstr(comps, old), "the old prefix still serves: %s", comps);
    CHECK_MSG(!strcmp(now, s->key[0]), "shard 0 serves %s", comps); /* shard 0, order 0, prefix 1 */
    printf("  s3t: the deletion took %.3f ms (ledger record, fsync, prefix load); the cut prefix "
           "served %.3f ms after it returned\n", 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    CHECK(t2 - t1 < 1.0);
    CHECK(req == 1 && wait_applied(l, req, 30));
    CHECK(lethe_live_pending(l) == 0);
    CHECK(state_checkpoint(dir, 0, rec) && !strcmp(rec, now));
    char health[256];
    CHECK_OK(lethe_live_health(l, health, sizeof health));
    /* the same as the library on a fresh handle, which the bookkeeping updated */
    lethe_s3t *fresh;
    CHECK_OK(lethe_s3t_open(dir, &fresh));
    CHECK(same_as_ensemble(l, &fresh->e, comps));
    /* the rest of the shard's first slice: shard 0 is dead, shard 1 serves */
    uint64_t first = id_in(&s->e, 0, 0, 0);
    CHECK_OK(lethe_live_delete(l, &first, 1, &req));
    CHECK_OK(lethe_live_predict(l, x, 1, 64, out, comps, COMPS));
    comp_key(comps, 0, now);
    CHECK(now[0] == 0 && strstr(comps, "shard1@"));
    /* shard 1 too: no model, and the prediction says why */
    uint64_t other = id_in(&s->e, 1, 0, 0), again = id_in(&s->e, 1, 1, 0);
    uint64_t both[2] = {other, again};
    CHECK_OK(lethe_live_delete(l, both, 2, &req));
    CHECK_STATUS(lethe_live_predict(l, x, 1, 64, out, comps, COMPS), LETHE_ERR_FAILED);
    CHECK(strstr(lethe_error_detail(), "no shard serves") && comps[0] == 0);
    lethe_s3t_free(fresh);
    lethe_live_free(l);
    lethe_s3t_free(s);
    remove_tree(root);
}

TEST(live_sisa_retrains_in_the_background)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300], comps[COMPS], old[65], now[65];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/sisa", root);
    lethe_sisa *s = make_sisa(dir, 3, 2);
    CHECK(s != NULL);
    lethe_live_t *l;
    CHECK_OK(lethe_live_open(dir, &l));
    float out[10];
    const float *x = s->e.test->x;
    CHECK_OK(lethe_live_predict(l, x, 1, 64, out, comps, COMPS));
    comp_key(comps, 1, old);
    CHECK(old[0] != 0 && lethe_live_pending(l) == 0);
    /* unknown ids are refused, naming the first; nothing is recorded */
    uint64_t id = id_in(&s->e, 1, -1, 0), bad[2] = {id, 999999};
    long req = 0;
    CHECK_STATUS(lethe_live_delete(l, bad, 2, &req), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "999999") && req == 0);
    lethe_ledger *led = NULL;
    CHECK_STATUS(lethe_ledger_read(dir, &led), LETHE_ERR_NOT_FOUND);
    CHECK_OK(lethe_live_delete(l, &id, 1, &req));
    CHECK(req == 1);
    CHECK_OK(lethe_live_predict(l, x, 1, 64, out, comps, COMPS));
    comp_key(comps, 1, now);
    CHECK_MSG(now[0] == 0 && !strstr(comps, old), "shard 1 still serves: %s", comps);
    CHECK(strstr(comps, "shard0@") && strstr(comps, "shard2@"));
    /* the same id again: refused, nothing recorded */
    CHECK_STATUS(lethe_live_delete(l, &id, 1, &req), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "already deleted by request 1"));
    CHECK_OK(lethe_ledger_read(dir, &led));
    CHECK(led->n_req == 1);
    lethe_ledger_free(led);
    /* the background retrain puts shard 1 back */
    double t0 = lethe_now();
    CHECK(wait_applied(l, 1, 120));
    printf("  sisa: shard 1 retrained and served again %.3f s after the deletion\n",
           lethe_now() - t0);
    CHECK(lethe_live_pending(l) == 0);
    lethe_sisa *fresh;
    CHECK_OK(lethe_sisa_open(dir, &fresh));
    CHECK_OK(lethe_sisa_sync(fresh));
    CHECK(fresh->trained_slices == 0); /* the background run did it all */
    CHECK(same_as_ensemble(l, &fresh->e, comps));
    comp_key(comps, 1, now);
    CHECK(now[0] && strcmp(now, old) && !strcmp(now, fresh->e.model[1]));
    lethe_sisa_free(fresh);
    lethe_live_free(l);
    lethe_sisa_free(s);
    remove_tree(root);
}

/* ---- predictions from several threads during deletions ---- */

#define READERS 4
#define MAX_DELETIONS 8

typedef struct load {
    lethe_live_t *l;
    const float *x;
    atomic_long returned;                /* deletions that have returned */
    atomic_int stop;
    char banned[MAX_DELETIONS][80];      /* what deletion d took out; set before
                                            `returned` passes d */
    atomic_long checked, violations, failures;
} load;

static void *reader(void *arg)
{
    load *g = arg;
    float *out = malloc(sizeof(float) * 8 * 10);
    char comps[COMPS];
    while (out && !atomic_load(&g->stop)) {
        long seen = atomic_load(&g->returned);
        if (lethe_live_predict(g->l, g->x, 8, 64, out, comps, sizeof comps) != LETHE_OK) {
            atomic_fetch_add(&g->failures, 1);
            continue;
        }
        for (long d = 0; d < seen; d++)
            if (strstr(comps, g->banned[d]))
                atomic_fetch_add(&g->violations, 1);
        if (seen)
            atomic_fetch_add(&g->checked, 1);
        usleep(test_quick() ? 2000 : 100); /* leave room to the background retrain */
    }
    free(out);
    return NULL;
}

/* Delete ids[d] from shard shard[d], one by one; the component each takes
 * out is banned from then on. Then wait for request *req to be applied. */
static void deletions(load *g, const uint64_t *ids, const int *shard, int n, long *req)
{
    char comps[COMPS], key[65];
    float out[10];
    for (int d = 0; d < n; d++) {
        usleep(20000);
        CHECK_OK(lethe_live_predict(g->l, g->x, 1, 64, out, comps, COMPS));
        comp_key(comps, shard[d], key);
        CHECK_MSG(key[0], "shard %d serves nothing before deletion %d", shard[d], d);
        snprintf(g->banned[d], sizeof g->banned[d], "shard%d@%s", shard[d], key);
        CHECK_OK(lethe_live_delete(g->l, &ids[d], 1, req));
        CHECK_OK(lethe_live_predict(g->l, g->x, 1, 64, out, comps, COMPS));
        CHECK_MSG(!strstr(comps, g->banned[d]), "deletion %d left %s", d, g->banned[d]);
        atomic_store(&g->returned, d + 1);
    }
    CHECK(wait_applied(g->l, *req, 120)); /* SISA: the retrained shards come back meanwhile */
    usleep(20000);
}

/* deletions() while READERS threads predict; 1 when no prediction that
 * started after a deletion returned used what it took out. */
static int deletions_under_load(load *g, const uint64_t *ids, const int *shard, int n)
{
    pthread_t th[READERS];
    int started = 0;
    long req = 0;
    while (started < READERS && pthread_create(&th[started], NULL, reader, g) == 0)
        started++;
    if (started == READERS)
        deletions(g, ids, shard, n, &req);
    atomic_store(&g->stop, 1);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    printf("  %s: %ld predictions checked after deletions, %ld violations\n",
           lethe_live_kind(g->l), atomic_load(&g->checked), atomic_load(&g->violations));
    return started == READERS && atomic_load(&g->violations) == 0 &&
           atomic_load(&g->failures) == 0 && atomic_load(&g->checked) > 0;
}

TEST(live_threads_s3t)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/s3t", root);
    lethe_s3t *s = make_s3t(dir, 2, 3, 3); /* orders 0-1-2, 1-2-0, 2-0-1 */
    CHECK(s != NULL);
    load g = {.x = s->e.test->x};
    CHECK_OK(lethe_live_open(dir, &g.l));
    /* shard 0 serves 2-0, then 0, then nothing; shard 1 serves 2-0 */
    const lethe_ensemble *e = &s->e;
    uint64_t ids[4] = {id_in(e, 0, 1, 0), id_in(e, 0, 2, 0), id_in(e, 1, 1, 0), id_in(e, 0, 0, 0)};
    int shard[4] = {0, 0, 1, 0};
    CHECK(deletions_under_load(&g, ids, shard, 4));
    lethe_live_free(g.l);
    lethe_s3t_free(s);
    remove_tree(root);
}

TEST(live_threads_sisa)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/sisa", root);
    lethe_sisa *s = make_sisa(dir, 3, 2);
    CHECK(s != NULL);
    load g = {.x = s->e.test->x};
    CHECK_OK(lethe_live_open(dir, &g.l));
    /* shard 0, then shard 2 while shard 0 retrains */
    const lethe_ensemble *e = &s->e;
    uint64_t ids[2] = {id_in(e, 0, -1, 0), id_in(e, 2, -1, 0)};
    int shard[2] = {0, 2};
    CHECK(deletions_under_load(&g, ids, shard, 2));
    lethe_live_free(g.l);
    lethe_sisa_free(s);
    remove_tree(root);
}

TEST(live_restart_applies_pending_requests)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300], comps[COMPS], old[65], now[65];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/sisa", root);
    lethe_sisa *s = make_sisa(dir, 3, 2);
    CHECK(s != NULL);
    /* a request recorded, never applied (a crash, or another process) */
    long row = lethe_dataset_find(s->e.train, id_in(&s->e, 2, -1, 0)), req = 0;
    lethe_rows rows = {1, &row};
    snprintf(old, sizeof old, "%s", s->e.model[2]);
    CHECK_OK(lethe_ensemble_request(&s->e, &rows, &req));
    /* hold the directory: the background retrain waits */
    lethe_runlock *lock;
    CHECK_OK(lethe_runlock_acquire(dir, 1, &lock));
    lethe_live_t *l;
    lethe_status st = lethe_live_open(dir, &l);
    if (st != LETHE_OK)
        lethe_runlock_release(lock);
    CHECK_OK(st);
    float out[10];
    lethe_req_state state = LETHE_REQ_APPLIED;
    st = lethe_live_predict(l, s->e.test->x, 1, 64, out, comps, COMPS);
    lethe_status st2 = lethe_live_request_state(l, req, &state);
    long pending = lethe_live_pending(l);
    lethe_runlock_release(lock);
    CHECK_OK(st);
    CHECK_OK(st2);
    comp_key(comps, 2, now);
    CHECK_MSG(now[0] == 0 && !strstr(comps, old), "a pending request's shard serves: %s", comps);
    CHECK(state == LETHE_REQ_RECEIVED && pending == 1);
    CHECK(wait_applied(l, req, 120));
    CHECK_OK(lethe_sisa_sync(s)); /* nothing left to train */
    CHECK(s->trained_slices == 0 && same_as_ensemble(l, &s->e, comps));
    comp_key(comps, 2, now);
    CHECK(now[0] && strcmp(now, old));
    /* a deletion, and a stop before the background run is done: the
     * restart serves nothing the request touched, and applies it */
    CHECK_OK(lethe_live_predict(l, s->e.test->x, 1, 64, out, comps, COMPS));
    comp_key(comps, 0, old);
    uint64_t id = id_in(&s->e, 0, -1, 0);
    CHECK_OK(lethe_live_delete(l, &id, 1, &req));
    lethe_live_free(l);
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK_OK(lethe_live_predict(l, s->e.test->x, 1, 64, out, comps, COMPS));
    CHECK(!strstr(comps, old));
    CHECK(wait_applied(l, req, 120) && lethe_live_pending(l) == 0);
    CHECK_OK(lethe_sisa_sync(s));
    CHECK(s->trained_slices == 0 && same_as_ensemble(l, &s->e, comps));
    lethe_live_free(l);
    lethe_sisa_free(s);

    /* S3T: the open applies what is pending and serves the cut prefix */
    snprintf(dir, sizeof dir, "%s/s3t", root);
    lethe_s3t *t = make_s3t(dir, 2, 2, 2);
    CHECK(t != NULL);
    row = lethe_dataset_find(t->e.train, id_in(&t->e, 1, 1, 0));
    CHECK_OK(lethe_ensemble_request(&t->e, &rows, &req));
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK_OK(lethe_live_request_state(l, req, &state));
    CHECK(state == LETHE_REQ_APPLIED);
    CHECK_STATUS(lethe_live_request_state(l, req + 1, &state), LETHE_ERR_NOT_FOUND);
    CHECK_OK(lethe_live_predict(l, t->e.test->x, 1, 64, out, comps, COMPS));
    comp_key(comps, 1, now);
    CHECK_MSG(!strcmp(now, t->key[(1 * 2 + 0) * 2 + 0]), "shard 1 serves %s", comps);
    lethe_live_free(l);
    lethe_s3t_free(t);
    remove_tree(root);
}

/* Outputs of the run in dir as lethe predict computes them, on ds. */
static int run_outputs(const char *dir, const lethe_dataset *ds, float *y)
{
    lethe_run *run = NULL;
    int ok = lethe_run_load(dir, &run) == LETHE_OK && lethe_predict(run->net, ds, NULL, y) == LETHE_OK;
    lethe_run_free(run);
    return ok;
}

TEST(live_linear_and_plain_runs)
{
    char root[] = "/tmp/lethe_live_XXXXXX", dir[300], comps[COMPS], before[COMPS];
    CHECK(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/ridge", root);
    lethe_linear_fit_opts fo;
    lethe_linear_fit_defaults(&fo);
    fo.data = "boston";
    lethe_linear_run *r = NULL;
    CHECK_OK(lethe_linear_run_fit(dir, &fo, &r));
    lethe_dataset *test = r->test;
    uint64_t other = r->train->ids[5] == 3 || r->train->ids[5] == 10 ? r->train->ids[6]
                                                                     : r->train->ids[5];
    r->test = NULL;
    lethe_linear_run_free(r);
    long n = test->n;
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    double *m = malloc(sizeof(double) * (size_t)n);
    CHECK(a && b && m);
    lethe_live_t *l;
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK(!strcmp(lethe_live_kind(l), "ridge") && lethe_live_features(l) == test->d &&
          lethe_live_outputs(l) == 1 && lethe_live_classifier(l) == 0);
    CHECK_OK(lethe_live_predict(l, test->x, n, test->d, a, before, COMPS));
    CHECK(run_outputs(dir, test, b) && !memcmp(a, b, sizeof(float) * (size_t)n));
    CHECK(!strncmp(before, "ridge@", 6) && strlen(before) == 6 + 16);
    /* the removal is on disk and served when the deletion returns */
    uint64_t ids[2] = {10, 3};
    long req = 0;
    CHECK_OK(lethe_live_delete(l, ids, 2, &req));
    lethe_req_state state = LETHE_REQ_RECEIVED;
    CHECK(req == 1 && lethe_live_request_state(l, req, &state) == LETHE_OK &&
          state == LETHE_REQ_APPLIED && lethe_live_pending(l) == 0);
    CHECK_OK(lethe_live_predict(l, test->x, n, test->d, a, comps, COMPS));
    CHECK(strcmp(comps, before) != 0);
    CHECK(run_outputs(dir, test, b) && !memcmp(a, b, sizeof(float) * (size_t)n));
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lethe_linear *lm = NULL;
    CHECK_OK(lethe_linear_load(path, 0, &lm));
    CHECK(lm->n_removed == 2 && lm->removed[0] == 3 && lm->removed[1] == 10);
    lethe_linear_predict(lm, test->x, n, m);
    for (long i = 0; i < n; i++)
        CHECK_CLOSE(a[i], m[i], 1e-5, 1e-5);
    lethe_linear_free(lm);
    /* bad ids: refused, naming the first, nothing recorded */
    uint64_t again[2] = {other, 3}, unknown[2] = {other, 987654};
    CHECK_STATUS(lethe_live_delete(l, again, 2, &req), LETHE_ERR_INVALID);
    CHECK_MSG(strstr(lethe_error_detail(), "id 3 ") && req == 0, "%s", lethe_error_detail());
    CHECK_STATUS(lethe_live_delete(l, unknown, 2, &req), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "987654"));
    lethe_ledger *led = NULL;
    CHECK_OK(lethe_ledger_read(dir, &led));
    CHECK(led->n_req == 1 && led->n_records == 2);
    lethe_ledger_free(led);
    lethe_live_free(l);
    /* a request a crash left pending is applied by the next open */
    CHECK_OK(lethe_ledger_read(dir, &led));
    uint64_t late = other;
    CHECK_OK(lethe_ledger_receive(led, &late, 1, &req));
    lethe_ledger_free(led);
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK(lethe_live_request_state(l, req, &state) == LETHE_OK && state == LETHE_REQ_APPLIED);
    CHECK_OK(lethe_live_predict(l, test->x, n, test->d, a, comps, COMPS));
    CHECK(run_outputs(dir, test, b) && !memcmp(a, b, sizeof(float) * (size_t)n));
    lethe_live_free(l);
    free(a), free(b), free(m);
    lethe_dataset_free(test);

    /* a plain classifier run serves, and refuses deletions */
    snprintf(dir, sizeof dir, "%s/net", root);
    lethe_net *net = lethe_net_init("in=4;linear=8;relu;linear=3");
    CHECK(net != NULL);
    lethe_net_init_params(net, 1);
    cJSON *config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "data", "iris");
    cJSON_AddStringToObject(config, "model", "mlp");
    const char *meta[] = {"method", "train"}; /* (NULL, 0) trips UBSan in lethe_run_save */
    lethe_status st = lethe_run_save(dir, net, config, meta, 1);
    cJSON_Delete(config);
    lethe_net_free(net);
    CHECK_OK(st);
    lethe_dataset *tr, *te;
    CHECK_OK(lethe_task_load("iris", NULL, &tr, &te));
    float *y = malloc(sizeof(float) * (size_t)te->n * 3), *z = malloc(sizeof(float) * (size_t)te->n * 3);
    CHECK_OK(lethe_live_open(dir, &l));
    CHECK(!strcmp(lethe_live_kind(l), "net") && lethe_live_classifier(l) == 1 &&
          lethe_live_outputs(l) == 3);
    CHECK_OK(lethe_live_predict(l, te->x, te->n, 4, y, comps, COMPS));
    CHECK(run_outputs(dir, te, z) && !memcmp(y, z, sizeof(float) * (size_t)te->n * 3));
    CHECK(!strncmp(comps, "net@", 4));
    uint64_t one = tr->ids[0];
    CHECK_STATUS(lethe_live_delete(l, &one, 1, &req), LETHE_ERR_UNSUPPORTED);
    CHECK(strstr(lethe_error_detail(), "SISA, S3T or linear"));
    lethe_live_free(l);
    free(y), free(z);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    /* not a run */
    CHECK_STATUS(lethe_live_open(root, &l), LETHE_ERR_NOT_FOUND);
    remove_tree(root);
}
