/* lethe fit: ridge or logistic regression fitted exactly (closed form or
 * Newton) into a run directory that supports exact or certified removal.
 * lethe forget: remove samples from such a run in place. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/ledger.h"
#include "lethe/linear.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/runlock.h"
#include "lethe/task.h"

#define CHECK_RTOL 1e-6 /* ridge: a removal must agree with a refit this closely */

/* ---- shared ---- */

/* FNV-1a of a file's bytes as 16 hex digits: the parent model's hash. */
static lethe_status hash_file(const char *path, char out[17])
{
    unsigned char *buf;
    size_t len;
    lethe_status st = lethe_file_read(path, &buf, &len);
    if (st != LETHE_OK)
        return st;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ buf[i]) * 0x100000001b3u;
    free(buf);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return LETHE_OK;
}

/* Write `line` and a newline after the current contents of path (if any),
 * atomically. */
static lethe_status append_line(const char *path, const char *line)
{
    unsigned char *old = NULL;
    size_t len = 0;
    if (access(path, F_OK) == 0) {
        lethe_status st = lethe_file_read(path, &old, &len);
        if (st != LETHE_OK)
            return st;
    }
    lethe_afile *f = lethe_afile_open(path);
    if (!f) {
        free(old);
        return LETHE_ERR_IO;
    }
    if (len)
        fwrite(old, 1, len, f->fp);
    fprintf(f->fp, "%s\n", line);
    free(old);
    return lethe_afile_commit(f);
}

static void print_json(cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
}

/* Relative Frobenius distance of two models' parameters. */
static double rel_diff(const lethe_linear *a, const lethe_linear *b)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < (size_t)a->p * (size_t)a->k; i++) {
        double e = a->theta[i] - b->theta[i];
        num += e * e, den += b->theta[i] * b->theta[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void add_scores(cJSON *j, const char *key, const lethe_linear_scores *s, int classify)
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

static void print_scores(const char *what, const lethe_linear_scores *s, int classify)
{
    if (classify)
        printf("  %-6s %6ld samples  accuracy %.2f%%\n", what, s->n, s->accuracy);
    else
        printf("  %-6s %6ld samples  L1 %.6g  MSE %.6g\n", what, s->n, s->l1, s->mse);
}

/* config as one line for the model's metadata. A logistic model's noise
 * seed stays out of the model file: anyone holding it could subtract the
 * noise, which would void the certificate. Free the result. */
static char *meta_config(const cJSON *config, lethe_linear_kind kind)
{
    cJSON *c = cJSON_Duplicate(config, 1);
    if (c && kind == LETHE_LINEAR_LOGISTIC)
        cJSON_DeleteItemFromObject(c, "seed");
    char *line = c ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    return line;
}

static double spent(const lethe_linear *m, double budget)
{
    return budget > 0 ? 100 * m->beta / budget : INFINITY;
}

/* ---- lethe fit ---- */

static void fit_usage(FILE *out)
{
    lethe_linear_cfg r, l;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &r);
    lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &l);
    fprintf(out,
            "Usage: lethe fit --data NAME --out RUN [--model ridge|logistic] [options]\n\n"
            "Fit a linear model exactly and write RUN/model.safetensors, config.json and\n"
            "log.jsonl, ready for 'lethe forget'.\n"
            "  ridge     least squares with an L2 penalty, in closed form (regression\n"
            "            tasks); removal is exact, by downdates of a Cholesky factor\n"
            "  logistic  L2-regularised logistic regression with a noisy objective,\n"
            "            trained by Newton's method (two-class tasks); removal is\n"
            "            certified (eps, delta), retraining when the budget is spent\n"
            "The bias is a constant feature: unpenalised for ridge, penalised like the\n"
            "other weights for logistic. The same options give byte-identical files.\n\n"
            "Options:\n"
            "  --data NAME        the task (required); see 'lethe train --help'\n"
            "  --out RUN          the run directory to write (required; created)\n"
            "  --model KIND       ridge or logistic (default: ridge for regression,\n"
            "                     logistic for two classes)\n"
            "  --lambda X         L2 strength (default: ridge %g, logistic %g); ridge\n"
            "                     penalises lambda ||w||^2 next to the sum of squares,\n"
            "                     logistic lambda/2 ||w||^2 next to the mean loss\n"
            "  --guard X          ridge: rebuild the factor when a downdate's pivot\n"
            "                     1 - h falls below X (default %g)\n"
            "  --sigma X          logistic: noise standard deviation (default %g; 0: no\n"
            "                     noise, nothing certified, every removal retrains)\n"
            "  --eps X            logistic: certified epsilon (default %g)\n"
            "  --delta X          logistic: certified delta (default %g)\n"
            "  --seed N           logistic: keys the noise (default 0); keep config.json,\n"
            "                     which records it, private\n"
            "  --exclude SPLIT    leave out a split: random:F, class:K[,K], range:LO:HI,\n"
            "                     ids:FILE (or a FILE of ids, one per line)\n"
            "  --split-seed N     the seed of random:F splits (default 0)\n"
            "  --limit N          train on the first N training samples only\n"
            "  --window N         us-births: days of history per sample (default 14)\n"
            "  --json             print a JSON summary\n"
            "  -h, --help         show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown task, a\n"
            "model that does not fit the task, a bad split, a singular system).\n",
            r.lambda, l.lambda, r.guard, l.sigma, l.eps, l.delta);
}

typedef struct fit_opts {
    const char *data, *out, *model, *exclude;
    double lambda, guard, sigma, eps, delta;
    long seed, split_seed, limit, window;
    int json;
} fit_opts;

static int fit_parse(int argc, char **argv, fit_opts *o)
{
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'},    {"out", 1, 0, 'o'},   {"model", 1, 0, 'm'},
        {"lambda", 1, 0, 'L'},  {"guard", 1, 0, 'g'}, {"sigma", 1, 0, 's'},
        {"eps", 1, 0, 'e'},     {"delta", 1, 0, 'D'}, {"seed", 1, 0, 'S'},
        {"exclude", 1, 0, 'x'}, {"split-seed", 1, 0, 'P'}, {"limit", 1, 0, 'n'},
        {"window", 1, 0, 'w'},  {"json", 0, 0, 'j'},  {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    *o = (fit_opts){.lambda = NAN, .guard = NAN, .sigma = NAN, .eps = NAN, .delta = NAN};
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        double *real = NULL;
        long *whole = NULL, hi = 0;
        const char *name = "";
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'o': o->out = optarg; break;
        case 'm': o->model = optarg; break;
        case 'x': o->exclude = optarg; break;
        case 'L': real = &o->lambda, name = "lambda"; break;
        case 'g': real = &o->guard, name = "guard"; break;
        case 's': real = &o->sigma, name = "sigma"; break;
        case 'e': real = &o->eps, name = "eps"; break;
        case 'D': real = &o->delta, name = "delta"; break;
        case 'S': whole = &o->seed, name = "seed", hi = 1L << 53; break;
        case 'P': whole = &o->split_seed, name = "split-seed", hi = 1L << 53; break;
        case 'n': whole = &o->limit, name = "limit", hi = 1L << 40; break;
        case 'w': whole = &o->window, name = "window", hi = 365; break;
        case 'j': o->json = 1; break;
        case 'h': fit_usage(stdout); return -1;
        default: return cli_usage("fit", "unknown or incomplete option");
        }
        if (real && (cli_parse_double(optarg, real) || !isfinite(*real) || *real < 0))
            return cli_usage("fit", "--%s needs a number >= 0, not '%s'", name, optarg);
        if (whole && (cli_parse_long(optarg, whole) || *whole < 0 || *whole > hi))
            return cli_usage("fit", "--%s needs a whole number 0-%ld, not '%s'", name, hi,
                             optarg);
    }
    if (optind < argc)
        return cli_usage("fit", "unexpected argument '%s'", argv[optind]);
    if (!o->data || !o->out)
        return cli_usage("fit", "--data and --out are required");
    if (o->model && strcmp(o->model, "ridge") && strcmp(o->model, "logistic"))
        return cli_usage("fit", "--model takes ridge or logistic, not '%s' (for mlp, cnn and "
                         "linear nets use 'lethe train')", o->model);
    return 0;
}

static cJSON *fit_config(const fit_opts *o, const lethe_linear *m, const char *data_hash,
                         const char *excl_hash)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "model", lethe_linear_kind_name(m->kind));
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
    cJSON_AddNumberToObject(j, "n_train", (double)m->n);
    cJSON_AddNumberToObject(j, "lambda", m->cfg.lambda);
    if (m->kind == LETHE_LINEAR_RIDGE) {
        cJSON_AddNumberToObject(j, "guard", m->cfg.guard);
    } else {
        cJSON_AddNumberToObject(j, "sigma", m->cfg.sigma);
        cJSON_AddNumberToObject(j, "eps", m->cfg.eps);
        cJSON_AddNumberToObject(j, "delta", m->cfg.delta);
    }
    return j;
}

int cmd_fit(int argc, char **argv)
{
    fit_opts o;
    int rc = fit_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows all = {0}, excl = {0}, rows = {0};
    lethe_linear *m = NULL;
    lethe_runlock *lock = NULL;
    cJSON *config = NULL, *log = NULL;
    char *config_line = NULL, *config_pretty = NULL, *log_line = NULL;
    char path[4200], data_hash[17], excl_hash[17] = "0000000000000000";
    lethe_task_opts topts = {o.limit, (int)o.window};
    lethe_linear_kind kind = LETHE_LINEAR_RIDGE;
    lethe_linear_cfg cfg;
    lethe_status st = lethe_task_load(o.data, &topts, &train, &test);
    if (st == LETHE_OK) {
        if (o.model)
            st = lethe_linear_kind_parse(o.model, &kind);
        else
            kind = train->task == LETHE_TASK_REGRESS ? LETHE_LINEAR_RIDGE : LETHE_LINEAR_LOGISTIC;
    }
    lethe_linear_defaults(kind, &cfg);
    if (!isnan(o.lambda))
        cfg.lambda = o.lambda;
    if (!isnan(o.guard))
        cfg.guard = o.guard;
    if (!isnan(o.sigma))
        cfg.sigma = o.sigma;
    if (!isnan(o.eps))
        cfg.eps = o.eps;
    if (!isnan(o.delta))
        cfg.delta = o.delta;
    cfg.seed = (uint64_t)o.seed;
    if (st == LETHE_OK)
        st = lethe_rows_all(&all, train->n);
    if (st == LETHE_OK && o.exclude &&
        (st = lethe_split_select(train, o.exclude, (uint64_t)o.split_seed, &excl)) == LETHE_OK)
        lethe_rows_hash(train, &excl, excl_hash);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&rows, &all, &excl);
    if (st == LETHE_OK && rows.n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "--exclude %s leaves no training sample", o.exclude);
    double t0 = lethe_now(), seconds = 0;
    if (st == LETHE_OK)
        st = lethe_linear_fit(kind, &cfg, train, &rows, &m);
    seconds = lethe_now() - t0;
    if (st == LETHE_OK)
        st = lethe_run_mkdir(o.out);
    if (st == LETHE_OK)
        st = lethe_runlock_acquire(o.out, 1, &lock);
    if (st != LETHE_OK)
        goto done;
    lethe_rows_hash(train, NULL, data_hash);
    config = fit_config(&o, m, data_hash, excl_hash);
    config_line = meta_config(config, kind);
    config_pretty = cJSON_Print(config);
    log = cJSON_CreateObject();
    cJSON_AddStringToObject(log, "event", "fit");
    cJSON_AddStringToObject(log, "model", lethe_linear_kind_name(kind));
    cJSON_AddNumberToObject(log, "n", (double)m->n);
    cJSON_AddNumberToObject(log, "excluded", (double)excl.n);
    if (kind == LETHE_LINEAR_LOGISTIC)
        cJSON_AddNumberToObject(log, "beta", m->beta);
    log_line = cJSON_PrintUnformatted(log);
    if (!config_line || !config_pretty || !log_line) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *meta[] = {"data", o.data, "exclude_hash", excl_hash, "method", "fit",
                          "config", config_line};
    snprintf(path, sizeof path, "%s/model.safetensors", o.out);
    st = lethe_linear_save(m, path, meta, sizeof meta / sizeof meta[0] / 2);
    snprintf(path, sizeof path, "%s/config.json", o.out);
    size_t len = strlen(config_pretty);
    config_pretty[len] = '\n'; /* replaces the NUL; written without it */
    if (st == LETHE_OK)
        st = lethe_file_write_atomic(path, config_pretty, len + 1);
    snprintf(path, sizeof path, "%s/log.jsonl", o.out);
    size_t ll = strlen(log_line);
    log_line[ll] = '\n';
    if (st == LETHE_OK)
        st = lethe_file_write_atomic(path, log_line, ll + 1);
    if (st != LETHE_OK)
        goto done;
    lethe_linear_scores s_train, s_test;
    lethe_linear_score(m, train, &rows, &s_train);
    lethe_linear_score(m, test, NULL, &s_test);
    int classify = kind == LETHE_LINEAR_LOGISTIC;
    double budget = lethe_linear_budget(m);
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", o.out);
        cJSON_AddStringToObject(j, "model", lethe_linear_kind_name(kind));
        cJSON_AddNumberToObject(j, "n", (double)m->n);
        cJSON_AddNumberToObject(j, "excluded", (double)excl.n);
        cJSON_AddNumberToObject(j, "lambda", cfg.lambda);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        if (classify) {
            cJSON_AddNumberToObject(j, "beta", m->beta);
            cJSON_AddNumberToObject(j, "budget", budget);
            cJSON_AddBoolToObject(j, "certified", m->beta <= budget);
        }
        add_scores(j, "train", &s_train, classify);
        add_scores(j, "test", &s_test, classify);
        print_json(j);
        cJSON_Delete(j);
    } else {
        printf("fit %s on %s: %ld samples", lethe_linear_kind_name(kind), o.data, m->n);
        if (excl.n)
            printf(" (%ld excluded by %s)", excl.n, o.exclude);
        printf(", lambda %g, %.3g ms\n", cfg.lambda, 1e3 * seconds);
        print_scores("train", &s_train, classify);
        print_scores("test", &s_test, classify);
        if (classify && budget > 0)
            printf("  certified (eps %g, delta %g): gradient bound %.3g of budget %.3g\n",
                   cfg.eps, cfg.delta, m->beta, budget);
        else if (classify)
            printf("  sigma 0: no noise, not certified; every removal retrains\n");
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", o.out);
    }
done:
    lethe_runlock_release(lock);
    free(config_line);
    free(config_pretty);
    free(log_line);
    cJSON_Delete(config);
    cJSON_Delete(log);
    lethe_linear_free(m);
    lethe_rows_free(&all);
    lethe_rows_free(&excl);
    lethe_rows_free(&rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("fit", st);
}

/* ---- lethe forget ---- */

static void forget_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe forget --run RUN [--ids SPLIT] [--check] [--json]\n\n"
            "Remove training samples from a ridge or logistic run ('lethe fit' or 'lethe\n"
            "train --model ridge|logistic'), in place. Ridge removal is exact: rank-1\n"
            "downdates of the Cholesky factor (the factor is rebuilt from the remaining\n"
            "samples if a downdate is ill-conditioned).\n"
            "Logistic removal is a Newton step per sample, certified (eps, delta) while the\n"
            "accumulated gradient bound stays within sigma * eps / sqrt(2 ln(1.5/delta));\n"
            "past that, the model is retrained from scratch on the remaining samples.\n"
            "The new model file replaces the old one atomically, recording the removed\n"
            "ids; a refused request changes nothing. Each request is first recorded in\n"
            "RUN/ledger.log ('lethe ledger show RUN'); requests that a crash left pending\n"
            "are applied by the next forget (without --ids: only those).\n\n"
            "Options:\n"
            "  --run RUN          the run directory\n"
            "  --ids SPLIT        the samples: a FILE of ids (one per line), ids:FILE,\n"
            "                     random:F, class:K[,K] or range:LO:HI\n"
            "  --split-seed N     the seed of random:F splits (default 0)\n"
            "  --check            also refit from scratch on the remaining samples and\n"
            "                     report the agreement; a ridge removal that differs by\n"
            "                     more than %g (relative) is not written (exit 1)\n"
            "  --json             print a JSON summary\n"
            "  -h, --help         show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (not a ridge or\n"
            "logistic run, unknown ids, ids already removed or never in the model).\n",
            CHECK_RTOL);
}

/* The run's config.json, refusing runs that are not ridge or logistic. */
static lethe_status forget_config(const char *dir, cJSON **config, lethe_linear_kind *kind)
{
    char path[4200];
    const char *model = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(dir, F_OK) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: no such run directory", dir);
    lethe_status st = lethe_json_read(path, config);
    if (st == LETHE_OK)
        st = lethe_json_opt_string(*config, "model", path, "", &model);
    if (st == LETHE_OK && lethe_linear_kind_parse(model, kind) != LETHE_OK)
        st = lethe_fail(LETHE_ERR_UNSUPPORTED,
                        "%s is a%s '%s' run; lethe forget removes samples from ridge and "
                        "logistic runs ('lethe fit', or 'lethe train --model ridge|logistic'; "
                        "for other models use 'lethe unlearn', or retrain with 'lethe train "
                        "--exclude')",
                        dir, strchr("aeiou", model[0]) && model[0] ? "n" : "",
                        model[0] ? model : "unknown");
    return st;
}

/* 1 if id is among the model's removed ids (ascending). */
static int was_removed(const lethe_linear *m, uint64_t id)
{
    long lo = 0, hi = m->n_removed;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (m->removed[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n_removed && m->removed[lo] == id;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Requests the ledger holds as received: those whose ids the model file
 * already lacks (a crash came after the model was written) are marked
 * applied; the rows of the others go to *pend (ascending), to be removed
 * now. A request only partly in the model file cannot happen (the file is
 * replaced in one rename) and is refused. */
static lethe_status replay(lethe_ledger *led, const lethe_linear *m, const lethe_dataset *train,
                           lethe_rows *pend, long *n_pending)
{
    *n_pending = 0;
    for (long q = 0; q < led->n_req; q++) {
        const lethe_request *r = &led->req[q];
        if (r->state != LETHE_REQ_RECEIVED)
            continue;
        long gone = 0;
        for (long k = 0; k < r->n_ids; k++)
            gone += was_removed(m, r->ids[k]);
        if (gone == r->n_ids) {
            lethe_status st = lethe_ledger_applied(led, r->id);
            if (st != LETHE_OK)
                return st;
            continue;
        }
        if (gone)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: request %ld is only partly in the model "
                              "file (%ld of %ld ids removed)", led->path, r->id, gone, r->n_ids);
        long *row = realloc(pend->row, (size_t)(pend->n + r->n_ids) * sizeof *row);
        if (!row)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        pend->row = row;
        for (long k = 0; k < r->n_ids; k++) {
            long i = lethe_dataset_find(train, r->ids[k]);
            if (i < 0)
                return lethe_fail(LETHE_ERR_FORMAT, "%s: request %ld names id %llu, which is "
                                  "not in the training set", led->path, r->id,
                                  (unsigned long long)r->ids[k]);
            pend->row[pend->n++] = i;
        }
        (*n_pending)++;
    }
    if (pend->n > 1)
        qsort(pend->row, (size_t)pend->n, sizeof *pend->row, cmp_long);
    return LETHE_OK;
}

/* The new request's rows, refusing ids that an earlier request named. */
static lethe_status check_new(const lethe_ledger *led, const lethe_dataset *train,
                              const lethe_rows *drop)
{
    for (long i = 0; i < drop->n; i++) {
        uint64_t id = train->ids[drop->row[i]];
        long q = lethe_ledger_find(led, id);
        if (q)
            return lethe_fail(LETHE_ERR_INVALID, "id %llu was already removed (ledger "
                              "request %ld)", (unsigned long long)id, q);
    }
    return LETHE_OK;
}

int cmd_forget(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"run", 1, 0, 'r'},   {"ids", 1, 0, 'i'},  {"split-seed", 1, 0, 'P'},
        {"check", 0, 0, 'c'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *ids = NULL;
    long split_seed = 0;
    int check = 0, json = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': dir = optarg; break;
        case 'i': ids = optarg; break;
        case 'P':
            if (cli_parse_long(optarg, &split_seed) || split_seed < 0)
                return cli_usage("forget", "--split-seed needs a whole number >= 0");
            break;
        case 'c': check = 1; break;
        case 'j': json = 1; break;
        case 'h': forget_usage(stdout); return CLI_EXIT_OK;
        default: return cli_usage("forget", "unknown or incomplete option");
        }
    }
    if (optind < argc)
        return cli_usage("forget", "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage("forget", "--run is required");

    cJSON *config = NULL, *log = NULL;
    lethe_linear *m = NULL, *ref = NULL;
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows drop = {0}, fresh = {0}, pend = {0};
    lethe_ledger *led = NULL;
    long n_pending = 0, req = 0;
    lethe_linear_kind kind = LETHE_LINEAR_RIDGE;
    lethe_linear_report rep = {0};
    char model_path[4200], path[4200], parent_hash[17], forget_hash[17], *log_line = NULL;
    const char *task = NULL, *excl_hash = NULL;
    long long limit = 0, window = 0, seed = 0;
    double ref_seconds = NAN, diff = NAN, grad = NAN;
    lethe_runlock *lock = NULL;
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
    lethe_status st = forget_config(dir, &config, &kind);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (st == LETHE_OK)
        st = lethe_json_get_string(config, "data", path, &task);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "limit", path, 0, &limit);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "window", path, 0, &window);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "seed", path, 0, &seed);
    if (st == LETHE_OK)
        st = lethe_json_opt_string(config, "exclude_hash", path, "0000000000000000",
                                   &excl_hash);
    /* One writer at a time: the run directory's lock. */
    if (st == LETHE_OK)
        st = lethe_runlock_acquire(dir, 1, &lock);
    if (st == LETHE_OK)
        st = hash_file(model_path, parent_hash);
    if (st == LETHE_OK)
        st = lethe_linear_load(model_path, (uint64_t)seed, &m);
    if (st == LETHE_OK && m->kind != kind)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: config.json says %s, the model file %s", dir,
                        lethe_linear_kind_name(kind), lethe_linear_kind_name(m->kind));
    lethe_task_opts topts = {(long)limit, (int)window};
    if (st == LETHE_OK)
        st = lethe_task_load(task, &topts, &train, &test);
    if (st == LETHE_OK) {
        char now[17];
        lethe_rows_hash(train, NULL, now);
        if (strcmp(now, m->data_hash))
            st = lethe_fail(LETHE_ERR_FORMAT,
                            "%s: the data set %s has changed since the fit (hash %s, fitted on "
                            "%s); exact removal needs the same data", dir, task, now,
                            m->data_hash);
    }
    /* The ledger: requests a crash left pending are applied with this one. */
    snprintf(path, sizeof path, "%s/ledger.log", dir);
    if (st == LETHE_OK)
        st = lethe_ledger_open(path, &led);
    if (st == LETHE_OK)
        st = replay(led, m, train, &pend, &n_pending);
    if (st == LETHE_OK && !ids && !n_pending) {
        st = LETHE_OK;
        if (!json)
            printf("%s: no pending requests; nothing to do (give --ids)\n", dir);
        goto done;
    }
    if (st == LETHE_OK && ids)
        st = lethe_split_select(train, ids, (uint64_t)split_seed, &fresh);
    if (st == LETHE_OK)
        st = check_new(led, train, &fresh);
    /* drop = pend + fresh, ascending (disjoint: check_new refused overlaps) */
    if (st == LETHE_OK && !(drop.row = malloc((size_t)(pend.n + fresh.n + 1) * sizeof(long))))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long a = 0, b = 0; st == LETHE_OK && a + b < pend.n + fresh.n;)
        drop.row[drop.n++] = b == fresh.n || (a < pend.n && pend.row[a] < fresh.row[b])
                                 ? pend.row[a++]
                                 : fresh.row[b++];
    if (st == LETHE_OK)
        st = lethe_linear_forget(m, train, &drop, &rep);
    if (st == LETHE_OK && check) {
        double t0 = lethe_now();
        st = lethe_linear_refit(m, train, &ref);
        ref_seconds = lethe_now() - t0;
        if (st == LETHE_OK)
            diff = rel_diff(m, ref);
        if (st == LETHE_OK && kind == LETHE_LINEAR_LOGISTIC)
            grad = lethe_linear_grad_norm(m, train);
        if (st == LETHE_OK && kind == LETHE_LINEAR_RIDGE && !(diff <= CHECK_RTOL))
            st = lethe_fail(LETHE_ERR_FAILED,
                            "%s: the removal differs from a refit by %.3g (relative), more "
                            "than %g; the run is unchanged", dir, diff, CHECK_RTOL);
    }
    if (st != LETHE_OK)
        goto done;

    /* Record the request (the acknowledgement), then commit: the new model
     * file replaces the old one in one rename, then the ledger says so. */
    if (fresh.n) {
        uint64_t *idv = malloc((size_t)fresh.n * sizeof *idv);
        if (!idv) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (long i = 0; i < fresh.n; i++)
            idv[i] = train->ids[fresh.row[i]];
        st = lethe_ledger_receive(led, idv, fresh.n, &req);
        free(idv);
        if (st != LETHE_OK)
            goto done;
        if (!json)
            printf("request %ld recorded: %ld id%s\n", req, fresh.n, fresh.n == 1 ? "" : "s"),
                fflush(stdout);
    }
    lethe_rows_hash(train, &drop, forget_hash);
    char *config_line = meta_config(config, kind);
    const char *meta[] = {"data", task, "exclude_hash", excl_hash, "method", "forget",
                          "config", config_line ? config_line : "{}", "forget_hash",
                          forget_hash, "parent_hash", parent_hash};
    st = lethe_linear_save(m, model_path, meta, sizeof meta / sizeof meta[0] / 2);
    free(config_line);
    for (long q = 0; st == LETHE_OK && q < led->n_req; q++)
        if (led->req[q].state == LETHE_REQ_RECEIVED)
            st = lethe_ledger_applied(led, led->req[q].id);
    if (st != LETHE_OK)
        goto done;
    if (!json && n_pending)
        printf("applied %ld pending request%s from the ledger\n", n_pending,
               n_pending == 1 ? "" : "s");
    /* The log follows; the model file is the record of what was removed. */
    log = cJSON_CreateObject();
    cJSON_AddStringToObject(log, "event", "forget");
    cJSON_AddNumberToObject(log, "request", (double)m->requests);
    cJSON *idv = cJSON_AddArrayToObject(log, "ids");
    for (long i = 0; i < drop.n; i++)
        cJSON_AddItemToArray(idv, cJSON_CreateNumber((double)train->ids[drop.row[i]]));
    cJSON_AddStringToObject(log, "forget_hash", forget_hash);
    cJSON_AddStringToObject(log, "parent_hash", parent_hash);
    cJSON_AddNumberToObject(log, "n", (double)m->n);
    if (kind == LETHE_LINEAR_RIDGE) {
        cJSON_AddNumberToObject(log, "downdates", (double)rep.downdates);
        cJSON_AddBoolToObject(log, "refactored", rep.refactored);
        cJSON_AddNumberToObject(log, "min_pivot", rep.min_pivot);
    } else {
        cJSON_AddNumberToObject(log, "steps", (double)rep.steps);
        cJSON_AddBoolToObject(log, "retrained", rep.retrained);
        cJSON_AddNumberToObject(log, "retrains", (double)m->retrains);
        cJSON_AddNumberToObject(log, "bound_added", rep.bound_added);
        cJSON_AddNumberToObject(log, "beta", m->beta);
        cJSON_AddNumberToObject(log, "budget", rep.budget);
        cJSON_AddBoolToObject(log, "certified", rep.certified);
    }
    log_line = cJSON_PrintUnformatted(log);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    st = log_line ? append_line(path, log_line) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st != LETHE_OK)
        goto done;

    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", dir);
        cJSON_AddStringToObject(j, "model", lethe_linear_kind_name(kind));
        cJSON_AddNumberToObject(j, "removed", (double)rep.removed);
        cJSON_AddNumberToObject(j, "n", (double)m->n);
        cJSON_AddNumberToObject(j, "request", (double)m->requests);
        cJSON_AddNumberToObject(j, "seconds", rep.seconds);
        if (kind == LETHE_LINEAR_RIDGE) {
            cJSON_AddNumberToObject(j, "downdates", (double)rep.downdates);
            cJSON_AddBoolToObject(j, "refactored", rep.refactored);
            cJSON_AddNumberToObject(j, "min_pivot", rep.min_pivot);
        } else {
            cJSON_AddNumberToObject(j, "steps", (double)rep.steps);
            cJSON_AddBoolToObject(j, "retrained", rep.retrained);
            cJSON_AddNumberToObject(j, "retrains", (double)m->retrains);
            cJSON_AddNumberToObject(j, "bound_added", rep.bound_added);
            cJSON_AddNumberToObject(j, "beta", m->beta);
            cJSON_AddNumberToObject(j, "budget", rep.budget);
            cJSON_AddNumberToObject(j, "eps", m->cfg.eps);
            cJSON_AddNumberToObject(j, "delta", m->cfg.delta);
            cJSON_AddBoolToObject(j, "certified", rep.certified);
        }
        if (check) {
            cJSON *k = cJSON_AddObjectToObject(j, "check");
            cJSON_AddNumberToObject(k, "refit_seconds", ref_seconds);
            cJSON_AddNumberToObject(k, "rel_diff", diff);
            cJSON_AddNumberToObject(k, "speedup",
                                    rep.seconds > 0 ? ref_seconds / rep.seconds : 0);
            if (kind == LETHE_LINEAR_LOGISTIC)
                cJSON_AddNumberToObject(k, "grad_norm", grad);
        }
        print_json(j);
        cJSON_Delete(j);
    } else {
        printf("removed %ld sample%s from %s (%s on %s): %ld remain, request %ld, %.3g ms\n",
               rep.removed, rep.removed == 1 ? "" : "s", dir, lethe_linear_kind_name(kind), task,
               m->n, m->requests, 1e3 * rep.seconds);
        if (kind == LETHE_LINEAR_RIDGE && rep.refactored)
            printf("  a downdate pivot fell to %.3g (guard %g): the factor was rebuilt from "
                   "the %ld remaining samples\n", rep.min_pivot, m->cfg.guard, m->n);
        else if (kind == LETHE_LINEAR_RIDGE)
            printf("  %ld rank-1 downdate%s, smallest pivot 1 - h = %.3g\n", rep.downdates,
                   rep.downdates == 1 ? "" : "s", rep.min_pivot);
        if (kind == LETHE_LINEAR_LOGISTIC && rep.retrained)
            printf("  the certified budget was spent: retrained from scratch on the %ld "
                   "remaining samples (retrain %ld, fresh noise)\n", m->n, m->retrains);
        else if (kind == LETHE_LINEAR_LOGISTIC)
            printf("  %ld Newton removal step%s added %.3g to the gradient bound\n", rep.steps,
                   rep.steps == 1 ? "" : "s", rep.bound_added);
        if (kind == LETHE_LINEAR_LOGISTIC && rep.budget > 0)
            printf("  %s (eps %g, delta %g): bound %.3g of budget %.3g (%.1f%% spent)\n",
                   rep.certified ? "certified" : "NOT certified", m->cfg.eps, m->cfg.delta,
                   m->beta, rep.budget, spent(m, rep.budget));
        else if (kind == LETHE_LINEAR_LOGISTIC)
            printf("  sigma 0: no certificate; the model is an exact retrain\n");
        if (check && kind == LETHE_LINEAR_RIDGE)
            printf("  check: a refit took %.3g ms; relative difference %.3g (within %g); "
                   "removal %.0fx faster\n", 1e3 * ref_seconds, diff, CHECK_RTOL,
                   rep.seconds > 0 ? ref_seconds / rep.seconds : 0);
        else if (check)
            printf("  check: a refit with the same noise took %.3g ms; relative difference "
                   "%.3g; gradient norm %.3g (bound %.3g)\n", 1e3 * ref_seconds, diff, grad,
                   m->beta);
        printf("wrote %s\n", model_path);
    }
done:
    lethe_runlock_release(lock);
    free(log_line);
    cJSON_Delete(log);
    cJSON_Delete(config);
    lethe_linear_free(m);
    lethe_linear_free(ref);
    lethe_rows_free(&drop);
    lethe_rows_free(&fresh);
    lethe_rows_free(&pend);
    lethe_ledger_free(led);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report("forget", st);
}
