/* lethe s3t: sequence-aware sharded sliced training, deletion without a
 * gradient step, and the deletion-capacity simulation. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "ensemble.h"
#include "lethe/fileio.h"
#include "lethe/progress.h"
#include "lethe/s3t.h"


static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe s3t train --data NAME --out DIR [options]\n"
            "       lethe s3t forget DIR --ids SPLIT [--json] [--quiet]\n"
            "       lethe s3t predict DIR [--split SPLIT] [--shard K] [--json] [--quiet]\n"
            "       lethe s3t eval DIR [--json] [--quiet]\n"
            "       lethe s3t status DIR [--json] [--quiet]\n"
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
            ENS_HELP_SHARED
            "  --shard K          one shard's served model instead of the ensemble\n"
            "simulate options:\n"
            "  --shards M, --slices L, --budget B, --order O   as for train (L default 6)\n"
            "  --prior FILE       L weights: deletions hit slices in proportion (and bms\n"
            "                     chooses its orders by them); default uniform\n"
            "  --runs N           simulated deletion streams (default %d)\n"
            "  --seed N           the streams' seed (default 0)\n"
            "  --json, --quiet    print a JSON summary, or nothing but errors\n\n"
            "Exit codes: 0 ok, 1 failure (every shard dead: retrain), 2 usage error,\n"
            "3 bad input (unknown or already deleted ids, a directory of another kind,\n"
            "a damaged ledger, too few layers for the slices).\n",
            LETHE_S3T_SHARDS, LETHE_S3T_SLICES, LETHE_S3T_SIM_RUNS);
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
    ens_train_opts o = {.order = "cyclic", .shards = LETHE_S3T_SHARDS,
                        .slices = LETHE_S3T_SLICES};
    int rc = ens_train_parse("s3t", argc, argv, &o, print_usage);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_s3t_order order;
    if (parse_order(o.order, &order))
        return cli_usage("s3t", "--order is cyclic or bms");
    if (o.prior && order != LETHE_S3T_BMS)
        return cli_usage("s3t", "--prior is for --order bms");
    if (!o.budget)
        o.budget = o.slices;
    lethe_ensemble_recipe r = {0};
    lethe_ensemble_recipe_cfg rcfg = ens_recipe_cfg(&o);
    lethe_s3t *s = NULL;
    double *prior = NULL;
    long n_prior = 0;
    lethe_status st = o.prior ? read_prior(o.prior, &prior, &n_prior) : LETHE_OK;
    if (st == LETHE_OK)
        st = lethe_ensemble_recipe_load(&rcfg, &r);
    if (st == LETHE_OK)
        st = lethe_s3t_create(o.out, o.data, &r.opts, r.spec, &r.cfg, (int)o.shards,
                              (int)o.slices, (int)o.budget, order, prior, n_prior,
                              (uint64_t)o.seed, o.exclude ? &r.excl : NULL, o.exclude, o.force, &s);
    double t0 = lethe_now();
    if (st == LETHE_OK && (st = lethe_s3t_train(s)) == LETHE_OK) {
        cJSON *j = ens_train_json(&o);
        cJSON_AddNumberToObject(j, "budget", (double)o.budget);
        cJSON_AddStringToObject(j, "order", o.order);
        cJSON_AddNumberToObject(j, "trained_prefixes", (double)s->trained_prefixes);
        char what[128];
        snprintf(what, sizeof what, "%ld shards x %ld %s orders of %ld slices (%ld prefix "
                 "checkpoints)", o.shards, o.budget, o.order, o.slices, s->trained_prefixes);
        ens_train_done(&o, &r, j, what, lethe_now() - t0);
    }
    free(prior);
    lethe_s3t_free(s);
    lethe_ensemble_recipe_free(&r);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report_out("s3t", st);
}

/* The served prefix of shard k as "a-b-c" into buf. */
static void prefix_text(const lethe_s3t *s, int k, char *buf, size_t cap)
{
    buf[0] = 0;
    int b = s->served[k];
    const int *sq = b >= 0 ? s->seq + ((size_t)k * (size_t)s->budget + (size_t)b) *
                                         (size_t)s->e.slices
                           : NULL;
    for (int i = 0; sq && i < s->served_len[k]; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, i ? "-%d" : "%d", sq[i]);
    }
}

static cJSON *status_json(const lethe_s3t *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", s->e.task);
    cJSON_AddStringToObject(j, "spec", s->e.spec);
    cJSON_AddNumberToObject(j, "slices", s->e.slices);
    cJSON_AddNumberToObject(j, "budget", s->budget);
    cJSON_AddStringToObject(j, "order", s->order == LETHE_S3T_BMS ? "bms" : "cyclic");
    cJSON_AddNumberToObject(j, "excluded", (double)s->e.n_excluded);
    cJSON_AddNumberToObject(j, "requests", (double)s->e.ledger->n_req);
    cJSON_AddNumberToObject(j, "pending", (double)lethe_ledger_pending(s->e.ledger));
    cJSON_AddNumberToObject(j, "applied",
                            (double)(s->e.ledger->n_req - lethe_ledger_pending(s->e.ledger)));
    cJSON_AddNumberToObject(j, "live", lethe_ensemble_live(&s->e));
    cJSON *arr = cJSON_AddArrayToObject(j, "shards");
    for (int k = 0; k < s->e.shards; k++) {
        cJSON *o = cJSON_CreateObject();
        int b = s->served[k], len = s->served_len[k];
        cJSON_AddNumberToObject(o, "shard", k);
        cJSON_AddBoolToObject(o, "live", b >= 0);
        cJSON_AddNumberToObject(o, "sequence", b);
        cJSON_AddNumberToObject(o, "prefix", len);
        char path[4200];
        lethe_ensemble_model_path(&s->e, k, path, sizeof path);
        if (b >= 0) {
            size_t p = ((size_t)k * (size_t)s->budget + (size_t)b) * (size_t)s->e.slices +
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
                s->seq + ((size_t)k * (size_t)s->budget + (size_t)q) * (size_t)s->e.slices;
            int keep = 0;
            const char *hit = s->hit + (size_t)k * (size_t)s->e.slices;
            while (keep < s->e.slices && !hit[sq[keep]])
                keep++;
            cJSON *e = cJSON_CreateObject();
            cJSON *sl = cJSON_AddArrayToObject(e, "slices");
            for (int i = 0; i < s->e.slices; i++)
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
    printf("%s: S3T over %s, %d shards x %d slices, budget %d (%s), %s\n", s->e.dir, s->e.task,
           s->e.shards, s->e.slices, s->budget, s->order == LETHE_S3T_BMS ? "bms" : "cyclic",
           s->e.spec);
    printf("requests: %ld (%ld pending), %ld ids excluded at training\n", s->e.ledger->n_req,
           lethe_ledger_pending(s->e.ledger), s->e.n_excluded);
    printf("live shards: %d of %d\n", lethe_ensemble_live(&s->e), s->e.shards);
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
                   s->served_len[k], s->e.slices, s->served[k], pre,
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

/* forget: the request served by cutting prefixes, with its timings. */
static lethe_status forget(lethe_s3t *s, const ens_dir_opts *o, cJSON *j)
{
    lethe_rows rows = {0};
    long req = 0;
    double t0 = lethe_now();
    lethe_status st = ens_request(o, &s->e, &rows, &req);
    double t1 = lethe_now();
    if (st == LETHE_OK)
        st = lethe_s3t_apply(s);
    double t2 = lethe_now();
    int live = lethe_ensemble_live(&s->e);
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
        for (int k = 0; k < s->e.shards; k++)
            cJSON_AddItemToArray(pl, cJSON_CreateNumber(s->served_len[k]));
        if (!o->json && !o->quiet)
            printf("served in %.3f ms, no gradient step (ledger record %.3f ms, switch "
                   "%.3f ms); %ld checkpoints trained on it removed in %.3f ms; applied "
                   "in %.3f ms in all; %d of %d shards live\n",
                   1e3 * (t1 - t0 + s->switch_seconds), 1e3 * (t1 - t0),
                   1e3 * s->switch_seconds, s->removed, 1e3 * s->erase_seconds,
                   1e3 * (t2 - t0), live, s->e.shards);
    }
    lethe_rows_free(&rows);
    if (st == LETHE_OK && live == 0) {
        if (o->json)
            ens_print_json(cJSON_Duplicate(j, 1));
        st = lethe_fail(LETHE_ERR_FAILED, "request %ld applied, and every shard of %s is "
                        "now dead: no model remains and a full retrain is needed "
                        "(lethe s3t train --exclude the deleted ids)", req, o->dir);
    }
    return st;
}

static void shard_prefix(cJSON *o, int k, const void *self)
{
    const lethe_s3t *s = self;
    cJSON_AddNumberToObject(o, "prefix", s->served_len[k]);
}

/* The sub-commands that work on an existing directory. */
static int s3t_dir(const ens_dir_opts *o)
{
    lethe_s3t *s = NULL;
    cJSON *j = NULL;
    lethe_status st = lethe_s3t_open(o->dir, &s);
    if (st == LETHE_OK && !s->trained)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: training did not finish (no state.json); train "
                        "again into a new directory", o->dir);
    if (st == LETHE_OK && !strcmp(o->sub, "forget")) {
        st = forget(s, o, j = cJSON_CreateObject());
    } else if (st == LETHE_OK && !strcmp(o->sub, "status")) {
        j = status_json(s);
        if (!o->json && !o->quiet)
            print_status(s, j);
    } else if (st == LETHE_OK) {
        st = ens_request(o, &s->e, NULL, NULL); /* checks --shard */
        if (st == LETHE_OK)
            st = ens_predict(o, &s->e, "ensemble", j = cJSON_CreateObject(), shard_prefix, s);
    }
    lethe_s3t_free(s);
    return ens_dir_done("s3t", o, j, st);
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
        {"prior", 1, 0, 'p'},  {"json", 0, 0, 'j'},   {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    long shards = LETHE_S3T_SHARDS, slices = LETHE_S3T_SIM_SLICES, budget = 0,
         runs = LETHE_S3T_SIM_RUNS, seed = 0;
    const char *order_s = "cyclic", *prior_file = NULL;
    int json = 0, quiet = 0, c;
    cli_getopt_begin();
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
        case 'q': quiet = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("s3t", argv, longopts);
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
        return ens_print_json(j);
    }
    if (quiet)
        return CLI_EXIT_OK;
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
    static const ens_sub subs[] = {
        {"train", s3t_train, NULL},       {"forget", NULL, s3t_dir},
        {"predict", NULL, s3t_dir},       {"eval", NULL, s3t_dir},
        {"status", NULL, s3t_dir},        {"simulate", s3t_simulate, NULL}};
    return ens_dispatch("s3t", argc, argv, print_usage, subs, 6);
}
