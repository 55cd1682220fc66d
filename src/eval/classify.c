/* The classification suite (docs/metrics.md): UA, RA, TA, MIA-efficacy
 * (Fan et al., SalUn, ICLR 2024), activation distance and Jensen-Shannon
 * divergence to the oracle and ZRF (Chundawat et al., "Can bad teaching
 * induce forgetting?", AAAI 2023), relearn time, and Avg. Gap (SalUn). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/eval.h"
#include "lethe/mem.h"
#include "lethe/optim.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/train.h"

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

static double mean(const double *v, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : NAN;
}

static lethe_status check_net(const char *what, const lethe_net *net, const lethe_dataset *ds)
{
    if (net->n_in != ds->d || net->n_out != ds->n_classes)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: the %s maps %ld features to %ld outputs; the data has %d features "
                          "and %d classes",
                          ds->name, what, net->n_in, net->n_out, ds->d, ds->n_classes);
    return LETHE_OK;
}

/* --------------------------------------------------------------- relearn */

lethe_status lethe_relearn_classify(lethe_net *net, const lethe_dataset *ds,
                                    const lethe_rows *rows, double target, float lr, int batch,
                                    long max_steps, uint64_t seed, long *steps, int *reached)
{
    *steps = 0;
    *reached = 0;
    if (rows->n == 0 || batch <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "relearning needs samples and a positive batch");
    lethe_status st = LETHE_OK;
    lethe_net *copy = lethe_net_init(net->spec);
    lethe_optim *opt = copy ? lethe_optim_init(LETHE_OPTIM_ADAMW, copy->n_params) : NULL;
    long *order = malloc(sizeof(long) * (size_t)rows->n);
    float *z = lethe_calloc((size_t)rows->n * (size_t)net->n_out, sizeof(float));
    if (!copy || !opt || !order || !z) {
        st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
        goto done;
    }
    memcpy(copy->params, net->params, sizeof(float) * (size_t)net->n_params);
    opt->weight_decay = 0.0f; /* Adam */
    double acc;
    if ((st = accuracy(copy, ds, rows, z, &acc)) != LETHE_OK)
        goto done;
    if (acc >= target - 1e-9) {
        *reached = 1;
        goto done;
    }
    for (int epoch = 0; *steps < max_steps; epoch++) {
        if ((st = lethe_train_order(ds, rows, seed, epoch, order)) != LETHE_OK)
            goto done;
        uint64_t drop = lethe_rng_hash(seed, STREAM_RELEARN_DROPOUT, (uint64_t)epoch);
        for (long b = 0; b < rows->n && *steps < max_steps; b += batch) {
            int B = (int)(rows->n - b < batch ? rows->n - b : batch);
            memset(copy->grads, 0, sizeof(float) * (size_t)copy->n_params);
            double loss = lethe_batch_grad(copy, ds, order + b, B, LETHE_LOSS_XENT, 1, drop, 1.0f,
                                           NULL);
            if (isnan(loss)) {
                st = lethe_fail(LETHE_ERR_NOMEM, "relearning: out of memory");
                goto done;
            }
            lethe_optim_step(opt, copy->params, copy->grads, lr);
            ++*steps;
            if ((st = accuracy(copy, ds, rows, z, &acc)) != LETHE_OK)
                goto done;
            if (acc >= target - 1e-9) {
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
    return st;
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
    lethe_mia_result r = {0};
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
    if ((st = lethe_mia_run(net, tr, te, members, nonmembers, in->forget, &cfg->mia, feat_i,
                            &r)) != LETHE_OK)
        return st;
    b->mia = 100.0 - r.member_rate; /* efficacy: the share judged non-member */
    b->n_member = members->n;
    b->n_nonmember = nonmembers->n;
    for (long i = 0; i < nf; i++) {
        if (mia_i)
            mia_i[i] = r.member[i] ? 0.0 : 100.0;
        if (dec_i)
            dec_i[i] = r.decision[i];
    }
    lethe_mia_result_free(&r);
    return LETHE_OK;
}

void lethe_classify_eval_free(lethe_classify_eval *e)
{
    free(e->ids);
    free(e->ua_i);
    free(e->confidence_i);
    free(e->mia_feature_i);
    free(e->mia_decision_i);
    free(e->mia_i);
    free(e->zrf_i);
    free(e->js_i);
    free(e->act_i);
    free(e->oracle_ua_i);
    memset(e, 0, sizeof *e);
}

static lethe_status check_inputs(const lethe_classify_inputs *in)
{
    const lethe_dataset *tr = in->train, *te = in->test;
    lethe_status st;
    if (tr->task != LETHE_TASK_CLASSIFY)
        return lethe_fail(LETHE_ERR_INVALID,
                          "%s: a regression task; use the regression suite (lethe eval regress)",
                          tr->name);
    if (te->task != LETHE_TASK_CLASSIFY || te->d != tr->d || te->n_classes != tr->n_classes)
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

/* Allocate n elements (at least one) for p, or fail the suite. */
#define ALLOC(p, n)                                                                \
    do {                                                                           \
        long n_ = (n);                                                             \
        if (!((p) = malloc(sizeof *(p) * (size_t)(n_ > 0 ? n_ : 1)))) {            \
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld samples", n_); \
            goto done;                                                             \
        }                                                                          \
    } while (0)

lethe_status lethe_eval_classify(const lethe_classify_inputs *in, const lethe_classify_cfg *cfg,
                                 lethe_classify_eval *e)
{
    memset(e, 0, sizeof *e);
    double t0 = lethe_now();
    lethe_status st = check_inputs(in);
    if (st != LETHE_OK)
        return st;
    const lethe_dataset *tr = in->train;
    long nf = in->forget->n, K = tr->n_classes;
    lethe_rows members = {0}, nonmembers = {0}, relearn = {0};
    double *pm = NULL, *po = NULL, *pr = NULL;
    lethe_net *rnd = NULL;
    e->n_forget = nf;
    e->n_retain = in->retain->n;
    e->n_test = in->test->n;
    e->oracle_ua = e->oracle_ra = e->oracle_ta = e->oracle_mia = NAN;
    e->avg_gap = e->act_dist = e->js = e->relearn_target = e->relearn_ratio = NAN;
    e->relearn_steps = e->oracle_relearn_steps = -1;
    ALLOC(e->ids, nf);
    ALLOC(e->ua_i, nf);
    ALLOC(e->confidence_i, nf);
    ALLOC(e->mia_feature_i, nf);
    ALLOC(e->mia_decision_i, nf);
    ALLOC(e->mia_i, nf);
    ALLOC(e->zrf_i, nf);
    for (long i = 0; i < nf; i++)
        e->ids[i] = tr->ids[in->forget->row[i]];

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

    if (in->oracle) {
        ALLOC(e->js_i, nf);
        ALLOC(e->act_i, nf);
        ALLOC(e->oracle_ua_i, nf);
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
        e->js = mean(e->js_i, nf);
        e->act_dist = mean(e->act_i, nf);
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
    e->zrf = mean(e->zrf_i, nf);

    /* relearn time on a keyed subsample of D_f, against the original */
    if (in->original) {
        double acc0;
        if ((st = lethe_eval_subsample(tr, in->forget, cfg->relearn_cap, cfg->seed, &relearn)) !=
                LETHE_OK ||
            (st = accuracy_alloc(in->original, tr, &relearn, &acc0)) != LETHE_OK)
            goto done;
        e->n_relearn = relearn.n;
        e->relearn_target = (1.0 - cfg->relearn_tol) * acc0;
        if ((st = lethe_relearn_classify(in->model, tr, &relearn, e->relearn_target,
                                         cfg->relearn_lr, cfg->relearn_batch,
                                         cfg->relearn_max_steps, cfg->seed, &e->relearn_steps,
                                         &e->relearn_reached)) != LETHE_OK)
            goto done;
        if (in->oracle) {
            if ((st = lethe_relearn_classify(in->oracle, tr, &relearn, e->relearn_target,
                                             cfg->relearn_lr, cfg->relearn_batch,
                                             cfg->relearn_max_steps, cfg->seed,
                                             &e->oracle_relearn_steps,
                                             &e->oracle_relearn_reached)) != LETHE_OK)
                goto done;
            if (e->oracle_relearn_steps > 0)
                e->relearn_ratio = (double)e->relearn_steps / (double)e->oracle_relearn_steps;
        }
    }
done:
    lethe_rows_free(&members);
    lethe_rows_free(&nonmembers);
    lethe_rows_free(&relearn);
    lethe_net_free(rnd);
    free(pm);
    free(po);
    free(pr);
    e->seconds = lethe_now() - t0;
    if (st != LETHE_OK)
        lethe_classify_eval_free(e);
    return st;
}

int lethe_classify_metrics(const lethe_classify_eval *e, lethe_eval_metric *m)
{
    int n = 0;
#define METRIC(NAME, AGG, PER) m[n++] = (lethe_eval_metric){NAME, (double)(AGG), PER, 0}
#define STEPS(x) ((x) < 0 ? NAN : (double)(x))
    int have_rl = e->relearn_steps >= 0, have_orl = e->oracle_relearn_steps >= 0;
    METRIC("UA", e->ua, e->ua_i);
    METRIC("RA", e->ra, NULL);
    METRIC("TA", e->ta, NULL);
    METRIC("MIA_efficacy", e->mia, e->mia_i);
    METRIC("avg_gap", e->avg_gap, NULL);
    METRIC("activation_distance", e->act_dist, e->act_i);
    METRIC("JS_divergence", e->js, e->js_i);
    METRIC("ZRF", e->zrf, e->zrf_i);
    METRIC("relearn_steps", STEPS(e->relearn_steps), NULL);
    METRIC("relearn_reached", have_rl ? e->relearn_reached : NAN, NULL);
    METRIC("relearn_target", e->relearn_target, NULL);
    METRIC("forget_confidence", e->confidence, e->confidence_i);
    METRIC("mia_feature", mean(e->mia_feature_i, e->n_forget), e->mia_feature_i);
    METRIC("mia_decision", mean(e->mia_decision_i, e->n_forget), e->mia_decision_i);
    METRIC("oracle_UA", e->oracle_ua, e->oracle_ua_i);
    METRIC("oracle_RA", e->oracle_ra, NULL);
    METRIC("oracle_TA", e->oracle_ta, NULL);
    METRIC("oracle_MIA_efficacy", e->oracle_mia, NULL);
    METRIC("oracle_relearn_steps", STEPS(e->oracle_relearn_steps), NULL);
    METRIC("oracle_relearn_reached", have_orl ? e->oracle_relearn_reached : NAN, NULL);
    METRIC("relearn_ratio", e->relearn_ratio, NULL);
    METRIC("n_forget", e->n_forget, NULL);
    METRIC("n_retain", e->n_retain, NULL);
    METRIC("n_test", e->n_test, NULL);
    METRIC("n_mia_member", e->n_mia_member, NULL);
    METRIC("n_mia_nonmember", e->n_mia_nonmember, NULL);
    METRIC("n_relearn", have_rl ? (double)e->n_relearn : NAN, NULL);
    m[n++] = (lethe_eval_metric){"wall_seconds", e->seconds, NULL, 1};
#undef METRIC
#undef STEPS
    return n;
}
