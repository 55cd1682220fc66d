/* IAU, LAF (and LAF+R) and Blindspot on tiny problems, each against an
 * independent computation of its defining behaviour, and the segmented
 * networks they backpropagate through. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "../../src/unlearn/common.h"
#include "lethe/rng.h"

/* Three Gaussian blobs in 4-D (class k shifted along axis k), ids 500 + i;
 * regression targets x0 - 0.5 x1 + noise. */
static lethe_dataset *blobs(lethe_task task, long n)
{
    lethe_dataset *ds = lethe_dataset_alloc("blobs", task, n, 4, 1);
    lethe_rng g = lethe_rng_init(17, 0);
    ds->n_classes = 3;
    for (long i = 0; i < n; i++) {
        int k = (int)(i % 3);
        for (int j = 0; j < 4; j++)
            ds->x[i * 4 + j] = (float)(lethe_rng_normal(&g) + (j == k ? 2.5 : 0));
        if (ds->y)
            ds->y[i] = k;
        if (ds->t)
            ds->t[i] = (float)(ds->x[i * 4] - 0.5 * ds->x[i * 4 + 1] + 0.1 * lethe_rng_normal(&g));
        ds->ids[i] = 500 + (uint64_t)i;
    }
    return ds;
}

typedef struct fixture {
    lethe_dataset *ds;
    lethe_net *net, *orig;
    lethe_rows all, forget, retain;
    lethe_unlearn_ctx ctx;
} fixture;

/* Train `spec` on blobs, forget every 10th row (classification) or the
 * rows with the largest targets (regression), and prepare ctx. */
static int setup(fixture *f, lethe_task task, const char *spec, const char *method,
                 const char *const *sets, size_t n_sets)
{
    memset(f, 0, sizeof *f);
    f->ds = blobs(task, 300);
    f->net = lethe_net_init(spec);
    f->orig = lethe_net_init(spec);
    lethe_net_init_params(f->net, 2);
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.epochs = 30, cfg.batch = 32, cfg.quiet = 1, cfg.loss = lethe_default_loss(task);
    lethe_rows_all(&f->all, f->ds->n);
    lethe_train_result res;
    if (lethe_train(f->net, f->ds, &f->all, &cfg, NULL, &res) != LETHE_OK)
        return -1;
    memcpy(f->orig->params, f->net->params, sizeof(float) * (size_t)f->net->n_params);
    f->forget.row = malloc(sizeof(long) * 300);
    for (long i = 0; i < 300; i++)
        if (task == LETHE_TASK_CLASSIFY ? i % 10 == 0 : f->ds->t[i] > 2.2f)
            f->forget.row[f->forget.n++] = i;
    lethe_rows_minus(&f->retain, &f->all, &f->forget);
    const lethe_method *m;
    if (lethe_method_find(method, &m) != LETHE_OK ||
        lethe_unlearn_hparams(&f->ctx, m, sets, n_sets) != LETHE_OK)
        return -1;
    f->ctx.net = f->net, f->ctx.original = f->orig, f->ctx.data = f->ds;
    f->ctx.forget = &f->forget, f->ctx.retain = &f->retain;
    f->ctx.seed = 11, f->ctx.quiet = 1;
    return 0;
}

static void teardown(fixture *f)
{
    lethe_rows_free(&f->all);
    lethe_rows_free(&f->forget);
    lethe_rows_free(&f->retain);
    lethe_net_free(f->net);
    lethe_net_free(f->orig);
    lethe_dataset_free(f->ds);
}

/* ---- IAU ------------------------------------------------------------------ */

/* The sum of "key":N over the log's lines. */
static long log_sum(FILE *log, const char *key)
{
    char line[1024], pat[64];
    long total = 0;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    rewind(log);
    while (fgets(line, sizeof line, log)) {
        const char *p = strstr(line, pat);
        if (p)
            total += strtol(p + strlen(pat), NULL, 10);
    }
    return total;
}

TEST(unlearn_iau_is_one_signed_adam_step_over_one_pass)
{
    const char *sets[] = {"batch=7"}; /* several batches, one short */
    fixture f;
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, "in=4;linear=16;relu;linear=3", "iau", sets, 1) == 0);
    lethe_net *net = f.net;
    long n = net->n_params;
    /* the independent gradient: each set as one batch, mean loss, retain
     * minus forget */
    float *g = malloc(sizeof(float) * (size_t)n);
    lethe_net *ref = lethe_net_init(net->spec);
    memcpy(ref->params, net->params, sizeof(float) * (size_t)n);
    lethe_batch_grad(ref, f.ds, f.retain.row, (int)f.retain.n, LETHE_LOSS_XENT, 0, 0, 1.0f, NULL);
    lethe_batch_grad(ref, f.ds, f.forget.row, (int)f.forget.n, LETHE_LOSS_XENT, 0, 0, -1.0f, NULL);
    memcpy(g, ref->grads, sizeof(float) * (size_t)n);
    FILE *log = tmpfile();
    f.ctx.log = log;
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(f.ctx.steps == 1);
    fflush(log);
    CHECK_MSG(log_sum(log, "forwarded") == 300, "forwarded %ld samples for 300",
              log_sum(log, "forwarded"));
    const float lr = 1e-3f;
    long signed_steps = 0;
    for (long i = 0; i < n; i++) {
        double delta = (double)net->params[i] - f.orig->params[i];
        /* Adam's first step: -lr g / (|g| + eps), eps = 1e-8 */
        if (fabsf(g[i]) > 1e-5f) {
            CHECK_CLOSE(delta, -lr * (g[i] > 0 ? 1.0 : -1.0), 1e-3, 1e-7);
            signed_steps++;
        } else {
            CHECK(fabs(delta) <= lr * 1.001);
        }
    }
    CHECK_MSG(signed_steps > n * 9 / 10, "%ld of %ld parameters far from eps", signed_steps, n);
    fclose(log);
    lethe_net_free(ref);
    free(g);
    teardown(&f);
}

TEST(unlearn_iau_steps_each_cost_one_pass)
{
    const char *sets[] = {"steps=3", "lr=1e-2"};
    fixture f;
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, "in=4;linear=16;relu;linear=3", "iau", sets, 2) == 0);
    FILE *log = tmpfile();
    f.ctx.log = log;
    double before = lethe_batch_grad(f.net, f.ds, f.forget.row, (int)f.forget.n,
                                     LETHE_LOSS_XENT, 0, 0, 0.0f, NULL);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    fflush(log);
    CHECK(f.ctx.steps == 3 && log_sum(log, "forwarded") == 3 * 300);
    double after = lethe_batch_grad(f.net, f.ds, f.forget.row, (int)f.forget.n,
                                    LETHE_LOSS_XENT, 0, 0, 0.0f, NULL);
    CHECK_MSG(after > before, "forget loss %g -> %g", before, after);
    const char *bad[] = {"steps=1.5"};
    CHECK_OK(lethe_unlearn_hparams(&f.ctx, f.ctx.method, bad, 1));
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_INVALID);
    fclose(log);
    teardown(&f);
}

/* ---- segmented networks ------------------------------------------------- */

/* sum(out * wo) + sum_k sum(act_k * wk) through the whole net. */
static double chain_objective(lethe_net *net, const float *x, int B, const int *b, int nb,
                              const float *const *w)
{
    const float *out = lethe_net_forward(net, x, B, 0, NULL, 0);
    double s = 0;
    for (long i = 0; i < (long)B * net->n_out; i++)
        s += (double)out[i] * w[nb][i];
    for (int k = 0; k < nb; k++) {
        long size;
        const float *a = lethe_net_activation(net, b[k], &size);
        for (long i = 0; i < B * size; i++)
            s += (double)a[i] * w[k][i];
    }
    return s;
}

TEST(unlearn_chain_backward_matches_finite_differences)
{
    /* smooth activations and a draw without near-ties in the pooling, so
     * central differences are accurate */
    const char *spec = "in=2x4x4;conv=3;gelu;pool;linear=5;tanh;linear=2";
    lethe_net *net = lethe_net_init(spec);
    lethe_net_init_params(net, 5);
    const int B = 3, cuts[2] = {2, 5};
    float x[3 * 32];
    lethe_rng g = lethe_rng_init(8, 0);
    for (int i = 0; i < 3 * 32; i++)
        x[i] = (float)lethe_rng_normal(&g);
    /* weights of the objective at each boundary and at the output */
    long sizes[3] = {3 * 16, 5, 2};
    float *w[3], *dact[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        w[k] = malloc(sizeof(float) * (size_t)(B * sizes[k]));
        for (long i = 0; i < B * sizes[k]; i++)
            w[k][i] = (float)lethe_rng_normal(&g);
        dact[k + 1] = w[k];
    }
    ul_chain c;
    CHECK_OK(ul_chain_init(&c, net, cuts, 2));
    CHECK(c.n == 3 && c.seg[0]->n_layers == 2 && c.seg[1]->n_layers == 3);
    const float *out = ul_chain_forward(&c, x, B, 0, NULL, 0);
    const float *whole = lethe_net_forward(net, x, B, 0, NULL, 0);
    for (int i = 0; i < B * 2; i++)
        CHECK_CLOSE(out[i], whole[i], 1e-5, 1e-6);
    memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
    float dx[3 * 32];
    CHECK_OK(ul_chain_backward(&c, (const float *const *)dact, B, dx));
    const float h = 1e-3f;
    for (long p = 0; p < net->n_params; p++) {
        float keep = net->params[p];
        net->params[p] = keep + h;
        double up = chain_objective(net, x, B, cuts, 2, (const float *const *)w);
        net->params[p] = keep - h;
        double down = chain_objective(net, x, B, cuts, 2, (const float *const *)w);
        net->params[p] = keep;
        CHECK_MSG(fabs(net->grads[p] - (up - down) / (2 * h)) < 5e-3 + 1e-2 * fabs(net->grads[p]),
                  "parameter %ld: %g vs %g", p, net->grads[p], (up - down) / (2 * h));
    }
    for (int i = 0; i < B * 32; i += 5) {
        float keep = x[i];
        x[i] = keep + h;
        double up = chain_objective(net, x, B, cuts, 2, (const float *const *)w);
        x[i] = keep - h;
        double down = chain_objective(net, x, B, cuts, 2, (const float *const *)w);
        x[i] = keep;
        CHECK_MSG(fabs(dx[i] - (up - down) / (2 * h)) < 5e-3 + 1e-2 * fabs(dx[i]),
                  "input %d: %g vs %g", i, dx[i], (up - down) / (2 * h));
    }
    ul_chain_free(&c);
    for (int k = 0; k < 3; k++)
        free(w[k]);
    lethe_net_free(net);
}

/* ---- LAF -------------------------------------------------------------------- */

TEST(unlearn_laf_vae_elbo_gradient_matches_finite_differences)
{
    ul_vae *v = ul_vae_init(5, 6, 3, 0.5f, 3);
    CHECK(v);
    const int B = 4;
    float e[4 * 5];
    uint64_t ids[4] = {7, 70, 700, 7000};
    lethe_rng g = lethe_rng_init(2, 0);
    for (int i = 0; i < B * 5; i++)
        e[i] = (float)lethe_rng_normal(&g);
    lethe_net *nets[2] = {v->enc, v->dec};
    for (int k = 0; k < 2; k++)
        memset(nets[k]->grads, 0, sizeof(float) * (size_t)nets[k]->n_params);
    double loss = ul_vae_elbo_grad(v, e, B, ids, 9);
    CHECK(isfinite(loss) && loss > 0);
    float *grad[2];
    for (int k = 0; k < 2; k++) {
        grad[k] = malloc(sizeof(float) * (size_t)nets[k]->n_params);
        memcpy(grad[k], nets[k]->grads, sizeof(float) * (size_t)nets[k]->n_params);
    }
    /* eps is keyed by (seed, id): the same seed redraws the same noise */
    for (int k = 0; k < 2; k++)
        for (long p = 0; p < nets[k]->n_params; p++) {
            float keep = nets[k]->params[p];
            nets[k]->params[p] = keep + 1e-2f;
            double up = ul_vae_elbo_grad(v, e, B, ids, 9);
            nets[k]->params[p] = keep - 1e-2f;
            double down = ul_vae_elbo_grad(v, e, B, ids, 9);
            nets[k]->params[p] = keep;
            CHECK_CLOSE(grad[k][p], (up - down) / 2e-2, 2e-2, 1e-3);
        }
    CHECK(ul_vae_elbo_grad(v, e, B, ids, 9) == loss);
    CHECK(ul_vae_elbo_grad(v, e, B, ids, 10) != loss);
    for (int k = 0; k < 2; k++)
        free(grad[k]);
    ul_vae_free(v);
}

/* R(e) = exp(r / (r + 1)), r = ||dec(mu(e)) - e||^2, computed from the
 * encoder and decoder directly. */
static double risk_by_hand(ul_vae *v, const float *e)
{
    const float *stat = lethe_net_forward(v->enc, e, 1, 0, NULL, 0);
    float mu[16];
    memcpy(mu, stat, sizeof(float) * (size_t)v->latent); /* the first L are mu */
    const float *xhat = lethe_net_forward(v->dec, mu, 1, 0, NULL, 0);
    double r = 0;
    for (int j = 0; j < v->d; j++)
        r += ((double)xhat[j] - e[j]) * ((double)xhat[j] - e[j]);
    return exp(r / (r + 1));
}

TEST(unlearn_laf_risk_is_as_defined_with_its_gradient)
{
    ul_vae *v = ul_vae_init(6, 5, 2, 0.025f, 4);
    const int B = 3;
    float e[3 * 6], R[3], de[3 * 6] = {0}, scale[3] = {1.0f, -2.0f, 0.5f};
    lethe_rng g = lethe_rng_init(3, 0);
    for (int i = 0; i < B * 6; i++)
        e[i] = (float)(0.3 * lethe_rng_normal(&g));
    CHECK_OK(ul_vae_risk(v, e, B, R, de, scale));
    for (int i = 0; i < B; i++) {
        CHECK_CLOSE(R[i], risk_by_hand(v, e + i * 6), 1e-6, 0);
        CHECK(R[i] >= 1.0f && R[i] < (float)M_E);
    }
    for (int i = 0; i < B * 6; i++) {
        float keep = e[i];
        int s = i / 6;
        e[i] = keep + 1e-3f;
        double up = risk_by_hand(v, e + s * 6);
        e[i] = keep - 1e-3f;
        double down = risk_by_hand(v, e + s * 6);
        e[i] = keep;
        CHECK_CLOSE(de[i], scale[s] * (up - down) / 2e-3, 2e-2, 1e-3);
    }
    ul_vae_free(v);
}

static double cos_distance(const float *a, const float *b, long d)
{
    double ab = 0, aa = 0, bb = 0;
    for (long j = 0; j < d; j++)
        ab += (double)a[j] * b[j], aa += (double)a[j] * a[j], bb += (double)b[j] * b[j];
    return aa > 0 && bb > 0 ? 1 - ab / sqrt(aa * bb) : 1;
}

/* Mean cosine distance between net's and orig's embeddings over rows. */
static double embedding_shift(lethe_net *net, lethe_net *orig, const lethe_dataset *ds,
                              const lethe_rows *rows)
{
    int emb = lethe_net_embedding_layer(net);
    double s = 0;
    for (long i = 0; i < rows->n; i++) {
        const float *x = ds->x + rows->row[i] * ds->d;
        long d;
        float a[64];
        lethe_net_forward(net, x, 1, 0, NULL, 0);
        const float *act = lethe_net_activation(net, emb, &d);
        memcpy(a, act, sizeof(float) * (size_t)d);
        lethe_net_forward(orig, x, 1, 0, NULL, 0);
        s += cos_distance(a, lethe_net_activation(orig, emb, NULL), d);
    }
    return s / (double)rows->n;
}

/* The objectives of the two alternating steps, each against its definition
 * (which VAE scores which set, the signs, tau) and its gradient with respect
 * to the extractor's parameters against finite differences. The network is
 * smooth (tanh) so that the differences are exact up to rounding; the
 * extractor is the first segment of the network cut at its embedding, as
 * the method runs it, and the head must receive no gradient. */
TEST(unlearn_laf_objectives_gradients_match_finite_differences)
{
    enum { Bf = 3, Br = 4, B = Bf + Br, D = 5 };
    lethe_net *net = lethe_net_init("in=4;linear=6;tanh;linear=5;tanh;linear=3");
    lethe_net_init_params(net, 5);
    int emb = lethe_net_embedding_layer(net);
    ul_chain c;
    CHECK_OK(ul_chain_init(&c, net, &emb, 1));
    lethe_net *ext = c.seg[0];
    CHECK(ext->n_out == D);
    float X[B * 4], O[B * D], work[B * (D + 2)], dE[B * D], E[B * D];
    double tmp[5 * B], tau = 2;
    uint64_t ids[B];
    lethe_rng g = lethe_rng_init(6, 0);
    for (int i = 0; i < B * 4; i++)
        X[i] = (float)lethe_rng_normal(&g);
    for (int i = 0; i < B; i++)
        ids[i] = 100 + (uint64_t)i;
    /* the original's embeddings, then an extractor that has moved from them */
    memcpy(O, lethe_net_forward(ext, X, B, 0, NULL, 0), sizeof O);
    for (long p = 0; p < ext->n_params; p++)
        ext->params[p] += (float)(0.3 * lethe_rng_normal(&g));
    memcpy(E, lethe_net_forward(ext, X, B, 0, NULL, 0), sizeof E);
    ul_vae *s = ul_vae_init(D, 6, 2, 0.025f, 7), *u = ul_vae_init(D, 6, 2, 0.025f, 8);
    CHECK(s && u);
    /* the objectives by their definitions */
    double want[2] = {0, 0}, sf = 0;
    for (int i = 0; i < Bf; i++) {
        want[0] -= risk_by_hand(u, E + i * D) / Bf;
        sf += exp(cos_distance(E + i * D, O + i * D, D) / tau);
    }
    for (int i = Bf; i < B; i++) {
        want[0] += risk_by_hand(s, E + i * D) / Br;
        want[1] += log(exp(cos_distance(E + i * D, O + i * D, D)) / sf) / Br;
    }
    float *grad = malloc(sizeof(float) * (size_t)ext->n_params);
    for (int k = 0; k < 2; k++) {
        memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
        double loss;
        if (k == 0)
            CHECK_OK(ul_laf_unlearn_grad(ext, s, u, X, Bf, Br, ids, 0, work, &loss));
        else
            CHECK_OK(ul_laf_align_grad(ext, O, X, Bf, Br, ids, 0, tau, dE, tmp, &loss));
        CHECK_CLOSE(loss, want[k], 1e-5, 1e-6);
        memcpy(grad, ext->grads, sizeof(float) * (size_t)ext->n_params);
        double norm = 0;
        for (long p = 0; p < ext->n_params; p++)
            norm += (double)grad[p] * grad[p];
        CHECK_MSG(norm > 1e-6, "objective %d: no gradient reaches the extractor", k);
        for (long p = ext->n_params; p < net->n_params; p++)
            CHECK(net->grads[p] == 0.0f);
        for (long p = 0; p < ext->n_params; p++) {
            float keep = ext->params[p];
            double up, down;
            ext->params[p] = keep + 1e-3f;
            if (k == 0)
                CHECK_OK(ul_laf_unlearn_grad(ext, s, u, X, Bf, Br, ids, 0, work, &up));
            else
                CHECK_OK(ul_laf_align_grad(ext, O, X, Bf, Br, ids, 0, tau, dE, tmp, &up));
            ext->params[p] = keep - 1e-3f;
            if (k == 0)
                CHECK_OK(ul_laf_unlearn_grad(ext, s, u, X, Bf, Br, ids, 0, work, &down));
            else
                CHECK_OK(ul_laf_align_grad(ext, O, X, Bf, Br, ids, 0, tau, dE, tmp, &down));
            ext->params[p] = keep;
            CHECK_CLOSE(grad[p], (up - down) / 2e-3, 2e-2, 2e-4);
        }
    }
    free(grad);
    ul_vae_free(s);
    ul_vae_free(u);
    ul_chain_free(&c);
    lethe_net_free(net);
}

#define LAF_SPEC "in=4;linear=16;relu;linear=8;relu;linear=3"
#define LAF_SETS                                                                          \
    "epochs=15", "min_pairs=0", "lr_ue=3e-3", "lr_ra=3e-3", "vae_epochs=5", "batch=10"
#define N_SETS(a) (sizeof(a) / sizeof *(a))

/* Make f forget the whole of class 0 (rows i % 3 == 0: 100 of 300). */
static void forget_class0(fixture *f)
{
    lethe_rows_free(&f->forget);
    lethe_rows_free(&f->retain);
    f->forget.row = malloc(sizeof(long) * 100);
    for (long i = 0; i < 300; i += 3)
        f->forget.row[f->forget.n++] = i;
    lethe_rows_minus(&f->retain, &f->all, &f->forget);
}

/* LAF on blobs without labels, forgetting class 0 (or, with swap, the other
 * classes); the mean embedding shift of class 0 into *d0 and of the rest
 * into *d12. */
static int laf_shifts(fixture *f, const char *const *sets, size_t n_sets, int swap,
                      lethe_dataset *blind, double *d0, double *d12)
{
    if (setup(f, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf", sets, n_sets) != 0)
        return -1;
    forget_class0(f);
    *blind = *f->ds;
    blind->y = NULL, blind->t = NULL;
    f->ctx.data = blind;
    if (swap)
        f->ctx.forget = &f->retain, f->ctx.retain = &f->forget;
    if (lethe_unlearn_run(&f->ctx) != LETHE_OK)
        return -1;
    *d0 = embedding_shift(f->net, f->orig, f->ds, &f->forget);
    *d12 = embedding_shift(f->net, f->orig, f->ds, &f->retain);
    return 0;
}

/* LAF separates the forget set from the retain set by their embeddings'
 * distributions (the u-VAE's against the s-VAE's), so the effect is checked
 * on class forgetting, where those differ. A random tenth of these blobs is
 * distributed as the rest: a model that generalises embeds it as it embeds
 * the retain set, and LAF then moves both alike. */
TEST(unlearn_laf_runs_without_labels_and_moves_forget_embeddings)
{
    const char *sets[] = {LAF_SETS}, *sets_no_ue[] = {LAF_SETS, "lr_ue=1e-12"};
    fixture f, g;
    lethe_dataset blind, blind_g;
    double df, dr, a, b;
    CHECK(laf_shifts(&f, sets, N_SETS(sets), 0, &blind, &df, &dr) == 0);
    CHECK(!f.ctx.method->needs_labels);
    CHECK(f.ctx.steps == 15 * 2 * 10); /* 100 forget rows: 10 pairs of 10 */
    /* the extractor moved; the head did not */
    const lethe_layer *head = &f.net->layers[lethe_net_embedding_layer(f.net)];
    long n = f.net->n_params, h0 = head->w_off;
    CHECK(memcmp(f.net->params, f.orig->params, sizeof(float) * (size_t)h0));
    CHECK(!memcmp(f.net->params + h0, f.orig->params + h0, sizeof(float) * (size_t)(n - h0)));
    CHECK_MSG(df > 0.1 && df > 5 * dr, "forget embeddings moved %g, retain %g", df, dr);
    /* deterministic */
    CHECK(laf_shifts(&g, sets, N_SETS(sets), 0, &blind_g, &a, &b) == 0);
    CHECK(!memcmp(f.net->params, g.net->params, sizeof(float) * (size_t)n));
    teardown(&g);
    /* the roles decide which set moves: swapped, the rest moves instead */
    CHECK(laf_shifts(&g, sets, N_SETS(sets), 1, &blind_g, &a, &b) == 0);
    CHECK_MSG(b > 5 * a, "swapped: class 0 moved %g, the rest %g", a, b);
    teardown(&g);
    /* the alignment alone does not move the forget set (its gradient
     * vanishes where the embeddings equal the original's): the extractor
     * unlearning does */
    CHECK(laf_shifts(&g, sets_no_ue, N_SETS(sets_no_ue), 0, &blind_g, &a, &b) == 0);
    CHECK_MSG(a < 0.01 * df, "without extractor unlearning class 0 moved %g (with: %g)", a, df);
    teardown(&g);
    teardown(&f);
}

TEST(unlearn_laf_r_adds_a_last_layer_repair)
{
    const char *sets_laf[] = {LAF_SETS}, *sets_r0[] = {LAF_SETS, "repair=0"},
               *sets_r[] = {LAF_SETS, "repair=2"};
    fixture a, b, c;
    CHECK(setup(&a, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf", sets_laf, N_SETS(sets_laf)) == 0);
    CHECK(setup(&b, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf-r", sets_r0, N_SETS(sets_r0)) == 0);
    CHECK(setup(&c, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf-r", sets_r, N_SETS(sets_r)) == 0);
    CHECK(b.ctx.method->needs_labels);
    CHECK_OK(lethe_unlearn_run(&a.ctx));
    CHECK_OK(lethe_unlearn_run(&b.ctx));
    CHECK_OK(lethe_unlearn_run(&c.ctx));
    long n = a.net->n_params;
    const lethe_layer *last = &a.net->layers[lethe_net_embedding_layer(a.net)];
    CHECK(!memcmp(a.net->params, b.net->params, sizeof(float) * (size_t)n));
    CHECK(!memcmp(a.net->params, c.net->params, sizeof(float) * (size_t)last->w_off));
    CHECK(memcmp(a.net->params + last->w_off, c.net->params + last->w_off,
                 sizeof(float) * (size_t)(n - last->w_off)));
    CHECK(c.ctx.steps == a.ctx.steps + 2 * ((270 + 9) / 10));
    teardown(&a);
    teardown(&b);
    teardown(&c);
}

/* min_pairs adds whole epochs until the run has that many pairs; it never
 * shortens one. The default forget set, 30 rows in batches of 10, is 3
 * pairs an epoch. */
TEST(unlearn_laf_min_pairs_adds_epochs)
{
    const char *more[] = {"epochs=2", "min_pairs=10", "vae_epochs=1", "batch=10"},
               *enough[] = {"epochs=2", "min_pairs=5", "vae_epochs=1", "batch=10"},
               *bad[] = {"min_pairs=2.5"};
    fixture f;
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf", more, N_SETS(more)) == 0);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(f.ctx.steps == 2 * 3 * 4); /* 4 epochs: 12 pairs >= 10 */
    teardown(&f);
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf", enough, N_SETS(enough)) == 0);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    CHECK(f.ctx.steps == 2 * 3 * 2);
    teardown(&f);
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, LAF_SPEC, "laf", bad, N_SETS(bad)) == 0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_INVALID);
    teardown(&f);
}

TEST(unlearn_laf_refuses_a_model_without_extractor)
{
    fixture f;
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, "in=4;linear=3", "laf", NULL, 0) == 0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_UNSUPPORTED);
    CHECK(strstr(lethe_error_detail(), "extractor"));
    teardown(&f);
    CHECK(setup(&f, LETHE_TASK_REGRESS, "in=4;linear=8;relu;linear=1", "laf", NULL, 0) == 0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_UNSUPPORTED);
    teardown(&f);
}

/* ---- Blindspot ----------------------------------------------------------- */

/* A(x) for x (C, P) by the definition, into out (m). */
static int attention_by_hand(float *out, const float *x, int C, int P)
{
    int m = P == 1 ? C : P;
    double norm = 0;
    for (int j = 0; j < m; j++) {
        double q = 0;
        for (int c = 0; c < (P == 1 ? 1 : C); c++) {
            double v = P == 1 ? x[j] : x[c * P + j];
            q += v * v;
        }
        out[j] = (float)(P == 1 ? q : q / C);
        norm += (double)out[j] * out[j];
    }
    for (int j = 0; j < m; j++)
        out[j] = (float)(out[j] / sqrt(norm));
    return m;
}

TEST(unlearn_blindspot_attention_transfer_gradient)
{
    int shapes[2][2] = {{7, 1}, {3, 6}};
    lethe_rng g = lethe_rng_init(6, 0);
    for (int s = 0; s < 2; s++) {
        int C = shapes[s][0], P = shapes[s][1], n = C * P;
        float a[32], b[32], da[32] = {0}, ua[32], ub[32];
        for (int i = 0; i < n; i++)
            a[i] = (float)lethe_rng_normal(&g), b[i] = (float)lethe_rng_normal(&g);
        double loss = ul_attention_loss(da, a, b, C, P, 2.0f);
        int m = attention_by_hand(ua, a, C, P);
        attention_by_hand(ub, b, C, P);
        double want = 0;
        for (int j = 0; j < m; j++)
            want += ((double)ua[j] - ub[j]) * ((double)ua[j] - ub[j]) / m;
        CHECK_CLOSE(loss, want, 1e-5, 1e-7);
        CHECK(ul_attention_loss(NULL, a, a, C, P, 1.0f) == 0);
        for (int i = 0; i < n; i++) {
            float keep = a[i];
            a[i] = keep + 1e-3f;
            double up = ul_attention_loss(NULL, a, b, C, P, 1.0f);
            a[i] = keep - 1e-3f;
            double down = ul_attention_loss(NULL, a, b, C, P, 1.0f);
            a[i] = keep;
            CHECK_CLOSE(da[i], 2.0 * (up - down) / 2e-3, 1e-2, 1e-4);
        }
        /* scale-free: A(3a) = A(a) */
        for (int i = 0; i < n; i++)
            b[i] = 3.0f * a[i];
        CHECK(ul_attention_loss(NULL, a, b, C, P, 1.0f) < 1e-12);
    }
}

/* Mean |f(x) - f_bs(x)| over rows. */
static double gap_to(lethe_net *f, lethe_net *bs, const lethe_dataset *ds, const lethe_rows *r)
{
    double s = 0;
    for (long i = 0; i < r->n; i++) {
        const float *x = ds->x + r->row[i] * ds->d;
        float a = lethe_net_forward(f, x, 1, 0, NULL, 0)[0];
        s += fabs(a - lethe_net_forward(bs, x, 1, 0, NULL, 0)[0]);
    }
    return s / (double)r->n;
}

TEST(unlearn_blindspot_moves_forget_predictions_toward_the_blindspot_model)
{
    const char *sets[] = {"epochs=4"};
    fixture f;
    CHECK(setup(&f, LETHE_TASK_REGRESS, "in=4;linear=16;relu;linear=16;relu;linear=1",
                "blindspot", sets, 1) == 0);
    CHECK(f.forget.n > 20 && f.forget.n < 100);
    lethe_net *bs;
    CHECK_OK(ul_blindspot_model(&f.ctx, &bs));
    double before = gap_to(f.net, bs, f.ds, &f.forget);
    double retain_before = gap_to(f.net, bs, f.ds, &f.retain);
    CHECK_OK(lethe_unlearn_run(&f.ctx));
    double after = gap_to(f.net, bs, f.ds, &f.forget);
    CHECK_MSG(after < 0.6 * before, "forget gap to the blindspot model %g -> %g", before, after);
    /* and not by collapsing onto it everywhere */
    CHECK(gap_to(f.net, bs, f.ds, &f.retain) > 0.5 * retain_before);
    CHECK(f.ctx.steps == 4 * ((300 + 31) / 32));
    lethe_net_free(bs);
    teardown(&f);
    CHECK(setup(&f, LETHE_TASK_CLASSIFY, "in=4;linear=8;relu;linear=3", "blindspot", NULL, 0) ==
          0);
    CHECK_STATUS(lethe_unlearn_run(&f.ctx), LETHE_ERR_UNSUPPORTED);
    teardown(&f);
}
