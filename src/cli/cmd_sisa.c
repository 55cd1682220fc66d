/* lethe sisa: sharded training with exact deletion, and lethe ledger. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/json.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/sisa.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe sisa train --data NAME --shards S --slices R --out DIR [options]\n"
            "       lethe sisa forget DIR --ids SPLIT [--json]\n"
            "       lethe sisa predict DIR [--split SPLIT] [--shard K] [--json]\n"
            "       lethe sisa eval DIR [--json]\n"
            "       lethe sisa status DIR [--json]\n\n"
            "SISA trains S isolated models on disjoint shards of the training set, each\n"
            "slice by slice on cumulative data with a checkpoint per slice, and aggregates\n"
            "their predictions. A deletion is recorded in DIR/ledger.log first, then each\n"
            "affected shard is retrained from its first affected slice; the result is\n"
            "byte-identical to training from scratch with --exclude. Every command first\n"
            "applies requests that a crash left pending.\n\n"
            "train options:\n"
            "  --data NAME        the task (see lethe train --help)\n"
            "  --model KIND       mlp or cnn (default mlp; the task's recipe)\n"
            "  --shards S         number of shards (default 4)\n"
            "  --slices R         slices per shard (default 1)\n"
            "  --epochs E         epochs of budget per shard (default: the recipe's)\n"
            "  --batch N, --lr X  as lethe train (default: the recipe's; constant rate)\n"
            "  --aggregate A      vote (default) or mean (of probabilities)\n"
            "  --seed N           shard and slice assignment, initialisation, order\n"
            "  --limit N          the first N training samples only\n"
            "  --exclude SPLIT    train without these samples (the from-scratch reference)\n"
            "  --out DIR          the directory to create\n"
            "forget options:\n"
            "  --ids SPLIT        the samples to delete: ids:FILE, a FILE of ids, class:K, ...\n"
            "predict options:\n"
            "  --split SPLIT      test (default), train, or a training subset\n"
            "  --shard K          one shard's model instead of the aggregate\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown or already\n"
            "deleted ids, a directory of another kind, a damaged ledger).\n");
}

/* Accuracy (classifiers) or L1 and MSE (regressors) of outputs y into o,
 * and printed under `label` when it is not NULL. */
static void score(cJSON *o, const float *y, const lethe_dataset *ds, const lethe_rows *rows,
                  long n, long n_out, const char *label)
{
    double acc = 0, l1 = 0, mse = 0, m = n ? (double)n : 1;
    for (long i = 0; i < n; i++) {
        long r = rows ? rows->row[i] : i;
        const float *p = y + i * n_out;
        if (ds->task == LETHE_TASK_CLASSIFY) {
            long best = 0;
            for (long c = 1; c < n_out; c++)
                best = p[c] > p[best] ? c : best;
            acc += best == ds->y[r];
        } else {
            double e = ((double)p[0] - ds->t[r]) * ds->t_scale;
            l1 += e < 0 ? -e : e, mse += e * e;
        }
    }
    if (ds->task == LETHE_TASK_CLASSIFY) {
        cJSON_AddNumberToObject(o, "accuracy", 100 * acc / m);
        if (label)
            printf("%-9s accuracy %.2f%%\n", label, 100 * acc / m);
    } else {
        cJSON_AddNumberToObject(o, "l1", l1 / m);
        cJSON_AddNumberToObject(o, "mse", mse / m);
        if (label)
            printf("%-9s L1 %.6g  MSE %.6g\n", label, l1 / m, mse / m);
    }
}

static int report_json(cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    cJSON_Delete(j);
    return CLI_EXIT_OK;
}

static int sisa_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'},   {"model", 1, 0, 'm'},  {"shards", 1, 0, 'S'},
        {"slices", 1, 0, 'R'}, {"epochs", 1, 0, 'e'}, {"batch", 1, 0, 'b'},
        {"lr", 1, 0, 'l'},     {"aggregate", 1, 0, 'a'}, {"seed", 1, 0, 's'},
        {"limit", 1, 0, 'L'},  {"exclude", 1, 0, 'x'}, {"out", 1, 0, 'o'},
        {"json", 0, 0, 'j'},   {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    const char *data = NULL, *model = NULL, *agg = "vote", *exclude = NULL, *out = NULL;
    long shards = 4, slices = 1, epochs = 0, batch = 0, seed = 0, limit = 0;
    double lr = 0;
    int json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const cli_long_opt ints[] = {{'S', &shards, 1, 1024},     {'R', &slices, 1, 256},
                                     {'e', &epochs, 1, 1000000},  {'b', &batch, 1, 1L << 20},
                                     {'s', &seed, 0, 1L << 53},   {'L', &limit, 0, 1L << 40}};
        int done = cli_numeric_option("sisa", longopts, c, optarg, ints,
                                      sizeof ints / sizeof *ints, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'd': data = optarg; break;
        case 'm': model = optarg; break;
        case 'a': agg = optarg; break;
        case 'x': exclude = optarg; break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'l':
            if (cli_parse_double(optarg, &lr) || !(lr > 0))
                return cli_usage("sisa", "--lr needs a positive number");
            break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("sisa", "unknown or incomplete option");
        }
    }
    if (optind < argc)
        return cli_usage("sisa", "unexpected argument '%s'", argv[optind]);
    if (!data || !out)
        return cli_usage("sisa", "train needs --data and --out");
    if (strcmp(agg, "vote") && strcmp(agg, "mean"))
        return cli_usage("sisa", "--aggregate is vote or mean");
    lethe_task_opts opts = {limit, 0};
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows excl = {0};
    lethe_recipe r;
    lethe_sisa *s = NULL;
    char spec[512];
    lethe_status st = lethe_task_load(data, &opts, &train, &test);
    if (st == LETHE_OK)
        st = lethe_recipe_default(train, model, &r);
    if (st == LETHE_OK && !strcmp(r.model, "linear"))
        st = lethe_fail(LETHE_ERR_INVALID, "sisa takes --model mlp or cnn");
    if (st == LETHE_OK)
        st = lethe_recipe_spec(&r, train, spec, sizeof spec);
    if (st == LETHE_OK && exclude)
        st = lethe_split_select(train, exclude, 0, &excl);
    if (st == LETHE_OK) {
        if (epochs)
            r.cfg.epochs = (int)epochs;
        if (batch)
            r.cfg.batch = (int)batch;
        if (lr > 0)
            r.cfg.lr = (float)lr;
        st = lethe_sisa_create(out, data, &opts, spec, &r.cfg, (int)shards, (int)slices,
                               (uint64_t)seed, strcmp(agg, "mean") ? LETHE_AGG_VOTE
                                                                  : LETHE_AGG_MEAN,
                               exclude ? &excl : NULL, &s);
    }
    double t0 = lethe_now();
    if (st == LETHE_OK)
        st = lethe_sisa_sync(s);
    double secs = lethe_now() - t0;
    if (st == LETHE_OK) {
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "dir", out);
            cJSON_AddNumberToObject(j, "shards", (double)shards);
            cJSON_AddNumberToObject(j, "slices", (double)slices);
            cJSON_AddNumberToObject(j, "excluded", (double)excl.n);
            cJSON_AddNumberToObject(j, "seconds", secs);
            report_json(j);
        } else {
            printf("trained %ld shards x %ld slices of %s on %s (%ld excluded) in %.2f s\n",
                   shards, slices, spec, data, excl.n, secs);
        }
    }
    lethe_sisa_free(s);
    lethe_rows_free(&excl);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("sisa", st);
}

/* The sub-commands that work on an existing directory. */
static int sisa_dir(const char *sub, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ids", 1, 0, 'i'},  {"split", 1, 0, 's'}, {"shard", 1, 0, 'k'},
        {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    const char *ids = NULL, *split = "test";
    long shard = -1;
    int json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': ids = optarg; break;
        case 's': split = optarg; break;
        case 'j': json = 1; break;
        case 'k':
            if (cli_parse_long(optarg, &shard) || shard < 0)
                return cli_usage("sisa", "--shard needs a shard number");
            break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("sisa", "unknown or incomplete option");
        }
    }
    if (optind != argc - 1)
        return cli_usage("sisa", "%s needs one directory", sub);
    int forget = !strcmp(sub, "forget");
    if (forget != (ids != NULL))
        return cli_usage("sisa", forget ? "forget needs --ids" : "--ids is for forget");
    const char *dir = argv[optind];
    lethe_sisa *s = NULL;
    lethe_rows rows = {0};
    long req = 0, n_out = 0;
    float *y = NULL;
    lethe_status st = lethe_sisa_open(dir, &s);
    if (st == LETHE_OK && shard >= s->shards)
        st = lethe_fail(LETHE_ERR_INVALID, "%s has shards 0-%d", dir, s->shards - 1);
    double t0 = lethe_now();
    if (st == LETHE_OK && forget && (st = lethe_split_select(s->train, ids, 0, &rows)) == LETHE_OK &&
        (st = lethe_sisa_request(s, &rows, &req)) == LETHE_OK && !json)
        printf("request %ld recorded: %ld ids\n", req, rows.n), fflush(stdout); /* the ack */
    if (st == LETHE_OK)
        st = lethe_sisa_sync(s);
    double secs = lethe_now() - t0;
    if (st != LETHE_OK)
        goto done;
    cJSON *j = cJSON_CreateObject();
    if (forget) {
        cJSON_AddNumberToObject(j, "request", (double)req);
        cJSON_AddNumberToObject(j, "ids", (double)rows.n);
        cJSON_AddNumberToObject(j, "retrained_slices", (double)s->trained_slices);
        cJSON_AddNumberToObject(j, "seconds", secs);
        if (!json)
            printf("applied: retrained %ld slices in %.3f s\n", s->trained_slices, secs);
    } else if (!strcmp(sub, "status")) {
        cJSON_AddStringToObject(j, "data", s->task);
        cJSON_AddStringToObject(j, "spec", s->spec);
        cJSON_AddNumberToObject(j, "slices", s->slices);
        cJSON_AddNumberToObject(j, "excluded", (double)s->n_excluded);
        cJSON_AddNumberToObject(j, "requests", (double)s->ledger->n_req);
        cJSON_AddNumberToObject(j, "pending", (double)lethe_ledger_pending(s->ledger));
        cJSON *arr = cJSON_AddArrayToObject(j, "shards");
        char path[4200], st_path[4200];
        snprintf(st_path, sizeof st_path, "%s/state.json", dir);
        cJSON *state = NULL;
        if ((st = lethe_json_read(st_path, &state)) != LETHE_OK) {
            cJSON_Delete(j);
            goto done;
        }
        cJSON *sh;
        cJSON_ArrayForEach(sh, cJSON_GetObjectItem(state, "shards"))
        {
            lethe_sisa_model_path(s, (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "shard")),
                                  path, sizeof path);
            cJSON_AddStringToObject(sh, "file", path);
            cJSON_AddItemToArray(arr, cJSON_Duplicate(sh, 1));
        }
        cJSON_Delete(state);
        if (!json) {
            printf("%s: SISA over %s, %d shards x %d slices, %s\n", dir, s->task, s->shards,
                   s->slices, s->spec);
            printf("requests: %ld (%ld pending), %ld ids excluded at training\n",
                   s->ledger->n_req, lethe_ledger_pending(s->ledger), s->n_excluded);
            cJSON_ArrayForEach(sh, arr)
            printf("  shard %-3d %6d samples  %s  sha256 %s\n",
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "shard")),
                   (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "samples")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sh, "file")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sh, "sha256")));
        }
    } else { /* predict, eval */
        int is_eval = !strcmp(sub, "eval");
        const lethe_dataset *ds = s->test;
        int use_rows = 0;
        if (!is_eval && strcmp(split, "test")) {
            ds = s->train;
            use_rows = strcmp(split, "train") != 0;
            if (use_rows && (st = lethe_split_select(s->train, split, 0, &rows)) != LETHE_OK) {
                cJSON_Delete(j);
                goto done;
            }
        }
        lethe_net *probe = lethe_net_init(s->spec);
        n_out = probe ? probe->n_out : 1;
        lethe_net_free(probe);
        long n = use_rows ? rows.n : ds->n;
        y = malloc(sizeof(float) * (size_t)(n * n_out + 1));
        cJSON_AddNumberToObject(j, "n", (double)n);
        cJSON *arr = is_eval ? cJSON_AddArrayToObject(j, "shards") : NULL;
        int from = is_eval ? -1 : (int)shard, to = is_eval ? s->shards - 1 : (int)shard;
        for (int k = from; k <= to && st == LETHE_OK; k++) {
            if (is_eval && k >= 0 && lethe_sisa_samples(s, k) == 0)
                continue; /* every sample deleted: no model */
            if (!y || (st = lethe_sisa_predict(s, k, ds, use_rows ? &rows : NULL, y)) != LETHE_OK)
                break;
            cJSON *o = k >= 0 && is_eval ? cJSON_CreateObject() : j;
            if (o != j) {
                cJSON_AddNumberToObject(o, "shard", k);
                cJSON_AddItemToArray(arr, o);
            }
            char label[32];
            snprintf(label, sizeof label, k < 0 ? "aggregate" : "shard %d", k);
            score(o, y, ds, use_rows ? &rows : NULL, n, n_out, json ? NULL : label);
        }
    }
    if (json && st == LETHE_OK)
        report_json(j);
    else
        cJSON_Delete(j);
done:
    free(y);
    lethe_rows_free(&rows);
    lethe_sisa_free(s);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("sisa", st);
}

int cmd_sisa(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "train"))
        return sisa_train(argc - 1, argv + 1);
    if (!strcmp(sub, "forget") || !strcmp(sub, "predict") || !strcmp(sub, "eval") ||
        !strcmp(sub, "status"))
        return sisa_dir(sub, argc - 1, argv + 1);
    return cli_usage("sisa", "unknown subcommand '%s' (train, forget, predict, eval, status)",
                     sub);
}
