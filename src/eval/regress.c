/* The regression suite (docs/metrics.md), after Deep Regression Unlearning
 * (Tarun et al., ICML 2023): L1 and MSE on the forget, retain and test sets,
 * the loss-based membership attack, the Wasserstein distance between the
 * model's and the oracle's predictions on the forget set, and the Anamnesis
 * Index. Errors are reported in the data's units (t_scale times the
 * standardised error). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/mem.h"
#include "lethe/optim.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/stats.h"
#include "lethe/train.h"
#include "suite.h"

#define STREAM_AIN_DROPOUT 0xa1ee5ull

void lethe_regress_defaults(lethe_regress_cfg *cfg)
{
    lethe_mia_defaults(&cfg->mia);
    cfg->mia.feature = LETHE_MIA_L1;
    cfg->seed = 0;
    cfg->ain_lr = 0.01f;
    cfg->ain_batch = 256;
    cfg->relearn_batch = 32;
    cfg->ain_epochs = 10;
    cfg->ain_slack = 1.05;
    cfg->progress = NULL;
}

/* Per-sample errors of net on rows: l1 and squared error, means over the
 * outputs, in standardised units; pred (n, n_out) receives the outputs when
 * not NULL. The means over rows go to *l1 and *mse. */
static lethe_status errors(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                           double *l1_i, double *sq_i, float *pred, double *l1, double *mse)
{
    long n = rows ? rows->n : ds->n, D = ds->n_targets;
    float *z = pred ? pred : lethe_calloc((size_t)(n ? n : 1) * (size_t)D, sizeof(float));
    if (!z)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld outputs", n);
    lethe_status st = lethe_eval_outputs(net, ds, rows, z);
    double s1 = 0, s2 = 0;
    for (long i = 0; st == LETHE_OK && i < n; i++) {
        const float *t = ds->t + (rows ? rows->row[i] : i) * D;
        double a = 0, b = 0;
        for (long k = 0; k < D; k++) {
            double err = (double)z[i * D + k] - (double)t[k];
            a += fabs(err);
            b += err * err;
        }
        a /= (double)D;
        b /= (double)D;
        if (l1_i)
            l1_i[i] = a;
        if (sq_i)
            sq_i[i] = b;
        s1 += a;
        s2 += b;
    }
    if (!pred)
        lethe_free(z);
    *l1 = n ? s1 / (double)n : NAN;
    *mse = n ? s2 / (double)n : NAN;
    return st;
}

/* The mean L1 and MSE of net on rows (NULL: all of ds), in the data's units
 * (sc the target scale). */
static lethe_status unit_errors(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                double sc, double *l1, double *mse)
{
    lethe_status st = errors(net, ds, rows, NULL, NULL, NULL, l1, mse);
    *l1 *= sc;
    *mse *= sc * sc;
    return st;
}

/* ------------------------------------------------------- Anamnesis Index */

/* The L1 (standardised units) of net on rows: the mean over rows, or with
 * batch > 0 the mean of the means of consecutive batches of that many rows
 * (how Deep Regression Unlearning's evaluate() averages). z holds the
 * outputs, l1_i the per-row values. */
static lethe_status rows_l1(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                            int batch, float *z, double *l1_i, double *l1)
{
    double mse;
    lethe_status st = errors(net, ds, rows, l1_i, NULL, z, l1, &mse);
    if (st != LETHE_OK || batch <= 0)
        return st;
    double sum = 0;
    long nb = 0;
    for (long b = 0; b < rows->n; b += batch, nb++)
        sum += eval_mean(l1_i + b, rows->n - b < batch ? rows->n - b : batch);
    *l1 = sum / (double)nb;
    return LETHE_OK;
}

/* Whether the copy's L1 on the measured rows is at most the target. */
struct l1_target {
    const lethe_dataset *ds;
    const lethe_rows *rows;
    int batch;
    float *z;
    double *l1_i, target;
};

static lethe_status l1_reached(lethe_net *copy, void *user, int *reached)
{
    struct l1_target *t = user;
    double l1;
    lethe_status st = rows_l1(copy, t->ds, t->rows, t->batch, t->z, t->l1_i, &l1);
    *reached = st == LETHE_OK && l1 <= t->target;
    return st;
}

lethe_status lethe_relearn_regress(lethe_net *net, const lethe_dataset *ds,
                                   const lethe_rows *train_rows, const lethe_dataset *eval_ds,
                                   const lethe_rows *forget_rows, double target,
                                   const lethe_relearn_how *how, uint64_t seed, long *steps,
                                   int *reached)
{
    long n = forget_rows->n ? forget_rows->n : 1;
    struct l1_target t = {eval_ds, forget_rows, how->dru ? how->batch : 0,
                          lethe_calloc((size_t)n * (size_t)net->n_out, sizeof(float)),
                          malloc(sizeof(double) * (size_t)n), target};
    eval_relearn r = {ds, train_rows, LETHE_LOSS_L1, how->lr, how->batch, how->epochs, LONG_MAX,
                      how->dru, seed, STREAM_AIN_DROPOUT, l1_reached, &t, how->progress};
    lethe_status st;
    if (forget_rows->n == 0) {
        *steps = 0;
        *reached = 0;
        st = lethe_fail(LETHE_ERR_INVALID, "relearning needs samples and a positive batch");
    } else if (!t.z || !t.l1_i) {
        *steps = 0;
        *reached = 0;
        st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
    } else {
        st = eval_relearn_run(net, &r, steps, reached);
    }
    lethe_free(t.z);
    free(t.l1_i);
    return st;
}

/* ------------------------------------------------------------------ suite */

void lethe_regress_eval_free(lethe_regress_eval *e)
{
    void *arrays[] = {e->ids,  e->l1_i,        e->sq_i,        e->mia_decision_i,
                      e->mia_i, e->oracle_l1_i, e->oracle_sq_i, e->abs_diff_i};
    eval_free_each(arrays, sizeof arrays / sizeof *arrays);
    memset(e, 0, sizeof *e);
}

/* Ascending union of two ascending row lists. */
static lethe_status rows_union(const lethe_rows *a, const lethe_rows *b, lethe_rows *out)
{
    out->n = 0;
    out->row = malloc(sizeof(long) * (size_t)(a->n + b->n + 1));
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", a->n + b->n);
    long i = 0, j = 0;
    while (i < a->n || j < b->n) {
        long r = j >= b->n || (i < a->n && a->row[i] <= b->row[j]) ? a->row[i++] : b->row[j++];
        if (out->n == 0 || out->row[out->n - 1] != r)
            out->row[out->n++] = r;
    }
    return LETHE_OK;
}

/* Relearn the model and (when given) the oracle on train rows of in->train
 * until the L1 on rows of `ds` is at most target, a stage of progress each;
 * *ratio = model steps / oracle steps when the oracle's are positive. */
static lethe_status relearn_pair(const lethe_regress_inputs *in, const lethe_rows *train_rows,
                                 const lethe_dataset *ds, const lethe_rows *rows, double target,
                                 const lethe_relearn_how *how, uint64_t seed, long *model_steps,
                                 int *model_reached, long *oracle_steps, int *oracle_reached,
                                 double *ratio)
{
    lethe_status st = lethe_relearn_regress(in->model, in->train, train_rows, ds, rows, target,
                                            how, seed, model_steps, model_reached);
    if (st == LETHE_OK)
        eval_stage_done(how->progress);
    if (st != LETHE_OK || !in->oracle)
        return st;
    st = lethe_relearn_regress(in->oracle, in->train, train_rows, ds, rows, target, how, seed,
                               oracle_steps, oracle_reached);
    if (st == LETHE_OK && *oracle_steps > 0)
        *ratio = (double)*model_steps / (double)*oracle_steps;
    if (st == LETHE_OK)
        eval_stage_done(how->progress);
    return st;
}

int lethe_regress_metrics(const lethe_regress_eval *e, lethe_eval_metric *m)
{
    double reached = e->rt_model >= 0 ? e->rt_model_reached : NAN;
    double oracle_reached = e->rt_oracle >= 0 ? e->rt_oracle_reached : NAN;
    const lethe_eval_metric list[] = {
        /* the model's errors, attack, and distance to the oracle */
        {"forget_L1", e->forget_l1, e->l1_i}, {"forget_MSE", e->forget_mse, e->sq_i},
        {"retain_L1", e->retain_l1}, {"retain_MSE", e->retain_mse}, {"test_L1", e->test_l1},
        {"test_MSE", e->test_mse}, {"MIA", e->mia, e->mia_i},
        {"mia_decision", eval_mean(e->mia_decision_i, e->n_forget), e->mia_decision_i},
        {"wasserstein", e->wasserstein}, {"abs_diff_to_oracle", e->abs_diff, e->abs_diff_i},
        /* relearning */
        {"AIN", e->ain}, {"ain_steps", eval_steps(e->ain_model)},
        {"oracle_ain_steps", eval_steps(e->ain_oracle)},
        {"original_heldout_L1", e->original_heldout_l1}, {"relearn_ratio", e->relearn_ratio},
        {"relearn_steps", eval_steps(e->rt_model)}, {"relearn_reached", reached},
        {"oracle_relearn_steps", eval_steps(e->rt_oracle)},
        {"oracle_relearn_reached", oracle_reached},
        {"original_forget_L1", e->original_forget_l1},
        /* the oracle's */
        {"oracle_forget_L1", e->oracle_forget_l1, e->oracle_l1_i},
        {"oracle_forget_MSE", e->oracle_forget_mse, e->oracle_sq_i},
        {"oracle_retain_L1", e->oracle_retain_l1}, {"oracle_retain_MSE", e->oracle_retain_mse},
        {"oracle_test_L1", e->oracle_test_l1}, {"oracle_test_MSE", e->oracle_test_mse},
        {"oracle_MIA", e->oracle_mia},
        /* sizes and time */
        {"n_forget", e->n_forget}, {"n_retain", e->n_retain}, {"n_test", e->n_test},
        {"n_mia_member", e->n_mia_member}, {"n_mia_nonmember", e->n_mia_nonmember},
        {"n_forget_heldout", e->n_forget_heldout}, {"wall_seconds", e->seconds, NULL, 1}};
    return eval_metrics_copy(m, list, sizeof list / sizeof *list);
}

lethe_status lethe_eval_regress(const lethe_regress_inputs *in, const lethe_regress_cfg *cfg,
                                lethe_regress_eval *e)
{
    double t0;
    lethe_status st = eval_start(e, sizeof *e, &t0, LETHE_TASK_REGRESS, in->train, in->test,
                                 in->forget, in->retain, in->model, in->oracle, in->original);
    if (st != LETHE_OK)
        return st;
    const lethe_dataset *tr = in->train;
    long nf = in->forget->n, D = tr->n_targets;
    double sc = tr->t_scale, sc2 = sc * sc;
    lethe_rows members = {0}, nonmembers = {0}, all_train = {0};
    float *pm = NULL, *po = NULL;
    double *wa = NULL, *wb = NULL;
    e->n_forget = nf;
    e->n_retain = in->retain->n;
    e->n_test = in->test->n;
    e->oracle_forget_l1 = e->oracle_forget_mse = e->oracle_retain_l1 = e->oracle_retain_mse =
        e->oracle_test_l1 = e->oracle_test_mse = NAN;
    e->original_forget_l1 = e->oracle_mia = e->wasserstein = e->abs_diff = e->ain = NAN;
    e->relearn_ratio = e->original_heldout_l1 = NAN;
    e->rt_model = e->rt_oracle = e->ain_model = e->ain_oracle = -1;
    e->n_forget_heldout = in->forget_test ? in->forget_test->n : 0;
    EVAL_ALLOC(e->ids, nf);
    EVAL_ALLOC(e->l1_i, nf);
    EVAL_ALLOC(e->sq_i, nf);
    EVAL_ALLOC(e->mia_decision_i, nf);
    EVAL_ALLOC(e->mia_i, nf);
    EVAL_ALLOC(pm, nf * D);
    for (long i = 0; i < nf; i++)
        e->ids[i] = tr->ids[in->forget->row[i]];
    const lethe_rows *held = in->forget_test;
    int ain = in->original && in->oracle && held && held->n > 0;
    eval_progress_begin(cfg->progress,
                        1 + !!in->oracle + (in->original ? 1 + !!in->oracle : 0) + 2 * ain);

    double l1, mse;
    if ((st = errors(in->model, tr, in->forget, e->l1_i, e->sq_i, pm, &l1, &mse)) != LETHE_OK)
        goto done;
    e->forget_l1 = l1 * sc;
    e->forget_mse = mse * sc2;
    for (long i = 0; i < nf; i++) {
        e->l1_i[i] *= sc;
        e->sq_i[i] *= sc2;
    }
    if ((st = unit_errors(in->model, tr, in->retain, sc, &e->retain_l1, &e->retain_mse)) !=
            LETHE_OK ||
        (st = unit_errors(in->model, in->test, NULL, sc, &e->test_l1, &e->test_mse)) != LETHE_OK)
        goto done;

    /* the loss attack: members from D_r, non-members from D_test */
    if ((st = lethe_mia_rows(tr, in->retain, in->test, &cfg->mia, &members, &nonmembers)) !=
        LETHE_OK)
        goto done;
    e->n_mia_member = members.n;
    e->n_mia_nonmember = nonmembers.n;
    if ((st = lethe_mia_run(in->model, tr, in->test, &members, &nonmembers, in->forget, &cfg->mia,
                            NULL, e->mia_i, e->mia_decision_i, &e->mia)) != LETHE_OK)
        goto done;
    eval_stage_done(cfg->progress);

    if (in->oracle) {
        EVAL_ALLOC(e->oracle_l1_i, nf);
        EVAL_ALLOC(e->oracle_sq_i, nf);
        EVAL_ALLOC(e->abs_diff_i, nf);
        EVAL_ALLOC(po, nf * D);
        EVAL_ALLOC(wa, nf * D);
        EVAL_ALLOC(wb, nf * D);
        if ((st = errors(in->oracle, tr, in->forget, e->oracle_l1_i, e->oracle_sq_i, po, &l1,
                         &mse)) != LETHE_OK)
            goto done;
        e->oracle_forget_l1 = l1 * sc;
        e->oracle_forget_mse = mse * sc2;
        for (long i = 0; i < nf; i++) {
            double diff = 0;
            for (long k = 0; k < D; k++) {
                /* predictions in the data's units */
                wa[i * D + k] = (double)pm[i * D + k] * sc + tr->t_shift;
                wb[i * D + k] = (double)po[i * D + k] * sc + tr->t_shift;
                diff += fabs(wa[i * D + k] - wb[i * D + k]);
            }
            e->oracle_l1_i[i] *= sc;
            e->oracle_sq_i[i] *= sc2;
            e->abs_diff_i[i] = diff / (double)D;
        }
        e->abs_diff = eval_mean(e->abs_diff_i, nf);
        if ((st = unit_errors(in->oracle, tr, in->retain, sc, &e->oracle_retain_l1,
                              &e->oracle_retain_mse)) != LETHE_OK ||
            (st = unit_errors(in->oracle, in->test, NULL, sc, &e->oracle_test_l1,
                              &e->oracle_test_mse)) != LETHE_OK)
            goto done;
        if ((st = lethe_mia_run(in->oracle, tr, in->test, &members, &nonmembers, in->forget,
                                &cfg->mia, NULL, NULL, NULL, &e->oracle_mia)) != LETHE_OK ||
            (st = lethe_stats_wasserstein(wa, (size_t)(nf * D), wb, (size_t)(nf * D),
                                          &e->wasserstein)) != LETHE_OK)
            goto done;
        eval_stage_done(cfg->progress);
    }

    /* relearning on all of D_train until the forget L1 is within the slack of
     * the original's: lethe's relearn ratio on D_f, DRU's AIN on the held-out
     * rows of the forget range */
    if (in->original) {
        if ((st = errors(in->original, tr, in->forget, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK ||
            (st = rows_union(in->forget, in->retain, &all_train)) != LETHE_OK)
            goto done;
        e->original_forget_l1 = l1 * sc;
        lethe_relearn_how how = {cfg->ain_lr, cfg->relearn_batch, cfg->ain_epochs, 0,
                                 cfg->progress};
        if ((st = relearn_pair(in, &all_train, in->train, in->forget, cfg->ain_slack * l1, &how,
                               cfg->seed, &e->rt_model, &e->rt_model_reached, &e->rt_oracle,
                               &e->rt_oracle_reached, &e->relearn_ratio)) != LETHE_OK)
            goto done;
        if (ain) {
            lethe_relearn_how dru = {cfg->ain_lr, cfg->ain_batch, cfg->ain_epochs, 1,
                                     cfg->progress};
            double *scratch = malloc(sizeof(double) * (size_t)held->n);
            float *z = malloc(sizeof(float) * (size_t)(held->n * D));
            st = scratch && z ? rows_l1(in->original, in->test, held, cfg->ain_batch, z, scratch,
                                        &l1)
                              : lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld samples",
                                           held->n);
            free(scratch);
            free(z);
            if (st != LETHE_OK)
                goto done;
            e->original_heldout_l1 = l1 * sc;
            if ((st = relearn_pair(in, &all_train, in->test, held, cfg->ain_slack * l1, &dru,
                                   cfg->seed, &e->ain_model, &e->ain_model_reached,
                                   &e->ain_oracle, &e->ain_oracle_reached, &e->ain)) != LETHE_OK)
                goto done;
        }
    }
done:
    lethe_rows_free(&all_train);
    void *scratch[] = {members.row, nonmembers.row, pm, po, wa, wb};
    eval_free_each(scratch, sizeof scratch / sizeof *scratch);
    e->seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        lethe_regress_eval_free(e);
    return st;
}
