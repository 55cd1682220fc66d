/* lethe train: train a classifier or regressor on a task into a run
 * directory; with --exclude, the oracle (the same recipe without a split). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/recipe.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
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

/* Options as given; NAN / -1 / NULL where not given. */
typedef struct opts {
    const char *data, *out, *model, *optim, *sched, *widths, *act, *loss, *exclude;
    long seed, epochs, steps, batch, warmup, patience, limit, window, split_seed;
    double lr, wd, momentum, clip, dropout, val, penalty;
    int json, quiet, force;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.seed = 0, .epochs = -1, .steps = -1, .batch = -1, .warmup = -1,
                .patience = -1, .limit = 0, .window = 0, .split_seed = 0, .lr = NAN,
                .wd = NAN, .momentum = NAN, .clip = NAN, .dropout = NAN, .val = NAN,
                .penalty = NAN};
    cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},  {O_EPOCHS, &o->epochs, 1, 1000000},
        {O_STEPS, &o->steps, 1, 1L << 40}, {O_BATCH, &o->batch, 1, 1 << 16},
        {O_WARMUP, &o->warmup, 0, 1L << 40}, {O_PATIENCE, &o->patience, 1, 1000000},
        {O_LIMIT, &o->limit, 1, 1L << 40}, {O_WINDOW, &o->window, 1, 365},
        {O_SPLIT_SEED, &o->split_seed, 0, 1L << 53}};
    cli_real_opt reals[] = {
        {O_LR, &o->lr, 1e-12, 100},      {O_WD, &o->wd, 0, 100},
        {O_MOMENTUM, &o->momentum, 0, 1}, {O_CLIP, &o->clip, 0, 1e30},
        {O_DROPOUT, &o->dropout, 0, 0.99}, {O_VAL, &o->val, 0, 0.9},
        {O_PENALTY, &o->penalty, 0, 1e6}};
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
        case O_DATA: o->data = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_MODEL: o->model = optarg; break;
        case O_OPTIM: o->optim = optarg; break;
        case O_SCHED: o->sched = optarg; break;
        case O_WIDTHS: o->widths = optarg; break;
        case O_ACT: o->act = optarg; break;
        case O_LOSS: o->loss = optarg; break;
        case O_EXCLUDE: o->exclude = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_FORCE: o->force = 1; break;
        case 'h': print_usage(stdout); return -1;
        default: return cli_bad_option("train", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("train", "unexpected argument '%s'", argv[optind]);
    if (!o->data || !o->out)
        return cli_usage("train", "--data and --out are required");
    return 0;
}

/* Apply the options over the recipe. */
static lethe_status apply(const opts *o, const lethe_dataset *ds, lethe_recipe *r)
{
    lethe_status st = lethe_recipe_default(ds, o->model, r);
    lethe_train_cfg *c = &r->cfg;
    if (st == LETHE_OK && o->optim)
        st = lethe_optim_parse(o->optim, &c->optim);
    if (st == LETHE_OK && o->sched)
        st = lethe_sched_parse(o->sched, &c->sched);
    if (st != LETHE_OK)
        return st;
    if (o->loss) {
        if (ds->task != LETHE_TASK_REGRESS || (strcmp(o->loss, "mse") && strcmp(o->loss, "l1")))
            return lethe_fail(LETHE_ERR_INVALID, "--loss %s: regressors take mse or l1; "
                              "classifiers always use cross-entropy", o->loss);
        c->loss = strcmp(o->loss, "l1") ? LETHE_LOSS_MSE : LETHE_LOSS_L1;
    }
    if (o->widths) {
        if (strcmp(r->model, "mlp"))
            return lethe_fail(LETHE_ERR_INVALID, "--widths is for --model mlp");
        snprintf(r->widths, sizeof r->widths, "%s", o->widths);
    }
    if (o->act)
        snprintf(r->act, sizeof r->act, "%s", o->act);
    if (!isnan(o->dropout))
        r->dropout = o->dropout;
    c->seed = (uint64_t)o->seed;
    if (o->epochs > 0)
        c->epochs = (int)o->epochs, c->steps = 0;
    if (o->steps > 0)
        c->steps = o->steps;
    if (o->batch > 0)
        c->batch = (int)o->batch;
    if (o->warmup >= 0)
        c->warmup = o->warmup;
    if (o->patience > 0)
        c->patience = (int)o->patience;
    if (!isnan(o->lr))
        c->lr = (float)o->lr;
    if (!isnan(o->wd))
        c->weight_decay = (float)o->wd;
    if (!isnan(o->momentum))
        c->momentum = (float)o->momentum;
    if (!isnan(o->clip))
        c->clip = (float)o->clip;
    if (!isnan(o->val))
        c->val_frac = o->val;
    if (!isnan(o->penalty))
        c->grad_penalty = (float)o->penalty;
    if (c->patience && c->val_frac <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "--patience needs --val F");
    c->quiet = o->quiet;
    return LETHE_OK;
}

static const char *loss_name(lethe_loss l)
{
    return l == LETHE_LOSS_XENT ? "xent" : l == LETHE_LOSS_MSE ? "mse" : "l1";
}

static const char *sched_name(lethe_sched_kind s)
{
    return s == LETHE_SCHED_CONSTANT ? "constant" : s == LETHE_SCHED_STEP ? "step" : "cosine";
}

/* config.json: everything needed to reproduce the run. */
static cJSON *make_config(const opts *o, const lethe_recipe *r, const char *spec, long n_train,
                          const char *data_hash, const char *excl_hash)
{
    const lethe_train_cfg *c = &r->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "model", r->model);
    cJSON_AddStringToObject(j, "spec", spec);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "limit", (double)o->limit);
    cJSON_AddNumberToObject(j, "window", (double)o->window);
    if (o->exclude)
        cJSON_AddStringToObject(j, "exclude", o->exclude);
    else
        cJSON_AddNullToObject(j, "exclude");
    cJSON_AddNumberToObject(j, "split_seed", (double)o->split_seed);
    cJSON_AddStringToObject(j, "data_hash", data_hash);
    cJSON_AddStringToObject(j, "exclude_hash", excl_hash);
    cJSON_AddNumberToObject(j, "n_train", (double)n_train);
    cJSON_AddStringToObject(j, "optim", c->optim == LETHE_OPTIM_SGD ? "sgd" : "adamw");
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(j, "momentum", c->momentum);
    cJSON_AddStringToObject(j, "sched", sched_name(c->sched));
    cJSON_AddNumberToObject(j, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "steps", (double)c->steps);
    cJSON_AddNumberToObject(j, "clip", c->clip);
    cJSON_AddStringToObject(j, "loss", loss_name(c->loss));
    cJSON_AddNumberToObject(j, "val", c->val_frac);
    cJSON_AddNumberToObject(j, "patience", c->patience);
    cJSON_AddNumberToObject(j, "grad_penalty", c->grad_penalty);
    return j;
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
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows all = {0}, excl = {0}, rows = {0};
    lethe_net *net = NULL;
    lethe_afile *log = NULL;
    lethe_rundir *rd = NULL;
    cJSON *config = NULL;
    lethe_recipe r;
    char spec[512], path[4200], data_hash[17], excl_hash[17] = "0000000000000000";
    lethe_task_opts topts = {o.limit, (int)o.window};
    const lethe_task_info *named;
    const char *inputs[] = {lethe_task_find(o.data, &named) == LETHE_OK ? NULL : o.data,
                            o.exclude}; /* files: a task's name is not a path */
    lethe_error_clear();
    lethe_status st = lethe_rundir_begin(o.out, o.force, inputs, 2, &rd);
    if (st == LETHE_OK)
        st = lethe_task_load(o.data, &topts, &train, &test);
    if (st == LETHE_OK)
        st = apply(&o, train, &r);
    if (st == LETHE_OK)
        st = lethe_recipe_spec(&r, train, spec, sizeof spec);
    if (st == LETHE_OK && !(net = lethe_net_init(spec)))
        st = LETHE_ERR_INVALID;
    if (st == LETHE_OK)
        st = lethe_rows_all(&all, train->n);
    if (st == LETHE_OK && o.exclude &&
        (st = lethe_split_select(train, o.exclude, (uint64_t)o.split_seed, &excl)) == LETHE_OK)
        lethe_rows_hash(train, &excl, excl_hash);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&rows, &all, &excl);
    if (st == LETHE_OK && rows.n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "--exclude %s leaves no training sample", o.exclude);
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    if (st == LETHE_OK && !(log = lethe_afile_open(path)))
        st = LETHE_ERR_IO;
    if (st != LETHE_OK)
        goto done;
    lethe_rows_hash(train, NULL, data_hash);
    lethe_net_init_params(net, (uint64_t)o.seed);
    lethe_train_result res;
    if ((st = lethe_train(net, train, &rows, &r.cfg, log->fp, &res)) != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    config = make_config(&o, &r, spec, rows.n, data_hash, excl_hash);
    char seed[32];
    snprintf(seed, sizeof seed, "%ld", o.seed);
    const char *meta[] = {"data", o.data, "data_hash", data_hash, "exclude_hash", excl_hash,
                          "seed", seed, "method", o.exclude ? "retrain" : "train"};
    if (st == LETHE_OK)
        st = lethe_run_save(o.out, net, config, meta, sizeof meta / sizeof meta[0] / 2);
    lethe_scores s_train, s_test;
    if (st == LETHE_OK)
        st = lethe_score(net, train, &rows, &s_train);
    if (st == LETHE_OK)
        st = lethe_score(net, test, NULL, &s_test);
    if (st != LETHE_OK)
        goto done;
    int classify = train->task == LETHE_TASK_CLASSIFY;
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", o.out);
        cJSON_AddStringToObject(j, "spec", spec);
        cJSON_AddNumberToObject(j, "steps", (double)res.steps);
        cJSON_AddNumberToObject(j, "epochs", res.epochs);
        cJSON_AddNumberToObject(j, "excluded", (double)excl.n);
        cJSON_AddNumberToObject(j, "seconds", res.seconds);
        cJSON_AddNumberToObject(j, "samples_per_second",
                                res.seconds > 0 ? (double)res.steps * r.cfg.batch / res.seconds
                                                : 0);
        add_scores(j, "train", &s_train, classify);
        add_scores(j, "test", &s_test, classify);
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("trained %s on %s: %ld samples", spec, o.data, rows.n);
        if (excl.n)
            printf(" (%ld excluded by %s)", excl.n, o.exclude);
        printf(", %d epochs, %ld steps, %.1f s\n", res.epochs, res.steps, res.seconds);
        print_scores("train", &s_train, classify);
        print_scores("test", &s_test, classify);
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", o.out);
    }
done:
    lethe_afile_abort(log);
    lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    lethe_net_free(net);
    lethe_rows_free(&all);
    lethe_rows_free(&excl);
    lethe_rows_free(&rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report_out("train", st);
}
