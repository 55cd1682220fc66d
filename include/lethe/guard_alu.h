/* ALU: agentic unlearning over any chat model (research/inference_time.md
 * §3, §10.3). The model's weights are never touched: a pipeline of calls to
 * a chat endpoint answers, audits and rewrites, with the guard's automaton
 * as the gate and the final check.
 *
 * For one query:
 *   1. vanilla   the chat model answers the query (A0).
 *   2. gate      the automaton scans the query and A0; with no target found,
 *                A0 is the answer (one call).
 *   3. erase     with the subjects (the names of the targets found), the
 *                model rewrites A0 k times (default 5) without them, as a
 *                JSON array of k strings.
 *   4. critic    the model rates each rewrite from 1 (the subjects are
 *                plain to see) to 5 (no trace, direct or indirect), as a
 *                JSON array of k integers.
 *   5. composer  the j best rewrites (default 3): when their mean rating is
 *                below 4.0, a refusal; otherwise the model merges them into
 *                one answer that adds nothing and alludes to no subject.
 *   6. audit     the automaton scans the merged answer; a match refuses.
 * Output the pipeline cannot read (a rewrite list or ratings that are not
 * the JSON asked for, an empty answer) is a refusal, never A0: the stage
 * that refused is reported. A call that fails (an endpoint that cannot be
 * reached, times out or returns malformed JSON) is an error, and nothing is
 * answered.
 *
 * The chat model is a callback (lethe_alu_chat), so the pipeline runs over
 * any endpoint; every call and its tokens are counted. */
#ifndef LETHE_GUARD_ALU_H
#define LETHE_GUARD_ALU_H

#include <stddef.h>

#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_file.h"
#include "lethe/tokenizer.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_ALU_MAX_K 16

/* One chat message. */
typedef struct lethe_alu_msg {
    const char *role; /* "system" or "user" */
    const char *content;
} lethe_alu_msg;

/* One call's token counts, as the endpoint reports them (0 when it does not). */
typedef struct lethe_alu_usage {
    long prompt_tokens, completion_tokens;
} lethe_alu_usage;

/* The chat model: the reply to msgs[0..n) into *reply (malloc'd, the
 * caller frees it) and its usage. Anything but LETHE_OK (detail set) stops
 * the pipeline with that error. */
typedef lethe_status (*lethe_alu_chat)(void *ctx, const lethe_alu_msg *msgs, int n,
                                       char **reply, lethe_alu_usage *usage);

typedef struct lethe_alu_cfg {
    int k;             /* rewrites (5) */
    int j;             /* best rewrites composed (3) */
    double threshold;  /* the least mean rating of the j best (4.0) */
    const char *refusal; /* the refusal text (LETHE_GUARD_REFUSAL's) */
} lethe_alu_cfg;

void lethe_alu_defaults(lethe_alu_cfg *c);

enum lethe_alu_stage {
    LETHE_ALU_PASSED = 0,   /* the gate found nothing: A0 */
    LETHE_ALU_COMPOSED = 1, /* the merged rewrite */
    LETHE_ALU_REFUSED_ERASE = 2,    /* the rewrites could not be read */
    LETHE_ALU_REFUSED_CRITIC = 3,   /* the ratings could not be read */
    LETHE_ALU_REFUSED_RATING = 4,   /* the best rewrites rated below the threshold */
    LETHE_ALU_REFUSED_AUDIT = 5,    /* the merged answer still names a target */
    LETHE_ALU_REFUSED_EMPTY = 6     /* the composer answered nothing */
};
const char *lethe_alu_stage_name(int stage); /* "passed", "composed", "refused_erase", ... */

typedef struct lethe_alu_result {
    char *text;       /* the answer or the refusal (owned) */
    int refused;
    int stage;        /* enum lethe_alu_stage */
    size_t targets;   /* targets the gate found */
    int calls;        /* chat calls made */
    long prompt_tokens, completion_tokens; /* summed over the calls */
    double mean_rating; /* of the j best (NaN when not rated) */
} lethe_alu_result;

/* Run the pipeline for query over chat (ctx its context) with the guard's
 * automaton and names; c may be NULL (defaults). res is overwritten; free
 * it with lethe_alu_result_free even on failure. LETHE_ERR_INVALID for a
 * bad setting; the chat callback's errors. */
lethe_status lethe_alu_answer(const lethe_alu_cfg *c, lethe_guard_t *g, lethe_alu_chat chat,
                              void *ctx, const char *query, lethe_alu_result *res);
void lethe_alu_result_free(lethe_alu_result *r);

/* ---- an OpenAI-compatible chat endpoint (libcurl) ---------------------------- */

typedef struct lethe_alu_endpoint {
    const char *url;     /* the server (http://host:port): requests go to
                            URL/v1/chat/completions, or to URL itself when it
                            already ends in /chat/completions */
    const char *model;   /* the "model" field (NULL: "default") */
    const char *api_key; /* sent as a bearer token (NULL: none) */
    double timeout_s;    /* the whole request, connection included (60) */
    int max_tokens;      /* per reply (512) */
} lethe_alu_endpoint;

void lethe_alu_endpoint_defaults(lethe_alu_endpoint *e);

/* A lethe_alu_chat over the endpoint ctx (a lethe_alu_endpoint): POSTs
 * {"model", "messages", "temperature": 0, "max_tokens"} and reads
 * choices[0].message.content and usage.prompt_tokens / completion_tokens.
 * LETHE_ERR_IO (an endpoint that cannot be reached, a timeout, an HTTP
 * status of 400 or more, with the status and the start of the body) and
 * LETHE_ERR_FORMAT (a body that is not that JSON), each with a one-line
 * detail naming the URL. Threads may call it at once. */
lethe_status lethe_alu_http_chat(void *ctx, const lethe_alu_msg *msgs, int n, char **reply,
                                 lethe_alu_usage *usage);

/* ---- a lethe GPT run in this process ---------------------------------------- */

/* The model answers the agents' messages as lethe serve's chat endpoint
 * would (docs/serving.md): the messages in its chat template (a system
 * message then "\n", a user message as "Question: ...\nAnswer:"), a greedy
 * reply of at most max_tokens, stopped at eot, without leading blanks.
 * A prompt longer than the context keeps its last tokens, leaving room for
 * a reply of min(max_tokens, a quarter of the context); each such call is
 * counted in truncated. Usage counts the tokens fed and generated. */
typedef struct lethe_alu_local {
    const lethe_gpt *model;
    const lethe_tokenizer_t *tok;
    int32_t eot;         /* the end-of-text id (-1: none) */
    int max_tokens;      /* per reply (256) */
    long truncated;      /* calls whose prompt was cut (updated atomically) */
} lethe_alu_local;

void lethe_alu_local_init(lethe_alu_local *l, const lethe_gpt *g, const lethe_tokenizer_t *tok,
                          int32_t eot);

/* A lethe_alu_chat over ctx (a lethe_alu_local). Threads may call it at
 * once. LETHE_ERR_INVALID for a bad message or setting, and as
 * lethe_gpt_generate and the tokenizer. */
lethe_status lethe_alu_local_chat(void *ctx, const lethe_alu_msg *msgs, int n, char **reply,
                                  lethe_alu_usage *usage);

LETHE_API_END
#endif
