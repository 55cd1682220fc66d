/* The classification and regression suites on run directories
 * (lethe/eval.h, "a run of the suites"): the runs and the split loaded, the
 * suite run, its files written. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/run.h"
#include "lethe/task.h"

/* The model's run and data, the forget / retain rows, and the optional
 * oracle and original runs (which must be of the same task). */
typedef struct inputs {
    lethe_run *run, *oracle, *original;
    lethe_dataset *train, *test;
    lethe_rows forget, retain, all, forget_test;
} inputs;

static void inputs_free(inputs *in)
{
    lethe_run_free(in->run);
    lethe_run_free(in->oracle);
    lethe_run_free(in->original);
    lethe_dataset_free(in->train);
    lethe_dataset_free(in->test);
    lethe_rows_free(&in->forget);
    lethe_rows_free(&in->retain);
    lethe_rows_free(&in->all);
    lethe_rows_free(&in->forget_test);
}

static lethe_status load_other(const char *dir, const char *what, const lethe_run *model,
                               lethe_run **out)
{
    if (!dir)
        return LETHE_OK;
    lethe_status st = lethe_run_load(dir, out);
    if (st == LETHE_OK && strcmp((*out)->task, model->task))
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the %s was trained on '%s', the model on '%s'",
                        dir, what, (*out)->task, model->task);
    return st;
}

static lethe_status load_inputs(const lethe_eval_runs *r, inputs *in)
{
    if (!r->run || !r->forget)
        return lethe_fail(LETHE_ERR_INVALID, "an evaluation needs a run and a forget split");
    lethe_status st = lethe_run_load(r->run, &in->run);
    if (st == LETHE_OK)
        st = lethe_run_data(in->run, &in->train, &in->test);
    if (st == LETHE_OK)
        st = lethe_split_select(in->train, r->forget, r->split_seed, &in->forget);
    if (st == LETHE_OK && (st = lethe_rows_all(&in->all, in->train->n)) == LETHE_OK)
        st = lethe_rows_minus(&in->retain, &in->all, &in->forget);
    if (st == LETHE_OK && in->retain.n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "the forget split %s selects every training sample; "
                        "nothing is left to retain", r->forget);
    /* a target range also selects held-out rows of the test set (none in
     * range: AIN is not measured) */
    if (st == LETHE_OK && !strncmp(r->forget, "range:", 6) &&
        lethe_split_select(in->test, r->forget, 0, &in->forget_test) != LETHE_OK) {
        lethe_rows_free(&in->forget_test);
        lethe_error_clear();
    }
    if (st == LETHE_OK)
        st = load_other(r->oracle, "oracle", in->run, &in->oracle);
    if (st == LETHE_OK)
        st = load_other(r->original, "original model", in->run, &in->original);
    return st;
}

/* Write the suite's files and copy its aggregates into res. */
static lethe_status finish(const lethe_eval_runs *r, const char *suite,
                           const lethe_eval_metric *m, int n, const uint64_t *ids, long n_ids,
                           lethe_eval_run_result *res)
{
    const char *dir = r->out ? r->out : r->run;
    lethe_status st = lethe_run_mkdir(dir);
    if (st == LETHE_OK)
        st = lethe_eval_write(dir, suite, m, n, ids, n_ids);
    if (st == LETHE_OK && res) {
        res->n = n;
        for (int i = 0; i < n; i++) {
            res->m[i] = m[i];
            res->m[i].per_sample = NULL; /* freed with the suite's result */
        }
    }
    return st;
}

static lethe_net *net_of(const lethe_run *r) { return r ? r->net : NULL; }

lethe_status lethe_eval_classify_run(const lethe_eval_runs *r, const lethe_classify_cfg *cfg,
                                     lethe_eval_run_result *res)
{
    inputs in = {0};
    lethe_classify_eval e = {0};
    lethe_status st = load_inputs(r, &in);
    if (st == LETHE_OK) {
        lethe_classify_inputs ci = {in.run->net, net_of(in.oracle), net_of(in.original),
                                    in.train, in.test, &in.forget, &in.retain};
        st = lethe_eval_classify(&ci, cfg, &e);
    }
    if (st == LETHE_OK) {
        lethe_eval_metric m[LETHE_EVAL_MAX_METRICS];
        int n = lethe_classify_metrics(&e, m);
        st = finish(r, "CLASSIFY", m, n, e.ids, e.n_forget, res);
    }
    lethe_classify_eval_free(&e);
    inputs_free(&in);
    return st;
}

lethe_status lethe_eval_regress_run(const lethe_eval_runs *r, const lethe_regress_cfg *cfg,
                                    lethe_eval_run_result *res)
{
    inputs in = {0};
    lethe_regress_eval e = {0};
    lethe_status st = load_inputs(r, &in);
    if (st == LETHE_OK) {
        lethe_regress_inputs ri = {in.run->net, net_of(in.oracle), net_of(in.original),
                                   in.train, in.test, &in.forget, &in.retain, &in.forget_test};
        st = lethe_eval_regress(&ri, cfg, &e);
    }
    if (st == LETHE_OK) {
        lethe_eval_metric m[LETHE_EVAL_MAX_METRICS];
        int n = lethe_regress_metrics(&e, m);
        st = finish(r, "REGRESS", m, n, e.ids, e.n_forget, res);
    }
    lethe_regress_eval_free(&e);
    inputs_free(&in);
    return st;
}
