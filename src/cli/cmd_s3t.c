/* lethe s3t: sequence-aware sharded sliced training, deletion without a
 * gradient step, and the deletion-capacity simulation. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/progress.h"
#include "lethe/recipe.h"
#include "lethe/run.h"
#include "lethe/s3t.h"

#define DEFAULT_SHARDS 5
#define DEFAULT_SLICES 2
#define DEFAULT_RUNS 100

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe s3t train --data NAME --out DIR [options]\n"
            "       lethe s3t forget DIR --ids SPLIT [--json]\n"
            "       lethe s3t predict DIR [--split SPLIT] [--shard K] [--json]\n"
            "       lethe s3t eval DIR [--json]\n"
            "       lethe s3t status DIR [--json]\n"
            "       lethe s3t simulate --shards M --slices L --budget B [--runs N] [options]\n\n"
            "S3T splits the training set into M shards of L slices, and the layers below\n"
            "the model's head into L groups counted from the top. Each shard is trained\n"
            "along B slice orders: step i of an order trains only layer group i and the\n"
            "head, on the slices of the order's first i+1 positions, and keeps a\n"
            "checkpoint. A deletion is recorded in DIR/ledger.log first; then every order\n"
            "of the affected shard is cut just before the deleted slice and the shard\n"
            "serves the checkpoint of its longest surviving prefix. No gradient step is\n"
            "taken. A shard with no surviving prefix is dead; predictions average the\n"
            "logits of the live shards. When every shard is dead, forget applies the\n"
            "request and exits 1: the model must be retrained (s3t train --exclude).\n"
            "Every command first applies requests that a crash left pending.\n\n"
            "train options:\n"
            "  --data NAME        the task (see lethe train --help)\n"
            "  --model KIND       mlp or cnn (default mlp; the task's recipe)\n"
            "  --widths W         mlp hidden widths; at least L layers, e.g. 64-64-64-64\n"
            "  --shards M         number of shards (default %d)\n"
            "  --slices L         slices per shard and layer groups (default %d)\n"
            "  --budget B         slice orders per shard (default: L)\n"
            "  --order O          cyclic (default) or bms (bipartite-matching selection)\n"
            "  --prior FILE       bms: per-slice deletion prior, L numbers (or M x L)\n"
            "  --epochs E         epochs of budget per order (default: the recipe's)\n"
            "  --batch N, --lr X  as lethe train (default: the recipe's; constant rate)\n"
            "  --seed N           shards, slices, initialisation, order (default 0)\n"
            "  --limit N          the first N training samples only\n"
            "  --exclude SPLIT    train without these samples\n"
            "  --out DIR          the directory to create\n"
            "forget options:\n"
            "  --ids SPLIT        the samples to delete: ids:FILE, a FILE of ids, class:K, ...\n"
            "predict options:\n"
            "  --split SPLIT      test (default), train, or a training subset\n"
            "  --shard K          one shard's served model instead of the ensemble\n"
            "simulate options:\n"
            "  --shards M, --slices L, --budget B, --order O   as for train (L default 6)\n"
            "  --prior FILE       L weights: deletions hit slices in proportion (and bms\n"
            "                     chooses its orders by them); default uniform\n"
            "  --runs N           simulated deletion streams (default %d)\n"
            "  --seed N           the streams' seed (default 0)\n\n"
            "Exit codes: 0 ok, 1 failure (every shard dead: retrain), 2 usage error,\n"
            "3 bad input (unknown or already deleted ids, a directory of another kind,\n"
            "a damaged ledger, too few layers for the slices).\n",
            DEFAULT_SHARDS, DEFAULT_SLICES, DEFAULT_RUNS);
}

static int report_json(cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    cJSON_Delete(j);
    return CLI_EXIT_OK;
}

static int parse_order(const char *name, lethe_s3t_order *o)
{
    if (!strcmp(name, "cyclic"))
        *o = LETHE_S3T_CYCLIC;
    else if (!strcmp(name, "bms"))
        *o = LETHE_S3T_BMS;
    else
        return -1;
    return 0;
}

/* Numbers separated by white space or commas; '#' starts a comment. */
static lethe_status read_prior(const char *path, double **out, long *n)
{
    unsigned char *buf;
    size_t len;
    *out = NULL, *n = 0;
    lethe_status st = lethe_file_read(path, &buf, &len);
    if (st != LETHE_OK)
        return st;
    double *v = malloc(sizeof(double) * (len / 2 + 1));
    if (!v) {
        free(buf);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    char *p = (char *)buf;
    long line = 1;
    while (*p) {
        if (*p == '#') {
            while (*p && *p != '\n')
                p++;
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == ',' || *p == '\n') {
            line += *p == '\n';
            p++;
        } else {
            char *end;
            double x = strtod(p, &end);
            if (end == p || !isfinite(x) || x < 0 ||
                (*end && !strchr(" \t\r\n,#", *end))) {
                free(v);
                free(buf);
                return lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: expected a number >= 0", path,
                                  line);
            }
            v[(*n)++] = x;
            p = end;
        }
    }
    free(buf);
    if (*n == 0) {
        free(v);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no numbers", path);
    }
    *out = v;
    return LETHE_OK;
}

static int s3t_train(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'},   {"model", 1, 0, 'm'},  {"widths", 1, 0, 'w'},
        {"shards", 1, 0, 'S'}, {"slices", 1, 0, 'R'}, {"budget", 1, 0, 'B'},
        {"order", 1, 0, 'O'},  {"prior", 1, 0, 'p'},  {"epochs", 1, 0, 'e'},
        {"batch", 1, 0, 'b'},  {"lr", 1, 0, 'l'},     {"seed", 1, 0, 's'},
        {"limit", 1, 0, 'L'},  {"exclude", 1, 0, 'x'}, {"out", 1, 0, 'o'},
        {"json", 0, 0, 'j'},   {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    const char *data = NULL, *model = NULL, *widths = NULL, *order_s = "cyclic",
               *prior_file = NULL, *exclude = NULL, *out = NULL;
    long shards = DEFAULT_SHARDS, slices = DEFAULT_SLICES, budget = 0, epochs = 0, batch = 0,
         seed = 0, limit = 0;
    double lr = 0;
    int json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const cli_long_opt ints[] = {
            {'S', &shards, 1, 1024},    {'R', &slices, 1, LETHE_S3T_MAX_SLICES},
            {'B', &budget, 1, LETHE_S3T_MAX_BUDGET}, {'e', &epochs, 1, 1000000},
            {'b', &batch, 1, 1L << 20}, {'s', &seed, 0, 1L << 53}, {'L', &limit, 0, 1L << 40}};
        int done = cli_numeric_option("s3t", longopts, c, optarg, ints,
                                      sizeof ints / sizeof *ints, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'd': data = optarg; break;
        case 'm': model = optarg; break;
        case 'w': widths = optarg; break;
        case 'O': order_s = optarg; break;
        case 'p': prior_file = optarg; break;
        case 'x': exclude = optarg; break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'l':
            if (cli_parse_double(optarg, &lr) || !(lr > 0))
                return cli_usage("s3t", "--lr needs a positive number");
            break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("s3t", "unknown or incomplete option");
        }
    }
    lethe_s3t_order order;
    if (optind < argc)
        return cli_usage("s3t", "unexpected argument '%s'", argv[optind]);
    if (!data || !out)
        return cli_usage("s3t", "train needs --data and --out");
    if (parse_order(order_s, &order))
        return cli_usage("s3t", "--order is cyclic or bms");
    if (prior_file && order != LETHE_S3T_BMS)
        return cli_usage("s3t", "--prior is for --order bms");
    if (!budget)
        budget = slices;
    lethe_task_opts opts = {limit, 0};
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows excl = {0};
    lethe_recipe r;
    lethe_s3t *s = NULL;
    double *prior = NULL;
    long n_prior = 0;
    char spec[512];
    lethe_status st = prior_file ? read_prior(prior_file, &prior, &n_prior) : LETHE_OK;
    if (st == LETHE_OK)
        st = lethe_task_load(data, &opts, &train, &test);
    if (st == LETHE_OK)
        st = lethe_recipe_default(train, model, &r);
    if (st == LETHE_OK && !strcmp(r.model, "linear"))
        st = lethe_fail(LETHE_ERR_INVALID, "s3t takes --model mlp or cnn");
    if (st == LETHE_OK && widths) {
        if (strcmp(r.model, "mlp"))
            st = lethe_fail(LETHE_ERR_INVALID, "--widths is for --model mlp");
        else
            snprintf(r.widths, sizeof r.widths, "%s", widths);
    }
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
        r.cfg.sched = LETHE_SCHED_CONSTANT;
        st = lethe_s3t_create(out, data, &opts, spec, &r.cfg, (int)shards, (int)slices,
                              (int)budget, order, prior, n_prior, (uint64_t)seed,
                              exclude ? &excl : NULL, &s);
    }
    double t0 = lethe_now();
    if (st == LETHE_OK)
        st = lethe_s3t_train(s);
    double secs = lethe_now() - t0;
    if (st == LETHE_OK) {
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "dir", out);
            cJSON_AddNumberToObject(j, "shards", (double)shards);
            cJSON_AddNumberToObject(j, "slices", (double)slices);
            cJSON_AddNumberToObject(j, "budget", (double)budget);
            cJSON_AddStringToObject(j, "order", order_s);
            cJSON_AddNumberToObject(j, "trained_prefixes", (double)s->trained_prefixes);
            cJSON_AddNumberToObject(j, "excluded", (double)excl.n);
            cJSON_AddNumberToObject(j, "seconds", secs);
            report_json(j);
        } else {
            printf("trained %ld shards x %ld %s orders of %ld slices (%ld prefix checkpoints) "
                   "of %s on %s (%ld excluded) in %.2f s\n",
                   shards, budget, order_s, slices, s->trained_prefixes, spec, data, excl.n, secs);
        }
    }
    free(prior);
    lethe_s3t_free(s);
    lethe_rows_free(&excl);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("s3t", st);
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

/* The served prefix of shard k as "a-b-c" into buf. */
static void prefix_text(const lethe_s3t *s, int k, char *buf, size_t cap)
{
    buf[0] = 0;
    int b = s->served[k];
    const int *sq = b >= 0 ? s->seq + ((size_t)k * (size_t)s->budget + (size_t)b) *
                                         (size_t)s->slices
                           : NULL;
    for (int i = 0; sq && i < s->served_len[k]; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, i ? "-%d" : "%d", sq[i]);
    }
}

static cJSON *status_json(const lethe_s3t *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", s->task);
    cJSON_AddStringToObject(j, "spec", s->spec);
    cJSON_AddNumberToObject(j, "slices", s->slices);
    cJSON_AddNumberToObject(j, "budget", s->budget);
    cJSON_AddStringToObject(j, "order", s->order == LETHE_S3T_BMS ? "bms" : "cyclic");
    cJSON_AddNumberToObject(j, "excluded", (double)s->n_excluded);
    cJSON_AddNumberToObject(j, "requests", (double)s->ledger->n_req);
    cJSON_AddNumberToObject(j, "pending", (double)lethe_ledger_pending(s->ledger));
    cJSON_AddNumberToObject(j, "applied",
                            (double)(s->ledger->n_req - lethe_ledger_pending(s->ledger)));
    cJSON_AddNumberToObject(j, "live", lethe_s3t_live(s));
    cJSON *arr = cJSON_AddArrayToObject(j, "shards");
    for (int k = 0; k < s->shards; k++) {
        cJSON *o = cJSON_CreateObject();
        int b = s->served[k], len = s->served_len[k];
        cJSON_AddNumberToObject(o, "shard", k);
        cJSON_AddBoolToObject(o, "live", b >= 0);
        cJSON_AddNumberToObject(o, "sequence", b);
        cJSON_AddNumberToObject(o, "prefix", len);
        char path[4200];
        lethe_s3t_model_path(s, k, path, sizeof path);
        if (b >= 0) {
            size_t p = ((size_t)k * (size_t)s->budget + (size_t)b) * (size_t)s->slices +
                       (size_t)len - 1;
            cJSON_AddStringToObject(o, "file", path);
            cJSON_AddStringToObject(o, "sha256", s->sha[p]);
        } else {
            cJSON_AddNullToObject(o, "file");
            cJSON_AddNullToObject(o, "sha256");
        }
        cJSON *seqs = cJSON_AddArrayToObject(o, "sequences");
        for (int q = 0; q < s->budget; q++) {
            const int *sq =
                s->seq + ((size_t)k * (size_t)s->budget + (size_t)q) * (size_t)s->slices;
            int keep = 0;
            while (keep < s->slices && !s->hit[(size_t)k * (size_t)s->slices + (size_t)sq[keep]])
                keep++;
            cJSON *e = cJSON_CreateObject();
            cJSON *sl = cJSON_AddArrayToObject(e, "slices");
            for (int i = 0; i < s->slices; i++)
                cJSON_AddItemToArray(sl, cJSON_CreateNumber(sq[i]));
            cJSON_AddNumberToObject(e, "surviving", keep);
            cJSON_AddItemToArray(seqs, e);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return j;
}

static void print_status(const lethe_s3t *s, cJSON *j)
{
    printf("%s: S3T over %s, %d shards x %d slices, budget %d (%s), %s\n", s->dir, s->task,
           s->shards, s->slices, s->budget, s->order == LETHE_S3T_BMS ? "bms" : "cyclic",
           s->spec);
    printf("requests: %ld (%ld pending), %ld ids excluded at training\n", s->ledger->n_req,
           lethe_ledger_pending(s->ledger), s->n_excluded);
    printf("live shards: %d of %d\n", lethe_s3t_live(s), s->shards);
    const cJSON *sh;
    cJSON_ArrayForEach(sh, cJSON_GetObjectItem(j, "shards"))
    {
        int k = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "shard"));
        char pre[4 * LETHE_S3T_MAX_SLICES];
        prefix_text(s, k, pre, sizeof pre);
        if (s->served[k] < 0) {
            printf("  shard %-3d dead (every order cut at its first slice)\n", k);
        } else {
            printf("  shard %-3d prefix %d/%d of order %d (slices %s)  %s  sha256 %s\n", k,
                   s->served_len[k], s->slices, s->served[k], pre,
                   cJSON_GetStringValue(cJSON_GetObjectItem(sh, "file")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(sh, "sha256")));
        }
        printf("            orders:");
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(sh, "sequences"))
        {
            const cJSON *v;
            int i = 0, keep = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "surviving"));
            printf(" ");
            cJSON_ArrayForEach(v, cJSON_GetObjectItem(e, "slices"))
            printf("%s%d", i == keep ? "|" : i ? "-" : "", (int)v->valuedouble), i++;
        }
        printf("\n");
    }
    printf("(| marks where deletions cut an order)\n");
}

/* The sub-commands that work on an existing directory. */
static int s3t_dir(const char *sub, int argc, char **argv)
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
                return cli_usage("s3t", "--shard needs a shard number");
            break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("s3t", "unknown or incomplete option");
        }
    }
    if (optind != argc - 1)
        return cli_usage("s3t", "%s needs one directory", sub);
    int forget = !strcmp(sub, "forget");
    if (forget != (ids != NULL))
        return cli_usage("s3t", forget ? "forget needs --ids" : "--ids is for forget");
    const char *dir = argv[optind];
    lethe_s3t *s = NULL;
    lethe_rows rows = {0};
    long req = 0;
    float *y = NULL;
    lethe_status st = lethe_s3t_open(dir, &s);
    if (st == LETHE_OK && shard >= s->shards)
        st = lethe_fail(LETHE_ERR_INVALID, "%s has shards 0-%d", dir, s->shards - 1);
    if (st == LETHE_OK && !s->trained)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: training did not finish (no state.json); train "
                        "again into a new directory", dir);
    if (st != LETHE_OK)
        goto done;
    cJSON *j = cJSON_CreateObject();
    if (forget) {
        double t0 = 0, t1 = 0, t2 = 0;
        if ((st = lethe_split_select(s->train, ids, 0, &rows)) == LETHE_OK) {
            t0 = lethe_now();
            st = lethe_s3t_request(s, &rows, &req);
            t1 = lethe_now();
        }
        if (st == LETHE_OK && !json)
            printf("request %ld recorded: %ld ids\n", req, rows.n), fflush(stdout); /* the ack */
        if (st == LETHE_OK) {
            st = lethe_s3t_apply(s);
            t2 = lethe_now();
        }
        int live = st == LETHE_OK ? lethe_s3t_live(s) : 0;
        if (st == LETHE_OK) {
            cJSON_AddNumberToObject(j, "request", (double)req);
            cJSON_AddNumberToObject(j, "ids", (double)rows.n);
            cJSON_AddNumberToObject(j, "live", live);
            cJSON_AddNumberToObject(j, "removed_checkpoints", (double)s->removed);
            cJSON_AddNumberToObject(j, "gradient_steps", 0);
            cJSON_AddNumberToObject(j, "record_seconds", t1 - t0);
            cJSON_AddNumberToObject(j, "switch_seconds", s->switch_seconds);
            cJSON_AddNumberToObject(j, "serve_seconds", t1 - t0 + s->switch_seconds);
            cJSON_AddNumberToObject(j, "erase_seconds", s->erase_seconds);
            cJSON_AddNumberToObject(j, "seconds", t2 - t0);
            cJSON *pl = cJSON_AddArrayToObject(j, "prefix");
            for (int k = 0; k < s->shards; k++)
                cJSON_AddItemToArray(pl, cJSON_CreateNumber(s->served_len[k]));
            if (!json)
                printf("served in %.3f ms, no gradient step (ledger record %.3f ms, switch "
                       "%.3f ms); %ld checkpoints trained on it removed in %.3f ms; applied "
                       "in %.3f ms in all; %d of %d shards live\n",
                       1e3 * (t1 - t0 + s->switch_seconds), 1e3 * (t1 - t0),
                       1e3 * s->switch_seconds, s->removed, 1e3 * s->erase_seconds,
                       1e3 * (t2 - t0), live, s->shards);
        }
        if (st == LETHE_OK && live == 0) {
            if (json)
                report_json(j), j = NULL;
            st = lethe_fail(LETHE_ERR_FAILED, "request %ld applied, and every shard of %s is "
                            "now dead: no model remains and a full retrain is needed "
                            "(lethe s3t train --exclude the deleted ids)", req, dir);
        }
    } else if (!strcmp(sub, "status")) {
        cJSON_Delete(j);
        j = status_json(s);
        if (!json)
            print_status(s, j);
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
        long n_out = probe ? probe->n_out : 1;
        lethe_net_free(probe);
        long n = use_rows ? rows.n : ds->n;
        y = malloc(sizeof(float) * (size_t)(n * n_out + 1));
        cJSON_AddNumberToObject(j, "n", (double)n);
        cJSON_AddNumberToObject(j, "live", lethe_s3t_live(s));
        cJSON *arr = is_eval ? cJSON_AddArrayToObject(j, "shards") : NULL;
        int from = is_eval ? -1 : (int)shard, to = is_eval ? s->shards - 1 : (int)shard;
        for (int k = from; k <= to && st == LETHE_OK; k++) {
            if (is_eval && k >= 0 && s->served[k] < 0)
                continue;
            if (!y) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                break;
            }
            if ((st = lethe_s3t_predict(s, k, ds, use_rows ? &rows : NULL, y)) != LETHE_OK)
                break;
            cJSON *o = k >= 0 && is_eval ? cJSON_CreateObject() : j;
            if (o != j) {
                cJSON_AddNumberToObject(o, "shard", k);
                cJSON_AddNumberToObject(o, "prefix", s->served_len[k]);
                cJSON_AddItemToArray(arr, o);
            }
            char label[32];
            snprintf(label, sizeof label, k < 0 ? "ensemble" : "shard %d", k);
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
    lethe_s3t_free(s);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("s3t", st);
}

static cJSON *stat_json(const lethe_s3t_stat *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", s->mean);
    cJSON_AddNumberToObject(o, "sd", s->sd);
    cJSON_AddNumberToObject(o, "min", (double)s->min);
    cJSON_AddNumberToObject(o, "max", (double)s->max);
    return o;
}

static int s3t_simulate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"shards", 1, 0, 'S'}, {"slices", 1, 0, 'R'}, {"budget", 1, 0, 'B'},
        {"runs", 1, 0, 'n'},   {"seed", 1, 0, 's'},   {"order", 1, 0, 'O'},
        {"prior", 1, 0, 'p'},  {"json", 0, 0, 'j'},   {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    long shards = DEFAULT_SHARDS, slices = 6, budget = 0, runs = DEFAULT_RUNS, seed = 0;
    const char *order_s = "cyclic", *prior_file = NULL;
    int json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const cli_long_opt ints[] = {
            {'S', &shards, 1, 100000}, {'R', &slices, 1, LETHE_S3T_MAX_SLICES},
            {'B', &budget, 1, LETHE_S3T_MAX_BUDGET}, {'n', &runs, 1, 10000000},
            {'s', &seed, 0, 1L << 53}};
        int done = cli_numeric_option("s3t", longopts, c, optarg, ints,
                                      sizeof ints / sizeof *ints, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'O': order_s = optarg; break;
        case 'p': prior_file = optarg; break;
        case 'j': json = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("s3t", "unknown or incomplete option");
        }
    }
    lethe_s3t_order order;
    if (optind < argc)
        return cli_usage("s3t", "unexpected argument '%s'", argv[optind]);
    if (parse_order(order_s, &order))
        return cli_usage("s3t", "--order is cyclic or bms");
    if (!budget)
        budget = slices;
    lethe_s3t_capacity cap;
    double *prior = NULL;
    long n_prior = 0;
    lethe_status st = prior_file ? read_prior(prior_file, &prior, &n_prior) : LETHE_OK;
    if (st == LETHE_OK && prior && n_prior != slices)
        st = lethe_fail(LETHE_ERR_INVALID, "%s holds %ld numbers; simulate needs one per slice "
                        "(%ld)", prior_file, n_prior, slices);
    if (st == LETHE_OK)
        st = lethe_s3t_simulate((int)shards, (int)slices, (int)budget, order, prior, runs,
                                (uint64_t)seed, &cap);
    free(prior);
    if (st != LETHE_OK)
        return cli_report("s3t", st);
    double ratio = cap.s3t_model.mean / cap.sisa_model.mean;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "shards", (double)shards);
        cJSON_AddNumberToObject(j, "slices", (double)slices);
        cJSON_AddNumberToObject(j, "budget", (double)budget);
        cJSON_AddStringToObject(j, "order", order_s);
        cJSON_AddNumberToObject(j, "runs", (double)runs);
        cJSON_AddNumberToObject(j, "seed", (double)seed);
        cJSON *sisa = cJSON_AddObjectToObject(j, "sisa");
        cJSON_AddItemToObject(sisa, "shard_dies", stat_json(&cap.sisa_shard));
        cJSON_AddItemToObject(sisa, "model_dies", stat_json(&cap.sisa_model));
        cJSON_AddNumberToObject(sisa, "expected_model_dies", cap.sisa_expected);
        cJSON *s3t = cJSON_AddObjectToObject(j, "s3t");
        cJSON_AddItemToObject(s3t, "shard_dies", stat_json(&cap.s3t_shard));
        cJSON_AddItemToObject(s3t, "model_dies", stat_json(&cap.s3t_model));
        if (isnan(cap.s3t_expected))
            cJSON_AddNullToObject(s3t, "expected_model_dies");
        else
            cJSON_AddNumberToObject(s3t, "expected_model_dies", cap.s3t_expected);
        cJSON_AddNumberToObject(s3t, "lead_slices", cap.lead);
        cJSON_AddNumberToObject(j, "ratio", ratio);
        return report_json(j);
    }
    printf("deletion capacity, %ld runs of %s deletions over %ld shards x %ld slices;\n"
           "S3T budget %ld (%s), %d distinct first slices per shard\n\n",
           runs, prior_file ? "prior-weighted" : "uniform", shards, slices, budget, order_s,
           cap.lead);
    printf("deletions until          mean       sd    min    max   expected\n");
    printf("SISA  a shard dies   %9.2f %8.2f %6ld %6ld\n", cap.sisa_shard.mean,
           cap.sisa_shard.sd, cap.sisa_shard.min, cap.sisa_shard.max);
    printf("SISA  the model dies %9.2f %8.2f %6ld %6ld %10.2f  (m H_m)\n", cap.sisa_model.mean,
           cap.sisa_model.sd, cap.sisa_model.min, cap.sisa_model.max, cap.sisa_expected);
    printf("S3T   a shard dies   %9.2f %8.2f %6ld %6ld\n", cap.s3t_shard.mean, cap.s3t_shard.sd,
           cap.s3t_shard.min, cap.s3t_shard.max);
    if (isnan(cap.s3t_expected))
        printf("S3T   the model dies %9.2f %8.2f %6ld %6ld          -\n", cap.s3t_model.mean,
               cap.s3t_model.sd, cap.s3t_model.min, cap.s3t_model.max);
    else
        printf("S3T   the model dies %9.2f %8.2f %6ld %6ld %10.2f  (m L H_{m %d})\n",
               cap.s3t_model.mean, cap.s3t_model.sd, cap.s3t_model.min, cap.s3t_model.max,
               cap.s3t_expected, cap.lead);
    printf("\ncapacity ratio S3T / SISA (model dies): %.2f\n", ratio);
    return CLI_EXIT_OK;
}

int cmd_s3t(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "train"))
        return s3t_train(argc - 1, argv + 1);
    if (!strcmp(sub, "simulate"))
        return s3t_simulate(argc - 1, argv + 1);
    if (!strcmp(sub, "forget") || !strcmp(sub, "predict") || !strcmp(sub, "eval") ||
        !strcmp(sub, "status"))
        return s3t_dir(sub, argc - 1, argv + 1);
    return cli_usage("s3t",
                     "unknown subcommand '%s' (train, forget, predict, eval, status, simulate)",
                     sub);
}
