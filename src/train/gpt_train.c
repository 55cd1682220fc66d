/* Training GPT language models: window order, schedule, accumulation,
 * clipping, AdamW with decay on 2-D tensors (or on a LoRA adapter alone),
 * validation. */
#include "lethe/gpt_train.h"
#include "lethe/gpt_quant.h"
#include "lethe/mem.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ORDER 0x100000000ull /* + epoch */
#define STREAM_SHIFT 0x200000000ull /* + epoch */

void lethe_gpt_train_defaults(lethe_gpt_train_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch = 8;
    cfg->seq = 256;
    cfg->accum = 1;
    cfg->steps = 100;
    cfg->lr = 1e-3f;
    cfg->min_lr = 1e-4f;
    cfg->warmup = 10;
    cfg->weight_decay = 0.1f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.95f;
    cfg->eps = 1e-8f;
    cfg->clip = 1.0f;
    cfg->eval_every = 0;
    cfg->eval_windows = 32;
    cfg->seed = 0;
}

long lethe_gpt_epoch_shift(long n_tokens, int T, uint64_t seed, long epoch)
{
    long span = n_tokens - T < T ? n_tokens - T : T; /* the stream past one window, at most T */
    if (span <= 1)
        return 0;
    return (long)(lethe_rng_hash(seed, STREAM_SHIFT + (uint64_t)epoch, 0) % (uint64_t)span);
}

long lethe_gpt_windows(long n_tokens, int T)
{
    if (T <= 0 || n_tokens < (long)T + 1)
        return 0;
    return (n_tokens - 1) / T;
}

struct keyed {
    uint64_t key;
    long k;
};

static int by_key(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

lethe_status lethe_gpt_window_order(long n, uint64_t seed, long epoch, long *out)
{
    struct keyed *o = malloc(sizeof *o * (size_t)(n > 0 ? n : 1));
    if (!o)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld windows", n);
    for (long k = 0; k < n; k++) {
        o[k].key = lethe_rng_hash(seed, STREAM_ORDER + (uint64_t)epoch, (uint64_t)k);
        o[k].k = k;
    }
    qsort(o, (size_t)n, sizeof *o, by_key);
    for (long k = 0; k < n; k++)
        out[k] = o[k].k;
    free(o);
    return LETHE_OK;
}

float lethe_gpt_train_lr(const lethe_gpt_train_cfg *cfg, long t)
{
    lethe_sched s = {LETHE_SCHED_COSINE, cfg->lr, cfg->steps, cfg->warmup, cfg->min_lr, 0, 0};
    return lethe_sched_lr(&s, t);
}

long lethe_gpt_eot(const lethe_tokenizer_t *tok)
{
    static const char eot[] = "<|endoftext|>";
    size_t n = lethe_tokenizer_vocab_size(tok);
    for (size_t id = n; id-- > 0;) {
        size_t len;
        const unsigned char *b = lethe_tokenizer_token(tok, (uint32_t)id, &len);
        if (b && lethe_tokenizer_is_special(tok, (uint32_t)id) && len == sizeof eot - 1 &&
            !memcmp(b, eot, len))
            return (long)id;
    }
    return -1;
}

lethe_status lethe_gpt_encode_docs(const lethe_tokenizer_t *tok, const char *const *texts,
                                   const size_t *lens, const size_t *idx, size_t n, int32_t eot,
                                   int32_t **out, long *n_out)
{
    *out = NULL;
    *n_out = 0;
    uint32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *cnt = calloc(n ? n : 1, sizeof *cnt);
    lethe_status st = ids && cnt ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int failed = 0;
    if (st == LETHE_OK) {
#pragma omp parallel for schedule(dynamic, 1)
        for (long i = 0; i < (long)n; i++) {
            size_t d = idx[i];
            if (lethe_tokenizer_encode(tok, texts[d], lens[d], &ids[i], &cnt[i]) != LETHE_OK) {
#pragma omp atomic write
                failed = 1;
            }
        }
        if (failed)
            st = lethe_fail(LETHE_ERR_INVALID, "a document could not be encoded (a byte "
                                               "without a token?)");
    }
    long total = 0;
    for (size_t i = 0; st == LETHE_OK && i < n; i++)
        total += (long)cnt[i] + 1;
    int32_t *s = NULL;
    if (st == LETHE_OK && total > 0 && !(s = malloc(sizeof *s * (size_t)total)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld tokens", total);
    long k = 0;
    for (size_t i = 0; st == LETHE_OK && i < n; i++) {
        for (size_t j = 0; j < cnt[i]; j++)
            s[k++] = (int32_t)ids[i][j];
        s[k++] = eot;
    }
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(cnt);
    if (st != LETHE_OK) {
        free(s);
        return st;
    }
    *out = s;
    *n_out = total;
    return LETHE_OK;
}

/* Inputs and targets of window k of stream s into tok / tgt (T each). */
static void gather(int32_t *tok, int32_t *tgt, const int32_t *s, long k, int T)
{
    const int32_t *w = s + k * (long)T;
    memcpy(tok, w, sizeof *tok * (size_t)T);
    memcpy(tgt, w + 1, sizeof *tgt * (size_t)T);
}

/* Mean token loss over the first nw windows of the validation stream. */
static lethe_status val_loss(lethe_gpt *g, const int32_t *val, long nw, int B, int T,
                             int32_t *tok, int32_t *tgt, double *out)
{
    double total = 0;
    for (long w = 0; w < nw; w += B) {
        int b = (int)(nw - w < B ? nw - w : B);
        for (int i = 0; i < b; i++)
            gather(tok + (long)i * T, tgt + (long)i * T, val, w + i, T);
        lethe_status st = lethe_gpt_forward(g, tok, tgt, b, T);
        if (st != LETHE_OK)
            return st;
        total += (double)g->loss * b;
    }
    *out = nw > 0 ? total / (double)nw : NAN;
    return LETHE_OK;
}

static lethe_status check_stream(const int32_t *s, long n, int V, const char *what)
{
    for (long i = 0; i < n; i++)
        if (s[i] < 0 || s[i] >= V)
            return lethe_fail(LETHE_ERR_INVALID,
                              "%s token %ld is id %d, outside the model's vocabulary of %d",
                              what, i, s[i], V);
    return LETHE_OK;
}

lethe_status lethe_gpt_train(lethe_gpt *g, const int32_t *train, long n_train,
                             const int32_t *val, long n_val, const lethe_gpt_train_cfg *cfg,
                             FILE *log, lethe_gpt_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->first_loss = res->last_loss = res->val_loss = NAN;
    const int B = cfg->batch, T = cfg->seq, K = cfg->accum;
    if (B <= 0 || K <= 0 || T <= 0 || cfg->steps <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "batch, seq, accum and steps must be positive");
    if (T > g->cfg.n_positions)
        return lethe_fail(LETHE_ERR_INVALID,
                          "the window of %d tokens is longer than the model's %d positions", T,
                          g->cfg.n_positions);
    long W = lethe_gpt_windows(n_train, T);
    if (W == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "the training text has %ld tokens, fewer than a window + 1 = %d "
                          "(shorten the windows or give more text)",
                          n_train, T + 1);
    lethe_status st = check_stream(train, n_train, g->cfg.vocab_size, "training");
    if (st == LETHE_OK && val)
        st = check_stream(val, n_val, g->cfg.vocab_size, "validation");
    if (st == LETHE_OK && cfg->lora)
        st = lethe_lora_check(cfg->lora, g);
    if (st != LETHE_OK)
        return st;
    lethe_lora *lora = cfg->lora;
    long WV = val ? lethe_gpt_windows(n_val, T) : 0;
    if (WV > cfg->eval_windows)
        WV = cfg->eval_windows;

    double t0 = lethe_now();
    long *order = malloc(sizeof *order * (size_t)W);
    int32_t *tok = malloc(sizeof *tok * (size_t)B * (size_t)T);
    int32_t *tgt = malloc(sizeof *tgt * (size_t)B * (size_t)T);
    float *dloss = malloc(sizeof *dloss * (size_t)B * (size_t)T);
    lethe_optim *opt = lethe_optim_init(LETHE_OPTIM_ADAMW, lora ? lora->n_params : g->n_params);
    if (!order || !tok || !tgt || !dloss || !opt) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory setting up training");
        goto done;
    }
    opt->lr = cfg->lr;
    opt->beta1 = cfg->beta1;
    opt->beta2 = cfg->beta2;
    opt->eps = cfg->eps;
    /* Full fine-tuning: decoupled decay applied below, 2-D tensors only.
     * LoRA: every adapter parameter is 2-D, so the optimizer decays them all. */
    opt->weight_decay = lora ? cfg->weight_decay : 0.0f;
    for (long i = 0; i < (long)B * T; i++)
        dloss[i] = 1.0f / ((float)B * (float)T * (float)K);

    lethe_progress prog;
    lethe_progress_init(&prog, stderr, "train", "steps", (uint64_t)cfg->steps, cfg->quiet);
    long epoch = -1, pos = 0, WE = 0, off = 0; /* the epoch, its next window, its windows and shift */
    lethe_gpt_zero_grad(g);
    if (lora) {
        lethe_lora_zero_grad(lora);
        lethe_lora_apply(lora, g);
    }
    for (long step = 0; step < cfg->steps; step++) {
        double loss = 0;
        for (int k = 0; k < K; k++) {
            for (int b = 0; b < B; b++) {
                if (pos == WE) {
                    epoch++, pos = 0;
                    off = cfg->shift ? lethe_gpt_epoch_shift(n_train, T, cfg->seed, epoch) : 0;
                    WE = lethe_gpt_windows(n_train - off, T);
                    if ((st = lethe_gpt_window_order(WE, cfg->seed, epoch, order)) != LETHE_OK)
                        goto done;
                }
                gather(tok + (long)b * T, tgt + (long)b * T, train + off, order[pos++], T);
            }
            if ((st = lethe_gpt_forward(g, tok, tgt, B, T)) != LETHE_OK)
                goto done;
            lethe_gpt_backward_weighted(g, dloss);
            loss += g->loss;
        }
        loss /= K;
        if (!isfinite(loss)) {
            st = lethe_fail(LETHE_ERR_FAILED, "the loss diverged at step %ld (lower the learning rate?)",
                            step);
            goto done;
        }
        float lr = lethe_gpt_train_lr(cfg, step);
        double norm;
        if (lora) {
            /* The step's dW_eff, summed over the micro-batches, gives the
             * adapter's gradient; the base's is dropped. */
            lethe_lora_backward(lora, g);
            lethe_gpt_zero_grad(g);
            norm = cfg->clip > 0 ? lethe_grad_clip(lora->grads, lora->n_params, cfg->clip)
                                 : lethe_grad_norm(lora->grads, lora->n_params);
            lethe_optim_step_zero_grad(opt, lora->params, lora->grads, lr);
            lethe_lora_apply(lora, g);
        } else {
            norm = cfg->clip > 0 ? lethe_grad_clip(g->grads, g->n_params, cfg->clip)
                                 : lethe_grad_norm(g->grads, g->n_params);
            float decay = 1.0f - lr * cfg->weight_decay;
            if (decay != 1.0f)
                for (int i = 0; i < g->n_tensors; i++) {
                    const lethe_gpt_tensor *t = &g->tensors[i];
                    if (t->rank != 2)
                        continue;
                    float *p = g->params + t->offset;
                    for (long j = 0; j < t->numel; j++)
                        p[j] *= decay;
                }
            lethe_gpt_quant_drop(g); /* the codes no longer hold the weights */
            lethe_optim_step_zero_grad(opt, g->params, g->grads, lr);
        }
        if (step == 0)
            res->first_loss = loss;
        res->last_loss = loss;
        res->steps = step + 1;
        res->tokens += (long)K * B * T;
        if (log)
            fprintf(log, "{\"step\":%ld,\"lr\":%.9g,\"loss\":%.9g,\"grad_norm\":%.9g}\n", step,
                    lr, loss, norm);
        if (WV > 0 && ((cfg->eval_every > 0 && (step + 1) % cfg->eval_every == 0) ||
                       step + 1 == cfg->steps)) {
            if ((st = val_loss(g, val, WV, B, T, tok, tgt, &res->val_loss)) != LETHE_OK)
                goto done;
            if (log)
                fprintf(log, "{\"step\":%ld,\"val_loss\":%.9g}\n", step, res->val_loss);
        }
        lethe_progress_update(&prog, (uint64_t)(step + 1));
    }
    lethe_progress_finish(&prog);
done:
    res->seconds = lethe_now() - t0;
    free(order);
    free(tok);
    free(tgt);
    free(dloss);
    lethe_optim_free(opt);
    return st;
}
