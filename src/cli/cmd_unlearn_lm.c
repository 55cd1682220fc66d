/* lethe unlearn on a GPT run: the language-model unlearning methods of
 * OpenUnlearning and MUSE (lethe/lm_unlearn.h) on TOFU-layout
 * question-answer files, and plain fine-tuning on such a file (sft), each
 * writing a new lethe GPT run. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/gpt.h"
#include "lethe/gpt_hf.h"
#include "lethe/json.h"
#include "lethe/lm_unlearn.h"
#include "lethe/lora.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/safetensors.h"
#include "lethe/tofu.h"
#include "lethe/tokenizer.h"

#define VERB "unlearn"
#define SFT_EPOCHS 5

static const char *const descriptions[LETHE_LM_N_METHODS] = {
    "gradient ascent on the forget answers (GradAscent)",
    "gradient ascent plus a retain term (GradDiff; ga_gdr, ga_klr: KL retain)",
    "negative preference optimisation against the reference (npo_gdr, npo_klr)",
    "reference-free, length-normalised NPO",
    "NLL of an \"I don't know\" answer to each forget question (needs --idk)",
    "DPO preferring the \"I don't know\" answer (needs --idk)",
    "representation misdirection: steer a block's output to a random vector",
    "self-distillation from the reference with the gold logit lowered (alpha 0: no retain)",
    "weighted gradient ascent",
    "saturation-importance weighted gradient ascent",
    "cross-entropy unlearning",
    "theta - alpha (theta_reinforced - theta), reinforced = fine-tuned on forget",
    "Who's Harry Potter: a logit adjustment at generation; not a stored model (refused)"};

static void print_usage(FILE *out)
{
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
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
            "retainXX.json). The same options give byte-identical files.\n\n");
    fprintf(out,
            "Options:\n"
            "  --run DIR          the GPT run to start from\n"
            "  --method NAME      see --list-lm (ga, graddiff, npo, simnpo, idknll, idkdpo,\n"
            "                     rmu, undial, wga, satimp, ceu, taskvector; ga_gdr, ga_klr,\n"
            "                     npo_gdr, npo_klr; sft)\n"
            "  --forget FILE      the pairs to forget (with sft: to fine-tune on)\n"
            "  --retain FILE      the retain pairs (each forget pair is paired with a random\n"
            "                     one)\n"
            "  --idk FILE         refusals, one per line (plain text or JSON strings)\n"
            "  --out RUN2         the run directory to write\n"
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
            "  --quiet            no progress output\n"
            "  -h, --help         show this help\n\n"
            "AdamW betas (%g, %g), eps %g (OpenUnlearning's TOFU run).\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error (a missing option, --retain or --idk\n"
            "missing where the method needs it), 3 bad input (an unknown method, a missing\n"
            "or malformed file, a pair longer than the model's context).\n",
            s.epochs, SFT_EPOCHS, s.batch, (double)s.lr, (double)s.weight_decay,
            (double)s.clip, (double)s.beta1, (double)s.beta2, (double)s.eps);
}

static int need_reference(const lethe_lm_cfg *c)
{
    lethe_lm_retain r = c->alpha == 0 ? LETHE_LM_RETAIN_NONE : c->retain;
    return c->method == LETHE_LM_NPO || c->method == LETHE_LM_IDKDPO ||
           c->method == LETHE_LM_UNDIAL || r == LETHE_LM_RETAIN_KL || r == LETHE_LM_RETAIN_EMBED;
}

static int need_retain(const lethe_lm_cfg *c)
{
    return c->alpha != 0 && c->retain != LETHE_LM_RETAIN_NONE;
}

static int need_idk(const lethe_lm_cfg *c)
{
    return c->method == LETHE_LM_IDKNLL || c->method == LETHE_LM_IDKDPO;
}

/* The settings a method reads, beyond gamma / alpha / retain, into buf. */
static void extra_settings(const lethe_lm_cfg *c, char *buf, size_t cap)
{
    switch (c->method) {
    case LETHE_LM_NPO:
    case LETHE_LM_IDKDPO:
    case LETHE_LM_UNDIAL:
    case LETHE_LM_WGA: snprintf(buf, cap, "beta %g", c->beta); break;
    case LETHE_LM_SIMNPO: snprintf(buf, cap, "beta %g delta %g", c->beta, c->delta); break;
    case LETHE_LM_SATIMP: snprintf(buf, cap, "beta %g beta2 %g", c->beta, c->beta2); break;
    case LETHE_LM_CEU: snprintf(buf, cap, "ignore %d", c->ceu_ignore); break;
    case LETHE_LM_RMU:
        if (c->rmu_layer < 0)
            snprintf(buf, cap, "steering %g layer auto %d blocks", c->steering, c->rmu_blocks);
        else
            snprintf(buf, cap, "steering %g layer %d %d blocks", c->steering, c->rmu_layer,
                     c->rmu_blocks);
        break;
    default: buf[0] = 0;
    }
}

static void list_lm(void)
{
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    printf("%-11s %-5s %-5s %-6s %-3s %-30s %s\n", "METHOD", "GAMMA", "ALPHA", "RETAIN", "REF",
           "SETTINGS", "DESCRIPTION");
    for (int m = 0; m < LETHE_LM_N_METHODS; m++) {
        lethe_lm_cfg c;
        char extra[96], alpha[32];
        lethe_lm_defaults((lethe_lm_method)m, &c);
        extra_settings(&c, extra, sizeof extra);
        /* alpha weighs the retain term; Task Vector and WHP use it as their own alpha */
        if (c.retain == LETHE_LM_RETAIN_NONE && c.method != LETHE_LM_TASKVECTOR &&
            c.method != LETHE_LM_WHP)
            snprintf(alpha, sizeof alpha, "-");
        else
            snprintf(alpha, sizeof alpha, "%g", c.alpha);
        printf("%-11s %-5g %-5s %-6s %-3s %-30s %s\n", lethe_lm_method_name(c.method), c.gamma,
               alpha, lethe_lm_retain_name(c.retain), need_reference(&c) ? "yes" : "no", extra,
               descriptions[m]);
    }
    printf("%-11s %-5g %-5s %-6s %-3s %-30s %s\n", "sft", 1.0, "-", "none", "no",
           "epochs 5", "fine-tune on the --forget pairs (NLL on answer tokens): TOFU targets "
           "(full.json) and oracles (retainXX.json)");
    printf("\nvariants: ga_gdr = graddiff, ga_klr = graddiff with KL retain, npo_gdr = npo, "
           "npo_klr = npo with KL retain.\n"
           "schedule (OpenUnlearning's TOFU run): epochs %d, batch %d, lr %g, weight decay %g, "
           "warm-up one epoch, linear decay, clip %g, AdamW (%g, %g), eps %g.\n"
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

/* A 64-bit FNV-1a hash of a file's bytes (16 hex digits). */
static lethe_status file_hash(const char *path, char out[17])
{
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 0x100000001b3u;
    free(data);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return LETHE_OK;
}

/* The refusals of an idk file: one per non-blank line, plain text or a JSON
 * string. */
typedef struct lines {
    char **s;
    size_t n;
} lines;

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    l->s = NULL, l->n = 0;
}

static lethe_status read_idk(const char *path, lines *out)
{
    unsigned char *data;
    size_t len, cap = 0;
    *out = (lines){0};
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    size_t i = 0, line = 0;
    while (i < len && st == LETHE_OK) {
        size_t j = i;
        while (j < len && data[j] != '\n')
            j++;
        line++;
        size_t a = i, b = j;
        i = j + 1;
        while (a < b && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r'))
            a++;
        while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r'))
            b--;
        if (a == b)
            continue;
        char *s = NULL;
        if (data[a] == '"') {
            cJSON *j2 = NULL;
            st = lethe_json_parse_at((const char *)data + a, b - a, path, line, &j2);
            if (st == LETHE_OK && !cJSON_IsString(j2))
                st = lethe_fail(LETHE_ERR_FORMAT, "%s line %zu: expected a refusal (text or a "
                                "JSON string)", path, line);
            if (st == LETHE_OK && !(s = strdup(j2->valuestring)))
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            cJSON_Delete(j2);
        } else if ((s = malloc(b - a + 1))) {
            memcpy(s, data + a, b - a);
            s[b - a] = 0;
        } else {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        if (st != LETHE_OK)
            break;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **t = realloc(out->s, sizeof *t * cap);
            if (!t) {
                free(s);
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                break;
            }
            out->s = t;
        }
        out->s[out->n++] = s;
    }
    free(data);
    if (st == LETHE_OK && out->n == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no refusals (one per line expected)", path);
    if (st != LETHE_OK)
        lines_free(out);
    return st;
}

/* The pairs of a TOFU file as a set: questions and answers (answers
 * replaced by refusals when idk is given). */
static lethe_status load_set(const char *path, const lethe_gpt_dir *d, const lethe_tofu *qs,
                             const lines *idk, uint64_t seed, lethe_tofu *rows,
                             lethe_lm_data *out)
{
    lethe_status st = LETHE_OK;
    const lethe_tofu *src = qs;
    if (!qs) {
        if ((st = lethe_tofu_load(path, rows)) != LETHE_OK)
            return st;
        src = rows;
    }
    size_t n = src->n;
    const char **q = malloc(sizeof *q * (n ? n : 1)), **a = malloc(sizeof *a * (n ? n : 1));
    if (!q || !a) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            q[i] = src->rows[i].question;
            a[i] = idk ? idk->s[lethe_lm_idk_pick((long)i, (long)idk->n, seed)]
                       : src->rows[i].answer;
        }
        st = lethe_lm_data_build(d->tok, (int32_t)d->eot, d->model->cfg.n_positions, q, a, n,
                                 path, out);
    }
    free(q);
    free(a);
    return st;
}

/* The mean token NLL of the pairs' answers under g. */
static lethe_status mean_nll(lethe_gpt *g, const lethe_gpt_dir *d, const lethe_tofu *t,
                             double *out)
{
    const char **q = malloc(sizeof *q * t->n), **a = malloc(sizeof *a * t->n);
    lethe_qa_score *s = malloc(sizeof *s * t->n);
    lethe_status st = LETHE_OK;
    if (!q || !a || !s) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < t->n; i++)
            q[i] = t->rows[i].question, a[i] = t->rows[i].answer;
        st = lethe_qa_score_answers(g, d->tok, (int32_t)d->eot, q, a, t->n, 16, s);
        if (st == LETHE_OK) {
            double sum = 0;
            long n = 0;
            for (size_t i = 0; i < t->n; i++)
                sum += s[i].nll_sum, n += s[i].n;
            *out = n ? sum / (double)n : NAN;
        }
    }
    free(q);
    free(a);
    free(s);
    return st;
}

/* A float as its shortest decimal (0.001, not 0.0010000000474974513). */
static double fl(float x)
{
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *file_item(const char *path, long rows, const char *hash)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path", path);
    cJSON_AddNumberToObject(f, "rows", (double)rows);
    cJSON_AddStringToObject(f, "hash", hash);
    return f;
}

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

enum {
    O_RUN = 256, O_METHOD, O_FORGET, O_RETAIN, O_IDK, O_OUT, O_EPOCHS, O_BATCH, O_LR, O_WD,
    O_WARMUP, O_CLIP, O_SEED, O_BETA, O_GAMMA, O_ALPHA, O_RETAIN_LOSS, O_LORA, O_LIST, O_JSON,
    O_QUIET
};

typedef struct opts {
    const char *run, *method, *forget, *retain, *idk, *out, *retain_loss;
    long epochs, batch, warmup, seed, lora;
    double lr, wd, clip, beta, gamma, alpha;
    int json, quiet;
} opts;

/* 0: go on; -1: done (help or list), exit 0; > 0: an exit code. */
static int parse(int argc, char **argv, opts *o)
{
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},         {"method", 1, 0, O_METHOD}, {"forget", 1, 0, O_FORGET},
        {"retain", 1, 0, O_RETAIN},   {"idk", 1, 0, O_IDK},       {"out", 1, 0, O_OUT},
        {"epochs", 1, 0, O_EPOCHS},   {"batch", 1, 0, O_BATCH},   {"lr", 1, 0, O_LR},
        {"wd", 1, 0, O_WD},           {"warmup", 1, 0, O_WARMUP}, {"clip", 1, 0, O_CLIP},
        {"seed", 1, 0, O_SEED},       {"beta", 1, 0, O_BETA},     {"gamma", 1, 0, O_GAMMA},
        {"alpha", 1, 0, O_ALPHA},     {"retain-loss", 1, 0, O_RETAIN_LOSS},
        {"lora", 1, 0, O_LORA},       {"list-lm", 0, 0, O_LIST},  {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET},     {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    *o = (opts){.epochs = -1, .batch = -1, .warmup = -1, .seed = 0, .lora = 0, .lr = NAN,
                .wd = NAN, .clip = NAN, .beta = NAN, .gamma = NAN, .alpha = NAN};
    cli_long_opt ints[] = {
        {O_EPOCHS, &o->epochs, 1, 100000}, {O_BATCH, &o->batch, 1, 1 << 16},
        {O_WARMUP, &o->warmup, 0, 1L << 40}, {O_SEED, &o->seed, 0, 1L << 53},
        {O_LORA, &o->lora, 1, 1 << 16}};
    cli_real_opt reals[] = {
        {O_LR, &o->lr, 0, 100},         {O_WD, &o->wd, 0, 100},
        {O_CLIP, &o->clip, 0, 1e30},    {O_BETA, &o->beta, 1e-12, 1e6},
        {O_GAMMA, &o->gamma, -1e6, 1e6}, {O_ALPHA, &o->alpha, -1e6, 1e6}};
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
        case O_RUN: o->run = optarg; break;
        case O_METHOD: o->method = optarg; break;
        case O_FORGET: o->forget = optarg; break;
        case O_RETAIN: o->retain = optarg; break;
        case O_IDK: o->idk = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_RETAIN_LOSS: o->retain_loss = optarg; break;
        case O_LIST: list_lm(); return -1;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_usage(VERB, "unknown or incomplete option (for a GPT run)");
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!o->run || !o->method || !o->forget || !o->out)
        return cli_usage(VERB, "--run, --method, --forget and --out are required");
    return 0;
}

int cmd_unlearn_lm(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;

    /* The method and its settings. */
    lethe_lm_cfg cfg;
    int sft = !strcmp(o.method, "sft");
    lethe_status st = LETHE_OK;
    if (sft) {
        lethe_lm_defaults(LETHE_LM_WHP, &cfg);
    } else if (!strcmp(o.method, "whp")) {
        st = lethe_fail(LETHE_ERR_UNSUPPORTED,
                        "whp is not a stored model (it adjusts the logits of a base and a "
                        "reinforced model at generation time): train the reinforced model with "
                        "--method sft and measure it with lethe eval tofu --whp "
                        "(docs/lm-unlearning.md)");
        return cli_report(VERB, st);
    } else if ((st = lethe_lm_parse(o.method, &cfg)) != LETHE_OK) {
        char detail[600];
        snprintf(detail, sizeof detail, "%s", lethe_error_detail());
        st = lethe_fail(st, "%s; or sft (fine-tuning) (see --list-lm)", detail);
        return cli_report(VERB, st);
    }
    const char *mname = sft ? "sft" : lethe_lm_method_name(cfg.method);
    int tv = cfg.method == LETHE_LM_TASKVECTOR;
    if (!isnan(o.gamma))
        cfg.gamma = o.gamma;
    if (!isnan(o.alpha))
        cfg.alpha = o.alpha;
    if (!isnan(o.beta))
        cfg.beta = o.beta;
    if (o.retain_loss) {
        if (sft || tv)
            return cli_usage(VERB, "%s trains on the --forget pairs only: drop --retain-loss",
                             mname);
        if (lethe_lm_retain_parse(o.retain_loss, &cfg.retain) != LETHE_OK)
            return cli_usage(VERB, "--retain-loss needs nll or kl (rmu: embed), not '%s'",
                             o.retain_loss);
    }
    if ((sft || tv) && (o.retain || o.idk))
        return cli_usage(VERB, "%s trains on the --forget pairs only: drop --retain and --idk",
                         mname);
    if (tv && o.lora)
        return cli_usage(VERB, "taskvector subtracts a task vector over every parameter: "
                         "drop --lora");
    if (need_retain(&cfg) && !o.retain)
        return cli_usage(VERB, "%s needs --retain FILE for its retain term (%s, alpha %g); or "
                         "give --alpha 0", mname, lethe_lm_retain_name(cfg.retain), cfg.alpha);
    if (need_idk(&cfg) && !o.idk)
        return cli_usage(VERB, "%s needs --idk FILE (refusals, one per line, e.g. the "
                         "benchmark's idontknow.jsonl)", mname);
    if (!need_idk(&cfg) && o.idk)
        return cli_usage(VERB, "--idk is for idknll and idkdpo only");

    lethe_lm_sched sc;
    lethe_lm_sched_defaults(&sc);
    if (sft)
        sc.epochs = SFT_EPOCHS;
    sc.quiet = o.quiet || o.json;
    sc.label = mname;
    if (o.epochs > 0)
        sc.epochs = (int)o.epochs;
    if (o.batch > 0)
        sc.batch = (int)o.batch;
    if (!isnan(o.lr))
        sc.lr = (float)o.lr;
    if (!isnan(o.wd))
        sc.weight_decay = (float)o.wd;
    if (!isnan(o.clip))
        sc.clip = (float)o.clip;
    if (o.warmup >= 0)
        sc.warmup = o.warmup;
    sc.seed = (uint64_t)o.seed;

    lethe_gpt_dir d = {.eot = -1};
    lethe_gpt *ref = NULL;
    lethe_lora *lora = NULL;
    lethe_tofu f_rows = {0}, r_rows = {0};
    lines idk = {0};
    lethe_lm_data fd = {0}, rd = {0}, id = {0};
    lethe_afile *log = NULL;
    cJSON *config = NULL, *parent_cfg = NULL;
    char *config_line = NULL;
    char path[4200], parent_hash[17] = "", f_hash[17] = "", r_hash[17] = "", i_hash[17] = "";
    char seed_str[32];
    int use_retain = need_retain(&cfg);
    double nll0 = NAN, nll1 = NAN;
    lethe_lm_result res = {0};

    if (o.retain && !use_retain && !o.quiet)
        fprintf(stderr, "note: %s has no retain term here (retain loss none or alpha 0); "
                "--retain is not read\n", mname);
    st = lethe_gpt_dir_load(o.run, 1, &d);
    if (st == LETHE_OK && (!d.tok || d.eot < 0))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: LM unlearning needs the run's tokenizer with an "
                        "<|endoftext|> token", o.run);
    snprintf(path, sizeof path, "%s/model.safetensors", o.run);
    if (!file_exists(path))
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", o.run);
    if (st == LETHE_OK)
        st = file_hash(path, parent_hash);
    snprintf(path, sizeof path, "%s/config.json", o.run);
    if (st == LETHE_OK && file_exists(path) && lethe_json_read(path, &parent_cfg) != LETHE_OK)
        parent_cfg = NULL; /* already read by the loader; only the preset is wanted */
    if (st == LETHE_OK)
        st = load_set(o.forget, &d, NULL, NULL, 0, &f_rows, &fd);
    if (st == LETHE_OK)
        st = file_hash(o.forget, f_hash);
    if (st == LETHE_OK && use_retain)
        st = load_set(o.retain, &d, NULL, NULL, 0, &r_rows, &rd);
    if (st == LETHE_OK && use_retain)
        st = file_hash(o.retain, r_hash);
    if (st == LETHE_OK && o.idk)
        st = read_idk(o.idk, &idk);
    if (st == LETHE_OK && o.idk)
        st = load_set(o.idk, &d, &f_rows, &idk, sc.seed, NULL, &id);
    if (st == LETHE_OK && o.idk)
        st = file_hash(o.idk, i_hash);
    if (st != LETHE_OK)
        goto done;
    lethe_gpt *g = d.model;
    if (need_reference(&cfg) && !(ref = lethe_lm_clone(g))) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    if ((st = lethe_lm_check(&cfg, g, ref)) != LETHE_OK)
        goto done;
    if (o.lora) {
        lethe_lora_config lc;
        lethe_lora_config_defaults(&lc);
        lc.rank = (int)o.lora;
        if (!(lora = lethe_lora_init(g, &lc, sc.seed))) {
            st = LETHE_ERR_INVALID;
            goto done;
        }
        sc.lora = lora;
    }
    if ((st = mean_nll(g, &d, &f_rows, &nll0)) != LETHE_OK)
        goto done;
    if ((st = lethe_run_mkdir(o.out)) != LETHE_OK)
        goto done;
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    if (!(log = lethe_afile_open(path))) {
        st = LETHE_ERR_IO;
        goto done;
    }
    long per = lethe_lm_steps_per_epoch(fd.set.n, sc.batch);
    if (!o.quiet)
        fprintf(stderr, "%s on %s: %ld forget pairs (T %d)%s%s; %d epochs of %ld steps, batch "
                "%d, lr %g%s\n", mname, o.run, fd.set.n, fd.set.T, use_retain ? ", retain " : "",
                use_retain ? o.retain : "", sc.epochs, per, sc.batch, (double)sc.lr,
                ref ? "; a frozen reference copy" : "");
    double t0 = lethe_now();
    st = lethe_lm_unlearn(g, ref, &cfg, &fd.set, use_retain ? &rd.set : NULL,
                          o.idk ? &id.set : NULL, &sc, log->fp, &res);
    double seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    if (st != LETHE_OK)
        goto done;
    if (lora)
        lethe_lora_merge(lora, g);
    if ((st = mean_nll(g, &d, &f_rows, &nll1)) != LETHE_OK)
        goto done;

    /* config.json */
    const lethe_gpt_config *mc = &g->cfg;
    const char *preset = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parent_cfg,
                                                                                 "preset"));
    config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "model", "gpt");
    cJSON_AddStringToObject(config, "preset", preset ? preset : "custom");
    cJSON_AddStringToObject(config, "format", "lethe");
    cJSON_AddStringToObject(config, "init", o.run);
    cJSON_AddNumberToObject(config, "vocab_size", mc->vocab_size);
    cJSON_AddNumberToObject(config, "n_positions", mc->n_positions);
    cJSON_AddNumberToObject(config, "n_embd", mc->n_embd);
    cJSON_AddNumberToObject(config, "n_layer", mc->n_layer);
    cJSON_AddNumberToObject(config, "n_head", mc->n_head);
    cJSON_AddNumberToObject(config, "n_params", (double)g->n_params);
    cJSON_AddNumberToObject(config, "eot_id", (double)d.eot);
    cJSON_AddNumberToObject(config, "seed", (double)o.seed);
    cJSON *u = cJSON_AddObjectToObject(config, "unlearn");
    cJSON_AddStringToObject(u, "method", mname);
    if (strcmp(o.method, mname))
        cJSON_AddStringToObject(u, "variant", o.method);
    cJSON *s = cJSON_AddObjectToObject(u, "settings");
    cJSON_AddNumberToObject(s, "gamma", cfg.gamma);
    cJSON_AddNumberToObject(s, "alpha", cfg.alpha);
    cJSON_AddStringToObject(s, "retain_loss", use_retain ? lethe_lm_retain_name(cfg.retain)
                                                         : "none");
    cJSON_AddNumberToObject(s, "beta", cfg.beta);
    cJSON_AddNumberToObject(s, "beta2", cfg.beta2);
    cJSON_AddNumberToObject(s, "delta", cfg.delta);
    cJSON_AddNumberToObject(s, "ceu_ignore", cfg.ceu_ignore);
    cJSON_AddNumberToObject(s, "rmu_layer", cfg.rmu_layer);
    cJSON_AddNumberToObject(s, "rmu_blocks", cfg.rmu_blocks);
    cJSON_AddNumberToObject(s, "rmu_proj_only", cfg.rmu_proj_only);
    cJSON_AddNumberToObject(s, "steering", cfg.steering);
    cJSON_AddBoolToObject(u, "reference", ref != NULL);
    cJSON *sj = cJSON_AddObjectToObject(u, "schedule");
    cJSON_AddNumberToObject(sj, "epochs", sc.epochs);
    cJSON_AddNumberToObject(sj, "batch", sc.batch);
    cJSON_AddNumberToObject(sj, "lr", fl(sc.lr));
    cJSON_AddNumberToObject(sj, "weight_decay", fl(sc.weight_decay));
    cJSON_AddNumberToObject(sj, "warmup", (double)lethe_lm_sched_warmup(&sc, per, per * sc.epochs));
    cJSON_AddStringToObject(sj, "sched", sc.constant ? "constant" : "linear");
    cJSON_AddNumberToObject(sj, "beta1", fl(sc.beta1));
    cJSON_AddNumberToObject(sj, "beta2", fl(sc.beta2));
    cJSON_AddNumberToObject(sj, "eps", fl(sc.eps));
    cJSON_AddNumberToObject(sj, "clip", fl(sc.clip));
    cJSON_AddNumberToObject(sj, "seed", (double)o.seed);
    if (lora) {
        cJSON *lj = cJSON_AddObjectToObject(u, "lora");
        cJSON_AddNumberToObject(lj, "rank", lora->cfg.rank);
        cJSON_AddNumberToObject(lj, "alpha", fl(lora->cfg.alpha));
        cJSON_AddNumberToObject(lj, "n_params", (double)lora->n_params);
        cJSON_AddBoolToObject(lj, "merged", 1);
    } else {
        cJSON_AddNullToObject(u, "lora");
    }
    cJSON_AddStringToObject(u, "parent", o.run);
    cJSON_AddStringToObject(u, "parent_hash", parent_hash);
    cJSON_AddItemToObject(u, "forget", file_item(o.forget, fd.set.n, f_hash));
    if (use_retain)
        cJSON_AddItemToObject(u, "retain", file_item(o.retain, rd.set.n, r_hash));
    else
        cJSON_AddNullToObject(u, "retain");
    if (o.idk)
        cJSON_AddItemToObject(u, "idk", file_item(o.idk, (long)idk.n, i_hash));
    else
        cJSON_AddNullToObject(u, "idk");
    cJSON_AddNumberToObject(u, "steps", (double)res.steps);
    add_num(u, "first_loss", res.first_loss);
    add_num(u, "last_loss", res.last_loss);
    add_num(u, "forget_nll_before", nll0);
    add_num(u, "forget_nll_after", nll1);
    if (!(config_line = cJSON_PrintUnformatted(config))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(seed_str, sizeof seed_str, "%ld", o.seed);
    lethe_st_meta meta[] = {{"model", "gpt"},
                            {"preset", (char *)(preset ? preset : "custom")},
                            {"config", config_line},
                            {"method", (char *)mname},
                            {"init", (char *)o.run},
                            {"parent_hash", parent_hash},
                            {"forget_hash", f_hash},
                            {"seed", seed_str}};
    snprintf(path, sizeof path, "%s/tokenizer.json", o.out);
    st = lethe_tokenizer_save_json(d.tok, path);
    snprintf(path, sizeof path, "%s/model.safetensors", o.out);
    if (st == LETHE_OK)
        st = lethe_gpt_save(g, path, meta, sizeof meta / sizeof meta[0]);
    if (st == LETHE_OK)
        st = write_json(o.out, "config.json", config);
    if (st != LETHE_OK)
        goto done;

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", o.out);
        cJSON_AddStringToObject(j, "method", mname);
        cJSON_AddNumberToObject(j, "forget", (double)fd.set.n);
        cJSON_AddNumberToObject(j, "retain", use_retain ? (double)rd.set.n : 0);
        cJSON_AddNumberToObject(j, "steps", (double)res.steps);
        add_num(j, "first_loss", res.first_loss);
        add_num(j, "last_loss", res.last_loss);
        add_num(j, "forget_nll_before", nll0);
        add_num(j, "forget_nll_after", nll1);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("%s on %s: %ld %s pairs%s in %ld steps, %.2f s; loss %.4f -> %.4f\n", mname,
               o.run, fd.set.n, sft ? "training" : "forget", use_retain ? " (with retain)" : "",
               res.steps, seconds, res.first_loss, res.last_loss);
        printf("  mean answer-token NLL on %s: %.4f -> %.4f\n", o.forget, nll0, nll1);
        printf("wrote %s/model.safetensors, config.json, log.jsonl, tokenizer.json\n", o.out);
    }
done:
    lethe_afile_abort(log);
    cJSON_Delete(config);
    cJSON_Delete(parent_cfg);
    free(config_line);
    lethe_lm_data_free(&fd);
    lethe_lm_data_free(&rd);
    lethe_lm_data_free(&id);
    lines_free(&idk);
    lethe_tofu_free(&f_rows);
    lethe_tofu_free(&r_rows);
    lethe_lora_free(lora);
    lethe_gpt_free(ref);
    lethe_gpt_dir_free(&d);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report(VERB, st);
}
