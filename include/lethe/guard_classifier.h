/* The guard's prompt classifier: does a prompt ask about a forget target?
 *
 * Three parts (research/inference_time.md §2, §10.1-10.2):
 *
 * Features, of one of two kinds behind one call (lethe_guard_features):
 *   - MODEL: the mean over the prompt's tokens of hidden state `layer` of a
 *     lethe GPT, numbered as lethe_gpt_hidden (0 the embeddings, i in 1..L
 *     the output of block i - 1, L + 1 the final LayerNorm). The default is
 *     the penultimate layer's output, index L - 1: the input of the last
 *     block, Hugging Face's hidden_states[-2]. Each call forwards through a
 *     context of its own (lethe_gpt_ctx), so any number of threads may
 *     compute features on one shared model. A prompt longer than the model's
 *     context keeps its last n_positions tokens (the end of a prompt is
 *     what the answer follows).
 *   - HASH: for endpoints without hidden states. The text is normalised as
 *     the target index does (lethe_guard_normalize); its word unigrams, word
 *     bigrams and character 3-, 4- and 5-grams (over the normalised bytes
 *     with a space added at each end, so word edges count) are hashed into
 *     `dim` buckets (default 2^14) with signed hashing, counted, and the
 *     vector is scaled to unit L2 norm, as scikit-learn's HashingVectorizer
 *     (alternate_sign, norm "l2") but with lethe's own fixed hash: 64-bit
 *     FNV-1a over a kind tag and the n-gram's bytes, then MurmurHash3's
 *     64-bit finaliser; sign = the top bit of h, bucket = the other 63 bits
 *     mod dim. No seed, no clock: the same text gives the same bits
 *     everywhere.
 *
 * Classifier: L2-regularised logistic regression on standardised features
 * z_j = (x_j - mean_j) / std_j (mean and population std of the training
 * set, kept; a feature constant in training gets std 1, as scikit-learn's
 * StandardScaler), classes weighted "balanced" (cw = n / (2 n_class), as
 * scikit-learn's class_weight="balanced"). The fit minimises
 *     0.5 ||w||^2 + C sum_i cw_i log(1 + exp(-s_i (w.z_i + b))),  s = 2y - 1,
 * the intercept b unpenalised: scikit-learn's LogisticRegression(C=C,
 * class_weight="balanced") objective. It runs full-batch L-BFGS (memory 10,
 * backtracking Armijo line search) in double precision, on the objective
 * divided by C n, until that function's gradient has max-norm below `tol`.
 * Features are held sparse (zeros dropped), so the cost per iteration is
 * O(non-zeros + dim), and every sum runs in a fixed order: the fit is
 * deterministic. The score is p(flag | prompt) = 1 / (1 + exp(-(w.z + b))).
 *
 * Calibration (split conformal): given the scores of n held-out NEGATIVE
 * (retain) prompts and a target false-positive rate alpha, the threshold tau
 * is the k-th smallest of them, k = ceil((n + 1)(1 - alpha)), and a prompt
 * is flagged when its score > tau. For a new retain prompt exchangeable with
 * the calibration prompts, P(flagged) <= alpha (over the draw of both; with
 * no ties it is (n + 1 - k) / (n + 1) >= alpha - 1 / (n + 1)). That is an
 * average over calibration sets: the rate a single calibration set gives
 * is Beta(n + 1 - k, k) distributed, so its spread is about
 * sqrt(alpha / n) (n = 1000 at alpha 0.01: +-0.003). When
 * k > n (fewer than 1 / alpha - 1 calibration prompts) no finite threshold
 * gives the guarantee: lethe_guard_conformal_threshold reports tau =
 * +infinity, and lethe_guard_clf_calibrate refuses (LETHE_ERR_INVALID), as
 * a guard that can never flag is a mistake, not a setting. Before
 * calibration tau is 0.5 and alpha 0 (the plain decision rule).
 *
 * Threads: a fitted classifier is read-only for scoring; features of the
 * MODEL kind read the model and tokenizer only. Errors set a one-line detail
 * (lethe_error_detail). */
#ifndef LETHE_GUARD_CLASSIFIER_H
#define LETHE_GUARD_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_GUARD_HASH_DIM (1 << 14) /* default bucket count */
#define LETHE_GUARD_MAX_DIM (1 << 24)
#define LETHE_GUARD_MODEL_HASH_MAX 128 /* bytes of a model hash string, NUL excluded */
#define LETHE_GUARD_CLF_VERSION 1u

/* ---- features ------------------------------------------------------------- */

typedef enum lethe_guard_feat_kind {
    LETHE_GUARD_FEAT_HASH = 1,
    LETHE_GUARD_FEAT_MODEL = 2
} lethe_guard_feat_kind;

/* A feature extractor. gpt and tok are borrowed (the caller keeps them alive
 * and unchanged while the extractor is used); they are NULL for HASH. */
typedef struct lethe_guard_feat {
    lethe_guard_feat_kind kind;
    int dim;   /* HASH: buckets; MODEL: the model's n_embd */
    int layer; /* MODEL: hidden-state index (lethe_gpt_hidden numbering); HASH: -1 */
    const lethe_gpt *gpt;
    const lethe_tokenizer_t *tok;
} lethe_guard_feat;

/* A HASH extractor with `dim` buckets (0 for LETHE_GUARD_HASH_DIM).
 * LETHE_ERR_INVALID unless 2 <= dim <= LETHE_GUARD_MAX_DIM. */
lethe_status lethe_guard_feat_hash(int dim, lethe_guard_feat *out);

/* A MODEL extractor on g (tok may be NULL when only token features are
 * computed) at hidden state `layer`, or the penultimate (L - 1) when layer
 * is -1. LETHE_ERR_INVALID when layer is outside [0, L + 1]. */
lethe_status lethe_guard_feat_model(const lethe_gpt *g, const lethe_tokenizer_t *tok, int layer,
                                    lethe_guard_feat *out);

/* The features of text[0..len) into out[0..f->dim). HASH: a text that
 * normalises to nothing, or whose signed counts all cancel, gives zeros.
 * MODEL: the text is encoded with f->tok (LETHE_ERR_INVALID without one, or
 * for a text with no tokens). LETHE_ERR_NOMEM. */
lethe_status lethe_guard_features(const lethe_guard_feat *f, const void *text, size_t len,
                                  float *out);

/* MODEL features of tokens[0..n) (each in [0, V)): the mean of the hidden
 * state over the last min(n, n_positions) tokens, summed in double. ctx may
 * be NULL (a context is made and freed here) or the caller's own, reused
 * across calls by one thread. LETHE_ERR_INVALID for n == 0 or a bad token. */
lethe_status lethe_guard_features_tokens(const lethe_guard_feat *f, lethe_gpt_ctx *ctx,
                                         const int32_t *tokens, size_t n, float *out);

/* ---- a feature matrix ----------------------------------------------------- */

/* Rows of features kept sparse (non-zero entries only), for fitting. */
typedef struct lethe_guard_rows lethe_guard_rows_t;

/* An empty matrix of rows of `dim` features, or NULL (detail set) when out of
 * memory or dim is outside [1, LETHE_GUARD_MAX_DIM]. Free with
 * lethe_guard_rows_free (NULL is a no-op). */
lethe_guard_rows_t *lethe_guard_rows_new(int dim);
void lethe_guard_rows_free(lethe_guard_rows_t *m);
/* Append the dense row x[0..dim). LETHE_ERR_INVALID for a value that is not
 * finite; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_rows_add(lethe_guard_rows_t *m, const float *x);
/* Compute the features of text[0..len) with f (f->dim must be the matrix's)
 * and append them. Errors as lethe_guard_features. */
lethe_status lethe_guard_rows_add_text(lethe_guard_rows_t *m, const lethe_guard_feat *f,
                                       const void *text, size_t len);
size_t lethe_guard_rows_count(const lethe_guard_rows_t *m);
int lethe_guard_rows_dim(const lethe_guard_rows_t *m);
/* Row i (< count) written densely into out[0..dim). */
void lethe_guard_rows_get(const lethe_guard_rows_t *m, size_t i, float *out);
/* Row i (< count) as its non-zero entries: returns their number, with their
 * columns (ascending) in *col and values in *val (owned by the matrix, valid
 * until the next add; NULL when the row has none). */
size_t lethe_guard_rows_sparse(const lethe_guard_rows_t *m, size_t i, const int32_t **col,
                              const float **val);

/* ---- the classifier ------------------------------------------------------- */

typedef struct lethe_guard_clf_cfg {
    double C;       /* inverse regularisation strength (scikit-learn's C); default 1 */
    double tol;     /* gradient max-norm of the objective / (C n); default 1e-8 */
    int max_iter;   /* L-BFGS iterations; default 1000 */
    const char *model_hash; /* recorded in the classifier; NULL for none (HASH features) */
} lethe_guard_clf_cfg;

void lethe_guard_clf_defaults(lethe_guard_clf_cfg *cfg);

typedef struct lethe_guard_fit_report {
    int iters;        /* L-BFGS iterations run */
    int converged;    /* the gradient reached tol (else max_iter stopped it) */
    double objective; /* at the solution, divided by C n */
    double grad_norm; /* its gradient's max-norm */
} lethe_guard_fit_report;

/* A fitted classifier. Fields are read-only for callers; arrays owned. */
typedef struct lethe_guard_clf {
    lethe_guard_feat_kind kind;
    int dim, layer;   /* as the lethe_guard_feat it was fitted with */
    double C;         /* the fit's C (informational) */
    double *mean;     /* (dim) training mean of each feature */
    double *std;      /* (dim) training population std (1 where constant) */
    double *w;        /* (dim) weights on the standardised features */
    double bias;
    double tau;       /* flag when score > tau */
    double alpha;     /* the target false-positive rate; 0 before calibration */
    uint32_t n_calib; /* calibration prompts behind tau; 0 before calibration */
    char model_hash[LETHE_GUARD_MODEL_HASH_MAX + 1]; /* "" for none */
} lethe_guard_clf;

/* Fit on rows x (labels[i] 1 = flag, 0 = keep; both classes present) with
 * features described by f (its kind, dim and layer are recorded; dim must be
 * x's). On success *out is a new classifier (free with lethe_guard_clf_free)
 * and *rep (may be NULL) says how the fit went: reaching max_iter is not an
 * error. LETHE_ERR_INVALID for bad labels, sizes or settings (C <= 0, tol
 * < 0, a model hash longer than LETHE_GUARD_MODEL_HASH_MAX or not printable
 * ASCII); LETHE_ERR_NOMEM. */
lethe_status lethe_guard_clf_fit(const lethe_guard_feat *f, const lethe_guard_rows_t *x,
                                 const int *labels, const lethe_guard_clf_cfg *cfg,
                                 lethe_guard_clf **out, lethe_guard_fit_report *rep);
void lethe_guard_clf_free(lethe_guard_clf *c); /* NULL is a no-op */

/* p(flag | features x[0..dim)), in [0, 1]. Should the margin come out NaN
 * (only features or a file holding values near overflow can do that), the
 * score is 1: an unscorable prompt is flagged, not passed. */
double lethe_guard_clf_score(const lethe_guard_clf *c, const float *x);
/* score > tau. */
int lethe_guard_clf_flags(const lethe_guard_clf *c, double score);
/* Features of text[0..len) with f (which must match c: see _bind), then the
 * score and (flagged may be NULL) whether it is flagged. */
lethe_status lethe_guard_clf_score_text(const lethe_guard_clf *c, const lethe_guard_feat *f,
                                        const void *text, size_t len, double *score,
                                        int *flagged);

/* The extractor c needs: for HASH, its own (g, tok and model_hash are
 * ignored); for MODEL, one on model g with tokenizer tok (tok may be NULL
 * when only lethe_guard_features_tokens is used). LETHE_ERR_INVALID when g
 * is missing, g's n_embd is not c's dim, c's layer is past g's last hidden
 * state, or c records a model hash and model_hash (may be NULL) is not that
 * string: a classifier fitted on another model is refused. */
lethe_status lethe_guard_clf_bind(const lethe_guard_clf *c, const lethe_gpt *g,
                                  const lethe_tokenizer_t *tok, const char *model_hash,
                                  lethe_guard_feat *out);

/* ---- split-conformal calibration ------------------------------------------ */

/* The split-conformal threshold of scores[0..n) (finite; not modified) at
 * false-positive rate alpha in (0, 1): the k-th smallest score,
 * k = ceil((n + 1)(1 - alpha)) (computed with a relative slack of 1e-12, so
 * that (n + 1)(1 - alpha) landing a rounding error above an integer does not
 * push k up), into *tau, and k into *rank (may be NULL). When k > n, *tau is
 * +infinity. LETHE_ERR_INVALID for alpha outside (0, 1), n == 0 or a score
 * that is not finite; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_conformal_threshold(const double *scores, size_t n, double alpha,
                                             double *tau, size_t *rank);

/* Set c's tau from the scores (lethe_guard_clf_score, each in [0, 1]) of n
 * held-out negative prompts at rate alpha, and record alpha and n.
 * LETHE_ERR_INVALID, c unchanged, when n is too small for alpha (k > n; the
 * detail says how many are needed), a score is outside [0, 1], or as
 * lethe_guard_conformal_threshold. */
lethe_status lethe_guard_clf_calibrate(lethe_guard_clf *c, const double *scores, size_t n,
                                       double alpha);

/* ---- serialisation -------------------------------------------------------- */

/* Write c to *buf (caller frees with free()), *len bytes, little-endian:
 *   "LGCL", u32 version, u32 kind, i32 layer, u32 dim, u32 n_calib,
 *   f64 C, f64 alpha, f64 tau, f64 bias, u32 hash_len, hash_len bytes,
 *   dim x f64 mean, dim x f64 std, dim x f64 w,
 *   u32 CRC-32 (zlib's) of every byte before it. */
lethe_status lethe_guard_clf_save(const lethe_guard_clf *c, unsigned char **buf, size_t *len);

/* Read such a buffer into a new classifier *out. Anything malformed (wrong
 * magic, version or kind, a length that is not the layout's, a checksum
 * mismatch, a value that is not finite, std <= 0, C <= 0, alpha outside
 * [0, 1), tau outside [0, 1], alpha 0 with calibration prompts or the
 * reverse, a model hash with a byte outside printable ASCII, a HASH layer
 * that is not -1, a MODEL layer below 0) is
 * LETHE_ERR_FORMAT with *out NULL, never a crash; LETHE_ERR_NOMEM. */
lethe_status lethe_guard_clf_load(const void *buf, size_t len, lethe_guard_clf **out);

LETHE_API_END
#endif
