/* Ridge removal against refitting: a synthetic regression set of n samples
 * and d features, one fit, then single removals (each timed), a batch of
 * 100, and refits on the remaining data. Prints one JSON line.
 *
 *   bench_ridge [--n N] [--d D] [--reps R]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/linear.h"
#include "lethe/progress.h"
#include "lethe/rng.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double rel_diff(const lethe_linear *a, const lethe_linear *b)
{
    double num = 0, den = 0;
    for (int i = 0; i < a->p * a->k; i++) {
        double e = a->theta[i] - b->theta[i];
        num += e * e, den += b->theta[i] * b->theta[i];
    }
    return sqrt(num / den);
}

static int die(const char *what)
{
    fprintf(stderr, "bench_ridge: %s: %s\n", what, lethe_error_detail());
    return 1;
}

int main(int argc, char **argv)
{
    long n = 100000, d = 100, reps = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--n"))
            n = v;
        else if (!strcmp(argv[i], "--d"))
            d = v;
        else if (!strcmp(argv[i], "--reps"))
            reps = v;
    }
    if (n < 1000 || d < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_ridge [--n N>=1000] [--d D] [--reps 1..1000]\n");
        return 2;
    }
    lethe_dataset *ds = lethe_dataset_alloc("synth", LETHE_TASK_REGRESS, n, (int)d, 1);
    if (!ds)
        return die("alloc");
    lethe_rng g = lethe_rng_init(99, 1);
    for (long i = 0; i < n; i++) {
        float *x = ds->x + (size_t)i * (size_t)d;
        double y = 0.5 + 0.3 * lethe_rng_normal(&g);
        for (long j = 0; j < d; j++) {
            x[j] = (float)(lethe_rng_normal(&g) * (1 + 0.2 * (double)(j % 5)) + 0.1 * (double)j);
            y += x[j] * (j < 16 ? 1.0 / (double)(j + 1) : 0.01);
        }
        ds->t[i] = (float)y;
        ds->ids[i] = (uint64_t)i;
    }
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    lethe_linear *m = NULL, *ref = NULL;
    double t0 = lethe_now();
    if (lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, NULL, &m) != LETHE_OK)
        return die("fit");
    double t_fit = lethe_now() - t0;
    double *t1 = malloc((size_t)reps * sizeof *t1);
    lethe_rows one = {.row = malloc(sizeof(long)), .n = 1};
    lethe_rows batch = {.row = malloc(100 * sizeof(long))};
    if (!t1 || !one.row || !batch.row)
        return die("alloc");
    for (long r = 0; r < reps; r++) {
        lethe_linear_report rep;
        one.row[0] = 1000 + 13 * r;
        if (lethe_linear_forget(m, ds, &one, &rep) != LETHE_OK)
            return die("forget");
        t1[r] = rep.seconds;
    }
    qsort(t1, (size_t)reps, sizeof *t1, cmp_double);
    for (long i = 0; i < 100; i++)
        batch.row[batch.n++] = n / 2 + 37 * i;
    lethe_linear_report rb;
    if (lethe_linear_forget(m, ds, &batch, &rb) != LETHE_OK)
        return die("forget");
    double tr[3];
    for (int r = 0; r < 3; r++) {
        lethe_linear_free(ref);
        ref = NULL;
        t0 = lethe_now();
        if (lethe_linear_refit(m, ds, &ref) != LETHE_OK)
            return die("refit");
        tr[r] = lethe_now() - t0;
    }
    qsort(tr, 3, sizeof *tr, cmp_double);
    printf("{\"n\":%ld,\"d\":%ld,\"fit_s\":%.6f,\"remove_one_s\":%.9f,\"remove_100_s\":%.6f,"
           "\"refit_s\":%.6f,\"speedup_one\":%.0f,\"speedup_100\":%.1f,\"rel_diff\":%.3g}\n",
           n, d, t_fit, t1[reps / 2], rb.seconds, tr[1], tr[1] / t1[reps / 2], tr[1] / rb.seconds,
           rel_diff(m, ref));
    free(t1);
    free(one.row);
    free(batch.row);
    lethe_linear_free(ref);
    lethe_linear_free(m);
    lethe_dataset_free(ds);
    return 0;
}
