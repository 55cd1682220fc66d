/* A GPT training run (lethe/gpt_train.h, lethe_gpt_run): a corpus in, a run
 * directory out, from scratch or fine-tuning a checkpoint, optionally as a
 * LoRA adapter. */
#include "lethe/gpt_train.h"
#include "lethe/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "lethe/corpus.h"
#include "lethe/fileio.h"
#include "lethe/gpt_hf.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/rundir.h"

/* Validation documents: a keyed hash of the id under a fixed seed, so the
 * split belongs to the corpus, not to the run. */
#define STREAM_VAL 0x300000000ull
#define EOT_TEXT "<|endoftext|>"

void lethe_gpt_run_defaults(lethe_gpt_run_cfg *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->lr = rc->min_lr = rc->weight_decay = rc->clip = rc->lora_alpha = NAN;
    rc->val = NAN;
    rc->warmup = rc->eval_every = -1;
}

static void note(const lethe_gpt_run_cfg *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(const lethe_gpt_run_cfg *rc, const char *fmt, ...)
{
    if (!rc->note)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rc->note(rc->note_ctx, line);
}

/* Whether document id goes to validation. */
static int is_val(uint64_t id, double frac)
{
    if (frac <= 0)
        return 0;
    double u = (double)(lethe_rng_hash(0, STREAM_VAL, id) >> 11) * 0x1.0p-53;
    return u < frac;
}

double lethe_gpt_decimal(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

static cJSON *make_config(const lethe_gpt_run_cfg *o, const char *preset,
                          const lethe_gpt_config *mc,
                          long n_params,
                          const lethe_gpt_train_cfg *tc, const char *data_hash, size_t n_docs,
                          size_t n_train_docs, size_t n_val_docs, long train_tokens,
                          long val_tokens, long eot, double val_frac, const char *base_abs,
                          const lethe_bigram_result *bg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "model", "gpt");
    cJSON_AddStringToObject(j, "preset", preset);
    if (o->init)
        cJSON_AddStringToObject(j, "init", o->init);
    else
        cJSON_AddNullToObject(j, "init");
    cJSON_AddStringToObject(j, "format", o->hf ? "hf" : "lethe");
    cJSON_AddNumberToObject(j, "vocab_size", mc->vocab_size);
    cJSON_AddNumberToObject(j, "n_positions", mc->n_positions);
    cJSON_AddNumberToObject(j, "n_embd", mc->n_embd);
    cJSON_AddNumberToObject(j, "n_layer", mc->n_layer);
    cJSON_AddNumberToObject(j, "n_head", mc->n_head);
    cJSON_AddNumberToObject(j, "n_params", (double)n_params);
    if (o->tokenizer)
        cJSON_AddStringToObject(j, "tokenizer", o->tokenizer);
    else
        cJSON_AddNullToObject(j, "tokenizer");
    cJSON_AddNumberToObject(j, "eot_id", (double)eot);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "limit", (double)o->limit);
    cJSON_AddStringToObject(j, "data_hash", data_hash);
    cJSON_AddNumberToObject(j, "n_docs", (double)n_docs);
    cJSON_AddNumberToObject(j, "n_train_docs", (double)n_train_docs);
    cJSON_AddNumberToObject(j, "n_val_docs", (double)n_val_docs);
    cJSON_AddNumberToObject(j, "train_tokens", (double)train_tokens);
    cJSON_AddNumberToObject(j, "val_tokens", (double)val_tokens);
    cJSON_AddNumberToObject(j, "val", val_frac);
    cJSON_AddNumberToObject(j, "steps", (double)tc->steps);
    cJSON_AddNumberToObject(j, "epochs", (double)(o->epochs > 0 ? o->epochs : 0));
    cJSON_AddNumberToObject(j, "batch", tc->batch);
    cJSON_AddNumberToObject(j, "seq", tc->seq);
    cJSON_AddNumberToObject(j, "accum", tc->accum);
    cJSON_AddStringToObject(j, "optim", "adamw");
    cJSON_AddNumberToObject(j, "lr", lethe_gpt_decimal(tc->lr));
    cJSON_AddNumberToObject(j, "min_lr", lethe_gpt_decimal(tc->min_lr));
    cJSON_AddStringToObject(j, "sched", "cosine");
    cJSON_AddNumberToObject(j, "warmup", (double)tc->warmup);
    cJSON_AddNumberToObject(j, "weight_decay", lethe_gpt_decimal(tc->weight_decay));
    cJSON_AddStringToObject(j, "weight_decay_on", "2-D tensors");
    cJSON_AddNumberToObject(j, "beta1", lethe_gpt_decimal(tc->beta1));
    cJSON_AddNumberToObject(j, "beta2", lethe_gpt_decimal(tc->beta2));
    cJSON_AddNumberToObject(j, "eps", lethe_gpt_decimal(tc->eps));
    cJSON_AddNumberToObject(j, "clip", lethe_gpt_decimal(tc->clip));
    cJSON_AddNumberToObject(j, "eval_every", (double)tc->eval_every);
    cJSON_AddNumberToObject(j, "eval_windows", tc->eval_windows);
    cJSON_AddBoolToObject(j, "shift", tc->shift);
    if (isnan(bg->val_loss)) {
        cJSON_AddNullToObject(j, "bigram_val_loss");
        cJSON_AddNullToObject(j, "bigram_lambda");
    } else {
        cJSON_AddNumberToObject(j, "bigram_val_loss", bg->val_loss);
        cJSON_AddNumberToObject(j, "bigram_lambda", bg->lambda);
    }
    if (tc->lora) {
        const lethe_lora *l = tc->lora;
        cJSON *lj = cJSON_AddObjectToObject(j, "lora");
        cJSON_AddStringToObject(lj, "base", base_abs);
        cJSON_AddNumberToObject(lj, "rank", l->cfg.rank);
        cJSON_AddNumberToObject(lj, "alpha", lethe_gpt_decimal(l->cfg.alpha));
        cJSON *t = cJSON_AddArrayToObject(lj, "targets");
        for (unsigned b = 1; b <= LETHE_LORA_MLP_PROJ; b <<= 1)
            if (l->cfg.targets & b)
                cJSON_AddItemToArray(t, cJSON_CreateString(lethe_lora_target_name(b)));
        cJSON *ly = cJSON_AddArrayToObject(lj, "layers");
        cJSON_AddItemToArray(ly, cJSON_CreateNumber(l->cfg.layer_begin));
        cJSON_AddItemToArray(ly, cJSON_CreateNumber(l->cfg.layer_end));
        cJSON_AddNumberToObject(lj, "n_params", (double)l->n_params);
        cJSON_AddBoolToObject(lj, "merged", o->merge);
    }
    return j;
}

cJSON *lethe_gpt_run_result_json(const lethe_gpt_run_cfg *rc, const lethe_gpt_run_result *res)
{
    const lethe_gpt_train_result *tr = &res->train;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "run", rc->out);
    cJSON_AddStringToObject(j, "preset", res->preset);
    cJSON_AddNumberToObject(j, "n_params", (double)res->n_params);
    if (res->lora_rank)
        cJSON_AddNumberToObject(j, "lora_params", (double)res->lora_params);
    cJSON_AddNumberToObject(j, "vocab_size", res->vocab_size);
    cJSON_AddNumberToObject(j, "steps", (double)tr->steps);
    cJSON_AddNumberToObject(j, "tokens", (double)tr->tokens);
    cJSON_AddNumberToObject(j, "seconds", tr->seconds);
    cJSON_AddNumberToObject(j, "tokens_per_second",
                            tr->seconds > 0 ? (double)tr->tokens / tr->seconds : 0);
    cJSON_AddNumberToObject(j, "first_loss", tr->first_loss);
    cJSON_AddNumberToObject(j, "train_loss", tr->last_loss);
    cJSON_AddNumberToObject(j, "val_loss", tr->val_loss); /* NAN prints null */
    cJSON_AddNumberToObject(j, "bigram_val_loss", res->bigram_val_loss);
    return j;
}

static int same_config(const lethe_gpt_config *a, const lethe_gpt_config *b)
{
    return a->vocab_size == b->vocab_size && a->n_positions == b->n_positions &&
           a->n_embd == b->n_embd && a->n_layer == b->n_layer && a->n_head == b->n_head;
}

/* The model and tokenizer of the init run into *g and *tok, and the preset
 * name: the one given (which must match the checkpoint), else the preset the
 * checkpoint matches, else "custom". */
static lethe_status load_init(const lethe_gpt_run_cfg *o, lethe_gpt **g, lethe_tokenizer_t **tok,
                              const char **preset)
{
    static const char *const names[] = {"tiny", "small", "gpt2"};
    lethe_gpt_dir d;
    lethe_status st = lethe_gpt_dir_load(o->init, 1, &d);
    if (st != LETHE_OK)
        return st;
    const lethe_gpt_config *c = &d.model->cfg;
    lethe_gpt_config p;
    if (!d.tok) {
        st = lethe_fail(LETHE_ERR_NOT_FOUND, "%s has no tokenizer (tokenizer.json, or "
                        "vocab.json + merges.txt), which fine-tuning needs", o->init);
    } else if (o->preset) {
        st = lethe_gpt_preset(o->preset, &p);
        if (st == LETHE_OK && !same_config(&p, c))
            st = lethe_fail(LETHE_ERR_INVALID,
                            "the preset %s (vocab_size %d, n_positions %d, n_embd %d, n_layer "
                            "%d, n_head %d) does not match %s (%d, %d, %d, %d, %d); give no "
                            "preset",
                            o->preset, p.vocab_size, p.n_positions, p.n_embd, p.n_layer,
                            p.n_head, o->init, c->vocab_size, c->n_positions, c->n_embd,
                            c->n_layer, c->n_head);
        *preset = o->preset;
    } else {
        *preset = "custom";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (lethe_gpt_preset(names[i], &p) == LETHE_OK && same_config(&p, c))
                *preset = names[i];
    }
    if (st != LETHE_OK) {
        lethe_gpt_dir_free(&d);
        return st;
    }
    *g = d.model;
    *tok = d.tok;
    return LETHE_OK;
}

/* The settings the run's inputs do not decide. */
static lethe_status check_cfg(const lethe_gpt_run_cfg *o)
{
    if (!o->data || !o->out)
        return lethe_fail(LETHE_ERR_INVALID, "a GPT run needs a corpus and an output directory");
    if (!o->preset && !o->init)
        return lethe_fail(LETHE_ERR_INVALID, "a GPT run needs a preset (tiny, small or gpt2) "
                          "or a checkpoint to start from");
    if (o->init && (o->tokenizer || o->vocab > 0))
        return lethe_fail(LETHE_ERR_INVALID, "fine-tuning %s takes its tokenizer and "
                          "vocabulary: give neither", o->init);
    if (o->steps > 0 && o->epochs > 0)
        return lethe_fail(LETHE_ERR_INVALID, "a GPT run takes a number of steps or of epochs, "
                          "not both");
    if (o->lora_rank > 0 && !o->init)
        return lethe_fail(LETHE_ERR_INVALID, "a LoRA adapter is trained on a base model: give "
                          "the checkpoint to start from");
    if (o->lora_rank <= 0 && (o->merge || o->lora_targets || o->lora_end > 0))
        return lethe_fail(LETHE_ERR_INVALID, "the adapter's targets, layers and merging need "
                          "a LoRA rank");
    if (o->lora_rank > 0 && o->hf && !o->merge)
        return lethe_fail(LETHE_ERR_INVALID, "Hugging Face's layout holds a whole model: "
                          "merge the adapter");
    if (o->lora_begin < 0 || (o->lora_end > 0 && o->lora_end <= o->lora_begin))
        return lethe_fail(LETHE_ERR_INVALID, "the LoRA layers %d:%d are not a range of blocks",
                          o->lora_begin, o->lora_end);
    return LETHE_OK;
}

/* Begin writing o->out (lethe/rundir.h) against the run's inputs: the init
 * run and the bases it loads through, the tokenizer, and the corpus files of
 * the list (moby and sotu are names, not paths). */
static lethe_status begin_out(const lethe_gpt_run_cfg *o, lethe_rundir **rd)
{
    enum { MAX_SOURCES = 8 };
    char *src[MAX_SOURCES], *list = strdup(o->data);
    size_t n_src = o->init ? lethe_gpt_dir_sources(o->init, src, MAX_SOURCES) : 0, n = 0;
    size_t cap = n_src + 2;
    for (const char *c = o->data; *c; c++)
        cap += *c == ',';
    const char **in = malloc(sizeof *in * cap);
    lethe_status st = LETHE_OK;
    if (!list || !in) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n_src; i++)
            in[n++] = src[i];
        in[n++] = o->tokenizer;
        for (char *p = list, *end; p; p = end) {
            end = strchr(p, ',');
            if (end)
                *end++ = 0;
            if (strcmp(p, "moby") && strcmp(p, "moby-dick") && strcmp(p, "sotu"))
                in[n++] = p;
        }
        st = lethe_rundir_begin(o->out, o->force, in, n, rd);
    }
    for (size_t i = 0; i < n_src; i++)
        free(src[i]);
    free(list);
    free(in);
    return st;
}

lethe_status lethe_gpt_run(const lethe_gpt_run_cfg *o, lethe_gpt_run_result *out)
{
    lethe_status st = check_cfg(o);
    if (st != LETHE_OK)
        return st;
    lethe_rundir *rd = NULL;
    lethe_corpus *corpus = NULL;
    lethe_tokenizer_t *tok = NULL;
    lethe_gpt *g = NULL;
    lethe_afile *log = NULL;
    cJSON *config = NULL;
    size_t *idx_train = NULL, *idx_val = NULL, n_tr = 0, n_va = 0;
    int32_t *s_train = NULL, *s_val = NULL;
    long n_train = 0, n_val = 0, eot = -1;
    char *config_line = NULL, path[4200], data_hash[17], seed_str[32];
    lethe_gpt_config mc;
    lethe_gpt_train_cfg tc;
    lethe_gpt_run_result res;
    memset(&res, 0, sizeof res);
    double val_frac = isnan(o->val) ? 0.05 : o->val;
    const char *preset = o->preset;
    int hf = o->hf;
    lethe_lora *lora = NULL;
    lethe_bigram_result bg = {NAN, NAN, NAN, 0};
    char *base_abs = NULL;
    if (o->init) {
        st = load_init(o, &g, &tok, &preset);
        if (st == LETHE_OK)
            mc = g->cfg;
    } else {
        st = lethe_gpt_preset(o->preset, &mc);
    }
    if (st == LETHE_OK && o->vocab > 0)
        mc.vocab_size = (int)o->vocab;
    if (st == LETHE_OK)
        st = lethe_corpus_load(o->data, o->limit, &corpus);
    if (st == LETHE_OK) /* the inputs are there: the run directory */
        st = begin_out(o, &rd);
    if (st != LETHE_OK)
        goto done;
    lethe_corpus_hash(corpus, data_hash);

    /* The validation documents; none when they would take every document. */
    idx_train = malloc(sizeof *idx_train * corpus->n);
    idx_val = malloc(sizeof *idx_val * corpus->n);
    if (!idx_train || !idx_val) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < corpus->n; i++) {
        if (is_val(corpus->ids[i], val_frac))
            idx_val[n_va++] = i;
        else
            idx_train[n_tr++] = i;
    }
    if (n_tr == 0) {
        for (size_t i = 0; i < corpus->n; i++)
            idx_train[i] = i;
        n_tr = corpus->n, n_va = 0;
    }

    /* The tokenizer: the checkpoint's, given, or trained on the training documents. */
    if (o->init) {
        /* loaded with the model */
    } else if (o->tokenizer) {
        st = lethe_tokenizer_load_json(o->tokenizer, &tok);
        if (st == LETHE_OK && (long)lethe_tokenizer_vocab_size(tok) != mc.vocab_size)
            st = lethe_fail(LETHE_ERR_INVALID,
                            "%s: the tokenizer has a vocabulary of %zu, the model %d (preset "
                            "%s%s); make the model's vocabulary %zu or give another tokenizer",
                            o->tokenizer, lethe_tokenizer_vocab_size(tok), mc.vocab_size,
                            o->preset, o->vocab > 0 ? " with another vocabulary size" : "",
                            lethe_tokenizer_vocab_size(tok));
    } else {
        const char **texts = malloc(sizeof *texts * n_tr);
        size_t *lens = malloc(sizeof *lens * n_tr);
        static const char *const special[] = {EOT_TEXT};
        lethe_tokenizer_train_opts topts = {LETHE_TOKENIZER_MIN_FREQUENCY, special, 1};
        if (!texts || !lens) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n_tr; i++) {
                texts[i] = corpus->texts[idx_train[i]];
                lens[i] = corpus->lens[idx_train[i]];
            }
            note(o, "training a %d-token BPE tokenizer on %zu documents", mc.vocab_size, n_tr);
            st = lethe_tokenizer_train(texts, lens, n_tr, (size_t)mc.vocab_size, &topts, &tok);
        }
        free(texts);
        free(lens);
        if (st == LETHE_OK && (long)lethe_tokenizer_vocab_size(tok) < mc.vocab_size) {
            note(o, "the text supports %zu tokens only; the model's vocabulary is %zu",
                 lethe_tokenizer_vocab_size(tok), lethe_tokenizer_vocab_size(tok));
            mc.vocab_size = (int)lethe_tokenizer_vocab_size(tok);
        }
    }
    if (st == LETHE_OK && (eot = lethe_gpt_eot(tok)) < 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the tokenizer has no %s token",
                        o->init ? o->init : o->tokenizer ? o->tokenizer : "tokenizer", EOT_TEXT);
    if (st == LETHE_OK)
        st = lethe_gpt_encode_docs(tok, (const char *const *)corpus->texts, corpus->lens,
                                   idx_train, n_tr, (int32_t)eot, &s_train, &n_train);
    if (st == LETHE_OK && n_va)
        st = lethe_gpt_encode_docs(tok, (const char *const *)corpus->texts, corpus->lens,
                                   idx_val, n_va, (int32_t)eot, &s_val, &n_val);
    if (st == LETHE_OK && !g && !(g = lethe_gpt_init(&mc)))
        st = LETHE_ERR_INVALID;
    if (st != LETHE_OK)
        goto done;

    /* The training settings. */
    lethe_gpt_train_defaults(&tc);
    tc.seq = o->seq > 0 ? o->seq : mc.n_positions < tc.seq ? mc.n_positions : tc.seq;
    if (o->batch > 0)
        tc.batch = o->batch;
    if (o->accum > 0)
        tc.accum = o->accum;
    tc.lr = !isnan(o->lr) ? o->lr : !strcmp(preset, "tiny") ? 1e-3f : 6e-4f;
    tc.min_lr = !isnan(o->min_lr) ? o->min_lr : tc.lr / 10;
    if (!isnan(o->weight_decay))
        tc.weight_decay = o->weight_decay;
    if (!isnan(o->clip))
        tc.clip = o->clip;
    if (o->eval_windows > 0)
        tc.eval_windows = o->eval_windows;
    tc.seed = o->seed;
    tc.shift = o->shift;
    tc.quiet = o->quiet;
    long windows = lethe_gpt_windows(n_train, tc.seq);
    if (windows == 0) {
        st = lethe_fail(LETHE_ERR_INVALID,
                        "%s: %ld training tokens, fewer than a window of %d + 1 (shorten the "
                        "windows or give more text)",
                        o->data, n_train, tc.seq);
        goto done;
    }
    if (o->steps > 0) {
        tc.steps = o->steps;
    } else {
        long per_step = (long)tc.batch * tc.accum, epochs = o->epochs > 0 ? o->epochs : 1;
        tc.steps = (epochs * windows + per_step - 1) / per_step;
    }
    tc.warmup = o->warmup >= 0 ? o->warmup : tc.steps / 10 < 100 ? tc.steps / 10 : 100;
    tc.eval_every = o->eval_every >= 0 ? o->eval_every : tc.steps >= 10 ? tc.steps / 10 : 0;
    if (o->lora_rank > 0) {
        lethe_lora_config lc;
        lethe_lora_config_defaults(&lc);
        lc.rank = o->lora_rank;
        if (!isnan(o->lora_alpha))
            lc.alpha = o->lora_alpha;
        if (o->lora_targets)
            lc.targets = o->lora_targets;
        lc.layer_begin = o->lora_begin;
        lc.layer_end = o->lora_end;
        if (lc.layer_end > mc.n_layer) {
            st = lethe_fail(LETHE_ERR_INVALID, "LoRA layers %d:%d: %s has %d blocks (0:%d)",
                            o->lora_begin, o->lora_end, o->init, mc.n_layer, mc.n_layer);
            goto done;
        }
        if (!(base_abs = realpath(o->init, NULL))) {
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot resolve the path", o->init);
            goto done;
        }
        if (!(lora = lethe_lora_init(g, &lc, o->seed))) {
            st = LETHE_ERR_INVALID;
            goto done;
        }
        tc.lora = lora;
    }

    snprintf(path, sizeof path, "%s/log.jsonl", o->out);
    if (!(log = lethe_afile_open(path))) {
        st = LETHE_ERR_IO;
        goto done;
    }
    note(o, "gpt %s%s%s: %ld parameters, vocabulary %d; %zu training documents (%ld tokens), "
         "%zu validation (%ld tokens); %ld steps of %d x %d x %d tokens", preset,
         o->init ? " from " : "", o->init ? o->init : "", g->n_params, mc.vocab_size, n_tr,
         n_train, n_va, n_val, tc.steps, tc.accum, tc.batch, tc.seq);
    /* The bigram baseline, on the validation tokens the model is measured on:
     * the first eval_windows windows. */
    long wv = lethe_gpt_windows(n_val, tc.seq);
    if (wv > tc.eval_windows)
        wv = tc.eval_windows;
    if (wv > 0 && n_train >= LETHE_BIGRAM_MIN_TRAIN) {
        if ((st = lethe_bigram_val_loss(s_train, n_train, s_val, wv * tc.seq + 1, mc.vocab_size,
                                        &bg)) != LETHE_OK)
            goto done;
        fprintf(log->fp, "{\"bigram_val_loss\":%.9g,\"bigram_lambda\":%.9g}\n", bg.val_loss,
                bg.lambda);
        note(o, "bigram baseline: validation loss %.4f (lambda %.2f)", bg.val_loss, bg.lambda);
    }
    if (!o->init)
        lethe_gpt_init_params(g, o->seed);
    st = lethe_gpt_train(g, s_train, n_train, s_val, n_val, &tc, log->fp, &res.train);
    if (st != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    config = make_config(o, preset, &mc, g->n_params, &tc, data_hash, corpus->n, n_tr, n_va,
                         n_train, n_val, eot, val_frac, base_abs, &bg);
    if (st == LETHE_OK && !(config_line = cJSON_PrintUnformatted(config)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(seed_str, sizeof seed_str, "%llu", (unsigned long long)o->seed);
    lethe_st_meta meta[] = {{"model", "gpt"},          {"preset", (char *)preset},
                            {"config", config_line},   {"data", (char *)o->data},
                            {"data_hash", data_hash},  {"seed", seed_str},
                            {"method", o->init ? "finetune" : "train"},
                            {"init", (char *)o->init}};
    size_t n_meta = sizeof meta / sizeof meta[0] - (o->init ? 0 : 1);
    if (lora)
        meta[6].value = (char *)"lora";
    if (st == LETHE_OK && lora)
        st = lethe_lora_save(lora, o->out, base_abs);
    if (st == LETHE_OK && lora && !hf) {
        /* The adapter apart from its base; model.safetensors only when merged
         * (the model holds W0 + s A B after training). */
        snprintf(path, sizeof path, "%s/tokenizer.json", o->out);
        st = lethe_tokenizer_save_json(tok, path);
        snprintf(path, sizeof path, "%s/model.safetensors", o->out);
        if (st == LETHE_OK && o->merge)
            st = lethe_gpt_save(g, path, meta, n_meta);
        else if (st == LETHE_OK && remove(path) != 0 && errno != ENOENT)
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot remove a stale model", path);
        if (st == LETHE_OK)
            st = lethe_json_write(o->out, "config.json", config);
    } else if (st == LETHE_OK && hf) {
        st = lethe_gpt_save_hf(g, tok, o->out, meta, n_meta, config_line);
    } else if (st == LETHE_OK) {
        snprintf(path, sizeof path, "%s/tokenizer.json", o->out);
        st = lethe_tokenizer_save_json(tok, path);
        snprintf(path, sizeof path, "%s/model.safetensors", o->out);
        if (st == LETHE_OK)
            st = lethe_gpt_save(g, path, meta, n_meta);
        if (st == LETHE_OK)
            st = lethe_json_write(o->out, "config.json", config);
    }
    if (st == LETHE_OK && out) {
        snprintf(res.preset, sizeof res.preset, "%s", preset);
        res.n_params = g->n_params;
        res.lora_params = lora ? lora->n_params : 0;
        res.lora_rank = lora ? lora->cfg.rank : 0;
        res.vocab_size = mc.vocab_size;
        snprintf(res.base, sizeof res.base, "%s", base_abs ? base_abs : "");
        res.bigram_val_loss = bg.val_loss;
        *out = res;
    }
done:
    lethe_afile_abort(log);
    lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    free(config_line);
    free(s_train);
    free(s_val);
    free(idx_train);
    free(idx_val);
    lethe_lora_free(lora);
    free(base_abs);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
    lethe_corpus_free(corpus);
    return st;
}
