/* Default training recipes per task and model kind. */
#include "lethe/recipe.h"
#include "lethe/task.h"

#include <stdio.h>
#include <string.h>

/* Settings tuned per (task, model); the first row matching both wins, a NULL
 * task matches any. Rows give what differs from lethe_train_defaults. */
typedef struct row {
    const char *task, *model, *widths;
    double dropout, lr;
    int batch, epochs;
    lethe_sched_kind sched;
} row;

static const row rows[] = {
    {"fashion-mnist", "mlp", "256-256", 0.1, 1e-3, 128, 12, LETHE_SCHED_COSINE},
    {"fashion-mnist", "cnn", "", 0, 1e-3, 64, 10, LETHE_SCHED_COSINE},
    {"fashion-mnist", "linear", "", 0, 1e-3, 128, 5, LETHE_SCHED_CONSTANT},
    {"digits", "cnn", "", 0, 1e-3, 32, 30, LETHE_SCHED_COSINE},
    {"us-births", "mlp", "64-64", 0, 1e-3, 64, 40, LETHE_SCHED_COSINE},
    {NULL, "mlp", "64-64", 0, 1e-3, 32, 60, LETHE_SCHED_COSINE},
    {NULL, "linear", "", 0, 1e-2, 32, 60, LETHE_SCHED_COSINE},
    {NULL, "cnn", "", 0, 1e-3, 32, 30, LETHE_SCHED_COSINE},
};

lethe_status lethe_recipe_default(const lethe_dataset *ds, const char *model, lethe_recipe *out)
{
    if (!model) {
        const lethe_task_info *info;
        model = lethe_task_find(ds->name, &info) == LETHE_OK ? info->default_model : "mlp";
    }
    if (strcmp(model, "mlp") && strcmp(model, "cnn") && strcmp(model, "linear"))
        return lethe_fail(LETHE_ERR_INVALID, "unknown model '%s'; use mlp, cnn or linear", model);
    if (!strcmp(model, "cnn") && (ds->h < 4 || ds->w < 4))
        return lethe_fail(LETHE_ERR_INVALID,
                          "a cnn needs images; %s has %d plain features (use mlp or linear)",
                          ds->name, ds->d);
    const row *r = rows;
    while (strcmp(r->model, model) || (r->task && strcmp(r->task, ds->name)))
        r++;
    memset(out, 0, sizeof *out);
    snprintf(out->model, sizeof out->model, "%s", model);
    snprintf(out->widths, sizeof out->widths, "%s", r->widths);
    snprintf(out->act, sizeof out->act, "relu");
    out->dropout = r->dropout;
    lethe_train_defaults(&out->cfg);
    out->cfg.lr = (float)r->lr;
    out->cfg.batch = r->batch;
    out->cfg.epochs = r->epochs;
    out->cfg.sched = r->sched;
    out->cfg.loss = lethe_default_loss(ds->task);
    return LETHE_OK;
}

lethe_status lethe_recipe_spec(const lethe_recipe *r, const lethe_dataset *ds, char *buf,
                               int cap)
{
    int n_out = ds->task == LETHE_TASK_CLASSIFY ? ds->n_classes : ds->n_targets;
    int n;
    if (!strcmp(r->model, "cnn")) {
        /* two conv-pool stages, then a hidden layer */
        n = snprintf(buf, (size_t)cap,
                     "in=%dx%dx%d;conv=16;relu;pool;conv=32;relu;pool;linear=128;relu;linear=%d",
                     ds->c, ds->h, ds->w, n_out);
        return n < cap ? LETHE_OK : lethe_fail(LETHE_ERR_INVALID, "spec too long");
    }
    char widths[160];
    if (!strcmp(r->model, "linear") || !r->widths[0])
        snprintf(widths, sizeof widths, "%d-%d", ds->d, n_out);
    else
        snprintf(widths, sizeof widths, "%d-%s-%d", ds->d, r->widths, n_out);
    return lethe_net_mlp_spec(buf, cap, widths, r->act, r->dropout);
}
