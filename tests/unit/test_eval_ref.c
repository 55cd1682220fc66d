/* The evaluation suites against ports of the reference code they follow
 * (tests/ref/make_metric_fixtures.py, fixture eval_metrics.json): Deep
 * Regression Unlearning's balanced loss attack and Anamnesis Index, SalUn's
 * MIA-efficacy sampling, and the bad-teaching code's Jensen-Shannon
 * divergence. The nets are linear maps with fixed weights, so the features
 * the suites compute are known exactly. */
#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/dataset.h"
#include "lethe/eval.h"
#include "lethe/fileio.h"
#include "lethe/net.h"

static cJSON *fixture(const char *key)
{
    static cJSON *root;
    if (!root) {
        unsigned char *data;
        size_t len;
        if (lethe_file_read(FIXTURES "eval_metrics.json", &data, &len) != LETHE_OK)
            return NULL;
        root = cJSON_Parse((const char *)data);
        free(data);
    }
    return root ? cJSON_GetObjectItem(root, key) : NULL;
}

static double at(const cJSON *obj, const char *key, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(obj, key), i)->valuedouble;
}

static long count(const cJSON *obj, const char *key)
{
    return cJSON_GetArraySize(cJSON_GetObjectItem(obj, key));
}

static double num(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItem(obj, key)->valuedouble;
}

/* rows listed under key */
static lethe_rows rows_of(const cJSON *obj, const char *key)
{
    lethe_rows r = {count(obj, key), NULL};
    r.row = malloc(sizeof(long) * (size_t)(r.n ? r.n : 1));
    for (long i = 0; i < r.n; i++)
        r.row[i] = (long)at(obj, key, (int)i);
    return r;
}

/* A regression set of n rows: d features from key x, targets from key t (0
 * when t is NULL), ids from key ids (or base + i). */
static lethe_dataset *reg_data(const cJSON *c, const char *x, const char *t, const char *ids,
                               uint64_t base, int d)
{
    long n = count(c, x) / d;
    lethe_dataset *ds = lethe_dataset_alloc("ref", LETHE_TASK_REGRESS, n, d, 1);
    ds->t_scale = 1.0;
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < d; k++)
            ds->x[i * d + k] = (float)at(c, x, (int)(i * d + k));
        ds->t[i] = t ? (float)at(c, t, (int)i) : 0.0f;
        ds->ids[i] = ids ? (uint64_t)at(c, ids, (int)i) : base + (uint64_t)i;
    }
    return ds;
}

/* A linear net in -> out with weight (out, in) and bias from w[0 .. out*in + out). */
static lethe_net *linear_net(int in, int out, const float *w)
{
    char spec[64];
    snprintf(spec, sizeof spec, "in=%d;linear=%d", in, out);
    lethe_net *net = lethe_net_init(spec);
    memcpy(net->params + net->layers[0].w_off, w, sizeof(float) * (size_t)(in * out));
    memcpy(net->params + net->layers[0].b_off, w + in * out, sizeof(float) * (size_t)out);
    return net;
}

/* Free a test's net, data sets and forget / retain rows. */
static void sets_free(lethe_net *net, lethe_dataset *tr, lethe_dataset *te, lethe_rows *forget,
                      lethe_rows *retain)
{
    lethe_net_free(net);
    lethe_rows_free(forget);
    lethe_rows_free(retain);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
}

static lethe_rows retain_of(long n, const lethe_rows *forget)
{
    lethe_rows all, retain;
    lethe_rows_all(&all, n);
    lethe_rows_minus(&retain, &all, forget);
    lethe_rows_free(&all);
    return retain;
}

/* The attack's training rows under cfg are the fixture's (nonmembers NULL:
 * every test row); returns the number of mismatches. */
static int attack_rows_differ(const lethe_dataset *tr, const lethe_rows *retain,
                              const lethe_dataset *te, const lethe_mia_cfg *cfg, const cJSON *c,
                              const char *members, const char *nonmembers)
{
    lethe_rows rows[2];
    int bad = lethe_mia_rows(tr, retain, te, cfg, &rows[0], &rows[1]) != LETHE_OK;
    for (int k = 0; k < 2 && !bad; k++) {
        const char *key = k ? nonmembers : members;
        long want = key ? count(c, key) : te->n;
        bad += rows[k].n != want;
        for (long i = 0; i < rows[k].n && i < want; i++)
            bad += rows[k].row[i] != (key ? (long)at(c, key, (int)i) : i);
    }
    lethe_rows_free(&rows[0]);
    lethe_rows_free(&rows[1]);
    return bad;
}

/* Deep Regression Unlearning's loss attack trains on equal numbers of
 * members and non-members: the keyed subsamples are the port's, and the
 * share of the forget set judged member is the reference's exactly (the SVC
 * agrees with scikit-learn to the last digit on its own fixtures). */
TEST(eval_regress_mia_matches_dru_port)
{
    const cJSON *c = fixture("dru_mia");
    CHECK_MSG(c, "cannot load eval_metrics.json");
    lethe_dataset *tr = reg_data(c, "x", NULL, "ids", 0, 1);
    lethe_dataset *te = reg_data(c, "x_test", NULL, "ids_test", 0, 1);
    lethe_rows forget = rows_of(c, "forget"), retain = retain_of(tr->n, &forget);
    const float w[2] = {1.0f, 0.0f}; /* the identity: the L1 loss is x */
    lethe_net *net = linear_net(1, 1, w);
    lethe_regress_cfg cfg;
    lethe_regress_defaults(&cfg);
    cfg.seed = cfg.mia.seed = (uint64_t)num(c, "seed");
    lethe_regress_inputs in = {net, NULL, NULL, tr, te, &forget, &retain};
    lethe_regress_eval e;
    CHECK_OK(lethe_eval_regress(&in, &cfg, &e));
    CHECK(e.n_mia_member == count(c, "members") && e.n_mia_nonmember == count(c, "nonmembers"));
    CHECK(e.n_mia_member == e.n_mia_nonmember);
    CHECK(!attack_rows_differ(tr, &retain, te, &cfg.mia, c, "members", "nonmembers"));
    for (long i = 0; i < forget.n; i++)
        CHECK(e.mia_i[i] == 100.0 * at(c, "predict", (int)i));
    CHECK_CLOSE(e.mia, num(c, "member_rate"), 1e-12, 0);
    lethe_regress_eval_free(&e);
    sets_free(net, tr, te, &forget, &retain);
}

/* SalUn's sampling (the first |D_test| retain rows against all of D_test)
 * gives the port's MIA-efficacy exactly. */
TEST(eval_classify_salun_sampling_matches_port)
{
    const cJSON *c = fixture("salun_mia");
    CHECK_MSG(c, "cannot load eval_metrics.json");
    int K = (int)num(c, "K");
    lethe_dataset *tr = lethe_dataset_alloc("ref", LETHE_TASK_CLASSIFY, count(c, "labels"), K, 0);
    lethe_dataset *te =
        lethe_dataset_alloc("ref", LETHE_TASK_CLASSIFY, count(c, "labels_test"), K, 0);
    tr->n_classes = te->n_classes = K;
    for (int s = 0; s < 2; s++) {
        lethe_dataset *ds = s ? te : tr;
        for (long i = 0; i < ds->n; i++) {
            ds->y[i] = (int)at(c, s ? "labels_test" : "labels", (int)i);
            ds->ids[i] = (uint64_t)(s * 100000 + i);
            for (int k = 0; k < K; k++)
                ds->x[i * K + k] = (float)at(c, s ? "logits_test" : "logits", (int)(i * K + k));
        }
    }
    lethe_rows forget = rows_of(c, "forget"), retain = retain_of(tr->n, &forget);
    float w[12] = {0};
    for (int k = 0; k < K; k++)
        w[k * K + k] = 1.0f; /* the identity: the logits are x */
    lethe_net *net = linear_net(K, K, w);
    lethe_classify_cfg cfg;
    lethe_classify_defaults(&cfg);
    cfg.mia.sampling = LETHE_MIA_SAMPLE_SALUN;
    lethe_classify_inputs in = {net, NULL, NULL, tr, te, &forget, &retain};
    lethe_classify_eval e;
    CHECK_OK(lethe_eval_classify(&in, &cfg, &e));
    CHECK(e.n_mia_member == count(c, "members") && e.n_mia_nonmember == te->n);
    CHECK_CLOSE(e.mia, num(c, "efficacy"), 1e-12, 0);
    CHECK(!attack_rows_differ(tr, &retain, te, &cfg.mia, c, "members", NULL));
    lethe_classify_eval_free(&e);
    sets_free(net, tr, te, &forget, &retain);
}

/* The Anamnesis Index as DRU's ain() counts it: Adam on all training data
 * in lethe's keyed order, the held-out forget rows' L1 as a mean of batch
 * means (13 held-out rows in batches of 8), at least one step. The port
 * trains the same linear net in torch; the step counts agree exactly and the
 * held-out L1 to float rounding. */
TEST(eval_regress_ain_matches_dru_port)
{
    const cJSON *c = fixture("ain_dru");
    CHECK_MSG(c, "cannot load eval_metrics.json");
    int d = (int)num(c, "d");
    lethe_dataset *tr = reg_data(c, "x", "t", "ids", 0, d);
    lethe_dataset *te = reg_data(c, "x_test", "t_test", NULL, 900000, d);
    lethe_rows forget = rows_of(c, "forget"), held = rows_of(c, "heldout");
    lethe_rows retain = retain_of(tr->n, &forget);
    float p[3][3];
    const char *keys[3] = {"model", "oracle", "original"};
    for (int n = 0; n < 3; n++)
        for (int k = 0; k <= d; k++)
            p[n][k] = (float)at(c, keys[n], k);
    lethe_net *model = linear_net(d, 1, p[0]), *oracle = linear_net(d, 1, p[1]),
              *orig = linear_net(d, 1, p[2]);
    lethe_regress_cfg cfg;
    lethe_regress_defaults(&cfg);
    cfg.seed = (uint64_t)num(c, "seed");
    cfg.ain_lr = (float)num(c, "lr");
    cfg.ain_batch = (int)num(c, "batch");
    cfg.ain_epochs = (int)num(c, "epochs");
    cfg.ain_slack = num(c, "slack");
    lethe_regress_inputs in = {model, oracle, orig, tr, te, &forget, &retain, &held};
    lethe_regress_eval e;
    CHECK_OK(lethe_eval_regress(&in, &cfg, &e));
    CHECK_CLOSE(e.original_heldout_l1, num(c, "original_heldout_l1"), 1e-6, 0);
    CHECK_MSG(e.ain_model == (long)num(c, "rt_model") && e.ain_oracle == (long)num(c, "rt_oracle"),
              "steps %ld / %ld, the port's %g / %g", e.ain_model, e.ain_oracle,
              num(c, "rt_model"), num(c, "rt_oracle"));
    CHECK(e.ain_model_reached == (int)num(c, "reached_model") &&
          e.ain_oracle_reached == (int)num(c, "reached_oracle"));
    CHECK_CLOSE(e.ain, num(c, "ain"), 1e-12, 0);
    CHECK(e.n_forget_heldout == held.n);
    lethe_regress_eval_free(&e);
    /* the original is within the target from the start and still counts the
     * paper's first step (lethe's relearn ratio counts 0) */
    lethe_regress_inputs self = {orig, oracle, orig, tr, te, &forget, &retain, &held};
    CHECK_OK(lethe_eval_regress(&self, &cfg, &e));
    CHECK(e.ain_model == (long)num(c, "rt_original") && e.ain_model == 1 && e.rt_model == 0);
    lethe_regress_eval_free(&e);
    /* without held-out rows there is no AIN, and the relearn ratio stays */
    lethe_regress_inputs none = {model, oracle, orig, tr, te, &forget, &retain, NULL};
    CHECK_OK(lethe_eval_regress(&none, &cfg, &e));
    CHECK(isnan(e.ain) && e.ain_model == -1 && e.rt_model >= 0 && e.n_forget_heldout == 0);
    lethe_regress_eval_free(&e);
    lethe_net_free(oracle);
    lethe_net_free(orig);
    lethe_rows_free(&held);
    sets_free(model, tr, te, &forget, &retain);
}

/* The Jensen-Shannon divergence of the paper and of the bad-teaching code
 * (KL(m||.) averaged over every sample and class) against the port, per
 * sample and through the suite (the model and the oracle read the two
 * halves of the features). */
TEST(eval_js_matches_bad_teaching_port)
{
    const cJSON *c = fixture("js");
    CHECK_MSG(c, "cannot load eval_metrics.json");
    int K = (int)num(c, "K");
    long n = count(c, "logits_p") / K;
    double p[8], q[8], bad = 0;
    for (long i = 0; i < n; i++) {
        double sp = 0, sq = 0;
        for (int k = 0; k < K; k++) {
            sp += p[k] = exp((float)at(c, "logits_p", (int)(i * K + k)));
            sq += q[k] = exp((float)at(c, "logits_q", (int)(i * K + k)));
        }
        for (int k = 0; k < K; k++) {
            p[k] /= sp;
            q[k] /= sq;
        }
        CHECK_CLOSE(lethe_js_divergence(p, q, K, LETHE_JS_PAPER), at(c, "paper", (int)i), 1e-12,
                    1e-15);
        bad += lethe_js_divergence(p, q, K, LETHE_JS_BAD_TEACHING) / (double)n;
    }
    CHECK_CLOSE(bad, num(c, "bad_teaching"), 1e-12, 0);

    /* rows 0..n-1 are the forget set, n..2n-1 copies that form D_r */
    lethe_dataset *tr = lethe_dataset_alloc("ref", LETHE_TASK_CLASSIFY, 2 * n, 2 * K, 0);
    lethe_dataset *te = lethe_dataset_alloc("ref", LETHE_TASK_CLASSIFY, n, 2 * K, 0);
    tr->n_classes = te->n_classes = K;
    for (long i = 0; i < 2 * n; i++) {
        for (int k = 0; k < K; k++) {
            tr->x[i * 2 * K + k] = (float)at(c, "logits_p", (int)((i % n) * K + k));
            tr->x[i * 2 * K + K + k] = (float)at(c, "logits_q", (int)((i % n) * K + k));
        }
        tr->y[i] = (int)(i % K);
        tr->ids[i] = (uint64_t)i;
        if (i < n) {
            memcpy(te->x + i * 2 * K, tr->x + i * 2 * K, sizeof(float) * (size_t)(2 * K));
            te->y[i] = tr->y[i];
            te->ids[i] = 1000 + (uint64_t)i;
        }
    }
    float wm[40] = {0}, wo[40] = {0}; /* (K, 2K) weights, then K biases */
    for (int k = 0; k < K; k++) {
        wm[k * 2 * K + k] = 1.0f;
        wo[k * 2 * K + K + k] = 1.0f;
    }
    lethe_net *model = linear_net(2 * K, K, wm), *oracle = linear_net(2 * K, K, wo);
    lethe_rows forget, retain;
    lethe_rows_all(&forget, n);
    retain = retain_of(tr->n, &forget);
    lethe_classify_cfg cfg;
    lethe_classify_defaults(&cfg);
    lethe_classify_inputs in = {model, oracle, NULL, tr, te, &forget, &retain};
    lethe_classify_eval e, eb;
    CHECK_OK(lethe_eval_classify(&in, &cfg, &e));
    CHECK_CLOSE(e.js, num(c, "paper_mean"), 1e-6, 0);
    cfg.js = LETHE_JS_BAD_TEACHING;
    CHECK_OK(lethe_eval_classify(&in, &cfg, &eb));
    CHECK_CLOSE(eb.js, num(c, "bad_teaching"), 1e-6, 0);
    /* ZRF is 1 - the same divergence against the random net */
    CHECK(eb.zrf != e.zrf && eb.zrf > e.zrf);
    lethe_classify_eval_free(&e);
    lethe_classify_eval_free(&eb);
    lethe_js_kind kind;
    CHECK_OK(lethe_js_kind_parse("bad-teaching", &kind));
    CHECK(kind == LETHE_JS_BAD_TEACHING && !strcmp(lethe_js_kind_name(kind), "bad-teaching"));
    CHECK_STATUS(lethe_js_kind_parse("kl", &kind), LETHE_ERR_INVALID);
    lethe_net_free(oracle);
    sets_free(model, tr, te, &forget, &retain);
}
