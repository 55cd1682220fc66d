/* The language model behind /v1/completions and /v1/chat/completions: a
 * fixed pool of workers takes generation jobs from a queue; a job streams
 * its text token by token (server-sent events) or answers once at the end.
 * Behind a guard, a prompt the guard does not flag is decoded as any other;
 * a flagged one goes through lethe_guard_serve_generate (GUARD's beam
 * search, ECO's corrupted embeddings) under the server's guard lock (read),
 * and its answer comes whole. In ALU's mode every request goes through
 * lethe_alu_answer, the served model being the agents' chat model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/guard_alu.h"
#include "lethe/guard_serve.h"
#include "lethe/tokenizer.h"
#include "serve_impl.h"

#define SERVE_MAX_BATCH 16 /* sequences a worker steps together */

typedef struct serve_worker {
    serve_lm *lm;
    pthread_t thread;
    lethe_gen_batch_t *batch; /* its scratch */
} serve_worker;

struct serve_lm {
    lethe_gpt_dir dir;
    lethe_guard_t *gd;         /* under the server's guard_lock */
    lethe_guard_serve_t *gs;
    int alu;                   /* ALU's mode: gd only, no gs */
    serve_worker *workers;
    int n_workers, cap_workers; /* running; allocated */
    pthread_mutex_t mu;        /* the queue */
    pthread_cond_t cv;
    serve_job *head, *tail;
    int quit;
    atomic_long next_id;
};

struct serve_job {
    serve *s;
    serve_gen_req req;
    int32_t *ids;
    int n_ids, max_new;
    lethe_gen_opts opts;       /* the sequence's options (they point into the job) */
    lethe_gen_seq_t *seq;      /* the sequence while it generates */
    uint64_t seed;
    long id, created;
    struct timespec deadline;
    serve_job *next;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done;
    atomic_int cancel;
    /* the answer so far */
    uint32_t *toks;
    int n_toks, used;          /* tokens decoded; tokens generated (with end-of-text) */
    char *text;                /* decoded, NUL-terminated */
    size_t text_len, sent;     /* bytes of text streamed so far */
    char *out;                 /* event bytes not yet read by the connection */
    size_t out_len, out_cap, out_pos;
    int lead_done;             /* chat: the answer's leading blanks are skipped */
    int stop, flagged, refused;
    lethe_alu_result alu;      /* ALU's mode: its stage, calls and tokens */
    lethe_status st;
    char err[512];
};

/* ---- jobs ------------------------------------------------------------------- */

static void job_free(serve_job *j)
{
    serve_gen_req_free(&j->req);
    lethe_alu_result_free(&j->alu);
    lethe_gen_seq_free(j->seq);
    free(j->ids), free(j->toks), free(j->text), free(j->out);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void job_unref(serve_job *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (!left)
        job_free(j);
}

void serve_job_release(serve_job *j)
{
    atomic_store(&j->cancel, 1);
    job_unref(j);
}

/* Append bytes to the event buffer (under j->mu). */
static int out_append(serve_job *j, const char *b, size_t n)
{
    if (j->out_len + n > j->out_cap) {
        size_t cap = (j->out_len + n) * 2 + 256;
        char *o = realloc(j->out, cap);
        if (!o)
            return -1;
        j->out = o, j->out_cap = cap;
    }
    memcpy(j->out + j->out_len, b, n);
    j->out_len += n;
    return 0;
}

long serve_job_read(serve_job *j, char *buf, size_t cap)
{
    pthread_mutex_lock(&j->mu);
    if (j->out_pos == j->out_len && !j->done) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&j->cv, &j->mu, &t);
    }
    long n = (long)(j->out_len - j->out_pos);
    if (n > (long)cap)
        n = (long)cap;
    if (n > 0) {
        memcpy(buf, j->out + j->out_pos, (size_t)n);
        j->out_pos += (size_t)n;
    } else if (j->done) {
        n = -1;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* ---- answers -------------------------------------------------------------- */

static const char *finish_reason(const serve_job *j)
{
    return j->stop == LETHE_GEN_EOS || j->stop == LETHE_GEN_STOP || j->refused ? "stop"
                                                                                : "length";
}

static cJSON *envelope(const serve_job *j, int chunk)
{
    cJSON *o = cJSON_CreateObject();
    char id[48];
    snprintf(id, sizeof id, "%s-%ld", j->req.chat ? "chatcmpl" : "cmpl", j->id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "object", j->req.chat ? (chunk ? "chat.completion.chunk"
                                                              : "chat.completion")
                                                     : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->s->model_name);
    return o;
}

static cJSON *usage(const serve_job *j)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_ids);
    cJSON_AddNumberToObject(u, "completion_tokens", j->used);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_ids + j->used);
    return u;
}

/* One choice: text (n bytes) as a completion's text or a chat delta or
 * message; finish NULL while streaming. */
static cJSON *choice(const serve_job *j, const char *text, size_t n, int chunk,
                     const char *finish, int first)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    char *t = malloc(n + 1);
    if (t) {
        memcpy(t, text, n);
        t[n] = 0;
    }
    if (!j->req.chat) {
        cJSON_AddStringToObject(c, "text", t ? t : "");
    } else {
        cJSON *m = cJSON_AddObjectToObject(c, chunk ? "delta" : "message");
        if (!chunk || first)
            cJSON_AddStringToObject(m, "role", "assistant");
        if (!chunk || n || first)
            cJSON_AddStringToObject(m, "content", t ? t : "");
    }
    free(t);
    cJSON_AddNullToObject(c, "logprobs");
    if (finish)
        cJSON_AddStringToObject(c, "finish_reason", finish);
    else
        cJSON_AddNullToObject(c, "finish_reason");
    return c;
}

/* An event "data: JSON\n\n" (under j->mu). */
static void event(serve_job *j, cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s || out_append(j, "data: ", 6) || out_append(j, s, strlen(s)) ||
        out_append(j, "\n\n", 2))
        atomic_store(&j->cancel, 1);
    free(s);
}

static void chunk_event(serve_job *j, const char *text, size_t n, const char *finish, int first)
{
    cJSON *o = envelope(j, 1), *a = cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToArray(a, choice(j, text, n, 1, finish, first));
    event(j, o);
}

/* Replace bytes that are not UTF-8 with '?' so the JSON stays valid. */
static void utf8_clean(char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = serve_utf8_prefix((const unsigned char *)s + i, n - i < 4 ? n - i : 4);
        unsigned c = (unsigned char)s[i];
        size_t w = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = w && k >= w;
        for (size_t t = 1; ok && t < w; t++)
            ok = ((unsigned char)s[i + t] & 0xC0) == 0x80;
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += w;
    }
}

/* Bytes of text that may be sent now: whole UTF-8, and no suffix that could
 * begin a stop string. */
static size_t sendable(const serve_job *j)
{
    size_t n = serve_utf8_prefix((const unsigned char *)j->text, j->text_len);
    size_t hold = 0;
    for (int i = 0; i < j->req.n_stop; i++) {
        size_t m = strlen(j->req.stop[i]);
        for (size_t k = m - 1; k > hold; k--)
            if (k <= n && !memcmp(j->text + n - k, j->req.stop[i], k)) {
                hold = k;
                break;
            }
    }
    return n - hold;
}

/* The start of what to send: chat answers lose the template's leading space. */
static void skip_lead(serve_job *j)
{
    if (!j->req.chat || j->lead_done)
        return;
    while (j->sent < j->text_len && (j->text[j->sent] == ' ' || j->text[j->sent] == '\n'))
        j->sent++;
    j->lead_done = j->sent < j->text_len;
}

/* Decode the tokens so far and send what may be sent; nonzero on failure. */
static int stream_piece(serve_job *j)
{
    unsigned char *b = NULL;
    size_t n = 0;
    if (lethe_tokenizer_decode(j->s->lm->dir.tok, j->toks, (size_t)j->n_toks, &b, &n))
        return 1;
    pthread_mutex_lock(&j->mu);
    free(j->text);
    j->text = (char *)b, j->text_len = n;
    skip_lead(j);
    size_t e = sendable(j);
    if (e > j->sent) {
        char *piece = j->text + j->sent;
        size_t len = e - j->sent;
        char keep = piece[len];
        piece[len] = 0;
        utf8_clean(piece, len);
        chunk_event(j, piece, len, NULL, 0);
        piece[len] = keep;
        j->sent = e;
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static int on_token(void *ctx, int32_t t, float lp)
{
    (void)lp;
    serve_job *j = ctx;
    j->toks[j->n_toks++] = (uint32_t)t;
    if (j->req.stream && stream_piece(j))
        return 1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return atomic_load(&j->cancel) || now.tv_sec > j->deadline.tv_sec ||
           (now.tv_sec == j->deadline.tv_sec && now.tv_nsec >= j->deadline.tv_nsec);
}

/* Cut the text at the first stop string (OpenAI leaves it out). */
static void cut_stop(serve_job *j)
{
    size_t cut = j->text_len;
    for (int i = 0; i < j->req.n_stop; i++) {
        char *p = strstr(j->text, j->req.stop[i]);
        if (p && (size_t)(p - j->text) < cut)
            cut = (size_t)(p - j->text);
    }
    if (cut < j->text_len) {
        j->text[cut] = 0, j->text_len = cut;
        j->stop = LETHE_GEN_STOP;
    }
}

/* Start job j's sequence (its prompt fed to its cache); 0 when it could not
 * start (j->st says why). */
static int seq_start(serve_job *j)
{
    serve_lm *lm = j->s->lm;
    lethe_gen_opts *o = &j->opts;
    lethe_gen_defaults(o);
    o->max_new = j->max_new;
    o->temperature = (float)j->req.temperature;
    o->top_p = (float)j->req.top_p;
    o->seed = j->seed;
    o->eos = (int32_t)lm->dir.eot;
    o->stop = (const char *const *)j->req.stop;
    o->n_stop = j->req.n_stop;
    o->tok = lm->dir.tok;
    o->on_token = on_token, o->token_ctx = j;
    if (atomic_load(&j->cancel))
        j->st = lethe_fail(LETHE_ERR_FAILED, "the client went away");
    else
        j->st = lethe_gen_seq_new(lm->dir.model, j->ids, j->n_ids, o, &j->seq);
    return j->st == LETHE_OK;
}

/* A finished sequence: its result and text into the job. */
static void seq_finish(serve_job *j)
{
    lethe_gen_result r;
    j->st = lethe_gen_seq_result(j->seq, &r);
    lethe_gen_seq_free(j->seq);
    j->seq = NULL;
    if (j->st != LETHE_OK)
        return;
    j->stop = r.stop, j->used = r.n;
    lethe_gen_result_free(&r);
    unsigned char *b = NULL;
    size_t n = 0;
    if ((j->st = lethe_tokenizer_decode(j->s->lm->dir.tok, j->toks, (size_t)j->n_toks, &b, &n)))
        return;
    pthread_mutex_lock(&j->mu);
    free(j->text);
    j->text = (char *)b, j->text_len = n;
    pthread_mutex_unlock(&j->mu);
}

/* ALU's agents answer the request's query (a chat's last user message, or
 * the prompt), the served model being their chat model. */
static void run_alu(serve_job *j, lethe_guard_t *gd)
{
    serve_lm *lm = j->s->lm;
    lethe_alu_local local;
    lethe_alu_local_init(&local, lm->dir.model, lm->dir.tok, (int32_t)lm->dir.eot);
    local.max_tokens = j->max_new > 0 ? j->max_new : 1;
    lethe_alu_result *r = &j->alu;
    j->st = lethe_alu_answer(NULL, gd, lethe_alu_local_chat, &local,
                             j->req.query ? j->req.query : j->req.prompt, r);
    if (j->st == LETHE_OK) {
        pthread_mutex_lock(&j->mu);
        j->flagged = r->targets > 0, j->refused = r->refused, j->stop = LETHE_GEN_EOS;
        j->used = (int)r->completion_tokens;
        free(j->text);
        j->text = r->text, j->text_len = strlen(r->text);
        r->text = NULL;
        pthread_mutex_unlock(&j->mu);
    }
}

static void run_guarded(serve_job *j)
{
    serve *s = j->s;
    lethe_guard_serve_result r = {0};
    pthread_rwlock_rdlock(&s->guard_lock);
    if (s->lm->alu)
        run_alu(j, s->lm->gd);
    else
        j->st = lethe_guard_serve_generate(s->lm->gs, j->req.prompt, j->req.prompt_len,
                                           j->max_new, (int32_t)s->lm->dir.eot, &r);
    pthread_rwlock_unlock(&s->guard_lock);
    if (j->st == LETHE_OK && !s->lm->alu) {
        pthread_mutex_lock(&j->mu);
        j->flagged = r.flagged, j->refused = r.out.refused, j->stop = r.out.stop;
        j->used = r.out.n;
        free(j->text);
        j->text = r.out.text, j->text_len = r.out.text_len;
        r.out.text = NULL;
        pthread_mutex_unlock(&j->mu);
    }
    if (j->st == LETHE_OK) {
        atomic_fetch_add(&s->m.flagged, j->flagged);
        atomic_fetch_add(&s->m.refusals, j->refused);
    }
    lethe_guard_serve_result_free(&r);
}

/* Whether a guarded job's prompt is unflagged and so decoded as any other
 * (batched, streamed): GUARD's and ECO's plain path is greedy decoding, or
 * sampling where the request asks for it. 0 with j->st set on failure. */
static int unflagged(serve_job *j)
{
    serve *s = j->s;
    if (s->lm->alu || lethe_guard_serve_config(s->lm->gs)->plain_beam != 1)
        return 0;
    lethe_guard_serve_result r;
    pthread_rwlock_rdlock(&s->guard_lock);
    j->st = lethe_guard_serve_flag(s->lm->gs, j->req.prompt, j->req.prompt_len, &r);
    pthread_rwlock_unlock(&s->guard_lock);
    lethe_guard_serve_result_free(&r);
    return j->st == LETHE_OK && !r.flagged;
}

/* The job's answer is complete (or failed): its last events, and the
 * request waiting on it wakes. */
static void job_end(serve_job *j)
{
    pthread_mutex_lock(&j->mu);
    if (j->st != LETHE_OK) {
        snprintf(j->err, sizeof j->err, "%s", lethe_error_detail());
        if (j->req.stream) {
            cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(e, "message", j->err);
            cJSON_AddStringToObject(e, "type", "server_error");
            event(j, o);
        }
    } else {
        if (!j->text)
            j->text = strdup(""), j->text_len = 0;
        if (j->text)
            cut_stop(j);
        if (j->req.stream && j->text) {
            skip_lead(j);
            if (j->text_len > j->sent) {
                utf8_clean(j->text + j->sent, j->text_len - j->sent);
                chunk_event(j, j->text + j->sent, j->text_len - j->sent, NULL, 0);
            }
            chunk_event(j, "", 0, finish_reason(j), 0);
            if (j->req.include_usage) {
                cJSON *o = envelope(j, 1);
                cJSON_AddArrayToObject(o, "choices");
                cJSON_AddItemToObject(o, "usage", usage(j));
                event(j, o);
            }
        }
        atomic_fetch_add(&j->s->m.completion_tokens, j->used);
    }
    if (j->req.stream && out_append(j, "data: [DONE]\n\n", 14))
        atomic_store(&j->cancel, 1);
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Take queued jobs, at most room of them, into take[]; with none queued
 * and idle set, wait for one (or for quit). */
static int take_jobs(serve_lm *lm, serve_job **take, int room, int idle)
{
    pthread_mutex_lock(&lm->mu);
    while (idle && !lm->head && !lm->quit)
        pthread_cond_wait(&lm->cv, &lm->mu);
    int k = 0;
    while (lm->head && k < room) {
        take[k++] = lm->head;
        lm->head = lm->head->next;
    }
    if (!lm->head)
        lm->tail = NULL;
    pthread_mutex_unlock(&lm->mu);
    return k;
}

/* A worker: it steps the sequences of its jobs together, one token each per
 * step (lethe_gen_step), and takes queued jobs into the batch between steps
 * (up to SERVE_MAX_BATCH), so requests that arrive while others generate
 * share their forwards. A guarded job is answered alone (the guard's own
 * decoding). */
static void *worker(void *arg)
{
    serve_worker *wk = arg;
    serve_lm *lm = wk->lm;
    serve_job *active[SERVE_MAX_BATCH], *take[SERVE_MAX_BATCH];
    lethe_gen_seq_t *seqs[SERVE_MAX_BATCH];
    int n = 0;
    for (;;) {
        int k = take_jobs(lm, take, SERVE_MAX_BATCH - n, n == 0);
        if (k == 0 && n == 0)
            break; /* quit, nothing left */
        for (int i = 0; i < k; i++) {
            serve_job *j = take[i];
            int plain = !lm->gs && !lm->alu;
            if (!plain && atomic_load(&j->cancel))
                j->st = lethe_fail(LETHE_ERR_FAILED, "the client went away");
            else if (!plain && !(plain = unflagged(j)) && j->st == LETHE_OK)
                run_guarded(j);
            if (plain && seq_start(j)) {
                active[n] = j, seqs[n] = j->seq, n++;
                continue;
            }
            job_end(j);
            job_unref(j);
        }
        if (n == 0)
            continue;
        lethe_status st = lethe_gen_step(wk->batch, seqs, n);
        int m = 0;
        for (int i = 0; i < n; i++) {
            serve_job *j = active[i];
            if (st == LETHE_OK && !lethe_gen_seq_done(seqs[i])) {
                active[m] = j, seqs[m] = seqs[i], m++;
                continue;
            }
            if (st == LETHE_OK) {
                seq_finish(j);
            } else {
                j->st = st;
                lethe_gen_seq_free(j->seq);
                j->seq = NULL;
            }
            job_end(j);
            job_unref(j);
        }
        n = m;
    }
    return NULL;
}

/* ---- the request -------------------------------------------------------------- */

static void answer(serve_job *j, serve_resp *resp)
{
    if (j->st != LETHE_OK) {
        serve_error(resp, j->st == LETHE_ERR_INVALID ? 400 : 500, NULL, "%s", j->err);
        return;
    }
    skip_lead(j);
    utf8_clean(j->text + j->sent, j->text_len - j->sent);
    cJSON *o = envelope(j, 0), *a = cJSON_AddArrayToObject(o, "choices");
    cJSON_AddItemToArray(a, choice(j, j->text + j->sent, j->text_len - j->sent, 0,
                                   finish_reason(j), 0));
    cJSON_AddItemToObject(o, "usage", usage(j));
    if (serve_lm_guarded(j->s->lm)) {
        cJSON *g = cJSON_AddObjectToObject(o, "guard");
        cJSON_AddBoolToObject(g, "flagged", j->flagged);
        cJSON_AddBoolToObject(g, "refused", j->refused);
        if (j->s->lm->alu) {
            cJSON *al = cJSON_AddObjectToObject(g, "alu");
            cJSON_AddStringToObject(al, "stage", lethe_alu_stage_name(j->alu.stage));
            cJSON_AddNumberToObject(al, "calls", j->alu.calls);
            cJSON_AddNumberToObject(al, "prompt_tokens", (double)j->alu.prompt_tokens);
            cJSON_AddNumberToObject(al, "completion_tokens", (double)j->alu.completion_tokens);
        }
    }
    serve_json(resp, 200, o);
}

void serve_lm_generate(serve *s, const serve_req *q, int chat, serve_resp *resp)
{
    serve_lm *lm = s->lm;
    serve_job *j = calloc(1, sizeof *j);
    if (!j) {
        serve_error(resp, 500, NULL, "out of memory");
        return;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->s = s, j->refs = 1;
    const char *param = NULL;
    lethe_status st = serve_parse_gen(q->body, q->len, chat, &j->req, &param);
    int ctx = lm->dir.model->cfg.n_positions;
    int max_prompt = s->cfg.max_prompt && s->cfg.max_prompt < ctx ? s->cfg.max_prompt : ctx;
    uint32_t *ids = NULL;
    size_t n = 0;
    if (st != LETHE_OK) {
        serve_error(resp, 400, param, "%s", lethe_error_detail());
    } else if (j->req.model[0] && strcmp(j->req.model, s->model_name)) {
        serve_error(resp, 404, "model", "the model '%s' does not exist here; this server "
                    "serves '%s'", j->req.model, s->model_name);
    } else if (j->req.max_tokens > s->cfg.max_new) {
        serve_error(resp, 400, chat ? "max_tokens" : "max_tokens",
                    "max_tokens is at most %d on this server", s->cfg.max_new);
    } else if (lethe_tokenizer_encode(lm->dir.tok, j->req.prompt, j->req.prompt_len, &ids, &n)) {
        serve_error(resp, 400, chat ? "messages" : "prompt", "%s", lethe_error_detail());
    } else if ((long)n > max_prompt) {
        serve_error(resp, 400, chat ? "messages" : "prompt", "the prompt has %zu tokens; at "
                    "most %d are allowed", n, max_prompt);
    } else if (n == 0 && lm->dir.eot < 0) {
        serve_error(resp, 400, "prompt", "an empty prompt needs the tokenizer's <|endoftext|>");
    } else {
        j->n_ids = n ? (int)n : 1;
        j->ids = malloc(sizeof(int32_t) * (size_t)j->n_ids);
        int want = j->req.max_tokens >= 0 ? j->req.max_tokens : chat ? s->cfg.max_new : 16;
        j->max_new = want;
        j->toks = malloc(sizeof(uint32_t) * (size_t)(want + 1));
        if (!j->ids || !j->toks) {
            serve_error(resp, 500, NULL, "out of memory");
        } else {
            for (int i = 0; i < j->n_ids; i++)
                j->ids[i] = n ? (int32_t)ids[i] : (int32_t)lm->dir.eot;
            j->id = atomic_fetch_add(&lm->next_id, 1) + 1;
            j->seed = j->req.has_seed ? j->req.seed : (uint64_t)j->id;
            j->created = (long)time(NULL);
            clock_gettime(CLOCK_MONOTONIC, &j->deadline);
            j->deadline.tv_sec += s->cfg.gen_timeout_s;
            atomic_fetch_add(&s->m.prompt_tokens, j->n_ids);
            if (j->req.stream && chat) { /* the role comes first */
                pthread_mutex_lock(&j->mu);
                chunk_event(j, "", 0, NULL, 1);
                pthread_mutex_unlock(&j->mu);
            }
            j->refs = 2; /* the worker's and this request's */
            pthread_mutex_lock(&lm->mu);
            if (lm->tail)
                lm->tail->next = j;
            else
                lm->head = j;
            lm->tail = j;
            pthread_cond_signal(&lm->cv);
            pthread_mutex_unlock(&lm->mu);
            free(ids);
            ids = NULL;
            if (j->req.stream) {
                resp->status = 200;
                resp->stream = j; /* the connection releases it */
                return;
            }
            pthread_mutex_lock(&j->mu);
            while (!j->done)
                pthread_cond_wait(&j->cv, &j->mu);
            pthread_mutex_unlock(&j->mu);
            answer(j, resp);
        }
    }
    free(ids);
    job_unref(j);
}

/* ---- loading ----------------------------------------------------------------- */

void serve_lm_describe(const serve_lm *lm, cJSON *j)
{
    const lethe_gpt_config *c = &lm->dir.model->cfg;
    cJSON_AddStringToObject(j, "kind", "gpt");
    cJSON_AddNumberToObject(j, "context_length", c->n_positions);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddBoolToObject(j, "guarded", serve_lm_guarded(lm));
}

/* The guard file: ALU's mode needs its automaton and names only; the
 * others a session for the served model. */
static lethe_status open_guard(serve *s, lethe_guard_t **gd, lethe_guard_serve_t **gs)
{
    if (s->lm->alu)
        return lethe_guard_load(s->cfg.guard, gd);
    return lethe_guard_serve_open(s->cfg.guard, s->lm->dir.model, s->lm->dir.tok, s->cfg.mode,
                                  NULL, gd, gs);
}

lethe_status serve_lm_open(serve *s)
{
    serve_lm *lm = calloc(1, sizeof *lm);
    if (!lm)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s->lm = lm;
    pthread_mutex_init(&lm->mu, NULL);
    pthread_cond_init(&lm->cv, NULL);
    lethe_status st = lethe_gpt_dir_load(s->cfg.run, 1, &lm->dir);
    if (st == LETHE_OK && !lm->dir.tok)
        st = lethe_fail(LETHE_ERR_INVALID, "%s has no tokenizer: a server takes text",
                        s->cfg.run);
    lm->alu = s->cfg.mode && !strcmp(s->cfg.mode, "alu");
    if (st == LETHE_OK && s->cfg.guard)
        st = open_guard(s, &lm->gd, &lm->gs);
    if (st == LETHE_OK && !(lm->workers = calloc((size_t)s->cfg.threads, sizeof *lm->workers)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        lm->cap_workers = s->cfg.threads;
    for (int i = 0; st == LETHE_OK && i < s->cfg.threads; i++) {
        serve_worker *w = &lm->workers[i];
        w->lm = lm;
        if (!(w->batch = lethe_gen_batch_new(lm->dir.model, SERVE_MAX_BATCH)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        else if (pthread_create(&w->thread, NULL, worker, w))
            st = lethe_fail(LETHE_ERR_FAILED, "cannot start a worker thread");
        else
            lm->n_workers++;
    }
    return st;
}

int serve_lm_guarded(const serve_lm *lm)
{
    return lm->gs != NULL || lm->alu;
}

lethe_status serve_lm_reguard(serve *s)
{
    serve_lm *lm = s->lm;
    lethe_guard_t *gd = NULL;
    lethe_guard_serve_t *gs = NULL;
    lethe_status st = open_guard(s, &gd, &gs);
    if (st != LETHE_OK)
        return st;
    lethe_guard_serve_free(lm->gs);
    lethe_guard_free(lm->gd);
    lm->gd = gd, lm->gs = gs;
    return LETHE_OK;
}

void serve_lm_free(serve_lm *lm)
{
    if (!lm)
        return;
    pthread_mutex_lock(&lm->mu);
    lm->quit = 1;
    pthread_cond_broadcast(&lm->cv);
    pthread_mutex_unlock(&lm->mu);
    for (int i = 0; i < lm->n_workers; i++)
        pthread_join(lm->workers[i].thread, NULL);
    for (int i = 0; lm->workers && i < lm->cap_workers; i++)
        lethe_gen_batch_free(lm->workers[i].batch);
    free(lm->workers);
    lethe_guard_serve_free(lm->gs);
    lethe_guard_free(lm->gd);
    lethe_gpt_dir_free(&lm->dir);
    pthread_mutex_destroy(&lm->mu);
    pthread_cond_destroy(&lm->cv);
    free(lm);
}
