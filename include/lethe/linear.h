/* Linear models with exact and certified removal of training samples.
 *
 *   ridge     least squares with an L2 penalty, fitted in closed form. The
 *             model keeps the Cholesky factor R of A = X~^T X~ + lambda * D
 *             (A = R^T R, R upper triangular) and b = X~^T Y, with
 *             theta = A^-1 b. Removing a sample is a rank-1 downdate of R
 *             and of b, then two triangular solves: O(p^2) instead of the
 *             O(n p^2) of a refit, and exact up to rounding. A downdate whose
 *             pivot 1 - h (h = x~^T A^-1 x~, the sample's leverage) falls
 *             under the guard is not trusted: the factor is then rebuilt
 *             from the remaining rows and the report says so.
 *   logistic  L2-regularised logistic regression with certified removal
 *             (Guo, Goldstein, Hannun and van der Maaten, ICML 2020). The
 *             training objective, in mean form, is
 *                 mean_i log(1 + exp(-y_i w^T x~_i)) + lambda/2 ||w||^2 + b^T w / n
 *             with labels y in {-1, +1} (class 1 is +1) and a noise vector
 *             b ~ N(0, sigma^2 I) drawn from (seed, retrain count); it is
 *             minimised by Newton's method. Removing sample j is one Newton
 *             step on the remaining rows,
 *                 w += H^-1 [ y_j x~_j (s(y_j w^T x~_j) - 1) + lambda w ],
 *                 H = sum_rem s_i (1 - s_i) x~_i x~_i^T + lambda n_rem I,
 *             and adds gamma ||Delta|| ||X_rem Delta|| ||X_rem||_2 (gamma
 *             = 1/4) to beta, a bound on the gradient of the remaining
 *             objective at w. The model is (eps, delta)-certified while
 *             beta <= sigma eps / c, c = sqrt(2 ln(1.5 / delta)); a removal
 *             that would pass the budget retrains from scratch on the
 *             remaining rows with a fresh noise draw instead, and beta
 *             restarts from the new optimum's own gradient norm.
 *
 * Features are x~ = (x, 1): the last parameter is the bias. Ridge leaves the
 * bias unpenalised (D = diag(1, ..., 1, 0)), so its solution is scikit-
 * learn's Ridge(alpha=lambda, fit_intercept=True). Logistic penalises the
 * bias like every other weight, so the objective is lambda-strongly convex
 * in every direction as the certificate assumes; its optimum with sigma = 0
 * is scikit-learn's LogisticRegression(C=1/(n lambda), fit_intercept=False)
 * on (x, 1). All arithmetic is in double precision.
 *
 * A model records which samples it holds by id: the ids left out when it
 * was fitted and the ids removed since. Removing an id it does not hold is
 * refused (LETHE_ERR_INVALID naming the id); a refused or failed removal
 * leaves the model exactly as it was.
 *
 * Files: lethe_linear_save writes F32 safetensors. "layers.0.weight"
 * (outputs, d) and "layers.0.bias" hold the predictor in the layout of a
 * one-layer net ("in=D;linear=K"; logistic as two logits (0, w^T x~)). The
 * exact state is kept in double precision as pairs of F32 tensors,
 * NAME.hi = (float)v and NAME.lo = (float)(v - hi), whose sum restores v to
 * about 2^-48 relative: "linear.theta" (p, k), and for ridge "linear.chol"
 * (p, p, upper) and "linear.xty" (p, k). Metadata: "kind", the settings,
 * "n", "beta", "retrains", "requests", "data_hash", and "excluded" and
 * "removed" as comma-separated ids. The noise seed is never written to the
 * model file: knowing it would void the certificate. */
#ifndef LETHE_LINEAR_H
#define LETHE_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/dataset.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_linear_kind { LETHE_LINEAR_RIDGE, LETHE_LINEAR_LOGISTIC } lethe_linear_kind;

/* "ridge" or "logistic". */
const char *lethe_linear_kind_name(lethe_linear_kind kind);
/* LETHE_ERR_INVALID naming the choices for anything else. */
lethe_status lethe_linear_kind_parse(const char *name, lethe_linear_kind *out);

typedef struct lethe_linear_cfg {
    double lambda;  /* L2 strength: ridge, the alpha of ||y - X~ theta||^2 +
                       alpha ||theta_x||^2; logistic, of the mean-form loss */
    double guard;   /* ridge: refactor when a downdate pivot 1 - h < guard */
    double sigma;   /* logistic: standard deviation of the noise b; 0: no
                       noise, nothing is certified and every removal retrains */
    double eps;     /* logistic: the certified (eps, delta) */
    double delta;
    uint64_t seed;  /* logistic: keys the noise draws (keep it secret) */
} lethe_linear_cfg;

/* Defaults: ridge lambda 1, guard 1e-6; logistic lambda 1e-2, sigma 1,
 * eps 1, delta 1e-4. */
void lethe_linear_defaults(lethe_linear_kind kind, lethe_linear_cfg *cfg);

typedef struct lethe_linear {
    lethe_linear_kind kind;
    lethe_linear_cfg cfg;
    int d;              /* features */
    int p;              /* parameters per output: d + 1, the bias last */
    int k;              /* outputs: ridge, the targets; logistic 1 */
    long n;             /* samples the model holds */
    double *theta;      /* (p, k) row-major */
    double *R;          /* ridge: (p, p) upper Cholesky factor of A; lower part 0 */
    double *xty;        /* ridge: (p, k) X~^T Y */
    double beta;        /* logistic: bound on the gradient norm of the remaining
                           (sum-form) objective at theta, since the last training */
    long retrains;      /* logistic: retrainings since the fit; keys the noise */
    long requests;      /* removals applied */
    uint64_t *excluded; /* (n_excluded) ids left out at the fit, ascending */
    long n_excluded;
    uint64_t *removed;  /* (n_removed) ids removed since, ascending */
    long n_removed;
    char data_hash[17]; /* lethe_rows_hash of the whole training set at the fit */
} lethe_linear;

/* Fit a model of `kind` on rows of ds (all rows when rows is NULL; rows
 * ascending). Ridge needs a regression set, logistic a two-class one
 * (LETHE_ERR_INVALID otherwise, as for a singular system or a Newton run
 * that does not converge). The ids of ds outside rows become the model's
 * excluded ids. Free *out with lethe_linear_free. */
lethe_status lethe_linear_fit(lethe_linear_kind kind, const lethe_linear_cfg *cfg,
                              const lethe_dataset *ds, const lethe_rows *rows,
                              lethe_linear **out);

void lethe_linear_free(lethe_linear *m); /* NULL is a no-op */

/* What a removal did. */
typedef struct lethe_linear_report {
    long removed;       /* samples removed */
    double seconds;     /* time spent on the removal itself */
    /* ridge */
    long downdates;     /* rank-1 downdates applied */
    int refactored;     /* 1: the guard tripped and R was rebuilt from the rows */
    double min_pivot;   /* smallest 1 - h met (1 when none) */
    /* logistic */
    long steps;         /* Newton removal steps applied */
    int retrained;      /* 1: the budget was spent and the model retrained */
    double bound_added; /* what the steps added to beta */
    double beta;        /* beta afterwards */
    double budget;      /* sigma eps / c */
    int certified;      /* beta <= budget */
} lethe_linear_report;

/* Remove rows `drop` of ds (ascending, distinct) from m. ds must be the
 * data set m was fitted on (same ids and values). An id m does not hold,
 * or a data set that does not match, is refused before anything changes;
 * so is a removal that would leave no sample or a singular system. rep may
 * be NULL. */
lethe_status lethe_linear_forget(lethe_linear *m, const lethe_dataset *ds,
                                 const lethe_rows *drop, lethe_linear_report *rep);

/* The rows of ds that m holds (ascending); LETHE_ERR_FORMAT when their
 * number is not m->n (not the data set m was fitted on). Caller frees. */
lethe_status lethe_linear_held(const lethe_linear *m, const lethe_dataset *ds, lethe_rows *out);

/* A new model fitted from scratch on the rows m holds, with m's settings
 * and (logistic) m's current noise draw: what m should agree with. */
lethe_status lethe_linear_refit(const lethe_linear *m, const lethe_dataset *ds,
                                lethe_linear **out);

/* Logistic: sigma eps / sqrt(2 ln(1.5 / delta)); 0 for ridge. */
double lethe_linear_budget(const lethe_linear *m);

/* Logistic: the gradient norm of m's remaining sum-form objective at theta
 * (with the current noise), computed on the rows it holds: the quantity
 * beta bounds. NAN (detail set) on failure. */
double lethe_linear_grad_norm(const lethe_linear *m, const lethe_dataset *ds);

/* Outputs for n samples x (n, d): ridge, (n, k) predictions in the data
 * set's standardised units; logistic, (n) margins w^T x~ (class 1 when
 * positive, probability 1 / (1 + exp(-margin))). */
void lethe_linear_predict(const lethe_linear *m, const float *x, long n, double *out);

/* Accuracy (logistic) or mean absolute and squared error in the data's
 * units (ridge) on rows of ds (all when NULL); the unused fields are NAN. */
typedef struct lethe_linear_scores {
    long n;
    double accuracy, l1, mse;
} lethe_linear_scores;
void lethe_linear_score(const lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows,
                        lethe_linear_scores *out);

/* Write m to path atomically, with metadata pairs meta_kv[2i] = key,
 * meta_kv[2i + 1] = value added to the model's own. */
lethe_status lethe_linear_save(const lethe_linear *m, const char *path,
                               const char *const *meta_kv, size_t n_meta);

/* Read a model written by lethe_linear_save; `seed` is the noise seed (not
 * stored in the file; ignored for ridge). A model file of another kind is
 * LETHE_ERR_UNSUPPORTED, a damaged one LETHE_ERR_FORMAT. Free with
 * lethe_linear_free. */
lethe_status lethe_linear_load(const char *path, uint64_t seed, lethe_linear **out);

/* ---- Run directories ----------------------------------------------------
 *
 * A run directory holds model.safetensors, config.json (the fit's settings)
 * and log.jsonl (one line per fit or removal), and, once a removal was
 * requested, ledger.log (lethe/ledger.h). Both calls below hold the
 * directory's lock (lethe/runlock.h) while they read and write it. */

/* A ridge removal must agree with a refit this closely (relative). */
#define LETHE_LINEAR_CHECK_RTOL 1e-6

typedef struct lethe_linear_fit_opts {
    const char *data;        /* the task (required) */
    const char *model;       /* "ridge", "logistic", or NULL: ridge for regression
                                tasks, logistic for two classes */
    const char *exclude;     /* a split of the training set to leave out, or NULL */
    uint64_t split_seed;     /* the seed of random:F splits */
    long limit, window;      /* lethe_task_opts */
    double lambda, guard, sigma, eps, delta; /* NAN: the kind's default */
    uint64_t seed;           /* logistic: the noise seed */
    int force;               /* write into an existing, non-empty directory */
} lethe_linear_fit_opts;

/* Every setting unset (NAN or 0). */
void lethe_linear_fit_defaults(lethe_linear_fit_opts *o);

typedef struct lethe_linear_forget_opts {
    const char *ids;         /* a split naming the samples to remove; NULL: the
                                ids of id_list, or with none only apply what the
                                ledger holds pending */
    uint64_t split_seed;
    const uint64_t *id_list; /* when ids is NULL: remove these n_id_list sample ids
                                (an id not in the training set is LETHE_ERR_INVALID) */
    long n_id_list;
    int check;               /* also refit from scratch and compare; a ridge
                                removal off by more than LETHE_LINEAR_CHECK_RTOL
                                is LETHE_ERR_FAILED and nothing is written */
    /* Called once the new request is durable in the ledger (may be NULL):
     * the moment to acknowledge it. */
    void (*recorded)(long request, long n_ids, void *ctx);
    void *ctx;
} lethe_linear_forget_opts;

/* What a fit or a removal did. */
typedef struct lethe_linear_run {
    char dir[4096];
    char task[64];
    lethe_linear *m;                     /* the model as written */
    lethe_dataset *train, *test;
    /* fit */
    lethe_rows rows;                     /* the training rows used */
    long excluded;                       /* rows left out */
    lethe_linear_scores train_scores, test_scores;
    double seconds;                      /* the fit's time */
    /* removal */
    long request;                        /* the new request's number (0: none) */
    long pending;                        /* requests a crash left pending, applied now */
    lethe_rows drop;                     /* every row removed now (empty: nothing
                                            to do, nothing written) */
    lethe_linear_report rep;
    double ref_seconds, rel_diff, grad_norm; /* check: the refit's time, the relative
                                                difference, logistic's gradient norm */
} lethe_linear_run;

/* Fit as o says and write the run directory dir, by the rule of
 * lethe_rundir_begin (lethe/rundir.h): an existing, non-empty dir is
 * refused unless o->force, dir may not be, hold or lie in the data or
 * exclude file, its lock is held throughout, and a fit that fails leaves
 * nothing of what it created. Free *out with lethe_linear_run_free. */
lethe_status lethe_linear_run_fit(const char *dir, const lethe_linear_fit_opts *o,
                                  lethe_linear_run **out);

/* Remove samples from the run in dir, in place. The request is checked
 * (ids known, held and not named by an earlier request; the data set the
 * one fitted on) before anything is written; it is then recorded in the
 * ledger, the model file replaced in one rename (its metadata naming the
 * parent file's hash), the ledger's pending requests marked applied and the
 * log extended. Requests a crash left pending are applied with it. A run of
 * another kind is LETHE_ERR_UNSUPPORTED. */
lethe_status lethe_linear_run_forget(const char *dir, const lethe_linear_forget_opts *o,
                                     lethe_linear_run **out);

void lethe_linear_run_free(lethe_linear_run *r); /* NULL is a no-op */

/* A removal report's fields into the JSON object o, as log.jsonl records
 * them (ridge: downdates, refactored, min_pivot; logistic: steps,
 * retrained, retrains, bound_added, beta, budget, with_eps: eps and delta,
 * certified). */
struct cJSON;
void lethe_linear_report_json(struct cJSON *o, const lethe_linear *m,
                              const lethe_linear_report *rep, int with_eps);

/* ---- dense helpers (row-major p x p, double) ---- */

/* Factor the symmetric positive definite A (upper triangle read) in place
 * into upper R with A = R^T R; the lower triangle is zeroed. Returns 0, or
 * -1 when a pivot is not positive (A is then clobbered). */
int lethe_chol_factor(double *A, int p);

/* Solve R^T R X = B in place for B (p, k) row-major. */
void lethe_chol_solve(const double *R, int p, double *B, int k);

/* Rank-1 downdate: R becomes the factor of R^T R - x x^T (LINPACK's
 * orthogonal method). work holds 3p doubles. Returns 0, or -1 leaving R
 * unchanged when 1 - x^T (R^T R)^-1 x < guard; *pivot receives that value
 * either way (may be NULL). */
int lethe_chol_downdate(double *R, int p, const double *x, double guard, double *pivot,
                        double *work);

/* An upper bound on the largest eigenvalue of the symmetric positive
 * semi-definite G (upper triangle read): power iteration, then a Cholesky
 * factorisation of s I - G that certifies s. work holds p * p + 2p doubles. */
double lethe_sym_max_eig(const double *G, int p, double *work);

LETHE_API_END
#endif
