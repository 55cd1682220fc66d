/* Default training recipes: for each task and model kind, the architecture
 * and training settings that `lethe train` uses when none are given. */
#ifndef LETHE_RECIPE_H
#define LETHE_RECIPE_H

#include "lethe/dataset.h"
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

LETHE_API_END
#endif
