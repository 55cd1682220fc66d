/* The language-model unlearning driver (lethe/lm_unlearn.h): batches of
 * forget items paired with random retain items, AdamW steps, RMU's layer
 * freezing, LoRA, Task Vector, and WHP's logit adjustment. */
#include "lethe/gpt_generate.h"
#include "lethe/gpt_quant.h"
#include "lethe/lm_unlearn.h"
#include "lethe/optim.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#define STREAM_ORDER 0x4C4D0000ull
#define STREAM_RETAIN 0x52540000ull

void lethe_lm_sched_defaults(lethe_lm_sched *s)
{
    memset(s, 0, sizeof *s);
    s->epochs = 10;
    s->batch = 32;
    s->lr = 1e-5f;
    s->weight_decay = 0.01f;
    s->warmup = -1;
    s->constant = 0;
    s->beta1 = 0.9f;
    s->beta2 = 0.999f;
    s->eps = 1e-8f;
    s->clip = 1.0f;
    s->seed = 0;
    s->lora = NULL;
}

float lethe_lm_sched_lr(const lethe_lm_sched *s, long warmup, long total, long t)
{
    double f;
    if (t < warmup)
        f = (double)t / (double)(warmup > 1 ? warmup : 1);
    else if (s->constant)
        f = 1;
    else {
        long span = total - warmup > 1 ? total - warmup : 1;
        f = (double)(total - t) / (double)span;
        if (f < 0)
            f = 0;
    }
    return (float)(s->lr * f);
}

long lethe_lm_sched_warmup(const lethe_lm_sched *s, long per, long total)
{
    long w = s->warmup < 0 ? per : s->warmup;
    return total == 1 ? 0 : w; /* one step inside a warm-up would run at rate 0 */
}

long lethe_lm_steps_per_epoch(long n, int batch)
{
    return batch > 0 ? (n + batch - 1) / batch : 0;
}

typedef struct keyed {
    uint64_t key;
    long i;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

lethe_status lethe_lm_order(long n, uint64_t seed, long epoch, long *out)
{
    keyed *k = malloc(sizeof *k * (size_t)(n ? n : 1));
    if (!k)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory ordering %ld items", n);
    for (long i = 0; i < n; i++)
        k[i] = (keyed){lethe_rng_hash(seed, STREAM_ORDER + (uint64_t)epoch, (uint64_t)i), i};
    qsort(k, (size_t)n, sizeof *k, keyed_cmp);
    for (long i = 0; i < n; i++)
        out[i] = k[i].i;
    free(k);
    return LETHE_OK;
}

long lethe_lm_retain_pick(long i, long n_retain, uint64_t seed, long epoch)
{
    uint64_t h = lethe_rng_hash(seed, STREAM_RETAIN + (uint64_t)epoch, (uint64_t)i);
    /* 53 random bits to a uniform in [0, 1), then to [0, n) */
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    long r = (long)(u * (double)n_retain);
    return r < n_retain ? r : n_retain - 1;
}

lethe_gpt *lethe_lm_clone(const lethe_gpt *g)
{
    lethe_gpt *c = lethe_gpt_init(&g->cfg);
    if (c)
        memcpy(c->params, g->params, sizeof(float) * (size_t)g->n_params);
    return c;
}

lethe_status lethe_lm_task_vector(lethe_gpt *g, const lethe_gpt *r, double alpha)
{
    if (memcmp(&g->cfg, &r->cfg, sizeof g->cfg))
        return lethe_fail(LETHE_ERR_INVALID, "task vector: the reinforced model's "
                          "configuration differs from the model's");
    float a = (float)alpha;
    lethe_gpt_quant_drop(g);
    for (long i = 0; i < g->n_params; i++)
        g->params[i] = g->params[i] - a * (r->params[i] - g->params[i]);
    return LETHE_OK;
}

void lethe_lm_whp_logits(float *out, const float *base, const float *reinf, long N, int V,
                         double alpha)
{
    float a = (float)alpha;
    for (long i = 0; i < N * V; i++) {
        float d = reinf[i] - base[i];
        out[i] = base[i] - a * (d > 0 ? d : 0.0f);
    }
}

/* ---- WHP generation hook ---------------------------------------------- */

struct lethe_lm_whp {
    const lethe_gpt *r;
    double alpha;
    lethe_gpt_kv *kv;
    int32_t *fed; /* (n_positions) the tokens the cache holds */
    lethe_status st;
    lethe_gpt_ctx *x; /* the reinforced model's teacher-forced forwards */
};

lethe_lm_whp *lethe_lm_whp_new(const lethe_gpt *reinforced, double alpha)
{
    lethe_lm_whp *w = calloc(1, sizeof *w);
    if (!w) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for the WHP hook");
        return NULL;
    }
    w->r = reinforced;
    w->alpha = alpha;
    w->kv = lethe_gpt_kv_new(reinforced);
    w->fed = malloc(sizeof *w->fed * (size_t)reinforced->cfg.n_positions);
    w->x = lethe_gpt_ctx_new();
    if (!w->kv || !w->fed || !w->x) {
        lethe_lm_whp_free(w);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for the WHP hook");
        return NULL;
    }
    return w;
}

void lethe_lm_whp_free(lethe_lm_whp *w)
{
    if (!w)
        return;
    lethe_gpt_kv_free(w->kv);
    lethe_gpt_ctx_free(w->x);
    free(w->fed);
    free(w);
}

lethe_status lethe_lm_whp_status(const lethe_lm_whp *w) { return w->st; }

void lethe_lm_whp_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam)
{
    lethe_lm_whp *w = ctx;
    (void)beam;
    LETHE_ASSERT(V == w->r->cfg.vocab_size && len >= 1);
    int k = w->kv->len;
    if (k > len || memcmp(w->fed, seq, sizeof *seq * (size_t)k)) {
        lethe_gpt_kv_reset(w->kv);
        k = 0;
    }
    if (len > k) {
        lethe_status st = lethe_gpt_kv_forward(w->kv, seq + k, len - k, NULL, NULL);
        if (st != LETHE_OK) {
            w->st = st;
            lethe_gpt_kv_reset(w->kv);
            return;
        }
        memcpy(w->fed + k, seq + k, sizeof *seq * (size_t)(len - k));
    }
    lethe_lm_whp_logits(logits, logits, w->kv->logits, 1, V, w->alpha);
}

lethe_status lethe_lm_whp_rows(void *ctx, float *logits, int V, const int32_t *tokens, int B,
                               int T)
{
    lethe_lm_whp *w = ctx;
    if (V != w->r->cfg.vocab_size)
        return lethe_fail(LETHE_ERR_INVALID, "WHP: the reinforced model has %d tokens, the "
                          "model evaluated %d", w->r->cfg.vocab_size, V);
    lethe_status st = lethe_gpt_ctx_forward(w->x, w->r, tokens, NULL, B, T);
    if (st == LETHE_OK)
        lethe_lm_whp_logits(logits, logits, w->x->logits, (long)B * T, V, w->alpha);
    return st;
}

static lethe_status whp_status(void *ctx) { return lethe_lm_whp_status(ctx); }

/* The reinforced model is a fine-tune of the model it adjusts: the same
 * architecture. */
static lethe_status whp_check(void *ctx, const lethe_gpt *g)
{
    const lethe_lm_whp *w = ctx;
    if (memcmp(&w->r->cfg, &g->cfg, sizeof g->cfg))
        return lethe_fail(LETHE_ERR_FORMAT, "WHP's reinforced model needs the architecture "
                          "of the model it adjusts");
    return LETHE_OK;
}

lethe_gpt_logits_proc lethe_lm_whp_proc(lethe_lm_whp *w)
{
    return (lethe_gpt_logits_proc){lethe_lm_whp_rows, lethe_lm_whp_hook, whp_status, w,
                                   whp_check};
}

lethe_status lethe_lm_whp_open(const char *dir, double alpha, lethe_lm_whp_run *r)
{
    memset(r, 0, sizeof *r);
    lethe_status st = lethe_gpt_dir_load(dir, 0, &r->dir);
    if (st == LETHE_OK && (!(r->w = lethe_lm_whp_new(r->dir.model, alpha)) ||
                           !(r->note = cJSON_CreateObject()) ||
                           !cJSON_AddStringToObject(r->note, "whp", dir) ||
                           !cJSON_AddNumberToObject(r->note, "whp_alpha", alpha)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st != LETHE_OK) {
        lethe_lm_whp_close(r);
        return st;
    }
    r->proc = lethe_lm_whp_proc(r->w);
    return LETHE_OK;
}

void lethe_lm_whp_close(lethe_lm_whp_run *r)
{
    cJSON_Delete(r->note);
    lethe_lm_whp_free(r->w);
    lethe_gpt_dir_free(&r->dir);
    memset(r, 0, sizeof *r);
}

/* ---- the driver ----------------------------------------------------------- */

static lethe_status check_set(const lethe_gpt *g, const lethe_lm_set *s, const char *what)
{
    if (!s || !s->tokens || !s->targets || s->n < 1)
        return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: the %s set is missing or empty",
                          what);
    if (s->T < 1 || s->T > g->cfg.n_positions)
        return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: the %s set's sequences have %d "
                          "tokens (need 1..%d)", what, s->T, g->cfg.n_positions);
    int V = g->cfg.vocab_size;
    for (long i = 0; i < s->n; i++) {
        int n = 0;
        for (int t = 0; t < s->T; t++) {
            long j = i * s->T + t;
            if (s->tokens[j] < 0 || s->tokens[j] >= V || s->targets[j] < -1 ||
                s->targets[j] >= V)
                return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: %s item %ld position %d: "
                                  "token %d / target %d out of range (vocabulary %d)", what, i,
                                  t, s->tokens[j], s->targets[j], V);
            n += s->targets[j] >= 0;
        }
        if (!n)
            return lethe_fail(LETHE_ERR_INVALID, "LM unlearning: %s item %ld has no answer "
                              "token (every target is -1)", what, i);
    }
    return LETHE_OK;
}

static void gather(int32_t *tok, int32_t *tgt, const lethe_lm_set *s, long item)
{
    memcpy(tok, s->tokens + item * s->T, sizeof *tok * (size_t)s->T);
    memcpy(tgt, s->targets + item * s->T, sizeof *tgt * (size_t)s->T);
}

/* Pad a batch to its longest sequence, as OpenUnlearning's collator does:
 * drop the trailing columns that no sequence has a target in (padding, right
 * of every answer), compacting the rows of b in place. */
static void trim(lethe_lm_batch *b, int32_t *tok, int32_t *tgt)
{
    int T = b->T, keep = 1;
    for (int r = 0; r < b->B; r++)
        for (int t = T - 1; t >= keep; t--)
            if (tgt[(long)r * T + t] >= 0) {
                keep = t + 1;
                break;
            }
    for (int r = 1; r < b->B && keep < T; r++) {
        memmove(tok + (long)r * keep, tok + (long)r * T, sizeof *tok * (size_t)keep);
        memmove(tgt + (long)r * keep, tgt + (long)r * T, sizeof *tgt * (size_t)keep);
    }
    b->T = keep;
}

static lethe_status run_loop(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                             const lethe_lm_set *forget, const lethe_lm_set *retain,
                             const lethe_lm_set *idk, const lethe_lm_sched *sc, FILE *log,
                             lethe_lm_result *res)
{
    lethe_status st = LETHE_OK;
    int need_retain = lethe_lm_needs_retain(cfg), need_idk = lethe_lm_needs_idk(cfg);
    lethe_lora *lora = sc->lora;
    int Bmax = sc->batch, C = g->cfg.n_embd;
    long per = lethe_lm_steps_per_epoch(forget->n, Bmax), total = per * sc->epochs;
    long warmup = lethe_lm_sched_warmup(sc, per, total);
    int Tr = need_retain ? retain->T : 1, Ti = need_idk ? idk->T : 1;

    long *order = malloc(sizeof *order * (size_t)forget->n);
    int32_t *ft = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)forget->T);
    int32_t *fy = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)forget->T);
    int32_t *rt = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)Tr);
    int32_t *ry = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)Tr);
    int32_t *it = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)Ti);
    int32_t *iy = malloc(sizeof(int32_t) * (size_t)Bmax * (size_t)Ti);
    float *control = malloc(sizeof *control * (size_t)C);
    unsigned char *tr = malloc((size_t)g->n_tensors);
    lethe_optim *opt = lethe_optim_init(LETHE_OPTIM_ADAMW, lora ? lora->n_params : g->n_params);
    if (!order || !ft || !fy || !rt || !ry || !it || !iy || !control || !tr || !opt) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory setting up LM unlearning");
        goto done;
    }
    opt->beta1 = sc->beta1;
    opt->beta2 = sc->beta2;
    opt->eps = sc->eps;
    opt->weight_decay = lora ? sc->weight_decay : 0.0f; /* full: decayed below, 2-D only */
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg->method);
    if (def->trainable)
        def->trainable(cfg, g, tr);
    else
        memset(tr, 1, (size_t)g->n_tensors);
    int frozen = 0;
    for (int i = 0; i < g->n_tensors; i++)
        frozen |= !tr[i];
    if (def->control)
        def->control(cfg, control, C, sc->seed);

    lethe_gpt_zero_grad(g);
    if (lora) {
        lethe_lora_zero_grad(lora);
        lethe_lora_apply(lora, g);
    }
    long step = 0;
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, sc->label ? sc->label : lethe_lm_method_name(cfg->method),
                        "steps",
                        (uint64_t)total, sc->quiet);
    for (long e = 0; e < sc->epochs; e++) {
        if ((st = lethe_lm_order(forget->n, sc->seed, e, order)) != LETHE_OK)
            goto done;
        for (long b0 = 0; b0 < forget->n; b0 += Bmax, step++) {
            int B = (int)(forget->n - b0 < Bmax ? forget->n - b0 : Bmax);
            for (int b = 0; b < B; b++) {
                long i = order[b0 + b];
                gather(ft + (long)b * forget->T, fy + (long)b * forget->T, forget, i);
                if (need_retain)
                    gather(rt + (long)b * Tr, ry + (long)b * Tr, retain,
                           lethe_lm_retain_pick(i, retain->n, sc->seed, e));
                if (need_idk)
                    gather(it + (long)b * Ti, iy + (long)b * Ti, idk, i);
            }
            lethe_lm_batch fb = {ft, fy, B, forget->T}, rb = {rt, ry, B, Tr},
                           ib = {it, iy, B, Ti};
            trim(&fb, ft, fy);
            if (need_retain)
                trim(&rb, rt, ry);
            if (need_idk)
                trim(&ib, it, iy);
            lethe_lm_terms terms;
            st = lethe_lm_loss(g, ref, cfg, &fb, need_retain ? &rb : NULL,
                               need_idk ? &ib : NULL,
                               def->control ? control : NULL, &terms);
            if (st != LETHE_OK)
                goto done;
            if (!isfinite(terms.loss)) {
                st = lethe_fail(LETHE_ERR_FAILED, "%s: the loss is not finite at step %ld "
                                "(lower the learning rate?)", lethe_lm_method_name(cfg->method),
                                step);
                goto done;
            }
            if (frozen)
                for (int i = 0; i < g->n_tensors; i++)
                    if (!tr[i])
                        memset(g->grads + g->tensors[i].offset, 0,
                               sizeof(float) * (size_t)g->tensors[i].numel);
            float lr = lethe_lm_sched_lr(sc, warmup, total, step);
            double norm;
            if (lora) {
                lethe_lora_backward(lora, g);
                lethe_gpt_zero_grad(g);
                norm = sc->clip > 0 ? lethe_grad_clip(lora->grads, lora->n_params, sc->clip)
                                    : lethe_grad_norm(lora->grads, lora->n_params);
                lethe_optim_step_zero_grad(opt, lora->params, lora->grads, lr);
                lethe_lora_apply(lora, g);
            } else {
                norm = sc->clip > 0 ? lethe_grad_clip(g->grads, g->n_params, sc->clip)
                                    : lethe_grad_norm(g->grads, g->n_params);
                float decay = 1.0f - lr * sc->weight_decay;
                if (decay != 1.0f)
                    for (int i = 0; i < g->n_tensors; i++) {
                        const lethe_gpt_tensor *t = &g->tensors[i];
                        if (t->rank != 2 || !tr[i])
                            continue;
                        float *p = g->params + t->offset;
                        for (long j = 0; j < t->numel; j++)
                            p[j] *= decay;
                    }
                lethe_gpt_quant_drop(g); /* the codes no longer hold the weights */
                lethe_optim_step_zero_grad(opt, g->params, g->grads, lr);
            }
            if (res) {
                if (step == 0)
                    res->first_loss = terms.loss;
                res->last_loss = terms.loss;
                res->steps = step + 1;
            }
            if (log)
                fprintf(log,
                        "{\"step\":%ld,\"epoch\":%ld,\"lr\":%.9g,\"loss\":%.9g,\"forget\":%.9g,"
                        "\"retain\":%.9g,\"grad_norm\":%.9g}\n",
                        step, e, lr, terms.loss, terms.forget, terms.retain, norm);
            lethe_progress_update(&prog, (uint64_t)(step + 1));
        }
    }
    lethe_progress_finish(&prog);
done:
    free(order);
    free(ft);
    free(fy);
    free(rt);
    free(ry);
    free(it);
    free(iy);
    free(control);
    free(tr);
    lethe_optim_free(opt);
    return st;
}

lethe_status lethe_lm_unlearn(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                              const lethe_lm_set *forget, const lethe_lm_set *retain,
                              const lethe_lm_set *idk, const lethe_lm_sched *sc, FILE *log,
                              lethe_lm_result *res)
{
    lethe_status st = lethe_lm_check(cfg, g, ref);
    if (st != LETHE_OK)
        return st;
    if (res)
        memset(res, 0, sizeof *res);
    const char *name = lethe_lm_method_name(cfg->method);
    if (sc->epochs < 1 || sc->batch < 1 || !(sc->lr > 0) || !isfinite(sc->lr) ||
        !isfinite(sc->weight_decay) || !(sc->clip >= 0))
        return lethe_fail(LETHE_ERR_INVALID, "%s: epochs %d and batch %d must be >= 1, the "
                          "learning rate %g > 0 (at 0 no step changes the model) and clip %g "
                          ">= 0", name, sc->epochs, sc->batch, (double)sc->lr, (double)sc->clip);
    if ((st = check_set(g, forget, "forget")) != LETHE_OK)
        return st;
    if (lethe_lm_needs_retain(cfg) && (st = check_set(g, retain, "retain")) != LETHE_OK)
        return st;
    if (lethe_lm_needs_idk(cfg)) {
        if ((st = check_set(g, idk, "idk (alternate answer)")) != LETHE_OK)
            return st;
        if (idk->n != forget->n)
            return lethe_fail(LETHE_ERR_INVALID, "%s: the idk set has %ld items, the forget "
                              "set %ld (one alternate answer per forget question)", name,
                              idk->n, forget->n);
    }
    if (sc->lora && (st = lethe_lora_check(sc->lora, g)) != LETHE_OK)
        return st;
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg->method);
    if (def->finish) {
        if (sc->lora)
            return lethe_fail(LETHE_ERR_INVALID, "%s: a LoRA adapter is not supported (the "
                              "method combines whole models)", name);
        lethe_gpt *copy = lethe_lm_clone(g);
        if (!copy)
            return LETHE_ERR_NOMEM;
        st = run_loop(copy, ref, cfg, forget, retain, idk, sc, log, res);
        if (st == LETHE_OK)
            st = def->finish(cfg, g, copy);
        lethe_gpt_free(copy);
        return st;
    }
    return run_loop(g, ref, cfg, forget, retain, idk, sc, log, res);
}
