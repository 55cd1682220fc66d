/* ECO's corruption of prompt embeddings (research/inference_time.md §1,
 * §10.2): for a flagged prompt, the input embeddings (token plus position,
 * before block 0) of selected positions are corrupted, so the model answers
 * as if it could not read who is asked about; the weights never change.
 *
 * Corruption functions, on one position's row e[0..C), with k dimensions
 * (k <= 0 or k > C: all C) and strength sigma:
 *   noise_first   e[j] += sigma z_j for the first k dimensions (ECO's main one)
 *   noise_random  the same on k dimensions drawn at random for the position
 *   noise_top     the same on the k dimensions of largest |e[j]|
 *   zero_top      e[j] = 0 on the k dimensions of largest |e[j]|
 *   flip_first    e[j] = -e[j] on the first k dimensions
 *   flip_top      e[j] = -e[j] on the k dimensions of largest |e[j]|
 * z_j ~ N(0, 1) comes from lethe_rng_hash(seed, position, j) (Box-Muller on
 * its two 32-bit halves), and the random dimensions from a partial
 * Fisher-Yates shuffle keyed the same way (stream position + 2^32): the
 * same (seed, position) corrupts the same way whatever else runs. Ties in
 * |e[j]| go to the lower j.
 *
 * Positions (lethe_guard_eco_select): the tokens that overlap an occurrence
 * of a matched target's name or alias in the prompt (ASCII case ignored, at
 * word boundaries), as ECO corrupts entity tokens; when none does, every
 * position but the last. */
#ifndef LETHE_GUARD_ECO_H
#define LETHE_GUARD_ECO_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_eco_fn {
    LETHE_ECO_NOISE_FIRST = 1,
    LETHE_ECO_NOISE_RANDOM = 2,
    LETHE_ECO_NOISE_TOP = 3,
    LETHE_ECO_ZERO_TOP = 4,
    LETHE_ECO_FLIP_FIRST = 5,
    LETHE_ECO_FLIP_TOP = 6
} lethe_eco_fn;

typedef struct lethe_eco_cfg {
    lethe_eco_fn fn; /* default noise_first */
    int k;           /* dimensions (<= 0: all; default 0) */
    double sigma;    /* noise strength, >= 0 (default 1) */
    uint64_t seed;   /* default 0 */
} lethe_eco_cfg;

void lethe_eco_defaults(lethe_eco_cfg *c);
/* "noise_first", ...; NULL for an unknown value. */
const char *lethe_eco_fn_name(lethe_eco_fn fn);
/* The function named s into *fn; LETHE_ERR_INVALID naming the choices. */
lethe_status lethe_eco_fn_parse(const char *s, lethe_eco_fn *fn);

/* Corrupt row e[0..C) of position pos in place. */
void lethe_eco_corrupt_row(const lethe_eco_cfg *c, float *e, int C, int pos);

/* mask[0..n) = 1 for the prompt tokens ids[0..n) (decoded with tok; the
 * prompt's bytes are their concatenation) that overlap an occurrence in
 * prompt[0..len) of one of names[0..n_names); when none does, every
 * position but the last (n == 1: that one). *selected gets the count.
 * LETHE_ERR_NOMEM, or the tokenizer's error. */
lethe_status lethe_guard_eco_select(const lethe_tokenizer_t *tok, const int32_t *ids, size_t n,
                                    const char *prompt, size_t len, const char *const *names,
                                    size_t n_names, unsigned char *mask, size_t *selected);

/* ---- tuning sigma: zeroth-order search -------------------------------------- */

/* The metric at strength sigma (a forget set's ROUGE-L, say), into *m. */
typedef lethe_status (*lethe_eco_metric)(void *ctx, double sigma, double *m);

#define LETHE_ECO_ZO_MAX_STEPS 64

typedef struct lethe_eco_zo_cfg {
    double target;     /* the metric to reach (the oracle's) */
    double sigma0;     /* start (1) */
    double eps;        /* first probe half-width in log sigma (0.5) */
    double lr;         /* step size on log sigma per unit of gradient (4) */
    double sigma_min, sigma_max; /* clamp (1e-3, 1e6) */
    int steps;         /* at most LETHE_ECO_ZO_MAX_STEPS (10) */
    double tol;        /* stop once |m - target| <= tol (0.01) */
} lethe_eco_zo_cfg;

void lethe_eco_zo_defaults(lethe_eco_zo_cfg *c);

typedef struct lethe_eco_zo_step {
    double sigma;           /* the centre of this step */
    double eps;             /* its probe half-width */
    double m_plus, m_minus; /* the metric at sigma e^eps and sigma e^-eps */
} lethe_eco_zo_step;

typedef struct lethe_eco_zo_report {
    double best_sigma, best_m; /* the probe closest to the target (ties: smaller sigma) */
    int steps, evals;
    lethe_eco_zo_step trace[LETHE_ECO_ZO_MAX_STEPS];
} lethe_eco_zo_report;

/* ECO's zeroth-order search for sigma (research/inference_time.md §1), on
 * u = ln sigma, since useful strengths span orders of magnitude: each step
 * probes m at sigma e^eps and sigma e^-eps, estimates the gradient of
 * f = |m - target| as (f+ - f-) / (2 eps) and moves u by -lr times it, or
 * by eps in that direction when that is less (a shallow slope would
 * otherwise crawl), clamped to [ln sigma_min, ln sigma_max]; when the
 * slope's sign turns, the target lies between and eps halves. Where f is flat (the noise does
 * not bite yet, or has destroyed everything) the estimate is 0; the step is
 * then 2 eps toward the target, taking the metric to fall as sigma grows.
 * Stops after `steps` steps or once a probe is within tol. LETHE_ERR_INVALID
 * for a bad setting; the metric's own errors. */
lethe_status lethe_eco_zo_tune(const lethe_eco_zo_cfg *c, lethe_eco_metric metric, void *ctx,
                               lethe_eco_zo_report *rep);

LETHE_API_END
#endif
