/* The membership attack's classifier: an RBF support vector classifier
 * solved step for step as libsvm solves it inside scikit-learn's SVC (Fan,
 * Chen and Lin, "Working set selection using second order information for
 * training SVM", JMLR 6, 2005; Chang and Lin, "LIBSVM", ACM TIST 2011).
 *
 * Why step for step: the features (a softmax confidence, a loss) are one
 * number per sample with many ties, so the dual has many optima and the one
 * reached depends on the path. Following libsvm's order of operations (its
 * class grouping, working-set selection with ties going to the last index,
 * shrinking with index swaps, float kernel columns, the rho of the free
 * variables) reaches the same solution scikit-learn reaches. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"

#define TAU 1e-12

void lethe_svc_defaults(lethe_svc_cfg *cfg)
{
    cfg->C = 3.0;
    cfg->gamma = 0.0;
    cfg->tol = 1e-3;
    cfg->shrinking = 1;
    cfg->cache_mb = 200.0;
    cfg->max_iter = 0;
}

/* ------------------------------------------------------------ the Q matrix */

/* Q_ij = y_i y_j K(x_i, x_j) in float, as libsvm's Qfloat. Columns are kept
 * by original index, full length, in an LRU cache; the solver reads entry k
 * of the column at position i as col[active[i]][active[k]]. */
struct qmat {
    long l;
    int d;
    const double *x;     /* (l, d) grouped training data */
    const signed char *y;
    double *xsq;         /* (l) squared norms */
    double gamma;
    float **col;         /* (l) cached columns or NULL */
    long *prev, *next;   /* LRU list over cached columns; sentinel l */
    long budget, used;   /* columns */
};

/* libsvm's kernel_rbf: exp(-gamma (|x_i|^2 + |x_j|^2 - 2 x_i.x_j)). */
static double kernel_train(const struct qmat *q, long i, long j)
{
    const double *a = q->x + i * q->d, *b = q->x + j * q->d;
    double dot = 0;
    for (int k = 0; k < q->d; k++)
        dot += a[k] * b[k];
    return exp(-q->gamma * (q->xsq[i] + q->xsq[j] - 2 * dot));
}

static void lru_unlink(struct qmat *q, long o)
{
    q->next[q->prev[o]] = q->next[o];
    q->prev[q->next[o]] = q->prev[o];
}

static void lru_append(struct qmat *q, long o)
{
    long s = q->l;
    q->next[o] = s;
    q->prev[o] = q->prev[s];
    q->next[q->prev[s]] = o;
    q->prev[s] = o;
}

/* The column of original index o; NULL on out of memory. */
static const float *q_column(struct qmat *q, long o)
{
    if (q->col[o]) {
        lru_unlink(q, o);
        lru_append(q, o);
        return q->col[o];
    }
    float *c;
    if (q->used >= q->budget) { /* reuse the least recently used column */
        long old = q->next[q->l];
        lru_unlink(q, old);
        c = q->col[old];
        q->col[old] = NULL;
        q->used--;
    } else if (!(c = malloc(sizeof(float) * (size_t)q->l))) {
        return NULL;
    }
    for (long k = 0; k < q->l; k++)
        c[k] = (float)(q->y[o] * q->y[k] * kernel_train(q, o, k));
    q->col[o] = c;
    q->used++;
    lru_append(q, o);
    return c;
}

static void q_free(struct qmat *q)
{
    if (q->col)
        for (long o = 0; o < q->l; o++)
            free(q->col[o]);
    free(q->col);
    free(q->prev);
    free(q->next);
    free(q->xsq);
}

/* ------------------------------------------------------------- the solver */

enum { LOWER_BOUND, UPPER_BOUND, FREE };

/* libsvm's Solver for C-SVC with p = -1 and one C, in position space: every
 * per-variable array is indexed by the variable's current position, which
 * shrinking permutes; active[pos] is the original index. */
struct solver {
    struct qmat *q;
    long l, active_size;
    double C, eps;
    signed char *y;
    double *G, *G_bar, *alpha;
    char *status;
    long *active;
    int shrinking_on, unshrink;
    int oom;
};

static void update_status(struct solver *s, long i)
{
    s->status[i] = s->alpha[i] >= s->C ? UPPER_BOUND : s->alpha[i] <= 0 ? LOWER_BOUND : FREE;
}

#define IS_UPPER(s, i) ((s)->status[i] == UPPER_BOUND)
#define IS_LOWER(s, i) ((s)->status[i] == LOWER_BOUND)
#define IS_FREE(s, i) ((s)->status[i] == FREE)

/* Q entry (position i, position k) through a column of position i. */
#define QAT(col, s, k) ((col)[(s)->active[k]])

static const float *column_at(struct solver *s, long pos)
{
    const float *c = q_column(s->q, s->active[pos]);
    if (!c)
        s->oom = 1;
    return c;
}

static void swap_index(struct solver *s, long i, long j)
{
#define SWAP(T, a) do { T t_ = a[i]; a[i] = a[j]; a[j] = t_; } while (0)
    SWAP(signed char, s->y);
    SWAP(double, s->G);
    SWAP(char, s->status);
    SWAP(double, s->alpha);
    SWAP(long, s->active);
    SWAP(double, s->G_bar);
#undef SWAP
}

static void reconstruct_gradient(struct solver *s)
{
    long l = s->l, as = s->active_size, nr_free = 0;
    if (as == l)
        return;
    for (long j = as; j < l; j++)
        s->G[j] = s->G_bar[j] - 1.0; /* G_bar + p */
    for (long j = 0; j < as; j++)
        nr_free += IS_FREE(s, j);
    if (nr_free * l > 2 * as * (l - as)) {
        for (long i = as; i < l; i++) {
            const float *Qi = column_at(s, i);
            if (!Qi)
                return;
            for (long j = 0; j < as; j++)
                if (IS_FREE(s, j))
                    s->G[i] += s->alpha[j] * QAT(Qi, s, j);
        }
    } else {
        for (long i = 0; i < as; i++)
            if (IS_FREE(s, i)) {
                const float *Qi = column_at(s, i);
                if (!Qi)
                    return;
                double ai = s->alpha[i];
                for (long j = as; j < l; j++)
                    s->G[j] += ai * QAT(Qi, s, j);
            }
    }
}

/* Second-order working set selection (WSS 3 of Fan et al.); 1 if optimal. */
static int select_working_set(struct solver *s, long *out_i, long *out_j)
{
    double Gmax = -INFINITY, Gmax2 = -INFINITY, obj_diff_min = INFINITY;
    long Gmax_idx = -1, Gmin_idx = -1;
    const double *G = s->G;
    for (long t = 0; t < s->active_size; t++) {
        if (s->y[t] == +1) {
            if (!IS_UPPER(s, t) && -G[t] >= Gmax) {
                Gmax = -G[t];
                Gmax_idx = t;
            }
        } else if (!IS_LOWER(s, t) && G[t] >= Gmax) {
            Gmax = G[t];
            Gmax_idx = t;
        }
    }
    long i = Gmax_idx;
    const float *Qi = NULL;
    if (i != -1 && !(Qi = column_at(s, i)))
        return 1;
    for (long j = 0; j < s->active_size; j++) {
        double grad_diff;
        if (s->y[j] == +1) {
            if (IS_LOWER(s, j))
                continue;
            grad_diff = Gmax + G[j];
            if (G[j] >= Gmax2)
                Gmax2 = G[j];
        } else {
            if (IS_UPPER(s, j))
                continue;
            grad_diff = Gmax - G[j];
            if (-G[j] >= Gmax2)
                Gmax2 = -G[j];
        }
        if (grad_diff > 0) {
            /* QD = 1 for the RBF kernel */
            double quad = s->y[j] == +1 ? 1.0 + 1.0 - 2.0 * s->y[i] * QAT(Qi, s, j)
                                        : 1.0 + 1.0 + 2.0 * s->y[i] * QAT(Qi, s, j);
            double obj_diff = -(grad_diff * grad_diff) / (quad > 0 ? quad : TAU);
            if (obj_diff <= obj_diff_min) {
                Gmin_idx = j;
                obj_diff_min = obj_diff;
            }
        }
    }
    if (Gmax + Gmax2 < s->eps || Gmin_idx == -1)
        return 1;
    *out_i = Gmax_idx;
    *out_j = Gmin_idx;
    return 0;
}

static int be_shrunk(const struct solver *s, long i, double Gmax1, double Gmax2)
{
    if (IS_UPPER(s, i))
        return s->y[i] == +1 ? -s->G[i] > Gmax1 : -s->G[i] > Gmax2;
    if (IS_LOWER(s, i))
        return s->y[i] == +1 ? s->G[i] > Gmax2 : s->G[i] > Gmax1;
    return 0;
}

static void do_shrinking(struct solver *s)
{
    double Gmax1 = -INFINITY, Gmax2 = -INFINITY; /* max -yG over I_up, max yG over I_low */
    for (long i = 0; i < s->active_size; i++) {
        double g = s->G[i];
        if (s->y[i] == +1) {
            if (!IS_UPPER(s, i) && -g >= Gmax1)
                Gmax1 = -g;
            if (!IS_LOWER(s, i) && g >= Gmax2)
                Gmax2 = g;
        } else {
            if (!IS_UPPER(s, i) && -g >= Gmax2)
                Gmax2 = -g;
            if (!IS_LOWER(s, i) && g >= Gmax1)
                Gmax1 = g;
        }
    }
    if (!s->unshrink && Gmax1 + Gmax2 <= s->eps * 10) {
        s->unshrink = 1;
        reconstruct_gradient(s);
        s->active_size = s->l;
    }
    for (long i = 0; i < s->active_size; i++)
        if (be_shrunk(s, i, Gmax1, Gmax2)) {
            s->active_size--;
            while (s->active_size > i) {
                if (!be_shrunk(s, s->active_size, Gmax1, Gmax2)) {
                    swap_index(s, i, s->active_size);
                    break;
                }
                s->active_size--;
            }
        }
}

static double calculate_rho(const struct solver *s)
{
    long nr_free = 0;
    double ub = INFINITY, lb = -INFINITY, sum_free = 0;
    for (long i = 0; i < s->active_size; i++) {
        double yG = s->y[i] * s->G[i];
        if (IS_UPPER(s, i)) {
            if (s->y[i] == -1)
                ub = fmin(ub, yG);
            else
                lb = fmax(lb, yG);
        } else if (IS_LOWER(s, i)) {
            if (s->y[i] == +1)
                ub = fmin(ub, yG);
            else
                lb = fmax(lb, yG);
        } else {
            nr_free++;
            sum_free += yG;
        }
    }
    return nr_free > 0 ? sum_free / (double)nr_free : (ub + lb) / 2;
}

/* One SMO step on the pair (i, j); libsvm's update with its bound handling. */
static void smo_step(struct solver *s, long i, long j, const float *Qi, const float *Qj)
{
    double C = s->C, *a = s->alpha;
    double old_ai = a[i], old_aj = a[j];
    if (s->y[i] != s->y[j]) {
        double quad = 1.0 + 1.0 + 2 * QAT(Qi, s, j);
        if (quad <= 0)
            quad = TAU;
        double delta = (-s->G[i] - s->G[j]) / quad, diff = a[i] - a[j];
        a[i] += delta;
        a[j] += delta;
        if (diff > 0) {
            if (a[j] < 0) {
                a[j] = 0;
                a[i] = diff;
            }
        } else if (a[i] < 0) {
            a[i] = 0;
            a[j] = -diff;
        }
        if (diff > C - C) {
            if (a[i] > C) {
                a[i] = C;
                a[j] = C - diff;
            }
        } else if (a[j] > C) {
            a[j] = C;
            a[i] = C + diff;
        }
    } else {
        double quad = 1.0 + 1.0 - 2 * QAT(Qi, s, j);
        if (quad <= 0)
            quad = TAU;
        double delta = (s->G[i] - s->G[j]) / quad, sum = a[i] + a[j];
        a[i] -= delta;
        a[j] += delta;
        if (sum > C) {
            if (a[i] > C) {
                a[i] = C;
                a[j] = sum - C;
            }
        } else if (a[j] < 0) {
            a[j] = 0;
            a[i] = sum;
        }
        if (sum > C) {
            if (a[j] > C) {
                a[j] = C;
                a[i] = sum - C;
            }
        } else if (a[i] < 0) {
            a[i] = 0;
            a[j] = sum;
        }
    }
    double dai = a[i] - old_ai, daj = a[j] - old_aj;
    for (long k = 0; k < s->active_size; k++)
        s->G[k] += QAT(Qi, s, k) * dai + QAT(Qj, s, k) * daj;
}

/* Keep G_bar (the gradient counting only variables at the upper bound) in
 * step with a status change of position i. */
static void update_g_bar(struct solver *s, long i, int was_upper)
{
    if (was_upper == IS_UPPER(s, i))
        return;
    const float *Qi = column_at(s, i);
    if (!Qi)
        return;
    double c = was_upper ? -s->C : s->C;
    for (long k = 0; k < s->l; k++)
        s->G_bar[k] += c * QAT(Qi, s, k);
}

/* Solve; alpha (original order) receives the solution. */
static lethe_status solve(struct solver *s, long max_iter, double *alpha_out, double *rho,
                          double *obj, long *n_iter, int *converged)
{
    long l = s->l, iter = 0;
    for (long i = 0; i < l; i++) {
        s->alpha[i] = 0;
        s->G[i] = -1.0;
        s->G_bar[i] = 0;
        s->active[i] = i;
        update_status(s, i);
    }
    s->active_size = l;
    long counter = (l < 1000 ? l : 1000) + 1;
    *converged = 1;
    for (;;) {
        if (max_iter > 0 && iter >= max_iter) {
            *converged = 0;
            break;
        }
        if (--counter == 0) {
            counter = l < 1000 ? l : 1000;
            if (s->shrinking_on)
                do_shrinking(s);
        }
        long i = -1, j = -1;
        if (select_working_set(s, &i, &j)) {
            reconstruct_gradient(s);
            s->active_size = l;
            if (select_working_set(s, &i, &j))
                break;
            counter = 1;
        }
        if (s->oom)
            break;
        iter++;
        const float *Qi = column_at(s, i), *Qj = column_at(s, j);
        if (!Qi || !Qj)
            break;
        smo_step(s, i, j, Qi, Qj);
        int ui = IS_UPPER(s, i), uj = IS_UPPER(s, j);
        update_status(s, i);
        update_status(s, j);
        update_g_bar(s, i, ui);
        update_g_bar(s, j, uj);
        if (s->oom)
            break;
    }
    if (s->oom)
        return lethe_fail(LETHE_ERR_NOMEM, "membership attack: out of memory for kernel columns");
    if (s->active_size < l) {
        reconstruct_gradient(s);
        s->active_size = l;
    }
    *rho = calculate_rho(s);
    double v = 0;
    for (long i = 0; i < l; i++)
        v += s->alpha[i] * (s->G[i] - 1.0);
    *obj = v / 2;
    for (long i = 0; i < l; i++)
        alpha_out[s->active[i]] = s->alpha[i];
    *n_iter = iter;
    return LETHE_OK;
}

/* ------------------------------------------------------------ fit, predict */

lethe_status lethe_svc_fit(const double *x, const int *labels, long n, int d,
                           const lethe_svc_cfg *cfg, lethe_svc **out)
{
    *out = NULL;
    if (n <= 0 || d <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "membership attack: no training samples");
    if (!(cfg->C > 0) || !(cfg->tol > 0))
        return lethe_fail(LETHE_ERR_INVALID, "membership attack: C and tol must be positive");
    long count[2] = {0, 0};
    for (long i = 0; i < n; i++) {
        if (labels[i] != 0 && labels[i] != 1)
            return lethe_fail(LETHE_ERR_INVALID, "membership attack: label %ld is %d, not 0 or 1",
                              i, labels[i]);
        count[labels[i]]++;
        for (int k = 0; k < d; k++)
            if (!isfinite(x[i * d + k]))
                return lethe_fail(LETHE_ERR_INVALID,
                                  "membership attack: feature %d of sample %ld is not finite", k,
                                  i);
    }
    if (!count[0] || !count[1])
        return lethe_fail(LETHE_ERR_INVALID,
                          "membership attack: needs both members and non-members (got %ld and %ld)",
                          count[1], count[0]);
    lethe_status st = LETHE_OK;
    struct qmat q = {0};
    struct solver s = {0};
    long *perm = malloc(sizeof(long) * (size_t)n);
    double *gx = malloc(sizeof(double) * (size_t)(n * d));
    signed char *gy = malloc((size_t)n);
    double *alpha = malloc(sizeof(double) * (size_t)n);
    lethe_svc *m = calloc(1, sizeof *m);
    q.l = s.l = n;
    q.col = calloc((size_t)n, sizeof *q.col);
    q.prev = malloc(sizeof(long) * (size_t)(n + 1));
    q.next = malloc(sizeof(long) * (size_t)(n + 1));
    q.xsq = malloc(sizeof(double) * (size_t)n);
    s.y = malloc((size_t)n);
    s.G = malloc(sizeof(double) * (size_t)n);
    s.G_bar = malloc(sizeof(double) * (size_t)n);
    s.alpha = malloc(sizeof(double) * (size_t)n);
    s.status = malloc((size_t)n);
    s.active = malloc(sizeof(long) * (size_t)n);
    if (!perm || !gx || !gy || !alpha || !m || !q.col || !q.prev || !q.next || !q.xsq || !s.y ||
        !s.G || !s.G_bar || !s.alpha || !s.status || !s.active) {
        st = lethe_fail(LETHE_ERR_NOMEM, "membership attack: out of memory for %ld samples", n);
        goto done;
    }
    /* libsvm (as scikit-learn patches it) sorts the labels and groups the
     * samples by class, stably: class 0 first, as the +1 side. */
    long pos[2] = {0, count[0]};
    for (long i = 0; i < n; i++)
        perm[pos[labels[i]]++] = i;
    for (long g = 0; g < n; g++) {
        memcpy(gx + g * d, x + perm[g] * d, sizeof(double) * (size_t)d);
        gy[g] = labels[perm[g]] == 0 ? +1 : -1;
        double sq = 0;
        for (int k = 0; k < d; k++)
            sq += gx[g * d + k] * gx[g * d + k];
        q.xsq[g] = sq;
    }
    q.d = d;
    q.x = gx;
    q.y = gy;
    q.gamma = cfg->gamma > 0 ? cfg->gamma : 1.0 / d;
    q.prev[n] = q.next[n] = n;
    double cols = cfg->cache_mb * 1048576.0 / (4.0 * (double)n);
    q.budget = cols < 2 ? 2 : cols > (double)n ? n : (long)cols;
    s.q = &q;
    memcpy(s.y, gy, (size_t)n);
    s.C = cfg->C;
    s.eps = cfg->tol;
    s.shrinking_on = cfg->shrinking;
    double rho = 0, obj = 0;
    st = solve(&s, cfg->max_iter, alpha, &rho, &obj, &m->n_iter, &m->converged);
    if (st != LETHE_OK)
        goto done;
    m->d = d;
    m->gamma = q.gamma;
    m->obj = obj;
    m->intercept = rho;
    for (long g = 0; g < n; g++)
        if (fabs(alpha[g]) > 0) {
            m->n_sv++;
            m->n_support[gy[g] == +1 ? 0 : 1]++;
        }
    m->sv = malloc(sizeof(double) * (size_t)((m->n_sv ? m->n_sv : 1) * d));
    m->coef = malloc(sizeof(double) * (size_t)(m->n_sv ? m->n_sv : 1));
    m->support = malloc(sizeof(long) * (size_t)(m->n_sv ? m->n_sv : 1));
    if (!m->sv || !m->coef || !m->support) {
        st = lethe_fail(LETHE_ERR_NOMEM, "membership attack: out of memory");
        goto done;
    }
    for (long g = 0, k = 0; g < n; g++)
        if (fabs(alpha[g]) > 0) {
            memcpy(m->sv + k * d, gx + g * d, sizeof(double) * (size_t)d);
            m->coef[k] = -(alpha[g] * gy[g]); /* scikit-learn flips libsvm's sign */
            m->support[k] = perm[g];
            k++;
        }
done:
    q_free(&q);
    free(s.y);
    free(s.G);
    free(s.G_bar);
    free(s.alpha);
    free(s.status);
    free(s.active);
    free(perm);
    free(gx);
    free(gy);
    free(alpha);
    if (st != LETHE_OK)
        lethe_svc_free(m);
    else
        *out = m;
    return st;
}

void lethe_svc_free(lethe_svc *m)
{
    if (!m)
        return;
    free(m->sv);
    free(m->coef);
    free(m->support);
    free(m);
}

double lethe_svc_decision(const lethe_svc *m, const double *x)
{
    /* libsvm's k_function and svm_predict_values: the kernel from the
     * squared distance, summed in support-vector order, then rho. */
    double sum = 0;
    for (long i = 0; i < m->n_sv; i++) {
        const double *v = m->sv + i * m->d;
        double d2 = 0;
        for (int k = 0; k < m->d; k++) {
            double t = v[k] - x[k];
            d2 += t * t;
        }
        sum += m->coef[i] * exp(-m->gamma * d2);
    }
    return sum + m->intercept;
}

int lethe_svc_predict(const lethe_svc *m, const double *x)
{
    return !(lethe_svc_decision(m, x) < 0);
}
