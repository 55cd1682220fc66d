/* Text generation and scoring with GPT-2 models (lethe/gpt.h).
 *
 * Incremental decoding keeps a key/value cache: for every layer the keys and
 * values of the positions fed so far, so that feeding one more token costs
 * one row of each projection and one attention row per head instead of a
 * whole forward over the sequence. A cache holds one sequence; beam search
 * keeps one cache per beam. Batched decoding (lethe_gpt_kv_forward_batch,
 * lethe_gen_step) feeds one token to each of B caches in one forward, whose
 * products take B rows, so the weights are read once for B tokens.
 *
 * The cached forward uses the kernels of the full forward (gemm.h) in the
 * same order per row, but its attention sums run over keys one at a time, so
 * its logits agree with lethe_gpt_forward's to rounding (the unit tests
 * allow 1e-5 + 1e-4 |x|), not bit for bit. It is deterministic: the same
 * model and tokens give the same bits whatever the thread count.
 *
 * Generation (lethe_gpt_generate) chooses each new token by greedy argmax,
 * by sampling (temperature, top-k, top-p) with lethe's counter-based RNG (the
 * same seed gives the same tokens), or by beam search; it stops at
 * max_new tokens, at an end-of-text token, when the text generated so far
 * ends with a stop string, or at the model's context limit (n_positions:
 * prompt plus generated tokens never exceed it). Two hooks let callers step
 * in: one edits the logits before each choice (constrained decoding), one
 * edits the input embeddings of the prompt; a third edits the logits of a
 * teacher-forced forward, so that an evaluation scores what it generates. */
#ifndef LETHE_GPT_GENERATE_H
#define LETHE_GPT_GENERATE_H

#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* ---- hooks ------------------------------------------------------------- */

/* Called once per cached forward with the input embeddings emb (n, C) of the
 * tokens fed at positions pos0 .. pos0 + n - 1 (wte[token] + wpe[pos], before
 * block 0), which it may change in place: the caller picks the positions it
 * cares about. Generation feeds the whole prompt in one call (pos0 0, n the
 * prompt length) and calls the hook for that call only. */
typedef void (*lethe_gpt_embed_hook)(void *ctx, int pos0, int n, const int32_t *tokens,
                                     float *emb, int C);

/* Called before every choice with the next-token logits (V), which it may
 * change in place (set a logit to -INFINITY to forbid a token; raise one to
 * force it). seq[0..len) is the sequence so far, prompt included; beam is
 * the beam's index (0 outside beam search). At least one logit must stay
 * finite. */
typedef void (*lethe_gpt_logits_hook)(void *ctx, float *logits, int V, const int32_t *seq,
                                      int len, int beam);

/* Called once per teacher-forced forward (scoring) with its input tokens
 * (B, T) and its logits (B, T, V), which it may change in place: row (b, t)
 * is the next-token distribution after tokens[b, 0..t] (rows past a
 * sequence's end are padding, theirs to ignore). Anything but LETHE_OK (with
 * the detail set) stops the scoring. */
typedef lethe_status (*lethe_gpt_rows_hook)(void *ctx, float *logits, int V,
                                            const int32_t *tokens, int B, int T);

/* A logits processor for evaluation: one adjustment of the logits applied
 * alike to teacher-forced scoring (rows) and to generation (step, the
 * generation hook above). Either may be NULL (nothing is changed there).
 * status, when not NULL, reports a failure of step, which has no status of
 * its own: it is asked after each generation. check, when not NULL, is
 * asked once with the model whose logits are to be adjusted, before any
 * use: anything but LETHE_OK (with the detail set) means the processor does
 * not suit that model. A context is used by one call at a time. */
typedef struct lethe_gpt_logits_proc {
    lethe_gpt_rows_hook rows;
    lethe_gpt_logits_hook step;
    lethe_status (*status)(void *ctx);
    void *ctx;
    lethe_status (*check)(void *ctx, const lethe_gpt *g);
} lethe_gpt_logits_proc;

/* ---- the key/value cache ----------------------------------------------- */

typedef struct lethe_gpt_kv {
    const lethe_gpt *g; /* the model (not owned; must outlive the cache) */
    int cap;            /* positions it can hold: the model's n_positions */
    int len;            /* positions fed so far */
    float *k, *v;       /* (L, cap, C) each: keys and values, heads side by side */
    float *logits;      /* (V) the next-token logits after the last forward */
    struct lethe_gpt_kv_work *work; /* scratch of lethe_gpt_kv_forward, grown to the
                                       longest forward so far (owned; private) */
} lethe_gpt_kv;

/* An empty cache for g. NULL (detail set) when out of memory. */
lethe_gpt_kv *lethe_gpt_kv_new(const lethe_gpt *g);
void lethe_gpt_kv_free(lethe_gpt_kv *kv); /* NULL is a no-op */
/* Forget every position (len 0). */
void lethe_gpt_kv_reset(lethe_gpt_kv *kv);
/* Make dst hold what src holds (same model): its positions and logits. */
void lethe_gpt_kv_copy(lethe_gpt_kv *dst, const lethe_gpt_kv *src);

/* Feed tokens[0..n) at positions len .. len + n - 1, appending their keys and
 * values, and leave the logits of the last of them in kv->logits. hook may
 * be NULL. LETHE_ERR_INVALID (detail set) when n < 1, a token is outside the
 * vocabulary, or len + n would exceed n_positions (the cache is then
 * unchanged); LETHE_ERR_NOMEM. */
lethe_status lethe_gpt_kv_forward(lethe_gpt_kv *kv, const int32_t *tokens, int n,
                                  lethe_gpt_embed_hook hook, void *hook_ctx);

/* ---- generation -------------------------------------------------------- */

enum lethe_gen_stop {
    LETHE_GEN_MAX = 0,     /* max_new tokens were generated */
    LETHE_GEN_EOS = 1,     /* the end-of-text token was generated (it is kept) */
    LETHE_GEN_STOP = 2,    /* the text ends with a stop string (kept in the text) */
    LETHE_GEN_CONTEXT = 3, /* prompt plus generated tokens reached n_positions */
    LETHE_GEN_CANCEL = 4   /* the token callback asked to stop */
};
/* "max", "eos", "stop", "context", "cancel". */
const char *lethe_gen_stop_name(int reason);

typedef struct lethe_gen_opts {
    int max_new;        /* at most this many new tokens (>= 0) */
    float temperature;  /* 0: greedy (argmax, lowest id on ties); > 0: sample */
    int top_k;          /* sampling: keep the k most likely tokens (0: all) */
    float top_p;        /* sampling: keep the fewest most likely tokens whose
                           probabilities sum to >= top_p (0 or >= 1: all) */
    int beam;           /* > 1: beam search of this width (temperature, top-k
                           and top-p are then ignored) */
    int length_norm;    /* beam search: rank finished beams by mean log-prob per
                           new token (1) or by total log-prob (0) */
    uint64_t seed;      /* sampling: draws come from Philox (seed, stream 0),
                           one uniform per sampled token */
    int32_t eos;        /* stop after this token (-1: none) */
    const char *const *stop; /* stop strings (need tok) */
    int n_stop;
    const lethe_tokenizer_t *tok; /* decodes tokens for stop strings; may be NULL
                                     when n_stop is 0 */
    int no_cache;       /* 1: recompute the whole sequence with a full forward
                           (lethe_gpt_ctx_forward) at every step (a check on the
                           cache; no embed hook) */
    lethe_gpt_logits_hook logits_hook;
    void *logits_ctx;
    lethe_gpt_embed_hook embed_hook;
    void *embed_ctx;
    /* Called with each new token but the end-of-text one as soon as it is
     * final (a server streams it): greedy and sampling call it once per step, beam search once per
     * token of the chosen beam at the end. A nonzero return stops the
     * generation there (stop LETHE_GEN_CANCEL; the token is kept). */
    int (*on_token)(void *ctx, int32_t token, float logprob);
    void *token_ctx;
} lethe_gen_opts;

/* Defaults: max_new 32, temperature 0 (greedy), top_k 0, top_p 1, beam 1,
 * length_norm 0, seed 0, eos -1, no stop strings, the cache, no hooks. */
void lethe_gen_defaults(lethe_gen_opts *o);

typedef struct lethe_gen_result {
    int32_t *tokens;   /* (n) the new tokens, owned (free with lethe_gen_result_free) */
    float *logprobs;   /* (n) log-probability of each under the distribution the
                          choice was made from: log-softmax of the logits after the
                          logits hook, before temperature, top-k and top-p */
    int n;
    double score;      /* the sum of logprobs (beam search: the chosen beam's) */
    int stop;          /* enum lethe_gen_stop */
} lethe_gen_result;

/* Continue prompt[0..n_prompt) (n_prompt >= 1, every token in the
 * vocabulary, n_prompt <= n_positions) on model g, read-only: the caches
 * and activations belong to the call, so threads may generate from one
 * model at once (each hook context is the caller's). res is overwritten.
 * LETHE_ERR_INVALID (detail set) on a bad prompt or option (stop strings
 * without a tokenizer, an embed hook with no_cache), a logits hook that left
 * no finite logit, an id the tokenizer cannot decode; LETHE_ERR_NOMEM. */
lethe_status lethe_gpt_generate(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                                const lethe_gen_opts *o, lethe_gen_result *res);
void lethe_gen_result_free(lethe_gen_result *res);

/* ---- batched decoding ------------------------------------------------------
 *
 * A server with many requests in flight steps them together: each request is
 * a lethe_gen_seq_t (its cache, options and tokens so far), and one
 * lethe_gen_step chooses the next token of every unfinished sequence and
 * feeds them all in one forward. The layer norms, the projections, the MLP
 * and the head run on B rows at once; attention runs per sequence over its
 * own cache.
 *
 * A sequence stepped alone (B = 1) gives the bits of lethe_gpt_generate,
 * which is built on it. In a batch of B > 1, the products' sums may be
 * ordered otherwise than with one row (CBLAS picks its kernel by shape;
 * lethe's own AVX-512 kernel does not), so the logits may differ in their
 * last bits (the unit tests allow 1e-5 + 1e-4 |x| against the one-sequence
 * forward): a tie between two tokens, or a sampling draw that falls on a
 * probability boundary, could then go the other way. Apart from that a
 * sequence's tokens do not depend on the batch it is stepped in, nor on
 * the other sequences' options. */

/* The scratch of batched forwards and steps on model g (read-only; must
 * outlive it): activations of max_b rows (grown when a call takes more) and
 * the sampler's. One per thread: threads may step different batches on one
 * model at once, each with its own. NULL (detail set) when out of memory or
 * max_b < 1. Free with lethe_gen_batch_free (NULL is a no-op). */
typedef struct lethe_gen_batch lethe_gen_batch_t;
lethe_gen_batch_t *lethe_gen_batch_new(const lethe_gpt *g, int max_b);
void lethe_gen_batch_free(lethe_gen_batch_t *w);

/* Feed tokens[b] to cache kv[b] at its own position kv[b]->len, for every
 * b < B, in one forward through w: each cache's keys and values are
 * appended and its next-token logits left in kv[b]->logits (within the
 * tolerance above of lethe_gpt_kv_forward's one token at a time).
 * LETHE_ERR_INVALID (detail set; no cache changed) when B < 1, a cache is
 * full, belongs to another model than w's, or appears twice, or a token is
 * outside the vocabulary; LETHE_ERR_NOMEM (nothing changed) when w cannot
 * grow to B rows. */
lethe_status lethe_gpt_kv_forward_batch(lethe_gen_batch_t *w, lethe_gpt_kv *const *kv,
                                        const int32_t *tokens, int B);

/* One sequence being generated with greedy decoding or sampling: its cache,
 * a copy of its options, its tokens so far. */
typedef struct lethe_gen_seq lethe_gen_seq_t;

/* Start continuing prompt[0..n_prompt) on g: the arguments are checked as
 * lethe_gpt_generate checks them (beam > 1 is refused: beam search runs in
 * lethe_gpt_generate only), and the prompt is fed to the sequence's cache
 * with o's embed hook (no_cache: the sequence runs a full forward of its
 * own at every step instead, outside the batch). A sequence that can take
 * no token (max_new 0, or a prompt as long as n_positions) is done at once
 * and feeds nothing. o is copied; what its pointers reach (stop strings,
 * tokenizer, hook contexts) must outlive the sequence. On success *out is a
 * new sequence (free with lethe_gen_seq_free). LETHE_ERR_INVALID,
 * LETHE_ERR_NOMEM (detail set; *out NULL). */
lethe_status lethe_gen_seq_new(const lethe_gpt *g, const int32_t *prompt, int n_prompt,
                               const lethe_gen_opts *o, lethe_gen_seq_t **out);

/* Nonzero once the sequence is finished (a stop reason, or a failure that
 * lethe_gen_seq_result reports). */
int lethe_gen_seq_done(const lethe_gen_seq_t *s);

/* One step of every unfinished sequence in seqs[0..B) (finished ones are
 * skipped, so a server keeps stepping the same array until all are done, or
 * swaps finished ones out between steps): choose its next token from its
 * current logits as lethe_gpt_generate does (the logits hook with beam 0,
 * greedy argmax or the sample, the logprob; then end-of-text, on_token,
 * stop strings, max_new, the context limit), then feed the chosen tokens of
 * those still unfinished in one lethe_gpt_kv_forward_batch through w. The
 * callbacks run on the calling thread, sequence by sequence in array order.
 * A sequence is stepped by one thread, in one batch, at a time. A failure
 * of one sequence's own (a logits hook that left no finite logit, an id its
 * tokenizer cannot decode, memory for a no_cache sequence's forward)
 * finishes that sequence alone, for lethe_gen_seq_result to report; the
 * others go on. LETHE_ERR_INVALID
 * (detail set; nothing done) when B < 0, a sequence is NULL, appears twice
 * or belongs to another model than w's; LETHE_ERR_NOMEM (nothing done) when
 * w cannot grow to B rows. */
lethe_status lethe_gen_step(lethe_gen_batch_t *w, lethe_gen_seq_t *const *seqs, int B);

/* Move a finished sequence's result into res (overwritten): its tokens,
 * logprobs, score and stop reason, as lethe_gpt_generate gives them (the
 * caller frees them with lethe_gen_result_free). The sequence keeps nothing:
 * a second call gives an empty result. The status is the sequence's failure
 * if it had one (its detail set again; res then empty);
 * LETHE_ERR_INVALID when the sequence is not done. */
lethe_status lethe_gen_seq_result(lethe_gen_seq_t *s, lethe_gen_result *res);
void lethe_gen_seq_free(lethe_gen_seq_t *s); /* NULL is a no-op */

/* ---- scoring -------------------------------------------------------------- */

/* The mean and variance of log p under the distribution p = softmax(logits)
 * of one position (V logits), in double:
 *   mu = sum_v p_v log p_v,  sigma2 = sum_v p_v (log p_v)^2 - mu^2
 * (clamped at 0). Min-K%++ normalises a token's log-probability by them. */
void lethe_gpt_logit_moments(const float *logits, int V, double *mu, double *sigma2);

LETHE_API_END
#endif
