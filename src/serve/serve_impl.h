/* The server's parts (lethe/serve.h), kept apart from the HTTP library so
 * that routing and parsing run (and are fuzzed) on plain buffers:
 *   http.c     libmicrohttpd: bodies, limits, responses, streams
 *   route.c    routing, authority, errors, health, models, metrics
 *   parse.c    completion and chat requests into generation settings
 *   lm.c       the language model: the worker pool, generation, SSE
 *   exact.c    predictions and deletions over lethe/live.h, guard targets */
#ifndef LETHE_SERVE_IMPL_H
#define LETHE_SERVE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe/serve.h"
#include "lethe/status.h"

typedef struct serve_job serve_job;
typedef struct serve_lm serve_lm;
typedef struct lethe_live lethe_live_t;

/* ---- requests and responses -------------------------------------------- */

typedef struct serve_req {
    const char *method, *path; /* path without the query */
    const char *auth;          /* the Authorization header, or NULL */
    const char *body;          /* (len) not NUL-terminated */
    size_t len;
} serve_req;

typedef struct serve_resp {
    int status;
    const char *type; /* content type */
    char *body;       /* malloc'd (len), or NULL with stream */
    size_t len;
    serve_job *stream; /* a server-sent-event stream the connection drains */
} serve_resp;

/* ---- metrics ------------------------------------------------------------- */

#define SERVE_LAT_BUCKETS 12
enum { SERVE_EP_COMPLETIONS, SERVE_EP_CHAT, SERVE_EP_PREDICT, SERVE_EP_DELETIONS,
       SERVE_EP_GUARD, SERVE_EP_OTHER, SERVE_EP_N };

typedef struct serve_metrics {
    atomic_long requests[SERVE_EP_N];
    atomic_long errors[SERVE_EP_N]; /* 4xx and 5xx */
    atomic_long lat[SERVE_EP_N][SERVE_LAT_BUCKETS + 1]; /* cumulative by upper bound; +Inf */
    atomic_long lat_us_sum[SERVE_EP_N];
    atomic_long prompt_tokens, completion_tokens, refusals, flagged, deletions, ack_us_sum;
} serve_metrics;

/* ---- the server ----------------------------------------------------------- */

typedef struct lethe_serve {
    lethe_serve_cfg cfg;
    char model_name[256];
    char token[512];        /* "" when none */
    size_t token_len;
    atomic_int ready;       /* the run is loaded */
    long created;           /* start time, for /v1/models */
    serve_lm *lm;           /* a language model, or NULL */
    lethe_live_t *live;     /* a classifier or regressor run, or NULL */
    pthread_rwlock_t guard_lock; /* generation reads the guard; edits write */
    serve_metrics m;
    void *daemon;           /* struct MHD_Daemon */
    int port;
} serve;

/* ---- route.c ------------------------------------------------------------ */

/* Answer req into *resp (overwritten). Never fails: errors become OpenAI's
 * error envelope with their status. */
void serve_route(serve *s, const serve_req *req, serve_resp *resp);
/* An error envelope: {"error": {"message", "type", "param", "code"}}. */
void serve_error(serve_resp *r, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A JSON body (j is deleted). */
void serve_json(serve_resp *r, int status, cJSON *j);
/* A lethe status and its detail as an error: INVALID, FORMAT, NOT_FOUND 400
 * (404 with not_found), UNSUPPORTED 400, FAILED 503, the rest 500. */
void serve_status_error(serve_resp *r, lethe_status st, int not_found);
/* Record a finished request: endpoint, status, microseconds. */
void serve_metrics_record(serve *s, int ep, int status, long us);

/* ---- parse.c -------------------------------------------------------------- */

#define SERVE_MAX_STOP 4

typedef struct serve_gen_req {
    char *prompt;         /* malloc'd: the prompt, or the chat template's text */
    size_t prompt_len;
    char *query;          /* malloc'd: a chat's last user message (ALU's query);
                             NULL for a completion */
    int chat;             /* /v1/chat/completions */
    int max_tokens;       /* -1: the default */
    double temperature;   /* 1 */
    double top_p;         /* 1 */
    int stream;
    int include_usage;    /* stream_options.include_usage */
    int has_seed;
    uint64_t seed;
    char *stop[SERVE_MAX_STOP];
    int n_stop;
    char model[256];
} serve_gen_req;

/* Parse a completion (chat 0) or chat (chat 1) request body into *r
 * (overwritten; free with serve_gen_req_free even on failure). On a bad
 * request LETHE_ERR_INVALID with the detail set and *param the offending
 * field (or NULL). Unknown fields, n other than 1, penalties other than 0,
 * a chat whose last message is not the user's are refused. */
lethe_status serve_parse_gen(const char *body, size_t len, int chat, serve_gen_req *r,
                             const char **param);
void serve_gen_req_free(serve_gen_req *r);
/* The text of the chat template for lethe's question-answer layout
 * (docs/serving.md): an optional system line, then each user message as
 * "Question: ...\nAnswer:" and each assistant message as " ...\n"; the
 * last user message's text into *last_user (malloc'd) when it is not NULL. */
lethe_status serve_chat_template(const cJSON *messages, char **out, size_t *len,
                                 char **last_user, const char **param);
/* The length of the longest prefix of s[0..n) that is whole UTF-8. */
size_t serve_utf8_prefix(const unsigned char *s, size_t n);

/* Parse {"ids": [...]} (non-negative integers, 1..limit of them, each at
 * most 2^53) into a new array. */
lethe_status serve_parse_ids(const char *body, size_t len, long limit, uint64_t **ids, long *n);
/* Parse {"inputs": [[x, ...], ...]} (or one row [x, ...]): 1..limit rows of
 * d finite numbers each, into a new array x (n, d). */
lethe_status serve_parse_inputs(const char *body, size_t len, long d, long limit, float **x,
                                long *n);

/* ---- lm.c ------------------------------------------------------------------ */

/* Load the GPT run (and the guard) into s->lm. */
lethe_status serve_lm_open(serve *s);
void serve_lm_free(serve_lm *lm);
/* Answer a completion or chat request. */
void serve_lm_generate(serve *s, const serve_req *req, int chat, serve_resp *resp);
/* Whether it answers behind a guard. */
int serve_lm_guarded(const serve_lm *lm);
/* Serve the guard file's content anew (the caller holds guard_lock to
 * write); on failure the old guard stays. */
lethe_status serve_lm_reguard(serve *s);
/* The model's context length, vocabulary, whether it is guarded. */
void serve_lm_describe(const serve_lm *lm, cJSON *j);
/* The stream's next bytes into buf (cap): the count, 0 while waiting
 * timed out (call again), -1 at the end. */
long serve_job_read(serve_job *j, char *buf, size_t cap);
/* The connection is done with the stream (it may have gone away). */
void serve_job_release(serve_job *j);

/* ---- exact.c ---------------------------------------------------------------- */

void serve_predict(serve *s, const serve_req *req, serve_resp *resp);
void serve_deletion_post(serve *s, const serve_req *req, serve_resp *resp);
void serve_deletion_get(serve *s, const char *id, serve_resp *resp);
void serve_guard_targets(serve *s, const serve_req *req, const char *id, serve_resp *resp);

#endif
