/* The classification suite (docs/metrics.md): UA, RA, TA, MIA-efficacy
 * (Fan et al., SalUn, ICLR 2024), activation distance and Jensen-Shannon
 * divergence to the oracle and ZRF (Chundawat et al., "Can bad teaching
 * induce forgetting?", AAAI 2023), relearn time, and Avg. Gap (SalUn). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/mem.h"
#include "lethe/optim.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/train.h"
#include "suite.h"

#define STREAM_ZRF 0x2e70ull
#define STREAM_RELEARN_DROPOUT 0x4e1eull

void lethe_classify_defaults(lethe_classify_cfg *cfg)
{
    lethe_mia_defaults(&cfg->mia);
    cfg->js = LETHE_JS_PAPER;
    cfg->seed = 0;
    cfg->relearn_lr = 1e-3f;
    cfg->relearn_batch = 32;
    cfg->relearn_max_steps = 500;
    cfg->relearn_cap = 1000;
    cfg->relearn_tol = 0.0;
    cfg->progress = NULL;
}

/* ----------------------------------------------------------------- helpers */

/* Softmax probabilities (n, K) in double of net on rows (NULL: all rows). */
static lethe_status probs_of(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                             double **out)
{
    long n = rows ? rows->n : ds->n, K = net->n_out;
    float *z = lethe_calloc((size_t)(n ? n : 1) * (size_t)K, sizeof(float));
    double *p = malloc(sizeof(double) * (size_t)((n ? n : 1) * K));
    lethe_status st = z && p ? lethe_eval_outputs(net, ds, rows, z)
                             : lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld outputs", n);
    for (long i = 0; st == LETHE_OK && i < n; i++) {
        const float *zi = z + i * K;
        double *pi = p + i * K, mx = zi[0], sum = 0;
        for (long k = 1; k < K; k++)
            mx = fmax(mx, zi[k]);
        for (long k = 0; k < K; k++)
            sum += pi[k] = exp(zi[k] - mx);
        for (long k = 0; k < K; k++)
            pi[k] /= sum;
    }
    lethe_free(z);
    if (st != LETHE_OK) {
        free(p);
        p = NULL;
    }
    *out = p;
    return st;
}

/* The predicted class: the first index of the largest probability. */
static int argmax(const double *p, long K)
{
    int best = 0;
    for (long k = 1; k < K; k++)
        if (p[k] > p[best])
            best = (int)k;
    return best;
}

/* Accuracy (%) of net on rows (NULL: all rows); scratch holds n * K floats. */
static lethe_status accuracy(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                             float *scratch, double *acc)
{
    long n = rows ? rows->n : ds->n, K = net->n_out, hits = 0;
    lethe_status st = lethe_eval_outputs(net, ds, rows, scratch);
    if (st != LETHE_OK)
        return st;
    for (long i = 0; i < n; i++) {
        const float *z = scratch + i * K;
        long best = 0;
        for (long k = 1; k < K; k++)
            if (z[k] > z[best])
                best = k;
        hits += best == ds->y[rows ? rows->row[i] : i];
    }
    *acc = n ? 100.0 * (double)hits / (double)n : NAN;
    return LETHE_OK;
}

static lethe_status accuracy_alloc(lethe_net *net, const lethe_dataset *ds,
                                   const lethe_rows *rows, double *acc)
{
    long n = rows ? rows->n : ds->n;
    float *z = lethe_calloc((size_t)(n ? n : 1) * (size_t)net->n_out, sizeof(float));
    if (!z)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld outputs", n);
    lethe_status st = accuracy(net, ds, rows, z, acc);
    lethe_free(z);
    return st;
}

lethe_status lethe_js_kind_parse(const char *name, lethe_js_kind *out)
{
    if (!strcmp(name, "paper") || !strcmp(name, "bad-teaching")) {
        *out = name[0] == 'p' ? LETHE_JS_PAPER : LETHE_JS_BAD_TEACHING;
        return LETHE_OK;
    }
    return lethe_fail(LETHE_ERR_INVALID,
                      "unknown Jensen-Shannon divergence '%s' (paper or bad-teaching)", name);
}

const char *lethe_js_kind_name(lethe_js_kind k)
{
    return k == LETHE_JS_BAD_TEACHING ? "bad-teaching" : "paper";
}

/* paper: 1/2 KL(p||m) + 1/2 KL(q||m) (terms with p_k = 0 count 0);
 * bad-teaching: (1/2 KL(m||p) + 1/2 KL(m||q)) / K. */
double lethe_js_divergence(const double *p, const double *q, long K, lethe_js_kind kind)
{
    double s = 0;
    for (long k = 0; k < K; k++) {
        double m = 0.5 * (p[k] + q[k]);
        if (kind == LETHE_JS_BAD_TEACHING) {
            if (m > 0)
                s += 0.5 * m * (log(m / p[k]) + log(m / q[k]));
            continue;
        }
        if (p[k] > 0)
            s += 0.5 * p[k] * log(p[k] / m);
        if (q[k] > 0)
            s += 0.5 * q[k] * log(q[k] / m);
    }
    return kind == LETHE_JS_BAD_TEACHING ? s / (double)K : s;
}

static double l2_dist(const double *p, const double *q, long K)
{
    double s = 0;
    for (long k = 0; k < K; k++)
        s += (p[k] - q[k]) * (p[k] - q[k]);
    return sqrt(s);
}

/* --------------------------------------------------------------- relearn */

/* Whether the copy's accuracy on the relearning rows has reached the target. */
struct acc_target {
    const lethe_dataset *ds;
    const lethe_rows *rows;
    float *z;
    double target;
};

static lethe_status acc_reached(lethe_net *copy, void *user, int *reached)
{
    struct acc_target *t = user;
    double acc;
    lethe_status st = accuracy(copy, t->ds, t->rows, t->z, &acc);
    *reached = st == LETHE_OK && acc >= t->target - 1e-9;
    return st;
}

/* lethe_relearn_classify, updating progress (may be NULL) after every step. */
static lethe_status relearn(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                            double target, float lr, int batch, long max_steps, uint64_t seed,
                            lethe_progress *progress, long *steps, int *reached)
{
    struct acc_target t = {ds, rows, NULL, target};
    t.z = lethe_calloc((size_t)(rows->n ? rows->n : 1) * (size_t)net->n_out, sizeof(float));
    if (!t.z) {
        *steps = 0;
        *reached = 0;
        return lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
    }
    eval_relearn r = {ds, rows, LETHE_LOSS_XENT, lr, batch, INT_MAX, max_steps, 0, seed,
                      STREAM_RELEARN_DROPOUT, acc_reached, &t, progress};
    lethe_status st = eval_relearn_run(net, &r, steps, reached);
    lethe_free(t.z);
    return st;
}

lethe_status lethe_relearn_classify(lethe_net *net, const lethe_dataset *ds,
                                    const lethe_rows *rows, double target, float lr, int batch,
                                    long max_steps, uint64_t seed, long *steps, int *reached)
{
    return relearn(net, ds, rows, target, lr, batch, max_steps, seed, NULL, steps, reached);
}

/* ------------------------------------------------------------------ suite */

/* UA, RA, TA and MIA-efficacy of one net. forget_p receives its forget-set
 * probabilities, ua_i / mia_i / conf_i / feat_i / dec_i its per-sample values
 * (each may be NULL). */
struct basic {
    double ua, ra, ta, mia, conf;
    long n_member, n_nonmember;
};

static lethe_status basic_metrics(lethe_net *net, const lethe_classify_inputs *in,
                                  const lethe_classify_cfg *cfg, const lethe_rows *members,
                                  const lethe_rows *nonmembers, double **forget_p,
                                  struct basic *b, double *ua_i, double *mia_i, double *conf_i,
                                  double *feat_i, double *dec_i)
{
    const lethe_dataset *tr = in->train, *te = in->test;
    long nf = in->forget->n, K = net->n_out;
    lethe_status st = probs_of(net, tr, in->forget, forget_p);
    if (st != LETHE_OK)
        return st;
    long hits = 0;
    double conf = 0;
    for (long i = 0; i < nf; i++) {
        const double *p = *forget_p + i * K;
        int y = tr->y[in->forget->row[i]];
        int ok = argmax(p, K) == y;
        hits += ok;
        conf += p[y];
        if (ua_i)
            ua_i[i] = ok ? 0.0 : 100.0;
        if (conf_i)
            conf_i[i] = p[y];
    }
    b->ua = 100.0 - 100.0 * (double)hits / (double)nf;
    b->conf = conf / (double)nf;
    if ((st = accuracy_alloc(net, tr, in->retain, &b->ra)) != LETHE_OK ||
        (st = accuracy_alloc(net, te, NULL, &b->ta)) != LETHE_OK)
        return st;
    double rate;
    if ((st = lethe_mia_run(net, tr, te, members, nonmembers, in->forget, &cfg->mia, feat_i,
                            mia_i, dec_i, &rate)) != LETHE_OK)
        return st;
    b->mia = 100.0 - rate; /* efficacy: the share judged non-member */
    b->n_member = members->n;
    b->n_nonmember = nonmembers->n;
    for (long i = 0; mia_i && i < nf; i++)
        mia_i[i] = 100.0 - mia_i[i];
    return LETHE_OK;
}

void lethe_classify_eval_free(lethe_classify_eval *e)
{
    void *arrays[] = {e->ids,   e->ua_i,  e->confidence_i, e->mia_feature_i, e->mia_decision_i,
                      e->mia_i, e->zrf_i, e->js_i,         e->act_i,         e->oracle_ua_i};
    eval_free_each(arrays, sizeof arrays / sizeof *arrays);
    memset(e, 0, sizeof *e);
}

int lethe_classify_metrics(const lethe_classify_eval *e, lethe_eval_metric *m)
{
    int have_rl = e->relearn_steps >= 0, have_orl = e->oracle_relearn_steps >= 0;
    long nf = e->n_forget;
    const lethe_eval_metric list[] = {
        /* the model's */
        {"UA", e->ua, e->ua_i}, {"RA", e->ra}, {"TA", e->ta}, {"MIA_efficacy", e->mia, e->mia_i},
        {"avg_gap", e->avg_gap}, {"activation_distance", e->act_dist, e->act_i},
        {"JS_divergence", e->js, e->js_i}, {"ZRF", e->zrf, e->zrf_i},
        {"relearn_steps", eval_steps(e->relearn_steps)},
        {"relearn_reached", have_rl ? e->relearn_reached : NAN},
        {"relearn_target", e->relearn_target},
        {"forget_confidence", e->confidence, e->confidence_i},
        {"mia_feature", eval_mean(e->mia_feature_i, nf), e->mia_feature_i},
        {"mia_decision", eval_mean(e->mia_decision_i, nf), e->mia_decision_i},
        /* the oracle's */
        {"oracle_UA", e->oracle_ua, e->oracle_ua_i}, {"oracle_RA", e->oracle_ra},
        {"oracle_TA", e->oracle_ta}, {"oracle_MIA_efficacy", e->oracle_mia},
        {"oracle_relearn_steps", eval_steps(e->oracle_relearn_steps)},
        {"oracle_relearn_reached", have_orl ? e->oracle_relearn_reached : NAN},
        {"relearn_ratio", e->relearn_ratio},
        /* sizes and time */
        {"n_forget", nf}, {"n_retain", e->n_retain}, {"n_test", e->n_test},
        {"n_mia_member", e->n_mia_member}, {"n_mia_nonmember", e->n_mia_nonmember},
        {"n_relearn", have_rl ? (double)e->n_relearn : NAN}, {"wall_seconds", e->seconds, NULL, 1}};
    return eval_metrics_copy(m, list, sizeof list / sizeof *list);
}

lethe_status lethe_eval_classify(const lethe_classify_inputs *in, const lethe_classify_cfg *cfg,
                                 lethe_classify_eval *e)
{
    const lethe_dataset *tr = in->train;
    lethe_rows members = {0}, nonmembers = {0}, rl = {0};
    double *pm = NULL, *po = NULL, *pr = NULL, t0;
    lethe_net *rnd = NULL;
    lethe_status st = eval_start(e, sizeof *e, &t0, LETHE_TASK_CLASSIFY, tr, in->test, in->forget,
                                 in->retain, in->model, in->oracle, in->original);
    if (st != LETHE_OK)
        return st;
    long nf = in->forget->n, K = tr->n_classes;
    e->n_forget = nf;
    e->n_retain = in->retain->n;
    e->n_test = in->test->n;
    e->oracle_ua = e->oracle_ra = e->oracle_ta = e->oracle_mia = NAN;
    e->avg_gap = e->act_dist = e->js = e->relearn_target = e->relearn_ratio = NAN;
    e->relearn_steps = e->oracle_relearn_steps = -1;
    EVAL_ALLOC(e->ids, nf);
    EVAL_ALLOC(e->ua_i, nf);
    EVAL_ALLOC(e->confidence_i, nf);
    EVAL_ALLOC(e->mia_feature_i, nf);
    EVAL_ALLOC(e->mia_decision_i, nf);
    EVAL_ALLOC(e->mia_i, nf);
    EVAL_ALLOC(e->zrf_i, nf);
    for (long i = 0; i < nf; i++)
        e->ids[i] = tr->ids[in->forget->row[i]];
    eval_progress_begin(cfg->progress, 2 + !!in->oracle + (in->original ? 1 + !!in->oracle : 0));

    if ((st = lethe_mia_rows(tr, in->retain, in->test, &cfg->mia, &members, &nonmembers)) !=
        LETHE_OK)
        goto done;

    struct basic bm, bo;
    if ((st = basic_metrics(in->model, in, cfg, &members, &nonmembers, &pm, &bm, e->ua_i,
                            e->mia_i, e->confidence_i, e->mia_feature_i, e->mia_decision_i)) !=
        LETHE_OK)
        goto done;
    e->ua = bm.ua;
    e->ra = bm.ra;
    e->ta = bm.ta;
    e->mia = bm.mia;
    e->confidence = bm.conf;
    e->n_mia_member = bm.n_member;
    e->n_mia_nonmember = bm.n_nonmember;
    eval_stage_done(cfg->progress);

    if (in->oracle) {
        EVAL_ALLOC(e->js_i, nf);
        EVAL_ALLOC(e->act_i, nf);
        EVAL_ALLOC(e->oracle_ua_i, nf);
        if ((st = basic_metrics(in->oracle, in, cfg, &members, &nonmembers, &po, &bo,
                                e->oracle_ua_i, NULL, NULL, NULL, NULL)) != LETHE_OK)
            goto done;
        e->oracle_ua = bo.ua;
        e->oracle_ra = bo.ra;
        e->oracle_ta = bo.ta;
        e->oracle_mia = bo.mia;
        e->avg_gap = (fabs(bm.ua - bo.ua) + fabs(bm.mia - bo.mia) + fabs(bm.ra - bo.ra) +
                      fabs(bm.ta - bo.ta)) /
                     4.0;
        for (long i = 0; i < nf; i++) {
            e->js_i[i] = lethe_js_divergence(pm + i * K, po + i * K, K, cfg->js);
            e->act_i[i] = l2_dist(pm + i * K, po + i * K, K);
        }
        e->js = eval_mean(e->js_i, nf);
        e->act_dist = eval_mean(e->act_i, nf);
        eval_stage_done(cfg->progress);
    }

    /* ZRF against a freshly initialised net of the same architecture */
    if (!(rnd = lethe_net_init(in->model->spec))) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    lethe_net_init_params(rnd, lethe_rng_hash(cfg->seed, STREAM_ZRF, 0));
    if ((st = probs_of(rnd, tr, in->forget, &pr)) != LETHE_OK)
        goto done;
    for (long i = 0; i < nf; i++)
        e->zrf_i[i] = 1.0 - lethe_js_divergence(pm + i * K, pr + i * K, K, cfg->js);
    e->zrf = eval_mean(e->zrf_i, nf);
    eval_stage_done(cfg->progress);

    /* relearn time on a keyed subsample of D_f, against the original */
    if (in->original) {
        double acc0;
        if ((st = lethe_eval_subsample(tr, in->forget, cfg->relearn_cap, cfg->seed, &rl)) !=
                LETHE_OK ||
            (st = accuracy_alloc(in->original, tr, &rl, &acc0)) != LETHE_OK)
            goto done;
        e->n_relearn = rl.n;
        e->relearn_target = (1.0 - cfg->relearn_tol) * acc0;
        if ((st = relearn(in->model, tr, &rl, e->relearn_target, cfg->relearn_lr,
                          cfg->relearn_batch, cfg->relearn_max_steps, cfg->seed, cfg->progress,
                          &e->relearn_steps, &e->relearn_reached)) != LETHE_OK)
            goto done;
        eval_stage_done(cfg->progress);
        if (in->oracle) {
            if ((st = relearn(in->oracle, tr, &rl, e->relearn_target, cfg->relearn_lr,
                              cfg->relearn_batch, cfg->relearn_max_steps, cfg->seed,
                              cfg->progress, &e->oracle_relearn_steps,
                              &e->oracle_relearn_reached)) != LETHE_OK)
                goto done;
            eval_stage_done(cfg->progress);
            if (e->oracle_relearn_steps > 0)
                e->relearn_ratio = (double)e->relearn_steps / (double)e->oracle_relearn_steps;
        }
    }
done:
    lethe_rows_free(&rl);
    lethe_net_free(rnd);
    void *scratch[] = {members.row, nonmembers.row, pm, po, pr};
    eval_free_each(scratch, sizeof scratch / sizeof *scratch);
    e->seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        lethe_classify_eval_free(e);
    return st;
}
