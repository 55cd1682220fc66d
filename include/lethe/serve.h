/* Serving a run over HTTP: lethe's language models through OpenAI's
 * completion and chat API (plain, or behind an inference-time guard), and
 * classifier and regressor runs (a single net, SISA, S3T, ridge, logistic)
 * through a prediction endpoint with a deletion service (lethe/live.h).
 * docs/serving.md documents the endpoints.
 *
 * The HTTP layer is libmicrohttpd (a thread per connection, with a limit on
 * connections); JSON is cJSON. Generation runs on a fixed pool of worker
 * threads: a request waits in a queue for a worker, and a streamed answer
 * is handed to its connection token by token.
 *
 * Authority: mutating endpoints (deletions, guard targets) need the bearer
 * token read from token_file, compared in constant time; without a token
 * file they are refused (403). Read endpoints need it too unless
 * open_reads. A server on an address other than loopback refuses to start
 * without a token.
 *
 * Nothing here is global: several servers may run in one process. */
#ifndef LETHE_SERVE_H
#define LETHE_SERVE_H

#include <stddef.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_serve_cfg {
    const char *run;        /* the run directory served (required) */
    const char *guard;      /* a guard file for the language model (NULL: none) */
    const char *mode;       /* with guard: "guard" (default), "eco", or "alu" (ALU's
                               agents over the served model answer every request:
                               lethe/guard_alu.h, lethe_alu_local_chat) */
    const char *host;       /* address to listen on ("127.0.0.1") */
    int port;               /* 0: any free port (lethe_serve_port says which); 8080 */
    int threads;            /* generation workers (0: one per core) */
    const char *token_file; /* the bearer token's file (NULL: none) */
    int open_reads;         /* 1: reads (completions, predictions, lists, metrics)
                               need no token */
    const char *model_name; /* the model id /v1/models lists (NULL: the run's
                               directory name) */
    size_t max_body;        /* request bodies above this many bytes: 413 (1 MiB) */
    int max_prompt;         /* prompt tokens at most (0: the model's context) */
    int max_new;            /* max_tokens at most (256); the default is 16 */
    int timeout_s;          /* an idle connection is closed after this (30) */
    int gen_timeout_s;      /* a generation is cut off after this (120) */
    int max_connections;    /* connections at once (128) */
} lethe_serve_cfg;

void lethe_serve_defaults(lethe_serve_cfg *c);

typedef struct lethe_serve lethe_serve_t;

/* Listen, then load the run (GET /health answers 503 meanwhile), and
 * return serving. On failure nothing is left listening: LETHE_ERR_INVALID
 * (a bad setting, a non-loopback host without a token, an unreadable or
 * empty token file), LETHE_ERR_IO (the address is taken), the loaders'
 * errors. Free with lethe_serve_stop. */
lethe_status lethe_serve_start(const lethe_serve_cfg *c, lethe_serve_t **out);
/* The port it listens on. */
int lethe_serve_port(const lethe_serve_t *s);
/* Stop listening, finish the requests in flight, free everything. NULL is
 * a no-op. */
void lethe_serve_stop(lethe_serve_t *s);

LETHE_API_END
#endif
