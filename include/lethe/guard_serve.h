/* Serving a model behind a guard: GUARD's whole path for one prompt
 * (research/inference_time.md §2, §10.1), as a server or an evaluation
 * calls it.
 *
 * For each prompt:
 *   1. Flag. The prompt is flagged when the guard's classifier scores it
 *      above its threshold, or when the automaton finds a target's name,
 *      alias or forbidden n-gram in it (retain text never holds a forbidden
 *      n-gram, so this adds no false positive on it). A guard without a
 *      classifier flags on matches alone.
 *   2. An unflagged prompt is decoded normally: beam search of width
 *      plain_beam (1: greedy, exactly lethe_gpt_generate's tokens).
 *   3. A flagged prompt: the targets are those the automaton matched plus
 *      those of the k forget answers retrieved for it (lethe_guard_retrieve).
 *      Their forbidden n-grams, less those the prompt itself contains (the
 *      user said them; repeating them leaks nothing, and the retain-only
 *      oracle repeats a question's words as readily), become the forbidden
 *      set (lethe_guard_forbid_new: token trie, automaton, soft match on
 *      their words), and lethe_guard_decode runs under it: beam search of
 *      width 7 by default, a refusal when every beam dies. With answer_words,
 *      the words of the best retrieved answers are forbidden too (less the
 *      prompt's and stopwords), as GUARD forbids the retrieved answer's
 *      n-grams: this reaches the facts a retain author shares (a city, a
 *      language), which the distinctive n-grams cannot.
 *
 * The model must be the guard's: lethe_guard_serve_new compares the model's
 * hash (lethe_guard_hash_gpt) with the guard's and refuses another model's
 * guard. Threads: any number may call lethe_guard_serve_generate on one
 * session at once; the guard must not change meanwhile (a server holds a
 * reader-writer lock: generation reads, add and remove write). */
#ifndef LETHE_GUARD_SERVE_H
#define LETHE_GUARD_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/guard_decode.h"
#include "lethe/guard_eco.h"
#include "lethe/guard_file.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_GUARD_SERVE_MAX_TARGETS 16 /* targets whose n-grams one prompt forbids */

/* How a flagged prompt is answered. */
typedef enum lethe_guard_mode {
    LETHE_GUARD_MODE_GUARD = 1, /* GUARD's constrained beam search (above) */
    LETHE_GUARD_MODE_ECO = 2    /* ECO: decode as an unflagged prompt, with the input
                                   embeddings of the prompt's entity tokens corrupted
                                   (lethe/guard_eco.h); nothing is forbidden */
} lethe_guard_mode;

/* "guard", "eco"; LETHE_ERR_UNSUPPORTED for "alu" (not available yet),
 * LETHE_ERR_INVALID for anything else. */
lethe_status lethe_guard_mode_parse(const char *s, lethe_guard_mode *m);

typedef struct lethe_guard_serve_cfg {
    lethe_guard_mode mode;          /* GUARD (default) or ECO */
    lethe_eco_cfg eco;              /* ECO's corruption */
    size_t k;                       /* forget answers retrieved for a flagged prompt (3) */
    size_t answer_words;            /* of them, the first this many also forbid each of
                                       their words (3 bytes or more, not a stopword, not
                                       in the prompt): GUARD's own rule (1) */
    int plain_beam;                 /* unflagged prompts: beam width (1: greedy) */
    lethe_guard_forbid_cfg forbid;  /* soft-match vectors (EMBED) */
    lethe_guard_decode_opts decode; /* flagged prompts (beam 7, delta 0.5, all rules) */
} lethe_guard_serve_cfg;

void lethe_guard_serve_defaults(lethe_guard_serve_cfg *c);

typedef struct lethe_guard_serve lethe_guard_serve_t;

/* A session serving model g (tokenizer tok) behind guard gd; all three are
 * borrowed and must outlive it. cfg may be NULL (defaults). LETHE_ERR_FORMAT
 * when the guard records another model's hash (both named) or holds a
 * classifier that does not fit this model; LETHE_ERR_INVALID for a missing
 * argument; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_serve_new(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                   lethe_guard_t *gd, const lethe_guard_serve_cfg *cfg,
                                   lethe_guard_serve_t **out);
void lethe_guard_serve_free(lethe_guard_serve_t *s); /* NULL is a no-op */

/* Load the guard file at path and open a session on it for g: mode is
 * "guard" (or NULL) or "eco" (lethe_guard_mode_parse), eco ECO's
 * corruption (NULL: lethe_eco_defaults), the rest the defaults. On failure
 * nothing is left open and the detail names the file. */
lethe_status lethe_guard_serve_open(const char *path, const lethe_gpt *g,
                                    const lethe_tokenizer_t *tok, const char *mode,
                                    const lethe_eco_cfg *eco, lethe_guard_t **gd,
                                    lethe_guard_serve_t **gs);

typedef struct lethe_guard_serve_result {
    int flagged;       /* the prompt took the guarded path */
    double score;      /* the classifier's score (NaN without a classifier) */
    size_t matches;    /* automaton matches in the prompt */
    uint32_t targets[LETHE_GUARD_SERVE_MAX_TARGETS]; /* targets forbidden, ascending */
    size_t n_targets;
    size_t forbidden;  /* n-grams in the forbidden set */
    size_t corrupted;  /* ECO: prompt positions corrupted */
    lethe_guard_decode_result out; /* the answer (out.refused: a refusal) */
} lethe_guard_serve_result;

/* Answer prompt[0..len) with at most max_new new tokens, stopping at eos
 * (-1: none). res is overwritten; free it with lethe_guard_serve_result_free
 * even on failure. LETHE_ERR_INVALID for an empty prompt or one longer than
 * the context, and as lethe_guard_decode; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_serve_generate(const lethe_guard_serve_t *s, const char *prompt,
                                        size_t len, int max_new, int32_t eos,
                                        lethe_guard_serve_result *res);
/* The same with the decoding started from the caller's ids[0..n) (say, an
 * end-of-text token and the prompt's last tokens, as MUSE's evaluation
 * builds them), while the detector (automaton, retrieval, classifier) reads
 * prompt[0..len). LETHE_ERR_INVALID for n outside 1..context or an id
 * outside the vocabulary, and as above. */
lethe_status lethe_guard_serve_generate_ids(const lethe_guard_serve_t *s, const char *prompt,
                                            size_t len, const int32_t *ids, size_t n,
                                            int max_new, int32_t eos,
                                            lethe_guard_serve_result *res);
void lethe_guard_serve_result_free(lethe_guard_serve_result *r);

/* Step 1 alone: whether prompt[0..len) takes the guarded path. Sets res's
 * flagged, score and matches (the rest zero; free it as above). A server
 * decodes an unflagged prompt itself, batched with others and streamed:
 * with the session's plain_beam at 1, lethe_guard_serve_generate would
 * decode it greedily too, exactly as lethe_gpt_generate. Errors as
 * lethe_guard_serve_generate's. */
lethe_status lethe_guard_serve_flag(const lethe_guard_serve_t *s, const char *prompt, size_t len,
                                    lethe_guard_serve_result *res);
/* The session's settings. */
const lethe_guard_serve_cfg *lethe_guard_serve_config(const lethe_guard_serve_t *s);

LETHE_API_END
#endif
