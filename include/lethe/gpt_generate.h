/* Text generation and scoring with GPT-2 models (lethe/gpt.h).
 *
 * Incremental decoding keeps a key/value cache: for every layer the keys and
 * values of the positions fed so far, so that feeding one more token costs
 * one row of each projection and one attention row per head instead of a
 * whole forward over the sequence. The cache holds one sequence (batch 1);
 * beam search keeps one cache per beam.
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
    /* scratch, grown to the longest forward so far */
    int cap_rows;
    float *x, *ln, *qkv, *atty, *fch, *fchg, *mean, *rstd, *att;
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

/* ---- scoring -------------------------------------------------------------- */

/* The mean and variance of log p under the distribution p = softmax(logits)
 * of one position (V logits), in double:
 *   mu = sum_v p_v log p_v,  sigma2 = sum_v p_v (log p_v)^2 - mu^2
 * (clamped at 0). Min-K%++ normalises a token's log-probability by them. */
void lethe_gpt_logit_moments(const float *logits, int V, double *mu, double *sigma2);

LETHE_API_END
#endif
