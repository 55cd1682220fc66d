/* GUARD's constrained decoder (lethe/guard_decode.h) on small random GPT
 * models and a BPE tokenizer trained here: with no forbidden set it is
 * lethe_gpt_generate's beam search (and greedy at width 1); forbidden
 * n-grams never appear in its output (checked by a naive matcher, apart
 * from the library's), whatever tokens spell them; soft matches prune or
 * re-rank; a search where every beam dies refuses; threads agree; bad
 * arguments fail with a detail. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_decode.h"
#include "lethe/rng.h"
#include "lethe/tokenizer.h"

#define NPOS 48

static const char *train_text =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat, "
    "and the cat ran to the log while the dog sat still. the old man read a book by the "
    "river; the river ran past the mill and the mill stood near the old bridge. Paris is "
    "the capital of France, and Rome is the capital of Italy. the cat, the dog and the "
    "man walked to the river bank at noon.";

static lethe_tokenizer_t *small_tokenizer(void)
{
    size_t len = strlen(train_text);
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_train(&train_text, &len, 1, 400, NULL, &t) != LETHE_OK)
        return NULL;
    return t;
}

/* A model over the tokenizer's ids, NPOS positions, C 32, 2 layers, 4 heads.
 * Scaled embeddings make the distributions peaked, and wpe scaled above wte
 * makes the position, not the last token, lead: a random model then varies
 * its words instead of repeating one. */
static lethe_gpt *small_model(int V, uint64_t seed)
{
    lethe_gpt_config cfg = {V, NPOS, 32, 2, 4};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    if (!g)
        return NULL;
    lethe_gpt_init_params(g, seed);
    float *wte = lethe_gpt_param(g, "wte.weight", NULL, NULL);
    float *wpe = lethe_gpt_param(g, "wpe.weight", NULL, NULL);
    for (long i = 0; i < (long)V * 32; i++)
        wte[i] *= 4.0f;
    for (long i = 0; i < (long)NPOS * 32; i++)
        wpe[i] *= 20.0f;
    return g;
}

static int encode(const lethe_tokenizer_t *tok, const char *s, int32_t *out, int cap)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    if (lethe_tokenizer_encode(tok, s, strlen(s), &ids, &n) != LETHE_OK || n > (size_t)cap) {
        free(ids);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (int32_t)ids[i];
    free(ids);
    return (int)n;
}

/* The single token spelling s, or -1. */
static int32_t token_of(const lethe_tokenizer_t *tok, const char *s)
{
    uint32_t id;
    return lethe_tokenizer_find(tok, s, strlen(s), &id) ? (int32_t)id : -1;
}

static const char *prompts[] = {"the dog", "a cat sat", "on the mat and", "while the",
                                "Paris is", "the old man read"};
#define N_PROMPTS ((int)(sizeof prompts / sizeof prompts[0]))

/* ---- naive references ------------------------------------------------------- */

static int word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* Lower-case words separated by single spaces, as the guard's normaliser. */
static size_t ref_normalize(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!word_byte(c)) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
            continue;
        }
        out[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
    }
    if (n && out[n - 1] == ' ')
        n--;
    return n;
}

/* Does text, normalised, contain ngram, normalised, at word boundaries? */
static int ref_contains(const char *text, size_t len, const char *ngram)
{
    char *t = malloc(len + 3), *p = malloc(strlen(ngram) + 3);
    t[0] = p[0] = ' ';
    size_t n = ref_normalize(text, len, t + 1), m = ref_normalize(ngram, strlen(ngram), p + 1);
    t[n + 1] = p[m + 1] = ' ';
    t[n + 2] = p[m + 2] = 0;
    int found = m > 0 && strstr(t, p) != NULL;
    free(t), free(p);
    return found;
}

/* Does tokens[0..n) contain the trie's sequence i as a contiguous run? */
static int ref_has_sequence(const int32_t *tokens, int n, const lethe_guard_trie_t *trie)
{
    for (size_t i = 0; i < lethe_guard_trie_count(trie); i++) {
        size_t m;
        uint32_t id;
        const uint32_t *s = lethe_guard_trie_sequence(trie, i, &m, &id);
        for (int a = 0; a + (int)m <= n; a++) {
            size_t k = 0;
            while (k < m && (uint32_t)tokens[a + (int)k] == s[k])
                k++;
            if (k == m)
                return 1;
        }
    }
    return 0;
}

/* An n-gram of k words of text joined by single spaces in the text itself,
 * the `pick`-th such (wrapping), into out; 0 when there is none. */
static int pick_ngram(const char *text, int k, int pick, char *out, size_t cap)
{
    size_t len = strlen(text), starts[64], ends[64];
    int nw = 0;
    for (size_t i = 0; i < len && nw < 64;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t a = i;
        while (i < len && word_byte((unsigned char)text[i]))
            i++;
        if (i > a)
            starts[nw] = a, ends[nw] = i, nw++;
    }
    int found[64], nf = 0;
    for (int j = 0; j + k <= nw; j++) {
        int ok = 1;
        for (int q = j; q + 1 < j + k; q++)
            ok &= starts[q + 1] == ends[q] + 1 && text[ends[q]] == ' ';
        if (ok)
            found[nf++] = j;
    }
    if (!nf)
        return 0;
    int j = found[pick % nf];
    size_t a = starts[j], b = ends[j + k - 1];
    if (b - a + 1 > cap)
        return 0;
    memcpy(out, text + a, b - a);
    out[b - a] = 0;
    return 1;
}

/* Rounds every logit down to a multiple of 1/2 (ctx NULL) or flattens them
 * all to 0: ties everywhere, so the tie-breaking rules (lower id, then lower
 * beam) decide. */
static void ties_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)seq, (void)len, (void)beam;
    for (int v = 0; v < V; v++)
        logits[v] = ctx ? 0.0f : floorf(logits[v] * 2.0f) / 2.0f;
}

static int same_tokens(const lethe_guard_decode_result *a, const lethe_gen_result *b)
{
    if (a->n != b->n || a->stop != b->stop || a->refused)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->tokens[i] != b->tokens[i] || a->logprobs[i] != b->logprobs[i])
            return 0;
    return 1;
}

/* Bans the single-byte tokens but " ", "." and ",": the output is then made
 * of the tokenizer's merged tokens, words rather than stray bytes. */
static void words_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)ctx, (void)V, (void)seq, (void)len, (void)beam;
    for (int v = 0; v < 256; v++)
        if (v != ' ' && v != '.' && v != ',')
            logits[v] = -INFINITY;
}

struct fixture {
    lethe_tokenizer_t *tok;
    lethe_gpt *g;
    int V;
};

static int fixture_init(struct fixture *fx, uint64_t seed)
{
    fx->tok = small_tokenizer();
    fx->V = fx->tok ? (int)lethe_tokenizer_vocab_size(fx->tok) : 0;
    fx->g = fx->tok ? small_model(fx->V, seed) : NULL;
    return fx->g != NULL;
}

static void fixture_free(struct fixture *fx)
{
    lethe_gpt_free(fx->g);
    lethe_tokenizer_free(fx->tok);
}

/* ---- no forbidden set: generate's beam search -------------------------------- */

TEST(guard_decode_without_a_set_is_generate)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 11));
    lethe_guard_forbid_t *empty = NULL;
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, NULL, 0, NULL, 0, NULL, &empty));
    const int widths[] = {1, 2, 3, 7};
    int compared = 0, with_eos = 0;
    const int n_prompts = test_quick() ? 2 : N_PROMPTS;
    for (int p = 0; p < n_prompts; p++)
        for (int wi = 0; wi < 4; wi++)
            for (int variant = 0; variant < 6; variant++) {
                int32_t prompt[16];
                int n = encode(fx.tok, prompts[p], prompt, 16);
                CHECK(n > 0);
                lethe_gen_opts go;
                lethe_gen_defaults(&go);
                go.beam = widths[wi];
                go.max_new = variant == 3 ? NPOS : 20; /* 3: up to the context limit */
                go.length_norm = variant == 2;
                if (variant == 1 || variant == 2)
                    go.logits_hook = words_hook;
                if (variant >= 4)
                    go.logits_hook = ties_hook, go.logits_ctx = variant == 5 ? &go : NULL;
                lethe_gen_result want;
                if (variant == 1 || variant == 2) { /* end at a token the search meets */
                    CHECK_OK(lethe_gpt_generate(fx.g, prompt, n, &go, &want));
                    CHECK(want.n > 4);
                    go.eos = want.tokens[2 + (p + wi) % 3];
                    lethe_gen_result_free(&want);
                }
                lethe_guard_decode_opts o;
                lethe_guard_decode_defaults(&o);
                o.beam = go.beam, o.max_new = go.max_new, o.eos = go.eos;
                o.length_norm = go.length_norm;
                o.logits_hook = go.logits_hook, o.logits_ctx = go.logits_ctx;
                CHECK_OK(lethe_gpt_generate(fx.g, prompt, n, &go, &want));
                for (int e = 0; e < 2; e++) {
                    lethe_guard_decode_result got;
                    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, e ? empty : NULL, prompt, n, &o,
                                                &got));
                    int same = same_tokens(&got, &want) && got.score == want.score &&
                               got.pruned_trie + got.pruned_ac + got.pruned_soft == 0;
                    lethe_guard_decode_result_free(&got);
                    CHECK_MSG(same, "prompt %d width %d variant %d set %d: not generate's",
                              p, go.beam, variant, e);
                }
                with_eos += want.stop == LETHE_GEN_EOS;
                lethe_gen_result_free(&want);
                compared++;
            }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "%d runs compared, %d ended at the end-of-text token\n", compared,
                with_eos);
    CHECK(with_eos >= n_prompts * 4); /* the end-of-text path was taken */
    lethe_guard_forbid_free(empty);
    fixture_free(&fx);
}

/* ---- hard match ------------------------------------------------------------------- */

TEST(guard_decode_hard_match_never_emits_the_ngram)
{
    int changed = 0, trie_hits = 0, cases = 0;
    for (uint64_t seed = 1; seed <= (test_quick() ? 2u : 4u); seed++) {
        struct fixture fx;
        CHECK(fixture_init(&fx, seed));
        for (int p = 0; p < N_PROMPTS; p++) {
            int32_t prompt[16];
            int n = encode(fx.tok, prompts[p], prompt, 16);
            lethe_guard_decode_opts o;
            lethe_guard_decode_defaults(&o);
            o.max_new = 24;
            o.logits_hook = words_hook;
            lethe_guard_decode_result free_run;
            CHECK_OK(lethe_guard_decode(fx.g, fx.tok, NULL, prompt, n, &o, &free_run));
            for (int k = 2; k <= 3; k++) {
                char ngram[256];
                if (!pick_ngram(free_run.text, k, p + (int)seed, ngram, sizeof ngram))
                    continue;
                CHECK(ref_contains(free_run.text, free_run.text_len, ngram));
                const char *list[] = {ngram};
                lethe_guard_forbid_t *f = NULL;
                CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, list, 1, NULL, 0, NULL, &f));
                /* the trie alone never emits its sequences; all rules never the text */
                for (int pass = 0; pass < 2; pass++) {
                    unsigned rules = pass ? LETHE_GUARD_RULE_ALL : LETHE_GUARD_RULE_TRIE;
                    o.rules = rules;
                    lethe_guard_decode_result r;
                    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
                    int seq = !r.refused && ref_has_sequence(r.tokens, r.n,
                                                             lethe_guard_forbid_trie(f));
                    int text = !r.refused && ref_contains(r.text, r.text_len, ngram);
                    trie_hits += r.pruned_trie > 0;
                    changed += rules == LETHE_GUARD_RULE_ALL &&
                               (r.refused || strcmp(r.text, free_run.text) != 0);
                    lethe_guard_decode_result_free(&r);
                    CHECK_MSG(!seq, "seed %d prompt %d: a forbidden token sequence of \"%s\"",
                              (int)seed, p, ngram);
                    CHECK_MSG(rules != LETHE_GUARD_RULE_ALL || !text,
                              "seed %d prompt %d: \"%s\" in the guarded output", (int)seed, p,
                              ngram);
                }
                o.rules = LETHE_GUARD_RULE_ALL;
                lethe_guard_forbid_free(f);
                cases++;
            }
            lethe_guard_decode_result_free(&free_run);
        }
        fixture_free(&fx);
    }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "%d n-grams forbidden, %d outputs changed, %d runs pruned by the trie\n",
                cases, changed, trie_hits);
    CHECK(cases >= 20);
    CHECK(changed == cases); /* each n-gram was in the unguarded output */
    CHECK(trie_hits > 0);
}

/* Spells target[] one byte token at a time (byte-level BPE: id = byte) by
 * lifting that token 20 above the best while the output follows it. */
struct spell {
    int n_prompt;
    const char *target;
};

static void spell_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    const struct spell *s = ctx;
    (void)beam;
    int k = len - s->n_prompt;
    if (k >= (int)strlen(s->target))
        return;
    for (int i = 0; i < k; i++)
        if (seq[s->n_prompt + i] != (unsigned char)s->target[i])
            return;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    logits[(unsigned char)s->target[k]] = mx + 20.0f;
}

TEST(guard_decode_automaton_catches_other_tokenisations)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 5));
    int32_t prompt[16];
    int n = encode(fx.tok, "the old man", prompt, 16);
    const char *list[] = {"cat sat"};
    lethe_guard_forbid_t *f = NULL;
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, list, 1, NULL, 0, NULL, &f));
    /* the trie holds merged tokens, not the byte spelling used below */
    lethe_guard_forbid_info info;
    lethe_guard_forbid_info_get(f, &info);
    CHECK(info.sequences == 2 && info.longest < strlen(" cat sat"));
    struct spell sp = {n, " cat sat. "};
    lethe_guard_decode_opts o;
    lethe_guard_decode_defaults(&o);
    o.max_new = 14;
    o.logits_hook = spell_hook, o.logits_ctx = &sp;
    lethe_guard_decode_result r;
    o.rules = LETHE_GUARD_RULE_TRIE;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int leaked = !r.refused && ref_contains(r.text, r.text_len, "cat sat");
    long trie = r.pruned_trie;
    lethe_guard_decode_result_free(&r);
    CHECK_MSG(leaked, "the byte spelling should pass the trie alone");
    CHECK(trie == 0);
    o.rules = LETHE_GUARD_RULE_ALL;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    leaked = !r.refused && ref_contains(r.text, r.text_len, "cat sat");
    long ac = r.pruned_ac;
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "guarded: \"%s\" (automaton pruned %ld)\n", r.text, ac);
    lethe_guard_decode_result_free(&r);
    CHECK_MSG(!leaked, "the automaton let \"cat sat\" through");
    CHECK(ac > 0);
    /* ending the text right after the n-gram is caught too: max_new stops it */
    sp.target = " cat sat";
    o.max_new = 8; /* exactly the spelling */
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    leaked = !r.refused && ref_contains(r.text, r.text_len, "cat sat");
    lethe_guard_decode_result_free(&r);
    CHECK(!leaked);
    lethe_guard_forbid_free(f);
    fixture_free(&fx);
}

/* ---- soft match ----------------------------------------------------------------- */

/* Every word of text is below delta in similarity to f's words. */
static int all_below(const lethe_guard_forbid_t *f, const char *text, double delta,
                     char *worst, size_t cap)
{
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t a = i;
        while (i < len && word_byte((unsigned char)text[i]))
            i++;
        double sim;
        if (i > a && lethe_guard_forbid_similarity(f, text + a, i - a, &sim) == LETHE_OK &&
            sim >= delta) {
            snprintf(worst, cap, "%.*s (%.3f)", (int)(i - a), text + a, sim);
            return 0;
        }
    }
    return 1;
}

TEST(guard_decode_soft_match_prunes_similar_words)
{
    int pruned = 0, cases = 0;
    for (int kind = LETHE_GUARD_WORDVEC_EMBED; kind <= LETHE_GUARD_WORDVEC_HASH; kind++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            struct fixture fx;
            CHECK(fixture_init(&fx, seed));
            for (int p = 0; p < N_PROMPTS; p += 2) {
                int32_t prompt[16];
                int n = encode(fx.tok, prompts[p], prompt, 16);
                lethe_guard_decode_opts o;
                lethe_guard_decode_defaults(&o);
                o.max_new = 20;
                o.logits_hook = words_hook;
                lethe_guard_decode_result free_run;
                CHECK_OK(lethe_guard_decode(fx.g, fx.tok, NULL, prompt, n, &o, &free_run));
                /* forbid the longest ASCII word of the unguarded answer */
                char word[LETHE_GUARD_WORD_MAX + 1] = "";
                const char *t = free_run.text;
                for (size_t i = 0, len = strlen(t); i < len;) {
                    while (i < len && !word_byte((unsigned char)t[i]))
                        i++;
                    size_t a = i;
                    while (i < len && word_byte((unsigned char)t[i]))
                        i++;
                    int ascii = 1;
                    for (size_t k = a; k < i; k++)
                        ascii &= (unsigned char)t[k] < 0x80;
                    if (ascii && i - a > strlen(word) && i - a <= LETHE_GUARD_WORD_MAX &&
                        !lethe_guard_stopword(t + a, i - a))
                        memcpy(word, t + a, i - a), word[i - a] = 0;
                }
                lethe_guard_decode_result_free(&free_run);
                if (strlen(word) < 3)
                    continue;
                const char *words[] = {word};
                lethe_guard_forbid_cfg cfg;
                lethe_guard_forbid_defaults(&cfg);
                cfg.wordvec = (lethe_guard_wordvec)kind;
                lethe_guard_forbid_t *f = NULL;
                CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, NULL, 0, words, 1, &cfg, &f));
                double self;
                CHECK_OK(lethe_guard_forbid_similarity(f, word, strlen(word), &self));
                CHECK_CLOSE(self, 1.0, 0, 1e-6);
                lethe_guard_decode_result r;
                CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
                char worst[128] = "";
                int ok = r.refused || all_below(f, r.text, o.delta, worst, sizeof worst);
                pruned += r.pruned_soft > 0;
                int acted = r.pruned_soft + r.penalized > 0;
                lethe_guard_decode_result_free(&r);
                lethe_guard_forbid_free(f);
                CHECK_MSG(ok, "kind %d seed %d prompt %d: \"%s\" forbidden, %s emitted", kind,
                          (int)seed, p, word, worst);
                CHECK_MSG(acted, "kind %d seed %d prompt %d: nothing pruned or penalised", kind,
                          (int)seed, p);
                cases++;
            }
            fixture_free(&fx);
        }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "%d words forbidden, %d searches pruned\n", cases, pruned);
    CHECK(cases >= 10);
    CHECK(pruned > 0);
}

/* Lifts two first tokens 20 above the rest (a 0.1 ahead of b), then "." */
struct fork {
    int n_prompt;
    int32_t a, b, dot;
};

static void fork_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    const struct fork *fk = ctx;
    (void)beam;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    if (len == fk->n_prompt) {
        logits[fk->a] = mx + 20.1f;
        logits[fk->b] = mx + 20.0f;
    } else if (seq[len - 1] == fk->a || seq[len - 1] == fk->b) {
        logits[fk->dot] = mx + 20.0f;
    }
}

TEST(guard_decode_soft_penalty_reranks)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 2));
    struct fork fk = {0, token_of(fx.tok, " cat"), token_of(fx.tok, " dog"),
                      token_of(fx.tok, ".")};
    CHECK(fk.a >= 0 && fk.b >= 0 && fk.dot >= 0);
    int32_t prompt[16];
    fk.n_prompt = encode(fx.tok, "the old man", prompt, 16);
    const char *words[] = {"the", "of", "Cat"};
    lethe_guard_forbid_cfg cfg;
    lethe_guard_forbid_defaults(&cfg);
    cfg.wordvec = LETHE_GUARD_WORDVEC_HASH;
    lethe_guard_forbid_t *f = NULL;
    CHECK_OK(lethe_guard_forbid_new(NULL, fx.tok, NULL, 0, words, 3, &cfg, &f));
    lethe_guard_forbid_info info;
    lethe_guard_forbid_info_get(f, &info);
    CHECK(info.words == 1 && info.words_skipped == 2);
    double sim;
    CHECK_OK(lethe_guard_forbid_similarity(f, "the", 3, &sim));
    CHECK(sim == -INFINITY); /* a stopword is never matched */
    CHECK_OK(lethe_guard_forbid_similarity(f, "CAT", 3, &sim));
    CHECK_CLOSE(sim, 1.0, 0, 1e-6);
    CHECK_OK(lethe_guard_forbid_similarity(f, "dog", 3, &sim));
    CHECK(sim < 0.05);
    lethe_guard_decode_opts o;
    lethe_guard_decode_defaults(&o);
    o.max_new = 2;
    o.logits_hook = fork_hook, o.logits_ctx = &fk;
    lethe_guard_decode_result r;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, NULL, prompt, fk.n_prompt, &o, &r));
    CHECK(r.n == 2 && r.tokens[0] == fk.a); /* unguarded: the cat */
    lethe_guard_decode_result_free(&r);
    o.delta = 2.0f; /* never prune: the penalty alone turns the ranking */
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, fk.n_prompt, &o, &r));
    int dog = r.n == 2 && r.tokens[0] == fk.b && !strcmp(r.text, " dog.");
    long soft = r.pruned_soft, pen = r.penalized;
    int unpenalised = r.score == r.logprob;
    lethe_guard_decode_result_free(&r);
    CHECK(dog && soft == 0 && pen > 0 && unpenalised);
    o.delta = 0.5f; /* the default: the cat is pruned */
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, fk.n_prompt, &o, &r));
    dog = r.n == 2 && r.tokens[0] == fk.b;
    soft = r.pruned_soft;
    lethe_guard_decode_result_free(&r);
    CHECK(dog && soft > 0);
    lethe_guard_forbid_free(f);
    /* every word of the training text, both kinds: each finds itself */
    for (int kind = LETHE_GUARD_WORDVEC_EMBED; kind <= LETHE_GUARD_WORDVEC_HASH; kind++) {
        cfg.wordvec = (lethe_guard_wordvec)kind;
        CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, NULL, 0, &train_text, 1, &cfg, &f));
        lethe_guard_forbid_info_get(f, &info);
        size_t n_words = 0;
        for (const char *c = train_text; *c; c++)
            n_words += word_byte((unsigned char)*c) && !word_byte((unsigned char)c[1]);
        CHECK(info.words > 40 && info.words + info.words_skipped == n_words);
        const char *probe[] = {"bridge", "capital", "river", "walked"};
        for (int i = 0; i < 4; i++) {
            CHECK_OK(lethe_guard_forbid_similarity(f, probe[i], strlen(probe[i]), &sim));
            CHECK_CLOSE(sim, 1.0, 0, 1e-6);
        }
        lethe_guard_forbid_free(f);
    }
    fixture_free(&fx);
}

/* ---- refusal --------------------------------------------------------------------- */

/* Leaves finite only the tokens of allowed[step] (a -1 terminated list). */
struct only {
    int n_prompt;
    const int32_t *allowed[4];
};

static void only_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    const struct only *o = ctx;
    (void)seq, (void)beam;
    int step = len - o->n_prompt;
    const int32_t *ok = o->allowed[step < 3 ? step : 3];
    for (int v = 0; v < V; v++) {
        int keep = 0;
        for (int i = 0; ok[i] >= 0; i++)
            keep |= ok[i] == v;
        if (!keep)
            logits[v] = -INFINITY;
    }
}

TEST(guard_decode_refuses_when_every_beam_dies)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 3));
    int32_t cat = token_of(fx.tok, " cat"), dog = token_of(fx.tok, " dog"),
            mat = token_of(fx.tok, " mat"), sat = token_of(fx.tok, " sat"),
            on = token_of(fx.tok, " on"), dot = token_of(fx.tok, ".");
    CHECK(cat >= 0 && dog >= 0 && mat >= 0 && sat >= 0 && on >= 0 && dot >= 0);
    int32_t prompt[16];
    int n = encode(fx.tok, "the", prompt, 16);
    /* every first word the model may start with is forbidden */
    const int32_t first[] = {cat, dog, mat, -1}, second[] = {sat, -1}, third[] = {dot, on, -1};
    struct only only = {n, {first, first, first, first}};
    const char *all[] = {"cat", "dog", "mat"};
    lethe_guard_forbid_t *f = NULL;
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, all, 3, NULL, 0, NULL, &f));
    lethe_guard_decode_opts o;
    lethe_guard_decode_defaults(&o);
    o.logits_hook = only_hook, o.logits_ctx = &only;
    lethe_guard_decode_result r;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int refused = r.refused && r.n == 0 && !r.tokens && !strcmp(r.text, LETHE_GUARD_REFUSAL) &&
                  r.pruned_trie == 3 && r.steps == 1;
    lethe_guard_decode_result_free(&r);
    CHECK(refused);
    lethe_guard_forbid_free(f);
    /* dying later: " cat sat" is allowed token by token and forbidden as text;
     * whatever closes it ("." or " on", or the end of the text) is pruned */
    const char *cs[] = {"cat sat"};
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, cs, 1, NULL, 0, NULL, &f));
    only = (struct only){n, {(const int32_t[]){cat, -1}, second, third, third}};
    o.refusal = "No.";
    o.rules = LETHE_GUARD_RULE_AC;
    for (int max_new = 2; max_new <= 4; max_new++) {
        o.max_new = max_new;
        CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
        refused = r.refused && r.n == 0 && !strcmp(r.text, "No.") && r.text_len == 3 &&
                  r.pruned_ac > 0 && !ref_contains(r.text, r.text_len, "cat sat");
        lethe_guard_decode_result_free(&r);
        CHECK_MSG(refused, "max_new %d: no refusal", max_new);
    }
    /* a beam that finished first is an answer, not a refusal: allow the
     * end-of-text token after " cat" */
    o.eos = dot;
    only = (struct only){n, {(const int32_t[]){cat, -1}, (const int32_t[]){sat, dot, -1},
                             third, third}};
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int answered = !r.refused && r.n == 2 && r.stop == LETHE_GEN_EOS && !strcmp(r.text, " cat");
    lethe_guard_decode_result_free(&r);
    CHECK(answered);
    lethe_guard_forbid_free(f);
    fixture_free(&fx);
}

/* Every logit 0 from "a" (97) on, -inf below: ties decided by id. */
static void letters_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    (void)ctx, (void)seq, (void)len, (void)beam;
    for (int v = 0; v < V; v++)
        logits[v] = v < 'a' ? -INFINITY : 0.0f;
}

TEST(guard_decode_considers_the_top_2w_only)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 4));
    CHECK(token_of(fx.tok, "a") == 'a' && token_of(fx.tok, "b") == 'b');
    int32_t prompt[16];
    int n = encode(fx.tok, "the", prompt, 16);
    lethe_guard_decode_opts o;
    lethe_guard_decode_defaults(&o);
    o.beam = 1, o.max_new = 1;
    o.logits_hook = letters_hook;
    /* width 1: the candidates are "a" and "b" (lowest ids among equals) */
    const char *ab[] = {"a", "b"};
    lethe_guard_forbid_t *f = NULL;
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, ab, 1, NULL, 0, NULL, &f));
    lethe_guard_decode_result r;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int b = !r.refused && r.n == 1 && r.tokens[0] == 'b' && r.pruned_trie == 1;
    lethe_guard_decode_result_free(&r);
    lethe_guard_forbid_free(f);
    CHECK(b);
    /* both forbidden: "c" is as likely but not a candidate, so it refuses */
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, ab, 2, NULL, 0, NULL, &f));
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int refused = r.refused && r.candidates == 2;
    lethe_guard_decode_result_free(&r);
    /* width 2: four candidates, "c" survives */
    o.beam = 2;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int c = !r.refused && r.n == 1 && r.tokens[0] == 'c' && r.candidates == 4;
    lethe_guard_decode_result_free(&r);
    /* nothing to generate: an empty answer, not a refusal */
    o.max_new = 0;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, prompt, n, &o, &r));
    int empty = !r.refused && r.n == 0 && r.text_len == 0 && !strcmp(r.text, "") &&
                r.stop == LETHE_GEN_MAX;
    lethe_guard_decode_result_free(&r);
    int32_t full[NPOS];
    for (int i = 0; i < NPOS; i++)
        full[i] = 'x';
    o.max_new = 4;
    CHECK_OK(lethe_guard_decode(fx.g, fx.tok, f, full, NPOS, &o, &r));
    empty &= !r.refused && r.n == 0 && r.stop == LETHE_GEN_CONTEXT;
    lethe_guard_decode_result_free(&r);
    lethe_guard_forbid_free(f);
    CHECK(refused && c && empty);
    fixture_free(&fx);
}

/* ---- threads ----------------------------------------------------------------------- */

struct job {
    const struct fixture *fx;
    const lethe_guard_forbid_t *f;
    int p;
    lethe_status st;
    lethe_guard_decode_result r;
};

static void *job_run(void *arg)
{
    struct job *j = arg;
    int32_t prompt[16];
    int n = encode(j->fx->tok, prompts[j->p], prompt, 16);
    j->st = lethe_guard_decode(j->fx->g, j->fx->tok, j->f, prompt, n, NULL, &j->r);
    return NULL;
}

TEST(guard_decode_threads_agree)
{
    struct fixture fx;
    CHECK(fixture_init(&fx, 7));
    const char *ngrams[] = {"the cat", "sat on the mat", "river"};
    const char *words[] = {"capital", "bridge"};
    lethe_guard_forbid_t *f = NULL;
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, ngrams, 3, words, 2, NULL, &f));
    struct job one[2], two[2];
    for (int i = 0; i < 2; i++) {
        one[i] = (struct job){&fx, f, i + 1, LETHE_OK, {0}};
        two[i] = one[i];
        job_run(&one[i]);
        CHECK_OK(one[i].st);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, job_run, &two[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    int same = 1;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(two[i].st);
        same &= one[i].r.n == two[i].r.n && one[i].r.score == two[i].r.score &&
                !memcmp(one[i].r.tokens, two[i].r.tokens, sizeof(int32_t) * (size_t)one[i].r.n) &&
                !strcmp(one[i].r.text, two[i].r.text);
        lethe_guard_decode_result_free(&one[i].r);
        lethe_guard_decode_result_free(&two[i].r);
    }
    CHECK(same);
    lethe_guard_forbid_free(f);
    fixture_free(&fx);
}

/* ---- bad arguments ------------------------------------------------------------------- */

#define CHECK_INVALID(expr)                                                     \
    do {                                                                        \
        lethe_error_clear();                                                    \
        CHECK_STATUS(expr, LETHE_ERR_INVALID);                                  \
        CHECK_MSG(lethe_error_detail()[0], "%s: no detail", #expr);             \
    } while (0)

TEST(guard_decode_rejects_bad_arguments)
{
    struct fixture fx, other;
    CHECK(fixture_init(&fx, 1));
    CHECK(fixture_init(&other, 2));
    lethe_guard_forbid_t *f = NULL;
    const char *ok[] = {"the cat"}, *blank[] = {" ;; "}, *nul[] = {NULL};
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, NULL, ok, 1, NULL, 0, NULL, &f));
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, fx.tok, blank, 1, NULL, 0, NULL, &f));
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, fx.tok, NULL, 0, blank, 1, NULL, &f));
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, fx.tok, nul, 1, NULL, 0, NULL, &f));
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, fx.tok, NULL, 1, NULL, 0, NULL, &f));
    CHECK_INVALID(lethe_guard_forbid_new(NULL, fx.tok, ok, 1, ok, 1, NULL, &f));
    lethe_guard_forbid_cfg cfg;
    lethe_guard_forbid_defaults(&cfg);
    cfg.wordvec = LETHE_GUARD_WORDVEC_HASH, cfg.hash_dim = 1;
    CHECK_INVALID(lethe_guard_forbid_new(NULL, fx.tok, ok, 1, ok, 1, &cfg, &f));
    cfg.wordvec = (lethe_guard_wordvec)9;
    CHECK_INVALID(lethe_guard_forbid_new(fx.g, fx.tok, ok, 1, ok, 1, &cfg, &f));
    CHECK(f == NULL);
    CHECK_OK(lethe_guard_forbid_new(fx.g, fx.tok, ok, 1, ok, 1, NULL, &f));
    double sim;
    CHECK_INVALID(lethe_guard_forbid_similarity(f, "a b", 3, &sim));
    CHECK_INVALID(lethe_guard_forbid_similarity(f, "", 0, &sim));

    int32_t prompt[4] = {1, 2, 3, 4};
    lethe_guard_decode_opts o;
    lethe_guard_decode_result r;
    lethe_guard_decode_defaults(&o);
    CHECK_INVALID(lethe_guard_decode(NULL, fx.tok, f, prompt, 4, &o, &r));
    CHECK_INVALID(lethe_guard_decode(fx.g, NULL, f, prompt, 4, &o, &r));
    CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, prompt, 0, &o, &r));
    CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, prompt, NPOS + 1, &o, &r));
    CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, NULL, 4, &o, &r));
    prompt[2] = fx.V;
    CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, prompt, 4, &o, &r));
    prompt[2] = 3;
    struct {
        int beam, max_new;
        float delta;
        unsigned rules;
        int32_t eos;
    } bad[] = {{0, 8, 0.5f, 7, -1},      {8, -1, 0.5f, 7, -1}, {7, 8, 0.0f, 7, -1},
               {7, 8, NAN, 7, -1},       {7, 8, 0.5f, 8, -1},  {7, 8, 0.5f, 7, -2},
               {7, 8, 0.5f, 7, 1 << 20}, {5000, 8, 0.5f, 7, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lethe_guard_decode_defaults(&o);
        o.beam = bad[i].beam, o.max_new = bad[i].max_new, o.delta = bad[i].delta;
        o.rules = bad[i].rules, o.eos = bad[i].eos;
        CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, prompt, 4, &o, &r));
        CHECK(r.text == NULL && r.tokens == NULL);
    }
    /* a set built for another model (EMBED) or tokenizer */
    CHECK_INVALID(lethe_guard_decode(other.g, fx.tok, f, prompt, 4, NULL, &r));
    CHECK_INVALID(lethe_guard_decode(fx.g, other.tok, f, prompt, 4, NULL, &r));
    /* a logits hook that leaves nothing */
    const int32_t none[] = {-1};
    struct only nothing = {4, {none, none, none, none}};
    lethe_guard_decode_defaults(&o);
    o.logits_hook = only_hook, o.logits_ctx = &nothing;
    CHECK_INVALID(lethe_guard_decode(fx.g, fx.tok, f, prompt, 4, &o, &r));
    lethe_guard_decode_result_free(&r); /* a no-op after a failure */
    lethe_guard_decode_result_free(NULL);
    lethe_guard_forbid_free(NULL);
    lethe_guard_forbid_free(f);
    fixture_free(&fx);
    fixture_free(&other);
}
