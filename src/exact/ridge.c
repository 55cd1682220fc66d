/* Ridge regression in closed form, with exact removal by rank-1 downdates
 * of the Cholesky factor of A = X~^T X~ + lambda D (see lethe/linear.h).
 *
 * A batch of k removals is k downdates in turn. Their pivots 1 - h_j are
 * the pivots of the Cholesky factorisation of Woodbury's capacitance matrix
 * I - U^T A^-1 U (U the removed rows), so guarding each downdate guards the
 * rank-k update as a whole: O(k p^2) for the factor, then one pair of
 * triangular solves for theta. */
#include "linear_impl.h"

#include <stdlib.h>
#include <string.h>

/* A += lambda on the feature diagonal (the bias stays unpenalised). */
static void add_ridge(double *A, int p, double lambda)
{
    for (int j = 0; j < p - 1; j++)
        A[(size_t)j * (size_t)p + (size_t)j] += lambda;
}

/* xty = sum over rows of x~ y^T. */
static lethe_status cross(const lethe_dataset *ds, const lethe_rows *rows, int p, int k,
                          double *xty)
{
    double *x = malloc((size_t)p * sizeof *x);
    if (!x)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    memset(xty, 0, (size_t)p * (size_t)k * sizeof *xty);
    for (long i = 0; i < rows->n; i++) {
        long r = rows->row[i];
        lin_row(ds, r, x);
        const float *y = ds->t + (size_t)r * (size_t)ds->n_targets;
        for (int j = 0; j < p; j++)
            for (int t = 0; t < k; t++)
                xty[(size_t)j * (size_t)k + (size_t)t] += x[j] * y[t];
    }
    free(x);
    return LETHE_OK;
}

/* R = chol(X~^T X~ + lambda D) and xty over rows; then theta. */
static lethe_status build(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows,
                          const char *what)
{
    lethe_status st = lin_gram(ds, rows->row, rows->n, NULL, m->p, m->R);
    if (st == LETHE_OK)
        st = cross(ds, rows, m->p, m->k, m->xty);
    if (st != LETHE_OK)
        return st;
    add_ridge(m->R, m->p, m->cfg.lambda);
    if (lethe_chol_factor(m->R, m->p))
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: X^T X + lambda I over %ld samples of %s is singular (constant "
                          "or collinear features, or fewer samples than features); use a "
                          "larger lambda", what, rows->n, ds->name);
    memcpy(m->theta, m->xty, (size_t)m->p * (size_t)m->k * sizeof *m->theta);
    lethe_chol_solve(m->R, m->p, m->theta, m->k);
    return LETHE_OK;
}

lethe_status lin_ridge_fit(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows)
{
    return build(m, ds, rows, "ridge fit");
}

lethe_status lin_ridge_forget(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *drop,
                              lethe_linear_report *rep)
{
    int p = m->p, k = m->k;
    double *work = malloc(4 * (size_t)p * sizeof *work), *x = work + 3 * p;
    if (!work)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    int refactor = 0;
    for (long i = 0; i < drop->n; i++) {
        long r = drop->row[i];
        double piv;
        lin_row(ds, r, x);
        int bad = lethe_chol_downdate(m->R, p, x, m->cfg.guard, &piv, work);
        if (piv < rep->min_pivot)
            rep->min_pivot = piv;
        if (bad) {
            refactor = 1;
            break;
        }
        rep->downdates++;
        const float *y = ds->t + (size_t)r * (size_t)ds->n_targets;
        for (int j = 0; j < p; j++)
            for (int t = 0; t < k; t++)
                m->xty[(size_t)j * (size_t)k + (size_t)t] -= x[j] * y[t];
    }
    free(work);
    if (!refactor) {
        memcpy(m->theta, m->xty, (size_t)p * (size_t)k * sizeof *m->theta);
        lethe_chol_solve(m->R, p, m->theta, k);
        return LETHE_OK;
    }
    /* The guard tripped: rebuild from the rows that remain. */
    lethe_rows held, rest = {0};
    lethe_status st = lethe_linear_held(m, ds, &held);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&rest, &held, drop);
    if (st == LETHE_OK)
        st = build(m, ds, &rest, "ridge removal");
    rep->refactored = 1;
    lethe_rows_free(&held);
    lethe_rows_free(&rest);
    return st;
}
