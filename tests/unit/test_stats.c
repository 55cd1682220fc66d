/* Statistics tests: fixtures from scipy, scikit-learn and nltk
 * (tests/ref/make_stats_fixtures.py), plus small cases worked by hand. */
#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/fileio.h"
#include "lethe/stats.h"

/* ------------------------------------------------------------- fixtures */

static cJSON *load_json(const char *name)
{
    unsigned char *data;
    size_t len;
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    if (lethe_file_read(path, &data, &len) != LETHE_OK)
        return NULL;
    cJSON *j = cJSON_Parse((const char *)data);
    free(data);
    return j;
}

/* A sample as the generator stores it: an explicit list, or a spec expanded
 * with the 32-bit LCG of make_stats_fixtures.py. Caller frees *x. */
static int load_sample(const cJSON *spec, double **x, size_t *n)
{
    if (cJSON_IsArray(spec)) {
        size_t k = (size_t)cJSON_GetArraySize(spec), i = 0;
        *x = malloc((k ? k : 1) * sizeof **x);
        const cJSON *e;
        cJSON_ArrayForEach(e, spec) (*x)[i++] = e->valuedouble;
        *n = k;
        return 0;
    }
    const cJSON *seed = cJSON_GetObjectItem(spec, "seed"), *cnt = cJSON_GetObjectItem(spec, "n");
    const cJSON *lv = cJSON_GetObjectItem(spec, "levels"), *sc = cJSON_GetObjectItem(spec, "scale");
    const cJSON *of = cJSON_GetObjectItem(spec, "offset");
    if (!cJSON_IsNumber(seed) || !cJSON_IsNumber(cnt))
        return -1;
    uint32_t s = (uint32_t)seed->valuedouble;
    uint32_t levels = lv ? (uint32_t)lv->valuedouble : 0;
    double scale = sc ? sc->valuedouble : 1.0, offset = of ? of->valuedouble : 0.0;
    *n = (size_t)cnt->valuedouble;
    *x = malloc(*n * sizeof **x);
    for (size_t i = 0; i < *n; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t u = s >> 8;
        double t = levels ? (double)(u % levels) : (double)u / 16777216.0;
        t = scale * t;
        (*x)[i] = offset + t;
    }
    return 0;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ------------------------------------------------------- Kolmogorov-Smirnov */

TEST(stats_ks_matches_scipy)
{
    cJSON *root = load_json("stats_ks.json");
    CHECK_MSG(root, "cannot load stats_ks.json");
    const cJSON *c;
    int k = 0, n_exact = 0, n_asym = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        double *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        lethe_ks_result r;
        int ok = !load_sample(cJSON_GetObjectItem(c, "a"), &a, &na) &&
                 !load_sample(cJSON_GetObjectItem(c, "b"), &b, &nb);
        lethe_status st = ok ? lethe_stats_ks_2samp(a, na, b, nb, &r) : LETHE_ERR_FORMAT;
        free(a);
        free(b);
        if (st != LETHE_OK || !ok) {
            cJSON_Delete(root);
            CHECK_MSG(0, "case %d: %s", k, lethe_error_detail());
        }
        double want_d = num(c, "statistic"), want_p = num(c, "pvalue");
        const char *want_m = cJSON_GetObjectItem(c, "method")->valuestring;
        int m_ok = !strcmp(want_m, r.method == LETHE_KS_EXACT ? "exact" : "asymptotic");
        int p_ok = fabs(r.pvalue - want_p) <= 1e-12 + 1e-6 * want_p;
        if (r.statistic != want_d || !p_ok || !m_ok) {
            cJSON_Delete(root);
            CHECK_MSG(0, "case %d (n1=%zu n2=%zu): D %.17g want %.17g, p %.17g want %.17g, %s", k,
                      na, nb, r.statistic, want_d, r.pvalue, want_p, want_m);
        }
        n_exact += r.method == LETHE_KS_EXACT;
        n_asym += r.method == LETHE_KS_ASYMPTOTIC;
        k++;
    }
    cJSON_Delete(root);
    CHECK(k > 200 && n_exact > 100 && n_asym > 50);
}

TEST(stats_kstwo_matches_scipy)
{
    cJSON *root = load_json("stats_kstwo.json");
    CHECK_MSG(root, "cannot load stats_kstwo.json");
    const cJSON *row;
    int k = 0;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(root, "rows"))
    {
        long n = (long)cJSON_GetArrayItem(row, 0)->valuedouble;
        double x = cJSON_GetArrayItem(row, 1)->valuedouble;
        double want = cJSON_GetArrayItem(row, 2)->valuedouble, got = lethe_stats_kstwo_sf(x, n);
        if (!(fabs(got - want) <= 1e-12 + 1e-6 * want)) {
            cJSON_Delete(root);
            CHECK_MSG(0, "kstwo.sf(%.17g, %ld) = %.17g, scipy %.17g", x, n, got, want);
        }
        k++;
    }
    cJSON_Delete(root);
    CHECK(k > 500);
}

TEST(stats_ks_by_hand)
{
    lethe_ks_result r;
    /* fully separated samples of 3 and 4: D = 1, p = 2 / binom(7, 3) */
    const double a[] = {3, 1, 2}, b[] = {7, 4, 6, 5};
    CHECK_OK(lethe_stats_ks_2samp(a, 3, b, 4, &r));
    CHECK(r.statistic == 1.0 && r.method == LETHE_KS_EXACT);
    CHECK_CLOSE(r.pvalue, 2.0 / 35.0, 1e-14, 0);
    /* equal sizes, separated: p = 2 / binom(10, 5) */
    const double c[] = {1, 2, 3, 4, 5}, d[] = {6, 7, 8, 9, 10};
    CHECK_OK(lethe_stats_ks_2samp(c, 5, d, 5, &r));
    CHECK(r.statistic == 1.0);
    CHECK_CLOSE(r.pvalue, 2.0 / 252.0, 1e-14, 0);
    /* identical samples (with ties): D = 0, p = 1 */
    const double e[] = {1, 1, 2, 3};
    CHECK_OK(lethe_stats_ks_2samp(e, 4, e, 4, &r));
    CHECK(r.statistic == 0.0 && r.pvalue == 1.0);
    /* interleaved {1,3} vs {2,4}: D = 1/2; P(D >= 1/2) = 1 for n = 2 */
    const double f[] = {1, 3}, g[] = {2, 4};
    CHECK_OK(lethe_stats_ks_2samp(f, 2, g, 2, &r));
    CHECK(r.statistic == 0.5);
    CHECK_CLOSE(r.pvalue, 1.0, 1e-15, 0);
    /* one observation each, different: D = 1, P = 1 (any two differ) */
    CHECK_OK(lethe_stats_ks_2samp(f, 1, g, 1, &r));
    CHECK(r.statistic == 1.0 && r.pvalue == 1.0);
    double bad[] = {1, NAN};
    CHECK_STATUS(lethe_stats_ks_2samp(bad, 2, a, 3, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_stats_ks_2samp(a, 3, b, 0, &r), LETHE_ERR_INVALID);
}

TEST(stats_kstwo_closed_forms)
{
    /* n = 1: D = max(U, 1 - U), so P(D >= x) = 2 - 2x on [1/2, 1] */
    CHECK_CLOSE(lethe_stats_kstwo_sf(0.75, 1), 0.5, 1e-15, 0);
    CHECK(lethe_stats_kstwo_sf(0.25, 1) == 1.0);
    CHECK(lethe_stats_kstwo_sf(1.0, 5) == 0.0);
    /* Ruben-Gambino at the top: P(D_n >= x) = 2 (1 - x)^n for x >= 1 - 1/n */
    CHECK_CLOSE(lethe_stats_kstwo_sf(0.9, 5), 2 * pow(0.1, 5), 1e-13, 0);
    /* and at the bottom: P(D_n < x) = n!/n^n (2nx - 1)^n for 1/(2n) <= x <= 1/n */
    CHECK_CLOSE(lethe_stats_kstwo_sf(0.15, 5), 1 - 120.0 / 3125.0 * pow(0.5, 5), 1e-14, 0);
    /* the limit: sqrt(n) D_n -> Kolmogorov's distribution, P(K >= 1) = 0.26999967 */
    CHECK_CLOSE(lethe_stats_kstwo_sf(1.0 / sqrt(1e4), 10000), 0.26999967, 2e-2, 0);
    CHECK(isnan(lethe_stats_kstwo_sf(0.5, 0)));
    /* decreasing in x */
    double prev = 1.0;
    for (double x = 0.001; x < 1.0; x += 0.001) {
        double p = lethe_stats_kstwo_sf(x, 300);
        CHECK_MSG(p <= prev + 1e-15, "sf(%g, 300) = %g rises above %g", x, p, prev);
        prev = p;
    }
}

/* ------------------------------------------------------------------- ROC */

TEST(stats_roc_matches_sklearn)
{
    cJSON *root = load_json("stats_roc.json");
    CHECK_MSG(root, "cannot load stats_roc.json");
    const cJSON *fprs = cJSON_GetObjectItem(root, "fprs"), *c;
    int k = 0, failed = 0;
    char msg[256] = "";
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        const char *lab = cJSON_GetObjectItem(c, "labels")->valuestring;
        double *s = NULL, shift = num(c, "shift");
        size_t n = 0;
        if (load_sample(cJSON_GetObjectItem(c, "scores"), &s, &n) || strlen(lab) != n) {
            snprintf(msg, sizeof msg, "case %d: bad fixture", k);
            failed = 1;
            free(s);
            break;
        }
        int *y = malloc(n * sizeof *y);
        for (size_t i = 0; i < n; i++) {
            y[i] = lab[i] - '0';
            s[i] += shift * y[i];
        }
        lethe_roc_result r;
        lethe_status st = lethe_stats_roc(s, y, n, &r);
        if (st != LETHE_OK || fabs(r.auc - num(c, "auc")) > 1e-12) {
            snprintf(msg, sizeof msg, "case %d: auc %.17g want %.17g (%s)", k, r.auc,
                     num(c, "auc"), lethe_error_detail());
            failed = 1;
        }
        const cJSON *want = cJSON_GetObjectItem(c, "tpr"), *f;
        int i = 0;
        cJSON_ArrayForEach(f, fprs)
        {
            double t = -1, w = cJSON_GetArrayItem(want, i++)->valuedouble;
            if (failed)
                break;
            st = lethe_stats_tpr_at_fpr(s, y, n, f->valuedouble, &t);
            int same = (f->valuedouble == 0.01 && t == r.tpr_at_1fpr) ||
                       (f->valuedouble == 0.05 && t == r.tpr_at_5fpr) ||
                       (f->valuedouble != 0.01 && f->valuedouble != 0.05);
            if (st != LETHE_OK || fabs(t - w) > 1e-12 || !same) {
                snprintf(msg, sizeof msg, "case %d: tpr at fpr %g = %.17g, want %.17g", k,
                         f->valuedouble, t, w);
                failed = 1;
            }
        }
        free(s);
        free(y);
        if (failed)
            break;
        k++;
    }
    cJSON_Delete(root);
    CHECK_MSG(!failed, "%s", msg);
    CHECK(k >= 20);
}

TEST(stats_roc_by_hand)
{
    lethe_roc_result r;
    /* sklearn's documented example */
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const int y[] = {0, 0, 1, 1};
    CHECK_OK(lethe_stats_roc(s, y, 4, &r));
    CHECK_CLOSE(r.auc, 0.75, 1e-15, 0);
    CHECK(r.n_pos == 2 && r.n_neg == 2);
    /* points (0,0) (0,.5) (.5,.5) (.5,1) (1,1): at 1% and 5% FPR the TPR is .5 */
    CHECK_CLOSE(r.tpr_at_1fpr, 0.5, 1e-15, 0);
    double t;
    CHECK_OK(lethe_stats_tpr_at_fpr(s, y, 4, 0.25, &t));
    CHECK_CLOSE(t, 0.5, 1e-15, 0);
    CHECK_OK(lethe_stats_tpr_at_fpr(s, y, 4, 0.5, &t));
    CHECK_CLOSE(t, 1.0, 1e-15, 0); /* the higher end of the vertical step */
    /* all scores tied: the diagonal */
    const double tie[] = {1, 1, 1, 1};
    CHECK_OK(lethe_stats_roc(tie, y, 4, &r));
    CHECK_CLOSE(r.auc, 0.5, 1e-15, 0);
    CHECK_CLOSE(r.tpr_at_5fpr, 0.05, 1e-15, 0);
    /* Mann-Whitney with midranks: positives {3, 2 (tied with a negative)} vs {1, 2} */
    const double mw[] = {3, 2, 1, 2};
    const int my[] = {1, 1, 0, 0};
    CHECK_OK(lethe_stats_roc(mw, my, 4, &r));
    CHECK_CLOSE(r.auc, (1 + 1 + 1 + 0.5) / 4.0, 1e-15, 0);
    const int one[] = {1, 1, 1, 1}, bad[] = {0, 1, 2, 1};
    CHECK_STATUS(lethe_stats_roc(s, one, 4, &r), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "one class"));
    CHECK_STATUS(lethe_stats_roc(s, bad, 4, &r), LETHE_ERR_INVALID);
    const double nan_s[] = {0.1, NAN, 0.2, 0.3};
    CHECK_STATUS(lethe_stats_roc(nan_s, y, 4, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_stats_tpr_at_fpr(s, y, 4, 1.5, &t), LETHE_ERR_INVALID);
}

/* ------------------------------------------------ hmean and wasserstein */

TEST(stats_hmean_wasserstein_match_scipy)
{
    cJSON *root = load_json("stats_misc.json");
    CHECK_MSG(root, "cannot load stats_misc.json");
    const cJSON *c;
    int k = 0, failed = 0;
    char msg[200] = "";
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "hmean"))
    {
        double *x = NULL, v = NAN;
        size_t n = 0;
        if (load_sample(cJSON_GetObjectItem(c, "x"), &x, &n) || lethe_stats_hmean(x, n, &v) ||
            fabs(v - num(c, "value")) > 1e-12 * num(c, "value")) {
            snprintf(msg, sizeof msg, "hmean case %d: %.17g want %.17g", k, v, num(c, "value"));
            failed = 1;
        }
        free(x);
        k++;
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "wasserstein"))
    {
        double *a = NULL, *b = NULL, v = NAN;
        size_t na = 0, nb = 0;
        if (load_sample(cJSON_GetObjectItem(c, "a"), &a, &na) ||
            load_sample(cJSON_GetObjectItem(c, "b"), &b, &nb) ||
            lethe_stats_wasserstein(a, na, b, nb, &v) ||
            fabs(v - num(c, "value")) > 1e-12 * num(c, "value")) {
            snprintf(msg, sizeof msg, "wasserstein case %d: %.17g want %.17g", k, v,
                     num(c, "value"));
            failed = 1;
        }
        free(a);
        free(b);
        k++;
    }
    cJSON_Delete(root);
    CHECK_MSG(!failed, "%s", msg);
    CHECK(k >= 15);
}

TEST(stats_hmean_wasserstein_by_hand)
{
    double v;
    const double x[] = {1, 4, 4}, z[] = {2, 0, 3}, neg[] = {1, -2};
    CHECK_OK(lethe_stats_hmean(x, 3, &v));
    CHECK_CLOSE(v, 2.0, 1e-15, 0);
    CHECK_OK(lethe_stats_hmean(z, 3, &v));
    CHECK(v == 0.0);
    CHECK_STATUS(lethe_stats_hmean(neg, 2, &v), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "negative"));
    CHECK_STATUS(lethe_stats_hmean(x, 0, &v), LETHE_ERR_INVALID);
    /* shifting every point by 5 moves the mass by 5 */
    const double a[] = {0, 1, 3}, b[] = {5, 6, 8}, c[] = {3, 0, 1};
    CHECK_OK(lethe_stats_wasserstein(a, 3, b, 3, &v));
    CHECK_CLOSE(v, 5.0, 1e-15, 0);
    CHECK_OK(lethe_stats_wasserstein(a, 3, c, 3, &v));
    CHECK(v == 0.0);
    /* {0} vs {0, 1}: |1 - 1/2| over [0, 1) */
    CHECK_OK(lethe_stats_wasserstein(a, 1, a, 2, &v));
    CHECK_CLOSE(v, 0.5, 1e-15, 0);
    const double inf[] = {1, INFINITY};
    CHECK_STATUS(lethe_stats_wasserstein(inf, 2, a, 3, &v), LETHE_ERR_INVALID);
}

/* --------------------------------------------------------- Porter, ROUGE */

TEST(stats_porter_matches_nltk)
{
    FILE *f = fopen(FIXTURES "stats_porter.txt", "r");
    CHECK_MSG(f, "cannot open stats_porter.txt");
    char line[256], orig[128], word[128], want[128];
    int k = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%127s %127s", orig, want) != 2)
            continue;
        strcpy(word, orig);
        size_t n = lethe_porter_stem(word, strlen(word));
        if (n != strlen(want) || strcmp(word, want)) {
            failed = 1;
            break;
        }
        k++;
    }
    fclose(f);
    CHECK_MSG(!failed, "line %d: stem(%s) = %s, nltk %s", k + 1, orig, word, want);
    CHECK(k > 2000);
}

TEST(stats_rouge_matches_reference)
{
    cJSON *root = load_json("stats_rouge.json");
    CHECK_MSG(root, "cannot load stats_rouge.json");
    const cJSON *row;
    int k = 0, failed = 0;
    char msg[512] = "";
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(root, "rows"))
    {
        const char *ref = cJSON_GetArrayItem(row, 0)->valuestring;
        const char *hyp = cJSON_GetArrayItem(row, 1)->valuestring;
        for (int stem = 0; stem <= 1 && !failed; stem++) {
            lethe_rouge_score s;
            double w[3];
            for (int i = 0; i < 3; i++)
                w[i] = cJSON_GetArrayItem(row, 2 + 3 * stem + i)->valuedouble;
            if (lethe_rouge_l(ref, hyp, stem, &s) || fabs(s.precision - w[0]) > 1e-12 ||
                fabs(s.recall - w[1]) > 1e-12 || fabs(s.f1 - w[2]) > 1e-12) {
                snprintf(msg, sizeof msg, "pair %d (stem %d): P/R/F %.6f %.6f %.6f, want %.6f %.6f "
                         "%.6f; ref '%.80s' hyp '%.80s'", k, stem, s.precision, s.recall, s.f1,
                         w[0], w[1], w[2], ref, hyp);
                failed = 1;
            }
        }
        if (failed)
            break;
        k++;
    }
    cJSON_Delete(root);
    CHECK_MSG(!failed, "%s", msg);
    CHECK(k >= 300);
}

TEST(stats_rouge_by_hand)
{
    char **t;
    size_t n;
    CHECK_OK(lethe_rouge_tokenize("Hello, WORLD! it's 42\xe2\x84\xaa\x65lvin \xc4\xb0stanbul caf\xc3\xa9",
                                  0, &t, &n));
    const char *want[] = {"hello", "world", "it", "s", "42kelvin", "i", "stanbul", "caf"};
    CHECK(n == 8);
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(!strcmp(t[i], want[i]), "token %zu: '%s' != '%s'", i, t[i], want[i]);
    free(t);
    CHECK_OK(lethe_rouge_tokenize("Running quickly; the dogs ran", 1, &t, &n));
    CHECK(n == 5 && !strcmp(t[0], "run") && !strcmp(t[1], "quickli") && !strcmp(t[2], "the") &&
          !strcmp(t[3], "dog") && !strcmp(t[4], "ran"));
    free(t);
    CHECK_OK(lethe_rouge_tokenize(" ... ", 1, &t, &n));
    CHECK(n == 0 && t == NULL);
    lethe_rouge_score s;
    /* LCS of "police killed the gunman" / "police kill the gunman" is 3 of 4 */
    CHECK_OK(lethe_rouge_l("police killed the gunman", "police kill the gunman", 0, &s));
    CHECK_CLOSE(s.precision, 0.75, 1e-15, 0);
    CHECK_CLOSE(s.f1, 0.75, 1e-15, 0);
    CHECK_OK(lethe_rouge_l("police killed the gunman", "police kill the gunman", 1, &s));
    CHECK(s.f1 == 1.0);
    /* "the cat sat" vs "the cat sat on the mat": P = 1, R = 1/2, F = 2/3 */
    CHECK_OK(lethe_rouge_l("the cat sat on the mat", "The cat. Sat!", 0, &s));
    CHECK(s.precision == 1.0 && s.recall == 0.5);
    CHECK_CLOSE(s.f1, 2.0 / 3.0, 1e-15, 0);
    CHECK_OK(lethe_rouge_l("", "the cat", 0, &s));
    CHECK(s.precision == 0 && s.recall == 0 && s.f1 == 0);
    CHECK_OK(lethe_rouge_l("a b", "c d", 0, &s));
    CHECK(s.f1 == 0);
    /* the stemmer in place, irregular forms and short words */
    char w1[] = "dying", w2[] = "ab", w3[] = "Caresses";
    CHECK(lethe_porter_stem(w1, 5) == 3 && !strcmp(w1, "die"));
    CHECK(lethe_porter_stem(w2, 2) == 2 && !strcmp(w2, "ab"));
    CHECK(lethe_porter_stem(w3, 8) == 6 && !strcmp(w3, "caress"));
}

/* ----------------------------------------------------------------- input */

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

TEST(stats_numbers_read)
{
    char dir[] = "/tmp/lethe_stats_XXXXXX", path[64];
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.txt", dir);
    double *v;
    size_t n;
    const char good[] = "1\r\n  -2.5e3 \n0x10\n+.5\n\n\n";
    write_file(path, good, sizeof good - 1);
    lethe_status st = lethe_stats_numbers_read(path, &v, &n);
    int ok = st == LETHE_OK && n == 4 && v[0] == 1 && v[1] == -2500 && v[2] == 16 && v[3] == 0.5;
    if (st == LETHE_OK)
        free(v);
    struct {
        const char *text, *msg;
    } bad[] = {{"1\n2\nabc\n", "x.txt:3: 'abc' is not a number"},
               {"1\nnan\n", "x.txt:2: 'nan' is not a finite number"},
               {"1e999\n", "x.txt:1: '1e999' is not a finite number"},
               {"1\n\n2\n", "x.txt:2: blank line before the last number"},
               {"3 4\n", "x.txt:1: '3 4' is not a number"},
               {"", "x.txt: no numbers"},
               {"\n \n", "x.txt: no numbers"}};
    int bad_ok = 1;
    char got[300] = "";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && bad_ok; i++) {
        write_file(path, bad[i].text, strlen(bad[i].text));
        v = (double *)1;
        bad_ok = lethe_stats_numbers_read(path, &v, &n) == LETHE_ERR_FORMAT && v == NULL &&
                 strstr(lethe_error_detail(), bad[i].msg) && strstr(lethe_error_detail(), dir);
        snprintf(got, sizeof got, "%s (want %s)", lethe_error_detail(), bad[i].msg);
    }
    unlink(path);
    int io = lethe_stats_numbers_read(path, &v, &n) == LETHE_ERR_IO;
    rmdir(dir);
    CHECK(ok);
    CHECK_MSG(bad_ok, "%s", got);
    CHECK(io);
}

TEST(stats_lines_read)
{
    char dir[] = "/tmp/lethe_stats_XXXXXX", path[64];
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.txt", dir);
    char **l = NULL;
    size_t n = 0;
    const char text[] = "first line\r\n\nthird\tline\nlast, no newline";
    write_file(path, text, sizeof text - 1);
    lethe_status st = lethe_stats_lines_read(path, &l, &n);
    int ok = st == LETHE_OK && n == 4 && !strcmp(l[0], "first line") && !strcmp(l[1], "") &&
             !strcmp(l[2], "third\tline") && !strcmp(l[3], "last, no newline");
    free(l);
    write_file(path, "a\n\n", 3);
    st = lethe_stats_lines_read(path, &l, &n);
    ok = ok && st == LETHE_OK && n == 2 && !strcmp(l[0], "a") && !strcmp(l[1], "");
    free(l);
    write_file(path, "", 0);
    int empty = lethe_stats_lines_read(path, &l, &n) == LETHE_ERR_FORMAT &&
                strstr(lethe_error_detail(), "t.txt: no lines") && l == NULL;
    write_file(path, "ok\nbin\0ary\n", 11);
    int nul = lethe_stats_lines_read(path, &l, &n) == LETHE_ERR_FORMAT &&
              strstr(lethe_error_detail(), "t.txt:2: NUL byte");
    unlink(path);
    rmdir(dir);
    CHECK(ok);
    CHECK(empty);
    CHECK(nul);
}
