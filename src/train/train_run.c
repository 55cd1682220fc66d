/* A classifier or regressor training run (lethe/recipe.h, lethe_train_run):
 * a task in, a run directory out. */
#include "lethe/recipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "lethe/fileio.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/task.h"

void lethe_train_run_defaults(lethe_train_run_cfg *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->epochs = rc->steps = rc->warmup = -1;
    rc->batch = rc->patience = -1;
    rc->lr = rc->weight_decay = rc->momentum = rc->clip = rc->dropout = rc->val =
        rc->grad_penalty = NAN;
}

/* The task's recipe for rc->model with rc's settings over it. */
static lethe_status apply(const lethe_train_run_cfg *rc, const lethe_dataset *ds,
                          lethe_recipe *r)
{
    lethe_status st = lethe_recipe_default(ds, rc->model, r);
    lethe_train_cfg *c = &r->cfg;
    if (st == LETHE_OK && rc->optim)
        st = lethe_optim_parse(rc->optim, &c->optim);
    if (st == LETHE_OK && rc->sched)
        st = lethe_sched_parse(rc->sched, &c->sched);
    if (st != LETHE_OK)
        return st;
    if (rc->loss) {
        if (ds->task != LETHE_TASK_REGRESS || (strcmp(rc->loss, "mse") && strcmp(rc->loss, "l1")))
            return lethe_fail(LETHE_ERR_INVALID, "loss '%s': regressors take mse or l1; "
                              "classifiers always use cross-entropy", rc->loss);
        c->loss = strcmp(rc->loss, "l1") ? LETHE_LOSS_MSE : LETHE_LOSS_L1;
    }
    if (rc->widths) {
        if (strcmp(r->model, "mlp"))
            return lethe_fail(LETHE_ERR_INVALID, "hidden widths are for an mlp, not a %s",
                              r->model);
        snprintf(r->widths, sizeof r->widths, "%s", rc->widths);
    }
    if (rc->act)
        snprintf(r->act, sizeof r->act, "%s", rc->act);
    if (!isnan(rc->dropout))
        r->dropout = rc->dropout;
    c->seed = rc->seed;
    if (rc->epochs > 0)
        c->epochs = (int)rc->epochs, c->steps = 0;
    if (rc->steps > 0)
        c->steps = rc->steps;
    if (rc->batch > 0)
        c->batch = (int)rc->batch;
    if (rc->warmup >= 0)
        c->warmup = rc->warmup;
    if (rc->patience > 0)
        c->patience = (int)rc->patience;
    if (!isnan(rc->lr))
        c->lr = (float)rc->lr;
    if (!isnan(rc->weight_decay))
        c->weight_decay = (float)rc->weight_decay;
    if (!isnan(rc->momentum))
        c->momentum = (float)rc->momentum;
    if (!isnan(rc->clip))
        c->clip = (float)rc->clip;
    if (!isnan(rc->val))
        c->val_frac = rc->val;
    if (!isnan(rc->grad_penalty))
        c->grad_penalty = (float)rc->grad_penalty;
    if (c->patience && c->val_frac <= 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "early stopping needs a validation share of the rows");
    c->quiet = rc->quiet;
    return LETHE_OK;
}

static const char *loss_name(lethe_loss l)
{
    return l == LETHE_LOSS_XENT ? "xent" : l == LETHE_LOSS_MSE ? "mse" : "l1";
}

static const char *sched_name(lethe_sched_kind s)
{
    return s == LETHE_SCHED_CONSTANT ? "constant" : s == LETHE_SCHED_STEP ? "step" : "cosine";
}

/* config.json: everything needed to reproduce the run. */
static cJSON *make_config(const lethe_train_run_cfg *rc, const lethe_train_run_result *res,
                          const char *data_hash, const char *excl_hash)
{
    const lethe_train_cfg *c = &res->recipe.cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", rc->data);
    cJSON_AddStringToObject(j, "model", res->recipe.model);
    cJSON_AddStringToObject(j, "spec", res->spec);
    lethe_run_config_data(j, rc->seed, rc->limit, rc->window, rc->exclude, rc->split_seed,
                          data_hash, excl_hash, res->n_train);
    cJSON_AddStringToObject(j, "optim", c->optim == LETHE_OPTIM_SGD ? "sgd" : "adamw");
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(j, "momentum", c->momentum);
    cJSON_AddStringToObject(j, "sched", sched_name(c->sched));
    cJSON_AddNumberToObject(j, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "steps", (double)c->steps);
    cJSON_AddNumberToObject(j, "clip", c->clip);
    cJSON_AddStringToObject(j, "loss", loss_name(c->loss));
    cJSON_AddNumberToObject(j, "val", c->val_frac);
    cJSON_AddNumberToObject(j, "patience", c->patience);
    cJSON_AddNumberToObject(j, "grad_penalty", c->grad_penalty);
    return j;
}

lethe_status lethe_train_run(const lethe_train_run_cfg *rc, lethe_train_run_result *out)
{
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows all = {0}, excl = {0}, rows = {0};
    lethe_net *net = NULL;
    lethe_afile *log = NULL;
    lethe_rundir *rd = NULL;
    cJSON *config = NULL;
    lethe_train_run_result res = {0};
    char path[4200], seed[32], data_hash[17], excl_hash[17] = "0000000000000000";
    lethe_task_opts topts = {rc->limit, (int)rc->window};
    const lethe_task_info *named;
    const char *inputs[] = {lethe_task_find(rc->data, &named) == LETHE_OK ? NULL : rc->data,
                            lethe_split_file(rc->exclude)}; /* files, not a task's name */
    lethe_error_clear();
    lethe_status st = lethe_rundir_begin(rc->out, rc->force, inputs, 2, &rd);
    if (st == LETHE_OK)
        st = lethe_task_load(rc->data, &topts, &train, &test);
    if (st == LETHE_OK)
        st = apply(rc, train, &res.recipe);
    if (st == LETHE_OK)
        st = lethe_recipe_spec(&res.recipe, train, res.spec, sizeof res.spec);
    if (st == LETHE_OK && !(net = lethe_net_init(res.spec)))
        st = LETHE_ERR_INVALID;
    if (st == LETHE_OK)
        st = lethe_rows_all(&all, train->n);
    if (st == LETHE_OK && rc->exclude &&
        (st = lethe_split_select(train, rc->exclude, rc->split_seed, &excl)) == LETHE_OK)
        lethe_rows_hash(train, &excl, excl_hash);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&rows, &all, &excl);
    if (st == LETHE_OK && rows.n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "the exclusion %s leaves no training sample",
                        rc->exclude);
    snprintf(path, sizeof path, "%s/log.jsonl", rc->out);
    if (st == LETHE_OK && !(log = lethe_afile_open(path)))
        st = LETHE_ERR_IO;
    if (st != LETHE_OK)
        goto done;
    res.task = train->task;
    res.n_train = rows.n;
    res.excluded = excl.n;
    lethe_rows_hash(train, NULL, data_hash);
    lethe_net_init_params(net, rc->seed);
    if ((st = lethe_train(net, train, &rows, &res.recipe.cfg, log->fp, &res.train)) != LETHE_OK)
        goto done;
    st = lethe_afile_commit(log);
    log = NULL;
    config = make_config(rc, &res, data_hash, excl_hash);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)rc->seed);
    const char *meta[] = {"data", rc->data, "data_hash", data_hash, "exclude_hash", excl_hash,
                          "seed", seed, "method", rc->exclude ? "retrain" : "train"};
    if (st == LETHE_OK)
        st = lethe_run_save(rc->out, net, config, meta, sizeof meta / sizeof meta[0] / 2);
    if (st == LETHE_OK)
        st = lethe_score(net, train, &rows, &res.train_scores);
    if (st == LETHE_OK)
        st = lethe_score(net, test, NULL, &res.test_scores);
    if (st == LETHE_OK && out)
        *out = res;
done:
    lethe_afile_abort(log);
    lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    lethe_net_free(net);
    lethe_rows_free(&all);
    lethe_rows_free(&excl);
    lethe_rows_free(&rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return st;
}
