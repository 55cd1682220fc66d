/* Routing, authority, OpenAI's error envelope, health, the model list and
 * the metrics in Prometheus' text format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/live.h"
#include "serve_impl.h"

/* Latency buckets' upper bounds, in seconds. */
static const double lat_le[SERVE_LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,   0.25,   0.5,   1,    2.5,   10};
static const char *const ep_name[SERVE_EP_N] = {"completions", "chat", "predict",
                                                "deletions",   "guard", "other"};

void serve_json(serve_resp *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    r->status = s ? status : 500;
    r->type = "application/json";
    r->body = s ? s : strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}");
    r->len = r->body ? strlen(r->body) : 0;
}

static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void serve_error(serve_resp *r, int status, const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param)
        cJSON_AddStringToObject(e, "param", param);
    else
        cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    serve_json(r, status, j);
}

void serve_status_error(serve_resp *r, lethe_status st, int not_found)
{
    int code = 500;
    switch (st) {
    case LETHE_ERR_INVALID:
    case LETHE_ERR_FORMAT:
    case LETHE_ERR_UNSUPPORTED: code = 400; break;
    case LETHE_ERR_NOT_FOUND: code = not_found ? 404 : 400; break;
    case LETHE_ERR_FAILED: code = 503; break;
    default: break;
    }
    serve_error(r, code, NULL, "%s", lethe_error_detail());
}

void serve_metrics_record(serve *s, int ep, int status, long us)
{
    atomic_fetch_add(&s->m.requests[ep], 1);
    if (status >= 400)
        atomic_fetch_add(&s->m.errors[ep], 1);
    int b = 0;
    while (b < SERVE_LAT_BUCKETS && (double)us > lat_le[b] * 1e6)
        b++;
    atomic_fetch_add(&s->m.lat[ep][b], 1);
    atomic_fetch_add(&s->m.lat_us_sum[ep], us);
}

/* Constant-time comparison of the Authorization header with the token. */
static int authorised(const serve *s, const char *auth)
{
    if (!s->token_len || !auth || strncmp(auth, "Bearer ", 7))
        return 0;
    const char *t = auth + 7;
    size_t n = strlen(t);
    unsigned char diff = (unsigned char)(n != s->token_len);
    for (size_t i = 0; i < s->token_len; i++)
        diff |= (unsigned char)(s->token[i] ^ (i < n ? t[i] : 0));
    return diff == 0;
}

static void metrics(serve *s, serve_resp *r)
{
    size_t cap = 16384, n = 0;
    char *b = malloc(cap);
    if (!b) {
        serve_error(r, 500, NULL, "out of memory");
        return;
    }
#define OUT(...) n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__)
    OUT("# HELP lethe_requests_total Requests answered, by endpoint.\n"
        "# TYPE lethe_requests_total counter\n");
    for (int e = 0; e < SERVE_EP_N; e++)
        OUT("lethe_requests_total{endpoint=\"%s\"} %ld\n", ep_name[e],
            atomic_load(&s->m.requests[e]));
    OUT("# HELP lethe_request_errors_total Requests answered with a 4xx or 5xx status.\n"
        "# TYPE lethe_request_errors_total counter\n");
    for (int e = 0; e < SERVE_EP_N; e++)
        OUT("lethe_request_errors_total{endpoint=\"%s\"} %ld\n", ep_name[e],
            atomic_load(&s->m.errors[e]));
    OUT("# HELP lethe_request_seconds Time from a request's last byte to its answer.\n"
        "# TYPE lethe_request_seconds histogram\n");
    for (int e = 0; e < SERVE_EP_N; e++) {
        long cum = 0;
        for (int k = 0; k <= SERVE_LAT_BUCKETS; k++) {
            cum += atomic_load(&s->m.lat[e][k]);
            if (k < SERVE_LAT_BUCKETS)
                OUT("lethe_request_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %ld\n", ep_name[e],
                    lat_le[k], cum);
            else
                OUT("lethe_request_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %ld\n",
                    ep_name[e], cum);
        }
        OUT("lethe_request_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_name[e],
            (double)atomic_load(&s->m.lat_us_sum[e]) / 1e6);
        OUT("lethe_request_seconds_count{endpoint=\"%s\"} %ld\n", ep_name[e], cum);
    }
    OUT("# HELP lethe_tokens_total Tokens read and generated.\n"
        "# TYPE lethe_tokens_total counter\n"
        "lethe_tokens_total{kind=\"prompt\"} %ld\nlethe_tokens_total{kind=\"completion\"} %ld\n",
        atomic_load(&s->m.prompt_tokens), atomic_load(&s->m.completion_tokens));
    OUT("# HELP lethe_guard_flagged_total Prompts the guard flagged.\n"
        "# TYPE lethe_guard_flagged_total counter\nlethe_guard_flagged_total %ld\n"
        "# HELP lethe_refusals_total Answers the guard refused.\n"
        "# TYPE lethe_refusals_total counter\nlethe_refusals_total %ld\n",
        atomic_load(&s->m.flagged), atomic_load(&s->m.refusals));
    OUT("# HELP lethe_deletions_total Deletion requests acknowledged.\n"
        "# TYPE lethe_deletions_total counter\nlethe_deletions_total %ld\n"
        "# HELP lethe_deletion_ack_seconds_sum Time from deletion request to acknowledgement.\n"
        "# TYPE lethe_deletion_ack_seconds_sum counter\nlethe_deletion_ack_seconds_sum %.6f\n",
        atomic_load(&s->m.deletions), (double)atomic_load(&s->m.ack_us_sum) / 1e6);
    if (s->live)
        OUT("# HELP lethe_deletions_pending Deletion requests not yet applied.\n"
            "# TYPE lethe_deletions_pending gauge\nlethe_deletions_pending %ld\n",
            lethe_live_pending(s->live));
#undef OUT
    if (n >= cap) { /* cannot happen with the fixed set above; say so rather than cut */
        free(b);
        serve_error(r, 500, NULL, "metrics overflow");
        return;
    }
    r->status = 200, r->type = "text/plain; version=0.0.4", r->body = b, r->len = n;
}

static void models(serve *s, serve_resp *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "object", "list");
    cJSON *a = cJSON_AddArrayToObject(j, "data"), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(a, m);
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "lethe");
    if (s->lm)
        serve_lm_describe(s->lm, m);
    if (s->live) {
        cJSON_AddStringToObject(m, "kind", lethe_live_kind(s->live));
        cJSON_AddNumberToObject(m, "features", (double)lethe_live_features(s->live));
        cJSON_AddNumberToObject(m, "outputs", (double)lethe_live_outputs(s->live));
    }
    serve_json(r, 200, j);
}

static int is(const serve_req *q, const char *method, const char *path)
{
    return !strcmp(q->method, method) && !strcmp(q->path, path);
}

/* The rest of path after prefix (a non-empty segment), or NULL. */
static const char *tail(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) || !path[n] || strchr(path + n, '/'))
        return NULL;
    return path + n;
}

void serve_route(serve *s, const serve_req *q, serve_resp *r)
{
    memset(r, 0, sizeof *r);
    if (is(q, "GET", "/health")) {
        cJSON *j = cJSON_CreateObject();
        int ok = atomic_load(&s->ready);
        cJSON_AddStringToObject(j, "status", ok ? "ok" : "loading");
        if (ok && s->live)
            cJSON_AddNumberToObject(j, "deletions_pending", (double)lethe_live_pending(s->live));
        serve_json(r, ok ? 200 : 503, j);
        return;
    }
    if (!atomic_load(&s->ready)) {
        serve_error(r, 503, NULL, "the model is loading; retry shortly");
        return;
    }
    const char *del_id = tail(q->path, "/v1/deletions/");
    const char *tgt_id = tail(q->path, "/v1/guard/targets/");
    int mutating = is(q, "POST", "/v1/deletions") || !strncmp(q->path, "/v1/guard/", 10);
    if (mutating && !strcmp(q->method, "GET") && s->cfg.open_reads)
        mutating = 0; /* listing the targets is a read */
    if ((mutating || (s->token_len && !s->cfg.open_reads)) && !authorised(s, q->auth)) {
        if (!s->token_len)
            serve_error(r, 403, NULL, "this server has no token (--token-file), so it takes "
                                      "no changes");
        else
            serve_error(r, 401, NULL, "a valid bearer token is required "
                                      "(Authorization: Bearer TOKEN)");
        return;
    }
    if (is(q, "GET", "/v1/models"))
        models(s, r);
    else if (is(q, "GET", "/metrics"))
        metrics(s, r);
    else if (is(q, "POST", "/v1/completions") || is(q, "POST", "/v1/chat/completions")) {
        if (s->lm)
            serve_lm_generate(s, q, !strcmp(q->path, "/v1/chat/completions"), r);
        else
            serve_error(r, 404, NULL, "this server serves a %s run: use /v1/predict",
                        s->live ? lethe_live_kind(s->live) : "prediction");
    } else if (is(q, "POST", "/v1/predict")) {
        if (s->live)
            serve_predict(s, q, r);
        else
            serve_error(r, 404, NULL, "this server serves a language model: use "
                                      "/v1/completions or /v1/chat/completions");
    } else if (is(q, "POST", "/v1/deletions") && !s->live) {
        serve_error(r, 404, NULL, "this server serves a language model; deletions are for "
                                  "SISA, S3T and linear runs");
    } else if (is(q, "POST", "/v1/deletions")) {
        serve_deletion_post(s, q, r);
    } else if (!strcmp(q->method, "GET") && del_id) {
        serve_deletion_get(s, del_id, r);
    } else if (!strcmp(q->path, "/v1/guard/targets") || tgt_id) {
        serve_guard_targets(s, q, tgt_id, r);
    } else {
        static const char *const known[] = {"/health", "/metrics", "/v1/models",
                                            "/v1/completions", "/v1/chat/completions",
                                            "/v1/predict", "/v1/deletions", NULL};
        int path_known = del_id != NULL;
        for (int i = 0; known[i]; i++)
            path_known |= !strcmp(q->path, known[i]);
        if (path_known)
            serve_error(r, 405, NULL, "%s is not allowed on %s", q->method, q->path);
        else
            serve_error(r, 404, NULL, "no endpoint %s %s", q->method, q->path);
    }
}
