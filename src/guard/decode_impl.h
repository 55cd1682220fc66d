/* The constrained decoder's pieces (internal to src/guard): the forbidden
 * set and its word vectors (decode_forbid.c), the per-token checks a beam
 * runs (decode_check.c), and the beam search over them (decode.c). */
#ifndef LETHE_GUARD_DECODE_IMPL_H
#define LETHE_GUARD_DECODE_IMPL_H

#include "lethe/guard_decode.h"

struct lethe_guard_forbid {
    const lethe_gpt *g; /* EMBED: the model whose wte gives vectors; NULL for HASH */
    const lethe_tokenizer_t *tok;
    lethe_guard_wordvec kind;
    int dim;            /* vector size: n_embd or hash buckets */
    lethe_guard_trie_t *trie;
    lethe_guard_ac_t *ac; /* built before the set is handed out: decoding only reads */
    size_t n_ngrams, longest;
    size_t n_words, n_skipped;
    /* EMBED: (n_words, dim) unit rows. HASH: word i's non-zero buckets are
     * col[off[i] .. off[i + 1]) with values val[...], unit norm. */
    float *vec;
    uint32_t *off, *col;
    float *val;
};

/* Per-call scratch of the soft match (one per decode; not shared). */
typedef struct guard_soft {
    const lethe_guard_forbid_t *f;
    float *q;          /* (dim): EMBED the query vector; HASH dense counts, kept 0 between words */
    uint32_t *touched; /* HASH: buckets set in q */
    unsigned char buf[LETHE_GUARD_WORD_MAX + 2];
} guard_soft;

lethe_status guard_soft_init(guard_soft *s, const lethe_guard_forbid_t *f);
void guard_soft_free(guard_soft *s);

/* The largest similarity of word[0..len) (word bytes only) to f's words, or
 * -INFINITY when the word is not soft-matched. */
lethe_status guard_soft_sim(guard_soft *s, const unsigned char *word, size_t len, double *sim);

/* ---- the checks (decode_check.c) ----------------------------------------------- */

/* What one beam carries for the checks, so that judging one more token costs
 * O(1) in the text so far: the trie cursors, a copy of the automaton's
 * streaming state over the generated text, and the word in progress. */
typedef struct guard_track {
    lethe_guard_stream ac;
    uint32_t *cur;  /* (cur_cap) trie cursors */
    size_t n_cur;
    unsigned char word[LETHE_GUARD_WORD_MAX]; /* the word in progress, unless too long */
    size_t word_len;
    int word_long;  /* the word in progress passed LETHE_GUARD_WORD_MAX bytes */
    int sim_known;  /* sim holds the word in progress's similarity */
    double sim;
} guard_track;

/* The checks of one decode: which run, and their scratch. */
typedef struct guard_checker {
    const lethe_guard_forbid_t *f;
    const lethe_tokenizer_t *tok;
    unsigned rules;    /* the checks asked for that have something to check */
    int32_t eos;       /* ends the text and has no bytes; -1 for none */
    double delta;
    size_t cur_cap;    /* cursors a track can hold: the longest sequence + 1 */
    uint32_t *cur_tmp; /* (cur_cap) */
    guard_soft soft;
    unsigned char wtmp[LETHE_GUARD_WORD_MAX];
} guard_checker;

/* f may be NULL (nothing to check). */
lethe_status guard_checker_init(guard_checker *c, const lethe_guard_forbid_t *f,
                                const lethe_tokenizer_t *tok, unsigned rules, int32_t eos,
                                double delta);
void guard_checker_free(guard_checker *c);

/* Give t its cursor array (c->cur_cap), or free it. */
lethe_status guard_track_alloc(const guard_checker *c, guard_track *t);
void guard_track_free(guard_track *t);
/* The track of an empty text. */
lethe_status guard_track_start(const guard_checker *c, guard_track *t);
/* dst becomes src (both allocated by the same checker). */
void guard_track_copy(guard_track *dst, const guard_track *src);

/* Which rule prunes token `token` after the text t tracks: 0 for none (with
 * *penalty its soft-match penalty, >= 0), else the first of TRIE, AC, SOFT
 * that does. `final`: the text ends after the token whatever it is. */
lethe_status guard_judge(guard_checker *c, guard_track *t, int32_t token, int final,
                         unsigned *rule, double *penalty);
/* Move t on by a token that was chosen. */
lethe_status guard_track_push(guard_checker *c, guard_track *t, int32_t token);

#endif
