/* lethe train --model gpt: tokenize a corpus (training a BPE tokenizer when
 * none is given), train a GPT language model (from scratch, or fine-tune one
 * from a lethe run or a Hugging Face GPT-2 directory) and write a run
 * directory with model.safetensors, config.json, log.jsonl and tokenizer.json
 * (or the Hugging Face layout with --format hf). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/corpus.h"
#include "lethe/fileio.h"
#include "lethe/gpt.h"
#include "lethe/gpt_hf.h"
#include "lethe/gpt_train.h"
#include "lethe/lora.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/tokenizer.h"

#define VERB "train"
/* Validation documents: a keyed hash of the id under a fixed seed, so the
 * split belongs to the corpus, not to the run. */
#define STREAM_VAL 0x300000000ull
#define EOT_TEXT "<|endoftext|>"

static void print_usage(FILE *out)
{
    lethe_gpt_train_cfg d;
    lethe_lora_config lc;
    lethe_gpt_train_defaults(&d);
    lethe_lora_config_defaults(&lc);
    fprintf(out,
            "Usage: lethe train --model gpt --preset NAME --data CORPUS --out RUN [options]\n"
            "       lethe train --model gpt --init DIR --data CORPUS --out RUN [options]\n"
            "       lethe train --model gpt --init DIR --lora R --data CORPUS --out RUN [options]\n\n"
            "Train a GPT-2 style language model and write RUN/model.safetensors,\n"
            "RUN/config.json, RUN/log.jsonl and RUN/tokenizer.json. Documents are tokenized\n"
            "and concatenated, each followed by <|endoftext|>; training reads windows of\n"
            "seq + 1 tokens in an order keyed by the seed. A share of the documents (by a\n"
            "keyed hash of the id) is held out for the validation loss. Without\n"
            "--tokenizer, a byte-level BPE tokenizer is trained on the training documents\n"
            "to the model's vocabulary size. With --init DIR training starts from the\n"
            "model of DIR (a lethe run or a Hugging Face GPT-2 directory: fine-tuning), with\n"
            "its architecture and its tokenizer. With --lora R only a LoRA adapter of rank R\n"
            "is trained on the frozen --init model; RUN then holds the adapter apart from\n"
            "the base (adapter_model.safetensors and adapter_config.json, PEFT's layout, and\n"
            "config.json naming the base by its absolute path) instead of model.safetensors,\n"
            "and loading RUN (generate, score, --init) loads the base and merges the\n"
            "adapter. The same options give byte-identical files.\n\n");
    fprintf(out,
            "Options:\n"
            "  --preset NAME      tiny, small or gpt2 (required without --init; with it,\n"
            "                     it must match the checkpoint)\n"
            "  --init DIR         start from the model and tokenizer of DIR, a lethe run or\n"
            "                     a Hugging Face GPT-2 directory (model.safetensors,\n"
            "                     config.json, vocab.json + merges.txt or tokenizer.json)\n"
            "  --format F         the output layout: lethe (default) or hf (Hugging Face's\n"
            "                     GPT-2: transformer.* tensors, its config.json with the\n"
            "                     run's settings under \"lethe\", vocab.json, merges.txt and\n"
            "                     tokenizer.json)\n"
            "  --data CORPUS      moby, sotu, FILE.txt (one document) or FILE.jsonl (one\n"
            "                     {\"text\": ...} object or JSON string per line), or a\n"
            "                     comma-separated list of them (moby,sotu,notes.jsonl)\n"
            "  --out RUN          the run directory to write (created)\n"
            "  --tokenizer FILE   use this tokenizer.json; its vocabulary size must be the\n"
            "                     model's (not with --init)\n"
            "  --vocab N          the model's vocabulary size (default: the preset's; not\n"
            "                     with --init)\n"
            "  --steps N          optimizer steps\n"
            "  --epochs N         passes over the training windows instead (default 1)\n"
            "  --batch B          windows per micro-batch (default %d)\n"
            "  --seq T            tokens per window (default: the preset's positions, at\n"
            "                     most %d)\n"
            "  --accum K          micro-batches per step (default %d)\n"
            "  --lr X             peak learning rate (default 1e-3 for tiny, 6e-4 otherwise)\n"
            "  --min-lr X         final learning rate of the cosine (default lr / 10)\n"
            "  --warmup N         linear warm-up steps (default min(100, steps / 10))\n"
            "  --wd X             AdamW weight decay on 2-D tensors (default %g)\n"
            "  --clip X           clip the global gradient norm to X; 0: off (default %g)\n"
            "  --val F            share of documents held out (default 0.05)\n"
            "  --eval-every N     steps between validations (default steps / 10)\n"
            "  --eval-windows N   validation windows measured (default %d)\n"
            "  --lora R           train a LoRA adapter of rank R only (needs --init)\n"
            "  --lora-alpha A     the adapter's alpha; scale alpha / R (default %g)\n"
            "  --lora-targets L   comma-separated modules: attn.c_attn, attn.c_proj,\n"
            "                     mlp.c_fc, mlp.c_proj, or all (default all)\n"
            "  --lora-layers I:J  adapt blocks I..J-1 only (default every block)\n"
            "  --merge            with --lora, also write model.safetensors with the\n"
            "                     adapter merged in (the run then stands alone)\n"
            "  --seed N           initialisation, adapter and window order (default 0)\n"
            "  --limit N          the first N documents only\n"
            "  --json             print a one-line JSON summary\n"
            "  --quiet            no progress output\n"
            "  -h, --help         show this help\n\n"
            "AdamW betas (%g, %g), eps %g.\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown corpus or\n"
            "preset, an empty corpus, a tokenizer whose vocabulary does not fit, too little\n"
            "text; an --init directory without a checkpoint or tokenizer, with a missing\n"
            "or misshapen tensor, a config.json that does not match its tensors, or a\n"
            "--preset that does not match it; a --lora-layers range outside the model).\n",
            d.batch, d.seq, d.accum, d.weight_decay, d.clip, d.eval_windows, (double)lc.alpha,
            d.beta1, d.beta2, d.eps);
}

enum {
    O_DATA = 256, O_OUT, O_MODEL, O_PRESET, O_TOKENIZER, O_VOCAB, O_STEPS, O_EPOCHS, O_BATCH,
    O_SEQ, O_ACCUM, O_LR, O_MIN_LR, O_WARMUP, O_WD, O_CLIP, O_VAL, O_EVAL_EVERY,
    O_EVAL_WINDOWS, O_SEED, O_LIMIT, O_JSON, O_QUIET, O_INIT, O_FORMAT, O_LORA, O_LORA_ALPHA,
    O_LORA_TARGETS, O_LORA_LAYERS, O_MERGE
};

static const struct option longopts[] = {
    {"data", 1, 0, O_DATA},           {"out", 1, 0, O_OUT},
    {"model", 1, 0, O_MODEL},         {"preset", 1, 0, O_PRESET},
    {"tokenizer", 1, 0, O_TOKENIZER}, {"vocab", 1, 0, O_VOCAB},
    {"steps", 1, 0, O_STEPS},         {"epochs", 1, 0, O_EPOCHS},
    {"batch", 1, 0, O_BATCH},         {"seq", 1, 0, O_SEQ},
    {"accum", 1, 0, O_ACCUM},         {"lr", 1, 0, O_LR},
    {"min-lr", 1, 0, O_MIN_LR},       {"warmup", 1, 0, O_WARMUP},
    {"wd", 1, 0, O_WD},               {"clip", 1, 0, O_CLIP},
    {"val", 1, 0, O_VAL},             {"eval-every", 1, 0, O_EVAL_EVERY},
    {"eval-windows", 1, 0, O_EVAL_WINDOWS}, {"seed", 1, 0, O_SEED},
    {"limit", 1, 0, O_LIMIT},         {"json", 0, 0, O_JSON},
    {"quiet", 0, 0, O_QUIET},         {"init", 1, 0, O_INIT},
    {"format", 1, 0, O_FORMAT},       {"lora", 1, 0, O_LORA},
    {"lora-alpha", 1, 0, O_LORA_ALPHA}, {"lora-targets", 1, 0, O_LORA_TARGETS},
    {"lora-layers", 1, 0, O_LORA_LAYERS}, {"merge", 0, 0, O_MERGE},
    {"help", 0, 0, 'h'},
    {0, 0, 0, 0}};

/* Options as given; -1 / NAN / NULL where not given. */
typedef struct opts {
    const char *data, *out, *model, *preset, *tokenizer, *init, *format, *lora_targets;
    long vocab, steps, epochs, batch, seq, accum, warmup, eval_every, eval_windows, seed, limit;
    long lora, lora_begin, lora_end;
    double lr, min_lr, wd, clip, val, lora_alpha;
    unsigned lora_mask;
    int json, quiet, merge;
} opts;

int cmd_train_wants_gpt(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = !strcmp(argv[i], "--model") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--model=", 8)        ? argv[i] + 8
                                                                  : NULL;
        if (v && !strcmp(v, "gpt"))
            return 1;
    }
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.vocab = -1, .steps = -1, .epochs = -1, .batch = -1, .seq = -1, .accum = -1,
                .warmup = -1, .eval_every = -1, .eval_windows = -1, .seed = 0, .limit = 0,
                .lr = NAN, .min_lr = NAN, .wd = NAN, .clip = NAN, .val = NAN, .lora = 0,
                .lora_begin = 0, .lora_end = 0, .lora_alpha = NAN};
    cli_long_opt ints[] = {
        {O_VOCAB, &o->vocab, 257, LETHE_TOKENIZER_MAX_ID}, {O_STEPS, &o->steps, 1, 1L << 40},
        {O_EPOCHS, &o->epochs, 1, 1000000},  {O_BATCH, &o->batch, 1, 1 << 16},
        {O_SEQ, &o->seq, 1, 1 << 16},        {O_ACCUM, &o->accum, 1, 1 << 16},
        {O_WARMUP, &o->warmup, 0, 1L << 40}, {O_EVAL_EVERY, &o->eval_every, 0, 1L << 40},
        {O_EVAL_WINDOWS, &o->eval_windows, 1, 1 << 20}, {O_SEED, &o->seed, 0, 1L << 53},
        {O_LIMIT, &o->limit, 1, 1L << 40}, {O_LORA, &o->lora, 1, 1 << 16}};
    cli_real_opt reals[] = {
        {O_LR, &o->lr, 1e-12, 100}, {O_MIN_LR, &o->min_lr, 0, 100}, {O_WD, &o->wd, 0, 100},
        {O_CLIP, &o->clip, 0, 1e30}, {O_VAL, &o->val, 0, 0.9},
        {O_LORA_ALPHA, &o->lora_alpha, 1e-6, 1e6}};
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option(VERB, longopts, c, optarg, ints,
                                      sizeof ints / sizeof ints[0], reals,
                                      sizeof reals / sizeof reals[0]);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_DATA: o->data = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_TOKENIZER: o->tokenizer = optarg; break;
        case O_INIT: o->init = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case O_LORA_TARGETS:
            o->lora_targets = optarg;
            if (lethe_lora_parse_targets(optarg, &o->lora_mask) != LETHE_OK)
                return cli_usage(VERB, "--lora-targets: %s", lethe_error_detail());
            break;
        case O_LORA_LAYERS: {
            char *end = NULL, *end2 = NULL;
            long a = strtol(optarg, &end, 10), b = -1;
            if (end != optarg && *end == ':')
                b = strtol(end + 1, &end2, 10);
            if (end == optarg || *end != ':' || !end2 || end2 == end + 1 || *end2 || a < 0 ||
                b <= a || b > 1 << 20)
                return cli_usage(VERB, "--lora-layers needs I:J with 0 <= I < J (blocks I..J-1), "
                                 "not '%s'", optarg);
            o->lora_begin = a, o->lora_end = b;
            break;
        }
        case O_MERGE: o->merge = 1; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_usage(VERB, "unknown or incomplete option (for --model gpt)");
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!o->data || !o->out)
        return cli_usage(VERB, "--data and --out are required");
    if (!o->preset && !o->init)
        return cli_usage(VERB, "--model gpt needs --preset tiny, small or gpt2 (or --init DIR)");
    if (o->init && o->tokenizer)
        return cli_usage(VERB, "--init takes the tokenizer of its checkpoint: drop --tokenizer");
    if (o->init && o->vocab > 0)
        return cli_usage(VERB, "--init takes the vocabulary of its checkpoint: drop --vocab");
    if (o->format && strcmp(o->format, "lethe") && strcmp(o->format, "hf"))
        return cli_usage(VERB, "--format needs lethe or hf, not '%s'", o->format);
    if (o->steps > 0 && o->epochs > 0)
        return cli_usage(VERB, "give --steps or --epochs, not both");
    if (o->lora && !o->init)
        return cli_usage(VERB, "--lora trains an adapter on a base model: give --init DIR (a "
                         "lethe run or a Hugging Face GPT-2 directory)");
    if (!o->lora && (o->lora_targets || o->lora_end > 0 || !isnan(o->lora_alpha) || o->merge))
        return cli_usage(VERB, "--lora-alpha, --lora-targets, --lora-layers and --merge need "
                         "--lora R");
    if (o->lora && o->format && !strcmp(o->format, "hf") && !o->merge)
        return cli_usage(VERB, "--format hf with --lora writes the merged model: add --merge");
    return 0;
}

/* Whether document id goes to validation. */
static int is_val(uint64_t id, double frac)
{
    if (frac <= 0)
        return 0;
    double u = (double)(lethe_rng_hash(0, STREAM_VAL, id) >> 11) * 0x1.0p-53;
    return u < frac;
}

/* A float as its shortest decimal, so config.json reads 0.001 and not
 * 0.0010000000474974513. */
static double fl(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

static cJSON *make_config(const opts *o, const char *preset, const lethe_gpt_config *mc,
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
    cJSON_AddStringToObject(j, "format", o->format ? o->format : "lethe");
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
    cJSON_AddNumberToObject(j, "lr", fl(tc->lr));
    cJSON_AddNumberToObject(j, "min_lr", fl(tc->min_lr));
    cJSON_AddStringToObject(j, "sched", "cosine");
    cJSON_AddNumberToObject(j, "warmup", (double)tc->warmup);
    cJSON_AddNumberToObject(j, "weight_decay", fl(tc->weight_decay));
    cJSON_AddStringToObject(j, "weight_decay_on", "2-D tensors");
    cJSON_AddNumberToObject(j, "beta1", fl(tc->beta1));
    cJSON_AddNumberToObject(j, "beta2", fl(tc->beta2));
    cJSON_AddNumberToObject(j, "eps", fl(tc->eps));
    cJSON_AddNumberToObject(j, "clip", fl(tc->clip));
    cJSON_AddNumberToObject(j, "eval_every", (double)tc->eval_every);
    cJSON_AddNumberToObject(j, "eval_windows", tc->eval_windows);
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
        cJSON_AddNumberToObject(lj, "alpha", fl(l->cfg.alpha));
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

/* Write text + "\n" atomically to dir/name. */
static lethe_status write_json(const char *dir, const char *name, const cJSON *j)
{
    char path[4200];
    char *pretty = cJSON_Print(j);
    if (!pretty)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t len = strlen(pretty);
    pretty[len] = '\n'; /* replaces the NUL; written without it */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lethe_status st = lethe_file_write_atomic(path, pretty, len + 1);
    free(pretty);
    return st;
}

static int same_config(const lethe_gpt_config *a, const lethe_gpt_config *b)
{
    return a->vocab_size == b->vocab_size && a->n_positions == b->n_positions &&
           a->n_embd == b->n_embd && a->n_layer == b->n_layer && a->n_head == b->n_head;
}

/* The model and tokenizer of --init DIR into *g and *tok, and the preset
 * name: --preset (which must match the checkpoint), else the preset the
 * checkpoint matches, else "custom". */
static lethe_status load_init(const opts *o, lethe_gpt **g, lethe_tokenizer_t **tok,
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
                        "vocab.json + merges.txt), which --init needs", o->init);
    } else if (o->preset) {
        st = lethe_gpt_preset(o->preset, &p);
        if (st == LETHE_OK && !same_config(&p, c))
            st = lethe_fail(LETHE_ERR_INVALID,
                            "--preset %s (vocab_size %d, n_positions %d, n_embd %d, n_layer %d, "
                            "n_head %d) does not match %s (%d, %d, %d, %d, %d); drop --preset",
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

int cmd_train_gpt(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
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
    lethe_gpt_train_result res;
    double val_frac = isnan(o.val) ? 0.05 : o.val;
    const char *preset = o.preset;
    int hf = o.format && !strcmp(o.format, "hf");
    lethe_lora *lora = NULL;
    lethe_bigram_result bg = {NAN, NAN, NAN, 0};
    char *base_abs = NULL;
    lethe_status st;
    if (o.init) {
        st = load_init(&o, &g, &tok, &preset);
        if (st == LETHE_OK)
            mc = g->cfg;
    } else {
        st = lethe_gpt_preset(o.preset, &mc);
    }
    if (st == LETHE_OK && o.vocab > 0)
        mc.vocab_size = (int)o.vocab;
    if (st == LETHE_OK)
        st = lethe_corpus_load(o.data, o.limit, &corpus);
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
    if (o.init) {
        /* loaded with the model */
    } else if (o.tokenizer) {
        st = lethe_tokenizer_load_json(o.tokenizer, &tok);
        if (st == LETHE_OK && (long)lethe_tokenizer_vocab_size(tok) != mc.vocab_size)
            st = lethe_fail(LETHE_ERR_INVALID,
                            "%s: the tokenizer has a vocabulary of %zu, the model %d (preset "
                            "%s%s); give --vocab %zu or another tokenizer",
                            o.tokenizer, lethe_tokenizer_vocab_size(tok), mc.vocab_size,
                            o.preset, o.vocab > 0 ? " with --vocab" : "",
                            lethe_tokenizer_vocab_size(tok));
    } else {
        const char **texts = malloc(sizeof *texts * n_tr);
        size_t *lens = malloc(sizeof *lens * n_tr);
        static const char *const special[] = {EOT_TEXT};
        lethe_tokenizer_train_opts topts = {2, special, 1};
        if (!texts || !lens) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < n_tr; i++) {
                texts[i] = corpus->texts[idx_train[i]];
                lens[i] = corpus->lens[idx_train[i]];
            }
            if (!o.quiet)
                fprintf(stderr, "training a %d-token BPE tokenizer on %zu documents\n",
                        mc.vocab_size, n_tr);
            st = lethe_tokenizer_train(texts, lens, n_tr, (size_t)mc.vocab_size, &topts, &tok);
        }
        free(texts);
        free(lens);
        if (st == LETHE_OK && (long)lethe_tokenizer_vocab_size(tok) < mc.vocab_size) {
            if (!o.quiet)
                fprintf(stderr,
                        "the text supports %zu tokens only; the model's vocabulary is %zu\n",
                        lethe_tokenizer_vocab_size(tok), lethe_tokenizer_vocab_size(tok));
            mc.vocab_size = (int)lethe_tokenizer_vocab_size(tok);
        }
    }
    if (st == LETHE_OK && (eot = lethe_gpt_eot(tok)) < 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the tokenizer has no %s token",
                        o.init ? o.init : o.tokenizer ? o.tokenizer : "tokenizer", EOT_TEXT);
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
    tc.seq = o.seq > 0 ? (int)o.seq : mc.n_positions < tc.seq ? mc.n_positions : tc.seq;
    if (o.batch > 0)
        tc.batch = (int)o.batch;
    if (o.accum > 0)
        tc.accum = (int)o.accum;
    tc.lr = !isnan(o.lr) ? (float)o.lr : !strcmp(preset, "tiny") ? 1e-3f : 6e-4f;
    tc.min_lr = !isnan(o.min_lr) ? (float)o.min_lr : tc.lr / 10;
    if (!isnan(o.wd))
        tc.weight_decay = (float)o.wd;
    if (!isnan(o.clip))
        tc.clip = (float)o.clip;
    if (o.eval_windows > 0)
        tc.eval_windows = (int)o.eval_windows;
    tc.seed = (uint64_t)o.seed;
    tc.quiet = o.quiet;
    long windows = lethe_gpt_windows(n_train, tc.seq);
    if (windows == 0) {
        st = lethe_fail(LETHE_ERR_INVALID,
                        "%s: %ld training tokens, fewer than --seq %d + 1 (lower --seq or "
                        "give more text)",
                        o.data, n_train, tc.seq);
        goto done;
    }
    if (o.steps > 0) {
        tc.steps = o.steps;
    } else {
        long per_step = (long)tc.batch * tc.accum, epochs = o.epochs > 0 ? o.epochs : 1;
        tc.steps = (epochs * windows + per_step - 1) / per_step;
    }
    tc.warmup = o.warmup >= 0 ? o.warmup : tc.steps / 10 < 100 ? tc.steps / 10 : 100;
    tc.eval_every = o.eval_every >= 0 ? o.eval_every : tc.steps >= 10 ? tc.steps / 10 : 0;
    if (o.lora) {
        lethe_lora_config lc;
        lethe_lora_config_defaults(&lc);
        lc.rank = (int)o.lora;
        if (!isnan(o.lora_alpha))
            lc.alpha = (float)o.lora_alpha;
        if (o.lora_mask)
            lc.targets = o.lora_mask;
        lc.layer_begin = (int)o.lora_begin;
        lc.layer_end = (int)o.lora_end;
        if (lc.layer_end > mc.n_layer) {
            st = lethe_fail(LETHE_ERR_INVALID, "--lora-layers %ld:%ld: %s has %d blocks (0:%d)",
                            o.lora_begin, o.lora_end, o.init, mc.n_layer, mc.n_layer);
            goto done;
        }
        if (!(base_abs = realpath(o.init, NULL))) {
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot resolve the path", o.init);
            goto done;
        }
        if (!(lora = lethe_lora_init(g, &lc, (uint64_t)o.seed))) {
            st = LETHE_ERR_INVALID;
            goto done;
        }
        tc.lora = lora;
    }

    if ((st = lethe_run_mkdir(o.out)) != LETHE_OK)
        goto done;
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    if (!(log = lethe_afile_open(path))) {
        st = LETHE_ERR_IO;
        goto done;
    }
    if (!o.quiet)
        fprintf(stderr,
                "gpt %s%s%s: %ld parameters, vocabulary %d; %zu training documents (%ld "
                "tokens), %zu validation (%ld tokens); %ld steps of %d x %d x %d tokens\n",
                preset, o.init ? " from " : "", o.init ? o.init : "", g->n_params,
                mc.vocab_size, n_tr, n_train, n_va, n_val, tc.steps, tc.accum, tc.batch, tc.seq);
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
        if (!o.quiet)
            fprintf(stderr, "bigram baseline: validation loss %.4f (lambda %.2f)\n", bg.val_loss,
                    bg.lambda);
    }
    if (!o.init)
        lethe_gpt_init_params(g, (uint64_t)o.seed);
    st = lethe_gpt_train(g, s_train, n_train, s_val, n_val, &tc, log->fp, &res);
    if (st != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    config = make_config(&o, preset, &mc, g->n_params, &tc, data_hash, corpus->n, n_tr, n_va,
                         n_train, n_val, eot, val_frac, base_abs, &bg);
    if (st == LETHE_OK && !(config_line = cJSON_PrintUnformatted(config)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(seed_str, sizeof seed_str, "%ld", o.seed);
    lethe_st_meta meta[] = {{"model", "gpt"},          {"preset", (char *)preset},
                            {"config", config_line},   {"data", (char *)o.data},
                            {"data_hash", data_hash},  {"seed", seed_str},
                            {"method", o.init ? "finetune" : "train"},
                            {"init", (char *)o.init}};
    size_t n_meta = sizeof meta / sizeof meta[0] - (o.init ? 0 : 1);
    if (lora)
        meta[6].value = (char *)"lora";
    if (st == LETHE_OK && lora)
        st = lethe_lora_save(lora, o.out, base_abs);
    if (st == LETHE_OK && lora && !hf) {
        /* The adapter apart from its base; model.safetensors only with --merge
         * (the model holds W0 + s A B after training). */
        snprintf(path, sizeof path, "%s/tokenizer.json", o.out);
        st = lethe_tokenizer_save_json(tok, path);
        snprintf(path, sizeof path, "%s/model.safetensors", o.out);
        if (st == LETHE_OK && o.merge)
            st = lethe_gpt_save(g, path, meta, n_meta);
        else if (st == LETHE_OK && remove(path) != 0 && errno != ENOENT)
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot remove a stale model", path);
        if (st == LETHE_OK)
            st = write_json(o.out, "config.json", config);
    } else if (st == LETHE_OK && hf) {
        st = lethe_gpt_save_hf(g, tok, o.out, meta, n_meta, config_line);
    } else if (st == LETHE_OK) {
        snprintf(path, sizeof path, "%s/tokenizer.json", o.out);
        st = lethe_tokenizer_save_json(tok, path);
        snprintf(path, sizeof path, "%s/model.safetensors", o.out);
        if (st == LETHE_OK)
            st = lethe_gpt_save(g, path, meta, n_meta);
        if (st == LETHE_OK)
            st = write_json(o.out, "config.json", config);
    }
    if (st != LETHE_OK)
        goto done;
    double tps = res.seconds > 0 ? (double)res.tokens / res.seconds : 0;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", o.out);
        cJSON_AddStringToObject(j, "preset", preset);
        cJSON_AddNumberToObject(j, "n_params", (double)g->n_params);
        if (lora)
            cJSON_AddNumberToObject(j, "lora_params", (double)lora->n_params);
        cJSON_AddNumberToObject(j, "vocab_size", mc.vocab_size);
        cJSON_AddNumberToObject(j, "steps", (double)res.steps);
        cJSON_AddNumberToObject(j, "tokens", (double)res.tokens);
        cJSON_AddNumberToObject(j, "seconds", res.seconds);
        cJSON_AddNumberToObject(j, "tokens_per_second", tps);
        cJSON_AddNumberToObject(j, "first_loss", res.first_loss);
        cJSON_AddNumberToObject(j, "train_loss", res.last_loss);
        if (isnan(res.val_loss))
            cJSON_AddNullToObject(j, "val_loss");
        else
            cJSON_AddNumberToObject(j, "val_loss", res.val_loss);
        if (isnan(bg.val_loss))
            cJSON_AddNullToObject(j, "bigram_val_loss");
        else
            cJSON_AddNumberToObject(j, "bigram_val_loss", bg.val_loss);
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("trained gpt %s (%ld parameters)%s%s on %s: %ld steps, %ld tokens, %.1f s "
               "(%.0f tokens/s)\n",
               preset, g->n_params, o.init ? " from " : "", o.init ? o.init : "", o.data,
               res.steps, res.tokens, res.seconds, tps);
        printf("  loss %.4f -> %.4f", res.first_loss, res.last_loss);
        if (!isnan(res.val_loss))
            printf(", validation %.4f", res.val_loss);
        if (!isnan(bg.val_loss))
            printf(" (bigram baseline %.4f)", bg.val_loss);
        if (lora)
            printf("\nwrote %s/adapter_model.safetensors, adapter_config.json (LoRA rank %d, "
                   "%ld parameters, base %s)%s, config.json, log.jsonl, tokenizer.json\n",
                   o.out, lora->cfg.rank, lora->n_params, base_abs,
                   o.merge ? ", model.safetensors (merged)" : "");
        else
            printf("\nwrote %s/model.safetensors, config.json, log.jsonl, tokenizer.json%s\n",
                   o.out, hf ? " (Hugging Face's layout; vocab.json, merges.txt when they can "
                               "hold the tokenizer)" : "");
    }
done:
    lethe_afile_abort(log);
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
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
}
