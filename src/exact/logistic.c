/* L2-regularised logistic regression trained by Newton's method, with
 * certified removal (Guo et al. 2020; see lethe/linear.h).
 *
 * Everything here works on the sum form of the objective,
 *     F(w) = sum_i log(1 + exp(-y_i w^T x~_i)) + lambda n / 2 ||w||^2 + b^T w,
 * n times the mean form, because that is the form whose gradient norm the
 * certificate compares with sigma eps / c. */
#include "linear_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/rng.h"

#define NOISE_STREAM 0x6e6f697365000000ull /* "noise"; plus the retrain count */
#define GAMMA 0.25       /* Lipschitz constant of the logistic loss's second derivative */
#define NEWTON_MAX 100   /* iterations */
#define NEWTON_TOL 1e-11 /* stop when ||grad F|| <= NEWTON_TOL * n */
#define NEWTON_OK 1e-7   /* and fail unless it reached NEWTON_OK * n */

/* b ~ N(0, sigma^2 I), keyed by (seed, NOISE_STREAM + retrains). */
static void noise(const lethe_linear *m, double *b)
{
    lethe_rng g = lethe_rng_init(m->cfg.seed, NOISE_STREAM + (uint64_t)m->retrains);
    for (int j = 0; j < m->p; j++)
        b[j] = m->cfg.sigma > 0 ? m->cfg.sigma * lethe_rng_normal(&g) : 0.0;
}

static double label(const lethe_dataset *ds, long r) { return ds->y[r] == 1 ? 1.0 : -1.0; }

/* log(1 + e^t) */
static double softplus(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }

/* 1 / (1 + e^-t) */
static double sigmoid(double t)
{
    if (t >= 0)
        return 1 / (1 + exp(-t));
    double e = exp(t);
    return e / (1 + e);
}

static double dot(const double *a, const double *b, int p)
{
    double s = 0;
    for (int j = 0; j < p; j++)
        s += a[j] * b[j];
    return s;
}

/* w^T x~ for row r of ds. */
static double margin(const lethe_dataset *ds, long r, const double *w)
{
    const float *x = ds->x + (size_t)r * (size_t)ds->d;
    double s = w[ds->d];
    for (int j = 0; j < ds->d; j++)
        s += x[j] * w[j];
    return s;
}

static double objective(const lethe_dataset *ds, const lethe_rows *rows, double lambda,
                        const double *b, const double *w, int p)
{
    double f = 0.5 * lambda * (double)rows->n * dot(w, w, p) + dot(b, w, p);
    for (long i = 0; i < rows->n; i++) {
        long r = rows->row[i];
        f += softplus(-label(ds, r) * margin(ds, r, w));
    }
    return f;
}

/* g = grad F(w); with H non-NULL also H = hess F(w) (upper triangle). wt
 * holds rows->n doubles. */
static lethe_status grad_hess(const lethe_dataset *ds, const lethe_rows *rows, double lambda,
                              const double *b, const double *w, int p, double *g, double *H,
                              double *wt)
{
    double ln = lambda * (double)rows->n;
    for (int j = 0; j < p; j++)
        g[j] = ln * w[j] + b[j];
    for (long i = 0; i < rows->n; i++) {
        long r = rows->row[i];
        double y = label(ds, r), z = margin(ds, r, w);
        double s = sigmoid(-y * z); /* -d/dz of softplus(-y z), over y */
        const float *x = ds->x + (size_t)r * (size_t)ds->d;
        for (int j = 0; j < ds->d; j++)
            g[j] -= y * s * x[j];
        g[ds->d] -= y * s;
        wt[i] = s * (1 - s);
    }
    if (!H)
        return LETHE_OK;
    lethe_status st = lin_gram(ds, rows->row, rows->n, wt, p, H);
    for (int j = 0; j < p; j++)
        H[(size_t)j * (size_t)p + (size_t)j] += ln;
    return st;
}

/* Minimise F over rows from w = 0 by Newton's method with a backtracking
 * line search; *resid receives ||grad F|| at the result. */
static lethe_status newton(const lethe_dataset *ds, const lethe_rows *rows, double lambda,
                           const double *b, int p, double *w, double *resid)
{
    size_t pp = (size_t)p * (size_t)p;
    double *H = malloc(pp * sizeof *H), *g = malloc(3 * (size_t)p * sizeof *g);
    double *wt = malloc((size_t)(rows->n > 0 ? rows->n : 1) * sizeof *wt);
    lethe_status st = H && g && wt ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    double *step = g + p, *wn = g + 2 * p, gn = INFINITY, tol = NEWTON_TOL * (double)rows->n;
    if (st == LETHE_OK)
        memset(w, 0, (size_t)p * sizeof *w);
    for (int it = 0; st == LETHE_OK && it < NEWTON_MAX; it++) {
        if ((st = grad_hess(ds, rows, lambda, b, w, p, g, H, wt)) != LETHE_OK)
            break;
        gn = sqrt(dot(g, g, p));
        if (gn <= tol)
            break;
        if (lethe_chol_factor(H, p)) {
            st = lethe_fail(LETHE_ERR_FAILED, "logistic fit: the Hessian lost definiteness");
            break;
        }
        memcpy(step, g, (size_t)p * sizeof *step);
        lethe_chol_solve(H, p, step, 1);
        double f = objective(ds, rows, lambda, b, w, p), dec = dot(g, step, p), t = 1;
        int moved = 0;
        for (int ls = 0; ls < 60 && !moved; ls++, t *= 0.5) {
            for (int j = 0; j < p; j++)
                wn[j] = w[j] - t * step[j];
            if (objective(ds, rows, lambda, b, wn, p) <= f - 1e-4 * t * dec) {
                memcpy(w, wn, (size_t)p * sizeof *w);
                moved = 1;
            }
        }
        if (!moved)
            break; /* at the precision floor */
    }
    if (st == LETHE_OK && (st = grad_hess(ds, rows, lambda, b, w, p, g, NULL, wt)) == LETHE_OK) {
        gn = sqrt(dot(g, g, p));
        if (!(gn <= NEWTON_OK * (double)rows->n))
            st = lethe_fail(LETHE_ERR_FAILED,
                            "logistic fit: Newton's method stopped with gradient norm %g "
                            "over %ld samples; try a larger lambda", gn, rows->n);
    }
    *resid = gn;
    free(H);
    free(g);
    free(wt);
    return st;
}

lethe_status lin_logistic_fit(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows)
{
    double *b = malloc((size_t)m->p * sizeof *b);
    if (!b)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    noise(m, b);
    lethe_status st = newton(ds, rows, m->cfg.lambda, b, m->p, m->theta, &m->beta);
    free(b);
    return st;
}

double lethe_linear_grad_norm(const lethe_linear *m, const lethe_dataset *ds)
{
    if (m->kind != LETHE_LINEAR_LOGISTIC) {
        lethe_fail(LETHE_ERR_INVALID, "the gradient bound is for logistic models");
        return NAN;
    }
    lethe_rows held;
    if (lethe_linear_held(m, ds, &held) != LETHE_OK)
        return NAN;
    double *b = calloc(2 * (size_t)m->p, sizeof *b);
    double *wt = malloc((size_t)(held.n > 0 ? held.n : 1) * sizeof *wt), r = NAN;
    if (b && wt) {
        noise(m, b);
        grad_hess(ds, &held, m->cfg.lambda, b, m->theta, m->p, b + m->p, NULL, wt);
        r = sqrt(dot(b + m->p, b + m->p, m->p));
    } else {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    free(b);
    free(wt);
    lethe_rows_free(&held);
    return r;
}

lethe_status lin_logistic_forget(lethe_linear *m, const lethe_dataset *ds,
                                 const lethe_rows *drop, lethe_linear_report *rep)
{
    int p = m->p;
    size_t pp = (size_t)p * (size_t)p;
    double lambda = m->cfg.lambda, budget = lethe_linear_budget(m);
    lethe_rows held = {0}, rest = {0};
    lethe_status st = lethe_linear_held(m, ds, &held);
    double *H = malloc(pp * sizeof *H), *G = malloc(pp * sizeof *G);
    double *ework = malloc((pp + 2 * (size_t)p) * sizeof *ework);
    double *v = malloc(3 * (size_t)p * sizeof *v), *delta = v + p, *x = v + 2 * p;
    double *wt = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *wt);
    char *in = calloc((size_t)(ds->n > 0 ? ds->n : 1), 1);
    rest.row = malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *rest.row);
    if (st == LETHE_OK && (!H || !G || !ework || !v || !wt || !in || !rest.row))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; st == LETHE_OK && i < held.n; i++)
        in[held.row[i]] = 1;
    int retrain = 0;
    for (long q = 0; st == LETHE_OK && q < drop->n; q++) {
        long j = drop->row[q];
        in[j] = 0;
        rest.n = 0;
        for (long i = 0; i < held.n; i++)
            if (in[held.row[i]])
                rest.row[rest.n++] = held.row[i];
        /* H: the Hessian of the remaining objective at w. */
        for (long i = 0; i < rest.n; i++) {
            double s = sigmoid(margin(ds, rest.row[i], m->theta));
            wt[i] = s * (1 - s);
        }
        if ((st = lin_gram(ds, rest.row, rest.n, wt, p, H)) != LETHE_OK)
            break;
        for (int c = 0; c < p; c++)
            H[(size_t)c * (size_t)p + (size_t)c] += lambda * (double)rest.n;
        if (lethe_chol_factor(H, p)) {
            st = lethe_fail(LETHE_ERR_FAILED, "logistic removal: the Hessian lost definiteness");
            break;
        }
        /* Delta = H^-1 (gradient of sample j's loss + lambda w). */
        double y = label(ds, j);
        double s = sigmoid(y * margin(ds, j, m->theta));
        lin_row(ds, j, x);
        for (int c = 0; c < p; c++)
            delta[c] = y * x[c] * (s - 1) + lambda * m->theta[c];
        lethe_chol_solve(H, p, delta, 1);
        /* gamma ||Delta|| ||X_rem Delta|| ||X_rem||_2 */
        if ((st = lin_gram(ds, rest.row, rest.n, NULL, p, G)) != LETHE_OK)
            break;
        double spec = sqrt(lethe_sym_max_eig(G, p, ework)), xd = 0;
        for (long i = 0; i < rest.n; i++) {
            double t = margin(ds, rest.row[i], delta);
            xd += t * t;
        }
        double inc = GAMMA * sqrt(dot(delta, delta, p)) * sqrt(xd) * spec;
        if (!(m->beta + inc <= budget)) {
            retrain = 1;
            break;
        }
        for (int c = 0; c < p; c++)
            m->theta[c] += delta[c];
        m->beta += inc;
        rep->bound_added += inc;
        rep->steps++;
    }
    if (st == LETHE_OK && retrain) {
        /* The budget is spent: train afresh on what remains, new noise. */
        lethe_rows_free(&rest);
        if ((st = lethe_rows_minus(&rest, &held, drop)) == LETHE_OK) {
            m->retrains++;
            st = lin_logistic_fit(m, ds, &rest);
        }
        rep->retrained = 1;
    }
    free(H);
    free(G);
    free(ework);
    free(v);
    free(wt);
    free(in);
    lethe_rows_free(&held);
    lethe_rows_free(&rest);
    return st;
}
