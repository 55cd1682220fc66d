/* GUARD's constrained decoder: beam search that never emits what a flagged
 * prompt must not be answered with (research/inference_time.md §2, §10.1).
 *
 * The forbidden set of one flagged prompt (lethe_guard_forbid_new) is built
 * from word n-grams and words the caller chose (from the retrieved forget
 * answers) and holds three checks:
 *
 *   - hard match: each n-gram tokenised as the tokenizer produces it inside
 *     text (" " + n-gram) and at the start of a text (the n-gram alone), in
 *     a token trie (lethe_guard_trie). A candidate token that completes any
 *     stored sequence is pruned (GUARD's beta = 1.0: the whole sequence must
 *     complete, and any completion prunes). Case-sensitive, as tokens are.
 *   - text match: the same n-grams in an Aho-Corasick automaton over
 *     normalised text (lethe_guard_normalize), a backstop that does not
 *     depend on how the text was tokenised: "cat" spelt "c", "at" is still
 *     caught. Each beam carries a copy of the streaming state; a match is
 *     known once the byte after it is a boundary, so the candidate that
 *     closes the forbidden text (a separator, the end of text, or a final
 *     token) is the one pruned.
 *   - soft match: a unit vector per forbidden word, of one of two kinds:
 *       EMBED  the mean of the model's token-embedding rows (wte) of the
 *              word's tokens, encoded with a leading space, as written (so
 *              case matters), scaled to unit length;
 *       HASH   character 3-, 4- and 5-grams of the lowercased word with a
 *              space added at each end, hashed (64-bit FNV-1a over the
 *              tag 'C' and the bytes, then MurmurHash3's finaliser) into
 *              `hash_dim` signed buckets (sign = the top bit), counted, and
 *              scaled to unit L2 norm, as the classifier's HASH features
 *              (lethe/guard_classifier.h) restricted to character n-grams.
 *     When a word of the generated text completes (the next token starts
 *     with a separator, or the text ends), its cosine similarity to every
 *     forbidden word is computed: a maximum >= delta prunes the candidate,
 *     otherwise the candidate's score is lowered by that maximum (clamped at
 *     0, so a dissimilar word is never rewarded): score = log p - sim, as
 *     GUARD. A word is a maximal run of word bytes as the normaliser defines
 *     them (ASCII letters and digits, bytes >= 0x80), so "New-York" is two.
 *     Words shorter than 3 characters (UTF-8 code points), stopwords (the
 *     built-in list below, lethe_guard_stopword) and words longer than
 *     LETHE_GUARD_WORD_MAX bytes are never soft-matched, neither as
 *     forbidden words nor in the output: otherwise "the" would die.
 *
 * Decoding (lethe_guard_decode) is lethe_gpt_generate's beam search with
 * those checks between choosing candidates and ranking them: each alive
 * beam offers its 2W most likely tokens (logit order, lower id first on
 * ties; only finite logits), the checks prune some and lower the scores of
 * others, and the W best by summed score (log-probabilities minus
 * penalties; ties by beam, then token) go on. A beam ends at max_new
 * tokens, at the end-of-text token (kept), or at the model's context limit;
 * the best finished beam (by total score, or by score per new token with
 * length_norm) is the answer. With no forbidden set, the tokens are
 * exactly lethe_gpt_generate's with the same beam width (width 1: greedy),
 * logits hook included. Only the generated text is checked, not the prompt.
 *
 * When no beam finishes (every candidate of every alive beam was pruned at
 * some step before any beam ended), the result is a REFUSAL: the refused
 * flag and the refusal text, no tokens. There is no greedy fallback (it
 * leaks). A beam that finished before the others died is a valid answer.
 *
 * Threads: a forbidden set is read-only once built and borrows its model
 * and tokenizer, which must outlive it. Each decode keeps its caches (one
 * key/value cache per beam) and scratch to itself, so any number of threads
 * may decode from one model with one forbidden set at once.
 *
 * Errors set a one-line detail (lethe_error_detail). */
#ifndef LETHE_GUARD_DECODE_H
#define LETHE_GUARD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_index.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_GUARD_WORD_MAX 64 /* longest soft-matched word, in bytes */
#define LETHE_GUARD_BEAM 7      /* GUARD's beam width */
#define LETHE_GUARD_DELTA 0.5f  /* GUARD's soft-match threshold */
#define LETHE_GUARD_REFUSAL "I'm sorry, I can't share that."

/* ---- the forbidden set ------------------------------------------------------ */

typedef enum lethe_guard_wordvec {
    LETHE_GUARD_WORDVEC_EMBED = 1, /* mean wte rows: needs the model */
    LETHE_GUARD_WORDVEC_HASH = 2   /* hashed character n-grams: no model */
} lethe_guard_wordvec;

typedef struct lethe_guard_forbid_cfg {
    lethe_guard_wordvec wordvec; /* default EMBED */
    int hash_dim;                /* HASH buckets, 2 .. LETHE_GUARD_MAX_DIM (default 2^14) */
} lethe_guard_forbid_cfg;

void lethe_guard_forbid_defaults(lethe_guard_forbid_cfg *cfg);

typedef struct lethe_guard_forbid lethe_guard_forbid_t;

/* Build the forbidden set of ngrams[0..n_ngrams) (NUL-terminated; leading
 * and trailing ASCII spaces are dropped; n-gram i gets id i in the trie and
 * the automaton) and words[0..n_words) (each split into its words; short
 * ones and stopwords are skipped, see above). Either list may be empty (its
 * pointer NULL). tok is required (it tokenises the n-grams, and decoding
 * reads candidate tokens' bytes); g is required for EMBED vectors and may
 * be NULL for HASH. Both are borrowed. cfg may be NULL (defaults). On
 * success *out is new (free with lethe_guard_forbid_free).
 * LETHE_ERR_INVALID (detail names the entry) for an n-gram or word that
 * normalises to nothing, a missing model or tokenizer, a bad cfg;
 * LETHE_ERR_UNSUPPORTED when the tokenizer cannot encode a byte of an
 * n-gram; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_forbid_new(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                    const char *const *ngrams, size_t n_ngrams,
                                    const char *const *words, size_t n_words,
                                    const lethe_guard_forbid_cfg *cfg,
                                    lethe_guard_forbid_t **out);
void lethe_guard_forbid_free(lethe_guard_forbid_t *f); /* NULL is a no-op */

typedef struct lethe_guard_forbid_info {
    size_t ngrams;        /* n-grams given */
    size_t sequences;     /* (token sequence, n-gram) pairs in the trie */
    size_t longest;       /* tokens in the longest sequence */
    size_t words;         /* forbidden words with a vector (soft-matched) */
    size_t words_skipped; /* words too short, stopwords or too long */
    lethe_guard_wordvec wordvec;
    int dim;              /* vector size: n_embd (EMBED) or hash_dim (HASH) */
} lethe_guard_forbid_info;

void lethe_guard_forbid_info_get(const lethe_guard_forbid_t *f, lethe_guard_forbid_info *info);

/* The index inside (owned by f; read-only: changing it while f is used
 * breaks the thread rules of lethe/guard_index.h). */
const lethe_guard_trie_t *lethe_guard_forbid_trie(const lethe_guard_forbid_t *f);
const lethe_guard_ac_t *lethe_guard_forbid_ac(const lethe_guard_forbid_t *f);

/* The soft-match similarity of one word word[0..len) (word bytes only, as
 * it appears in text): the largest cosine similarity to a forbidden word,
 * into *sim, or -INFINITY when the word is not soft-matched (too short, a
 * stopword, too long, no forbidden words). LETHE_ERR_INVALID for an empty
 * word or one holding a separator byte; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_forbid_similarity(const lethe_guard_forbid_t *f, const void *word,
                                           size_t len, double *sim);

/* 1 when word[0..len) is in the built-in stopword list (ASCII case is
 * ignored), else 0. The list: common English function words of 3 letters or
 * more (articles, pronouns, auxiliaries, prepositions, conjunctions). */
int lethe_guard_stopword(const void *word, size_t len);

/* ---- decoding ----------------------------------------------------------------- */

/* Which checks run (all by default); the others are for ablations. */
enum lethe_guard_rule {
    LETHE_GUARD_RULE_TRIE = 1,
    LETHE_GUARD_RULE_AC = 2,
    LETHE_GUARD_RULE_SOFT = 4,
    LETHE_GUARD_RULE_ALL = 7
};

typedef struct lethe_guard_decode_opts {
    int beam;            /* W >= 1; 2W candidates per beam (default 7) */
    int max_new;         /* at most this many new tokens, >= 0 (default 32) */
    int32_t eos;         /* end-of-text token, or -1 for none (default -1) */
    int length_norm;     /* rank finished beams by score per new token (default 0) */
    float delta;         /* prune at similarity >= delta, > 0 (default 0.5; above 1:
                            never prune, penalties only) */
    unsigned rules;      /* enum lethe_guard_rule bits (default ALL) */
    const char *refusal; /* the refusal text (default LETHE_GUARD_REFUSAL) */
    lethe_gpt_logits_hook logits_hook; /* as lethe_gen_opts: edits each beam's logits */
    void *logits_ctx;
} lethe_guard_decode_opts;

void lethe_guard_decode_defaults(lethe_guard_decode_opts *o);

typedef struct lethe_guard_decode_result {
    int refused;        /* 1: no beam survived; text is the refusal, no tokens */
    int32_t *tokens;    /* (n) the new tokens, owned; NULL when n is 0 */
    float *logprobs;    /* (n) log-softmax of each, after the logits hook */
    int n;
    char *text;         /* owned, NUL-terminated: the tokens decoded (a final
                           end-of-text token left out), or the refusal */
    size_t text_len;
    double score;       /* the chosen beam's sum of logprobs minus penalties */
    double logprob;     /* its sum of logprobs */
    int stop;           /* enum lethe_gen_stop (LETHE_GEN_MAX when refused) */
    /* counts over the whole search */
    int steps;          /* search steps run (tokens chosen per beam) */
    long candidates;    /* candidates examined */
    long pruned_trie;   /* pruned by the trie (checked first) */
    long pruned_ac;     /* by the automaton (checked second) */
    long pruned_soft;   /* by the soft match (checked last) */
    long penalized;     /* kept with a positive soft-match penalty */
} lethe_guard_decode_result;

/* Continue prompt[0..n_prompt) (1 <= n_prompt <= n_positions, each token in
 * [0, V)) on g, read-only, under forbidden set f (NULL: none, an ordinary
 * beam search). tok decodes tokens and must be f's tokenizer; with EMBED
 * vectors g must be f's model. o may be NULL (defaults). res is
 * overwritten; free it with lethe_guard_decode_result_free even on
 * failure. A refusal is LETHE_OK. LETHE_ERR_INVALID (detail set) for a bad
 * argument, a logits hook that left no finite logit, or a candidate token
 * the tokenizer has no bytes for; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_decode(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                const lethe_guard_forbid_t *f, const int32_t *prompt,
                                int n_prompt, const lethe_guard_decode_opts *o,
                                lethe_guard_decode_result *res);
void lethe_guard_decode_result_free(lethe_guard_decode_result *res); /* NULL is a no-op */

LETHE_API_END
#endif
