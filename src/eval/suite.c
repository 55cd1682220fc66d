/* What the evaluation suites share: batched evaluation-mode outputs, and their
 * output files in the OpenUnlearning layout (DESIGN §6), written atomically.
 *
 *   <SUITE>_EVAL.json     {metric: {"agg_value": x, "value_by_index": {"ID": v, ...}}}
 *   <SUITE>_SUMMARY.json  {metric: x}
 *
 * A metric without per-sample values has only "agg_value"; a summary-only
 * one (the wall time) appears in the summary alone. Values that were not
 * computed (NaN) are null. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/fileio.h"
#include "lethe/optim.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "suite.h"

lethe_status lethe_eval_outputs(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                float *out)
{
    long want = ds->task == LETHE_TASK_CLASSIFY ? ds->n_classes : ds->n_targets;
    if (net->n_in != ds->d || net->n_out != want)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the model maps %ld features to %ld outputs, the data has %d "
                          "features and %ld outputs",
                          ds->name, net->n_in, net->n_out, ds->d, want);
    enum { BATCH = 256 };
    long n = rows ? rows->n : ds->n, d = ds->d;
    if (lethe_net_reserve(net, n < BATCH ? (int)(n ? n : 1) : BATCH) != LETHE_OK)
        return LETHE_ERR_NOMEM;
    for (long b = 0; b < n; b += BATCH) {
        int B = (int)(n - b < BATCH ? n - b : BATCH);
        for (int i = 0; i < B; i++) {
            long r = rows ? rows->row[b + i] : b + i;
            memcpy(net->bx + i * d, ds->x + r * d, sizeof(float) * (size_t)d);
        }
        const float *o = lethe_net_forward(net, net->bx, B, 0, NULL, 0);
        if (!o)
            return LETHE_ERR_NOMEM;
        memcpy(out + b * net->n_out, o, sizeof(float) * (size_t)(B * net->n_out));
    }
    return LETHE_OK;
}

/* A JSON number that reads back as exactly x: the shortest of %.15g, %.16g
 * and %.17g that round-trips; null when x is not finite. */
static cJSON *number(double x)
{
    char buf[40];
    if (!isfinite(x))
        return cJSON_CreateNull();
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return cJSON_CreateRaw(buf);
}

cJSON *lethe_eval_summary_json(const lethe_eval_metric *m, int n_metrics)
{
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; j && i < n_metrics; i++) {
        cJSON *v = number(m[i].agg);
        if (!v || !cJSON_AddItemToObject(j, m[i].name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

static cJSON *eval_json(const lethe_eval_metric *m, int n_metrics, const uint64_t *ids, long n)
{
    cJSON *j = cJSON_CreateObject();
    char key[24];
    for (int i = 0; j && i < n_metrics; i++) {
        if (m[i].summary_only)
            continue;
        cJSON *entry = cJSON_AddObjectToObject(j, m[i].name);
        cJSON *agg = number(m[i].agg);
        if (!entry || !agg || !cJSON_AddItemToObject(entry, "agg_value", agg)) {
            cJSON_Delete(agg);
            goto oom;
        }
        if (!m[i].per_sample)
            continue;
        cJSON *by = cJSON_AddObjectToObject(entry, "value_by_index");
        if (!by)
            goto oom;
        for (long k = 0; k < n; k++) {
            snprintf(key, sizeof key, "%" PRIu64, ids[k]);
            cJSON *v = number(m[i].per_sample[k]);
            if (!v || !cJSON_AddItemToObject(by, key, v)) {
                cJSON_Delete(v);
                goto oom;
            }
        }
    }
    return j;
oom:
    cJSON_Delete(j);
    return NULL;
}

static lethe_status write_json(const char *dir, const char *suite, const char *what, cJSON *j)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s_%s.json", dir, suite, what);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator; the write takes len + 1 bytes */
    lethe_status st = lethe_file_write_atomic(path, text, len + 1);
    free(text);
    return st;
}

lethe_status lethe_eval_write(const char *dir, const char *suite, const lethe_eval_metric *m,
                              int n_metrics, const uint64_t *ids, long n)
{
    lethe_status st = write_json(dir, suite, "EVAL", eval_json(m, n_metrics, ids, n));
    if (st == LETHE_OK)
        st = write_json(dir, suite, "SUMMARY", lethe_eval_summary_json(m, n_metrics));
    return st;
}

/* ------------------------------------------------- shared by the suites */

double eval_mean(const double *v, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : NAN;
}

void eval_free_each(void **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i]);
}

int eval_metrics_copy(lethe_eval_metric *m, const lethe_eval_metric *list, size_t n)
{
    LETHE_ASSERT(n <= LETHE_EVAL_MAX_METRICS);
    memcpy(m, list, sizeof *list * n);
    return (int)n;
}

double eval_steps(long steps)
{
    return steps < 0 ? NAN : (double)steps;
}

static lethe_status check_net(const char *what, const lethe_net *net, const lethe_dataset *ds)
{
    int classify = ds->task == LETHE_TASK_CLASSIFY;
    long outs = classify ? ds->n_classes : ds->n_targets;
    if (net->n_in != ds->d || net->n_out != outs)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the %s maps %ld features to %ld outputs; the data has %d features "
                          "and %ld %s",
                          ds->name, what, net->n_in, net->n_out, ds->d, outs,
                          classify ? "classes" : "targets");
    return LETHE_OK;
}

lethe_status eval_start(void *result, size_t size, double *t0, lethe_task task,
                        const lethe_dataset *tr, const lethe_dataset *te, const lethe_rows *forget,
                        const lethe_rows *retain, const lethe_net *model, const lethe_net *oracle,
                        const lethe_net *original)
{
    memset(result, 0, size);
    *t0 = lethe_now();
    int classify = task == LETHE_TASK_CLASSIFY;
    lethe_status st;
    if (tr->task != task)
        return lethe_fail(LETHE_ERR_INVALID, "%s: a %s task; use the %s suite (lethe eval %s)",
                          tr->name, classify ? "regression" : "classification",
                          classify ? "regression" : "classification",
                          classify ? "regress" : "classify");
    if (te->task != task || te->d != tr->d ||
        (classify ? te->n_classes != tr->n_classes : te->n_targets != tr->n_targets))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the test set does not match the training set",
                          tr->name);
    if (forget->n == 0 || retain->n == 0 || te->n == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the suite needs non-empty forget, retain and test sets (got %ld, "
                          "%ld and %ld samples)",
                          tr->name, forget->n, retain->n, te->n);
    if ((st = check_net("model", model, tr)) != LETHE_OK ||
        (oracle && (st = check_net("oracle", oracle, tr)) != LETHE_OK) ||
        (original && (st = check_net("original model", original, tr)) != LETHE_OK))
        return st;
    return LETHE_OK;
}

void eval_progress_begin(lethe_progress *p, int stages)
{
    if (p)
        p->total = (uint64_t)stages;
}

void eval_stage_done(lethe_progress *p)
{
    if (p)
        lethe_progress_update(p, p->done + 1);
}

lethe_status eval_relearn_run(lethe_net *net, const eval_relearn *r, long *steps, int *reached)
{
    *steps = 0;
    *reached = 0;
    long n = r->rows->n;
    if (n == 0 || r->batch <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "relearning needs samples and a positive batch");
    lethe_status st = LETHE_OK;
    lethe_net *copy = lethe_net_init(net->spec);
    lethe_optim *opt = copy ? lethe_optim_init(LETHE_OPTIM_ADAMW, copy->n_params) : NULL;
    long *order = malloc(sizeof(long) * (size_t)n);
    if (!copy || !opt || !order) {
        st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
        goto done;
    }
    memcpy(copy->params, net->params, sizeof(float) * (size_t)net->n_params);
    opt->weight_decay = 0.0f; /* Adam */
    if (!r->first_step && ((st = r->done(copy, r->user, reached)) != LETHE_OK || *reached))
        goto done;
    for (int epoch = 0; epoch < r->epochs && *steps < r->max_steps; epoch++) {
        if ((st = lethe_train_order(r->ds, r->rows, r->seed, epoch, order)) != LETHE_OK)
            goto done;
        uint64_t drop = lethe_rng_hash(r->seed, r->dropout_stream, (uint64_t)epoch);
        for (long b = 0; b < n && *steps < r->max_steps; b += r->batch) {
            int B = (int)(n - b < r->batch ? n - b : r->batch);
            memset(copy->grads, 0, sizeof(float) * (size_t)copy->n_params);
            if (isnan(lethe_batch_grad(copy, r->ds, order + b, B, r->loss, 1, drop, 1.0f,
                                       NULL))) {
                st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
                goto done;
            }
            lethe_optim_step(opt, copy->params, copy->grads, r->lr);
            ++*steps;
            if (r->progress)
                lethe_progress_update(r->progress, r->progress->done);
            if ((st = r->done(copy, r->user, reached)) != LETHE_OK || *reached)
                goto done;
        }
    }
done:
    lethe_net_free(copy);
    lethe_optim_free(opt);
    free(order);
    return st;
}
