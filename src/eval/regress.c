/* The regression suite (docs/metrics.md), after Deep Regression Unlearning
 * (Tarun et al., ICML 2023): L1 and MSE on the forget, retain and test sets,
 * the loss-based membership attack, the Wasserstein distance between the
 * model's and the oracle's predictions on the forget set, and the Anamnesis
 * Index. Errors are reported in the data's units (t_scale times the
 * standardised error). */
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
}

static double mean(const double *v, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : NAN;
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

static lethe_status check_net(const char *what, const lethe_net *net, const lethe_dataset *ds)
{
    if (net->n_in != ds->d || net->n_out != ds->n_targets)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the %s maps %ld features to %ld outputs; the data has %d features "
                          "and %d targets",
                          ds->name, what, net->n_in, net->n_out, ds->d, ds->n_targets);
    return LETHE_OK;
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
        sum += mean(l1_i + b, rows->n - b < batch ? rows->n - b : batch);
    *l1 = sum / (double)nb;
    return LETHE_OK;
}

lethe_status lethe_relearn_regress(lethe_net *net, const lethe_dataset *ds,
                                   const lethe_rows *train_rows, const lethe_dataset *eval_ds,
                                   const lethe_rows *forget_rows, double target,
                                   const lethe_relearn_how *how, uint64_t seed, long *steps,
                                   int *reached)
{
    *steps = 0;
    *reached = 0;
    int batch = how->batch, mb = how->dru ? batch : 0;
    if (train_rows->n == 0 || forget_rows->n == 0 || batch <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "relearning needs samples and a positive batch");
    lethe_status st = LETHE_OK;
    lethe_net *copy = lethe_net_init(net->spec);
    lethe_optim *opt = copy ? lethe_optim_init(LETHE_OPTIM_ADAMW, copy->n_params) : NULL;
    long *order = malloc(sizeof(long) * (size_t)train_rows->n);
    float *z = lethe_calloc((size_t)forget_rows->n * (size_t)net->n_out, sizeof(float));
    double *l1_i = malloc(sizeof(double) * (size_t)forget_rows->n);
    if (!copy || !opt || !order || !z || !l1_i) {
        st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
        goto done;
    }
    memcpy(copy->params, net->params, sizeof(float) * (size_t)net->n_params);
    opt->weight_decay = 0.0f; /* Adam */
    double l1;
    /* lethe's count is 0 for a model already there; DRU's takes one step first */
    if (!how->dru) {
        if ((st = rows_l1(copy, eval_ds, forget_rows, mb, z, l1_i, &l1)) != LETHE_OK)
            goto done;
        if (l1 <= target) {
            *reached = 1;
            goto done;
        }
    }
    for (int epoch = 0; epoch < how->epochs; epoch++) {
        if ((st = lethe_train_order(ds, train_rows, seed, epoch, order)) != LETHE_OK)
            goto done;
        uint64_t drop = lethe_rng_hash(seed, STREAM_AIN_DROPOUT, (uint64_t)epoch);
        for (long b = 0; b < train_rows->n; b += batch) {
            int B = (int)(train_rows->n - b < batch ? train_rows->n - b : batch);
            memset(copy->grads, 0, sizeof(float) * (size_t)copy->n_params);
            double loss = lethe_batch_grad(copy, ds, order + b, B, LETHE_LOSS_L1, 1, drop, 1.0f,
                                           NULL);
            if (isnan(loss)) {
                st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
                goto done;
            }
            lethe_optim_step(opt, copy->params, copy->grads, how->lr);
            ++*steps;
            if ((st = rows_l1(copy, eval_ds, forget_rows, mb, z, l1_i, &l1)) != LETHE_OK)
                goto done;
            if (l1 <= target) {
                *reached = 1;
                goto done;
            }
        }
    }
done:
    lethe_net_free(copy);
    lethe_optim_free(opt);
    free(order);
    lethe_free(z);
    free(l1_i);
    return st;
}

/* ------------------------------------------------------------------ suite */

void lethe_regress_eval_free(lethe_regress_eval *e)
{
    free(e->ids);
    free(e->l1_i);
    free(e->sq_i);
    free(e->mia_decision_i);
    free(e->mia_i);
    free(e->oracle_l1_i);
    free(e->oracle_sq_i);
    free(e->abs_diff_i);
    memset(e, 0, sizeof *e);
}

static lethe_status check_inputs(const lethe_regress_inputs *in)
{
    const lethe_dataset *tr = in->train, *te = in->test;
    lethe_status st;
    if (tr->task != LETHE_TASK_REGRESS)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: a classification task; use the classification suite (lethe eval "
                          "classify)",
                          tr->name);
    if (te->task != LETHE_TASK_REGRESS || te->d != tr->d || te->n_targets != tr->n_targets)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the test set does not match the training set",
                          tr->name);
    if (in->forget->n == 0 || in->retain->n == 0 || te->n == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the suite needs non-empty forget, retain and test sets (got %ld, "
                          "%ld and %ld samples)",
                          tr->name, in->forget->n, in->retain->n, te->n);
    if ((st = check_net("model", in->model, tr)) != LETHE_OK ||
        (in->oracle && (st = check_net("oracle", in->oracle, tr)) != LETHE_OK) ||
        (in->original && (st = check_net("original model", in->original, tr)) != LETHE_OK))
        return st;
    return LETHE_OK;
}

/* The loss attack for one net: % of D_f judged member. */
static lethe_status loss_attack(lethe_net *net, const lethe_regress_inputs *in,
                                const lethe_regress_cfg *cfg, const lethe_rows *members,
                                const lethe_rows *nonmembers, double *rate, double *mia_i,
                                double *dec_i)
{
    lethe_mia_result r;
    lethe_status st = lethe_mia_run(net, in->train, in->test, members, nonmembers, in->forget,
                                    &cfg->mia, NULL, &r);
    if (st != LETHE_OK)
        return st;
    *rate = r.member_rate;
    for (long i = 0; i < in->forget->n; i++) {
        if (mia_i)
            mia_i[i] = r.member[i] ? 100.0 : 0.0;
        if (dec_i)
            dec_i[i] = r.decision[i];
    }
    lethe_mia_result_free(&r);
    return LETHE_OK;
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
 * until the L1 on rows of `ds` is at most target; *ratio = model steps /
 * oracle steps when the oracle's are positive. */
static lethe_status relearn_pair(const lethe_regress_inputs *in, const lethe_rows *train_rows,
                                 const lethe_dataset *ds, const lethe_rows *rows, double target,
                                 const lethe_relearn_how *how, uint64_t seed, long *model_steps,
                                 int *model_reached, long *oracle_steps, int *oracle_reached,
                                 double *ratio)
{
    lethe_status st = lethe_relearn_regress(in->model, in->train, train_rows, ds, rows, target,
                                            how, seed, model_steps, model_reached);
    if (st != LETHE_OK || !in->oracle)
        return st;
    st = lethe_relearn_regress(in->oracle, in->train, train_rows, ds, rows, target, how, seed,
                               oracle_steps, oracle_reached);
    if (st == LETHE_OK && *oracle_steps > 0)
        *ratio = (double)*model_steps / (double)*oracle_steps;
    return st;
}

/* Allocate n elements (at least one) for p, or fail the suite. */
#define ALLOC(p, n)                                                                \
    do {                                                                           \
        long n_ = (n);                                                             \
        if (!((p) = malloc(sizeof *(p) * (size_t)(n_ > 0 ? n_ : 1)))) {            \
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld samples", n_); \
            goto done;                                                             \
        }                                                                          \
    } while (0)

lethe_status lethe_eval_regress(const lethe_regress_inputs *in, const lethe_regress_cfg *cfg,
                                lethe_regress_eval *e)
{
    memset(e, 0, sizeof *e);
    double t0 = lethe_now();
    lethe_status st = check_inputs(in);
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
    ALLOC(e->ids, nf);
    ALLOC(e->l1_i, nf);
    ALLOC(e->sq_i, nf);
    ALLOC(e->mia_decision_i, nf);
    ALLOC(e->mia_i, nf);
    ALLOC(pm, nf * D);
    for (long i = 0; i < nf; i++)
        e->ids[i] = tr->ids[in->forget->row[i]];

    double l1, mse;
    if ((st = errors(in->model, tr, in->forget, e->l1_i, e->sq_i, pm, &l1, &mse)) != LETHE_OK)
        goto done;
    e->forget_l1 = l1 * sc;
    e->forget_mse = mse * sc2;
    for (long i = 0; i < nf; i++) {
        e->l1_i[i] *= sc;
        e->sq_i[i] *= sc2;
    }
    if ((st = errors(in->model, tr, in->retain, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK)
        goto done;
    e->retain_l1 = l1 * sc;
    e->retain_mse = mse * sc2;
    if ((st = errors(in->model, in->test, NULL, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK)
        goto done;
    e->test_l1 = l1 * sc;
    e->test_mse = mse * sc2;

    /* the loss attack: members from D_r, non-members from D_test */
    if ((st = lethe_mia_rows(tr, in->retain, in->test, &cfg->mia, &members, &nonmembers)) !=
        LETHE_OK)
        goto done;
    e->n_mia_member = members.n;
    e->n_mia_nonmember = nonmembers.n;
    if ((st = loss_attack(in->model, in, cfg, &members, &nonmembers, &e->mia, e->mia_i,
                          e->mia_decision_i)) != LETHE_OK)
        goto done;

    if (in->oracle) {
        ALLOC(e->oracle_l1_i, nf);
        ALLOC(e->oracle_sq_i, nf);
        ALLOC(e->abs_diff_i, nf);
        ALLOC(po, nf * D);
        ALLOC(wa, nf * D);
        ALLOC(wb, nf * D);
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
        e->abs_diff = mean(e->abs_diff_i, nf);
        if ((st = errors(in->oracle, tr, in->retain, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK)
            goto done;
        e->oracle_retain_l1 = l1 * sc;
        e->oracle_retain_mse = mse * sc2;
        if ((st = errors(in->oracle, in->test, NULL, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK)
            goto done;
        e->oracle_test_l1 = l1 * sc;
        e->oracle_test_mse = mse * sc2;
        if ((st = loss_attack(in->oracle, in, cfg, &members, &nonmembers, &e->oracle_mia, NULL,
                              NULL)) != LETHE_OK ||
            (st = lethe_stats_wasserstein(wa, (size_t)(nf * D), wb, (size_t)(nf * D),
                                          &e->wasserstein)) != LETHE_OK)
            goto done;
    }

    /* relearning on all of D_train until the forget L1 is within the slack of
     * the original's: lethe's relearn ratio on D_f, DRU's AIN on the held-out
     * rows of the forget range */
    if (in->original) {
        if ((st = errors(in->original, tr, in->forget, NULL, NULL, NULL, &l1, &mse)) != LETHE_OK ||
            (st = rows_union(in->forget, in->retain, &all_train)) != LETHE_OK)
            goto done;
        e->original_forget_l1 = l1 * sc;
        lethe_relearn_how how = {cfg->ain_lr, cfg->relearn_batch, cfg->ain_epochs, 0};
        if ((st = relearn_pair(in, &all_train, in->train, in->forget, cfg->ain_slack * l1, &how,
                               cfg->seed, &e->rt_model, &e->rt_model_reached, &e->rt_oracle,
                               &e->rt_oracle_reached, &e->relearn_ratio)) != LETHE_OK)
            goto done;
        const lethe_rows *held = in->forget_test;
        if (in->oracle && held && held->n > 0) {
            lethe_relearn_how dru = {cfg->ain_lr, cfg->ain_batch, cfg->ain_epochs, 1};
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
    lethe_rows_free(&members);
    lethe_rows_free(&nonmembers);
    lethe_rows_free(&all_train);
    free(pm);
    free(po);
    free(wa);
    free(wb);
    e->seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        lethe_regress_eval_free(e);
    return st;
}

int lethe_regress_metrics(const lethe_regress_eval *e, lethe_eval_metric *m)
{
    int n = 0;
#define METRIC(NAME, AGG, PER) m[n++] = (lethe_eval_metric){NAME, (double)(AGG), PER, 0}
#define STEPS(x) ((x) < 0 ? NAN : (double)(x))
    METRIC("forget_L1", e->forget_l1, e->l1_i);
    METRIC("forget_MSE", e->forget_mse, e->sq_i);
    METRIC("retain_L1", e->retain_l1, NULL);
    METRIC("retain_MSE", e->retain_mse, NULL);
    METRIC("test_L1", e->test_l1, NULL);
    METRIC("test_MSE", e->test_mse, NULL);
    METRIC("MIA", e->mia, e->mia_i);
    METRIC("mia_decision", mean(e->mia_decision_i, e->n_forget), e->mia_decision_i);
    METRIC("wasserstein", e->wasserstein, NULL);
    METRIC("abs_diff_to_oracle", e->abs_diff, e->abs_diff_i);
    METRIC("AIN", e->ain, NULL);
    METRIC("ain_steps", STEPS(e->ain_model), NULL);
    METRIC("oracle_ain_steps", STEPS(e->ain_oracle), NULL);
    METRIC("original_heldout_L1", e->original_heldout_l1, NULL);
    METRIC("relearn_ratio", e->relearn_ratio, NULL);
    METRIC("relearn_steps", STEPS(e->rt_model), NULL);
    METRIC("relearn_reached", e->rt_model >= 0 ? e->rt_model_reached : NAN, NULL);
    METRIC("oracle_relearn_steps", STEPS(e->rt_oracle), NULL);
    METRIC("oracle_relearn_reached", e->rt_oracle >= 0 ? e->rt_oracle_reached : NAN, NULL);
    METRIC("original_forget_L1", e->original_forget_l1, NULL);
    METRIC("oracle_forget_L1", e->oracle_forget_l1, e->oracle_l1_i);
    METRIC("oracle_forget_MSE", e->oracle_forget_mse, e->oracle_sq_i);
    METRIC("oracle_retain_L1", e->oracle_retain_l1, NULL);
    METRIC("oracle_retain_MSE", e->oracle_retain_mse, NULL);
    METRIC("oracle_test_L1", e->oracle_test_l1, NULL);
    METRIC("oracle_test_MSE", e->oracle_test_mse, NULL);
    METRIC("oracle_MIA", e->oracle_mia, NULL);
    METRIC("n_forget", e->n_forget, NULL);
    METRIC("n_retain", e->n_retain, NULL);
    METRIC("n_test", e->n_test, NULL);
    METRIC("n_mia_member", e->n_mia_member, NULL);
    METRIC("n_mia_nonmember", e->n_mia_nonmember, NULL);
    METRIC("n_forget_heldout", e->n_forget_heldout, NULL);
    m[n++] = (lethe_eval_metric){"wall_seconds", e->seconds, NULL, 1};
#undef METRIC
#undef STEPS
    return n;
}
