/* Linear run directories: the fit that writes one, and the deletion
 * protocol (lock, ledger replay, parent hash, atomic replace) that removes
 * samples from it. See "Run directories" in include/lethe/linear.h. */
#include "lethe/linear.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/ledger.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/runlock.h"
#include "lethe/task.h"

void lethe_linear_run_free(lethe_linear_run *r)
{
    if (!r)
        return;
    lethe_linear_free(r->m);
    lethe_dataset_free(r->train);
    lethe_dataset_free(r->test);
    lethe_rows_free(&r->rows);
    lethe_rows_free(&r->drop);
    free(r);
}

/* A new run for dir, *out cleared; NULL when out of memory. */
static lethe_linear_run *run_new(const char *dir, lethe_linear_run **out)
{
    *out = NULL;
    lethe_linear_run *r = calloc(1, sizeof *r);
    if (r)
        snprintf(r->dir, sizeof r->dir, "%s", dir);
    return r;
}

/* *out = r when st is LETHE_OK; r freed otherwise. */
static lethe_status run_end(lethe_linear_run *r, lethe_status st, lethe_linear_run **out)
{
    if (st != LETHE_OK)
        lethe_linear_run_free(r);
    else
        *out = r;
    return st;
}

/* Write `line` and a newline after the current contents of path (if any),
 * atomically. */
static lethe_status append_line(const char *path, const char *line)
{
    unsigned char *old = NULL;
    size_t len = 0;
    if (access(path, F_OK) == 0) {
        lethe_status st = lethe_file_read(path, &old, &len);
        if (st != LETHE_OK)
            return st;
    }
    lethe_afile *f = lethe_afile_open(path);
    if (!f) {
        free(old);
        return LETHE_ERR_IO;
    }
    if (len)
        fwrite(old, 1, len, f->fp);
    fprintf(f->fp, "%s\n", line);
    free(old);
    return lethe_afile_commit(f);
}

/* A JSON object written to path with a final newline, atomically. */
static lethe_status write_json(const char *path, const cJSON *j, int pretty)
{
    char *txt = pretty ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
    if (!txt)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t len = strlen(txt);
    txt[len] = '\n'; /* replaces the NUL; written without it */
    lethe_status st = lethe_file_write_atomic(path, txt, len + 1);
    free(txt);
    return st;
}

/* config as one line for the model's metadata. A logistic model's noise
 * seed stays out of the model file: anyone holding it could subtract the
 * noise, which would void the certificate. Free the result. */
static char *meta_config(const cJSON *config, lethe_linear_kind kind)
{
    cJSON *c = cJSON_Duplicate(config, 1);
    if (c && kind == LETHE_LINEAR_LOGISTIC)
        cJSON_DeleteItemFromObject(c, "seed");
    char *line = c ? cJSON_PrintUnformatted(c) : NULL;
    cJSON_Delete(c);
    return line;
}

/* ---- the fit ---- */

void lethe_linear_fit_defaults(lethe_linear_fit_opts *o)
{
    *o = (lethe_linear_fit_opts){.lambda = NAN, .guard = NAN, .sigma = NAN, .eps = NAN,
                                 .delta = NAN};
}

static cJSON *fit_config(const lethe_linear_fit_opts *o, const lethe_linear *m,
                         const char *data_hash, const char *excl_hash)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddStringToObject(j, "model", lethe_linear_kind_name(m->kind));
    lethe_run_config_data(j, o->seed, o->limit, o->window, o->exclude, o->split_seed,
                          data_hash, excl_hash, m->n);
    cJSON_AddNumberToObject(j, "lambda", m->cfg.lambda);
    if (m->kind == LETHE_LINEAR_RIDGE) {
        cJSON_AddNumberToObject(j, "guard", m->cfg.guard);
    } else {
        cJSON_AddNumberToObject(j, "sigma", m->cfg.sigma);
        cJSON_AddNumberToObject(j, "eps", m->cfg.eps);
        cJSON_AddNumberToObject(j, "delta", m->cfg.delta);
    }
    return j;
}

/* Fit the model of r (r->rows, the settings of o) and time it. */
static lethe_status fit_model(lethe_linear_run *r, const lethe_linear_fit_opts *o,
                              char excl_hash[17])
{
    lethe_task_opts topts = {o->limit, (int)o->window};
    lethe_rows all = {0}, excl = {0};
    lethe_linear_kind kind = LETHE_LINEAR_RIDGE;
    lethe_linear_cfg cfg;
    lethe_status st = lethe_task_load(o->data, &topts, &r->train, &r->test);
    if (st == LETHE_OK) {
        snprintf(r->task, sizeof r->task, "%s", o->data);
        if (o->model)
            st = lethe_linear_kind_parse(o->model, &kind);
        else
            kind = r->train->task == LETHE_TASK_REGRESS ? LETHE_LINEAR_RIDGE
                                                        : LETHE_LINEAR_LOGISTIC;
    }
    lethe_linear_defaults(kind, &cfg);
    const double set[] = {o->lambda, o->guard, o->sigma, o->eps, o->delta};
    double *to[] = {&cfg.lambda, &cfg.guard, &cfg.sigma, &cfg.eps, &cfg.delta};
    for (int i = 0; i < 5; i++)
        if (!isnan(set[i]))
            *to[i] = set[i];
    cfg.seed = o->seed;
    if (st == LETHE_OK)
        st = lethe_rows_all(&all, r->train->n);
    if (st == LETHE_OK && o->exclude &&
        (st = lethe_split_select(r->train, o->exclude, o->split_seed, &excl)) == LETHE_OK)
        lethe_rows_hash(r->train, &excl, excl_hash);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&r->rows, &all, &excl);
    if (st == LETHE_OK && r->rows.n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "leaving out %s leaves no training sample",
                        o->exclude);
    r->excluded = excl.n;
    double t0 = lethe_now();
    if (st == LETHE_OK)
        st = lethe_linear_fit(kind, &cfg, r->train, &r->rows, &r->m);
    r->seconds = lethe_now() - t0;
    lethe_rows_free(&all);
    lethe_rows_free(&excl);
    return st;
}

lethe_status lethe_linear_run_fit(const char *dir, const lethe_linear_fit_opts *o,
                                  lethe_linear_run **out)
{
    lethe_linear_run *r = run_new(dir, out);
    if (!r)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_rundir *rd = NULL;
    cJSON *config = NULL, *log = NULL;
    char *config_line = NULL, path[4200], data_hash[17], excl_hash[17] = "0000000000000000";
    const lethe_task_info *named;
    const char *inputs[] = {lethe_task_find(o->data, &named) == LETHE_OK ? NULL : o->data,
                            lethe_split_file(o->exclude)}; /* files, not a task's name */
    lethe_status st = lethe_rundir_begin(dir, o->force, inputs, 2, &rd);
    if (st == LETHE_OK)
        st = fit_model(r, o, excl_hash);
    if (st != LETHE_OK)
        goto done;
    lethe_linear_kind kind = r->m->kind;
    lethe_rows_hash(r->train, NULL, data_hash);
    config = fit_config(o, r->m, data_hash, excl_hash);
    config_line = meta_config(config, kind);
    log = cJSON_CreateObject();
    cJSON_AddStringToObject(log, "event", "fit");
    cJSON_AddStringToObject(log, "model", lethe_linear_kind_name(kind));
    cJSON_AddNumberToObject(log, "n", (double)r->m->n);
    cJSON_AddNumberToObject(log, "excluded", (double)r->excluded);
    if (kind == LETHE_LINEAR_LOGISTIC)
        cJSON_AddNumberToObject(log, "beta", r->m->beta);
    if (!config_line || !log) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *meta[] = {"data", o->data, "exclude_hash", excl_hash, "method", "fit",
                          "config", config_line};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = lethe_linear_save(r->m, path, meta, sizeof meta / sizeof meta[0] / 2);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (st == LETHE_OK)
        st = write_json(path, config, 1);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    if (st == LETHE_OK)
        st = write_json(path, log, 0);
    if (st == LETHE_OK) {
        lethe_linear_score(r->m, r->train, &r->rows, &r->train_scores);
        lethe_linear_score(r->m, r->test, NULL, &r->test_scores);
    }
done:
    lethe_rundir_end(rd, st);
    free(config_line);
    cJSON_Delete(config);
    cJSON_Delete(log);
    return run_end(r, st, out);
}

/* ---- the deletion protocol ---- */

/* The run's config.json, refusing runs that are not ridge or logistic. */
static lethe_status read_config(const char *dir, cJSON **config, lethe_linear_kind *kind)
{
    char path[4200];
    const char *model = NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(dir, F_OK) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: no such run directory", dir);
    lethe_status st = lethe_json_read(path, config);
    if (st == LETHE_OK)
        st = lethe_json_opt_string(*config, "model", path, "", &model);
    if (st == LETHE_OK && lethe_linear_kind_parse(model, kind) != LETHE_OK)
        st = lethe_fail(LETHE_ERR_UNSUPPORTED,
                        "%s is a%s '%s' run; samples are removed in place from ridge and "
                        "logistic runs (made by lethe fit or lethe train); other models are "
                        "unlearned, or retrained without the samples",
                        dir, strchr("aeiou", model[0]) && model[0] ? "n" : "",
                        model[0] ? model : "unknown");
    return st;
}

/* 1 if id is among the model's removed ids (ascending). */
static int was_removed(const lethe_linear *m, uint64_t id)
{
    long lo = 0, hi = m->n_removed;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (m->removed[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n_removed && m->removed[lo] == id;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* Requests the ledger holds as received: those whose ids the model file
 * already lacks (a crash came after the model was written) are marked
 * applied; the rows of the others go to *pend (ascending), to be removed
 * now. A request only partly in the model file cannot happen (the file is
 * replaced in one rename) and is refused. */
static lethe_status replay(lethe_ledger *led, const lethe_linear *m, const lethe_dataset *train,
                           lethe_rows *pend, long *n_pending)
{
    *n_pending = 0;
    for (long q = 0; q < led->n_req; q++) {
        const lethe_request *r = &led->req[q];
        if (r->state != LETHE_REQ_RECEIVED)
            continue;
        long gone = 0;
        for (long k = 0; k < r->n_ids; k++)
            gone += was_removed(m, r->ids[k]);
        if (gone == r->n_ids) {
            lethe_status st = lethe_ledger_applied(led, r->id);
            if (st != LETHE_OK)
                return st;
            continue;
        }
        if (gone)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: request %ld is only partly in the model "
                              "file (%ld of %ld ids removed)", led->path, r->id, gone, r->n_ids);
        long *row = realloc(pend->row, (size_t)(pend->n + r->n_ids) * sizeof *row);
        if (!row)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        pend->row = row;
        for (long k = 0; k < r->n_ids; k++) {
            long i = lethe_dataset_find(train, r->ids[k]);
            if (i < 0)
                return lethe_fail(LETHE_ERR_FORMAT, "%s: request %ld names id %llu, which is "
                                  "not in the training set", led->path, r->id,
                                  (unsigned long long)r->ids[k]);
            pend->row[pend->n++] = i;
        }
        (*n_pending)++;
    }
    if (pend->n > 1)
        qsort(pend->row, (size_t)pend->n, sizeof *pend->row, cmp_long);
    return LETHE_OK;
}

/* The new request's rows, refusing ids that an earlier request named. */
static lethe_status check_new(const lethe_ledger *led, const lethe_dataset *train,
                              const lethe_rows *drop)
{
    for (long i = 0; i < drop->n; i++) {
        uint64_t id = train->ids[drop->row[i]];
        long q = lethe_ledger_find(led, id);
        if (q)
            return lethe_fail(LETHE_ERR_INVALID, "id %llu was already removed (ledger "
                              "request %ld)", (unsigned long long)id, q);
    }
    return LETHE_OK;
}

/* Rows of train holding ids[0..n) into out, ascending, each once. */
static lethe_status select_id_list(const lethe_dataset *train, const uint64_t *ids, long n,
                                   lethe_rows *out)
{
    out->n = 0;
    if (!(out->row = malloc((size_t)n * sizeof *out->row)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; i < n; i++) {
        long r = lethe_dataset_find(train, ids[i]);
        if (r < 0)
            return lethe_fail(LETHE_ERR_INVALID, "id %llu is not in the %s training set",
                              (unsigned long long)ids[i], train->name);
        out->row[out->n++] = r;
    }
    qsort(out->row, (size_t)n, sizeof *out->row, cmp_long);
    long k = 0;
    for (long i = 0; i < n; i++)
        if (k == 0 || out->row[k - 1] != out->row[i])
            out->row[k++] = out->row[i];
    out->n = k;
    return LETHE_OK;
}

/* Relative Frobenius distance of two models' parameters. */
static double rel_diff(const lethe_linear *a, const lethe_linear *b)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < (size_t)a->p * (size_t)a->k; i++) {
        double e = a->theta[i] - b->theta[i];
        num += e * e, den += b->theta[i] * b->theta[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Refit from scratch and compare (o->check). */
static lethe_status check_refit(lethe_linear_run *r)
{
    lethe_linear *ref = NULL;
    double t0 = lethe_now();
    lethe_status st = lethe_linear_refit(r->m, r->train, &ref);
    r->ref_seconds = lethe_now() - t0;
    if (st == LETHE_OK)
        r->rel_diff = rel_diff(r->m, ref);
    if (st == LETHE_OK && r->m->kind == LETHE_LINEAR_LOGISTIC)
        r->grad_norm = lethe_linear_grad_norm(r->m, r->train);
    if (st == LETHE_OK && r->m->kind == LETHE_LINEAR_RIDGE &&
        !(r->rel_diff <= LETHE_LINEAR_CHECK_RTOL))
        st = lethe_fail(LETHE_ERR_FAILED,
                        "%s: the removal differs from a refit by %.3g (relative), more than %g; "
                        "the run is unchanged", r->dir, r->rel_diff, LETHE_LINEAR_CHECK_RTOL);
    lethe_linear_free(ref);
    return st;
}

void lethe_linear_report_json(cJSON *o, const lethe_linear *m, const lethe_linear_report *rep,
                              int with_eps)
{
    if (m->kind == LETHE_LINEAR_RIDGE) {
        cJSON_AddNumberToObject(o, "downdates", (double)rep->downdates);
        cJSON_AddBoolToObject(o, "refactored", rep->refactored);
        cJSON_AddNumberToObject(o, "min_pivot", rep->min_pivot);
        return;
    }
    cJSON_AddNumberToObject(o, "steps", (double)rep->steps);
    cJSON_AddBoolToObject(o, "retrained", rep->retrained);
    cJSON_AddNumberToObject(o, "retrains", (double)m->retrains);
    cJSON_AddNumberToObject(o, "bound_added", rep->bound_added);
    cJSON_AddNumberToObject(o, "beta", m->beta);
    cJSON_AddNumberToObject(o, "budget", rep->budget);
    if (with_eps) {
        cJSON_AddNumberToObject(o, "eps", m->cfg.eps);
        cJSON_AddNumberToObject(o, "delta", m->cfg.delta);
    }
    cJSON_AddBoolToObject(o, "certified", rep->certified);
}

/* log.jsonl's line for a removal. */
static cJSON *forget_log(const lethe_linear_run *r, const char *forget_hash,
                         const char *parent_hash)
{
    const lethe_linear *m = r->m;
    const lethe_linear_report *rep = &r->rep;
    cJSON *log = cJSON_CreateObject();
    cJSON_AddStringToObject(log, "event", "forget");
    cJSON_AddNumberToObject(log, "request", (double)m->requests);
    cJSON *idv = cJSON_AddArrayToObject(log, "ids");
    for (long i = 0; i < r->drop.n; i++)
        cJSON_AddItemToArray(idv, cJSON_CreateNumber((double)r->train->ids[r->drop.row[i]]));
    cJSON_AddStringToObject(log, "forget_hash", forget_hash);
    cJSON_AddStringToObject(log, "parent_hash", parent_hash);
    cJSON_AddNumberToObject(log, "n", (double)m->n);
    lethe_linear_report_json(log, m, rep, 0);
    return log;
}

/* Load the run's model and data under the lock, checking they belong
 * together; the ledger replayed, its pending rows in *pend. */
static lethe_status load_run(lethe_linear_run *r, const cJSON *config, lethe_linear_kind kind,
                             char parent_hash[17], lethe_ledger **led, lethe_rows *pend)
{
    char path[4200], model_path[4200];
    const char *task = NULL;
    long long limit = 0, window = 0, seed = 0;
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", r->dir);
    lethe_status st = lethe_json_get_string(config, "data", path, &task);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "limit", path, 0, &limit);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "window", path, 0, &window);
    if (st == LETHE_OK)
        st = lethe_json_opt_int(config, "seed", path, 0, &seed);
    if (st == LETHE_OK)
        st = lethe_file_fnv1a(model_path, parent_hash);
    if (st == LETHE_OK)
        st = lethe_linear_load(model_path, (uint64_t)seed, &r->m);
    if (st == LETHE_OK && r->m->kind != kind)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: config.json says %s, the model file %s", r->dir,
                        lethe_linear_kind_name(kind), lethe_linear_kind_name(r->m->kind));
    lethe_task_opts topts = {(long)limit, (int)window};
    if (st == LETHE_OK) {
        snprintf(r->task, sizeof r->task, "%s", task);
        st = lethe_task_load(task, &topts, &r->train, &r->test);
    }
    if (st == LETHE_OK) {
        char now[17];
        lethe_rows_hash(r->train, NULL, now);
        if (strcmp(now, r->m->data_hash))
            st = lethe_fail(LETHE_ERR_FORMAT,
                            "%s: the data set %s has changed since the fit (hash %s, fitted on "
                            "%s); exact removal needs the same data", r->dir, task, now,
                            r->m->data_hash);
    }
    /* The ledger: requests a crash left pending are applied with this one. */
    snprintf(path, sizeof path, "%s/ledger.log", r->dir);
    if (st == LETHE_OK)
        st = lethe_ledger_open(path, led);
    if (st == LETHE_OK)
        st = replay(*led, r->m, r->train, pend, &r->pending);
    return st;
}

/* Record the request (the acknowledgement), then commit: the new model
 * file replaces the old one in one rename, then the ledger says so, then
 * the log follows (the model file is the record of what was removed). */
static lethe_status commit(lethe_linear_run *r, const lethe_linear_forget_opts *o,
                           const cJSON *config, const char *parent_hash, lethe_ledger *led,
                           const lethe_rows *fresh)
{
    char path[4200], forget_hash[17];
    const char *excl_hash = NULL;
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    lethe_status st = lethe_json_opt_string(config, "exclude_hash", path, "0000000000000000",
                                            &excl_hash);
    if (st == LETHE_OK && fresh->n) {
        uint64_t *idv = malloc((size_t)fresh->n * sizeof *idv);
        if (!idv)
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        for (long i = 0; i < fresh->n; i++)
            idv[i] = r->train->ids[fresh->row[i]];
        st = lethe_ledger_receive(led, idv, fresh->n, &r->request);
        free(idv);
        if (st == LETHE_OK && o->recorded)
            o->recorded(r->request, fresh->n, o->ctx);
    }
    if (st != LETHE_OK)
        return st;
    lethe_rows_hash(r->train, &r->drop, forget_hash);
    char *config_line = meta_config(config, r->m->kind);
    const char *meta[] = {"data", r->task, "exclude_hash", excl_hash, "method", "forget",
                          "config", config_line ? config_line : "{}", "forget_hash",
                          forget_hash, "parent_hash", parent_hash};
    snprintf(path, sizeof path, "%s/model.safetensors", r->dir);
    st = lethe_linear_save(r->m, path, meta, sizeof meta / sizeof meta[0] / 2);
    free(config_line);
    for (long q = 0; st == LETHE_OK && q < led->n_req; q++)
        if (led->req[q].state == LETHE_REQ_RECEIVED)
            st = lethe_ledger_applied(led, led->req[q].id);
    if (st != LETHE_OK)
        return st;
    cJSON *log = forget_log(r, forget_hash, parent_hash);
    char *line = cJSON_PrintUnformatted(log);
    cJSON_Delete(log);
    snprintf(path, sizeof path, "%s/log.jsonl", r->dir);
    st = line ? append_line(path, line) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    free(line);
    return st;
}

lethe_status lethe_linear_run_forget(const char *dir, const lethe_linear_forget_opts *o,
                                     lethe_linear_run **out)
{
    lethe_linear_run *r = run_new(dir, out);
    if (!r)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    r->ref_seconds = r->rel_diff = r->grad_norm = NAN;
    cJSON *config = NULL;
    lethe_ledger *led = NULL;
    lethe_runlock *lock = NULL;
    lethe_rows fresh = {0}, pend = {0};
    lethe_linear_kind kind = LETHE_LINEAR_RIDGE;
    char parent_hash[17];
    lethe_status st = read_config(dir, &config, &kind);
    if (st == LETHE_OK) /* one writer at a time */
        st = lethe_runlock_acquire(dir, 1, &lock);
    if (st == LETHE_OK)
        st = load_run(r, config, kind, parent_hash, &led, &pend);
    if (st != LETHE_OK || (!o->ids && o->n_id_list <= 0 && !r->pending))
        goto done; /* nothing to do */
    if (o->ids)
        st = lethe_split_select(r->train, o->ids, o->split_seed, &fresh);
    else if (o->n_id_list > 0)
        st = select_id_list(r->train, o->id_list, o->n_id_list, &fresh);
    if (st == LETHE_OK)
        st = check_new(led, r->train, &fresh);
    /* drop = pend + fresh, ascending (disjoint: check_new refused overlaps) */
    if (st == LETHE_OK &&
        !(r->drop.row = malloc((size_t)(pend.n + fresh.n + 1) * sizeof(long))))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long a = 0, b = 0; st == LETHE_OK && a + b < pend.n + fresh.n;)
        r->drop.row[r->drop.n++] = b == fresh.n || (a < pend.n && pend.row[a] < fresh.row[b])
                                       ? pend.row[a++]
                                       : fresh.row[b++];
    if (st == LETHE_OK)
        st = lethe_linear_forget(r->m, r->train, &r->drop, &r->rep);
    if (st == LETHE_OK && o->check)
        st = check_refit(r);
    if (st == LETHE_OK)
        st = commit(r, o, config, parent_hash, led, &fresh);
done:
    lethe_runlock_release(lock);
    cJSON_Delete(config);
    lethe_ledger_free(led);
    lethe_rows_free(&fresh);
    lethe_rows_free(&pend);
    return run_end(r, st, out);
}
