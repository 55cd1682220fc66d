/* Statistics for the evaluation suites: the two-sample Kolmogorov-Smirnov
 * test, ROC AUC and TPR at a fixed FPR, ROUGE-L, the harmonic mean and the
 * 1-D Wasserstein distance, and readers for one-value-per-line text files.
 *
 * Every function follows a named reference (scipy 1.10, scikit-learn 1.2,
 * rouge-score with nltk 3.8) and is checked against it by fixtures in
 * tests/ref/fixtures/stats_*, written by tests/ref/make_stats_fixtures.py.
 * All computation is in double precision. Inputs are never modified; the
 * functions allocate their own scratch memory and return LETHE_ERR_NOMEM when
 * that fails. Values must be finite (NaN or infinity -> LETHE_ERR_INVALID). */
#ifndef LETHE_STATS_H
#define LETHE_STATS_H

#include <stddef.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* ------------------------------------------------------------------ input */

/* Read a text file holding one number per line (surrounding blanks and a CR
 * before the newline are ignored; blank lines are allowed only after the last
 * number). Errors: LETHE_ERR_IO when the file cannot be read; LETHE_ERR_FORMAT
 * "FILE:LINE: 'xyz' is not a number" for a line that is not a finite number,
 * "FILE:LINE: blank line before the last number" and "FILE: no numbers" for
 * a file without any. On success *values (caller frees with free()) holds *n
 * values in file order; on failure *values is NULL. */
lethe_status lethe_stats_numbers_read(const char *path, double **values, size_t *n);

/* Read a text file as lines: a final line without a newline counts, a CR
 * before the newline is dropped, empty lines are kept as empty strings.
 * Errors: LETHE_ERR_IO, LETHE_ERR_FORMAT "FILE: no lines" for an empty file
 * and "FILE:LINE: NUL byte" for binary data. On success *lines is an array of
 * *n NUL-terminated strings stored in the same allocation, so one free(*lines)
 * releases everything; on failure *lines is NULL. */
lethe_status lethe_stats_lines_read(const char *path, char ***lines, size_t *n);

/* ----------------------------------------------------- Kolmogorov-Smirnov */

typedef enum lethe_ks_method {
    LETHE_KS_EXACT,      /* exact distribution of the two-sample statistic */
    LETHE_KS_ASYMPTOTIC  /* kstwo.sf(d, round(n1 n2 / (n1 + n2))) */
} lethe_ks_method;

typedef struct lethe_ks_result {
    double statistic;       /* D = sup |F1 - F2| */
    double pvalue;          /* two-sided */
    lethe_ks_method method; /* how pvalue was computed */
} lethe_ks_result;

/* The two-sided two-sample Kolmogorov-Smirnov test as scipy.stats.ks_2samp
 * (scipy 1.10, alternative='two-sided', method='auto') computes it: exact when
 * max(na, nb) <= 10000 (Hodges' lattice-path count, or the closed-form series
 * when na == nb), falling back to the asymptotic p-value if the exact value is
 * not a probability; otherwise asymptotic, kstwo.sf(D, round(en)) with
 * en = m n / (m + n). In the exact case D is reported as h / lcm(na, nb), as
 * scipy does. Ties are allowed. Errors: LETHE_ERR_INVALID for an empty sample
 * or a value that is not finite. */
lethe_status lethe_stats_ks_2samp(const double *a, size_t na, const double *b, size_t nb,
                                  lethe_ks_result *out);

/* The survival function P(D_n >= d) of the one-sample two-sided
 * Kolmogorov-Smirnov statistic for n observations, as scipy.stats.kstwo.sf
 * (Simard & L'Ecuyer's choice among Durbin's matrix, Pelz-Good, Smirnov's
 * one-sided formula and the Ruben-Gambino special cases). n >= 1; returns NaN
 * for n < 1 or NaN d, and when memory for Durbin's matrix runs out. */
double lethe_stats_kstwo_sf(double d, long n);

/* ------------------------------------------------------------------- ROC */

typedef struct lethe_roc_result {
    double auc;         /* area under the ROC curve, ties counting one half */
    double tpr_at_1fpr; /* lethe_stats_tpr_at_fpr(..., 0.01, ...) */
    double tpr_at_5fpr; /* lethe_stats_tpr_at_fpr(..., 0.05, ...) */
    size_t n_pos, n_neg;
} lethe_roc_result;

/* ROC AUC as sklearn.metrics.roc_auc_score computes it for binary labels
 * (equal to the Mann-Whitney U statistic with midranks over n_pos * n_neg),
 * plus the TPR at 1% and 5% FPR. labels[i] is 1 (positive, e.g. "member")
 * or 0; a higher score means "more likely positive". Errors:
 * LETHE_ERR_INVALID when a label is not 0/1, a score is not finite, or only
 * one class is present. */
lethe_status lethe_stats_roc(const double *scores, const int *labels, size_t n,
                             lethe_roc_result *out);

/* The TPR at false-positive rate `fpr` (0 <= fpr <= 1), read off the ROC curve
 * by linear interpolation, exactly numpy.interp(fpr, *roc_curve(labels,
 * scores)[:2]): the curve's points are (0, 0) and one point per distinct
 * score, swept from the highest; where several points share the FPR the
 * highest TPR among them is taken. This is the "TPR at x% FPR" used in
 * membership-inference work (e.g. Carlini et al. 2022). Errors as
 * lethe_stats_roc, and LETHE_ERR_INVALID for fpr outside [0, 1]. */
lethe_status lethe_stats_tpr_at_fpr(const double *scores, const int *labels, size_t n,
                                    double fpr, double *tpr);

/* --------------------------------------------------- means and distances */

/* The harmonic mean n / sum(1 / x_i) (scipy.stats.hmean). If any value is 0
 * the result is 0, as scipy returns (with a warning there). Errors:
 * LETHE_ERR_INVALID for n == 0, a negative value or one that is not finite. */
lethe_status lethe_stats_hmean(const double *x, size_t n, double *out);

/* The first Wasserstein (earth mover's) distance between the empirical
 * distributions of two unweighted samples: the integral of |F_a - F_b|, as
 * scipy.stats.wasserstein_distance(a, b). Errors: LETHE_ERR_INVALID for an
 * empty sample or a value that is not finite. */
lethe_status lethe_stats_wasserstein(const double *a, size_t na, const double *b, size_t nb,
                                     double *out);

/* --------------------------------------------------------------- ROUGE-L */

typedef struct lethe_rouge_score {
    double precision; /* LCS / hypothesis tokens */
    double recall;    /* LCS / reference tokens */
    double f1;        /* 2 P R / (P + R), 0 when P + R == 0 */
} lethe_rouge_score;

/* Split UTF-8 text into tokens as Google's rouge-score package does:
 * lower-case (Unicode's U+0130 becomes "i" plus a separator and U+212A KELVIN
 * SIGN becomes "k", as in Python), every character outside [a-z0-9] separates
 * tokens, and with `stem` tokens longer than 3 characters go through
 * lethe_porter_stem. On success *tokens is an array of *n NUL-terminated
 * tokens in one allocation (one free(*tokens) releases it; NULL when n == 0).
 * Only LETHE_ERR_NOMEM can fail. */
lethe_status lethe_rouge_tokenize(const char *text, int stem, char ***tokens, size_t *n);

/* ROUGE-L of a hypothesis against a reference (rouge_score's rougeL with
 * target = ref, prediction = hyp): the longest common subsequence of their
 * token sequences; all three scores are 0 when either has no tokens.
 * Only LETHE_ERR_NOMEM can fail. */
lethe_status lethe_rouge_l(const char *ref, const char *hyp, int stem, lethe_rouge_score *out);

/* Stem word[0..len) in place with the Porter algorithm exactly as nltk 3.8's
 * PorterStemmer() (mode NLTK_EXTENSIONS: its irregular forms such as
 * dying -> die and sky/skies -> sky, words of <= 2 letters unchanged, and its
 * changes to steps 1a-1c and 2). Expects a lower-case ASCII word; any byte
 * other than a, e, i, o, u, y counts as a consonant. `word` must have room
 * for len + 1 bytes; the stem (never longer than the word) is written over it
 * and NUL-terminated. Returns the stem's length. */
size_t lethe_porter_stem(char *word, size_t len);

LETHE_API_END
#endif
