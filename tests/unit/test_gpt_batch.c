/* Batched decoding (lethe/gpt_generate.h) over small randomly initialised
 * models: the batched cached forward against one cache at a time, a
 * sequence stepped alone against lethe_gpt_generate, sequences of every
 * option stepped together against each generated alone, two threads
 * stepping two batches on one model, and the argument checks.
 *
 * Tolerance: logits of a batched forward agree with the one-sequence cached
 * forward's within |a - b| <= 1e-5 + 1e-4 |b| (the products' sums may run
 * in another order with B rows); a logprob, the difference of a logit and
 * a log-sum-exp, within twice that at the step's largest |logit|. Tokens
 * must match exactly. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../test.h"
#include "gpt_small.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/rng.h"
#include "lethe/tokenizer.h"



/* The largest |a - b| / (1e-5 + 1e-4 |b|): within tolerance when <= 1. */
static double worst_rel(const float *a, const float *b, long n)
{
    double w = 0;
    for (long i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (1e-5 + 1e-4 * fabs((double)b[i]));
        w = r > w ? r : w;
    }
    return w;
}

static int same_tokens(const lethe_gen_result *a, const lethe_gen_result *b)
{
    return a->n == b->n && a->stop == b->stop &&
           !memcmp(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n);
}

/* Every result bit of a and b alike. */
static int same_bits(const lethe_gen_result *a, const lethe_gen_result *b)
{
    return same_tokens(a, b) && a->score == b->score &&
           !memcmp(a->logprobs, b->logprobs, sizeof(float) * (size_t)a->n);
}

/* The keys and values of positions [0, len) of every layer. */
static double worst_kv(const lethe_gpt_kv *a, const lethe_gpt_kv *b)
{
    const lethe_gpt_config *c = &a->g->cfg;
    long plane = (long)a->cap * c->n_embd, n = (long)a->len * c->n_embd;
    double w = 0;
    for (int l = 0; l < c->n_layer; l++) {
        w = fmax(w, worst_rel(a->k + l * plane, b->k + l * plane, n));
        w = fmax(w, worst_rel(a->v + l * plane, b->v + l * plane, n));
    }
    return w;
}

TEST(gpt_gen_batch_forward_matches_one_at_a_time)
{
    enum { B = 5 };
    const int V = 97, steps = test_quick() ? 2 : 6;
    const int lens[B] = {1, 4, 9, 2, 15};
    lethe_gpt *g = small_model(V, 3), *other = small_model(V, 4);
    CHECK(g && other);
    lethe_gpt_kv *kv[B], *one[B];
    int32_t tok[NPOS], next[B];
    for (int b = 0; b < B; b++) {
        kv[b] = lethe_gpt_kv_new(g), one[b] = lethe_gpt_kv_new(g);
        CHECK(kv[b] && one[b]);
        random_tokens(tok, lens[b], V, 10 + b);
        CHECK_OK(lethe_gpt_kv_forward(kv[b], tok, lens[b], NULL, NULL));
        CHECK_OK(lethe_gpt_kv_forward(one[b], tok, lens[b], NULL, NULL));
    }
    /* room for 2: the step of 5 grows it */
    lethe_gen_batch_t *w = lethe_gen_batch_new(g, 2);
    CHECK(w);
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        random_tokens(next, B, V, 100 + s);
        CHECK_OK(lethe_gpt_kv_forward_batch(w, kv, next, B));
        for (int b = 0; b < B; b++) {
            CHECK_OK(lethe_gpt_kv_forward(one[b], next + b, 1, NULL, NULL));
            CHECK(kv[b]->len == lens[b] + s + 1 && one[b]->len == kv[b]->len);
            worst = fmax(worst, worst_rel(kv[b]->logits, one[b]->logits, V));
            worst = fmax(worst, worst_kv(kv[b], one[b]));
        }
    }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "batched vs one-at-a-time: worst |a - b| / (1e-5 + 1e-4 |b|) = %.3g\n",
                worst);
    CHECK_MSG(worst <= 1.0, "batched logits or keys differ from one at a time: %.3g", worst);
    /* a batch of one is the one-sequence forward, bit for bit (from one
     * cache's copy: the batched steps above left other last bits) */
    lethe_gpt_kv_copy(kv[2], one[2]);
    random_tokens(next, 1, V, 200);
    CHECK_OK(lethe_gpt_kv_forward_batch(w, kv + 2, next, 1));
    CHECK_OK(lethe_gpt_kv_forward(one[2], next, 1, NULL, NULL));
    CHECK(!memcmp(kv[2]->logits, one[2]->logits, sizeof(float) * (size_t)V));
#ifdef _OPENMP
    /* the same bits on one thread */
    float *many = malloc(sizeof(float) * (size_t)B * V);
    CHECK(many);
    lethe_gpt_kv *back[B];
    for (int b = 0; b < B; b++) {
        back[b] = lethe_gpt_kv_new(g);
        CHECK(back[b]);
        lethe_gpt_kv_copy(back[b], kv[b]);
    }
    random_tokens(next, B, V, 300);
    CHECK_OK(lethe_gpt_kv_forward_batch(w, kv, next, B));
    for (int b = 0; b < B; b++)
        memcpy(many + (long)b * V, kv[b]->logits, sizeof(float) * (size_t)V);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    lethe_status st1 = lethe_gpt_kv_forward_batch(w, back, next, B);
    omp_set_num_threads(threads);
    CHECK_OK(st1);
    int same = 1;
    for (int b = 0; b < B; b++) {
        same &= !memcmp(many + (long)b * V, back[b]->logits, sizeof(float) * (size_t)V);
        lethe_gpt_kv_free(back[b]);
    }
    free(many);
    CHECK_MSG(same, "the batched forward depends on the thread count");
#endif
    /* bad batches change no cache */
    int len0[B];
    for (int b = 0; b < B; b++)
        len0[b] = kv[b]->len;
    lethe_gpt_kv *twice[3] = {kv[0], kv[1], kv[0]};
    CHECK_STATUS(lethe_gpt_kv_forward_batch(w, twice, next, 3), LETHE_ERR_INVALID);
    int32_t bad[2] = {1, V};
    CHECK_STATUS(lethe_gpt_kv_forward_batch(w, kv, bad, 2), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gpt_kv_forward_batch(w, kv, next, 0), LETHE_ERR_INVALID);
    lethe_gpt_kv *alien = lethe_gpt_kv_new(other), *mixed[2] = {kv[0], alien};
    CHECK(alien);
    CHECK_STATUS(lethe_gpt_kv_forward_batch(w, mixed, next, 2), LETHE_ERR_INVALID);
    random_tokens(tok, NPOS, V, 400);
    CHECK_OK(lethe_gpt_kv_forward(one[0], tok, NPOS - one[0]->len, NULL, NULL));
    lethe_gpt_kv *full[2] = {kv[1], one[0]};
    CHECK_STATUS(lethe_gpt_kv_forward_batch(w, full, next, 2), LETHE_ERR_INVALID);
    for (int b = 0; b < B; b++)
        CHECK(kv[b]->len == len0[b]);
    lethe_gpt_kv_free(alien);
    for (int b = 0; b < B; b++)
        lethe_gpt_kv_free(kv[b]), lethe_gpt_kv_free(one[b]);
    lethe_gen_batch_free(w);
    lethe_gpt_free(g);
    lethe_gpt_free(other);
}

/* The logits a sequence chose from, step by step (a logits hook that
 * changes nothing). */
typedef struct rec {
    float *z; /* (cap, V) */
    int n, cap, V;
} rec;

static void rec_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    rec *r = ctx;
    (void)seq, (void)len, (void)beam;
    if (r->n < r->cap)
        memcpy(r->z + (long)r->n * V, logits, sizeof(float) * (size_t)V);
    r->n++;
}

static void kill_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)ctx, (void)seq, (void)len, (void)beam;
    for (int v = 0; v < V; v++)
        logits[v] = -INFINITY;
}

/* Add ctx's offset to the first embedding of the prompt. */
static void emb_hook(void *ctx, int pos0, int n, const int32_t *tokens, float *emb, int C)
{
    (void)tokens, (void)n;
    if (pos0 == 0)
        for (int k = 0; k < C; k++)
            emb[k] += *(const float *)ctx;
}

typedef struct seen {
    int n, cancel_at; /* stop after this many tokens (0: never) */
} seen;

static int on_token(void *ctx, int32_t t, float lp)
{
    seen *s = ctx;
    (void)t, (void)lp;
    return ++s->n == s->cancel_at;
}

/* Step one sequence alone through the public API. */
static lethe_status step_alone(const lethe_gpt *g, const int32_t *p, int n,
                               const lethe_gen_opts *o, lethe_gen_result *res)
{
    lethe_gen_seq_t *s;
    lethe_status st = lethe_gen_seq_new(g, p, n, o, &s);
    if (st)
        return st;
    lethe_gen_batch_t *w = lethe_gen_batch_new(g, 1);
    if (!w)
        st = LETHE_ERR_NOMEM;
    while (st == LETHE_OK && !lethe_gen_seq_done(s))
        st = lethe_gen_step(w, &s, 1);
    if (st == LETHE_OK)
        st = lethe_gen_seq_result(s, res);
    lethe_gen_seq_free(s);
    lethe_gen_batch_free(w);
    return st;
}

/* A sequence stepped alone gives lethe_gpt_generate's bits, and greedy
 * decoding gives the tokens of a plain loop over the cache. */
TEST(gpt_gen_step_alone_is_generate)
{
    lethe_tokenizer_t *tok = small_tokenizer();
    CHECK(tok);
    const int V = (int)lethe_tokenizer_vocab_size(tok);
    lethe_gpt *g = small_model(V, 5);
    CHECK(g);
    int32_t prompt[NPOS];
    random_tokens(prompt, NPOS, V, 6);
    const int n_new = test_quick() ? 8 : 20;
    /* the plain loop */
    lethe_gpt_kv *kv = lethe_gpt_kv_new(g);
    CHECK(kv);
    int32_t plain[32];
    CHECK_OK(lethe_gpt_kv_forward(kv, prompt, 4, NULL, NULL));
    for (int i = 0; i < n_new; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            best = kv->logits[v] > kv->logits[best] ? v : best;
        plain[i] = best;
        if (i + 1 < n_new)
            CHECK_OK(lethe_gpt_kv_forward(kv, &plain[i], 1, NULL, NULL));
    }
    lethe_gpt_kv_free(kv);
    const char *stops[1] = {"at"};
    float shift = 0.5f;
    for (int mode = 0; mode < 8; mode++) {
        lethe_gen_opts o;
        lethe_gen_defaults(&o);
        o.max_new = n_new, o.seed = 40 + (uint64_t)mode;
        int n_prompt = 4;
        seen sa = {0, 5}, sb = {0, 5};
        switch (mode) {
        case 1: o.temperature = 1.0f; break;
        case 2: o.temperature = 0.8f, o.top_k = 15, o.top_p = 0.9f; break;
        case 3: o.tok = tok, o.stop = stops, o.n_stop = 1, o.temperature = 1.1f; break;
        case 4: o.eos = plain[3]; break;
        case 5: o.embed_hook = emb_hook, o.embed_ctx = &shift, o.temperature = 0.9f; break;
        case 6: o.no_cache = 1, o.temperature = 0.7f; break;
        case 7: n_prompt = NPOS - 3; break; /* the context limit */
        default: break;
        }
        lethe_gen_result a, b;
        if (mode == 1)
            o.on_token = on_token, o.token_ctx = &sa;
        CHECK_OK(lethe_gpt_generate(g, prompt, n_prompt, &o, &a));
        o.token_ctx = &sb;
        CHECK_OK(step_alone(g, prompt, n_prompt, &o, &b));
        CHECK_MSG(same_bits(&a, &b), "mode %d: stepping alone differs from generating", mode);
        if (mode == 0) {
            CHECK(a.n == n_new && !memcmp(a.tokens, plain, sizeof(int32_t) * (size_t)n_new));
        }
        if (mode == 1)
            CHECK(a.stop == LETHE_GEN_CANCEL && a.n == 5 && sb.n == 5);
        if (mode == 4)
            CHECK(a.stop == LETHE_GEN_EOS);
        if (mode == 7)
            CHECK(a.stop == LETHE_GEN_CONTEXT && a.n == 3);
        lethe_gen_result_free(&a);
        lethe_gen_result_free(&b);
    }
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

/* One sequence of the batch test: its prompt, options, and the step at
 * which it joins the batch. */
typedef struct spec {
    int n_prompt;
    float temperature;
    int top_k;
    float top_p;
    int max_new;
    int eos_at;    /* eos: the token the sequence makes at this index alone (-1: none) */
    int stop_at;   /* a stop string: the text of the token at this index (-1: none) */
    int cancel_at; /* on_token stops after this many tokens (0: never) */
    int join;      /* the step at which it is added to the batch */
} spec;

static const spec specs[] = {
    {5, 0.0f, 0, 1.0f, 30, -1, -1, 0, 0},      /* greedy, the longest */
    {2, 1.0f, 0, 1.0f, 25, -1, -1, 0, 0},      /* sampling */
    {9, 0.8f, 12, 0.9f, 20, -1, -1, 0, 0},     /* sampling, top-k and top-p */
    {3, 0.0f, 0, 1.0f, 30, 6, -1, 0, 0},       /* greedy, end-of-text */
    {7, 0.9f, 0, 1.0f, 30, -1, 5, 0, 0},       /* sampling, a stop string */
    {1, 0.0f, 0, 1.0f, 3, -1, -1, 0, 0},       /* finishes early */
    {NPOS - 6, 1.2f, 0, 1.0f, 30, -1, -1, 0, 0}, /* reaches the context limit */
    {4, 0.0f, 0, 1.0f, 20, -1, -1, 4, 2},      /* joins late, cancels */
    {6, 0.7f, 0, 1.0f, 0, -1, -1, 0, 0},       /* max_new 0: done at once */
    {11, 1.0f, 5, 1.0f, 12, -1, -1, 0, 5},     /* joins late, sampling */
};
#define NSPEC ((int)(sizeof specs / sizeof specs[0]))

/* Everything a sequence of the batch test needs: its prompt, options (with
 * the contexts they point to) and what it recorded. */
typedef struct job {
    int32_t prompt[NPOS];
    lethe_gen_opts o;
    const char *stops[1];
    char stop[64];
    seen seen;
    rec rec;
} job;

/* Set up job i of the model g and tokenizer tok (NULL: no stop strings):
 * a run alone without eos and stop strings picks them. */
static lethe_status job_init(job *j, const spec *sp, int i, const lethe_gpt *g,
                             const lethe_tokenizer_t *tok, int quick)
{
    const int V = g->cfg.vocab_size;
    memset(j, 0, sizeof *j);
    random_tokens(j->prompt, sp->n_prompt, V, 1000 + (uint64_t)i);
    lethe_gen_defaults(&j->o);
    j->o.max_new = quick && sp->max_new > 8 ? 8 : sp->max_new;
    j->o.temperature = sp->temperature, j->o.top_k = sp->top_k, j->o.top_p = sp->top_p;
    j->o.seed = 7 + (uint64_t)i;
    j->rec.V = V, j->rec.cap = j->o.max_new;
    j->rec.z = malloc(sizeof(float) * (size_t)V * (size_t)(j->rec.cap > 0 ? j->rec.cap : 1));
    if (!j->rec.z)
        return LETHE_ERR_NOMEM;
    j->o.logits_hook = rec_hook, j->o.logits_ctx = &j->rec;
    j->seen.cancel_at = sp->cancel_at;
    j->o.on_token = on_token, j->o.token_ctx = &j->seen;
    if (sp->eos_at < 0 && (sp->stop_at < 0 || !tok))
        return LETHE_OK;
    lethe_gen_result r;
    lethe_status st = lethe_gpt_generate(g, j->prompt, sp->n_prompt, &j->o, &r);
    if (st)
        return st;
    if (r.n == 0) {
        lethe_gen_result_free(&r);
        return LETHE_OK;
    }
    int at = sp->eos_at >= 0 ? sp->eos_at : sp->stop_at;
    at = at < r.n - 1 ? at : r.n - 1;
    if (sp->eos_at >= 0) {
        j->o.eos = r.tokens[at];
    } else {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(tok, (uint32_t)r.tokens[at], &len);
        len = len < sizeof j->stop - 1 ? len : sizeof j->stop - 1;
        memcpy(j->stop, b, len);
        j->stop[len] = 0;
        if (len && !memchr(b, 0, len)) {
            j->stops[0] = j->stop;
            j->o.stop = j->stops, j->o.n_stop = 1, j->o.tok = tok;
        }
    }
    lethe_gen_result_free(&r);
    return LETHE_OK;
}

/* Run job j alone: its result and the logits it recorded (moved to *z). */
static lethe_status job_alone(job *j, const lethe_gpt *g, int n_prompt, lethe_gen_result *res,
                              float **z)
{
    j->rec.n = 0, j->seen.n = 0;
    lethe_status st = lethe_gpt_generate(g, j->prompt, n_prompt, &j->o, res);
    *z = j->rec.z;
    j->rec.z = malloc(sizeof(float) * (size_t)j->rec.V * (size_t)(j->rec.cap > 0 ? j->rec.cap : 1));
    if (!j->rec.z && st == LETHE_OK) {
        lethe_gen_result_free(res);
        st = LETHE_ERR_NOMEM;
    }
    j->rec.n = 0, j->seen.n = 0;
    return st;
}

/* Step jobs [0, n) together, job i joining at step specs[i].join. */
static lethe_status step_together(const lethe_gpt *g, job *jobs, const spec *sp, int n,
                                  lethe_gen_result *res)
{
    lethe_gen_seq_t *seqs[NSPEC] = {0};
    lethe_gen_batch_t *w = lethe_gen_batch_new(g, 4);
    lethe_status st = w ? LETHE_OK : LETHE_ERR_NOMEM;
    int in = 0; /* sequences in the batch */
    for (int step = 0; st == LETHE_OK; step++) {
        for (int i = 0; i < n && st == LETHE_OK; i++)
            if (sp[i].join == step)
                st = lethe_gen_seq_new(g, jobs[i].prompt, sp[i].n_prompt, &jobs[i].o,
                                       &seqs[in++]);
        int live = 0;
        for (int i = 0; i < in; i++)
            live += !lethe_gen_seq_done(seqs[i]);
        int more = 0; /* sequences still to join */
        for (int i = 0; i < n; i++)
            more += sp[i].join > step;
        if (st || (!live && !more))
            break;
        st = lethe_gen_step(w, seqs, in);
    }
    /* seqs are in order of joining: put the results back in job order */
    int k = 0;
    for (int step = 0; k < in; step++)
        for (int i = 0; i < n; i++)
            if (sp[i].join == step) {
                if (st == LETHE_OK)
                    st = lethe_gen_seq_result(seqs[k], &res[i]);
                lethe_gen_seq_free(seqs[k++]);
            }
    lethe_gen_batch_free(w);
    return st;
}

/* Whether job i's batched result and logits agree with alone's; the worst
 * logit discrepancy into *worst. */
static int agrees(const lethe_gen_result *batched, const lethe_gen_result *alone,
                  const float *zb, const float *za, int V, double *worst)
{
    if (!same_tokens(batched, alone))
        return 0;
    for (int t = 0; t < alone->n; t++) {
        const float *a = zb + (long)t * V, *b = za + (long)t * V;
        *worst = fmax(*worst, worst_rel(a, b, V));
        double zmax = 0;
        for (int v = 0; v < V; v++)
            zmax = fmax(zmax, fabs((double)b[v]));
        if (fabs((double)batched->logprobs[t] - alone->logprobs[t]) > 2 * (1e-5 + 1e-4 * zmax))
            return 0;
    }
    return 1;
}

TEST(gpt_gen_step_batch_matches_alone)
{
    lethe_tokenizer_t *tok = small_tokenizer();
    CHECK(tok);
    const int V = (int)lethe_tokenizer_vocab_size(tok);
    lethe_gpt *g = small_model(V, 7);
    CHECK(g);
    job *jobs = calloc(NSPEC, sizeof *jobs);
    lethe_gen_result alone[NSPEC], batched[NSPEC];
    float *za[NSPEC];
    CHECK(jobs);
    for (int i = 0; i < NSPEC; i++) {
        CHECK_OK(job_init(&jobs[i], &specs[i], i, g, tok, test_quick()));
        CHECK_OK(job_alone(&jobs[i], g, specs[i].n_prompt, &alone[i], &za[i]));
    }
    CHECK_OK(step_together(g, jobs, specs, NSPEC, batched));
    double worst = 0;
    int stops[5] = {0};
    for (int i = 0; i < NSPEC; i++) {
        CHECK_MSG(agrees(&batched[i], &alone[i], jobs[i].rec.z, za[i], V, &worst),
                  "sequence %d: batched and alone differ", i);
        CHECK(jobs[i].rec.n == alone[i].n && jobs[i].seen.n == alone[i].n - (alone[i].stop == LETHE_GEN_EOS));
        stops[alone[i].stop]++;
    }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "batched vs alone logits: worst %.3g; stops max %d eos %d stop %d "
                        "context %d cancel %d\n",
                worst, stops[0], stops[1], stops[2], stops[3], stops[4]);
    CHECK(worst <= 1.0);
    /* every way to finish came up, and the early ones finished early */
    for (int k = 0; k < 5; k++)
        CHECK_MSG(stops[k] > 0, "no sequence stopped with '%s'", lethe_gen_stop_name(k));
    CHECK(alone[5].n == 3 && alone[8].n == 0 && alone[6].stop == LETHE_GEN_CONTEXT);
    for (int i = 0; i < NSPEC; i++) {
        lethe_gen_result_free(&alone[i]);
        lethe_gen_result_free(&batched[i]);
        free(za[i]), free(jobs[i].rec.z);
    }
    free(jobs);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

/* Two threads each step a batch of their own on one model. */
typedef struct worker {
    const lethe_gpt *g;
    job *jobs;
    const spec *sp;
    int n;
    lethe_gen_result *res;
    lethe_status st;
} worker;

static void *work(void *arg)
{
    worker *k = arg;
    k->st = step_together(k->g, k->jobs, k->sp, k->n, k->res);
    return NULL;
}

TEST(gpt_gen_step_threads)
{
    enum { PER = 4 };
    const int V = 97;
    lethe_gpt *g = small_model(V, 9);
    CHECK(g);
    static const spec mine[2][PER] = {
        {{3, 0.0f, 0, 1.0f, 24, -1, -1, 0, 0}, {8, 1.0f, 0, 1.0f, 18, -1, -1, 0, 0},
         {1, 0.8f, 10, 0.95f, 24, -1, -1, 0, 1}, {5, 0.0f, 0, 1.0f, 6, -1, -1, 0, 0}},
        {{2, 1.0f, 0, 1.0f, 24, -1, -1, 0, 0}, {12, 0.0f, 0, 1.0f, 20, 4, -1, 0, 0},
         {NPOS - 5, 0.9f, 0, 1.0f, 24, -1, -1, 0, 0}, {6, 1.3f, 20, 1.0f, 24, -1, -1, 0, 2}},
    };
    job *jobs = calloc(2 * PER, sizeof *jobs);
    lethe_gen_result alone[2 * PER], batched[2 * PER];
    float *za[2 * PER];
    CHECK(jobs);
    for (int i = 0; i < 2 * PER; i++) {
        const spec *sp = &mine[i / PER][i % PER];
        CHECK_OK(job_init(&jobs[i], sp, 50 + i, g, NULL, test_quick()));
        CHECK_OK(job_alone(&jobs[i], g, sp->n_prompt, &alone[i], &za[i]));
    }
    worker k[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        k[t] = (worker){g, jobs + t * PER, mine[t], PER, batched + t * PER, LETHE_OK};
        CHECK(!pthread_create(&th[t], NULL, work, &k[t]));
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    CHECK_OK(k[0].st);
    CHECK_OK(k[1].st);
    double worst = 0;
    for (int i = 0; i < 2 * PER; i++)
        CHECK_MSG(agrees(&batched[i], &alone[i], jobs[i].rec.z, za[i], V, &worst),
                  "thread %d, sequence %d: batched and alone differ", i / PER, i % PER);
    CHECK(worst <= 1.0);
    for (int i = 0; i < 2 * PER; i++) {
        lethe_gen_result_free(&alone[i]);
        lethe_gen_result_free(&batched[i]);
        free(za[i]), free(jobs[i].rec.z);
    }
    free(jobs);
    lethe_gpt_free(g);
}

TEST(gpt_gen_step_errors)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 11), *other = small_model(V, 12);
    CHECK(g && other);
    int32_t prompt[NPOS + 1];
    random_tokens(prompt, NPOS + 1, V, 13);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 6;
    lethe_gen_seq_t *a = NULL, *b = NULL, *c = NULL, *x = NULL;
    /* the checks of lethe_gpt_generate, and no beam search */
    CHECK_STATUS(lethe_gen_seq_new(g, prompt, 0, &o, &x), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gen_seq_new(g, prompt, NPOS + 1, &o, &x), LETHE_ERR_INVALID);
    o.beam = 2;
    CHECK_STATUS(lethe_gen_seq_new(g, prompt, 3, &o, &x), LETHE_ERR_INVALID);
    o.beam = 1, o.n_stop = 1;
    CHECK_STATUS(lethe_gen_seq_new(g, prompt, 3, &o, &x), LETHE_ERR_INVALID);
    o.n_stop = 0;
    CHECK(!x);
    CHECK(!lethe_gen_batch_new(g, 0));
    /* a bad step does nothing */
    CHECK_OK(lethe_gen_seq_new(g, prompt, 3, &o, &a));
    CHECK_OK(lethe_gen_seq_new(g, prompt + 3, 5, &o, &b));
    CHECK_OK(lethe_gen_seq_new(other, prompt, 3, &o, &c));
    lethe_gen_batch_t *w = lethe_gen_batch_new(g, 2);
    CHECK(w);
    lethe_gen_result r;
    CHECK_STATUS(lethe_gen_seq_result(a, &r), LETHE_ERR_INVALID);
    lethe_gen_seq_t *twice[2] = {a, a}, *mixed[2] = {a, c}, *none[2] = {a, NULL};
    CHECK_STATUS(lethe_gen_step(w, twice, 2), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gen_step(w, mixed, 2), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gen_step(w, none, 2), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gen_step(w, twice, -1), LETHE_ERR_INVALID);
    CHECK_OK(lethe_gen_step(w, twice, 0));
    /* a hook that leaves no logit fails its own sequence alone */
    lethe_gen_seq_free(c);
    o.logits_hook = kill_hook;
    CHECK_OK(lethe_gen_seq_new(g, prompt + 10, 4, &o, &c));
    lethe_gen_seq_t *three[3] = {a, c, b};
    CHECK_OK(lethe_gen_step(w, three, 3));
    CHECK(lethe_gen_seq_done(c) && !lethe_gen_seq_done(a) && !lethe_gen_seq_done(b));
    CHECK_STATUS(lethe_gen_seq_result(c, &r), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "no finite logit") && r.n == 0 && !r.tokens);
    while (!lethe_gen_seq_done(a) || !lethe_gen_seq_done(b))
        CHECK_OK(lethe_gen_step(w, three, 3));
    o.logits_hook = NULL;
    lethe_gen_result ra, rb, ga, gb;
    CHECK_OK(lethe_gen_seq_result(a, &ra));
    CHECK_OK(lethe_gen_seq_result(b, &rb));
    CHECK_OK(lethe_gpt_generate(g, prompt, 3, &o, &ga));
    CHECK_OK(lethe_gpt_generate(g, prompt + 3, 5, &o, &gb));
    CHECK(same_tokens(&ra, &ga) && same_tokens(&rb, &gb) && ra.n == 6);
    lethe_gen_result_free(&ra), lethe_gen_result_free(&rb);
    /* the result moves out once */
    CHECK_OK(lethe_gen_seq_result(a, &ra));
    CHECK(ra.n == 0 && !ra.tokens);
    lethe_gen_result_free(&ga), lethe_gen_result_free(&gb);
    /* done at once: max_new 0, a full prompt */
    lethe_gen_seq_free(a), lethe_gen_seq_free(b);
    o.max_new = 0;
    CHECK_OK(lethe_gen_seq_new(g, prompt, 3, &o, &a));
    o.max_new = 6;
    CHECK_OK(lethe_gen_seq_new(g, prompt, NPOS, &o, &b));
    CHECK(lethe_gen_seq_done(a) && lethe_gen_seq_done(b));
    CHECK_OK(lethe_gen_seq_result(a, &ra));
    CHECK_OK(lethe_gen_seq_result(b, &rb));
    CHECK(ra.n == 0 && ra.stop == LETHE_GEN_MAX && rb.n == 0 && rb.stop == LETHE_GEN_CONTEXT);
    lethe_gen_result_free(&ra), lethe_gen_result_free(&rb);
    lethe_gen_seq_free(a), lethe_gen_seq_free(b), lethe_gen_seq_free(c);
    lethe_gen_seq_free(NULL);
    lethe_gen_batch_free(w);
    lethe_gen_batch_free(NULL);
    lethe_gpt_free(g);
    lethe_gpt_free(other);
}
