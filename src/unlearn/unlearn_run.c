/* An unlearning run on a classifier or regressor (lethe/unlearn.h,
 * lethe_unlearn_run_dir): a run directory in, a new one out. */
#include "lethe/unlearn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "lethe/fileio.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/task.h"

void lethe_unlearn_run_defaults(lethe_unlearn_run_cfg *rc)
{
    memset(rc, 0, sizeof *rc);
}

/* The index of m's "lr" hyperparameter, or -1. */
static int lr_index(const lethe_method *m)
{
    for (int k = 0; m->params[k].name; k++)
        if (!strcmp(m->params[k].name, "lr"))
            return k;
    return -1;
}

/* config.json: the source run's, with the unlearning recorded under
 * "unlearn". hp_txt receives the hyperparameters as one JSON line. */
static cJSON *make_config(const lethe_unlearn_run_cfg *rc, const lethe_run *run,
                          const lethe_unlearn_ctx *ctx, const char *forget_hash,
                          const char *parent_hash, char **hp_txt)
{
    const lethe_method *m = ctx->method;
    cJSON *hp = cJSON_CreateObject();
    for (int k = 0; m->params[k].name; k++)
        cJSON_AddNumberToObject(hp, m->params[k].name, ctx->hp[k]);
    *hp_txt = cJSON_PrintUnformatted(hp);
    cJSON *config = cJSON_Duplicate(run->config, 1);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "method", m->name);
    cJSON_AddItemToObject(u, "hparams", hp);
    cJSON_AddStringToObject(u, "forget", rc->forget);
    if (rc->retain)
        cJSON_AddStringToObject(u, "retain", rc->retain);
    cJSON_AddNumberToObject(u, "seed", (double)rc->seed);
    cJSON_AddNumberToObject(u, "split_seed", (double)rc->split_seed);
    cJSON_AddStringToObject(u, "forget_hash", forget_hash);
    cJSON_AddStringToObject(u, "parent", rc->run);
    cJSON_AddStringToObject(u, "parent_hash", parent_hash);
    cJSON_DeleteItemFromObject(config, "unlearn");
    cJSON_AddItemToObject(config, "unlearn", u);
    return config;
}

lethe_status lethe_unlearn_run_dir(const lethe_unlearn_run_cfg *rc,
                                   lethe_unlearn_run_result *out)
{
    lethe_run *run = NULL;
    lethe_dataset *train = NULL, *test = NULL, *view = NULL;
    lethe_rows f_rows = {0}, r_sel = {0}, r_rows = {0};
    lethe_net *original = NULL;
    lethe_afile *log = NULL;
    lethe_rundir *rd = NULL;
    cJSON *config = NULL;
    char *hp_txt = NULL;
    const lethe_method *m;
    lethe_unlearn_ctx ctx = {0};
    lethe_unlearn_run_result res = {0};
    char path[4200], parent_hash[17], forget_hash[17];
    const char *inputs[] = {rc->run};
    int lr_k = -1;
    lethe_status st = lethe_method_find(rc->method, &m);
    if (st == LETHE_OK && rc->lr > 0 && (lr_k = lr_index(m)) < 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s has no learning rate", m->name);
    if (st == LETHE_OK)
        st = lethe_rundir_begin(rc->out, rc->force, inputs, 1, &rd);
    if (st == LETHE_OK)
        st = lethe_unlearn_hparams(&ctx, m, rc->sets, rc->n_sets);
    if (st == LETHE_OK && lr_k >= 0)
        ctx.hp[lr_k] = rc->lr;
    if (st == LETHE_OK)
        st = lethe_run_load(rc->run, &run);
    snprintf(path, sizeof path, "%s/model.safetensors", rc->run);
    if (st == LETHE_OK)
        st = lethe_file_fnv1a(path, parent_hash);
    if (st == LETHE_OK)
        st = lethe_run_data(run, &train, &test);
    if (st == LETHE_OK)
        st = lethe_split_select(train, rc->forget, rc->split_seed, &f_rows);
    if (st == LETHE_OK)
        st = rc->retain ? lethe_split_select(train, rc->retain, rc->split_seed, &r_sel)
                        : lethe_rows_all(&r_sel, train->n);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&r_rows, &r_sel, &f_rows);
    if (st == LETHE_OK && !(original = lethe_net_init(run->net->spec)))
        st = LETHE_ERR_NOMEM;
    if (st == LETHE_OK && !(view = malloc(sizeof *view)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/log.jsonl", rc->out);
    if (st == LETHE_OK && !(log = lethe_afile_open(path)))
        st = LETHE_ERR_IO;
    if (st != LETHE_OK)
        goto done;
    memcpy(original->params, run->net->params, sizeof(float) * (size_t)original->n_params);
    *view = *train;
    if (!m->needs_labels)
        view->y = NULL, view->t = NULL; /* the method cannot read a label */
    ctx.net = run->net;
    ctx.original = original;
    ctx.data = view;
    ctx.forget = &f_rows;
    ctx.retain = &r_rows;
    ctx.seed = rc->seed;
    ctx.log = log->fp;
    ctx.quiet = rc->quiet;
    double t0 = lethe_now();
    if ((st = lethe_unlearn_run(&ctx)) != LETHE_OK)
        goto done;
    res.seconds = lethe_now() - t0;
    st = lethe_afile_commit(log);
    log = NULL;
    if (st != LETHE_OK)
        goto done;

    lethe_rows_hash(train, &f_rows, forget_hash);
    config = make_config(rc, run, &ctx, forget_hash, parent_hash, &hp_txt);
    const char *data_hash = cJSON_GetStringValue(cJSON_GetObjectItem(config, "data_hash"));
    const char *meta[] = {"data", run->task, "data_hash", data_hash ? data_hash : "",
                          "method", m->name, "hparams", hp_txt ? hp_txt : "{}",
                          "forget_hash", forget_hash, "parent_hash", parent_hash};
    st = lethe_run_save(rc->out, run->net, config, meta, sizeof meta / sizeof meta[0] / 2);
    if (st == LETHE_OK)
        st = lethe_score(run->net, train, &f_rows, &res.forget);
    if (st == LETHE_OK)
        st = lethe_score(run->net, train, &r_rows, &res.retain);
    if (st == LETHE_OK)
        st = lethe_score(run->net, test, NULL, &res.test);
    if (st != LETHE_OK)
        goto done;
    res.method = m;
    snprintf(res.task, sizeof res.task, "%s", run->task);
    res.kind = train->task;
    res.n_forget = f_rows.n;
    res.n_retain = r_rows.n;
    res.steps = ctx.steps;
    if (out)
        *out = res;
done:
    lethe_afile_abort(log);
    lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    free(hp_txt);
    free(view);
    lethe_net_free(original);
    lethe_rows_free(&f_rows);
    lethe_rows_free(&r_sel);
    lethe_rows_free(&r_rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    lethe_run_free(run);
    return st;
}
