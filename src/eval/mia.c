/* The membership attack of the evaluation suites (docs/metrics.md): one
 * feature per sample (a softmax confidence or entropy, or an L1 loss), keyed
 * subsamples of members and non-members, and the support vector classifier
 * of svc.c trained on them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/mem.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

#define STREAM_SUBSAMPLE 0x5ab5a3ull

/* ---------------------------------------------------------------- features */

lethe_status lethe_mia_feature_parse(const char *name, lethe_mia_feature *out)
{
    static const char *const names[] = {"confidence", "entropy", "l1"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (lethe_mia_feature)i;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID,
                      "unknown attack feature '%s' (confidence, entropy or l1)", name);
}

const char *lethe_mia_feature_name(lethe_mia_feature f)
{
    return f == LETHE_MIA_CONFIDENCE ? "confidence" : f == LETHE_MIA_ENTROPY ? "entropy" : "l1";
}

lethe_status lethe_mia_features(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                lethe_mia_feature f, double *out)
{
    int classify = ds->task == LETHE_TASK_CLASSIFY;
    if (classify != (f != LETHE_MIA_L1))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the '%s' attack feature needs a %s", ds->name,
                          lethe_mia_feature_name(f), classify ? "regressor" : "classifier");
    long n = rows ? rows->n : ds->n, k = net->n_out;
    float *o = lethe_calloc((size_t)(n ? n : 1) * (size_t)k, sizeof(float));
    if (!o)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld outputs", n);
    lethe_status st = lethe_eval_outputs(net, ds, rows, o);
    for (long i = 0; st == LETHE_OK && i < n; i++) {
        long r = rows ? rows->row[i] : i;
        const float *z = o + i * k;
        if (!classify) {
            double s = 0;
            for (long j = 0; j < k; j++)
                s += fabs((double)z[j] - (double)ds->t[r * ds->n_targets + j]);
            out[i] = s / (double)k;
            continue;
        }
        double mx = z[0], sum = 0, ent = 0;
        for (long j = 1; j < k; j++)
            mx = fmax(mx, z[j]);
        for (long j = 0; j < k; j++)
            sum += exp(z[j] - mx);
        for (long j = 0; j < k; j++) {
            double p = exp(z[j] - mx) / sum;
            if (p > 0)
                ent -= p * log(p);
        }
        out[i] = f == LETHE_MIA_ENTROPY ? ent : exp(z[ds->y[r]] - mx) / sum;
    }
    lethe_free(o);
    return st;
}

/* --------------------------------------------------------------- subsample */

struct keyed {
    uint64_t key;
    long row;
};

static int by_key(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int by_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

lethe_status lethe_eval_subsample(const lethe_dataset *ds, const lethe_rows *from, long cap,
                                  uint64_t seed, lethe_rows *out)
{
    long n = from->n, keep = cap > 0 && cap < n ? cap : n;
    out->n = 0;
    out->row = malloc(sizeof(long) * (size_t)(keep ? keep : 1));
    struct keyed *k = keep < n ? malloc(sizeof *k * (size_t)n) : NULL;
    if (!out->row || (keep < n && !k)) {
        free(out->row);
        free(k);
        out->row = NULL;
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", n);
    }
    if (keep == n) {
        memcpy(out->row, from->row, sizeof(long) * (size_t)n);
    } else {
        for (long i = 0; i < n; i++) {
            k[i].key = lethe_rng_hash(seed, STREAM_SUBSAMPLE, ds->ids[from->row[i]]);
            k[i].row = from->row[i];
        }
        qsort(k, (size_t)n, sizeof *k, by_key);
        for (long i = 0; i < keep; i++)
            out->row[i] = k[i].row;
        qsort(out->row, (size_t)keep, sizeof(long), by_long);
    }
    out->n = keep;
    free(k);
    return LETHE_OK;
}

/* ------------------------------------------------------------------ attack */

void lethe_mia_defaults(lethe_mia_cfg *cfg)
{
    cfg->feature = LETHE_MIA_CONFIDENCE;
    cfg->cap = 2000;
    cfg->seed = 0;
    cfg->sampling = LETHE_MIA_SAMPLE_BALANCED;
    lethe_svc_defaults(&cfg->svc);
}

lethe_status lethe_mia_sampling_parse(const char *name, lethe_mia_sampling *out)
{
    if (!strcmp(name, "balanced") || !strcmp(name, "salun")) {
        *out = name[0] == 'b' ? LETHE_MIA_SAMPLE_BALANCED : LETHE_MIA_SAMPLE_SALUN;
        return LETHE_OK;
    }
    return lethe_fail(LETHE_ERR_INVALID, "unknown attack sampling '%s' (balanced or salun)",
                      name);
}

const char *lethe_mia_sampling_name(lethe_mia_sampling s)
{
    return s == LETHE_MIA_SAMPLE_SALUN ? "salun" : "balanced";
}

lethe_status lethe_mia_rows(const lethe_dataset *train, const lethe_rows *retain,
                            const lethe_dataset *test, const lethe_mia_cfg *cfg,
                            lethe_rows *members, lethe_rows *nonmembers)
{
    lethe_rows all_test = {0}, first = {0};
    *members = *nonmembers = (lethe_rows){0};
    lethe_status st = lethe_rows_all(&all_test, test->n);
    if (st != LETHE_OK)
        return st;
    long n = test->n < retain->n ? test->n : retain->n;
    if (cfg->sampling == LETHE_MIA_SAMPLE_SALUN) {
        /* a prefix of D_r: a subsample without a cap copies its rows */
        first = (lethe_rows){n, retain->row};
        st = lethe_eval_subsample(train, &first, 0, 0, members);
        *nonmembers = all_test;
        return st;
    }
    if (cfg->cap > 0 && cfg->cap < n)
        n = cfg->cap;
    if ((st = lethe_eval_subsample(train, retain, n, cfg->seed, members)) == LETHE_OK)
        st = lethe_eval_subsample(test, &all_test, n, cfg->seed, nonmembers);
    lethe_rows_free(&all_test);
    return st;
}

lethe_status lethe_mia_run(lethe_net *net, const lethe_dataset *train, const lethe_dataset *test,
                           const lethe_rows *members, const lethe_rows *nonmembers,
                           const lethe_rows *targets, const lethe_mia_cfg *cfg,
                           double *target_feat, double *member_i, double *decision_i,
                           double *rate)
{
    long nm = members->n, nn = nonmembers->n, nt = targets->n;
    double *fm = malloc(sizeof(double) * (size_t)(nm ? nm : 1));
    double *fn = malloc(sizeof(double) * (size_t)(nn ? nn : 1));
    double *ft = malloc(sizeof(double) * (size_t)(nt ? nt : 1));
    lethe_mia_result r = {0};
    lethe_status st = LETHE_OK;
    if (!fm || !fn || !ft)
        st = lethe_fail(LETHE_ERR_NOMEM, "membership attack: out of memory");
    if (st == LETHE_OK &&
        (st = lethe_mia_features(net, train, members, cfg->feature, fm)) == LETHE_OK &&
        (st = lethe_mia_features(net, test, nonmembers, cfg->feature, fn)) == LETHE_OK &&
        (st = lethe_mia_features(net, train, targets, cfg->feature, ft)) == LETHE_OK &&
        (st = lethe_mia_attack(fm, nm, fn, nn, ft, nt, &cfg->svc, &r)) == LETHE_OK) {
        *rate = r.member_rate;
        for (long i = 0; i < nt; i++) {
            if (target_feat)
                target_feat[i] = ft[i];
            if (member_i)
                member_i[i] = r.member[i] ? 100.0 : 0.0;
            if (decision_i)
                decision_i[i] = r.decision[i];
        }
    }
    lethe_mia_result_free(&r);
    free(fm);
    free(fn);
    free(ft);
    return st;
}

lethe_status lethe_mia_attack(const double *members, long n_members, const double *nonmembers,
                              long n_nonmembers, const double *targets, long n_targets,
                              const lethe_svc_cfg *cfg, lethe_mia_result *out)
{
    memset(out, 0, sizeof *out);
    double t0 = lethe_now();
    long n = n_members + n_nonmembers;
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int *y = malloc(sizeof(int) * (size_t)(n ? n : 1));
    out->decision = malloc(sizeof(double) * (size_t)(n_targets ? n_targets : 1));
    out->member = malloc(sizeof(int) * (size_t)(n_targets ? n_targets : 1));
    lethe_svc *m = NULL;
    lethe_status st = LETHE_OK;
    if (!x || !y || !out->decision || !out->member) {
        st = lethe_fail(LETHE_ERR_NOMEM, "membership attack: out of memory");
        goto done;
    }
    /* members first, then non-members; the fit groups by class anyway */
    memcpy(x, members, sizeof(double) * (size_t)n_members);
    memcpy(x + n_members, nonmembers, sizeof(double) * (size_t)n_nonmembers);
    for (long i = 0; i < n; i++)
        y[i] = i < n_members;
    if ((st = lethe_svc_fit(x, y, n, 1, cfg, &m)) != LETHE_OK)
        goto done;
    long hits = 0;
    for (long i = 0; i < n_targets; i++) {
        out->decision[i] = lethe_svc_decision(m, targets + i);
        out->member[i] = !(out->decision[i] < 0);
        hits += out->member[i];
    }
    out->member_rate = n_targets ? 100.0 * (double)hits / (double)n_targets : NAN;
    out->n_sv = m->n_sv;
    out->n_iter = m->n_iter;
done:
    lethe_svc_free(m);
    free(x);
    free(y);
    out->seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        lethe_mia_result_free(out);
    return st;
}

void lethe_mia_result_free(lethe_mia_result *r)
{
    free(r->decision);
    free(r->member);
    memset(r, 0, sizeof *r);
}
