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
#include "lethe/run.h"
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

/* ---- an unlearning run (src/unlearn/unlearn_run.c) ---------------------- */

/* A whole unlearning run, as `lethe unlearn` starts it on a classifier or
 * regressor run: load the run and its task, select the forget rows and the
 * retain rows (the retain split, or every row, minus the forget rows), apply
 * the method and write a new run directory. */
typedef struct lethe_unlearn_run_cfg {
    const char *run;          /* the trained run to start from */
    const char *out;          /* the run directory to write */
    int force;                /* 1: write into an existing out, replacing its files */
    const char *method;       /* the method's name (lethe_method_find) */
    const char *forget;       /* the split to forget (lethe_split_select) */
    const char *retain;       /* restrict the retain set to this split; NULL: the rest */
    const char *const *sets;  /* n_sets "key=value" settings of the method's hyperparameters */
    size_t n_sets;
    double lr;                /* > 0: the method's lr, over any setting; 0: not given */
    uint64_t seed;            /* keys the method's random draws */
    uint64_t split_seed;      /* the seed of random:F splits */
    int quiet;                /* no progress output */
} lethe_unlearn_run_cfg;

/* Nothing given: no run, method or splits, seeds 0. */
void lethe_unlearn_run_defaults(lethe_unlearn_run_cfg *rc);

typedef struct lethe_unlearn_run_result {
    const lethe_method *method;
    char task[64];            /* the run's task */
    lethe_task kind;          /* classify or regress */
    long n_forget, n_retain;
    long steps;               /* the method's optimizer steps */
    double seconds;           /* the method's wall time */
    lethe_scores forget, retain, test; /* the unlearned model's */
} lethe_unlearn_run_result;

/* Run rc and write rc->out: model.safetensors (metadata: the config, data,
 * its hash, method, hyperparameters, forget-set and parent-model hashes),
 * config.json (the source run's, with an "unlearn" object recording the
 * method, its settings, the splits, seeds and hashes, and the parent run)
 * and log.jsonl (one line per step). The same configuration gives
 * byte-identical files. out follows the rule of lethe/rundir.h: an existing,
 * non-empty out is refused unless force, out may not be, contain or lie
 * inside the source run, and a run that fails or is interrupted by
 * SIGINT/SIGTERM leaves no directory it created. LETHE_ERR_NOT_FOUND (an
 * unknown method), LETHE_ERR_INVALID (a bad setting or split, an lr for a
 * method without one, an empty forget or needed retain set, an output
 * refused), LETHE_ERR_UNSUPPORTED (a method not for the run's task),
 * LETHE_ERR_IO / LETHE_ERR_FORMAT (the run, its data), LETHE_ERR_NOMEM.
 * res may be NULL. */
lethe_status lethe_unlearn_run_dir(const lethe_unlearn_run_cfg *rc,
                                   lethe_unlearn_run_result *res);

LETHE_API_END
#endif
