/* lethe unlearn on a GPT run: the language-model unlearning methods of
 * OpenUnlearning and MUSE (lethe/lm_unlearn.h) on TOFU-layout
 * question-answer files or raw text (MUSE's layout), and plain fine-tuning
 * on such a file (sft), each writing a new lethe GPT run. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cmd_lm.h"
#include "lethe/json.h"
#include "lethe/lm_unlearn.h"
#include "lethe/safetensors.h"

#define VERB "unlearn"
static void print_usage(FILE *out)
{
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    int sft_epochs = lethe_lm_method_def_of(LETHE_LM_SFT)->epochs;
    fprintf(out,
            "Usage: lethe unlearn --run GPT_RUN --method NAME --forget FILE.json --out RUN2\n"
            "                     [--retain FILE.json] [--idk FILE.jsonl] [options]\n"
            "       lethe unlearn --list-lm\n\n"
            "Make the GPT model of GPT_RUN (a lethe GPT run or a Hugging Face GPT-2\n"
            "directory) forget the question-answer pairs of FILE.json (TOFU's layout: JSON\n"
            "Lines with \"question\" and \"answer\", e.g. forget10.json of 'lethe data make\n"
            "authors') with a method of OpenUnlearning or MUSE, and write RUN2 as a lethe GPT\n"
            "run (model.safetensors, config.json recording the method, its settings, the\n"
            "source run and the data files, log.jsonl with one line per step,\n"
            "tokenizer.json) that generate, score and eval tofu read. Pairs are laid out as\n"
            "\"Question: Q\\nAnswer:\" + \" A\" + <|endoftext|>; the answer tokens are the\n"
            "targets. Methods with a retain term need --retain (e.g. retain90.json); idknll\n"
            "and idkdpo need --idk (idontknow.jsonl: one refusal per line), from which each\n"
            "forget question gets a refusal drawn by a keyed hash of the seed and its row.\n"
            "--method sft fine-tunes on the pairs of --forget instead (NLL descent on the\n"
            "answer tokens): it trains TOFU's target (on full.json) and oracles (on\n"
            "retainXX.json). The same options give byte-identical files.\n\n"
            "Raw text (MUSE's layout) is read as well: a FILE.jsonl of documents (one a line,\n"
            "{\"text\": ...} or a JSON string) or a FILE.txt (one document). The documents\n"
            "are concatenated, each closed by <|endoftext|>, and cut into windows of the\n"
            "model's context (the last padded); every next token is a target, and the NLL\n"
            "reported is over the windows' tokens. Each file's format is told by its\n"
            "content (a first line with \"text\", or a .txt name) unless --format says it.\n"
            "Every method but idknll and idkdpo (which replace answers by refusals) runs on\n"
            "raw text; those two exit 3.\n\n");
    fprintf(out,
            "Options:\n"
            "  --run DIR          the GPT run to start from\n"
            "  --method NAME      see --list-lm (ga, graddiff, npo, simnpo, idknll, idkdpo,\n"
            "                     rmu, undial, wga, satimp, ceu, taskvector; ga_gdr, ga_klr,\n"
            "                     npo_gdr, npo_klr; sft)\n"
            "  --forget FILE      the pairs or text to forget (with sft: to fine-tune on)\n"
            "  --retain FILE      the retain pairs or text (each forget pair or window is\n"
            "                     paired with a random one)\n"
            "  --idk FILE         refusals, one per line (plain text or JSON strings)\n"
            "  --format F         auto (default: each file by its content), qa (question-\n"
            "                     answer pairs) or text (raw text, cut into windows)\n"
            "  --out RUN2         the run directory to write (created; an existing\n"
            "                     non-empty RUN2 is refused, as is one inside GPT_RUN or\n"
            "                     around an input)\n"
            "  --force            write into an existing RUN2, replacing its files\n"
            "  --epochs N         passes over the forget set (default %d; sft %d)\n"
            "  --batch N          forget pairs per step (default %d)\n"
            "  --lr X             peak learning rate (default %g)\n"
            "  --wd X             AdamW weight decay on 2-D tensors (default %g)\n"
            "  --warmup N         linear warm-up steps (default one epoch; none in a run of\n"
            "                     one step), then linear decay\n"
            "  --clip X           max global gradient norm; 0: none (default %g)\n"
            "  --seed N           batch order, retain pairing, refusals, RMU's vector,\n"
            "                     the adapter (default 0)\n"
            "  --gamma X          weight of the forget term\n"
            "  --alpha X          weight of the retain term (taskvector: its alpha)\n"
            "  --beta X           the method's beta (npo, simnpo, idkdpo; undial's drop)\n"
            "  --retain-loss L    nll or kl (rmu: embed)\n"
            "  --lora R           train a LoRA adapter of rank R only; RUN2 holds the merged\n"
            "                     model (not with taskvector)\n"
            "  --list-lm          list the methods with their defaults\n"
            "  --json             print a JSON summary\n"
            "  --quiet            no progress or notes on stderr (errors still)\n"
            "  -h, --help         show this help\n\n"
            "AdamW betas (%g, %g), eps %g (OpenUnlearning's TOFU run).\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error (a missing option, --retain or --idk\n"
            "missing where the method needs it), 3 bad input (an unknown method, a missing\n"
            "or malformed file, a pair longer than the model's context, raw text for idknll\n"
            "or idkdpo, an existing RUN2 without --force, a RUN2 inside or around an\n"
            "input). A run that fails or is\n"
            "interrupted (SIGINT, SIGTERM) leaves no directory it created.\n",
            s.epochs, sft_epochs, s.batch, (double)s.lr, (double)s.weight_decay,
            (double)s.clip, (double)s.beta1, (double)s.beta2, (double)s.eps);
}

static void list_lm(void)
{
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    printf("%-11s %-11s %-5s %-5s %-6s %-3s %-30s %s\n", "METHOD", "INTENT", "GAMMA", "ALPHA",
           "RETAIN", "REF", "SETTINGS", "DESCRIPTION");
    for (size_t i = 0; i < lethe_lm_methods_count(); i++) {
        const lethe_lm_method_def *def = lethe_lm_methods_at(i);
        lethe_lm_cfg c;
        char extra[96], alpha[32];
        lethe_lm_defaults(def->id, &c);
        lethe_lm_settings_text(&c, extra, sizeof extra);
        if (def->epochs > 0)
            snprintf(extra, sizeof extra, "epochs %d", def->epochs);
        /* alpha weighs the retain term; Task Vector and WHP use it as their own alpha */
        if (c.retain == LETHE_LM_RETAIN_NONE && !(def->needs & LETHE_LM_OWN_ALPHA))
            snprintf(alpha, sizeof alpha, "-");
        else
            snprintf(alpha, sizeof alpha, "%g", c.alpha);
        printf("%-11s %-11s %-5g %-5s %-6s %-3s %-30s %s\n", def->name, def->intent, c.gamma, alpha,
               lethe_lm_retain_name(c.retain), lethe_lm_needs_reference(&c) ? "yes" : "no",
               extra, def->description);
    }
    printf("\nvariants: ga_gdr = graddiff, ga_klr = graddiff with KL retain, npo_gdr = npo, "
           "npo_klr = npo with KL retain.\n"
           "schedule (OpenUnlearning's TOFU run): epochs %d, batch %d, lr %g, weight decay %g, "
           "warm-up one epoch, linear decay, clip %g, AdamW (%g, %g), eps %g.\n"
           "idknll and idkdpo read refusals (--idk); sft fine-tunes on the --forget pairs.\n"
           "intent: what the method means to do (removal: erase the knowledge from the "
           "weights; suppression: block its expression); lethe audit tests it.\n"
           "whp is not stored as a model: train the reinforced model with --method sft on the "
           "forget set and measure it with lethe eval tofu --whp (docs/lm-unlearning.md).\n",
           s.epochs, s.batch, (double)s.lr, (double)s.weight_decay, (double)s.clip,
           (double)s.beta1, (double)s.beta2, (double)s.eps);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Whether dir holds a GPT model: config.json says "model": "gpt" or has
 * Hugging Face's model_type; without config.json, a LoRA adapter or a
 * model.safetensors with GPT-2's token embedding. */
static int is_gpt_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (file_exists(path)) {
        cJSON *j = NULL;
        if (lethe_json_read(path, &j) != LETHE_OK)
            return 0;
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
        int yes = (model && !strcmp(model, "gpt")) ||
                  cJSON_GetObjectItemCaseSensitive(j, "model_type") != NULL;
        cJSON_Delete(j);
        return yes;
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (file_exists(path))
        return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lethe_safetensors *st = NULL;
    if (!file_exists(path) || lethe_safetensors_open(path, &st) != LETHE_OK)
        return 0;
    int yes = lethe_safetensors_find(st, "wte.weight") ||
              lethe_safetensors_find(st, "transformer.wte.weight");
    lethe_safetensors_free(st);
    return yes;
}

int cmd_unlearn_lm_wants(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--list-lm"))
            return 1;
    for (int i = 1; i < argc; i++) {
        const char *v = !strcmp(argv[i], "--run") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--run=", 6)        ? argv[i] + 6
                                                                : NULL;
        if (v)
            return is_gpt_dir(v);
    }
    return 0;
}

enum {
    O_RUN = 256, O_METHOD, O_FORGET, O_RETAIN, O_IDK, O_OUT, O_EPOCHS, O_BATCH, O_LR, O_WD,
    O_WARMUP, O_CLIP, O_SEED, O_BETA, O_GAMMA, O_ALPHA, O_RETAIN_LOSS, O_LORA, O_LIST, O_JSON,
    O_QUIET, O_FORCE, O_FORMAT
};

typedef struct opts {
    const char *run, *method, *forget, *retain, *idk, *out, *format;
    lethe_lm_overrides ov;
    long seed, lora;
    int json, quiet, force;
} opts;

/* 0: go on; -1: done (help or list), exit 0; > 0: an exit code. Messages
 * start with `verb`; need_files: the run, method, forget pairs and output
 * are required. */
static int parse(const char *verb, int argc, char **argv, opts *o, int need_files)
{
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},         {"method", 1, 0, O_METHOD}, {"forget", 1, 0, O_FORGET},
        {"retain", 1, 0, O_RETAIN},   {"idk", 1, 0, O_IDK},       {"out", 1, 0, O_OUT},
        {"epochs", 1, 0, O_EPOCHS},   {"batch", 1, 0, O_BATCH},   {"lr", 1, 0, O_LR},
        {"wd", 1, 0, O_WD},           {"warmup", 1, 0, O_WARMUP}, {"clip", 1, 0, O_CLIP},
        {"seed", 1, 0, O_SEED},       {"beta", 1, 0, O_BETA},     {"gamma", 1, 0, O_GAMMA},
        {"alpha", 1, 0, O_ALPHA},     {"retain-loss", 1, 0, O_RETAIN_LOSS},
        {"lora", 1, 0, O_LORA},       {"list-lm", 0, 0, O_LIST},  {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET},     {"force", 0, 0, O_FORCE},   {"help", 0, 0, 'h'},
        {"format", 1, 0, O_FORMAT},
        {0, 0, 0, 0}};
    *o = (opts){.seed = -1};
    lethe_lm_overrides *v = &o->ov;
    lethe_lm_overrides_init(v);
    cli_long_opt ints[] = {
        {O_EPOCHS, &v->epochs, 1, 100000}, {O_BATCH, &v->batch, 1, 1 << 16},
        {O_WARMUP, &v->warmup, 0, 1L << 40}, {O_SEED, &o->seed, 0, 1L << 53},
        {O_LORA, &o->lora, 1, 1 << 16}};
    cli_real_opt reals[] = {
        {O_LR, &v->lr, 0, 100},         {O_WD, &v->wd, 0, 100},
        {O_CLIP, &v->clip, 0, 1e30},    {O_BETA, &v->beta, 1e-12, 1e6},
        {O_GAMMA, &v->gamma, -1e6, 1e6}, {O_ALPHA, &v->alpha, -1e6, 1e6}};
    int c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option(verb, longopts, c, optarg, ints,
                                      sizeof ints / sizeof ints[0], reals,
                                      sizeof reals / sizeof reals[0]);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: o->run = optarg; break;
        case O_METHOD: o->method = optarg; break;
        case O_FORGET: o->forget = optarg; break;
        case O_RETAIN: o->retain = optarg; break;
        case O_IDK: o->idk = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case O_RETAIN_LOSS: v->retain_loss = optarg; break;
        case O_LIST: list_lm(); return -1;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_FORCE: o->force = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_bad_option(verb, argv, longopts);
        }
    }
    v->seed = o->seed;
    v->lora_rank = (int)o->lora;
    if (optind < argc)
        return cli_usage(verb, "unexpected argument '%s'", argv[optind]);
    if (need_files && (!o->run || !o->method || !o->forget || !o->out))
        return cli_usage(verb, "--run, --method, --forget and --out are required");
    return 0;
}

int cmd_unlearn_lm_overrides(const char *verb, int argc, char **argv, lethe_lm_overrides *ov)
{
    opts o;
    int rc = parse(verb, argc, argv, &o, 0);
    if (rc)
        return rc;
    if (o.run || o.method || o.forget || o.retain || o.idk || o.out || o.force || o.json ||
        o.format)
        return cli_usage(verb, "the unlearn stage's --run, --method, --forget, --retain, --idk, "
                         "--format, --out, --force and --json are the pipeline's: give its "
                         "settings only");
    *ov = o.ov;
    return 0;
}

int cmd_unlearn_lm_after_dashes(const char *verb, int argc, char **argv, lethe_lm_overrides *ov,
                                const lethe_lm_overrides **set, const char *const **args,
                                int *n_args)
{
    int rest = optind; /* the parse below moves optind */
    if (rest >= argc)
        return 0;
    /* "--" stands in for the verb */
    int rc = cmd_unlearn_lm_overrides(verb, argc - rest + 1, argv + rest - 1, ov);
    if (rc)
        return rc;
    *set = ov;
    *args = (const char *const *)argv + rest;
    *n_args = argc - rest;
    return 0;
}

static int prepare(int argc, char **argv, lethe_lm_run_cfg *out, int *json)
{
    opts o;
    int rc = parse(VERB, argc, argv, &o, 1);
    if (rc)
        return rc;
    *json = o.json;

    /* The method and its settings. */
    lethe_lm_run_cfg run;
    lethe_status st = lethe_lm_run_init(&run, o.method);
    if (st != LETHE_OK) {
        char detail[600];
        snprintf(detail, sizeof detail, "%s", lethe_error_detail());
        return cli_report(VERB, lethe_fail(st, "%s (see --list-lm)", detail));
    }
    lethe_lm_cfg *cfg = &run.cfg;
    const lethe_lm_method_def *def = lethe_lm_method_def_of(cfg->method);
    const char *mname = def->name;
    if (def->needs & LETHE_LM_NOT_STORED)
        return cli_report(VERB, lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s is not a stored model (it adjusts the logits of a base and a "
                          "reinforced model at generation time): train the reinforced model "
                          "with --method sft and measure it with lethe eval tofu --whp "
                          "(docs/lm-unlearning.md)", mname));
    int forget_only = (def->needs & LETHE_LM_FORGET_ONLY) != 0;
    if (o.ov.retain_loss) {
        if (forget_only)
            return cli_usage(VERB, "%s trains on the --forget pairs only: drop --retain-loss",
                             mname);
        lethe_lm_retain r;
        if (lethe_lm_retain_parse(o.ov.retain_loss, &r) != LETHE_OK)
            return cli_usage(VERB, "--retain-loss needs nll or kl (rmu: embed), not '%s'",
                             o.ov.retain_loss);
    }
    if (forget_only && (o.retain || o.idk))
        return cli_usage(VERB, "%s trains on the --forget pairs only: drop --retain and --idk",
                         mname);
    if (def->finish && o.lora)
        return cli_usage(VERB, "%s combines whole models (a task vector over every "
                         "parameter): drop --lora", mname);
    if ((st = lethe_lm_run_apply(&run, &o.ov)) != LETHE_OK)
        return cli_report(VERB, st);
    if (o.format && lethe_lm_format_parse(o.format, &run.format) != LETHE_OK)
        return cli_usage(VERB, "--format needs auto, qa or text, not '%s'", o.format);
    /* raw text for a method that replaces answers by refusals: refused
       before asking for the refusals (a file that cannot be read is the
       run's to report) */
    lethe_lm_format ff;
    if (lethe_lm_needs_idk(cfg) &&
        lethe_lm_format_detect(o.forget, run.format, &ff) == LETHE_OK &&
        (st = lethe_lm_format_check(cfg, ff)) != LETHE_OK)
        return cli_report(VERB, st);
    int use_retain = lethe_lm_needs_retain(cfg);
    if (use_retain && !o.retain)
        return cli_usage(VERB, "%s needs --retain FILE for its retain term (%s, alpha %g); or "
                         "give --alpha 0", mname, lethe_lm_retain_name(cfg->retain), cfg->alpha);
    if (lethe_lm_needs_idk(cfg) && !o.idk)
        return cli_usage(VERB, "%s needs --idk FILE (refusals, one per line, e.g. the "
                         "benchmark's idontknow.jsonl)", mname);
    if (!lethe_lm_needs_idk(cfg) && o.idk)
        return cli_usage(VERB, "--idk is for idknll and idkdpo only");

    run.sched.quiet = o.quiet || o.json;
    run.run = o.run;
    run.out = o.out;
    run.force = o.force;
    run.forget = o.forget;
    run.retain = use_retain ? o.retain : NULL;
    run.idk = o.idk;
    if (o.retain && !use_retain && !o.quiet)
        fprintf(stderr, "note: %s has no retain term here (retain loss none or alpha 0); "
                "--retain is not read\n", mname);

    *out = run;
    return 0;
}

static void report(FILE *out, const lethe_lm_run_cfg *run, int json,
                   const lethe_lm_run_result *res)
{
    const char *mname = lethe_lm_method_name(run->cfg.method);
    const char *role = run->cfg.method == LETHE_LM_SFT ? "training" : "forget";
    if (json) {
        cJSON *j = lethe_lm_run_result_json(run, res);
        char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
        fprintf(out, "%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
        return;
    }
    int text = res->format == LETHE_LM_FORMAT_TEXT;
    fprintf(out, "%s on %s: %ld %s ", mname, run->run, res->n_forget, role);
    if (text)
        fprintf(out, "windows of %ld document%s", res->forget_docs,
                res->forget_docs == 1 ? "" : "s");
    else
        fprintf(out, "pairs");
    fprintf(out, "%s in %ld steps, %.2f s; loss %.4f -> %.4f\n",
            res->n_retain ? " (with retain)" : "", res->steps, res->seconds, res->first_loss,
            res->last_loss);
    fprintf(out, "  mean %s NLL on %s: %.4f -> %.4f\n", text ? "token" : "answer-token",
            run->forget, res->nll_before, res->nll_after);
    fprintf(out, "wrote %s/model.safetensors, config.json, log.jsonl, tokenizer.json\n",
            run->out);
}

int cmd_unlearn_lm(int argc, char **argv)
{
    lethe_lm_run_cfg run;
    int json = 0;
    int rc = prepare(argc, argv, &run, &json);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_lm_run_result res;
    lethe_status st = lethe_lm_run(&run, &res);
    if (st != LETHE_OK)
        return cli_report_out(VERB, st);
    report(stdout, &run, json, &res);
    return CLI_EXIT_OK;
}
