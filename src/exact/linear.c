/* Linear models: what ridge and logistic share (settings, the ids a model
 * holds, dense algebra, prediction, files). See include/lethe/linear.h. */
#include "lethe/linear.h"
#include "linear_impl.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/progress.h"
#include "lethe/safetensors.h"
#include "lethe/task.h"

#define GRAM_BLOCK 256   /* rows converted to double at a time */
#define CHOL_RTOL 1e-14  /* a pivot under this fraction of its diagonal is singular */

const char *lethe_linear_kind_name(lethe_linear_kind kind)
{
    return kind == LETHE_LINEAR_RIDGE ? "ridge" : "logistic";
}

lethe_status lethe_linear_kind_parse(const char *name, lethe_linear_kind *out)
{
    if (!strcmp(name, "ridge"))
        *out = LETHE_LINEAR_RIDGE;
    else if (!strcmp(name, "logistic"))
        *out = LETHE_LINEAR_LOGISTIC;
    else
        return lethe_fail(LETHE_ERR_INVALID, "unknown linear model '%s'; use ridge or logistic",
                          name);
    return LETHE_OK;
}

void lethe_linear_defaults(lethe_linear_kind kind, lethe_linear_cfg *cfg)
{
    *cfg = (lethe_linear_cfg){.lambda = kind == LETHE_LINEAR_RIDGE ? 1.0 : 1e-2,
                              .guard = 1e-6,
                              .sigma = 1.0,
                              .eps = 1.0,
                              .delta = 1e-4,
                              .seed = 0};
}

static lethe_status check_cfg(lethe_linear_kind kind, const lethe_linear_cfg *c)
{
    if (kind == LETHE_LINEAR_RIDGE) {
        if (!(c->lambda >= 0 && c->lambda < 1e30))
            return lethe_fail(LETHE_ERR_INVALID, "ridge lambda %g must be 0 or more", c->lambda);
        if (!(c->guard > 0 && c->guard < 1))
            return lethe_fail(LETHE_ERR_INVALID, "ridge guard %g must be in (0, 1)", c->guard);
        return LETHE_OK;
    }
    if (!(c->lambda > 0 && c->lambda < 1e30))
        return lethe_fail(LETHE_ERR_INVALID,
                          "logistic lambda %g must be positive (the certificate needs a "
                          "strongly convex objective)", c->lambda);
    if (!(c->sigma >= 0 && c->sigma < 1e30))
        return lethe_fail(LETHE_ERR_INVALID, "sigma %g must be 0 or more", c->sigma);
    if (!(c->eps > 0 && c->eps < 1e30))
        return lethe_fail(LETHE_ERR_INVALID, "eps %g must be positive", c->eps);
    if (!(c->delta > 0 && c->delta < 1))
        return lethe_fail(LETHE_ERR_INVALID, "delta %g must be in (0, 1)", c->delta);
    return LETHE_OK;
}

/* ---- allocation ---- */

/* As lin_alloc; with zero = 0 the arrays are left uninitialised. */
static lethe_linear *alloc_arrays(lethe_linear_kind kind, const lethe_linear_cfg *cfg, int d,
                                  int k, int zero);

lethe_linear *lin_alloc(lethe_linear_kind kind, const lethe_linear_cfg *cfg, int d, int k)
{
    return alloc_arrays(kind, cfg, d, k, 1);
}

static void *array(size_t n, int zero)
{
    return zero ? calloc(n ? n : 1, sizeof(double)) : malloc((n ? n : 1) * sizeof(double));
}

static lethe_linear *alloc_arrays(lethe_linear_kind kind, const lethe_linear_cfg *cfg, int d,
                                  int k, int zero)
{
    lethe_linear *m = calloc(1, sizeof *m);
    if (!m) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->kind = kind, m->cfg = *cfg, m->d = d, m->p = d + 1, m->k = k;
    size_t pp = (size_t)m->p * (size_t)m->p, pk = (size_t)m->p * (size_t)k;
    m->theta = array(pk, zero);
    int ok = m->theta != NULL;
    if (kind == LETHE_LINEAR_RIDGE) {
        m->R = array(pp, zero);
        m->xty = array(pk, zero);
        ok = ok && m->R && m->xty;
    }
    if (!ok) {
        lethe_linear_free(m);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for a linear model of %d features", d);
        return NULL;
    }
    return m;
}

void lethe_linear_free(lethe_linear *m)
{
    if (!m)
        return;
    free(m->theta);
    free(m->R);
    free(m->xty);
    free(m->excluded);
    free(m->removed);
    free(m);
}

static uint64_t *ids_dup(const uint64_t *v, long n)
{
    uint64_t *c = malloc((size_t)(n > 0 ? n : 1) * sizeof *c);
    if (c && n)
        memcpy(c, v, (size_t)n * sizeof *c);
    return c;
}

/* A deep copy, or NULL (detail set). */
static lethe_linear *lin_clone(const lethe_linear *m)
{
    lethe_linear *c = alloc_arrays(m->kind, &m->cfg, m->d, m->k, 0);
    if (!c)
        return NULL;
    size_t pp = (size_t)m->p * (size_t)m->p, pk = (size_t)m->p * (size_t)m->k;
    memcpy(c->theta, m->theta, pk * sizeof *c->theta);
    if (m->R)
        memcpy(c->R, m->R, pp * sizeof *c->R);
    if (m->xty)
        memcpy(c->xty, m->xty, pk * sizeof *c->xty);
    c->n = m->n, c->beta = m->beta, c->retrains = m->retrains, c->requests = m->requests;
    memcpy(c->data_hash, m->data_hash, sizeof c->data_hash);
    c->excluded = ids_dup(m->excluded, m->n_excluded);
    c->removed = ids_dup(m->removed, m->n_removed);
    c->n_excluded = m->n_excluded, c->n_removed = m->n_removed;
    if (!c->excluded || !c->removed) {
        lethe_linear_free(c);
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return c;
}

/* ---- rows and ids ---- */

void lin_row(const lethe_dataset *ds, long row, double *x)
{
    const float *src = ds->x + (size_t)row * (size_t)ds->d;
    for (int j = 0; j < ds->d; j++)
        x[j] = src[j];
    x[ds->d] = 1.0;
}

/* Rows [lo, hi) of G from every block of rows: x~ x~^T weighted, summed in
 * row order. blk holds GRAM_BLOCK * p doubles. */
static void gram_rows(const lethe_dataset *ds, const long *rows, long n, const double *wt,
                      int p, double *G, int lo, int hi, double *blk)
{
    for (long r0 = 0; r0 < n; r0 += GRAM_BLOCK) {
        int B = (int)(n - r0 < GRAM_BLOCK ? n - r0 : GRAM_BLOCK);
        for (int b = 0; b < B; b++)
            lin_row(ds, rows ? rows[r0 + b] : r0 + b, blk + (size_t)b * (size_t)p);
        for (int i = lo; i < hi; i++) {
            double *gi = G + (size_t)i * (size_t)p;
            for (int b = 0; b < B; b++) {
                const double *x = blk + (size_t)b * (size_t)p;
                double xi = wt ? wt[r0 + b] * x[i] : x[i];
                if (xi == 0)
                    continue;
                for (int j = i; j < p; j++)
                    gi[j] += xi * x[j];
            }
        }
    }
}

/* The first row of band t of T: bands split G's upper triangle, where row i
 * holds p - i entries, into near-equal shares. */
static int band_start(int p, int t, int T)
{
    if (t >= T)
        return p;
    double target = 0.5 * p * (p + 1.0) * t / T, cum = 0;
    int i = 0;
    while (i < p && cum < target)
        cum += p - i++;
    return i;
}

lethe_status lin_gram(const lethe_dataset *ds, const long *rows, long n, const double *wt,
                      int p, double *G)
{
    LETHE_ASSERT(p == ds->d + 1);
    memset(G, 0, (size_t)p * (size_t)p * sizeof *G);
    int fail = 0;
    /* Each thread owns a band of G's rows, holding an equal share of the
     * upper triangle, and converts the blocks itself: no barriers, and
     * every entry is summed in row order whatever the thread count. */
#pragma omp parallel if (p >= 48 && n >= 4 * GRAM_BLOCK) reduction(| : fail)
    {
        int T = 1, t = 0;
#ifdef _OPENMP
        T = omp_get_num_threads(), t = omp_get_thread_num();
#endif
        int lo = band_start(p, t, T), hi = band_start(p, t + 1, T);
        double *blk = lo < hi ? malloc((size_t)GRAM_BLOCK * (size_t)p * sizeof *blk) : NULL;
        if (lo < hi && !blk)
            fail = 1;
        else if (lo < hi)
            gram_rows(ds, rows, n, wt, p, G, lo, hi, blk);
        free(blk);
    }
    return fail ? lethe_fail(LETHE_ERR_NOMEM, "out of memory") : LETHE_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int has_id(const uint64_t *v, long n, uint64_t id)
{
    long lo = 0, hi = n;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (v[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == id;
}

lethe_status lethe_linear_held(const lethe_linear *m, const lethe_dataset *ds, lethe_rows *out)
{
    *out = (lethe_rows){0};
    if (ds->d != m->d)
        return lethe_fail(LETHE_ERR_FORMAT, "%s has %d features; the model was fitted on %d",
                          ds->name, ds->d, m->d);
    out->row = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *out->row);
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; i < ds->n; i++)
        if (!has_id(m->excluded, m->n_excluded, ds->ids[i]) &&
            !has_id(m->removed, m->n_removed, ds->ids[i]))
            out->row[out->n++] = i;
    if (out->n != m->n) {
        long got = out->n;
        lethe_rows_free(out);
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: %ld samples would be held by the model, which holds %ld; "
                          "this is not the data set it was fitted on", ds->name, got, m->n);
    }
    return LETHE_OK;
}

/* ---- fitting ---- */

static lethe_status check_data(lethe_linear_kind kind, const lethe_dataset *ds)
{
    if (kind == LETHE_LINEAR_RIDGE && ds->task != LETHE_TASK_REGRESS)
        return lethe_fail(LETHE_ERR_INVALID,
                          "ridge regression needs a regression task; %s is a classification "
                          "task (fit the logistic model on two classes)", ds->name);
    if (kind == LETHE_LINEAR_LOGISTIC &&
        (ds->task != LETHE_TASK_CLASSIFY || ds->n_classes != 2))
        return lethe_fail(LETHE_ERR_INVALID,
                          "logistic regression needs a two-class task; %s %s", ds->name,
                          ds->task == LETHE_TASK_CLASSIFY ? "has more than two classes"
                                                          : "is a regression task (fit "
                                                            "the ridge model)");
    return LETHE_OK;
}

/* Fit on rows (ascending) with `retrains` keying the logistic noise; the
 * data set's hash is computed unless `hash` gives it. */
static lethe_status fit_rows(lethe_linear_kind kind, const lethe_linear_cfg *cfg, long retrains,
                             const lethe_dataset *ds, const lethe_rows *rows, const char *hash,
                             lethe_linear **out)
{
    *out = NULL;
    lethe_status st = check_cfg(kind, cfg);
    if (st == LETHE_OK)
        st = check_data(kind, ds);
    if (st != LETHE_OK)
        return st;
    if (rows->n < 1)
        return lethe_fail(LETHE_ERR_INVALID, "no samples to fit on");
    for (long i = 0; i < rows->n; i++)
        if (rows->row[i] < 0 || rows->row[i] >= ds->n || (i && rows->row[i] <= rows->row[i - 1]))
            return lethe_fail(LETHE_ERR_INVALID, "fit rows must be distinct rows of %s, ascending",
                              ds->name);
    lethe_linear *m =
        lin_alloc(kind, cfg, ds->d, kind == LETHE_LINEAR_RIDGE ? ds->n_targets : 1);
    if (!m)
        return LETHE_ERR_NOMEM;
    m->n = rows->n, m->retrains = retrains;
    if (hash)
        memcpy(m->data_hash, hash, sizeof m->data_hash);
    else
        lethe_rows_hash(ds, NULL, m->data_hash);
    m->n_excluded = ds->n - rows->n;
    m->excluded = malloc((size_t)(m->n_excluded > 0 ? m->n_excluded : 1) * sizeof *m->excluded);
    m->removed = malloc(sizeof *m->removed);
    if (!m->excluded || !m->removed) {
        lethe_linear_free(m);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    long e = 0, j = 0;
    for (long i = 0; i < ds->n; i++) {
        if (j < rows->n && rows->row[j] == i)
            j++;
        else
            m->excluded[e++] = ds->ids[i];
    }
    qsort(m->excluded, (size_t)e, sizeof *m->excluded, cmp_u64);
    st = kind == LETHE_LINEAR_RIDGE ? lin_ridge_fit(m, ds, rows) : lin_logistic_fit(m, ds, rows);
    if (st != LETHE_OK) {
        lethe_linear_free(m);
        return st;
    }
    *out = m;
    return LETHE_OK;
}

lethe_status lethe_linear_fit(lethe_linear_kind kind, const lethe_linear_cfg *cfg,
                              const lethe_dataset *ds, const lethe_rows *rows,
                              lethe_linear **out)
{
    lethe_rows all = {0};
    lethe_status st = LETHE_OK;
    *out = NULL;
    if (!rows && (st = lethe_rows_all(&all, ds->n)) == LETHE_OK)
        rows = &all;
    if (st == LETHE_OK)
        st = fit_rows(kind, cfg, 0, ds, rows, NULL, out);
    lethe_rows_free(&all);
    return st;
}

lethe_status lethe_linear_refit(const lethe_linear *m, const lethe_dataset *ds,
                                lethe_linear **out)
{
    lethe_rows held;
    *out = NULL;
    lethe_status st = lethe_linear_held(m, ds, &held);
    if (st == LETHE_OK)
        st = fit_rows(m->kind, &m->cfg, m->retrains, ds, &held, m->data_hash, out);
    lethe_rows_free(&held);
    return st;
}

double lethe_linear_budget(const lethe_linear *m)
{
    if (m->kind != LETHE_LINEAR_LOGISTIC)
        return 0;
    return m->cfg.sigma * m->cfg.eps / sqrt(2 * log(1.5 / m->cfg.delta));
}

/* ---- removal ---- */

/* Merge the ids of rows `drop` into m->removed (ascending). */
static lethe_status add_removed(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *drop)
{
    long n = m->n_removed + drop->n, k = drop->n;
    uint64_t *v = malloc((size_t)n * sizeof *v), *add = malloc((size_t)k * sizeof *add);
    if (!v || !add) {
        free(v);
        free(add);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (long i = 0; i < k; i++)
        add[i] = ds->ids[drop->row[i]];
    qsort(add, (size_t)k, sizeof *add, cmp_u64);
    long a = 0, b = 0, o = 0;
    while (a < m->n_removed || b < k)
        v[o++] = b == k || (a < m->n_removed && m->removed[a] < add[b]) ? m->removed[a++]
                                                                      : add[b++];
    free(add);
    free(m->removed);
    m->removed = v, m->n_removed = n;
    return LETHE_OK;
}

lethe_status lethe_linear_forget(lethe_linear *m, const lethe_dataset *ds,
                                 const lethe_rows *drop, lethe_linear_report *rep)
{
    lethe_linear_report r = {.min_pivot = 1, .beta = m->beta, .budget = lethe_linear_budget(m)};
    r.certified = m->kind == LETHE_LINEAR_LOGISTIC && m->beta <= r.budget;
    if (rep)
        *rep = r;
    lethe_status st = check_data(m->kind, ds);
    if (st != LETHE_OK)
        return st;
    if (ds->d != m->d)
        return lethe_fail(LETHE_ERR_INVALID, "%s has %d features; the model was fitted on %d",
                          ds->name, ds->d, m->d);
    if (ds->n != m->n + m->n_excluded + m->n_removed)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s has %ld samples; the model accounts for %ld (held, left out or "
                          "removed): not the data set it was fitted on", ds->name, ds->n,
                          m->n + m->n_excluded + m->n_removed);
    if (m->kind == LETHE_LINEAR_RIDGE && ds->n_targets != m->k)
        return lethe_fail(LETHE_ERR_INVALID, "%s has %d targets; the model predicts %d",
                          ds->name, ds->n_targets, m->k);
    for (long i = 0; i < drop->n; i++) {
        long row = drop->row[i];
        if (row < 0 || row >= ds->n || (i && row <= drop->row[i - 1]))
            return lethe_fail(LETHE_ERR_INVALID, "rows to remove must be distinct rows of %s, "
                              "ascending", ds->name);
        unsigned long long id = ds->ids[row];
        if (has_id(m->removed, m->n_removed, ds->ids[row]))
            return lethe_fail(LETHE_ERR_INVALID, "id %llu was already removed from this model",
                              id);
        if (has_id(m->excluded, m->n_excluded, ds->ids[row]))
            return lethe_fail(LETHE_ERR_INVALID,
                              "id %llu is not in this model: it was left out when the model "
                              "was fitted", id);
    }
    if (drop->n == 0)
        return LETHE_OK;
    if (drop->n >= m->n)
        return lethe_fail(LETHE_ERR_INVALID,
                          "removing %ld samples would leave the model with none (it holds %ld)",
                          drop->n, m->n);
    double t0 = lethe_now();
    lethe_linear *c = lin_clone(m);
    if (!c)
        return LETHE_ERR_NOMEM;
    st = m->kind == LETHE_LINEAR_RIDGE ? lin_ridge_forget(c, ds, drop, &r)
                                       : lin_logistic_forget(c, ds, drop, &r);
    if (st == LETHE_OK)
        st = add_removed(c, ds, drop);
    if (st != LETHE_OK) {
        lethe_linear_free(c);
        return st;
    }
    c->n -= drop->n;
    c->requests++;
    lethe_linear tmp = *m; /* swap the contents; the old ones are freed with c */
    *m = *c;
    *c = tmp;
    lethe_linear_free(c);
    r.seconds = lethe_now() - t0;
    r.removed = drop->n;
    r.beta = m->beta;
    r.certified = m->kind == LETHE_LINEAR_LOGISTIC && m->beta <= r.budget;
    if (rep)
        *rep = r;
    return LETHE_OK;
}

/* ---- prediction ---- */

void lethe_linear_predict(const lethe_linear *m, const float *x, long n, double *out)
{
    for (long i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * (size_t)m->d;
        for (int t = 0; t < m->k; t++) {
            double s = m->theta[(size_t)m->d * (size_t)m->k + (size_t)t];
            for (int j = 0; j < m->d; j++)
                s += xi[j] * m->theta[(size_t)j * (size_t)m->k + (size_t)t];
            out[(size_t)i * (size_t)m->k + (size_t)t] = s;
        }
    }
}

void lethe_linear_score(const lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows,
                        lethe_linear_scores *out)
{
    long n = rows ? rows->n : ds->n;
    *out = (lethe_linear_scores){n, NAN, NAN, NAN};
    if (n == 0 || ds->d != m->d)
        return;
    long correct = 0;
    double l1 = 0, mse = 0, pred[64];
    int k = m->k <= 64 ? m->k : 64;
    for (long i = 0; i < n; i++) {
        long r = rows ? rows->row[i] : i;
        if (m->kind == LETHE_LINEAR_LOGISTIC) {
            lethe_linear_predict(m, ds->x + (size_t)r * (size_t)ds->d, 1, pred);
            correct += (pred[0] > 0) == (ds->y[r] == 1);
            continue;
        }
        for (int t = 0; t < k; t++) {
            double s = m->theta[(size_t)m->d * (size_t)m->k + (size_t)t];
            for (int j = 0; j < m->d; j++)
                s += ds->x[(size_t)r * (size_t)ds->d + (size_t)j] *
                     m->theta[(size_t)j * (size_t)m->k + (size_t)t];
            double e = (s - ds->t[(size_t)r * (size_t)ds->n_targets + (size_t)t]) * ds->t_scale;
            l1 += fabs(e), mse += e * e;
        }
    }
    if (m->kind == LETHE_LINEAR_LOGISTIC) {
        out->accuracy = 100.0 * (double)correct / (double)n;
    } else {
        out->l1 = l1 / ((double)n * k);
        out->mse = mse / ((double)n * k);
    }
}

/* ---- dense helpers ---- */

int lethe_chol_factor(double *A, int p)
{
    /* The lower triangle is free storage: keep each original diagonal in
     * column 0 so a pivot can be judged against it. */
    for (int j = 1; j < p; j++)
        A[(size_t)j * (size_t)p] = A[(size_t)j * (size_t)p + (size_t)j];
    for (int j = 0; j < p; j++) {
        double *rj = A + (size_t)j * (size_t)p;
        double orig = rj[0], piv = rj[j]; /* for j = 0 the pivot is the original */
        if (!(piv > 0) || !(piv > CHOL_RTOL * orig) || !isfinite(piv))
            return -1;
        double r = sqrt(piv);
        rj[j] = r;
        for (int c = j + 1; c < p; c++)
            rj[c] /= r;
        for (int i = j + 1; i < p; i++) {
            double a = rj[i];
            double *ri = A + (size_t)i * (size_t)p;
            for (int c = i; c < p; c++)
                ri[c] -= a * rj[c];
        }
        for (int c = 0; c < j; c++)
            rj[c] = 0;
    }
    return 0;
}

/* One right-hand side: the backward sweep as dot products in four
 * interleaved partial sums (a fixed order, so results are reproducible). */
static void chol_solve1(const double *R, int p, double *b)
{
    for (int i = 0; i < p; i++) {
        const double *ri = R + (size_t)i * (size_t)p;
        double bi = b[i] / ri[i];
        b[i] = bi;
        for (int j = i + 1; j < p; j++)
            b[j] -= ri[j] * bi;
    }
    for (int i = p - 1; i >= 0; i--) {
        const double *ri = R + (size_t)i * (size_t)p;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int j = i + 1;
        for (; j + 3 < p; j += 4) {
            s0 += ri[j] * b[j];
            s1 += ri[j + 1] * b[j + 1];
            s2 += ri[j + 2] * b[j + 2];
            s3 += ri[j + 3] * b[j + 3];
        }
        for (; j < p; j++)
            s0 += ri[j] * b[j];
        b[i] = (b[i] - ((s0 + s1) + (s2 + s3))) / ri[i];
    }
}

void lethe_chol_solve(const double *R, int p, double *B, int k)
{
    if (k == 1) {
        chol_solve1(R, p, B);
        return;
    }
    /* R^T y = B, forward */
    for (int i = 0; i < p; i++) {
        const double *ri = R + (size_t)i * (size_t)p;
        double *bi = B + (size_t)i * (size_t)k;
        for (int t = 0; t < k; t++)
            bi[t] /= ri[i];
        for (int j = i + 1; j < p; j++) {
            double *bj = B + (size_t)j * (size_t)k;
            for (int t = 0; t < k; t++)
                bj[t] -= ri[j] * bi[t];
        }
    }
    /* R x = y, backward */
    for (int i = p - 1; i >= 0; i--) {
        const double *ri = R + (size_t)i * (size_t)p;
        double *bi = B + (size_t)i * (size_t)k;
        for (int j = i + 1; j < p; j++) {
            const double *bj = B + (size_t)j * (size_t)k;
            for (int t = 0; t < k; t++)
                bi[t] -= ri[j] * bj[t];
        }
        for (int t = 0; t < k; t++)
            bi[t] /= ri[i];
    }
}

int lethe_chol_downdate(double *R, int p, const double *x, double guard, double *pivot,
                        double *work)
{
    double *a = work, *c = work + p, *s = work + 2 * p;
    /* a = R^-T x; then h = ||a||^2 = x^T A^-1 x */
    memcpy(a, x, (size_t)p * sizeof *a);
    for (int i = 0; i < p; i++) {
        const double *ri = R + (size_t)i * (size_t)p;
        a[i] /= ri[i];
        for (int j = i + 1; j < p; j++)
            a[j] -= ri[j] * a[i];
    }
    double h = 0;
    for (int i = 0; i < p; i++)
        h += a[i] * a[i];
    double piv = 1 - h;
    if (pivot)
        *pivot = piv;
    if (!(piv >= guard))
        return -1;
    /* Rotations that carry (alpha, a) onto (1, 0), last coordinate first. */
    double alpha = sqrt(piv);
    for (int i = p - 1; i >= 0; i--) {
        double scale = alpha + fabs(a[i]);
        double ca = alpha / scale, cb = a[i] / scale, nrm = sqrt(ca * ca + cb * cb);
        c[i] = ca / nrm;
        s[i] = cb / nrm;
        alpha = scale * nrm;
    }
    /* Apply them to R bottom row first, carrying one value per column (in
     * a, no longer needed): column j sees rotations j, j-1, ..., 0 in turn,
     * as in LINPACK, but the sweep runs along rows of the row-major R. */
    double *xx = a;
    memset(xx, 0, (size_t)p * sizeof *xx);
    for (int i = p - 1; i >= 0; i--) {
        double *ri = R + (size_t)i * (size_t)p, ci = c[i], si = s[i];
        for (int j = i; j < p; j++) {
            double t = ci * xx[j] + si * ri[j];
            ri[j] = ci * ri[j] - si * xx[j];
            xx[j] = t;
        }
    }
    return 0;
}

double lethe_sym_max_eig(const double *G, int p, double *work)
{
    double *C = work, *v = work + (size_t)p * (size_t)p, *u = v + p;
    double trace = 0;
    for (int i = 0; i < p; i++)
        trace += G[(size_t)i * (size_t)p + (size_t)i];
    if (!(trace > 0))
        return 0;
    for (int i = 0; i < p; i++)
        v[i] = 1 / sqrt((double)p);
    double mu = 0;
    for (int it = 0; it < 1000; it++) {
        for (int i = 0; i < p; i++) {
            double t = 0;
            for (int j = 0; j < p; j++)
                t += (i <= j ? G[(size_t)i * (size_t)p + (size_t)j]
                             : G[(size_t)j * (size_t)p + (size_t)i]) * v[j];
            u[i] = t;
        }
        double dot = 0, nrm = 0;
        for (int i = 0; i < p; i++)
            dot += v[i] * u[i], nrm += u[i] * u[i];
        nrm = sqrt(nrm);
        if (!(nrm > 0))
            break;
        for (int i = 0; i < p; i++)
            v[i] = u[i] / nrm;
        int done = it > 0 && fabs(dot - mu) <= 1e-13 * dot;
        mu = dot;
        if (done)
            break;
    }
    /* Certify s: s I - G positive definite means every eigenvalue is below s. */
    for (double margin = 1e-9; margin < 1; margin *= 10) {
        double s = mu * (1 + margin) + margin * trace / p;
        if (s >= trace)
            break;
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++)
                C[(size_t)i * (size_t)p + (size_t)j] =
                    i <= j ? (i == j ? s : 0) - G[(size_t)i * (size_t)p + (size_t)j] : 0;
        if (lethe_chol_factor(C, p) == 0)
            return s;
    }
    return trace; /* the sum of the eigenvalues bounds the largest */
}

/* ---- files ---- */

/* v split into hi + lo, each a float: hi[i] + lo[i] restores v[i] to about
 * 2^-48 relative. LETHE_ERR_INVALID when v[i] is beyond the float range. */
static lethe_status split_f64(const double *v, size_t n, float *hi, float *lo, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        hi[i] = (float)v[i];
        lo[i] = (float)(v[i] - (double)hi[i]);
        if (!isfinite(hi[i]) || !isfinite(lo[i]))
            return lethe_fail(LETHE_ERR_INVALID, "%s[%zu] = %g cannot be stored as floats",
                              name, i, v[i]);
    }
    return LETHE_OK;
}

/* "1,5,17" from ids; a new string (free it) or NULL. */
static char *ids_string(const uint64_t *v, long n)
{
    size_t cap = (size_t)n * 21 + 1, used = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = 0;
    for (long i = 0; i < n; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s%llu", i ? "," : "",
                                 (unsigned long long)v[i]);
    return s;
}

lethe_status lethe_linear_save(const lethe_linear *m, const char *path,
                               const char *const *meta_kv, size_t n_meta)
{
    enum { T_THETA, T_CHOL, T_XTY, T_N };
    const char *names[T_N] = {"linear.theta", "linear.chol", "linear.xty"};
    const double *src[T_N] = {m->theta, m->R, m->xty};
    size_t shp[T_N][2] = {{(size_t)m->p, (size_t)m->k},
                          {(size_t)m->p, (size_t)m->p},
                          {(size_t)m->p, (size_t)m->k}};
    int kout = m->kind == LETHE_LINEAR_RIDGE ? m->k : 2;
    size_t wshape[2] = {(size_t)kout, (size_t)m->d}, bshape = (size_t)kout;
    lethe_st_f32 t[2 + 2 * T_N];
    char tname[2 * T_N][32];
    float *buf[2 * T_N] = {0};
    float *W = calloc((size_t)kout * (size_t)m->d + 1, sizeof *W);
    float *bias = calloc((size_t)kout, sizeof *bias);
    char *excl = ids_string(m->excluded, m->n_excluded);
    char *rem = ids_string(m->removed, m->n_removed);
    lethe_st_meta *meta = calloc(n_meta + 20, sizeof *meta);
    lethe_status st = W && bias && excl && rem && meta ? LETHE_OK
                                                       : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t nt = 0;
    if (st == LETHE_OK) {
        /* The predictor as a one-layer net. */
        int off = m->kind == LETHE_LINEAR_RIDGE ? 0 : 1;
        for (int o = 0; o < m->k; o++) {
            for (int j = 0; j < m->d; j++)
                W[(size_t)(o + off) * (size_t)m->d + (size_t)j] =
                    (float)m->theta[(size_t)j * (size_t)m->k + (size_t)o];
            bias[o + off] = (float)m->theta[(size_t)m->d * (size_t)m->k + (size_t)o];
        }
        t[nt++] = (lethe_st_f32){"layers.0.weight", 2, wshape, W};
        t[nt++] = (lethe_st_f32){"layers.0.bias", 1, &bshape, bias};
    }
    for (int i = 0; st == LETHE_OK && i < T_N; i++) {
        if (!src[i])
            continue;
        size_t n = shp[i][0] * shp[i][1];
        float *hi = malloc(n * sizeof *hi), *lo = malloc(n * sizeof *lo);
        buf[2 * i] = hi, buf[2 * i + 1] = lo;
        if (!hi || !lo) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            break;
        }
        st = split_f64(src[i], n, hi, lo, names[i]);
        snprintf(tname[2 * i], sizeof tname[0], "%s.hi", names[i]);
        snprintf(tname[2 * i + 1], sizeof tname[0], "%s.lo", names[i]);
        t[nt++] = (lethe_st_f32){tname[2 * i], 2, shp[i], hi};
        t[nt++] = (lethe_st_f32){tname[2 * i + 1], 2, shp[i], lo};
    }
    char num[12][32], spec[64];
    size_t nm = 0;
    if (st == LETHE_OK) {
        snprintf(spec, sizeof spec, "in=%d;linear=%d", m->d, kout);
        snprintf(num[0], sizeof num[0], "%.17g", m->cfg.lambda);
        snprintf(num[1], sizeof num[1], "%d", m->d);
        snprintf(num[2], sizeof num[2], "%d", m->k);
        snprintf(num[3], sizeof num[3], "%ld", m->n);
        snprintf(num[4], sizeof num[4], "%ld", m->requests);
        meta[nm++] = (lethe_st_meta){"kind", (char *)lethe_linear_kind_name(m->kind)};
        meta[nm++] = (lethe_st_meta){"spec", spec};
        meta[nm++] = (lethe_st_meta){"lambda", num[0]};
        meta[nm++] = (lethe_st_meta){"d", num[1]};
        meta[nm++] = (lethe_st_meta){"k", num[2]};
        meta[nm++] = (lethe_st_meta){"n", num[3]};
        meta[nm++] = (lethe_st_meta){"requests", num[4]};
        meta[nm++] = (lethe_st_meta){"data_hash", (char *)m->data_hash};
        meta[nm++] = (lethe_st_meta){"excluded", excl};
        meta[nm++] = (lethe_st_meta){"removed", rem};
        if (m->kind == LETHE_LINEAR_RIDGE) {
            snprintf(num[5], sizeof num[5], "%.17g", m->cfg.guard);
            meta[nm++] = (lethe_st_meta){"guard", num[5]};
        } else {
            snprintf(num[5], sizeof num[5], "%.17g", m->cfg.sigma);
            snprintf(num[6], sizeof num[6], "%.17g", m->cfg.eps);
            snprintf(num[7], sizeof num[7], "%.17g", m->cfg.delta);
            snprintf(num[8], sizeof num[8], "%.17g", m->beta);
            snprintf(num[9], sizeof num[9], "%ld", m->retrains);
            meta[nm++] = (lethe_st_meta){"sigma", num[5]};
            meta[nm++] = (lethe_st_meta){"eps", num[6]};
            meta[nm++] = (lethe_st_meta){"delta", num[7]};
            meta[nm++] = (lethe_st_meta){"beta", num[8]};
            meta[nm++] = (lethe_st_meta){"retrains", num[9]};
        }
        for (size_t i = 0; i < n_meta; i++)
            meta[nm++] = (lethe_st_meta){(char *)meta_kv[2 * i], (char *)meta_kv[2 * i + 1]};
        st = lethe_safetensors_write(path, t, nt, meta, nm);
    }
    for (int i = 0; i < 2 * T_N; i++)
        free(buf[i]);
    free(W);
    free(bias);
    free(excl);
    free(rem);
    free(meta);
    return st;
}

static lethe_status meta_num(const lethe_safetensors *st, const char *key, double *out)
{
    const char *v = lethe_safetensors_meta(st, key);
    char *end;
    if (!v)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no \"%s\" in the metadata", st->name, key);
    errno = 0;
    *out = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(*out))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata \"%s\" = '%s' is not a number",
                          st->name, key, v);
    return LETHE_OK;
}

static lethe_status meta_long(const lethe_safetensors *st, const char *key, long lo, long hi,
                              long *out)
{
    double v = 0;
    lethe_status s = meta_num(st, key, &v);
    if (s == LETHE_OK && (v != floor(v) || v < (double)lo || v > (double)hi))
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: metadata \"%s\" = %g is not a whole number "
                       "%ld-%ld", st->name, key, v, lo, hi);
    if (s == LETHE_OK)
        *out = (long)v;
    return s;
}

/* Parse "1,5,17" (ascending) into a new array. */
static lethe_status meta_ids(const lethe_safetensors *st, const char *key, uint64_t **out,
                             long *n)
{
    const char *v = lethe_safetensors_meta(st, key);
    *out = NULL, *n = 0;
    if (!v)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no \"%s\" in the metadata", st->name, key);
    long cap = 1;
    for (const char *c = v; *c; c++)
        cap += *c == ',';
    uint64_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    long k = 0;
    const char *c = v;
    while (*c) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(c, &end, 10);
        if (end == c || errno || *c == '-' || (*end && *end != ',') ||
            (k && id <= ids[k - 1])) {
            free(ids);
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: metadata \"%s\" is not a list of ascending ids near '%.20s'",
                              st->name, key, c);
        }
        ids[k++] = id;
        c = *end ? end + 1 : end;
    }
    *out = ids, *n = k;
    return LETHE_OK;
}

/* Read NAME.hi + NAME.lo of shape (r, c) into v. */
static lethe_status load_f64(const lethe_safetensors *st, const char *name, size_t r, size_t c,
                             double *v)
{
    size_t shape[2] = {r, c}, n = r * c;
    char hname[64], lname[64];
    snprintf(hname, sizeof hname, "%s.hi", name);
    snprintf(lname, sizeof lname, "%s.lo", name);
    float *hi = malloc((n ? n : 1) * sizeof *hi), *lo = malloc((n ? n : 1) * sizeof *lo);
    lethe_status s = hi && lo ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (s == LETHE_OK)
        s = lethe_safetensors_load_f32(st, hname, 2, shape, hi);
    if (s == LETHE_OK)
        s = lethe_safetensors_load_f32(st, lname, 2, shape, lo);
    if (s == LETHE_ERR_NOT_FOUND)
        s = lethe_fail(LETHE_ERR_FORMAT, "%s", lethe_error_detail());
    for (size_t i = 0; s == LETHE_OK && i < n; i++)
        v[i] = (double)hi[i] + (double)lo[i];
    free(hi);
    free(lo);
    return s;
}

lethe_status lethe_linear_load(const char *path, uint64_t seed, lethe_linear **out)
{
    lethe_safetensors *st;
    lethe_linear *m = NULL;
    *out = NULL;
    lethe_status s = lethe_safetensors_open(path, &st);
    if (s != LETHE_OK)
        return s;
    const char *kind = lethe_safetensors_meta(st, "kind");
    lethe_linear_kind k;
    lethe_linear_cfg cfg;
    if (!kind || lethe_linear_kind_parse(kind, &k) != LETHE_OK) {
        const char *spec = lethe_safetensors_meta(st, "spec");
        s = lethe_fail(LETHE_ERR_UNSUPPORTED,
                       "%s: not a ridge or logistic model (%s%s%s); exact removal works on "
                       "runs made by 'lethe fit'", path, spec ? "architecture '" : "no kind",
                       spec ? spec : "", spec ? "'" : "");
        goto done;
    }
    lethe_linear_defaults(k, &cfg);
    cfg.seed = seed;
    long d = 0, nk = 0, n = 0, requests = 0, retrains = 0;
    if ((s = meta_long(st, "d", 1, 1L << 24, &d)) != LETHE_OK ||
        (s = meta_long(st, "k", 1, 1L << 16, &nk)) != LETHE_OK ||
        (s = meta_long(st, "n", 1, 1L << 50, &n)) != LETHE_OK ||
        (s = meta_long(st, "requests", 0, 1L << 50, &requests)) != LETHE_OK ||
        (s = meta_num(st, "lambda", &cfg.lambda)) != LETHE_OK)
        goto done;
    if (k == LETHE_LINEAR_RIDGE)
        s = meta_num(st, "guard", &cfg.guard);
    else if ((s = meta_num(st, "sigma", &cfg.sigma)) == LETHE_OK &&
             (s = meta_num(st, "eps", &cfg.eps)) == LETHE_OK &&
             (s = meta_num(st, "delta", &cfg.delta)) == LETHE_OK)
        s = meta_long(st, "retrains", 0, 1L << 50, &retrains);
    if (s == LETHE_OK && (s = check_cfg(k, &cfg)) != LETHE_OK)
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: %s", path, lethe_error_detail());
    if (s == LETHE_OK && k == LETHE_LINEAR_LOGISTIC && nk != 1)
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: a logistic model has one output, not %ld", path,
                       nk);
    if (s != LETHE_OK)
        goto done;
    if (!(m = lin_alloc(k, &cfg, (int)d, (int)nk))) {
        s = LETHE_ERR_NOMEM;
        goto done;
    }
    m->n = n, m->requests = requests, m->retrains = retrains;
    const char *hash = lethe_safetensors_meta(st, "data_hash");
    if (!hash || strlen(hash) != 16) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: metadata \"data_hash\" missing or malformed", path);
        goto done;
    }
    memcpy(m->data_hash, hash, 17);
    if (k == LETHE_LINEAR_LOGISTIC && (s = meta_num(st, "beta", &m->beta)) != LETHE_OK)
        goto done;
    if ((s = meta_ids(st, "excluded", &m->excluded, &m->n_excluded)) != LETHE_OK ||
        (s = meta_ids(st, "removed", &m->removed, &m->n_removed)) != LETHE_OK)
        goto done;
    size_t p = (size_t)m->p;
    s = load_f64(st, "linear.theta", p, (size_t)nk, m->theta);
    if (s == LETHE_OK && k == LETHE_LINEAR_RIDGE)
        s = load_f64(st, "linear.chol", p, p, m->R);
    if (s == LETHE_OK && k == LETHE_LINEAR_RIDGE)
        s = load_f64(st, "linear.xty", p, (size_t)nk, m->xty);
    for (size_t i = 0; s == LETHE_OK && m->R && i < p; i++)
        for (size_t j = 0; j <= i && s == LETHE_OK; j++) {
            double v = m->R[i * p + j];
            if (j == i ? !(v > 0) : v != 0)
                s = lethe_fail(LETHE_ERR_FORMAT, "%s: linear.chol is not an upper-triangular "
                               "factor with a positive diagonal", path);
        }
done:
    lethe_safetensors_free(st);
    if (s != LETHE_OK) {
        lethe_linear_free(m);
        return s;
    }
    *out = m;
    return LETHE_OK;
}
