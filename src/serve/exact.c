/* Predictions and deletions over a live run (lethe/live.h), and live edits
 * of the guard's targets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lethe/guard_fit.h"
#include "lethe/json.h"
#include "lethe/live.h"
#include "serve_impl.h"

#define MAX_ROWS 4096 /* rows per prediction request */
#define MAX_IDS 100000
#define COMPONENTS 4096

void serve_predict(serve *s, const serve_req *q, serve_resp *resp)
{
    long d = lethe_live_features(s->live), k = lethe_live_outputs(s->live), n = 0;
    float *x = NULL, *y = NULL;
    char comp[COMPONENTS];
    lethe_status st = serve_parse_inputs(q->body, q->len, d, MAX_ROWS, &x, &n);
    if (st != LETHE_OK) {
        serve_error(resp, 400, "inputs", "%s", lethe_error_detail());
        return;
    }
    if (!(y = malloc(sizeof(float) * (size_t)(n * k))))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = lethe_live_predict(s->live, x, n, d, y, comp, sizeof comp);
    if (st != LETHE_OK) {
        serve_status_error(resp, st, 0);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "object", "prediction");
        cJSON_AddStringToObject(j, "model", s->model_name);
        cJSON *outs = cJSON_AddArrayToObject(j, "outputs");
        cJSON *cls = lethe_live_classifier(s->live) ? cJSON_AddArrayToObject(j, "classes") : NULL;
        for (long r = 0; r < n; r++) {
            cJSON_AddItemToArray(outs, cJSON_CreateFloatArray(y + r * k, (int)k));
            long best = 0;
            for (long c = 1; c < k; c++)
                if (y[r * k + c] > y[r * k + best])
                    best = c;
            if (cls)
                cJSON_AddItemToArray(cls, cJSON_CreateNumber((double)best));
        }
        cJSON *c = cJSON_AddArrayToObject(j, "components");
        for (char *p = comp, *e; *p; p = *e ? e + 1 : e) {
            e = strchr(p, ',');
            if (!e)
                e = p + strlen(p);
            char save = *e;
            *e = 0;
            cJSON_AddItemToArray(c, cJSON_CreateString(p));
            *e = save;
        }
        serve_json(resp, 200, j);
    }
    free(x), free(y);
}

static cJSON *deletion(long id, lethe_req_state state)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)id);
    cJSON_AddStringToObject(j, "object", "deletion");
    cJSON_AddStringToObject(j, "status", state == LETHE_REQ_APPLIED ? "applied" : "received");
    return j;
}

void serve_deletion_post(serve *s, const serve_req *q, serve_resp *resp)
{
    if (!s->live) {
        serve_error(resp, 404, NULL, "this server serves a language model; deletions are for "
                                     "SISA, S3T and linear runs");
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t *ids = NULL;
    long n = 0, req = 0;
    lethe_status st = serve_parse_ids(q->body, q->len, MAX_IDS, &ids, &n);
    if (st != LETHE_OK) {
        serve_error(resp, 400, "ids", "%s", lethe_error_detail());
        return;
    }
    st = lethe_live_delete(s->live, ids, n, &req);
    free(ids);
    if (st != LETHE_OK) {
        serve_status_error(resp, st, 0);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long us = (long)((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000);
    atomic_fetch_add(&s->m.deletions, 1);
    atomic_fetch_add(&s->m.ack_us_sum, us);
    lethe_req_state state = LETHE_REQ_RECEIVED;
    lethe_live_request_state(s->live, req, &state);
    cJSON *j = deletion(req, state);
    cJSON_AddNumberToObject(j, "ids", (double)n);
    cJSON_AddNumberToObject(j, "ack_us", (double)us);
    serve_json(resp, 202, j);
}

void serve_deletion_get(serve *s, const char *id, serve_resp *resp)
{
    char *end;
    long req = strtol(id, &end, 10);
    lethe_req_state state;
    if (!s->live)
        serve_error(resp, 404, NULL, "this server takes no deletions");
    else if (*end || req < 1)
        serve_error(resp, 404, NULL, "no deletion request '%.40s'", id);
    else if (lethe_live_request_state(s->live, req, &state) != LETHE_OK)
        serve_error(resp, 404, NULL, "no deletion request %ld", req);
    else
        serve_json(resp, 200, deletion(req, state));
}

/* ---- guard targets -------------------------------------------------------- */

/* An array of strings (or absent) into a new array of pointers into j. */
static lethe_status strings(const cJSON *j, const char *key, const char ***out, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NULL, *n = 0;
    if (!a)
        return LETHE_OK;
    if (!cJSON_IsArray(a))
        return lethe_fail(LETHE_ERR_INVALID, "'%s' must be an array of strings", key);
    size_t k = (size_t)cJSON_GetArraySize(a);
    const char **v = calloc(k + 1, sizeof *v);
    if (!v)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (const cJSON *e = a->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            free(v);
            return lethe_fail(LETHE_ERR_INVALID, "'%s' must be an array of strings", key);
        }
        v[(*n)++] = e->valuestring;
    }
    *out = v;
    return LETHE_OK;
}

/* Apply e to the guard file, then serve the file's new content. */
static lethe_status edit(serve *s, const lethe_guard_edit *e, uint32_t *id)
{
    pthread_rwlock_wrlock(&s->guard_lock);
    lethe_status st = lethe_guard_file_edit(s->cfg.guard, e, id);
    if (st == LETHE_OK)
        st = serve_lm_reguard(s);
    pthread_rwlock_unlock(&s->guard_lock);
    return st;
}

static void target_add(serve *s, const serve_req *q, serve_resp *resp)
{
    cJSON *j = NULL;
    lethe_guard_edit e = {.op = LETHE_GUARD_EDIT_ADD};
    lethe_status st = lethe_json_parse(q->body, q->len, "request body", &j);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (st == LETHE_OK && (!cJSON_IsObject(j) || !cJSON_IsString(name)))
        st = lethe_fail(LETHE_ERR_INVALID, "the body must be an object with a 'name' (and "
                                           "'aliases', 'answers', 'ngrams' arrays)");
    for (const cJSON *v = st ? NULL : j->child; v && st == LETHE_OK; v = v->next)
        if (strcmp(v->string, "name") && strcmp(v->string, "aliases") &&
            strcmp(v->string, "answers") && strcmp(v->string, "ngrams"))
            st = lethe_fail(LETHE_ERR_INVALID, "unrecognized request argument supplied: %.100s",
                            v->string);
    if (st == LETHE_OK)
        e.name = name->valuestring;
    if (st == LETHE_OK)
        st = strings(j, "aliases", (const char ***)&e.aliases, &e.n_aliases);
    if (st == LETHE_OK)
        st = strings(j, "answers", (const char ***)&e.answers, &e.n_answers);
    if (st == LETHE_OK)
        st = strings(j, "ngrams", (const char ***)&e.ngrams, &e.n_ngrams);
    uint32_t id = 0;
    if (st == LETHE_OK && (st = edit(s, &e, &id)) == LETHE_OK) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", id);
        cJSON_AddStringToObject(o, "name", e.name);
        cJSON_AddStringToObject(o, "object", "guard.target");
        serve_json(resp, 201, o);
    } else {
        serve_error(resp, 400, NULL, "%s", lethe_error_detail());
    }
    free((void *)e.aliases), free((void *)e.answers), free((void *)e.ngrams);
    cJSON_Delete(j);
}

void serve_guard_targets(serve *s, const serve_req *q, const char *id, serve_resp *resp)
{
    if (!s->lm || !serve_lm_guarded(s->lm)) {
        serve_error(resp, 404, NULL, "this server has no guard (--guard)");
        return;
    }
    if (!strcmp(q->method, "GET") && !id) {
        cJSON *j = NULL;
        pthread_rwlock_rdlock(&s->guard_lock);
        lethe_status st = lethe_guard_file_describe(s->cfg.guard, 0, &j);
        pthread_rwlock_unlock(&s->guard_lock);
        if (st == LETHE_OK)
            serve_json(resp, 200, j);
        else
            serve_status_error(resp, st, 0);
    } else if (!strcmp(q->method, "POST") && !id) {
        target_add(s, q, resp);
    } else if (!strcmp(q->method, "DELETE") && id) {
        char *end;
        long v = strtol(id, &end, 10);
        lethe_guard_edit e = {.op = LETHE_GUARD_EDIT_REMOVE, .id = (uint32_t)v};
        lethe_status st = *end || v < 0 || v > (long)UINT32_MAX
                              ? lethe_fail(LETHE_ERR_NOT_FOUND, "no target '%.40s'", id)
                              : edit(s, &e, NULL);
        if (st == LETHE_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)v);
            cJSON_AddBoolToObject(o, "deleted", 1);
            serve_json(resp, 200, o);
        } else {
            serve_status_error(resp, st, 1);
        }
    } else {
        serve_error(resp, 405, NULL, "%s is not allowed on %s", q->method, q->path);
    }
}
