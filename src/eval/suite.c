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
