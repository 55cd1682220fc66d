/* Pieces shared by the linear models (internal to src/exact). */
#ifndef LETHE_EXACT_LINEAR_IMPL_H
#define LETHE_EXACT_LINEAR_IMPL_H

#include "lethe/linear.h"

/* A model of kind with d features and k outputs, every array zeroed; NULL
 * (detail set) when out of memory. */
lethe_linear *lin_alloc(lethe_linear_kind kind, const lethe_linear_cfg *cfg, int d, int k);

/* x~ = (x, 1) of row `row` of ds into x (p doubles). */
void lin_row(const lethe_dataset *ds, long row, double *x);

/* G (p, p), upper triangle: the sum over rows[0..n) (rows 0..n-1 when rows
 * is NULL) of wt[i] x~ x~^T (wt NULL: weight 1). Each entry is summed in row
 * order by one thread, so the result does not depend on the thread count. */
lethe_status lin_gram(const lethe_dataset *ds, const long *rows, long n, const double *wt,
                      int p, double *G);

/* Kind-specific work. Fits fill m->theta (and the kind's state) from rows.
 * Forgets update m's parameters and state for rows `drop` (already checked
 * to be held), leaving the id lists, n and requests to the caller; on
 * failure they may leave m half-changed (the caller works on a copy). They
 * find the rows m holds with lethe_linear_held when they need them. */
lethe_status lin_ridge_fit(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows);
lethe_status lin_ridge_forget(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *drop,
                              lethe_linear_report *rep);
lethe_status lin_logistic_fit(lethe_linear *m, const lethe_dataset *ds, const lethe_rows *rows);
lethe_status lin_logistic_forget(lethe_linear *m, const lethe_dataset *ds,
                                 const lethe_rows *drop, lethe_linear_report *rep);

#endif
