/* Linear models with exact and certified removal: the dense helpers, ridge
 * downdates against refits and scikit-learn, the guard, logistic Newton
 * fits against scikit-learn, the certified bound and its retrain, refusals,
 * files, and removals at d = 100, n = 100000 against a refit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/json.h"
#include "lethe/linear.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/safetensors.h"

/* ---- helpers ---- */

/* A regression set: x ~ N(mu_j, s_j), t = x beta + noise, ids 1000 + i. */
static lethe_dataset *synth_regress(long n, int d, int k, uint64_t seed)
{
    lethe_dataset *ds = lethe_dataset_alloc("synth", LETHE_TASK_REGRESS, n, d, k);
    if (!ds)
        return NULL;
    lethe_rng g = lethe_rng_init(seed, 1);
    double beta[16][4];
    for (int j = 0; j < d && j < 16; j++)
        for (int t = 0; t < k && t < 4; t++)
            beta[j][t] = lethe_rng_normal(&g);
    for (long i = 0; i < n; i++) {
        float *x = ds->x + (size_t)i * (size_t)d;
        for (int j = 0; j < d; j++)
            x[j] = (float)(lethe_rng_normal(&g) * (1 + 0.2 * (j % 5)) + 0.1 * j);
        for (int t = 0; t < k; t++) {
            double y = 0.5 + 0.3 * lethe_rng_normal(&g);
            for (int j = 0; j < d; j++)
                y += x[j] * (j < 16 ? beta[j][t % 4] : 0.01);
            ds->t[(size_t)i * (size_t)k + (size_t)t] = (float)y;
        }
        ds->ids[i] = 1000 + (uint64_t)i;
    }
    return ds;
}

/* A two-class set from a noisy linear rule, ids 1000 + i. */
static lethe_dataset *synth_binary(long n, int d, uint64_t seed)
{
    lethe_dataset *ds = lethe_dataset_alloc("synth2", LETHE_TASK_CLASSIFY, n, d, 0);
    if (!ds)
        return NULL;
    ds->n_classes = 2;
    lethe_rng g = lethe_rng_init(seed, 2);
    for (long i = 0; i < n; i++) {
        float *x = ds->x + (size_t)i * (size_t)d;
        double z = 0.2;
        for (int j = 0; j < d; j++) {
            x[j] = (float)lethe_rng_normal(&g);
            z += x[j] * (j % 2 ? 1.0 : -0.7);
        }
        ds->y[i] = lethe_rng_uniform(&g) < 1 / (1 + exp(-z));
        ds->ids[i] = 1000 + (uint64_t)i;
    }
    return ds;
}

/* Relative Frobenius distance of two parameter sets. */
static double rel_diff(const lethe_linear *a, const lethe_linear *b)
{
    double num = 0, den = 0;
    for (int i = 0; i < a->p * a->k; i++) {
        double e = a->theta[i] - b->theta[i];
        num += e * e, den += b->theta[i] * b->theta[i];
    }
    return sqrt(num / den);
}

/* rows = {r0, r1, ...} from a list ending in -1 */
static lethe_rows rows_of(const long *list)
{
    lethe_rows r = {0};
    while (list[r.n] >= 0)
        r.n++;
    r.row = malloc((size_t)(r.n ? r.n : 1) * sizeof *r.row);
    memcpy(r.row, list, (size_t)r.n * sizeof *r.row);
    return r;
}

/* ---- dense helpers ---- */

TEST(linear_chol_downdate_matches_refactor)
{
    enum { P = 12, N = 40 };
    static double X[N][P], A[P * P], R[P * P], B[P * P], work[3 * P];
    lethe_rng g = lethe_rng_init(7, 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < P; j++)
            X[i][j] = lethe_rng_normal(&g);
    for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++) {
            double s = a == b ? 0.5 : 0;
            for (int i = 0; i < N; i++)
                s += X[i][a] * X[i][b];
            A[a * P + b] = s;
        }
    memcpy(R, A, sizeof A);
    CHECK(lethe_chol_factor(R, P) == 0);
    /* Remove rows 0..4 one at a time; compare with the factor of what is left. */
    for (int r = 0; r < 5; r++) {
        double piv;
        CHECK(lethe_chol_downdate(R, P, X[r], 1e-9, &piv, work) == 0);
        CHECK(piv > 0 && piv < 1);
        for (int a = 0; a < P; a++)
            for (int b = 0; b < P; b++)
                A[a * P + b] -= X[r][a] * X[r][b];
    }
    for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++) {
            double s = 0;
            for (int i = 0; i < P; i++)
                s += R[i * P + a] * R[i * P + b];
            CHECK_CLOSE(s, A[a * P + b], 1e-12, 1e-11);
            if (a > b)
                CHECK(R[a * P + b] == 0);
        }
    memcpy(B, A, sizeof A);
    CHECK(lethe_chol_factor(B, P) == 0);
    for (int i = 0; i < P * P; i++)
        CHECK_CLOSE(R[i], B[i], 1e-10, 1e-11);
    /* A vector outside the ellipsoid cannot be removed; R is left alone. */
    double big[P];
    for (int j = 0; j < P; j++)
        big[j] = 100 * X[9][j];
    memcpy(B, R, sizeof R);
    double piv;
    CHECK(lethe_chol_downdate(R, P, big, 1e-9, &piv, work) == -1);
    CHECK(piv < 0);
    CHECK(memcmp(B, R, sizeof R) == 0);
}

TEST(linear_chol_solve_and_max_eig)
{
    enum { P = 6 };
    double A[P * P], R[P * P], b[P * 2], work[P * P + 2 * P];
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++)
            A[i * P + j] = (i == j ? P + 1.0 : 0) + 1.0 / (1 + i + j);
    memcpy(R, A, sizeof A);
    CHECK(lethe_chol_factor(R, P) == 0);
    for (int i = 0; i < P; i++)
        b[2 * i] = i + 1, b[2 * i + 1] = -1;
    lethe_chol_solve(R, P, b, 2);
    for (int i = 0; i < P; i++) { /* A x reproduces the right-hand sides */
        double s0 = 0, s1 = 0;
        for (int j = 0; j < P; j++)
            s0 += A[i * P + j] * b[2 * j], s1 += A[i * P + j] * b[2 * j + 1];
        CHECK_CLOSE(s0, i + 1, 1e-13, 1e-13);
        CHECK_CLOSE(s1, -1, 1e-13, 1e-13);
    }
    /* diag(1, 4, 9, 2, 3, 5): the bound is 9, to within the certifying margin */
    double D[P * P] = {0};
    double dv[P] = {1, 4, 9, 2, 3, 5};
    for (int i = 0; i < P; i++)
        D[i * P + i] = dv[i];
    double s = lethe_sym_max_eig(D, P, work);
    CHECK(s >= 9 && s < 9 * (1 + 1e-6));
    s = lethe_sym_max_eig(A, P, work);
    /* compare with the Rayleigh quotient bound from the power method's own answer */
    double trace = 0;
    for (int i = 0; i < P; i++)
        trace += A[i * P + i];
    CHECK(s > P + 1 && s <= trace);
    /* a singular matrix is refused */
    double S[4] = {1, 1, 1, 1};
    CHECK(lethe_chol_factor(S, 2) == -1);
}

/* ---- ridge ---- */

TEST(linear_ridge_matches_sklearn)
{
    cJSON *ref;
    CHECK_OK(lethe_json_read(FIXTURES "lin_ref.json", &ref));
    const cJSON *cases = cJSON_GetObjectItem(ref, "ridge"), *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *x = cJSON_GetObjectItem(c, "x"), *y = cJSON_GetObjectItem(c, "y");
        const cJSON *coef = cJSON_GetObjectItem(c, "coef");
        const cJSON *icpt = cJSON_GetObjectItem(c, "intercept");
        int n = cJSON_GetArraySize(x), d = cJSON_GetArraySize(cJSON_GetArrayItem(x, 0));
        int k = cJSON_GetArraySize(cJSON_GetArrayItem(y, 0));
        lethe_dataset *ds = lethe_dataset_alloc("ref", LETHE_TASK_REGRESS, n, d, k);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++)
                ds->x[i * d + j] =
                    (float)cJSON_GetArrayItem(cJSON_GetArrayItem(x, i), j)->valuedouble;
            for (int t = 0; t < k; t++)
                ds->t[i * k + t] =
                    (float)cJSON_GetArrayItem(cJSON_GetArrayItem(y, i), t)->valuedouble;
            ds->ids[i] = (uint64_t)i;
        }
        lethe_linear_cfg cfg;
        lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
        cfg.lambda = cJSON_GetObjectItem(c, "alpha")->valuedouble;
        lethe_linear *m;
        lethe_status st = lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m);
        lethe_dataset_free(ds);
        CHECK_OK(st);
        double worst = 0;
        for (int t = 0; t < k; t++) {
            for (int j = 0; j < d; j++) {
                double want = cJSON_GetArrayItem(cJSON_GetArrayItem(coef, t), j)->valuedouble;
                double e = fabs(m->theta[j * k + t] - want) / (1e-8 + fabs(want));
                worst = e > worst ? e : worst;
            }
            double want = cJSON_GetArrayItem(icpt, t)->valuedouble;
            double e = fabs(m->theta[d * k + t] - want) / (1e-8 + fabs(want));
            worst = e > worst ? e : worst;
        }
        lethe_linear_free(m);
        printf("  ridge vs scikit-learn, %s: max relative error %.2g\n",
               cJSON_GetObjectItem(c, "name")->valuestring, worst);
        CHECK_MSG(worst < 1e-8, "ridge case %s: relative error %g against scikit-learn",
                  cJSON_GetObjectItem(c, "name")->valuestring, worst);
        n_cases++;
    }
    cJSON_Delete(ref);
    CHECK(n_cases == 4);
}

TEST(linear_ridge_downdate_matches_refit)
{
    lethe_dataset *ds = synth_regress(300, 10, 2, 11);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    cfg.lambda = 0.3;
    lethe_linear *m = NULL, *ref = NULL;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m));
    CHECK(m->n == 300 && m->p == 11 && m->k == 2);
    /* one sample */
    lethe_linear_report rep;
    lethe_rows one = rows_of((long[]){17, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &one, &rep));
    CHECK(rep.removed == 1 && rep.downdates == 1 && !rep.refactored);
    CHECK(m->n == 299 && m->n_removed == 1 && m->removed[0] == 1017 && m->requests == 1);
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    double e1 = rel_diff(m, ref);
    CHECK_MSG(e1 < 1e-10, "one removal differs from a refit by %g", e1);
    lethe_linear_free(ref);
    /* a batch of 40, spread over the set */
    lethe_rows batch = {0};
    batch.row = malloc(40 * sizeof *batch.row);
    for (long i = 0; i < 40; i++)
        batch.row[batch.n++] = 4 + 7 * i;
    CHECK_OK(lethe_linear_forget(m, ds, &batch, &rep));
    CHECK(rep.downdates == 40 && !rep.refactored && rep.min_pivot > 0.5);
    CHECK(m->n == 259 && m->n_removed == 41 && m->requests == 2);
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    double e2 = rel_diff(m, ref);
    CHECK_MSG(e2 < 1e-10, "a batch removal differs from a refit by %g", e2);
    /* the factor itself matches the refit's */
    for (int i = 0; i < m->p * m->p; i++)
        CHECK_CLOSE(m->R[i], ref->R[i], 1e-9, 1e-9);
    printf("  ridge n=300 d=10: relative difference from a refit %.2g (1 removal), %.2g "
           "(then 40)\n", e1, e2);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    lethe_rows_free(&one);
    lethe_rows_free(&batch);
    lethe_dataset_free(ds);
}

TEST(linear_ridge_guard_refactors_near_singular)
{
    /* Feature 3 is zero except in row 7: removing row 7 leaves only the
     * penalty in that direction, so the downdate's pivot 1 - h is tiny. */
    lethe_dataset *ds = synth_regress(50, 4, 1, 5);
    for (long i = 0; i < 50; i++)
        ds->x[i * 4 + 3] = i == 7 ? 5.0f : 0.0f;
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    cfg.lambda = 1e-9;
    lethe_linear *m = NULL, *ref = NULL;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m));
    lethe_linear_report rep;
    lethe_rows r7 = rows_of((long[]){2, 7, 30, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &r7, &rep));
    CHECK(rep.refactored == 1 && rep.min_pivot < cfg.guard);
    CHECK(m->n == 47 && m->n_removed == 3);
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    CHECK_MSG(rel_diff(m, ref) < 1e-10, "after the guard: %g", rel_diff(m, ref));
    CHECK(fabs(m->theta[3]) < 1e-12); /* no data left in that direction */
    lethe_linear_free(ref);
    lethe_linear_free(m);
    /* Without a penalty the remaining system is singular: refused, unchanged. */
    cfg.lambda = 0;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m));
    double theta[5];
    memcpy(theta, m->theta, sizeof theta);
    CHECK_STATUS(lethe_linear_forget(m, ds, &r7, &rep), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "singular") != NULL);
    CHECK(memcmp(theta, m->theta, sizeof theta) == 0);
    CHECK(m->n == 50 && m->n_removed == 0 && m->requests == 0);
    /* ... and fitting on such data in the first place is refused too */
    lethe_linear *bad = NULL;
    lethe_rows keep = {0};
    lethe_rows all;
    CHECK_OK(lethe_rows_all(&all, 50));
    CHECK_OK(lethe_rows_minus(&keep, &all, &r7));
    CHECK_STATUS(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, &keep, &bad), LETHE_ERR_INVALID);
    CHECK(bad == NULL);
    lethe_rows_free(&all);
    lethe_rows_free(&keep);
    lethe_linear_free(m);
    lethe_rows_free(&r7);
    lethe_dataset_free(ds);
}

TEST(linear_refuses_ids_it_does_not_hold)
{
    lethe_dataset *ds = synth_regress(60, 3, 1, 9);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    lethe_rows all, keep = {0}, excl = rows_of((long[]){9, -1});
    CHECK_OK(lethe_rows_all(&all, 60));
    CHECK_OK(lethe_rows_minus(&keep, &all, &excl));
    lethe_linear *m;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, &keep, &m));
    CHECK(m->n == 59 && m->n_excluded == 1 && m->excluded[0] == 1009);
    lethe_rows five = rows_of((long[]){5, -1}), both = rows_of((long[]){4, 5, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &five, NULL));
    double theta[4];
    memcpy(theta, m->theta, sizeof theta);
    /* the same id again, alone or in a batch: refused, nothing changes */
    CHECK_STATUS(lethe_linear_forget(m, ds, &five, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "id 1005 was already removed") != NULL);
    CHECK_STATUS(lethe_linear_forget(m, ds, &both, NULL), LETHE_ERR_INVALID);
    CHECK(m->n == 58 && m->n_removed == 1 && m->requests == 1);
    CHECK(memcmp(theta, m->theta, sizeof theta) == 0);
    /* an id left out at the fit */
    CHECK_STATUS(lethe_linear_forget(m, ds, &excl, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "left out") != NULL);
    /* everything that is left */
    lethe_rows rest = {0};
    CHECK_OK(lethe_linear_held(m, ds, &rest));
    CHECK(rest.n == 58);
    CHECK_STATUS(lethe_linear_forget(m, ds, &rest, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "none") != NULL);
    /* another data set (another size) is refused; its own works */
    lethe_dataset *other = synth_regress(70, 3, 1, 9);
    lethe_rows four = rows_of((long[]){4, -1}), late = rows_of((long[]){65, -1});
    CHECK_STATUS(lethe_linear_forget(m, other, &late, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "not the data set") != NULL);
    CHECK_OK(lethe_linear_forget(m, ds, &four, NULL));
    CHECK(m->n == 57);
    lethe_linear_free(m);
    /* a logistic model needs two classes */
    m = NULL;
    CHECK_STATUS(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &m),
                 LETHE_ERR_INVALID);
    CHECK(m == NULL);
    lethe_rows_free(&late);
    lethe_rows_free(&rest);
    lethe_rows_free(&four);
    lethe_rows_free(&all);
    lethe_rows_free(&keep);
    lethe_rows_free(&excl);
    lethe_rows_free(&five);
    lethe_rows_free(&both);
    lethe_dataset_free(other);
    lethe_dataset_free(ds);
}

/* ---- logistic ---- */

TEST(linear_logistic_matches_sklearn)
{
    cJSON *ref;
    CHECK_OK(lethe_json_read(FIXTURES "lin_ref.json", &ref));
    const cJSON *cases = cJSON_GetObjectItem(ref, "logistic"), *c;
    int n_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *x = cJSON_GetObjectItem(c, "x"), *y = cJSON_GetObjectItem(c, "y");
        const cJSON *w = cJSON_GetObjectItem(c, "w");
        int n = cJSON_GetArraySize(x), d = cJSON_GetArraySize(cJSON_GetArrayItem(x, 0));
        lethe_dataset *ds = lethe_dataset_alloc("ref", LETHE_TASK_CLASSIFY, n, d, 0);
        ds->n_classes = 2;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++)
                ds->x[i * d + j] =
                    (float)cJSON_GetArrayItem(cJSON_GetArrayItem(x, i), j)->valuedouble;
            ds->y[i] = cJSON_GetArrayItem(y, i)->valueint;
            ds->ids[i] = (uint64_t)i;
        }
        lethe_linear_cfg cfg;
        lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &cfg);
        cfg.lambda = cJSON_GetObjectItem(c, "lambda")->valuedouble;
        cfg.sigma = 0; /* scikit-learn's objective has no noise term */
        lethe_linear *m;
        lethe_status st = lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &m);
        lethe_dataset_free(ds);
        CHECK_OK(st);
        double worst = 0, wn = 0;
        for (int j = 0; j <= d; j++) {
            double want = cJSON_GetArrayItem(w, j)->valuedouble;
            worst = fmax(worst, fabs(m->theta[j] - want));
            wn = fmax(wn, fabs(want));
        }
        CHECK_MSG(m->beta < 1e-9 * n, "gradient norm %g at the optimum", m->beta);
        lethe_linear_free(m);
        printf("  logistic vs scikit-learn, %s: max error %.2g (largest weight %.3g)\n",
               cJSON_GetObjectItem(c, "name")->valuestring, worst, wn);
        /* tolerance: 1e-6 of the largest weight (scikit-learn stops at a
         * mean gradient of ~1e-10; lambda >= 1e-3 bounds the error) */
        CHECK_MSG(worst <= 1e-6 * wn, "logistic case %s: max error %g (largest weight %g)",
                  cJSON_GetObjectItem(c, "name")->valuestring, worst, wn);
        n_cases++;
    }
    cJSON_Delete(ref);
    CHECK(n_cases == 3);
}

TEST(linear_logistic_certified_bound_accumulates)
{
    lethe_dataset *ds = synth_binary(400, 5, 3);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &cfg);
    cfg.sigma = 50, cfg.seed = 4; /* a large budget: no retrain here */
    lethe_linear *m = NULL, *ref = NULL;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &m));
    double budget = lethe_linear_budget(m);
    CHECK_CLOSE(budget, 50 / sqrt(2 * log(1.5 / 1e-4)), 1e-12, 0);
    CHECK(m->beta < 1e-6); /* the training optimum's own residual */
    double prev = m->beta;
    for (long r = 10; r < 60; r += 10) {
        lethe_linear_report rep;
        lethe_rows one = rows_of((long[]){r, -1});
        CHECK_OK(lethe_linear_forget(m, ds, &one, &rep));
        lethe_rows_free(&one);
        CHECK(rep.steps == 1 && !rep.retrained && rep.certified);
        CHECK(rep.bound_added > 0);
        CHECK_CLOSE(m->beta, prev + rep.bound_added, 1e-12, 0);
        /* the bound bounds the true gradient of the remaining objective */
        double g = lethe_linear_grad_norm(m, ds);
        CHECK_MSG(g <= m->beta, "gradient norm %g above the bound %g", g, m->beta);
        prev = m->beta;
    }
    CHECK(m->n == 395 && m->retrains == 0 && m->requests == 5);
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    double e = rel_diff(m, ref);
    printf("  logistic n=400: after 5 certified removals bound %.3g of %.3g, true gradient "
           "%.3g, %.2g from a refit\n", m->beta, budget, lethe_linear_grad_norm(m, ds), e);
    CHECK(e < 1e-3);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    lethe_dataset_free(ds);
}

TEST(linear_logistic_budget_spent_retrains)
{
    lethe_dataset *ds = synth_binary(300, 4, 8);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &cfg);
    cfg.seed = 12;
    lethe_linear *m = NULL, *ref = NULL;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &m));
    /* Remove one sample at a time until the budget runs out. */
    int retrained_at = -1;
    double beta_before = 0;
    for (long r = 0; r < 200 && retrained_at < 0; r++) {
        lethe_linear_report rep;
        lethe_rows one = rows_of((long[]){r, -1});
        beta_before = m->beta;
        CHECK_OK(lethe_linear_forget(m, ds, &one, &rep));
        lethe_rows_free(&one);
        if (rep.retrained) {
            retrained_at = (int)r;
            CHECK(rep.steps == 0 && rep.certified);
        } else {
            CHECK(rep.certified && m->beta <= rep.budget);
        }
    }
    CHECK_MSG(retrained_at > 0, "no retrain in 200 removals (beta %g)", m->beta);
    CHECK(m->retrains == 1 && m->beta < beta_before && m->beta < 1e-6);
    /* the retrain is a fit from scratch with noise draw 1: bit for bit */
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    CHECK(memcmp(m->theta, ref->theta, (size_t)m->p * sizeof *m->theta) == 0);
    printf("  logistic n=300 sigma 1: %d certified removals, then a retrain\n", retrained_at);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    /* sigma 0: nothing is certified, so every removal retrains (exactly) */
    cfg.sigma = 0;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &m));
    lethe_linear_report rep;
    lethe_rows two = rows_of((long[]){3, 4, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &two, &rep));
    CHECK(rep.retrained && m->retrains == 1 && !rep.certified);
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    CHECK(memcmp(m->theta, ref->theta, (size_t)m->p * sizeof *m->theta) == 0);
    /* removing the same id twice is refused */
    CHECK_STATUS(lethe_linear_forget(m, ds, &two, &rep), LETHE_ERR_INVALID);
    CHECK(m->retrains == 1 && m->n == 298);
    lethe_rows_free(&two);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    lethe_dataset_free(ds);
}

TEST(linear_logistic_noise_is_keyed)
{
    lethe_dataset *ds = synth_binary(120, 3, 2);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &cfg);
    lethe_linear *a, *b, *c, *z;
    cfg.seed = 1;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &a));
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &b));
    cfg.seed = 2;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &c));
    cfg.sigma = 0;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &z));
    size_t bytes = (size_t)a->p * sizeof *a->theta;
    CHECK(memcmp(a->theta, b->theta, bytes) == 0);
    CHECK(memcmp(a->theta, c->theta, bytes) != 0);
    CHECK(memcmp(a->theta, z->theta, bytes) != 0);
    lethe_linear_free(a);
    lethe_linear_free(b);
    lethe_linear_free(c);
    lethe_linear_free(z);
    /* a three-class or regression set is refused */
    lethe_dataset *r = synth_regress(20, 2, 1, 1);
    cfg.sigma = 1;
    CHECK_STATUS(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, r, NULL, &a), LETHE_ERR_INVALID);
    ds->n_classes = 3;
    CHECK_STATUS(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &cfg, ds, NULL, &a), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "two-class") != NULL);
    lethe_dataset_free(r);
    lethe_dataset_free(ds);
}

/* ---- files ---- */

TEST(linear_save_load_round_trip)
{
    char path[] = "/tmp/lethe_linear_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    lethe_dataset *ds = synth_regress(80, 4, 2, 21);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    lethe_rows all, keep = {0}, excl = rows_of((long[]){0, 11, -1});
    lethe_rows_all(&all, 80);
    lethe_rows_minus(&keep, &all, &excl);
    lethe_linear *m, *l;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, &keep, &m));
    lethe_rows drop = rows_of((long[]){3, 40, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &drop, NULL));
    const char *meta[] = {"data", "synth"};
    CHECK_OK(lethe_linear_save(m, path, meta, 1));
    CHECK_OK(lethe_linear_load(path, 0, &l));
    CHECK(l->kind == LETHE_LINEAR_RIDGE && l->d == 4 && l->k == 2 && l->n == 76);
    CHECK(l->n_excluded == 2 && l->excluded[1] == 1011);
    CHECK(l->n_removed == 2 && l->removed[0] == 1003 && l->removed[1] == 1040);
    CHECK(l->requests == 1 && !strcmp(l->data_hash, m->data_hash));
    for (int i = 0; i < m->p * m->k; i++)
        CHECK_CLOSE(l->theta[i], m->theta[i], 1e-14, 1e-300);
    for (int i = 0; i < m->p * m->p; i++)
        CHECK_CLOSE(l->R[i], m->R[i], 1e-14, 1e-300);
    /* the predictor tensors hold the same model in float */
    lethe_safetensors *st;
    CHECK_OK(lethe_safetensors_open(path, &st));
    CHECK(!strcmp(lethe_safetensors_meta(st, "spec"), "in=4;linear=2"));
    CHECK(!strcmp(lethe_safetensors_meta(st, "data"), "synth"));
    CHECK(!strcmp(lethe_safetensors_meta(st, "removed"), "1003,1040"));
    float w[8];
    CHECK_OK(lethe_safetensors_load_f32(st, "layers.0.weight", 2, (size_t[]){2, 4}, w));
    CHECK_CLOSE(w[1 * 4 + 2], m->theta[2 * 2 + 1], 1e-6, 0); /* output 1, feature 2 */
    lethe_safetensors_free(st);
    /* the loaded model removes like the original */
    lethe_rows more = rows_of((long[]){50, -1});
    CHECK_OK(lethe_linear_forget(m, ds, &more, NULL));
    CHECK_OK(lethe_linear_forget(l, ds, &more, NULL));
    CHECK(rel_diff(l, m) < 1e-13);
    CHECK_STATUS(lethe_linear_forget(l, ds, &drop, NULL), LETHE_ERR_INVALID);
    /* logistic, whose seed is not in the file */
    lethe_dataset *bs = synth_binary(90, 3, 4);
    lethe_linear_cfg lc;
    lethe_linear_defaults(LETHE_LINEAR_LOGISTIC, &lc);
    lc.seed = 77;
    lethe_linear *g, *gl;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_LOGISTIC, &lc, bs, NULL, &g));
    CHECK_OK(lethe_linear_forget(g, bs, &drop, NULL));
    CHECK_OK(lethe_linear_save(g, path, NULL, 0));
    CHECK_OK(lethe_safetensors_open(path, &st));
    CHECK(lethe_safetensors_meta(st, "seed") == NULL);
    CHECK(!strcmp(lethe_safetensors_meta(st, "spec"), "in=3;linear=2"));
    lethe_safetensors_free(st);
    CHECK_OK(lethe_linear_load(path, 77, &gl));
    CHECK(gl->kind == LETHE_LINEAR_LOGISTIC && gl->beta == g->beta && gl->cfg.seed == 77);
    CHECK(gl->cfg.sigma == lc.sigma && gl->cfg.delta == lc.delta && gl->n == 88);
    CHECK_CLOSE(lethe_linear_grad_norm(gl, bs), lethe_linear_grad_norm(g, bs), 1e-6, 1e-12);
    /* a model file of another kind */
    size_t shape = 1;
    float one = 1;
    lethe_st_f32 t = {"layers.0.bias", 1, &shape, &one};
    lethe_st_meta sm = {"spec", "in=1;linear=1"};
    CHECK_OK(lethe_safetensors_write(path, &t, 1, &sm, 1));
    lethe_linear *none = NULL;
    CHECK_STATUS(lethe_linear_load(path, 0, &none), LETHE_ERR_UNSUPPORTED);
    CHECK(none == NULL && strstr(lethe_error_detail(), "not a ridge or logistic") != NULL);
    close(fd);
    remove(path);
    lethe_linear_free(g);
    lethe_linear_free(gl);
    lethe_linear_free(m);
    lethe_linear_free(l);
    lethe_rows_free(&all);
    lethe_rows_free(&keep);
    lethe_rows_free(&excl);
    lethe_rows_free(&drop);
    lethe_rows_free(&more);
    lethe_dataset_free(ds);
    lethe_dataset_free(bs);
}

/* ---- at scale (the timings are in bench/bench_ridge.c) ---- */

TEST(linear_ridge_removals_at_scale_match_refit)
{
    enum { D = 100 };
    const long N = test_quick() ? 20000 : 100000;
    lethe_dataset *ds = synth_regress(N, D, 1, 99);
    CHECK(ds != NULL);
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    lethe_linear *m = NULL, *ref = NULL;
    CHECK_OK(lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m));
    lethe_linear_report rep;
    for (int r = 0; r < 7; r++) {
        lethe_rows one = rows_of((long[]){1000 + 13 * r, -1});
        CHECK_OK(lethe_linear_forget(m, ds, &one, &rep));
        lethe_rows_free(&one);
    }
    lethe_rows batch = {0};
    batch.row = malloc(100 * sizeof *batch.row);
    for (long i = 0; i < 100; i++)
        batch.row[batch.n++] = N / 2 + 37 * i;
    CHECK_OK(lethe_linear_forget(m, ds, &batch, &rep));
    CHECK_OK(lethe_linear_refit(m, ds, &ref));
    double e = rel_diff(m, ref);
    CHECK_MSG(e < 1e-6, "relative difference from a refit %g", e);
    lethe_rows_free(&batch);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    lethe_dataset_free(ds);
}
