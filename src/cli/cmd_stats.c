/* lethe stats: the statistics of the evaluation suites on text files
 * holding one number (or, for rouge, one text) per line. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "cli.h"
#include "lethe/stats.h"

static void print_usage(FILE *out)
{
    fputs("Usage: lethe stats SUBCOMMAND [options] FILE...\n\n"
          "Statistics behind lethe's evaluations, on text files with one number per line\n"
          "(one text per line for rouge). Results agree with scipy 1.10, scikit-learn 1.2\n"
          "and rouge-score.\n\n"
          "Subcommands:\n"
          "  ks A B                      two-sample Kolmogorov-Smirnov test (two-sided)\n"
          "  auc --labels L --scores S   ROC AUC and TPR at 1% and 5% FPR\n"
          "  rouge --ref R --hyp H       ROUGE-L precision, recall and F1 per line\n"
          "  hmean FILE                  harmonic mean\n"
          "  wasserstein A B             1-D Wasserstein (earth mover's) distance\n\n"
          "Each takes --json for one JSON object on stdout, --quiet (no warnings on\n"
          "stderr) and --help.\n"
          "Exit codes: 0 ok, 2 usage error, 3 bad input (the message names the file).\n",
          out);
}

/* Print JSON to stdout and free it. */
static int emit_json(const char *verb, cJSON *j)
{
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        fprintf(stderr, "lethe %s: out of memory\n", verb);
        return CLI_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* A JSON number that reads back as exactly x: the shortest of %.15g, %.16g
 * and %.17g that round-trips (cJSON's own printing may drop the last bit). */
static cJSON *json_number(double x)
{
    char buf[40];
    if (!isfinite(x))
        return cJSON_CreateNull();
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return cJSON_CreateRaw(buf);
}

static void add_number(cJSON *obj, const char *key, double x)
{
    cJSON_AddItemToObject(obj, key, json_number(x));
}

/* The options of the subcommands; each subcommand's table names its own. */
struct opts {
    int json, stem, quiet;
    const char *labels, *scores, *ref, *hyp;
};

/* Parse argv with `table`. Returns -1 to go on, else an exit code (after
 * --help, or a usage error). */
static int parse(int argc, char **argv, const char *verb, const char *usage,
                 const struct option *table, struct opts *o)
{
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case 'j': o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 's': o->stem = 1; break;
        case 'L': o->labels = optarg; break;
        case 'S': o->scores = optarg; break;
        case 'R': o->ref = optarg; break;
        case 'H': o->hyp = optarg; break;
        default: return cli_bad_option(verb, argv, table);
        }
    }
    return -1;
}

/* The positional FILE arguments: exactly `want` of them. Returns -1 to go
 * on, else the usage error's exit code. */
static int need_files(int argc, char **argv, const char *verb, int want, const char *what)
{
    if (argc - optind < want)
        return cli_usage(verb, "missing %s", what);
    if (argc - optind > want)
        return cli_usage(verb, "unexpected argument '%s'", argv[optind + want]);
    return -1;
}

#define OPT_JSON {"json", no_argument, NULL, 'j'}
#define OPT_QUIET {"quiet", no_argument, NULL, 'q'}
#define OPT_HELP {"help", no_argument, NULL, 'h'}
#define OPT_END {NULL, 0, NULL, 0}

/* Read two samples named by the positional arguments. */
static lethe_status read_pair(char **argv, double **a, size_t *na, double **b, size_t *nb)
{
    lethe_status st = lethe_stats_numbers_read(argv[optind], a, na);
    if (st == LETHE_OK && (st = lethe_stats_numbers_read(argv[optind + 1], b, nb)) != LETHE_OK) {
        free(*a);
        *a = NULL;
    }
    return st;
}

static int stats_ks(int argc, char **argv)
{
    static const struct option table[] = {OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe stats ks [--json] A B\n\n"
        "Two-sided two-sample Kolmogorov-Smirnov test of the samples in files A and B\n"
        "(one number per line), as scipy.stats.ks_2samp with method='auto': the exact\n"
        "p-value when neither sample has more than 10000 values, else the asymptotic\n"
        "one, kstwo.sf(D, round(n1 n2 / (n1 + n2))). Ties are allowed.\n\n"
        "Prints statistic, pvalue, method (exact or asymptotic), n1 and n2.\n\n"
        "  --json    print them as one JSON object\n"
        "  --quiet   accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "stats ks", usage, table, &o);
    if (rc >= 0 || (rc = need_files(argc, argv, "stats ks", 2, "the sample files A and B")) >= 0)
        return rc;
    double *a, *b;
    size_t na, nb;
    lethe_ks_result r;
    lethe_status st = read_pair(argv, &a, &na, &b, &nb);
    if (st != LETHE_OK)
        return cli_report("stats ks", st);
    st = lethe_stats_ks_2samp(a, na, b, nb, &r);
    free(a);
    free(b);
    if (st != LETHE_OK)
        return cli_report("stats ks", st);
    const char *method = r.method == LETHE_KS_EXACT ? "exact" : "asymptotic";
    if (!o.json) {
        printf("statistic  %.10g\npvalue     %.10g\nmethod     %s\nn1         %zu\nn2         %zu\n",
               r.statistic, r.pvalue, method, na, nb);
        return CLI_EXIT_OK;
    }
    cJSON *j = cJSON_CreateObject();
    add_number(j, "statistic", r.statistic);
    add_number(j, "pvalue", r.pvalue);
    cJSON_AddStringToObject(j, "method", method);
    add_number(j, "n1", (double)na);
    add_number(j, "n2", (double)nb);
    return emit_json("stats ks", j);
}

/* Labels as 0/1 integers; each must be exactly 0 or 1, and both must occur. */
static lethe_status labels_from(const char *path, const double *v, size_t n, int **out)
{
    size_t pos = 0;
    int *y = malloc(n * sizeof *y);
    if (!y)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        if (v[i] != 0.0 && v[i] != 1.0) {
            free(y);
            return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: label %g is not 0 or 1", path, i + 1,
                              v[i]);
        }
        y[i] = v[i] == 1.0;
        pos += (size_t)y[i];
    }
    if (pos == 0 || pos == n) {
        free(y);
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: all %zu labels are %d; the ROC curve needs both 0 and 1", path, n,
                          pos ? 1 : 0);
    }
    *out = y;
    return LETHE_OK;
}

static int stats_auc(int argc, char **argv)
{
    static const struct option table[] = {{"labels", required_argument, NULL, 'L'},
                                          {"scores", required_argument, NULL, 'S'},
                                          OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe stats auc --labels L --scores S [--json]\n\n"
        "ROC AUC of scores against 0/1 labels (line i of S scores line i of L; a\n"
        "higher score means more likely 1), ties counting one half, as\n"
        "sklearn.metrics.roc_auc_score; and the TPR at 1% and 5% FPR, interpolated\n"
        "linearly on sklearn's roc_curve as numpy.interp(0.01, fpr, tpr).\n\n"
        "Prints auc, tpr_at_1fpr, tpr_at_5fpr, n_pos and n_neg.\n\n"
        "  --labels L   file of labels, 0 or 1 per line\n"
        "  --scores S   file of scores, one number per line\n"
        "  --json       print them as one JSON object\n"
        "  --quiet      accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "stats auc", usage, table, &o);
    if (rc >= 0 || (rc = need_files(argc, argv, "stats auc", 0, "")) >= 0)
        return rc;
    if (!o.labels || !o.scores)
        return cli_usage("stats auc", "both --labels and --scores are required");
    double *lv = NULL, *s = NULL;
    int *y = NULL;
    size_t nl = 0, ns = 0;
    lethe_roc_result r;
    lethe_status st = lethe_stats_numbers_read(o.labels, &lv, &nl);
    if (st == LETHE_OK)
        st = lethe_stats_numbers_read(o.scores, &s, &ns);
    if (st == LETHE_OK && nl != ns)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s has %zu labels but %s has %zu scores", o.labels,
                        nl, o.scores, ns);
    if (st == LETHE_OK)
        st = labels_from(o.labels, lv, nl, &y);
    if (st == LETHE_OK)
        st = lethe_stats_roc(s, y, ns, &r);
    free(lv);
    free(s);
    free(y);
    if (st != LETHE_OK)
        return cli_report("stats auc", st);
    if (!o.json) {
        printf("auc          %.10g\ntpr_at_1fpr  %.10g\ntpr_at_5fpr  %.10g\nn_pos        %zu\n"
               "n_neg        %zu\n",
               r.auc, r.tpr_at_1fpr, r.tpr_at_5fpr, r.n_pos, r.n_neg);
        return CLI_EXIT_OK;
    }
    cJSON *j = cJSON_CreateObject();
    add_number(j, "auc", r.auc);
    add_number(j, "tpr_at_1fpr", r.tpr_at_1fpr);
    add_number(j, "tpr_at_5fpr", r.tpr_at_5fpr);
    add_number(j, "n_pos", (double)r.n_pos);
    add_number(j, "n_neg", (double)r.n_neg);
    return emit_json("stats auc", j);
}

static int stats_rouge(int argc, char **argv)
{
    static const struct option table[] = {{"ref", required_argument, NULL, 'R'},
                                          {"hyp", required_argument, NULL, 'H'},
                                          {"stem", no_argument, NULL, 's'},
                                          OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe stats rouge --ref R --hyp H [--stem] [--json]\n\n"
        "ROUGE-L of each line of H (hypothesis) against the same line of R (reference),\n"
        "tokenised as Google's rouge-score does: lower-case, every character outside\n"
        "[a-z0-9] separates tokens. precision = LCS / hypothesis tokens, recall =\n"
        "LCS / reference tokens, f1 = 2PR / (P + R); all 0 for an empty line.\n\n"
        "Prints one line per pair (line, precision, recall, f1), then their means.\n\n"
        "  --ref R    reference texts, one per line\n"
        "  --hyp H    hypothesis texts, one per line (as many lines as R)\n"
        "  --stem     Porter-stem tokens longer than 3 characters (nltk's stemmer)\n"
        "  --json     print {precision: [...], recall: [...], f1: [...], and the\n"
        "             means mean_precision, mean_recall, mean_f1, n, stem}\n"
        "  --quiet    accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "stats rouge", usage, table, &o);
    if (rc >= 0 || (rc = need_files(argc, argv, "stats rouge", 0, "")) >= 0)
        return rc;
    if (!o.ref || !o.hyp)
        return cli_usage("stats rouge", "both --ref and --hyp are required");
    char **ref = NULL, **hyp = NULL;
    size_t nr = 0, nh = 0;
    double *score = NULL;
    lethe_status st = lethe_stats_lines_read(o.ref, &ref, &nr);
    if (st == LETHE_OK)
        st = lethe_stats_lines_read(o.hyp, &hyp, &nh);
    if (st == LETHE_OK && nr != nh)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s has %zu lines but %s has %zu", o.ref, nr, o.hyp,
                        nh);
    if (st == LETHE_OK && !(score = malloc(3 * nr * sizeof *score)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %zu lines", nr);
    double sum[3] = {0, 0, 0};
    for (size_t i = 0; st == LETHE_OK && i < nr; i++) {
        lethe_rouge_score s;
        st = lethe_rouge_l(ref[i], hyp[i], o.stem, &s);
        score[i] = s.precision;
        score[nr + i] = s.recall;
        score[2 * nr + i] = s.f1;
        for (int k = 0; k < 3; k++)
            sum[k] += score[k * nr + i];
    }
    free(ref);
    free(hyp);
    if (st != LETHE_OK) {
        free(score);
        return cli_report("stats rouge", st);
    }
    double mean[3] = {sum[0] / (double)nr, sum[1] / (double)nr, sum[2] / (double)nr};
    if (!o.json) {
        printf("line  precision  recall  f1\n");
        for (size_t i = 0; i < nr; i++)
            printf("%zu  %.10g  %.10g  %.10g\n", i + 1, score[i], score[nr + i],
                   score[2 * nr + i]);
        printf("mean  %.10g  %.10g  %.10g\n", mean[0], mean[1], mean[2]);
        free(score);
        return CLI_EXIT_OK;
    }
    static const char *const names[3] = {"precision", "recall", "f1"};
    cJSON *j = cJSON_CreateObject();
    for (int k = 0; k < 3; k++) {
        cJSON *arr = cJSON_AddArrayToObject(j, names[k]);
        for (size_t i = 0; arr && i < nr; i++)
            cJSON_AddItemToArray(arr, json_number(score[k * nr + i]));
    }
    add_number(j, "mean_precision", mean[0]);
    add_number(j, "mean_recall", mean[1]);
    add_number(j, "mean_f1", mean[2]);
    add_number(j, "n", (double)nr);
    cJSON_AddBoolToObject(j, "stem", o.stem);
    free(score);
    return emit_json("stats rouge", j);
}

static int stats_hmean(int argc, char **argv)
{
    static const struct option table[] = {OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe stats hmean [--json] FILE\n\n"
        "Harmonic mean n / sum(1/x) of the numbers in FILE (one per line), as\n"
        "scipy.stats.hmean. Values must be >= 0; if one is 0 the mean is 0 (with a\n"
        "warning on stderr, as scipy warns).\n\n"
        "  --json    print {hmean, n}\n"
        "  --quiet   no warning when a value is 0\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "stats hmean", usage, table, &o);
    if (rc >= 0 || (rc = need_files(argc, argv, "stats hmean", 1, "the FILE of numbers")) >= 0)
        return rc;
    const char *path = argv[optind];
    double *x, h;
    size_t n, zero = 0;
    lethe_status st = lethe_stats_numbers_read(path, &x, &n);
    for (size_t i = 0; st == LETHE_OK && i < n; i++) {
        if (x[i] < 0)
            st = lethe_fail(LETHE_ERR_INVALID,
                            "%s:%zu: %g is negative; the harmonic mean needs values >= 0", path,
                            i + 1, x[i]);
        else if (x[i] == 0 && !zero)
            zero = i + 1;
    }
    if (st == LETHE_OK)
        st = lethe_stats_hmean(x, n, &h);
    free(x);
    if (st != LETHE_OK)
        return cli_report("stats hmean", st);
    if (zero && !o.quiet)
        fprintf(stderr, "lethe stats hmean: warning: %s:%zu is 0, so the harmonic mean is 0\n",
                path, zero);
    if (!o.json) {
        printf("hmean  %.10g\nn      %zu\n", h, n);
        return CLI_EXIT_OK;
    }
    cJSON *j = cJSON_CreateObject();
    add_number(j, "hmean", h);
    add_number(j, "n", (double)n);
    return emit_json("stats hmean", j);
}

static int stats_wasserstein(int argc, char **argv)
{
    static const struct option table[] = {OPT_JSON, OPT_QUIET, OPT_HELP, OPT_END};
    const char *usage =
        "Usage: lethe stats wasserstein [--json] A B\n\n"
        "First Wasserstein (earth mover's) distance between the empirical distributions\n"
        "of the samples in files A and B (one number per line), the integral of\n"
        "|F_A - F_B|, as scipy.stats.wasserstein_distance.\n\n"
        "  --json    print {wasserstein, n1, n2}\n"
        "  --quiet   accepted as by every verb (only errors go to stderr)\n"
        "  -h, --help\n";
    struct opts o = {0};
    int rc = parse(argc, argv, "stats wasserstein", usage, table, &o);
    if (rc >= 0 ||
        (rc = need_files(argc, argv, "stats wasserstein", 2, "the sample files A and B")) >= 0)
        return rc;
    double *a, *b, w;
    size_t na, nb;
    lethe_status st = read_pair(argv, &a, &na, &b, &nb);
    if (st != LETHE_OK)
        return cli_report("stats wasserstein", st);
    st = lethe_stats_wasserstein(a, na, b, nb, &w);
    free(a);
    free(b);
    if (st != LETHE_OK)
        return cli_report("stats wasserstein", st);
    if (!o.json) {
        printf("wasserstein  %.10g\nn1           %zu\nn2           %zu\n", w, na, nb);
        return CLI_EXIT_OK;
    }
    cJSON *j = cJSON_CreateObject();
    add_number(j, "wasserstein", w);
    add_number(j, "n1", (double)na);
    add_number(j, "n2", (double)nb);
    return emit_json("stats wasserstein", j);
}

int cmd_stats(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } subs[] = {{"ks", stats_ks},
                {"auc", stats_auc},
                {"rouge", stats_rouge},
                {"hmean", stats_hmean},
                {"wasserstein", stats_wasserstein}};
    if (argc < 2)
        return cli_usage("stats", "missing a subcommand: ks, auc, rouge, hmean or wasserstein");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(sub, subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    if (sub[0] == '-')
        return cli_usage("stats", "unknown option '%s'", sub);
    return cli_usage("stats", "unknown subcommand '%s' (ks, auc, rouge, hmean or wasserstein)",
                     sub);
}
