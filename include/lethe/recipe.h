/* Default training recipes: for each task and model kind, the architecture
 * and training settings that `lethe train` uses when none are given; and the
 * training run that applies them (src/train/train_run.c). */
#ifndef LETHE_RECIPE_H
#define LETHE_RECIPE_H

#include <stdint.h>

#include "lethe/dataset.h"
#include "lethe/run.h"
#include "lethe/train.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_recipe {
    char model[16];   /* "mlp", "cnn" or "linear" */
    char widths[128]; /* hidden widths for mlp, e.g. "256-256" ("" for none) */
    char act[8];      /* relu, gelu or tanh */
    double dropout;
    lethe_train_cfg cfg;
} lethe_recipe;

/* The recipe for model kind `model` (NULL: the task's default) on ds (the
 * training set; its name picks tuned settings). LETHE_ERR_INVALID for an
 * unknown kind or a CNN on non-image data. */
lethe_status lethe_recipe_default(const lethe_dataset *ds, const char *model, lethe_recipe *out);

/* The network spec of recipe r for ds into buf. */
lethe_status lethe_recipe_spec(const lethe_recipe *r, const lethe_dataset *ds, char *buf,
                               int cap);

/* ---- a training run (src/train/train_run.c) ----------------------------- */

/* A classifier or regressor training run, as `lethe train` starts it: load
 * the task, take its recipe for the model kind with the given settings over
 * it, leave out the excluded split (the run is then the oracle for it: every
 * other sample sees the same order and random draws), train and write the
 * run directory. Settings left at their "not given" value
 * (lethe_train_run_defaults) take the recipe's. */
typedef struct lethe_train_run_cfg {
    const char *data;      /* the task: a registered name or a data file */
    const char *out;       /* the run directory to write */
    int force;             /* 1: write into an existing out, replacing its files */
    const char *model;     /* mlp, cnn or linear; NULL: the task's default */
    const char *exclude;   /* a split to leave out (lethe_split_select); NULL: none */
    uint64_t split_seed;   /* the seed of random:F splits */
    uint64_t seed;         /* initialisation, data order and dropout */
    long limit;            /* > 0: the first `limit` training samples only */
    long window;           /* us-births: days of history per sample; 0: 14 */
    const char *optim;     /* adamw or sgd; NULL: the recipe's */
    const char *sched;     /* constant, step or cosine; NULL: the recipe's */
    const char *widths;    /* mlp hidden widths, e.g. "256-256"; NULL: the recipe's */
    const char *act;       /* relu, gelu or tanh; NULL: the recipe's */
    const char *loss;      /* regressors: mse or l1; NULL: the recipe's */
    long epochs, steps;    /* <= 0: the recipe's (epochs given: no step budget) */
    long batch;            /* <= 0: the recipe's */
    long warmup;           /* < 0: the recipe's */
    long patience;         /* <= 0: the recipe's (early stopping needs val > 0) */
    double lr, weight_decay, momentum, clip, dropout, val, grad_penalty;
                           /* NAN: the recipe's */
    int quiet;             /* no progress output */
} lethe_train_run_cfg;

/* Every setting "not given", seeds 0, no files. */
void lethe_train_run_defaults(lethe_train_run_cfg *rc);

typedef struct lethe_train_run_result {
    lethe_train_result train;
    lethe_recipe recipe;   /* the recipe as applied */
    char spec[512];        /* the network's */
    lethe_task task;       /* classify or regress */
    long n_train;          /* rows trained on (validation rows included) */
    long excluded;         /* rows left out */
    lethe_scores train_scores, test_scores; /* on the rows trained on; the test set */
} lethe_train_run_result;

/* Run rc and write rc->out: model.safetensors (metadata: the config, data,
 * its hash, the exclusion's hash, seed, method train, or retrain with an
 * exclusion), config.json (everything needed to reproduce the run) and
 * log.jsonl (one line per step and validation). The same configuration
 * gives byte-identical files. out follows the rule of lethe/rundir.h: an
 * existing, non-empty out is refused unless force, out may not be, contain
 * or lie inside an input (a data file, an exclusion given as a file), and a run
 * that fails or is interrupted by SIGINT/SIGTERM leaves no directory it
 * created. LETHE_ERR_INVALID (a bad or inconsistent setting, an exclusion
 * that leaves no sample, an output refused), LETHE_ERR_NOT_FOUND /
 * LETHE_ERR_IO / LETHE_ERR_FORMAT (the task, its data, the split),
 * LETHE_ERR_FAILED (training diverged), LETHE_ERR_NOMEM. res may be NULL. */
lethe_status lethe_train_run(const lethe_train_run_cfg *rc, lethe_train_run_result *res);

LETHE_API_END
#endif
