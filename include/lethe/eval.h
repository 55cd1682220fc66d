/* Evaluation suites for classifiers and regressors: how well a model has
 * forgotten a forget set, measured against the oracle (the model retrained
 * without it) where one is given. Definitions, formulas and references are in
 * docs/metrics.md.
 *
 *   membership attack   an RBF support vector classifier solved as
 *                       scikit-learn's SVC(C=3, gamma='auto') solves it
 *                       (libsvm's SMO), on one feature per sample
 *   classification      UA, RA, TA, MIA-efficacy, activation distance and
 *                       Jensen-Shannon divergence to the oracle, ZRF,
 *                       relearn time, Avg. Gap
 *   regression          L1 and MSE on forget / retain / test, loss-based
 *                       MIA, Wasserstein distance to the oracle, Anamnesis
 *                       Index
 *
 * Results are written in the OpenUnlearning layout (DESIGN §6):
 * <SUITE>_EVAL.json = {metric: {"agg_value": x, "value_by_index": {ID: v}}}
 * with one value per forget sample keyed by its id, and <SUITE>_SUMMARY.json
 * = {metric: x}. Every random choice (attack subsamples, the random network
 * of ZRF, relearning order) is keyed by the seed and sample ids, so the same
 * inputs give the same numbers (DESIGN §5); only the wall time varies.
 *
 * Nets are taken non-const because a forward pass uses their work space;
 * their parameters are never changed. */
#ifndef LETHE_EVAL_H
#define LETHE_EVAL_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe/dataset.h"
#include "lethe/net.h"
#include "lethe/progress.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* ================================================== support vector classifier */

typedef struct lethe_svc_cfg {
    double C;         /* box constraint; 3 as in SalUn and Deep Regression Unlearning */
    double gamma;     /* RBF width exp(-gamma |x - x'|^2); <= 0: 1 / n_features ('auto') */
    double tol;       /* libsvm's stopping tolerance on the maximal violating pair */
    int shrinking;    /* libsvm's shrinking heuristic (changes the path, not the optimum) */
    double cache_mb;  /* kernel column cache */
    long max_iter;    /* 0: no limit (scikit-learn's max_iter=-1) */
} lethe_svc_cfg;

/* C 3, gamma 'auto', tol 1e-3, shrinking on, cache 200 MB, no iteration cap:
 * scikit-learn's SVC(C=3, gamma='auto', kernel='rbf') */
void lethe_svc_defaults(lethe_svc_cfg *cfg);

/* A trained binary SVC, in scikit-learn's convention: a decision value >= 0
 * means class 1 (here: member). */
typedef struct lethe_svc {
    int d;               /* features */
    double gamma;
    long n_sv;           /* support vectors, class 0's first, each in input order */
    long n_support[2];   /* per class */
    double *sv;          /* (n_sv, d) */
    double *coef;        /* (n_sv) scikit-learn's dual_coef_: y_i alpha_i, y = +1 for class 1 */
    long *support;       /* (n_sv) row of each support vector in the training input */
    double intercept;    /* scikit-learn's intercept_ (libsvm's rho) */
    long n_iter;         /* SMO iterations (scikit-learn's n_iter_) */
    double obj;          /* dual objective */
    int converged;       /* 0 if max_iter stopped the solver */
} lethe_svc;

/* Fit on n samples x (n, d) with labels[i] 0 or 1. Both classes must occur
 * and every value must be finite (else LETHE_ERR_INVALID). The result does
 * not depend on how the two classes are interleaved in the input, only on the
 * order within each class, as in scikit-learn. *out is freed with
 * lethe_svc_free. */
lethe_status lethe_svc_fit(const double *x, const int *labels, long n, int d,
                           const lethe_svc_cfg *cfg, lethe_svc **out);
void lethe_svc_free(lethe_svc *m); /* NULL is a no-op */

/* scikit-learn's decision_function for one sample x (d): the sum over
 * support vectors of coef_i exp(-gamma |sv_i - x|^2), plus intercept. */
double lethe_svc_decision(const lethe_svc *m, const double *x);
/* scikit-learn's predict: 1 unless the decision value is negative. */
int lethe_svc_predict(const lethe_svc *m, const double *x);

/* ========================================================= membership attack */

typedef enum lethe_mia_feature {
    LETHE_MIA_CONFIDENCE, /* softmax probability of the true label, p_y(x) */
    LETHE_MIA_ENTROPY,    /* entropy of the softmax, -sum p log p (nats) */
    LETHE_MIA_L1          /* regressors: L1 loss, mean |prediction - target| over
                             outputs, on the standardised targets */
} lethe_mia_feature;

/* Parse "confidence", "entropy", "l1". */
lethe_status lethe_mia_feature_parse(const char *name, lethe_mia_feature *out);
const char *lethe_mia_feature_name(lethe_mia_feature f);

/* One feature per row of rows (every row when rows is NULL) into out. The
 * feature must fit the task: confidence and entropy need a classifier, l1 a
 * regressor (else LETHE_ERR_INVALID). */
lethe_status lethe_mia_features(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                lethe_mia_feature f, double *out);

/* At most `cap` rows of `from` (all of them when cap <= 0 or from->n <= cap):
 * those whose ids have the smallest keyed hashes under seed, returned in
 * ascending row order. out->row is freed with lethe_rows_free. */
lethe_status lethe_eval_subsample(const lethe_dataset *ds, const lethe_rows *from, long cap,
                                  uint64_t seed, lethe_rows *out);

/* How the attack's training samples are drawn: members from the retain set
 * D_r, non-members from the test set. */
typedef enum lethe_mia_sampling {
    LETHE_MIA_SAMPLE_BALANCED, /* keyed subsamples of equal size, min(cap, |D_r|,
                                  |D_test|) each, as Deep Regression Unlearning
                                  draws equal numbers */
    LETHE_MIA_SAMPLE_SALUN     /* SalUn's code: the first |D_test| rows of D_r (in
                                  row order; all of D_r when smaller) against all
                                  of D_test; the cap is ignored */
} lethe_mia_sampling;

/* Parse "balanced", "salun". */
lethe_status lethe_mia_sampling_parse(const char *name, lethe_mia_sampling *out);
const char *lethe_mia_sampling_name(lethe_mia_sampling s);

typedef struct lethe_mia_cfg {
    lethe_mia_feature feature;
    long cap;           /* attack training samples per class; 2000 as in Deep
                           Regression Unlearning; <= 0: no cap */
    uint64_t seed;      /* keys the subsamples */
    lethe_mia_sampling sampling;
    lethe_svc_cfg svc;
} lethe_mia_cfg;

/* Confidence feature, cap 2000, seed 0, balanced sampling, lethe_svc_defaults. */
void lethe_mia_defaults(lethe_mia_cfg *cfg);

/* The attack's training rows under cfg->sampling: members (rows of train,
 * drawn from retain) and non-members (rows of test), each ascending. Free
 * both with lethe_rows_free. */
lethe_status lethe_mia_rows(const lethe_dataset *train, const lethe_rows *retain,
                            const lethe_dataset *test, const lethe_mia_cfg *cfg,
                            lethe_rows *members, lethe_rows *nonmembers);

typedef struct lethe_mia_result {
    double member_rate;  /* percent of the targets predicted member */
    double *decision;    /* (n_target) decision values (>= 0: member) */
    int *member;         /* (n_target) 1 if predicted member */
    long n_sv, n_iter;   /* of the fitted attack */
    double seconds;      /* fitting and scoring */
} lethe_mia_result;

/* Train the attack on one feature per sample, members (label 1) against
 * non-members (label 0), and score the targets. Free with
 * lethe_mia_result_free. */
lethe_status lethe_mia_attack(const double *members, long n_members, const double *nonmembers,
                              long n_nonmembers, const double *targets, long n_targets,
                              const lethe_svc_cfg *cfg, lethe_mia_result *out);
void lethe_mia_result_free(lethe_mia_result *r); /* zeroes r; safe on a zeroed struct */

/* The attack on one net: cfg->feature of members (rows of train) against
 * non-members (rows of test), scoring the targets (rows of train): *rate is
 * the percentage judged member. Per target, when not NULL: target_feat the
 * feature, member_i 100 if judged member else 0, decision_i the decision
 * value. */
lethe_status lethe_mia_run(lethe_net *net, const lethe_dataset *train, const lethe_dataset *test,
                           const lethe_rows *members, const lethe_rows *nonmembers,
                           const lethe_rows *targets, const lethe_mia_cfg *cfg,
                           double *target_feat, double *member_i, double *decision_i,
                           double *rate);

/* ================================================================ shared */

/* Evaluation-mode outputs (logits, or standardised predictions) of net for
 * rows of ds (every row when rows is NULL) into out (n, net->n_out), in
 * fixed batches of 256. The net must fit the data set (else
 * LETHE_ERR_INVALID naming both shapes). */
lethe_status lethe_eval_outputs(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                float *out);

/* One metric of a suite: an aggregate, and optionally one value per forget
 * sample. NaN values are written as null (a metric that was not computed).
 * A summary-only metric (the wall time) is left out of <SUITE>_EVAL.json, so
 * that file is the same for the same inputs. */
typedef struct lethe_eval_metric {
    const char *name;
    double agg;
    const double *per_sample; /* (n) or NULL */
    int summary_only;
} lethe_eval_metric;

/* Write dir/<suite>_EVAL.json and dir/<suite>_SUMMARY.json atomically, with
 * per-sample values keyed by ids[0..n) printed in decimal. Numbers are
 * printed so they read back exactly. */
lethe_status lethe_eval_write(const char *dir, const char *suite, const lethe_eval_metric *m,
                              int n_metrics, const uint64_t *ids, long n);
/* The summary object {name: agg} of m (NaN as null). NULL on out of memory. */
cJSON *lethe_eval_summary_json(const lethe_eval_metric *m, int n_metrics);

/* ========================================================= classification */

/* Which Jensen-Shannon divergence the classification suite reports (and ZRF
 * is built on). */
typedef enum lethe_js_kind {
    LETHE_JS_PAPER,       /* 1/2 KL(p||m) + 1/2 KL(q||m), m = (p + q) / 2, nats */
    LETHE_JS_BAD_TEACHING /* the bad-teaching code's JSDiv: 1/2 KL(m||p) + 1/2
                             KL(m||q), divided by the number of classes (PyTorch's
                             kl_div with its default 'mean' reduction) */
} lethe_js_kind;

/* Parse "paper", "bad-teaching". */
lethe_status lethe_js_kind_parse(const char *name, lethe_js_kind *out);
const char *lethe_js_kind_name(lethe_js_kind k);

/* The divergence of one pair of distributions over K classes; the mean over
 * samples is the suite's aggregate (for the bad-teaching kind, the
 * reference's mean over every sample and class). */
double lethe_js_divergence(const double *p, const double *q, long K, lethe_js_kind kind);

typedef struct lethe_classify_cfg {
    lethe_mia_cfg mia;        /* feature confidence or entropy */
    lethe_js_kind js;         /* of JS_divergence and ZRF; paper */
    uint64_t seed;            /* keys the random network of ZRF and relearning */
    float relearn_lr;         /* Adam (no weight decay) on the forget set; 1e-3 */
    int relearn_batch;        /* 32 */
    long relearn_max_steps;   /* give up (censored) after this many steps; 500 */
    long relearn_cap;         /* keyed subsample of the forget set to relearn and
                                 measure on; 1000; <= 0: all */
    double relearn_tol;       /* target = (1 - tol) * the original's accuracy; 0 */
    lethe_progress *progress; /* NULL (the default), or its total set to the suite's
                                 stages (each net's metrics, ZRF, each net's
                                 relearning) and advanced as each ends */
} lethe_classify_cfg;

void lethe_classify_defaults(lethe_classify_cfg *cfg);

typedef struct lethe_classify_eval {
    /* percentages */
    double ua, ra, ta, mia;           /* mia: MIA-efficacy, % of D_f judged non-member */
    double oracle_ua, oracle_ra, oracle_ta, oracle_mia; /* NaN without an oracle */
    double avg_gap;                   /* NaN without an oracle */
    double act_dist, js;              /* means over D_f; NaN without an oracle */
    double zrf;                       /* 1 - mean JS(model, random net) over D_f (nats) */
    double confidence;                /* mean p_y(x) over D_f */
    /* relearn time: Adam steps on (a subsample of) D_f until its accuracy
     * reaches the original's; -1 when not measured (no original) */
    long relearn_steps, oracle_relearn_steps;
    int relearn_reached, oracle_relearn_reached; /* 0: stopped at the step cap */
    double relearn_target;            /* accuracy (%) to regain; NaN if not measured */
    double relearn_ratio;             /* relearn_steps / oracle_relearn_steps, or NaN */
    double seconds;                   /* wall time of the evaluation */
    long n_forget, n_retain, n_test, n_mia_member, n_mia_nonmember, n_relearn;
    /* per forget sample, in ascending row order; the mean of each array is
     * the matching aggregate */
    uint64_t *ids;                    /* (n_forget) */
    double *ua_i;                     /* 100 if the model misclassifies, else 0 */
    double *confidence_i;             /* p_y(x) */
    double *mia_feature_i;            /* the attack's feature */
    double *mia_decision_i;           /* >= 0: judged member */
    double *mia_i;                    /* 100 if judged non-member, else 0 */
    double *zrf_i;                    /* 1 - JS(model, random net) */
    double *js_i, *act_i, *oracle_ua_i; /* NULL without an oracle */
} lethe_classify_eval;

typedef struct lethe_classify_inputs {
    lethe_net *model;                 /* the model under evaluation */
    lethe_net *oracle;                /* retrained without D_f, or NULL */
    lethe_net *original;              /* trained on all of D_train, or NULL */
    const lethe_dataset *train, *test;
    const lethe_rows *forget, *retain; /* rows of train */
} lethe_classify_inputs;

/* Run the suite. Needs a classification task, non-empty forget, retain and
 * test sets, and nets that fit the data (LETHE_ERR_INVALID otherwise).
 * Free with lethe_classify_eval_free. */
lethe_status lethe_eval_classify(const lethe_classify_inputs *in, const lethe_classify_cfg *cfg,
                                 lethe_classify_eval *out);
void lethe_classify_eval_free(lethe_classify_eval *e); /* zeroes e */

/* The metrics of e in the order they are written (see docs/metrics.md);
 * m has room for LETHE_EVAL_MAX_METRICS. Returns how many. */
#define LETHE_EVAL_MAX_METRICS 40
int lethe_classify_metrics(const lethe_classify_eval *e, lethe_eval_metric *m);

/* The relearn time of one net (net itself is not changed): fine-tune a copy
 * on rows with Adam (lr, no weight decay, batches in a keyed order from seed,
 * dropout on) and count optimizer steps until the accuracy (%) on rows,
 * measured after every step, is at least target. 0 if it already is;
 * max_steps with *reached = 0 if never. */
lethe_status lethe_relearn_classify(lethe_net *net, const lethe_dataset *ds,
                                    const lethe_rows *rows, double target, float lr, int batch,
                                    long max_steps, uint64_t seed, long *steps, int *reached);

/* ============================================================= regression */

typedef struct lethe_regress_cfg {
    lethe_mia_cfg mia;        /* feature l1 */
    uint64_t seed;            /* keys the relearning order */
    float ain_lr;             /* Adam (no weight decay); 0.01 as in the paper */
    int ain_batch;            /* AIN: training and evaluation batch; 256 as in
                                 Deep Regression Unlearning's notebooks */
    int relearn_batch;        /* relearn ratio: training batch; 32 */
    int ain_epochs;           /* at most this many epochs over D_train; 10 */
    double ain_slack;         /* target forget L1 = slack * the original's; 1.05 */
    lethe_progress *progress; /* NULL (the default), or its total set to the suite's
                                 stages (each net's metrics, each relearning) and
                                 advanced as each ends */
} lethe_regress_cfg;

void lethe_regress_defaults(lethe_regress_cfg *cfg);

typedef struct lethe_regress_eval {
    /* errors in the data's units (standardised errors times t_scale) */
    double forget_l1, forget_mse, retain_l1, retain_mse, test_l1, test_mse;
    double oracle_forget_l1, oracle_forget_mse, oracle_retain_l1, oracle_retain_mse,
        oracle_test_l1, oracle_test_mse;                /* NaN without an oracle */
    double original_forget_l1;                          /* NaN without the original */
    double mia, oracle_mia;   /* % of D_f the loss attack judges member */
    double wasserstein;       /* model vs oracle predictions on D_f; NaN without */
    double abs_diff;          /* mean |model - oracle| prediction on D_f; NaN without */
    /* Anamnesis Index as Deep Regression Unlearning measures it: rt(model) /
     * rt(oracle), rt = Adam steps on D_train (batch ain_batch, at least one
     * step) until the L1 on the held-out rows of the forget range (the mean of
     * batch means) is <= slack * the original's there; NaN when not measured
     * (no original, oracle or held-out rows) or rt(oracle) is 0 */
    double ain;
    long ain_model, ain_oracle;   /* -1 when not measured */
    int ain_model_reached, ain_oracle_reached;
    double original_heldout_l1;   /* the original's L1 there; NaN if not measured */
    long n_forget_heldout;
    /* lethe's relearn ratio: the same with batch relearn_batch, measured on
     * D_f itself (mean over rows) and 0 steps for a model already there */
    double relearn_ratio;
    long rt_model, rt_oracle; /* -1 when not measured */
    int rt_model_reached, rt_oracle_reached;
    double seconds;
    long n_forget, n_retain, n_test, n_mia_member, n_mia_nonmember;
    /* per forget sample, ascending row order; means give the aggregates */
    uint64_t *ids;
    double *l1_i;             /* model's L1 (data units, mean over outputs) */
    double *sq_i;             /* model's squared error (data units^2, mean over outputs) */
    double *mia_decision_i;   /* >= 0: judged member */
    double *mia_i;            /* 100 if judged member, else 0 */
    double *oracle_l1_i, *oracle_sq_i, *abs_diff_i; /* NULL without an oracle */
} lethe_regress_eval;

typedef struct lethe_regress_inputs {
    lethe_net *model, *oracle, *original; /* oracle, original may be NULL */
    const lethe_dataset *train, *test;
    const lethe_rows *forget, *retain;
    const lethe_rows *forget_test; /* rows of test in the forget range (held out), or
                                      NULL: AIN is not measured */
} lethe_regress_inputs;

/* Run the suite. Needs a regression task, non-empty forget, retain and test
 * sets, and nets that fit the data (LETHE_ERR_INVALID otherwise). The
 * Anamnesis Index needs the original and the oracle. Free with
 * lethe_regress_eval_free. */
lethe_status lethe_eval_regress(const lethe_regress_inputs *in, const lethe_regress_cfg *cfg,
                                lethe_regress_eval *out);
void lethe_regress_eval_free(lethe_regress_eval *e); /* zeroes e */
/* As lethe_classify_metrics. */
int lethe_regress_metrics(const lethe_regress_eval *e, lethe_eval_metric *m);

/* How lethe_relearn_regress relearns and counts. */
typedef struct lethe_relearn_how {
    float lr;       /* Adam, no weight decay */
    int batch;      /* training batch (and with dru, the evaluation batch) */
    int epochs;     /* at most this many epochs over the training rows */
    int dru;        /* 0: lethe's count (0 if already there; forget L1 the mean
                       over rows); 1: Deep Regression Unlearning's (the first
                       step is always taken; L1 the mean of batch means) */
    lethe_progress *progress; /* NULL, or updated (its count kept) after every step,
                                 so that a long relearning shows it goes on */
} lethe_relearn_how;

/* The relearn time of one net (not changed): fine-tune a copy on train_rows
 * of ds with Adam (L1 loss, batches in a keyed order from seed, dropout on)
 * and count steps until the L1 (standardised units) on forget_rows of
 * eval_ds (which may be ds), measured
 * after every step, is <= target; *reached = 0 if never. */
lethe_status lethe_relearn_regress(lethe_net *net, const lethe_dataset *ds,
                                   const lethe_rows *train_rows, const lethe_dataset *eval_ds,
                                   const lethe_rows *forget_rows, double target,
                                   const lethe_relearn_how *how, uint64_t seed, long *steps,
                                   int *reached);

/* ================================================ a run of the suites */

/* The run directories and the split an evaluation reads. */
typedef struct lethe_eval_runs {
    const char *run;      /* the model's run directory */
    const char *forget;   /* the forget split of its training data (lethe_split_select) */
    uint64_t split_seed;  /* the seed of random:F splits */
    const char *oracle;   /* the run retrained without the split, or NULL */
    const char *original; /* the run before unlearning, or NULL */
    const char *out;      /* where the files go (created if needed); NULL: run */
} lethe_eval_runs;

/* The aggregates of a suite's run, in its order (names static, agg NaN
 * where undefined, per_sample NULL). */
typedef struct lethe_eval_run_result {
    int n;
    lethe_eval_metric m[LETHE_EVAL_MAX_METRICS];
} lethe_eval_run_result;

/* Load r->run, its data and the forget split (the retain set is the rest of
 * the training data; for regression, a range:LO:HI split also selects the
 * test rows in that range, for the Anamnesis Index), the oracle and the
 * original when given, run the classification (regression) suite with cfg
 * and write OUT/CLASSIFY_EVAL.json and CLASSIFY_SUMMARY.json
 * (REGRESS_...) with lethe_eval_write. res may be NULL. LETHE_ERR_INVALID
 * (a split that selects every training sample, an oracle or original
 * trained on another task, what the suite refuses), the loaders' errors,
 * LETHE_ERR_IO, LETHE_ERR_NOMEM. */
lethe_status lethe_eval_classify_run(const lethe_eval_runs *r, const lethe_classify_cfg *cfg,
                                     lethe_eval_run_result *res);
lethe_status lethe_eval_regress_run(const lethe_eval_runs *r, const lethe_regress_cfg *cfg,
                                    lethe_eval_run_result *res);

LETHE_API_END
#endif
