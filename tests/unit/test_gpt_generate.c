/* GPT generation (lethe/gpt_generate.h) over a small randomly initialised
 * model: the cached forward against the full one, generation with and
 * without the cache, the sampling limits that reduce to greedy, beam width 1,
 * the hooks, stop strings, the context limit, determinism, the logit
 * moments, and a run directory written for the command line.
 *
 * Tolerance: the cached forward's logits agree with lethe_gpt_forward's at
 * every position within |a - b| <= 1e-5 + 1e-4 |b| (float32; the attention
 * sums run in another order). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../test.h"
#include "gpt_small.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/rng.h"
#include "lethe/tokenizer.h"



static int same_result(const lethe_gen_result *a, const lethe_gen_result *b)
{
    if (a->n != b->n || a->stop != b->stop)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->tokens[i] != b->tokens[i])
            return 0;
    return 1;
}

/* The largest |a - b| / (1e-5 + 1e-4 |b|): within tolerance when <= 1. */
static double worst_rel(const float *a, const float *b, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (1e-5 + 1e-4 * fabs((double)b[i]));
        w = r > w ? r : w;
    }
    return w;
}

TEST(gpt_gen_cached_logits_match_full_forward)
{
    const int V = 97, T = 24;
    lethe_gpt *g = small_model(V, 3);
    CHECK(g);
    int32_t tok[24];
    random_tokens(tok, T, V, 5);
    CHECK_OK(lethe_gpt_forward(g, tok, NULL, 1, T));
    float *full = malloc(sizeof(float) * (size_t)T * V);
    memcpy(full, g->logits, sizeof(float) * (size_t)T * V);
    lethe_gpt_kv *kv = lethe_gpt_kv_new(g);
    CHECK(kv);
    double worst = 0;
    /* one token at a time */
    for (int t = 0; t < T; t++) {
        CHECK_OK(lethe_gpt_kv_forward(kv, tok + t, 1, NULL, NULL));
        double w = worst_rel(kv->logits, full + (long)t * V, V);
        worst = w > worst ? w : worst;
    }
    CHECK(kv->len == T);
    /* a prefill of 10, then one at a time */
    lethe_gpt_kv_reset(kv);
    CHECK_OK(lethe_gpt_kv_forward(kv, tok, 10, NULL, NULL));
    worst = fmax(worst, worst_rel(kv->logits, full + 9L * V, V));
    for (int t = 10; t < T; t++) {
        CHECK_OK(lethe_gpt_kv_forward(kv, tok + t, 1, NULL, NULL));
        worst = fmax(worst, worst_rel(kv->logits, full + (long)t * V, V));
    }
    /* a copy continues as the original */
    lethe_gpt_kv *kv2 = lethe_gpt_kv_new(g);
    lethe_gpt_kv_reset(kv);
    CHECK_OK(lethe_gpt_kv_forward(kv, tok, T - 1, NULL, NULL));
    lethe_gpt_kv_copy(kv2, kv);
    CHECK_OK(lethe_gpt_kv_forward(kv2, tok + T - 1, 1, NULL, NULL));
    worst = fmax(worst, worst_rel(kv2->logits, full + (long)(T - 1) * V, V));
    free(full);
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "cached vs full logits: worst |a - b| / (1e-5 + 1e-4 |b|) = %.3g\n",
                worst);
    CHECK_MSG(worst <= 1.0, "cached logits differ from the full forward's: %.3g", worst);
    /* the context limit and bad tokens leave the cache as it was */
    CHECK_STATUS(lethe_gpt_kv_forward(kv2, tok, NPOS, NULL, NULL), LETHE_ERR_INVALID);
    int32_t bad = V;
    CHECK_STATUS(lethe_gpt_kv_forward(kv2, &bad, 1, NULL, NULL), LETHE_ERR_INVALID);
    CHECK(kv2->len == T);
#ifdef _OPENMP
    /* the same bits on one thread */
    float *many = malloc(sizeof(float) * (size_t)V);
    lethe_gpt_kv_reset(kv);
    CHECK_OK(lethe_gpt_kv_forward(kv, tok, T, NULL, NULL));
    memcpy(many, kv->logits, sizeof(float) * (size_t)V);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    lethe_gpt_kv_reset(kv);
    lethe_status st1 = lethe_gpt_kv_forward(kv, tok, T, NULL, NULL);
    omp_set_num_threads(threads);
    CHECK_OK(st1);
    int same = !memcmp(many, kv->logits, sizeof(float) * (size_t)V);
    free(many);
    CHECK_MSG(same, "the cached forward depends on the thread count");
#endif
    lethe_gpt_kv_free(kv);
    lethe_gpt_kv_free(kv2);
    lethe_gpt_free(g);
}

static lethe_status gen(lethe_gpt *g, const int32_t *p, int n, const lethe_gen_opts *o,
                        lethe_gen_result *r)
{
    return lethe_gpt_generate(g, p, n, o, r);
}

TEST(gpt_gen_cache_and_no_cache_agree)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 11);
    CHECK(g);
    int32_t prompt[6];
    random_tokens(prompt, 6, V, 12);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 20;
    for (int mode = 0; mode < 3; mode++) {
        o.temperature = mode == 0 ? 0.0f : mode == 1 ? 1.0f : 0.7f;
        o.top_k = mode == 2 ? 20 : 0;
        o.top_p = mode == 2 ? 0.9f : 1.0f;
        o.seed = 42;
        lethe_gen_result a, b;
        o.no_cache = 0;
        CHECK_OK(gen(g, prompt, 6, &o, &a));
        o.no_cache = 1;
        CHECK_OK(gen(g, prompt, 6, &o, &b));
        CHECK(a.n == 20 && a.stop == LETHE_GEN_MAX);
        CHECK_MSG(same_result(&a, &b), "mode %d: cached and uncached generation differ", mode);
        for (int i = 0; i < a.n; i++)
            CHECK_CLOSE(a.logprobs[i], b.logprobs[i], 1e-4, 1e-5);
        lethe_gen_result_free(&a);
        lethe_gen_result_free(&b);
    }
    lethe_gpt_free(g);
}

TEST(gpt_gen_limits_reduce_to_greedy)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 21);
    CHECK(g);
    int32_t prompt[5];
    random_tokens(prompt, 5, V, 22);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 16;
    lethe_gen_result greedy, r;
    CHECK_OK(gen(g, prompt, 5, &o, &greedy));
    double sum = 0;
    for (int i = 0; i < greedy.n; i++) {
        CHECK(greedy.logprobs[i] <= 0.0f);
        sum += greedy.logprobs[i];
    }
    CHECK_CLOSE(greedy.score, sum, 1e-9, 1e-9);
    /* top-k 1 */
    o.temperature = 1.5f, o.top_k = 1, o.seed = 9;
    CHECK_OK(gen(g, prompt, 5, &o, &r));
    CHECK(same_result(&r, &greedy));
    lethe_gen_result_free(&r);
    /* a tiny top-p */
    o.top_k = 0, o.top_p = 1e-6f;
    CHECK_OK(gen(g, prompt, 5, &o, &r));
    CHECK(same_result(&r, &greedy));
    lethe_gen_result_free(&r);
    /* beam width 1, plain and length-normalised */
    lethe_gen_defaults(&o);
    o.max_new = 16;
    for (int norm = 0; norm < 2; norm++) {
        o.beam = 1, o.length_norm = norm;
        CHECK_OK(gen(g, prompt, 5, &o, &r));
        CHECK(same_result(&r, &greedy));
        lethe_gen_result_free(&r);
    }
    /* a temperature near 0 samples the argmax too */
    o.beam = 1, o.temperature = 1e-4f;
    CHECK_OK(gen(g, prompt, 5, &o, &r));
    CHECK(same_result(&r, &greedy));
    lethe_gen_result_free(&r);
    lethe_gen_result_free(&greedy);
    lethe_gpt_free(g);
}

TEST(gpt_gen_sampling_is_deterministic)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 31);
    CHECK(g);
    int32_t prompt[3] = {1, 2, 3};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 24, o.temperature = 1.0f, o.top_p = 0.95f;
    lethe_gen_result a, b;
    int differs = 0;
    for (uint64_t seed = 0; seed < 4; seed++) {
        o.seed = seed;
        CHECK_OK(gen(g, prompt, 3, &o, &a));
        CHECK_OK(gen(g, prompt, 3, &o, &b));
        CHECK(same_result(&a, &b));
        lethe_gen_result c;
        o.seed = seed + 100;
        CHECK_OK(gen(g, prompt, 3, &o, &c));
        differs += !same_result(&a, &c);
        lethe_gen_result_free(&a);
        lethe_gen_result_free(&b);
        lethe_gen_result_free(&c);
    }
    CHECK_MSG(differs > 0, "other seeds never gave other tokens");
    lethe_gpt_free(g);
}

struct force { int token, calls, last_len; };
static void force_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    struct force *f = ctx;
    (void)seq, (void)beam;
    for (int v = 0; v < V; v++)
        if (v != f->token)
            logits[v] = -INFINITY;
    f->calls++;
    f->last_len = len;
}

static void kill_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)ctx, (void)seq, (void)len, (void)beam;
    for (int v = 0; v < V; v++)
        logits[v] = -INFINITY;
}

TEST(gpt_gen_logits_hook_forces_tokens)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 41);
    CHECK(g);
    int32_t prompt[4] = {5, 6, 7, 8};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 7;
    struct force f = {42, 0, 0};
    o.logits_hook = force_hook, o.logits_ctx = &f;
    for (int mode = 0; mode < 3; mode++) {
        o.temperature = mode == 1 ? 1.0f : 0.0f;
        o.beam = mode == 2 ? 3 : 1;
        f.calls = 0;
        lethe_gen_result r;
        CHECK_OK(gen(g, prompt, 4, &o, &r));
        CHECK(r.n == 7);
        for (int i = 0; i < r.n; i++) {
            CHECK(r.tokens[i] == 42);
            CHECK_CLOSE(r.logprobs[i], 0.0, 0, 1e-6);
        }
        CHECK(f.calls >= 7);
        if (mode < 2)
            CHECK(f.calls == 7 && f.last_len == 10);
        lethe_gen_result_free(&r);
    }
    lethe_gen_result r;
    o.logits_hook = kill_hook;
    o.beam = 1;
    CHECK_STATUS(gen(g, prompt, 4, &o, &r), LETHE_ERR_INVALID);
    lethe_gpt_free(g);
}

/* Replace the embedding at position 0 with that of token `token`. */
struct emb { const lethe_gpt *g; int token, calls; };
static void emb_hook(void *ctx, int pos0, int n, const int32_t *tokens, float *emb, int C)
{
    struct emb *e = ctx;
    (void)tokens, (void)n;
    e->calls++;
    if (pos0 != 0)
        return;
    const float *wte = lethe_gpt_param(e->g, "wte.weight", NULL, NULL);
    const float *wpe = lethe_gpt_param(e->g, "wpe.weight", NULL, NULL);
    for (int k = 0; k < C; k++)
        emb[k] = wte[(long)e->token * C + k] + wpe[k];
}

TEST(gpt_gen_embed_hook_edits_prompt)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 51);
    CHECK(g);
    int32_t prompt[4] = {10, 20, 30, 40}, other[4] = {77, 20, 30, 40};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 10;
    lethe_gen_result a, b, c;
    CHECK_OK(gen(g, other, 4, &o, &a));
    struct emb e = {g, 77, 0};
    o.embed_hook = emb_hook, o.embed_ctx = &e;
    CHECK_OK(gen(g, prompt, 4, &o, &b));
    CHECK(e.calls == 1);
    CHECK(same_result(&a, &b));
    o.beam = 2;
    CHECK_OK(gen(g, prompt, 4, &o, &c));
    lethe_gen_result_free(&c);
    o.beam = 1, o.no_cache = 1;
    CHECK_STATUS(gen(g, prompt, 4, &o, &c), LETHE_ERR_INVALID);
    lethe_gen_result_free(&a);
    lethe_gen_result_free(&b);
    lethe_gpt_free(g);
}

TEST(gpt_gen_stop_strings_and_eos)
{
    lethe_tokenizer_t *tok = small_tokenizer();
    CHECK(tok);
    int V = (int)lethe_tokenizer_vocab_size(tok);
    lethe_gpt *g = small_model(V, 61);
    CHECK(g);
    uint32_t *ids = NULL;
    size_t n_ids = 0;
    CHECK_OK(lethe_tokenizer_encode(tok, "the cat", 7, &ids, &n_ids));
    int32_t prompt[16];
    for (size_t i = 0; i < n_ids; i++)
        prompt[i] = (int32_t)ids[i];
    free(ids);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 20, o.tok = tok;
    lethe_gen_result full, r;
    CHECK_OK(gen(g, prompt, (int)n_ids, &o, &full));
    CHECK(full.n == 20);
    /* a stop string: the bytes of the 5th new token (or a later one free of NUL) */
    int at = -1;
    char stop[64];
    for (int i = 4; i < full.n && at < 0; i++) {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(tok, (uint32_t)full.tokens[i], &len);
        if (len < sizeof stop && !memchr(b, 0, len)) {
            memcpy(stop, b, len);
            stop[len] = 0;
            at = i;
        }
    }
    CHECK(at >= 0);
    const char *stops[2] = {"\x01never\x02", stop};
    o.stop = stops, o.n_stop = 2;
    for (int beam = 1; beam <= 2; beam++) {
        o.beam = beam;
        CHECK_OK(gen(g, prompt, (int)n_ids, &o, &r));
        CHECK(r.stop == LETHE_GEN_STOP);
        CHECK(r.n >= 1 && r.n <= at + 1);
        unsigned char *text;
        size_t len;
        CHECK_OK(lethe_tokenizer_decode(tok, (const uint32_t *)r.tokens, (size_t)r.n, &text, &len));
        size_t sl = strlen(stop);
        CHECK(len >= sl && !memcmp(text + len - sl, stop, sl));
        free(text);
        if (beam == 1)
            for (int i = 0; i < r.n; i++)
                CHECK(r.tokens[i] == full.tokens[i]);
        lethe_gen_result_free(&r);
    }
    /* stop strings need the tokenizer */
    o.beam = 1, o.tok = NULL;
    CHECK_STATUS(gen(g, prompt, (int)n_ids, &o, &r), LETHE_ERR_INVALID);
    /* an end-of-text id: the 3rd new token */
    o.n_stop = 0, o.eos = full.tokens[2];
    CHECK_OK(gen(g, prompt, (int)n_ids, &o, &r));
    CHECK(r.stop == LETHE_GEN_EOS && r.n <= 3 && r.tokens[r.n - 1] == o.eos);
    lethe_gen_result_free(&r);
    lethe_gen_result_free(&full);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

TEST(gpt_gen_context_limit)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 71);
    CHECK(g);
    int32_t prompt[NPOS + 1];
    random_tokens(prompt, NPOS + 1, V, 72);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 10;
    lethe_gen_result r;
    for (int beam = 1; beam <= 3; beam += 2) {
        for (int nc = 0; nc < (beam == 1 ? 2 : 1); nc++) {
            o.beam = beam, o.no_cache = nc;
            CHECK_OK(gen(g, prompt, NPOS - 3, &o, &r));
            CHECK(r.n == 3 && r.stop == LETHE_GEN_CONTEXT);
            lethe_gen_result_free(&r);
            CHECK_OK(gen(g, prompt, NPOS, &o, &r));
            CHECK(r.n == 0 && r.stop == LETHE_GEN_CONTEXT);
            lethe_gen_result_free(&r);
        }
    }
    o.beam = 1, o.no_cache = 0;
    CHECK_STATUS(gen(g, prompt, NPOS + 1, &o, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(gen(g, prompt, 0, &o, &r), LETHE_ERR_INVALID);
    prompt[0] = V;
    CHECK_STATUS(gen(g, prompt, 3, &o, &r), LETHE_ERR_INVALID);
    prompt[0] = 0;
    o.max_new = 0;
    CHECK_OK(gen(g, prompt, 3, &o, &r));
    CHECK(r.n == 0 && r.stop == LETHE_GEN_MAX);
    lethe_gen_result_free(&r);
    lethe_gpt_free(g);
}

TEST(gpt_gen_beam_search)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 81);
    CHECK(g);
    int32_t prompt[4] = {3, 1, 4, 1};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 8;
    lethe_gen_result greedy, a, b;
    CHECK_OK(gen(g, prompt, 4, &o, &greedy));
    for (int norm = 0; norm < 2; norm++) {
        o.beam = 4, o.length_norm = norm;
        CHECK_OK(gen(g, prompt, 4, &o, &a));
        CHECK_OK(gen(g, prompt, 4, &o, &b));
        CHECK(same_result(&a, &b));
        CHECK(a.n == 8 && a.stop == LETHE_GEN_MAX);
        double sum = 0;
        for (int i = 0; i < a.n; i++)
            sum += a.logprobs[i];
        CHECK_CLOSE(a.score, sum, 1e-6, 1e-6);
        CHECK(isfinite(a.score));
        lethe_gen_result_free(&a);
        lethe_gen_result_free(&b);
    }
    lethe_gen_result_free(&greedy);
    lethe_gpt_free(g);
}

TEST(gpt_gen_logit_moments)
{
    float z[5] = {0, 0, 0, 0, 0};
    double mu, s2;
    lethe_gpt_logit_moments(z, 5, &mu, &s2);
    CHECK_CLOSE(mu, -log(5.0), 1e-12, 1e-12);
    CHECK_CLOSE(s2, 0.0, 0, 1e-12);
    float w[3] = {1.0f, 2.0f, -INFINITY};
    lethe_gpt_logit_moments(w, 3, &mu, &s2);
    double l1 = 1.0 - (2.0 + log1p(exp(-1.0))), l2 = -log1p(exp(-1.0));
    double p1 = exp(l1), p2 = exp(l2);
    double m = p1 * l1 + p2 * l2;
    CHECK_CLOSE(mu, m, 1e-6, 1e-9);
    CHECK_CLOSE(s2, p1 * l1 * l1 + p2 * l2 * l2 - m * m, 1e-6, 1e-9);
}

/* A run directory as lethe generate reads it: model.safetensors and
 * tokenizer.json; the model read back generates the same tokens. */
TEST(gpt_gen_run_dir_round_trip)
{
    lethe_tokenizer_t *tok = small_tokenizer();
    CHECK(tok);
    int V = (int)lethe_tokenizer_vocab_size(tok);
    lethe_gpt *g = small_model(V, 91);
    CHECK(g);
    char dir[] = "/tmp/lethe-gen-XXXXXX", model[128], tj[128];
    CHECK(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    CHECK_OK(lethe_gpt_save(g, model, NULL, 0));
    CHECK_OK(lethe_tokenizer_save_json(tok, tj));
    lethe_gpt *g2 = NULL;
    lethe_tokenizer_t *tok2 = NULL;
    CHECK_OK(lethe_gpt_load(model, &g2));
    CHECK_OK(lethe_tokenizer_load_json(tj, &tok2));
    CHECK(g2->cfg.vocab_size == V && g2->cfg.n_positions == NPOS);
    CHECK(lethe_tokenizer_vocab_size(tok2) == (size_t)V);
    int32_t prompt[3] = {116, 104, 101};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = 10, o.temperature = 0.9f, o.seed = 17;
    lethe_gen_result a, b;
    CHECK_OK(lethe_gpt_generate(g, prompt, 3, &o, &a));
    CHECK_OK(lethe_gpt_generate(g2, prompt, 3, &o, &b));
    CHECK(same_result(&a, &b));
    lethe_gen_result_free(&a);
    lethe_gen_result_free(&b);
    remove(model), remove(tj), rmdir(dir);
    lethe_gpt_free(g), lethe_gpt_free(g2);
    lethe_tokenizer_free(tok), lethe_tokenizer_free(tok2);
}

typedef struct seen {
    int32_t tok[16];
    float lp[16];
    int n, cancel_at; /* stop after this many tokens (0: never) */
} seen;

static int on_token(void *ctx, int32_t t, float lp)
{
    seen *s = ctx;
    s->tok[s->n] = t, s->lp[s->n] = lp;
    s->n++;
    return s->n == s->cancel_at;
}

/* The token callback sees exactly the result's tokens, greedy and beam, and
 * a nonzero return stops the generation with the token kept. */
TEST(gpt_gen_token_callback_streams_and_cancels)
{
    const int V = 97;
    lethe_gpt *g = small_model(V, 82);
    CHECK(g);
    int32_t prompt[3] = {5, 9, 2};
    for (int beam = 1; beam <= 3; beam += 2) {
        lethe_gen_opts o;
        lethe_gen_defaults(&o);
        o.max_new = 10, o.beam = beam;
        seen s = {0};
        o.on_token = on_token, o.token_ctx = &s;
        lethe_gen_result r;
        CHECK_OK(gen(g, prompt, 3, &o, &r));
        CHECK(r.n == 10 && s.n == 10 && r.stop == LETHE_GEN_MAX);
        CHECK(!memcmp(s.tok, r.tokens, sizeof(int32_t) * 10));
        CHECK(!memcmp(s.lp, r.logprobs, sizeof(float) * 10));
        lethe_gen_result_free(&r);
        if (beam > 1)
            continue;
        seen c = {.cancel_at = 4};
        o.token_ctx = &c;
        CHECK_OK(gen(g, prompt, 3, &o, &r));
        CHECK(r.n == 4 && c.n == 4 && r.stop == LETHE_GEN_CANCEL);
        CHECK(!strcmp(lethe_gen_stop_name(r.stop), "cancel"));
        CHECK(!memcmp(c.tok, s.tok, sizeof(int32_t) * 4));
        lethe_gen_result_free(&r);
    }
    lethe_gpt_free(g);
}
