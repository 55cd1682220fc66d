/* The command-line pieces lethe sisa and lethe s3t share. */
#include "ensemble.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lethe/recipe.h"

int ens_print_json(cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    cJSON_Delete(j);
    return CLI_EXIT_OK;
}

int ens_dispatch(const char *verb, int argc, char **argv, void (*usage)(FILE *),
                 const ens_sub *subs, int n)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    char names[256] = "";
    for (int i = 0; i < n; i++) {
        ens_dir_opts o;
        int rc = 0;
        if (strcmp(argv[1], subs[i].name))
            ; /* not this one */
        else if (subs[i].fn)
            return subs[i].fn(argc - 1, argv + 1);
        else if ((rc = ens_dir_parse(verb, argc - 1, argv + 1, &o, usage)) != 0)
            return rc < 0 ? CLI_EXIT_OK : rc;
        else
            return subs[i].dir(&o);
        snprintf(names + strlen(names), sizeof names - strlen(names), i ? ", %s" : "%s",
                 subs[i].name);
    }
    return cli_usage(verb, "unknown subcommand '%s' (%s)", argv[1], names);
}

int ens_dir_done(const char *verb, const ens_dir_opts *o, cJSON *j, lethe_status st)
{
    if (o->json && st == LETHE_OK)
        ens_print_json(j);
    else
        cJSON_Delete(j);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report(verb, st);
}

int ens_train_parse(const char *verb, int argc, char **argv, ens_train_opts *o,
                    void (*usage)(FILE *))
{
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'},   {"model", 1, 0, 'm'},   {"widths", 1, 0, 'w'},
        {"shards", 1, 0, 'S'}, {"slices", 1, 0, 'R'},  {"budget", 1, 0, 'B'},
        {"order", 1, 0, 'O'},  {"prior", 1, 0, 'p'},   {"aggregate", 1, 0, 'a'},
        {"epochs", 1, 0, 'e'}, {"batch", 1, 0, 'b'},   {"lr", 1, 0, 'l'},
        {"seed", 1, 0, 's'},   {"limit", 1, 0, 'L'},   {"exclude", 1, 0, 'x'},
        {"out", 1, 0, 'o'},    {"json", 0, 0, 'j'},    {"quiet", 0, 0, 'q'},
        {"force", 0, 0, 'f'},  {"resume", 0, 0, 'r'},  {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int s3t = !strcmp(verb, "s3t"), c;
    const cli_long_opt ints[] = {
        {'S', &o->shards, 1, 1024},  {'R', &o->slices, 1, s3t ? 24 : 256},
        {'B', &o->budget, 1, 256},   {'e', &o->epochs, 1, 1000000},
        {'b', &o->batch, 1, 1L << 20}, {'s', &o->seed, 0, 1L << 53},
        {'L', &o->limit, 0, 1L << 40}};
    const cli_real_opt reals[] = {{'l', &o->lr, 1e-12, 1e6}};
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (strchr(s3t ? "ar" : "wBOp", c) && c != 0)
            return cli_usage(verb, "--%s is not an option of %s train",
                             c == 'a' ? "aggregate" : c == 'r' ? "resume" : c == 'w' ? "widths"
                             : c == 'B' ? "budget" : c == 'O' ? "order" : "prior", verb);
        int done = cli_numeric_option(verb, longopts, c, optarg, ints,
                                      sizeof ints / sizeof *ints, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'm': o->model = optarg; break;
        case 'w': o->widths = optarg; break;
        case 'O': o->order = optarg; break;
        case 'p': o->prior = optarg; break;
        case 'a': o->aggregate = optarg; break;
        case 'x': o->exclude = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f': o->force = 1; break;
        case 'r': o->resume = 1; break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(verb, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage(verb, "unexpected argument '%s'", argv[optind]);
    if (o->resume && o->force)
        return cli_usage(verb, "--resume continues DIR and --force replaces it: give one");
    if (!o->data || !o->out)
        return cli_usage(verb, "train needs --data and --out");
    return 0;
}

lethe_ensemble_recipe_cfg ens_recipe_cfg(const ens_train_opts *o)
{
    return (lethe_ensemble_recipe_cfg){o->data, o->limit, o->model, o->widths, o->epochs,
                                       o->batch, o->lr, o->exclude};
}

cJSON *ens_train_json(const ens_train_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dir", o->out);
    cJSON_AddNumberToObject(j, "shards", (double)o->shards);
    cJSON_AddNumberToObject(j, "slices", (double)o->slices);
    return j;
}

void ens_train_done(const ens_train_opts *o, const lethe_ensemble_recipe *r, cJSON *j,
                    const char *what, double seconds)
{
    if (o->json) {
        cJSON_AddNumberToObject(j, "excluded", (double)r->excl.n);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        ens_print_json(j);
        return;
    }
    cJSON_Delete(j);
    if (!o->quiet)
        printf("trained %s of %s on %s (%ld excluded) in %.2f s\n", what, r->spec, o->data,
               r->excl.n, seconds);
}

int ens_dir_parse(const char *verb, int argc, char **argv, ens_dir_opts *o,
                  void (*usage)(FILE *))
{
    static const struct option longopts[] = {
        {"ids", 1, 0, 'i'},  {"split", 1, 0, 's'}, {"shard", 1, 0, 'k'},
        {"json", 0, 0, 'j'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    *o = (ens_dir_opts){argv[0], NULL, NULL, "test", -1, 0, 0};
    const cli_long_opt ints[] = {{'k', &o->shard, 0, 1023}};
    int c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option(verb, longopts, c, optarg, ints, 1, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'i': o->ids = optarg; break;
        case 's': o->split = optarg; break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(verb, argv, longopts);
        }
    }
    if (optind != argc - 1)
        return cli_usage(verb, "%s needs one directory", o->sub);
    int forget = !strcmp(o->sub, "forget");
    if (forget != (o->ids != NULL))
        return cli_usage(verb, forget ? "forget needs --ids" : "--ids is for forget");
    o->dir = argv[optind];
    return 0;
}

lethe_status ens_request(const ens_dir_opts *o, lethe_ensemble *e, lethe_rows *rows, long *req)
{
    if (o->shard >= e->shards)
        return lethe_fail(LETHE_ERR_INVALID, "%s has shards 0-%d", o->dir, e->shards - 1);
    if (!o->ids)
        return LETHE_OK;
    lethe_status st = lethe_split_select(e->train, o->ids, 0, rows);
    if (st == LETHE_OK)
        st = lethe_ensemble_request(e, rows, req);
    if (st == LETHE_OK && !o->json && !o->quiet)
        printf("request %ld recorded: %ld ids\n", *req, rows->n), fflush(stdout); /* the ack */
    return st;
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
            double err = ((double)p[0] - ds->t[r]) * ds->t_scale;
            l1 += err < 0 ? -err : err, mse += err * err;
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

lethe_status ens_predict(const ens_dir_opts *o, const lethe_ensemble *e, const char *label,
                         cJSON *j, void (*shard_extra)(cJSON *o, int k, const void *self),
                         const void *self)
{
    int is_eval = !strcmp(o->sub, "eval");
    const lethe_dataset *ds = e->test;
    lethe_rows rows = {0};
    int use_rows = 0;
    lethe_status st = LETHE_OK;
    if (!is_eval && strcmp(o->split, "test")) {
        ds = e->train;
        use_rows = strcmp(o->split, "train") != 0;
        if (use_rows && (st = lethe_split_select(e->train, o->split, 0, &rows)) != LETHE_OK)
            return st;
    }
    long n_out = lethe_ensemble_outputs(e), n = use_rows ? rows.n : ds->n;
    float *y = malloc(sizeof(float) * (size_t)(n * n_out + 1));
    if (!y)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(j, "n", (double)n);
    cJSON_AddNumberToObject(j, "live", lethe_ensemble_live(e));
    cJSON *arr = is_eval ? cJSON_AddArrayToObject(j, "shards") : NULL;
    int from = is_eval ? -1 : (int)o->shard, to = is_eval ? e->shards - 1 : (int)o->shard;
    for (int k = from; k <= to && st == LETHE_OK; k++) {
        if (is_eval && k >= 0 && !e->model[k][0])
            continue; /* no model */
        if ((st = lethe_ensemble_predict(e, k, ds, use_rows ? &rows : NULL, y)) != LETHE_OK)
            break;
        cJSON *s = k >= 0 && is_eval ? cJSON_CreateObject() : j;
        if (s != j) {
            cJSON_AddNumberToObject(s, "shard", k);
            if (shard_extra)
                shard_extra(s, k, self);
            cJSON_AddItemToArray(arr, s);
        }
        char name[32];
        if (k < 0)
            snprintf(name, sizeof name, "%s", label);
        else
            snprintf(name, sizeof name, "shard %d", k);
        score(s, y, ds, use_rows ? &rows : NULL, n, n_out, o->json || o->quiet ? NULL : name);
    }
    free(y);
    lethe_rows_free(&rows);
    return st;
}
