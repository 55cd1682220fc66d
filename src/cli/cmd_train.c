/* lethe train: train a classifier or regressor on a task into a run
 * directory; with --exclude, the oracle (the same recipe without a split). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/recipe.h"
#include "lethe/run.h"
#include "lethe/task.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe train --data NAME --out RUN [options]\n\n"
            "Train a model on a task and write RUN/model.safetensors, RUN/config.json and\n"
            "RUN/log.jsonl. Each task has a default recipe per model kind (see below);\n"
            "options override it. The same options and seed give byte-identical files.\n"
            "With --exclude the run is the oracle for that split: the same recipe and\n"
            "seed without those samples, every other sample seeing the same order and\n"
            "random draws.\n\n"
            "Tasks:");
    for (size_t i = 0; i < lethe_tasks_count(); i++) {
        const lethe_task_info *t = lethe_tasks_at(i);
        fprintf(out, "\n  %-14s %s (%s)", t->name, t->description,
                t->task == LETHE_TASK_CLASSIFY ? "classify" : "regress");
    }
    lethe_train_cfg d;
    lethe_train_defaults(&d);
    fprintf(out,
            "\n\nOptions:\n"
            "  --data NAME        the task (required)\n"
            "  --out RUN          the run directory to write (required; created; an\n"
            "                     existing non-empty RUN is refused)\n"
            "  --force            write into an existing RUN, replacing its files\n"
            "  --model KIND       mlp, cnn (images) or linear (default: mlp); ridge and\n"
            "                     logistic fit exact linear models ('lethe fit --help');\n"
            "                     gpt trains a language model ('lethe train --model gpt --help')\n"
            "  --seed N           initialisation, data order and dropout (default 0)\n"
            "  --epochs N         passes over the data (default: the recipe's)\n"
            "  --steps N          an optimizer-step budget instead of epochs\n"
            "  --batch N          samples per step (default: the recipe's)\n"
            "  --lr X             peak learning rate (default: the recipe's)\n"
            "  --optim NAME       adamw or sgd (default adamw)\n"
            "  --wd X             weight decay (default %g)\n"
            "  --momentum X       SGD momentum (default %g)\n"
            "  --sched NAME       constant, step or cosine (default: the recipe's)\n"
            "  --warmup N         cosine warm-up steps (default %ld)\n"
            "  --clip X           clip the gradient norm to X (default: off)\n"
            "  --widths W         mlp hidden widths, e.g. 256-256 (default: the recipe's)\n"
            "  --act NAME         relu, gelu or tanh (default relu)\n"
            "  --dropout P        dropout after each hidden activation (default: recipe's)\n"
            "  --loss NAME        regressors: mse or l1 (default mse)\n"
            "  --val F            hold out a fraction F of the rows for validation\n"
            "  --patience N       stop after N epochs without a better validation loss\n"
            "  --grad-penalty A   add A * ||grad loss|| to the loss (IAU's restriction)\n"
            "  --limit N          train on the first N training samples only\n"
            "  --window N         us-births: days of history per sample (default 14)\n"
            "  --exclude SPLIT    leave out a split: random:F, class:K[,K], range:LO:HI,\n"
            "                     ids:FILE (or a FILE of ids, one per line)\n"
            "  --split-seed N     the seed of random:F splits (default 0)\n"
            "  --json             print a JSON summary\n"
            "  --quiet            no progress output\n"
            "  -h, --help         show this help\n\n"
            "Recipes: fashion-mnist mlp 784-256-256-10 with dropout 0.1, batch 128,\n"
            "12 epochs; fashion-mnist cnn 2 x (conv 3x3, pool) + 128, batch 64,\n"
            "10 epochs; other tasks mlp 64-64, batch 32, 60 epochs; all AdamW lr 1e-3\n"
            "with a cosine schedule (linear: lr 1e-2).\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown task,\n"
            "data not installed, bad split).\n",
            d.weight_decay, d.momentum, d.warmup);
}

enum {
    O_DATA = 256, O_OUT, O_MODEL, O_SEED, O_EPOCHS, O_STEPS, O_BATCH, O_LR, O_OPTIM, O_WD,
    O_MOMENTUM, O_SCHED, O_WARMUP, O_CLIP, O_WIDTHS, O_ACT, O_DROPOUT, O_LOSS, O_VAL,
    O_PATIENCE, O_PENALTY, O_LIMIT, O_WINDOW, O_EXCLUDE, O_SPLIT_SEED, O_JSON, O_QUIET, O_FORCE
};

static const struct option longopts[] = {
    {"data", 1, 0, O_DATA},         {"out", 1, 0, O_OUT},
    {"model", 1, 0, O_MODEL},       {"seed", 1, 0, O_SEED},
    {"epochs", 1, 0, O_EPOCHS},     {"steps", 1, 0, O_STEPS},
    {"batch", 1, 0, O_BATCH},       {"lr", 1, 0, O_LR},
    {"optim", 1, 0, O_OPTIM},       {"wd", 1, 0, O_WD},
    {"momentum", 1, 0, O_MOMENTUM}, {"sched", 1, 0, O_SCHED},
    {"warmup", 1, 0, O_WARMUP},     {"clip", 1, 0, O_CLIP},
    {"widths", 1, 0, O_WIDTHS},     {"act", 1, 0, O_ACT},
    {"dropout", 1, 0, O_DROPOUT},   {"loss", 1, 0, O_LOSS},
    {"val", 1, 0, O_VAL},           {"patience", 1, 0, O_PATIENCE},
    {"grad-penalty", 1, 0, O_PENALTY}, {"limit", 1, 0, O_LIMIT},
    {"window", 1, 0, O_WINDOW},     {"exclude", 1, 0, O_EXCLUDE},
    {"split-seed", 1, 0, O_SPLIT_SEED}, {"json", 0, 0, O_JSON},
    {"quiet", 0, 0, O_QUIET},       {"force", 0, 0, O_FORCE},
    {"help", 0, 0, 'h'},
    {0, 0, 0, 0}};

/* Options as given: the run's settings ("not given" by
 * lethe_train_run_defaults) and what only the front end reads. */
typedef struct opts {
    lethe_train_run_cfg rc;
    long seed, split_seed;
    int json;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    lethe_train_run_cfg *rc = &o->rc;
    *o = (opts){0};
    lethe_train_run_defaults(rc);
    cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},  {O_EPOCHS, &rc->epochs, 1, 1000000},
        {O_STEPS, &rc->steps, 1, 1L << 40}, {O_BATCH, &rc->batch, 1, 1 << 16},
        {O_WARMUP, &rc->warmup, 0, 1L << 40}, {O_PATIENCE, &rc->patience, 1, 1000000},
        {O_LIMIT, &rc->limit, 1, 1L << 40}, {O_WINDOW, &rc->window, 1, 365},
        {O_SPLIT_SEED, &o->split_seed, 0, 1L << 53}};
    cli_real_opt reals[] = {
        {O_LR, &rc->lr, 1e-12, 100},      {O_WD, &rc->weight_decay, 0, 100},
        {O_MOMENTUM, &rc->momentum, 0, 1}, {O_CLIP, &rc->clip, 0, 1e30},
        {O_DROPOUT, &rc->dropout, 0, 0.99}, {O_VAL, &rc->val, 0, 0.9},
        {O_PENALTY, &rc->grad_penalty, 0, 1e6}};
    int c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option("train", longopts, c, optarg, ints,
                                      sizeof ints / sizeof ints[0], reals,
                                      sizeof reals / sizeof reals[0]);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_DATA: rc->data = optarg; break;
        case O_OUT: rc->out = optarg; break;
        case O_MODEL: rc->model = optarg; break;
        case O_OPTIM: rc->optim = optarg; break;
        case O_SCHED: rc->sched = optarg; break;
        case O_WIDTHS: rc->widths = optarg; break;
        case O_ACT: rc->act = optarg; break;
        case O_LOSS: rc->loss = optarg; break;
        case O_EXCLUDE: rc->exclude = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: rc->quiet = 1; break;
        case O_FORCE: rc->force = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_bad_option("train", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("train", "unexpected argument '%s'", argv[optind]);
    if (!rc->data || !rc->out)
        return cli_usage("train", "--data and --out are required");
    rc->seed = (uint64_t)o->seed;
    rc->split_seed = (uint64_t)o->split_seed;
    return 0;
}

static void print_scores(const char *what, const lethe_scores *s, int classify)
{
    if (classify)
        printf("  %-6s %6ld samples  accuracy %.2f%%\n", what, s->n, s->accuracy);
    else
        printf("  %-6s %6ld samples  L1 %.6g  MSE %.6g\n", what, s->n, s->l1, s->mse);
}

static void add_scores(cJSON *j, const char *key, const lethe_scores *s, int classify)
{
    cJSON *o = cJSON_AddObjectToObject(j, key);
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    if (classify) {
        cJSON_AddNumberToObject(o, "accuracy", s->accuracy);
    } else {
        cJSON_AddNumberToObject(o, "l1", s->l1);
        cJSON_AddNumberToObject(o, "mse", s->mse);
    }
}

/* --model ridge|logistic: the exact linear models, fitted by 'lethe fit'. */
static int wants_fit(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = !strcmp(argv[i], "--model") && i + 1 < argc ? argv[i + 1]
                        : !strncmp(argv[i], "--model=", 8)        ? argv[i] + 8
                                                                  : NULL;
        if (v && (!strcmp(v, "ridge") || !strcmp(v, "logistic")))
            return 1;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    if (wants_fit(argc, argv))
        return cmd_fit(argc, argv);
    if (cmd_train_wants_gpt(argc, argv))
        return cmd_train_gpt(argc, argv);
    opts o;
    int code = parse(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_EXIT_OK : code;
    const lethe_train_run_cfg *rc = &o.rc;
    lethe_train_run_result res;
    lethe_status st = lethe_train_run(rc, &res);
    if (st != LETHE_OK)
        return cli_report_out("train", st);
    int classify = res.task == LETHE_TASK_CLASSIFY;
    const lethe_train_result *t = &res.train;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", rc->out);
        cJSON_AddStringToObject(j, "spec", res.spec);
        cJSON_AddNumberToObject(j, "steps", (double)t->steps);
        cJSON_AddNumberToObject(j, "epochs", t->epochs);
        cJSON_AddNumberToObject(j, "excluded", (double)res.excluded);
        cJSON_AddNumberToObject(j, "seconds", t->seconds);
        cJSON_AddNumberToObject(j, "samples_per_second",
                                t->seconds > 0
                                    ? (double)t->steps * res.recipe.cfg.batch / t->seconds
                                    : 0);
        add_scores(j, "train", &res.train_scores, classify);
        add_scores(j, "test", &res.test_scores, classify);
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("trained %s on %s: %ld samples", res.spec, rc->data, res.n_train);
        if (res.excluded)
            printf(" (%ld excluded by %s)", res.excluded, rc->exclude);
        printf(", %d epochs, %ld steps, %.1f s\n", t->epochs, t->steps, t->seconds);
        print_scores("train", &res.train_scores, classify);
        print_scores("test", &res.test_scores, classify);
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", rc->out);
    }
    return CLI_EXIT_OK;
}
