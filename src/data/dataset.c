/* In-memory data sets and row subsets. */
#include "lethe/dataset.h"
#include "lethe/mem.h"
#include "lethe/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lethe_dataset *lethe_dataset_alloc(const char *name, lethe_task task, long n, int d,
                                   int n_targets)
{
    lethe_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        goto fail;
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->task = task;
    ds->n = n;
    ds->d = d;
    ds->c = d, ds->h = ds->w = 1;
    ds->n_targets = task == LETHE_TASK_REGRESS ? n_targets : 0;
    ds->t_shift = 0, ds->t_scale = 1;
    ds->x = lethe_calloc((size_t)n * (size_t)d, sizeof(float));
    ds->ids = lethe_calloc((size_t)n, sizeof(uint64_t));
    if (!ds->x || !ds->ids)
        goto fail;
    if (task == LETHE_TASK_CLASSIFY && !(ds->y = lethe_calloc((size_t)n, sizeof(int32_t))))
        goto fail;
    if (task == LETHE_TASK_REGRESS &&
        !(ds->t = lethe_calloc((size_t)n * (size_t)n_targets, sizeof(float))))
        goto fail;
    return ds;
fail:
    lethe_dataset_free(ds);
    lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %ld samples of %d features", name, n, d);
    return NULL;
}

void lethe_dataset_free(lethe_dataset *ds)
{
    if (!ds)
        return;
    lethe_free(ds->x);
    lethe_free(ds->y);
    lethe_free(ds->t);
    lethe_free(ds->ids);
    free(ds);
}

long lethe_dataset_find(const lethe_dataset *ds, uint64_t id)
{
    if (id < (uint64_t)ds->n && ds->ids[id] == id)
        return (long)id;
    for (long i = 0; i < ds->n; i++)
        if (ds->ids[i] == id)
            return i;
    return -1;
}

void lethe_rows_free(lethe_rows *r)
{
    free(r->row);
    r->row = NULL;
    r->n = 0;
}

lethe_status lethe_rows_all(lethe_rows *out, long n)
{
    out->n = n;
    out->row = malloc(sizeof(long) * (size_t)(n ? n : 1));
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", n);
    for (long i = 0; i < n; i++)
        out->row[i] = i;
    return LETHE_OK;
}

lethe_status lethe_rows_minus(lethe_rows *out, const lethe_rows *from, const lethe_rows *drop)
{
    out->row = malloc(sizeof(long) * (size_t)(from->n ? from->n : 1));
    out->n = 0;
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", from->n);
    long j = 0;
    for (long i = 0; i < from->n; i++) {
        while (j < drop->n && drop->row[j] < from->row[i])
            j++;
        if (j < drop->n && drop->row[j] == from->row[i])
            continue;
        out->row[out->n++] = from->row[i];
    }
    return LETHE_OK;
}

double lethe_id_uniform(uint64_t seed, uint64_t stream, uint64_t id)
{
    return (double)(lethe_rng_hash(seed, stream, id) >> 11) * 0x1.0p-53;
}
