/* lethe fit: ridge or logistic regression fitted exactly (closed form or
 * Newton) into a run directory that supports exact or certified removal.
 * lethe forget: remove samples from such a run in place. The work, with
 * its lock and ledger, is lethe_linear_run_fit and lethe_linear_run_forget;
 * this file parses and prints. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/linear.h"

/* ---- shared ---- */

static void print_json(cJSON *j)
{
    char *txt = cJSON_PrintUnformatted(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
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
            "  --force            write into an existing RUN, replacing its files\n"
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
            "  --quiet            print nothing but errors\n"
            "  -h, --help         show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown task, a\n"
            "model that does not fit the task, a bad split, a singular system).\n",
            r.lambda, l.lambda, r.guard, l.sigma, l.eps, l.delta);
}

typedef struct fit_opts {
    lethe_linear_fit_opts lin;
    const char *out;
    int json, quiet;
} fit_opts;

static int fit_parse(int argc, char **argv, fit_opts *o)
{
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'},    {"out", 1, 0, 'o'},   {"model", 1, 0, 'm'},
        {"lambda", 1, 0, 'L'},  {"guard", 1, 0, 'g'}, {"sigma", 1, 0, 's'},
        {"eps", 1, 0, 'e'},     {"delta", 1, 0, 'D'}, {"seed", 1, 0, 'S'},
        {"exclude", 1, 0, 'x'}, {"split-seed", 1, 0, 'P'}, {"limit", 1, 0, 'n'},
        {"window", 1, 0, 'w'},  {"json", 0, 0, 'j'},  {"quiet", 0, 0, 'q'},
        {"force", 0, 0, 'f'},   {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    lethe_linear_fit_opts *l = &o->lin;
    long seed = 0, split_seed = 0;
    *o = (fit_opts){0};
    lethe_linear_fit_defaults(l);
    const cli_long_opt ints[] = {{'S', &seed, 0, 1L << 53}, {'P', &split_seed, 0, 1L << 53},
                                 {'n', &l->limit, 0, 1L << 40}, {'w', &l->window, 0, 365}};
    /* >= 0 here; each model's own ranges are checked where it is fitted */
    const cli_real_opt reals[] = {{'L', &l->lambda, 0, 1e30}, {'g', &l->guard, 0, 1e30},
                                  {'s', &l->sigma, 0, 1e30},  {'e', &l->eps, 0, 1e30},
                                  {'D', &l->delta, 0, 1e30}};
    int c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option("fit", longopts, c, optarg, ints,
                                      sizeof ints / sizeof ints[0], reals,
                                      sizeof reals / sizeof reals[0]);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'd': l->data = optarg; break;
        case 'o': o->out = optarg; break;
        case 'm': l->model = optarg; break;
        case 'x': l->exclude = optarg; break;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'f': l->force = 1; break;
        case 'h': fit_usage(stdout); return -1;
        default: return cli_bad_option("fit", argv, longopts);
        }
    }
    l->seed = (uint64_t)seed, l->split_seed = (uint64_t)split_seed;
    if (optind < argc)
        return cli_usage("fit", "unexpected argument '%s'", argv[optind]);
    if (!l->data || !o->out)
        return cli_usage("fit", "--data and --out are required");
    if (l->model && strcmp(l->model, "ridge") && strcmp(l->model, "logistic"))
        return cli_usage("fit", "--model takes ridge or logistic, not '%s' (for mlp, cnn and "
                         "linear nets use 'lethe train')", l->model);
    return 0;
}

int cmd_fit(int argc, char **argv)
{
    fit_opts o;
    int rc = fit_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_linear_run *r = NULL;
    lethe_status st = lethe_linear_run_fit(o.out, &o.lin, &r);
    if (st != LETHE_OK)
        return cli_report_out("fit", st);
    const lethe_linear *m = r->m;
    int classify = m->kind == LETHE_LINEAR_LOGISTIC;
    double budget = lethe_linear_budget(m);
    const char *kind = lethe_linear_kind_name(m->kind);
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", o.out);
        cJSON_AddStringToObject(j, "model", kind);
        cJSON_AddNumberToObject(j, "n", (double)m->n);
        cJSON_AddNumberToObject(j, "excluded", (double)r->excluded);
        cJSON_AddNumberToObject(j, "lambda", m->cfg.lambda);
        cJSON_AddNumberToObject(j, "seconds", r->seconds);
        if (classify) {
            cJSON_AddNumberToObject(j, "beta", m->beta);
            cJSON_AddNumberToObject(j, "budget", budget);
            cJSON_AddBoolToObject(j, "certified", m->beta <= budget);
        }
        add_scores(j, "train", &r->train_scores, classify);
        add_scores(j, "test", &r->test_scores, classify);
        print_json(j);
        cJSON_Delete(j);
    } else if (!o.quiet) {
        printf("fit %s on %s: %ld samples", kind, o.lin.data, m->n);
        if (r->excluded)
            printf(" (%ld excluded by %s)", r->excluded, o.lin.exclude);
        printf(", lambda %g, %.3g ms\n", m->cfg.lambda, 1e3 * r->seconds);
        print_scores("train", &r->train_scores, classify);
        print_scores("test", &r->test_scores, classify);
        if (classify && budget > 0)
            printf("  certified (eps %g, delta %g): gradient bound %.3g of budget %.3g\n",
                   m->cfg.eps, m->cfg.delta, m->beta, budget);
        else if (classify)
            printf("  sigma 0: no noise, not certified; every removal retrains\n");
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", o.out);
    }
    lethe_linear_run_free(r);
    return CLI_EXIT_OK;
}

/* ---- lethe forget ---- */

static void forget_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe forget --run RUN [--ids SPLIT] [--check] [--json] [--quiet]\n\n"
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
            "  --quiet            print nothing but errors\n"
            "  -h, --help         show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (not a ridge or\n"
            "logistic run, unknown ids, ids already removed or never in the model).\n",
            LETHE_LINEAR_CHECK_RTOL);
}

static void acknowledge(long req, long n, void *quiet)
{
    if (*(int *)quiet)
        return;
    printf("request %ld recorded: %ld id%s\n", req, n, n == 1 ? "" : "s");
    fflush(stdout);
}

static void forget_json(const lethe_linear_run *r, int check)
{
    const lethe_linear *m = r->m;
    const lethe_linear_report *rep = &r->rep;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "run", r->dir);
    cJSON_AddStringToObject(j, "model", lethe_linear_kind_name(m->kind));
    cJSON_AddNumberToObject(j, "removed", (double)rep->removed);
    cJSON_AddNumberToObject(j, "n", (double)m->n);
    cJSON_AddNumberToObject(j, "request", (double)m->requests);
    cJSON_AddNumberToObject(j, "seconds", rep->seconds);
    lethe_linear_report_json(j, m, rep, 1);
    if (check) {
        cJSON *k = cJSON_AddObjectToObject(j, "check");
        cJSON_AddNumberToObject(k, "refit_seconds", r->ref_seconds);
        cJSON_AddNumberToObject(k, "rel_diff", r->rel_diff);
        cJSON_AddNumberToObject(k, "speedup",
                                rep->seconds > 0 ? r->ref_seconds / rep->seconds : 0);
        if (m->kind == LETHE_LINEAR_LOGISTIC)
            cJSON_AddNumberToObject(k, "grad_norm", r->grad_norm);
    }
    print_json(j);
    cJSON_Delete(j);
}

static void forget_text(const lethe_linear_run *r, int check)
{
    const lethe_linear *m = r->m;
    const lethe_linear_report *rep = &r->rep;
    int ridge = m->kind == LETHE_LINEAR_RIDGE;
    if (r->pending)
        printf("applied %ld pending request%s from the ledger\n", r->pending,
               r->pending == 1 ? "" : "s");
    printf("removed %ld sample%s from %s (%s on %s): %ld remain, request %ld, %.3g ms\n",
           rep->removed, rep->removed == 1 ? "" : "s", r->dir, lethe_linear_kind_name(m->kind),
           r->task, m->n, m->requests, 1e3 * rep->seconds);
    if (ridge && rep->refactored)
        printf("  a downdate pivot fell to %.3g (guard %g): the factor was rebuilt from "
               "the %ld remaining samples\n", rep->min_pivot, m->cfg.guard, m->n);
    else if (ridge)
        printf("  %ld rank-1 downdate%s, smallest pivot 1 - h = %.3g\n", rep->downdates,
               rep->downdates == 1 ? "" : "s", rep->min_pivot);
    if (!ridge && rep->retrained)
        printf("  the certified budget was spent: retrained from scratch on the %ld "
               "remaining samples (retrain %ld, fresh noise)\n", m->n, m->retrains);
    else if (!ridge)
        printf("  %ld Newton removal step%s added %.3g to the gradient bound\n", rep->steps,
               rep->steps == 1 ? "" : "s", rep->bound_added);
    if (!ridge && rep->budget > 0)
        printf("  %s (eps %g, delta %g): bound %.3g of budget %.3g (%.1f%% spent)\n",
               rep->certified ? "certified" : "NOT certified", m->cfg.eps, m->cfg.delta,
               m->beta, rep->budget, spent(m, rep->budget));
    else if (!ridge)
        printf("  sigma 0: no certificate; the model is an exact retrain\n");
    if (check && ridge)
        printf("  check: a refit took %.3g ms; relative difference %.3g (within %g); "
               "removal %.0fx faster\n", 1e3 * r->ref_seconds, r->rel_diff,
               LETHE_LINEAR_CHECK_RTOL, rep->seconds > 0 ? r->ref_seconds / rep->seconds : 0);
    else if (check)
        printf("  check: a refit with the same noise took %.3g ms; relative difference "
               "%.3g; gradient norm %.3g (bound %.3g)\n", 1e3 * r->ref_seconds, r->rel_diff,
               r->grad_norm, m->beta);
    printf("wrote %s/model.safetensors\n", r->dir);
}

int cmd_forget(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"run", 1, 0, 'r'},   {"ids", 1, 0, 'i'},  {"split-seed", 1, 0, 'P'},
        {"check", 0, 0, 'c'}, {"json", 0, 0, 'j'}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    const char *dir = NULL;
    long split_seed = 0;
    int json = 0, quiet = 0, c;
    lethe_linear_forget_opts o = {0};
    const cli_long_opt ints[] = {{'P', &split_seed, 0, 1L << 53}};
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option("forget", longopts, c, optarg, ints, 1, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'r': dir = optarg; break;
        case 'i': o.ids = optarg; break;
        case 'c': o.check = 1; break;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': forget_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("forget", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("forget", "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage("forget", "--run is required");
    int silent = json || quiet;
    o.split_seed = (uint64_t)split_seed;
    o.recorded = acknowledge;
    o.ctx = &silent;
    lethe_linear_run *r = NULL;
    lethe_status st = lethe_linear_run_forget(dir, &o, &r);
    if (st != LETHE_OK)
        return cli_report("forget", st);
    if (!r->drop.n && !silent)
        printf("%s: no pending requests; nothing to do (give --ids)\n", dir);
    else if (r->drop.n && json)
        forget_json(r, o.check);
    else if (r->drop.n && !quiet)
        forget_text(r, o.check);
    lethe_linear_run_free(r);
    return CLI_EXIT_OK;
}
