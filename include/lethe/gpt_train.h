/* Training GPT language models on token streams.
 *
 * Documents are tokenized and concatenated, each followed by the end-of-text
 * token, into one stream per split. Training reads windows of T + 1 tokens:
 * window k holds stream[k T .. k T + T] (inputs the first T, targets the last
 * T), so consecutive windows share one token and cover the stream once. Each
 * epoch visits the windows in the order of the keyed hash
 * lethe_rng_hash(seed, stream 0x100000000 + epoch, k) (ties by k); epochs
 * follow one another without a break, so a micro-batch may span two epochs.
 * With cfg->shift, epoch e's windows start at token lethe_gpt_epoch_shift
 * (a keyed draw in [0, T)) instead of 0, so a passage is seen at other
 * positions of the window from one epoch to the next and a model with
 * learned absolute positions learns the text, not the text at one offset;
 * the tokens before the shift and the tail are left out of that epoch.
 *
 * One optimizer step: accum micro-batches of batch windows each, forward and
 * backward with the loss scaled by 1 / accum (the step's loss is the mean of
 * the micro-batches' mean token losses); the gradient's global L2 norm is
 * clipped to `clip`; AdamW (lethe_optim, betas (beta1, beta2), eps) with
 * decoupled weight decay on the 2-D tensors only (the embeddings and the
 * weight matrices; biases and LayerNorm parameters are not decayed), as GPT-2
 * and nanoGPT train; the learning rate rises linearly over `warmup` steps,
 * then follows a cosine from lr to min_lr (lethe_sched, LETHE_SCHED_COSINE).
 *
 * With a LoRA adapter (cfg->lora, lethe/lora.h) only the adapter is
 * trained: the base weights are frozen, the model computes with
 * W0 + s A B (lethe_lora_apply before the first step and after every
 * update), each step's model gradient is turned into the adapter's
 * (lethe_lora_backward) and then cleared, clipping is over the adapter's
 * gradient norm, and AdamW with decoupled weight decay runs over the
 * adapter's arena (every A and B is 2-D, so all of it is decayed). The
 * model is left in the applied state: it holds W0 + s A B at the end
 * (lethe_lora_unmerge restores W0 bit for bit).
 *
 * Every eval_every steps and after the last one, the mean token loss over the
 * first eval_windows windows of the validation stream is measured and logged.
 * The same model, streams and configuration give the same bits. */
#ifndef LETHE_GPT_TRAIN_H
#define LETHE_GPT_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt.h"
#include "lethe/lora.h"
#include "lethe/optim.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_gpt_train_cfg {
    int batch;          /* windows per micro-batch (B) */
    int seq;            /* tokens per window (T), <= n_positions */
    int accum;          /* micro-batches per optimizer step (K) */
    long steps;         /* optimizer steps */
    float lr, min_lr;   /* peak and final learning rates */
    long warmup;        /* linear warm-up steps */
    float weight_decay; /* on 2-D tensors */
    float beta1, beta2, eps;
    float clip;         /* max global gradient norm; 0: no clipping */
    long eval_every;    /* steps between validations; 0: only after the last */
    int eval_windows;   /* validation windows measured (at most) */
    uint64_t seed;      /* window order */
    int shift;          /* 1: shift each epoch's windows by a keyed draw (above) */
    int quiet;          /* no progress output */
    lethe_lora *lora;   /* train this adapter of the model only; NULL: every
                           parameter (full fine-tuning). Not owned. */
} lethe_gpt_train_cfg;

/* Defaults: batch 8, seq 256, accum 1, 100 steps, lr 1e-3, min_lr 1e-4,
 * warmup 10, weight decay 0.1, betas (0.9, 0.95), eps 1e-8, clip 1.0,
 * eval_every 0, eval_windows 32, seed 0, no LoRA adapter. */
void lethe_gpt_train_defaults(lethe_gpt_train_cfg *cfg);

typedef struct lethe_gpt_train_result {
    long steps;
    long tokens;         /* training tokens consumed (steps * accum * batch * seq) */
    double first_loss;   /* the first step's loss */
    double last_loss;    /* the last step's loss */
    double val_loss;     /* the last validation loss; NAN without validation */
    double seconds;
} lethe_gpt_train_result;

/* Windows of T + 1 tokens in a stream of n tokens: (n - 1) / T (0 when n < T + 1). */
long lethe_gpt_windows(long n_tokens, int T);

/* The shift of epoch `epoch`'s windows over a stream of n tokens:
 * lethe_rng_hash(seed, stream 0x200000000 + epoch, 0) mod min(T, n - T),
 * 0 when that is 1 or less, so the shifted stream still holds a window. */
long lethe_gpt_epoch_shift(long n_tokens, int T, uint64_t seed, long epoch);

/* The visiting order of epoch `epoch` over n windows: out receives a
 * permutation of 0..n-1. LETHE_ERR_NOMEM. */
lethe_status lethe_gpt_window_order(long n, uint64_t seed, long epoch, long *out);

/* The learning rate of step t (0-based) under cfg. */
float lethe_gpt_train_lr(const lethe_gpt_train_cfg *cfg, long t);

/* Tokenize texts[i] (lens[i] bytes) for i in idx[0..n) and concatenate them,
 * each followed by `eot`. *out (free with free(); NULL when *n_out is 0) holds
 * *n_out ids. Documents are encoded in parallel; the result does not depend
 * on the thread count. */
lethe_status lethe_gpt_encode_docs(const lethe_tokenizer_t *tok, const char *const *texts,
                                   const size_t *lens, const size_t *idx, size_t n, int32_t eot,
                                   int32_t **out, long *n_out);

/* The id of the special token spelled "<|endoftext|>", or -1. */
long lethe_gpt_eot(const lethe_tokenizer_t *tok);

/* Train g in place on the stream train[0..n_train) (val may be NULL / 0: no
 * validation). Writes one JSON line per step
 *   {"step":S,"lr":X,"loss":X,"grad_norm":X}
 * and per validation {"step":S,"val_loss":X} to log when not NULL; the
 * gradient norm is the one before clipping. Every token must be below the
 * model's vocab_size. LETHE_ERR_INVALID (a stream shorter than seq + 1, a bad
 * setting, a token out of range, a LoRA adapter made for another model), LETHE_ERR_FAILED (the loss diverged),
 * LETHE_ERR_NOMEM. */
lethe_status lethe_gpt_train(lethe_gpt *g, const int32_t *train, long n_train,
                             const int32_t *val, long n_val, const lethe_gpt_train_cfg *cfg,
                             FILE *log, lethe_gpt_train_result *res);

/* ---- a training run (src/train/gpt_run.c) -------------------------------- */

/* A whole GPT training or fine-tuning run, as `lethe train --model gpt` and a
 * server start it: load the corpus, hold out a share of its documents for
 * validation (a keyed hash of the document id under a fixed seed, so the
 * split belongs to the corpus), take the tokenizer (the init run's, a given
 * one, or a byte-level BPE trained on the training documents to the model's
 * vocabulary), train, and write the run directory. Settings left at their
 * "not given" value (lethe_gpt_run_defaults) take the defaults below. */
typedef struct lethe_gpt_run_cfg {
    const char *data;      /* the corpus (lethe_corpus_load: moby, sotu, files, a list) */
    const char *out;       /* the run directory to write */
    int force;             /* 1: write into an existing out, replacing its files */
    const char *preset;    /* tiny, small, gpt2; needed without init; with it, it must
                              match the checkpoint (NULL: the one it matches, or custom) */
    const char *init;      /* start from this run's model and tokenizer (a lethe run or a
                              Hugging Face GPT-2 directory); NULL: from scratch */
    const char *tokenizer; /* a tokenizer.json to use (not with init); NULL: train one */
    int hf;                /* 1: write Hugging Face's layout instead of lethe's */
    long vocab;            /* the vocabulary size (not with init); <= 0: the preset's */
    long steps;            /* optimizer steps; <= 0: from epochs */
    long epochs;           /* passes over the training windows; <= 0: 1 */
    int batch, seq, accum; /* <= 0: 8, min(positions, 256), 1 */
    float lr;              /* NAN: 1e-3 for tiny, 6e-4 otherwise */
    float min_lr;          /* NAN: lr / 10 */
    float weight_decay, clip; /* NAN: lethe_gpt_train_defaults' */
    long warmup;           /* < 0: min(100, steps / 10) */
    long eval_every;       /* < 0: steps / 10 (0 below 10 steps) */
    int eval_windows;      /* <= 0: 32 */
    double val;            /* the share of documents held out; NAN: 0.05 */
    uint64_t seed;         /* initialisation, adapter, window order */
    int shift;             /* 1: shifted windows each epoch (lethe_gpt_train_cfg) */
    long limit;            /* > 0: the first `limit` documents only */
    int lora_rank;         /* > 0: train a LoRA adapter of this rank on init only */
    float lora_alpha;      /* NAN: lethe_lora_config_defaults' */
    unsigned lora_targets; /* 0: every target */
    int lora_begin, lora_end; /* blocks begin..end-1; end 0: every block */
    int merge;             /* with an adapter, also store the merged model */
    int quiet;             /* no progress bar */
    /* called with a line of news (the tokenizer being trained, the run's
       size, the bigram baseline) when not NULL */
    void (*note)(void *ctx, const char *line);
    void *note_ctx;
} lethe_gpt_run_cfg;

/* Every setting "not given", seed 0, no files. */
void lethe_gpt_run_defaults(lethe_gpt_run_cfg *rc);

typedef struct lethe_gpt_run_result {
    lethe_gpt_train_result train;
    char preset[16];       /* the preset the model is, or "custom" */
    long n_params;         /* the model's */
    long lora_params;      /* the adapter's; 0 without one */
    int lora_rank;
    int vocab_size;
    char base[4096];       /* with an adapter, the init run's absolute path */
    double bigram_val_loss; /* NAN without validation */
} lethe_gpt_run_result;

/* Run rc and write rc->out: model.safetensors (metadata: the config, data,
 * its hash, seed, method train / finetune / lora, init), config.json (every
 * setting, the corpus split, the bigram baseline), log.jsonl (the bigram
 * line, then one line per step and validation), tokenizer.json; with an
 * adapter, adapter_model.safetensors and adapter_config.json instead of the
 * model (which is written only when merged); with hf, Hugging Face's files.
 * out is created once the init run and the corpus are read, and follows the
 * rule of lethe/rundir.h: an existing, non-empty out is
 * refused unless force, out may not be, contain or lie inside an input (the
 * init run and the LoRA bases it loads through, the tokenizer, the corpus
 * files), and a run that fails or is interrupted by SIGINT/SIGTERM leaves
 * no directory it created. The same configuration gives byte-identical
 * files. LETHE_ERR_INVALID (a bad or inconsistent setting, too little text,
 * an output refused), LETHE_ERR_NOT_FOUND /
 * LETHE_ERR_IO / LETHE_ERR_FORMAT (the corpus, the init run, the
 * tokenizer), LETHE_ERR_FAILED (training diverged), LETHE_ERR_NOMEM. res
 * may be NULL. */
lethe_status lethe_gpt_run(const lethe_gpt_run_cfg *rc, lethe_gpt_run_result *res);

/* res of run rc as one JSON object: run, preset, n_params, lora_params (with
 * an adapter), vocab_size, steps, tokens, seconds, tokens_per_second,
 * first_loss, train_loss, val_loss, bigram_val_loss (a command's --json
 * summary). NULL when out of memory. */
cJSON *lethe_gpt_run_result_json(const lethe_gpt_run_cfg *rc, const lethe_gpt_run_result *res);

/* x as its shortest decimal in double, so config.json reads 0.001 and not
 * 0.0010000000474974513. */
double lethe_gpt_decimal(float x);

/* A bigram baseline (src/train/bigram.c) to read the model's validation
 * loss against. Jelinek-Mercer interpolation of the maximum-likelihood
 * bigram with an add-one unigram:
 *
 *     p(b | a) = lambda c(a, b) / c(a) + (1 - lambda) (c(b) + 1) / (N + V)
 *
 * (the unigram alone when a was never seen as a context), c counting the
 * pairs and tokens of a training stream of N tokens, V the vocabulary size.
 * lambda is chosen from {0, 1/G, ..., (G-1)/G} (G = LETHE_BIGRAM_GRID) as
 * the one with the lowest cross-entropy on the pairs ending in the last
 * tenth of the training stream under counts of the first nine tenths
 * (ties: the smallest); the validation stream is never used to choose it.
 * The model is then refit on the whole training stream, and val_loss is the
 * mean of -log p(val[i] | val[i-1]) over i = 1 .. n_val - 1, in nats, as
 * the GPT's loss. */
#define LETHE_BIGRAM_GRID 100
#define LETHE_BIGRAM_MIN_TRAIN 20

typedef struct lethe_bigram_result {
    double val_loss;     /* mean token cross-entropy on the validation stream, nats */
    double lambda;       /* the interpolation weight chosen */
    double heldout_loss; /* the held-out slice's cross-entropy under it (fit on the rest) */
    long n_scored;       /* validation tokens scored: n_val - 1 */
} lethe_bigram_result;

/* The baseline of train[0..n_train) (at least LETHE_BIGRAM_MIN_TRAIN
 * tokens) on val[0..n_val) (at least 2), every id below vocab.
 * LETHE_ERR_INVALID (too short, an id out of range), LETHE_ERR_NOMEM. */
lethe_status lethe_bigram_val_loss(const int32_t *train, long n_train, const int32_t *val,
                                   long n_val, int vocab, lethe_bigram_result *res);

/* p(b | a) of the formula above under counts of train[0..n_train), computed
 * directly (O(n_train)): a reference for tests. */
double lethe_bigram_prob(const int32_t *train, long n_train, int vocab, double lambda, int32_t a,
                         int32_t b);

LETHE_API_END
#endif
