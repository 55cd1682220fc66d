/* Approximate unlearning for classifiers and regressors: one interface, a
 * table of methods, one file per method in src/unlearn/.
 *
 * A method receives the trained model (updated in place), a frozen copy of
 * it, the training data, the forget rows and the retain rows, and its
 * hyperparameters. Methods that do not need labels are handed a view of
 * the data without them (y and t are NULL), so they cannot read one. */
#ifndef LETHE_UNLEARN_H
#define LETHE_UNLEARN_H

#include <stdint.h>
#include <stdio.h>

#include "lethe/dataset.h"
#include "lethe/net.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_MAX_HPARAMS 16

typedef struct lethe_hparam {
    const char *name;
    double dflt;
    const char *help;
} lethe_hparam;

/* Task kinds a method applies to (bit mask). */
enum { LETHE_FOR_CLASSIFY = 1, LETHE_FOR_REGRESS = 2 };

struct lethe_method;

typedef struct lethe_unlearn_ctx {
    const struct lethe_method *method;
    lethe_net *net;             /* the model, updated in place; starts as the original */
    lethe_net *original;        /* the original model; methods must not change its params */
    const lethe_dataset *data;  /* the training data (without labels if !needs_labels) */
    const lethe_rows *forget;   /* rows of data to forget */
    const lethe_rows *retain;   /* rows to keep (never overlapping forget) */
    uint64_t seed;              /* every random draw is keyed by it */
    double hp[LETHE_MAX_HPARAMS]; /* values in method->params order */
    FILE *log;                  /* one JSON line per step; may be NULL */
    int quiet;                  /* no progress output */
    long steps;                 /* set by the method: optimizer steps taken */
} lethe_unlearn_ctx;

typedef struct lethe_method {
    const char *name;
    const char *description;     /* one line */
    unsigned tasks;              /* LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS */
    const char *intent;          /* "removal" or "suppression" */
    int needs_labels;            /* reads labels or targets of the data */
    int needs_retain;            /* reads retain rows */
    const lethe_hparam *params;  /* terminated by a NULL name */
    lethe_status (*run)(lethe_unlearn_ctx *ctx);
} lethe_method;

size_t lethe_methods_count(void);
const lethe_method *lethe_methods_at(size_t i);
/* LETHE_ERR_NOT_FOUND listing the names. */
lethe_status lethe_method_find(const char *name, const lethe_method **out);

/* Fill ctx->hp with m's defaults, then apply "key=value" settings;
 * an unknown key or a bad number is LETHE_ERR_INVALID naming it. */
lethe_status lethe_unlearn_hparams(lethe_unlearn_ctx *ctx, const lethe_method *m,
                                   const char *const *sets, size_t n_sets);

/* The value of hyperparameter `name` of ctx's method; a name the method
 * does not declare is a broken invariant. */
double lethe_hp(const lethe_unlearn_ctx *ctx, const char *name);

/* Check that m applies to ds's task and that retain is non-empty when
 * needed, then run it. */
lethe_status lethe_unlearn_run(lethe_unlearn_ctx *ctx);

LETHE_API_END
#endif
