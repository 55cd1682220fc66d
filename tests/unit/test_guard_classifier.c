/* The guard's prompt classifier (lethe/guard_classifier.h): the fit against
 * scikit-learn (tests/ref/make_guard_clf_fixture.py) and against its own
 * optimality conditions, split-conformal thresholds, hashed and model
 * features (the end-to-end task and the file are in
 * test_guard_classifier_e2e.c).
 *
 * Tolerances: against scikit-learn, mean and scale within 1e-12 relative;
 * weights and intercept within 1e-8 as |a - b| / (1 + |b|), probabilities
 * within 1e-8: both fits stop at gradients of 1e-10 or less on the
 * objective / (C n), whose curvature is at least 1 / (C n) (C n <= 1800). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_classifier.h"
#include "lethe/json.h"
#include "lethe/rng.h"

static double num(const cJSON *a, int i)
{
    return cJSON_GetArrayItem(a, i)->valuedouble;
}

/* ---- the fit ------------------------------------------------------------------ */

TEST(guard_clf_matches_sklearn)
{
    cJSON *ref;
    CHECK_OK(lethe_json_read(FIXTURES "guard_clf.json", &ref));
    const cJSON *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, ref) {
        const cJSON *x = cJSON_GetObjectItem(c, "x"), *y = cJSON_GetObjectItem(c, "y");
        int n = cJSON_GetArraySize(x), d = cJSON_GetArraySize(cJSON_GetArrayItem(x, 0));
        lethe_guard_rows_t *rows = lethe_guard_rows_new(d);
        int *labels = malloc((size_t)n * sizeof *labels);
        float row[64];
        CHECK(rows && labels && d <= 64);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++)
                row[j] = (float)num(cJSON_GetArrayItem(x, i), j);
            CHECK_OK(lethe_guard_rows_add(rows, row));
            labels[i] = cJSON_GetArrayItem(y, i)->valueint;
        }
        lethe_guard_feat f = {LETHE_GUARD_FEAT_MODEL, d, 3, NULL, NULL};
        lethe_guard_clf_cfg cfg;
        lethe_guard_clf_defaults(&cfg);
        cfg.C = cJSON_GetObjectItem(c, "C")->valuedouble;
        cfg.tol = 1e-11;
        cfg.max_iter = 10000;
        lethe_guard_clf *m;
        lethe_guard_fit_report rep;
        lethe_status st = lethe_guard_clf_fit(&f, rows, labels, &cfg, &m, &rep);
        free(labels);
        CHECK_OK(st);
        double dm = 0, dw = 0, dp = 0;
        for (int j = 0; j < d; j++) {
            double em = fabs(m->mean[j] - num(cJSON_GetObjectItem(c, "mean"), j));
            double es = fabs(m->std[j] - num(cJSON_GetObjectItem(c, "scale"), j)) / m->std[j];
            double want = num(cJSON_GetObjectItem(c, "coef"), j);
            dm = fmax(dm, fmax(em / (1 + fabs(m->mean[j])), es));
            dw = fmax(dw, fabs(m->w[j] - want) / (1 + fabs(want)));
        }
        double want_b = cJSON_GetObjectItem(c, "intercept")->valuedouble;
        dw = fmax(dw, fabs(m->bias - want_b) / (1 + fabs(want_b)));
        for (int i = 0; i < n; i++) {
            lethe_guard_rows_get(rows, i, row);
            dp = fmax(dp, fabs(lethe_guard_clf_score(m, row) -
                               num(cJSON_GetObjectItem(c, "proba"), i)));
        }
        printf("  %s: %d L-BFGS iterations, |grad| %.1e; max diff vs scikit-learn: "
               "mean/scale %.1e, weights %.1e, proba %.1e\n",
               cJSON_GetObjectItem(c, "name")->valuestring, rep.iters, rep.grad_norm, dm, dw, dp);
        lethe_guard_clf_free(m);
        lethe_guard_rows_free(rows);
        CHECK(rep.converged);
        CHECK_MSG(dm < 1e-12 && dw < 1e-8 && dp < 1e-8, "case %d differs from scikit-learn",
                  n_cases);
        n_cases++;
    }
    cJSON_Delete(ref);
    CHECK(n_cases == 3);
}

/* The objective written out densely, apart from the library's sparse form:
 * 0.5 |w|^2 + C sum_i cw_i log(1 + exp(-s_i (w.z_i + b))). */
static double ref_objective(const float *x, const int *y, int n, int d, const lethe_guard_clf *m,
                            const double *w, double b, double C)
{
    int pos = 0;
    for (int i = 0; i < n; i++)
        pos += y[i];
    double J = 0;
    for (int j = 0; j < d; j++)
        J += 0.5 * w[j] * w[j];
    for (int i = 0; i < n; i++) {
        double t = b, cw = y[i] ? n / (2.0 * pos) : n / (2.0 * (n - pos));
        for (int j = 0; j < d; j++)
            t += w[j] * ((x[(size_t)i * d + j] - m->mean[j]) / m->std[j]);
        t *= y[i] ? -1 : 1;
        J += C * cw * (t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)));
    }
    return J;
}

/* Sparse hashed rows: the standardisation matches a dense computation, the
 * fit's gradient is ~0 by central differences of the dense objective, and
 * moving any weight raises the objective. */
TEST(guard_clf_fit_is_optimal)
{
    enum { N = 60, D = 128 };
    static const char *words[] = {"paris", "river", "novel", "author", "born", "city",
                                  "green", "stone", "basil", "mahfouz", "quiet", "light"};
    lethe_guard_feat f;
    CHECK_OK(lethe_guard_feat_hash(D, &f));
    lethe_guard_rows_t *rows = lethe_guard_rows_new(D);
    float *x = malloc(sizeof(float) * N * D);
    int y[N];
    lethe_rng r = lethe_rng_init(7, 0);
    CHECK(rows && x);
    for (int i = 0; i < N; i++) {
        char text[128] = "";
        for (int k = 0; k < 4; k++) {
            strcat(text, words[lethe_rng_below(&r, 12)]);
            strcat(text, " ");
        }
        y[i] = strstr(text, "basil") || strstr(text, "river");
        CHECK_OK(lethe_guard_rows_add_text(rows, &f, text, strlen(text)));
        lethe_guard_rows_get(rows, (size_t)i, x + (size_t)i * D);
    }
    lethe_guard_clf_cfg cfg;
    lethe_guard_clf_defaults(&cfg);
    cfg.C = 0.5;
    cfg.tol = 1e-11;
    lethe_guard_clf *m;
    lethe_guard_fit_report rep;
    CHECK_OK(lethe_guard_clf_fit(&f, rows, y, &cfg, &m, &rep));
    CHECK(rep.converged);
    for (int j = 0; j < D; j++) { /* the sparse standardisation, densely */
        double mu = 0, var = 0;
        for (int i = 0; i < N; i++)
            mu += x[i * D + j] / (double)N;
        for (int i = 0; i < N; i++)
            var += (x[i * D + j] - mu) * (x[i * D + j] - mu) / N;
        CHECK_CLOSE(m->mean[j], mu, 1e-12, 1e-15);
        CHECK_CLOSE(m->std[j], var > 0 ? sqrt(var) : 1, 1e-9, 0);
    }
    double *w = malloc(sizeof(double) * (D + 1)), worst = 0, h = 1e-5;
    memcpy(w, m->w, sizeof(double) * D);
    w[D] = m->bias;
    double J0 = ref_objective(x, y, N, D, m, w, w[D], cfg.C);
    for (int j = 0; j <= D; j++) {
        double keep = w[j];
        w[j] = keep + h;
        double up = ref_objective(x, y, N, D, m, w, w[D], cfg.C);
        w[j] = keep - h;
        double down = ref_objective(x, y, N, D, m, w, w[D], cfg.C);
        w[j] = keep;
        worst = fmax(worst, fabs(up - down) / (2 * h) / (cfg.C * N));
        CHECK_MSG(up >= J0 - 1e-12 && down >= J0 - 1e-12, "weight %d is not at a minimum", j);
    }
    printf("  hashed rows: %d iterations, finite-difference gradient / (C n) %.1e\n", rep.iters,
           worst);
    CHECK(worst < 1e-7);
    /* invalid fits */
    int one_class[N] = {0};
    lethe_guard_clf *bad = NULL;
    CHECK_STATUS(lethe_guard_clf_fit(&f, rows, one_class, &cfg, &bad, NULL), LETHE_ERR_INVALID);
    one_class[3] = 2;
    CHECK_STATUS(lethe_guard_clf_fit(&f, rows, one_class, &cfg, &bad, NULL), LETHE_ERR_INVALID);
    cfg.C = 0;
    CHECK_STATUS(lethe_guard_clf_fit(&f, rows, y, &cfg, &bad, NULL), LETHE_ERR_INVALID);
    CHECK(bad == NULL);
    lethe_guard_clf_free(m);
    lethe_guard_rows_free(rows);
    free(x);
    free(w);
}

/* ---- split-conformal calibration ----------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

TEST(guard_clf_conformal_threshold)
{
    /* the rank, from integers: alpha = p / q, k = ceil((n + 1)(q - p) / q) */
    static const int cases[][3] = {{37, 1, 10}, {99, 1, 100}, {98, 1, 100}, {19, 1, 20},
                                   {9, 3, 10},  {999, 1, 100}, {5, 1, 2},   {1000, 7, 1000},
                                   {99, 9, 20}, {49, 21, 50}};
    double *s = malloc(sizeof(double) * 1001), *sorted = malloc(sizeof(double) * 1001);
    lethe_rng r = lethe_rng_init(11, 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n = cases[c][0], p = cases[c][1], q = cases[c][2];
        for (int i = 0; i < n; i++)
            s[i] = sorted[i] = (double)lethe_rng_below(&r, 50) / 50; /* with ties */
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_d);
        size_t want = (size_t)(((long)(n + 1) * (q - p) + q - 1) / q), k;
        double tau;
        CHECK_OK(lethe_guard_conformal_threshold(s, (size_t)n, (double)p / q, &tau, &k));
        CHECK_MSG(k == want, "n %d alpha %d/%d: rank %zu, expected %zu", n, p, q, k, want);
        CHECK(k > (size_t)n ? tau == INFINITY : tau == sorted[k - 1]);
    }
    /* Gaussian retain scores: over 400 calibration sets of 999, the mean
     * false-positive rate 1 - Phi(tau) is (n + 1 - k) / (n + 1) = alpha */
    double alpha = 0.01, mean_fpr = 0, tau;
    for (int trial = 0; trial < 400; trial++) {
        for (int i = 0; i < 999; i++)
            s[i] = lethe_rng_normal(&r);
        CHECK_OK(lethe_guard_conformal_threshold(s, 999, alpha, &tau, NULL));
        mean_fpr += 0.5 * erfc(tau / sqrt(2)) / 400;
    }
    /* and one calibration against 200,000 fresh retain scores */
    size_t fp = 0, fresh = 200000;
    for (size_t i = 0; i < fresh; i++)
        fp += lethe_rng_normal(&r) > tau;
    printf("  conformal, alpha 0.01: mean FPR over 400 calibrations %.5f; one calibration "
           "against %zu fresh negatives: %.5f\n", mean_fpr, fresh, (double)fp / fresh);
    CHECK(fabs(mean_fpr - alpha) < 8e-4);
    CHECK((double)fp / fresh <= alpha + 0.01);
    /* too few points, bad input */
    CHECK_OK(lethe_guard_conformal_threshold(s, 50, alpha, &tau, NULL));
    CHECK(tau == INFINITY);
    CHECK_STATUS(lethe_guard_conformal_threshold(s, 50, 0, &tau, NULL), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_guard_conformal_threshold(s, 0, 0.1, &tau, NULL), LETHE_ERR_INVALID);
    s[3] = NAN;
    CHECK_STATUS(lethe_guard_conformal_threshold(s, 50, 0.1, &tau, NULL), LETHE_ERR_INVALID);
    free(s);
    free(sorted);
}

/* ---- hashed features ------------------------------------------------------------ */

/* The documented hash, written out again: FNV-1a over tag + bytes, fmix64. */
static void ref_add(float *v, int D, char tag, const char *p, size_t n)
{
    uint64_t h = (0xcbf29ce484222325ull ^ (unsigned char)tag) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
    h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    v[(h & ~(1ull << 63)) % (uint64_t)D] += (h >> 63) ? -1.0f : 1.0f;
}

static double cosine(const float *a, const float *b, int D)
{
    double s = 0;
    for (int j = 0; j < D; j++)
        s += (double)a[j] * b[j];
    return s;
}

TEST(guard_clf_hash_features)
{
    enum { D = 4096 };
    lethe_guard_feat f;
    CHECK_OK(lethe_guard_feat_hash(D, &f));
    float *a = malloc(4 * sizeof(float) * D), *b = a + D, *c = b + D, *ref = c + D;
    const char *text = "Where was Basil Mahfouz born?";
    CHECK_OK(lethe_guard_features(&f, text, strlen(text), a));
    /* the reference: words, bigrams, char 3-5-grams of " where ... born " */
    const char *pad = " where was basil mahfouz born ";
    const char *w[] = {"where", "was", "basil", "mahfouz", "born"};
    memset(ref, 0, sizeof(float) * D);
    for (int i = 0; i < 5; i++) {
        ref_add(ref, D, 'U', w[i], strlen(w[i]));
        if (i)
            ref_add(ref, D, 'B', strstr(pad, w[i - 1]),
                    (size_t)(strstr(pad, w[i]) + strlen(w[i]) - strstr(pad, w[i - 1])));
    }
    for (size_t k = 3; k <= 5; k++)
        for (size_t i = 0; i + k <= strlen(pad); i++)
            ref_add(ref, D, 'C', pad + i, k);
    double norm = sqrt(cosine(ref, ref, D)), worst = 0;
    for (int j = 0; j < D; j++)
        worst = fmax(worst, fabs(a[j] - ref[j] / norm));
    CHECK_MSG(worst < 1e-7, "hash features differ from the documented hash by %g", worst);
    CHECK_CLOSE(cosine(a, a, D), 1.0, 0, 1e-6);
    /* deterministic, and blind to case and punctuation */
    const char *same = "  WHERE was basil-Mahfouz, born ";
    CHECK_OK(lethe_guard_features(&f, same, strlen(same), b));
    CHECK(memcmp(a, b, sizeof(float) * D) == 0);
    CHECK_OK(lethe_guard_features(&f, text, strlen(text), b));
    CHECK(memcmp(a, b, sizeof(float) * D) == 0);
    /* a near paraphrase shares buckets; an unrelated text hardly any */
    const char *near = "where was basil mahfous born", *far = "Recipe for lemon cake";
    CHECK_OK(lethe_guard_features(&f, near, strlen(near), b));
    CHECK_OK(lethe_guard_features(&f, far, strlen(far), c));
    printf("  hash cosine: paraphrase %.3f, unrelated %.3f\n", cosine(a, b, D), cosine(a, c, D));
    CHECK(cosine(a, b, D) > 0.7 && fabs(cosine(a, c, D)) < 0.15);
    /* empty after normalisation: zeros */
    CHECK_OK(lethe_guard_features(&f, " ?! ", 4, c));
    CHECK(cosine(c, c, D) == 0);
    /* with 2 buckets signed counts often cancel: zeros, never NaN */
    CHECK_OK(lethe_guard_feat_hash(2, &f));
    int cancelled = 0;
    for (int i = 0; i < 26 * 26; i++) {
        char two[2] = {(char)('a' + i / 26), (char)('a' + i % 26)};
        CHECK_OK(lethe_guard_features(&f, two, 2, c));
        double ss = cosine(c, c, 2);
        CHECK(ss == 0 || fabs(ss - 1) < 1e-6);
        cancelled += ss == 0;
    }
    CHECK(cancelled > 0);
    CHECK_STATUS(lethe_guard_feat_hash(1, &f), LETHE_ERR_INVALID);
    CHECK_OK(lethe_guard_feat_hash(0, &f));
    CHECK(f.dim == LETHE_GUARD_HASH_DIM && f.layer == -1);
    free(a);
}

/* ---- model features --------------------------------------------------------------- */

static lethe_gpt *tiny_gpt(int V)
{
    lethe_gpt_config cfg = {V, 8, 16, 3, 2};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    if (g)
        lethe_gpt_init_params(g, 5);
    return g;
}

struct job {
    const lethe_guard_feat *f;
    const int32_t *tokens;
    float *out; /* 20 prompts x 16 */
    lethe_status st;
};

static void *job_run(void *arg)
{
    struct job *j = arg;
    for (int p = 0; p < 20 && j->st == LETHE_OK; p++)
        j->st = lethe_guard_features_tokens(j->f, NULL, j->tokens + p, 3 + (size_t)p % 9,
                                            j->out + p * 16);
    return NULL;
}

TEST(guard_clf_model_features)
{
    lethe_gpt *g = tiny_gpt(64);
    CHECK(g);
    int32_t tok[32];
    for (int i = 0; i < 32; i++)
        tok[i] = (i * 37 + 5) % 64;
    lethe_guard_feat f;
    CHECK_OK(lethe_guard_feat_model(g, NULL, -1, &f));
    CHECK(f.layer == 2 && f.dim == 16); /* penultimate: the input of block L - 1 */
    float got[16];
    for (int layer = 0; layer <= 4; layer++) {
        CHECK_OK(lethe_guard_feat_model(g, NULL, layer, &f));
        /* 12 tokens on a context of 8: the last 8 count */
        CHECK_OK(lethe_guard_features_tokens(&f, NULL, tok, 12, got));
        CHECK_OK(lethe_gpt_forward(g, tok + 4, NULL, 1, 8));
        const float *h = lethe_gpt_hidden(g, layer);
        for (int j = 0; j < 16; j++) {
            double s = 0;
            for (int t = 0; t < 8; t++)
                s += h[t * 16 + j];
            CHECK_MSG(got[j] == (float)(s / 8), "layer %d feature %d: %g, direct %g", layer, j,
                      (double)got[j], s / 8);
        }
    }
    CHECK_STATUS(lethe_guard_feat_model(g, NULL, 5, &f), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_guard_features_tokens(&f, NULL, tok, 0, got), LETHE_ERR_INVALID);
    /* two threads on one model give the bytes of one thread */
    CHECK_OK(lethe_guard_feat_model(g, NULL, -1, &f));
    float *solo = malloc(sizeof(float) * 320), *duo = malloc(sizeof(float) * 640);
    struct job one = {&f, tok, solo, LETHE_OK}, two[2] = {{&f, tok, duo, LETHE_OK},
                                                          {&f, tok, duo + 320, LETHE_OK}};
    job_run(&one);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, job_run, &two[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(one.st == LETHE_OK && two[0].st == LETHE_OK && two[1].st == LETHE_OK);
    CHECK(!memcmp(solo, duo, sizeof(float) * 320) && !memcmp(solo, duo + 320, sizeof(float) * 320));
    free(solo);
    free(duo);
    lethe_gpt_free(g);
    /* text through a byte tokenizer: the features of the text's bytes */
    g = tiny_gpt(256);
    lethe_tokenizer_t *t = lethe_tokenizer_new();
    CHECK(g && t);
    for (int c = 0; c < 256; c++) {
        unsigned char byte = (unsigned char)c;
        CHECK_OK(lethe_tokenizer_add_token(t, (uint32_t)c, &byte, 1, 0));
    }
    CHECK_OK(lethe_guard_feat_model(g, t, 1, &f));
    float want[16];
    const char *text = "Mahfouz";
    int32_t bytes[7];
    for (int i = 0; i < 7; i++)
        bytes[i] = (unsigned char)text[i];
    CHECK_OK(lethe_guard_features(&f, text, 7, got));
    CHECK_OK(lethe_guard_features_tokens(&f, NULL, bytes, 7, want));
    CHECK(!memcmp(got, want, sizeof got));
    CHECK_STATUS(lethe_guard_features(&f, "", 0, got), LETHE_ERR_INVALID);
    lethe_tokenizer_free(t);
    lethe_gpt_free(g);
}
