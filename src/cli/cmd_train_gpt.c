/* lethe train --model gpt: tokenize a corpus (training a BPE tokenizer when
 * none is given), train a GPT language model (from scratch, or fine-tune one
 * from a lethe run or a Hugging Face GPT-2 directory) and write a run
 * directory with model.safetensors, config.json, log.jsonl and tokenizer.json
 * (or the Hugging Face layout with --format hf). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/gpt_train.h"
#include "lethe/lora.h"
#include "lethe/tokenizer.h"

#define VERB "train"

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
            "  --out RUN          the run directory to write (created; an existing\n"
            "                     non-empty RUN is refused, as is one inside --init or\n"
            "                     around an input)\n"
            "  --force            write into an existing RUN, replacing its files\n"
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
            "  --shift            start each epoch's windows at a keyed offset, so text is\n"
            "                     learnt at every position, not at one (for memorisation)\n"
            "  --limit N          the first N documents only\n"
            "  --json             print a one-line JSON summary\n"
            "  --quiet            no progress or notes on stderr (errors still)\n"
            "  -h, --help         show this help\n\n"
            "AdamW betas (%g, %g), eps %g.\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown corpus or\n"
            "preset, an empty corpus, a tokenizer whose vocabulary does not fit, too little\n"
            "text; an --init directory without a checkpoint or tokenizer, with a missing\n"
            "or misshapen tensor, a config.json that does not match its tensors, or a\n"
            "--preset that does not match it; a --lora-layers range outside the model; an\n"
            "existing RUN without --force, a RUN inside or around an input). A run that\n"
            "fails or is interrupted (SIGINT, SIGTERM) leaves no directory it created.\n",
            d.batch, d.seq, d.accum, d.weight_decay, d.clip, d.eval_windows, (double)lc.alpha,
            d.beta1, d.beta2, d.eps);
}

enum {
    O_DATA = 256, O_OUT, O_MODEL, O_PRESET, O_TOKENIZER, O_VOCAB, O_STEPS, O_EPOCHS, O_BATCH,
    O_SEQ, O_ACCUM, O_LR, O_MIN_LR, O_WARMUP, O_WD, O_CLIP, O_VAL, O_EVAL_EVERY,
    O_EVAL_WINDOWS, O_SEED, O_LIMIT, O_JSON, O_QUIET, O_INIT, O_FORMAT, O_LORA, O_LORA_ALPHA,
    O_LORA_TARGETS, O_LORA_LAYERS, O_MERGE, O_FORCE, O_SHIFT
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
    {"force", 0, 0, O_FORCE},         {"shift", 0, 0, O_SHIFT},
    {"help", 0, 0, 'h'},
    {0, 0, 0, 0}};

/* Options as given; -1 / NAN / NULL where not given. */
typedef struct opts {
    const char *data, *out, *model, *preset, *tokenizer, *init, *format, *lora_targets;
    long vocab, steps, epochs, batch, seq, accum, warmup, eval_every, eval_windows, seed, limit;
    long lora, lora_begin, lora_end;
    double lr, min_lr, wd, clip, val, lora_alpha;
    unsigned lora_mask;
    int json, quiet, merge, force, shift;
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
    cli_getopt_begin();
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
        case O_FORCE: o->force = 1; break;
        case O_SHIFT: o->shift = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, longopts);
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

static void note(void *ctx, const char *line)
{
    fprintf(ctx, "%s\n", line);
}

static int prepare(int argc, char **argv, lethe_gpt_run_cfg *out, int *json)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    *json = o.json;
    lethe_gpt_run_cfg run;
    lethe_gpt_run_defaults(&run);
    run.data = o.data;
    run.out = o.out;
    run.force = o.force;
    run.preset = o.preset;
    run.init = o.init;
    run.tokenizer = o.tokenizer;
    run.hf = o.format && !strcmp(o.format, "hf");
    run.vocab = o.vocab;
    run.steps = o.steps;
    run.epochs = o.epochs;
    run.batch = (int)o.batch;
    run.seq = (int)o.seq;
    run.accum = (int)o.accum;
    run.lr = (float)o.lr;
    run.min_lr = (float)o.min_lr;
    run.weight_decay = (float)o.wd;
    run.clip = (float)o.clip;
    run.warmup = o.warmup;
    run.eval_every = o.eval_every;
    run.eval_windows = (int)o.eval_windows;
    run.val = o.val;
    run.seed = (uint64_t)o.seed;
    run.shift = o.shift;
    run.limit = o.limit;
    run.lora_rank = (int)o.lora;
    run.lora_alpha = (float)o.lora_alpha;
    run.lora_targets = o.lora_mask;
    run.lora_begin = (int)o.lora_begin;
    run.lora_end = (int)o.lora_end;
    run.merge = o.merge;
    run.quiet = o.quiet;
    if (!o.quiet)
        run.note = note, run.note_ctx = stderr;
    *out = run;
    return 0;
}

static void report(FILE *out, const lethe_gpt_run_cfg *run, int json,
                   const lethe_gpt_run_result *res)
{
    const lethe_gpt_train_result *tr = &res->train;
    double tps = tr->seconds > 0 ? (double)tr->tokens / tr->seconds : 0;
    if (json) {
        cJSON *j = lethe_gpt_run_result_json(run, res);
        char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
        fprintf(out, "%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
        return;
    }
    fprintf(out, "trained gpt %s (%ld parameters)%s%s on %s: %ld steps, %ld tokens, %.1f s "
            "(%.0f tokens/s)\n", res->preset, res->n_params, run->init ? " from " : "",
            run->init ? run->init : "", run->data, tr->steps, tr->tokens, tr->seconds, tps);
    fprintf(out, "  loss %.4f -> %.4f", tr->first_loss, tr->last_loss);
    if (!isnan(tr->val_loss))
        fprintf(out, ", validation %.4f", tr->val_loss);
    if (!isnan(res->bigram_val_loss))
        fprintf(out, " (bigram baseline %.4f)", res->bigram_val_loss);
    if (res->lora_rank)
        fprintf(out, "\nwrote %s/adapter_model.safetensors, adapter_config.json (LoRA rank %d, "
                "%ld parameters, base %s)%s, config.json, log.jsonl, tokenizer.json\n",
                run->out, res->lora_rank, res->lora_params, res->base,
                run->merge ? ", model.safetensors (merged)" : "");
    else
        fprintf(out, "\nwrote %s/model.safetensors, config.json, log.jsonl, tokenizer.json%s\n",
                run->out, run->hf ? " (Hugging Face's layout; vocab.json, merges.txt when they "
                                    "can hold the tokenizer)" : "");
}

int cmd_train_gpt(int argc, char **argv)
{
    lethe_gpt_run_cfg run;
    int json = 0;
    int rc = prepare(argc, argv, &run, &json);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_gpt_run_result res;
    lethe_status st = lethe_gpt_run(&run, &res);
    if (st != LETHE_OK)
        return cli_report_out(VERB, st);
    report(stdout, &run, json, &res);
    return CLI_EXIT_OK;
}
