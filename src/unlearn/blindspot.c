/* Blindspot unlearning for regression (Deep Regression Unlearning, Tarun
 * et al., ICML 2023).
 *
 *  1. A blindspot model f_bs (the same architecture from a random start)
 *     is trained briefly on the retain set only: bs_epochs = 2 epochs of
 *     Adam at bs_lr = 0.01 with an L1 loss. It has never seen the forget
 *     set, and has not trained long enough to generalise to it as well as
 *     the original does.
 *  2. A copy of the original is fine-tuned for `epochs` on batches that mix
 *     forget and retain samples (the keyed order of their ids), with
 *       L = c * L_f + (1 - c) * L_r,  c = forget fraction of the batch,
 *       L_r = L1(f(x), y) over the retain samples,
 *       L_f = L1(f(x), f_bs(x)) + lambda * sum_l mean((A(a_l) - A(a_l^bs))^2)
 *     over the forget samples, each term a mean over its samples, so that
 *     L is the batch mean of per-sample losses. A(a) = a^2 normalised to
 *     unit L2 norm over the features for a fully connected layer, the
 *     channel mean of a^2 normalised over positions for a convolutional
 *     one (attention transfer); lambda = 50, Adam at lr 1e-3, one epoch.
 *
 * The hidden layers are the outputs of every activation layer (relu, gelu,
 * tanh) below the output. The attention term's gradient is exact: the
 * network is cut after each of those layers into segments sharing its
 * parameters (repr.c), and the gradient of the term is added to the
 * backward pass where it crosses each cut. f_bs runs in eval mode. */
#include "common.h"
#include "lethe/mem.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_BS 0xb150ull
#define STREAM_ORDER 0xb151ull

static const lethe_hparam params[] = {
    {"lr", 1e-3, "Adam rate of the fine-tuning"},
    {"epochs", 1, "passes over forget and retain"},
    {"batch", 32, "samples per step (and for the blindspot model)"},
    {"lambda", 50, "weight of the attention-transfer term"},
    {"bs_epochs", 2, "epochs training the blindspot model on the retain set"},
    {"bs_lr", 0.01, "Adam rate of the blindspot model"},
    {NULL, 0, NULL}};

/* q_j of the attention map of x (C, P): x_j^2 (P == 1) or the channel mean
 * of x^2 at position j. */
static double att_q(const float *x, int C, int P, int j)
{
    if (P == 1)
        return (double)x[j] * x[j];
    double s = 0;
    for (int c = 0; c < C; c++)
        s += (double)x[(long)c * P + j] * x[(long)c * P + j];
    return s / C;
}

double ul_attention_loss(float *da, const float *a, const float *b, int C, int P, float scale)
{
    const double tiny = 1e-12; /* F.normalize's eps */
    int m = P == 1 ? C : P;
    double na = 0, nb = 0;
    for (int j = 0; j < m; j++) {
        double qa = att_q(a, C, P, j), qb = att_q(b, C, P, j);
        na += qa * qa, nb += qb * qb;
    }
    na = sqrt(na), nb = sqrt(nb);
    double da_n = na > tiny ? na : tiny, db_n = nb > tiny ? nb : tiny;
    double loss = 0, ug = 0;
    for (int j = 0; j < m; j++) {
        double ua = att_q(a, C, P, j) / da_n, diff = ua - att_q(b, C, P, j) / db_n;
        loss += diff * diff;
        ug += ua * 2.0 * diff / m;
    }
    loss /= m;
    if (!da)
        return loss;
    /* u = q / n: dL/dq = (g - u (u . g)) / n with g = dL/du; below the
     * floor n is the constant 1e-12 and dL/dq = g / 1e-12 */
    for (int j = 0; j < m; j++) {
        double ua = att_q(a, C, P, j) / da_n, g = 2.0 * (ua - att_q(b, C, P, j) / db_n) / m;
        double dq = na > tiny ? (g - ua * ug) / na : g / tiny;
        if (P == 1) {
            da[j] += (float)(scale * dq * 2.0 * a[j]);
        } else {
            for (int c = 0; c < C; c++)
                da[(long)c * P + j] += (float)(scale * dq * 2.0 * a[(long)c * P + j] / C);
        }
    }
    return loss;
}

lethe_status ul_blindspot_model(const lethe_unlearn_ctx *ctx, lethe_net **out)
{
    *out = NULL;
    lethe_net *bs = lethe_net_init(ctx->net->spec);
    if (!bs)
        return LETHE_ERR_NOMEM;
    lethe_net_init_params(bs, lethe_rng_hash(ctx->seed, STREAM_BS, 0));
    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg);
    cfg.optim = LETHE_OPTIM_ADAMW;
    cfg.weight_decay = 0;
    cfg.lr = (float)lethe_hp(ctx, "bs_lr");
    cfg.batch = (int)lethe_hp(ctx, "batch");
    cfg.epochs = (int)lethe_hp(ctx, "bs_epochs");
    cfg.loss = LETHE_LOSS_L1;
    cfg.seed = lethe_rng_hash(ctx->seed, STREAM_BS, 1);
    cfg.quiet = ctx->quiet;
    lethe_train_result res;
    lethe_status st = lethe_train(bs, ctx->data, ctx->retain, &cfg, NULL, &res);
    if (st != LETHE_OK) {
        lethe_net_free(bs);
        return st;
    }
    if (ctx->log)
        fprintf(ctx->log,
                "{\"step\":%ld,\"phase\":\"blindspot-model\",\"epochs\":%d,\"loss\":%.9g}\n",
                ctx->steps, res.epochs, res.last_loss);
    *out = bs;
    return LETHE_OK;
}

typedef struct bs_state {
    lethe_net *bs;
    ul_chain chain;
    unsigned char *is_forget; /* (data->n) */
    float *x;                 /* (batch, n_in) */
    uint64_t *ids;            /* (batch) */
    float *dact[LETHE_NET_MAX_LAYERS + 1]; /* (batch, size at boundary k), k = 1..n */
    float lambda;
} bs_state;

static double bs_grad(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed, void *user)
{
    bs_state *s = user;
    const lethe_dataset *ds = ctx->data;
    ul_chain *ch = &s->chain;
    lethe_net *net = ctx->net;
    int no = (int)net->n_out;
    for (int i = 0; i < B; i++) {
        memcpy(s->x + (long)i * ds->d, ds->x + rows[i] * ds->d, sizeof(float) * (size_t)ds->d);
        s->ids[i] = ds->ids[rows[i]];
    }
    const float *out = ul_chain_forward(ch, s->x, B, 1, s->ids, seed);
    const float *bout = out ? lethe_net_forward(s->bs, s->x, B, 0, NULL, 0) : NULL;
    if (!out || !bout)
        return NAN;
    long size[LETHE_NET_MAX_LAYERS + 1];
    const float *act[LETHE_NET_MAX_LAYERS + 1], *bact[LETHE_NET_MAX_LAYERS + 1];
    for (int k = 1; k <= ch->n; k++) {
        act[k] = ul_chain_act(ch, k, &size[k]);
        bact[k] = lethe_net_activation(s->bs, ch->b[k], NULL);
        memset(s->dact[k], 0, sizeof(float) * (size_t)B * (size_t)size[k]);
    }
    float *dout = s->dact[ch->n];
    double loss = 0;
    for (int i = 0; i < B; i++) {
        int forget = s->is_forget[rows[i]];
        const float *target = forget ? bout + (long)i * no : ds->t + rows[i] * ds->n_targets;
        double li = 0;
        for (int j = 0; j < no; j++) {
            float diff = out[(long)i * no + j] - target[j];
            li += fabsf(diff) / no;
            dout[(long)i * no + j] = (diff > 0 ? 1.0f : diff < 0 ? -1.0f : 0.0f) / (float)(no * B);
        }
        for (int k = 1; forget && k < ch->n; k++) {
            const lethe_layer *l = &net->layers[ch->b[k] - 1];
            int C = l->out_c, P = l->out_h * l->out_w;
            li += s->lambda * ul_attention_loss(s->dact[k] + (long)i * size[k],
                                                act[k] + (long)i * size[k],
                                                bact[k] + (long)i * size[k], C, P,
                                                s->lambda / (float)B);
        }
        loss += li;
    }
    if (ul_chain_backward(ch, (const float *const *)s->dact, B, NULL) != LETHE_OK)
        return NAN;
    return loss / B;
}

static lethe_status run(lethe_unlearn_ctx *ctx)
{
    lethe_net *net = ctx->net;
    const lethe_dataset *ds = ctx->data;
    double lambda = lethe_hp(ctx, "lambda"), bs_epochs = lethe_hp(ctx, "bs_epochs");
    if (!(lambda >= 0) || !(lethe_hp(ctx, "bs_lr") > 0) || bs_epochs < 1 ||
        bs_epochs != floor(bs_epochs) || bs_epochs > 1e6)
        return lethe_fail(LETHE_ERR_INVALID,
                          "blindspot: lambda must be >= 0, bs_lr positive and bs_epochs a whole "
                          "number >= 1");
    int cuts[LETHE_NET_MAX_LAYERS], n_cuts = 0;
    for (int i = 0; i + 1 < net->n_layers; i++) {
        lethe_layer_kind k = net->layers[i].kind;
        if (k == LETHE_LAYER_RELU || k == LETHE_LAYER_GELU || k == LETHE_LAYER_TANH)
            cuts[n_cuts++] = i + 1;
    }
    int batch = (int)lethe_hp(ctx, "batch");
    bs_state s = {0};
    s.lambda = (float)lambda;
    lethe_rows all = {0};
    lethe_optim *opt = NULL;
    lethe_status st = ul_blindspot_model(ctx, &s.bs);
    if (st == LETHE_OK)
        st = ul_chain_init(&s.chain, net, cuts, n_cuts);
    if (st == LETHE_OK)
        st = ul_rows_union(&all, ctx->forget, ctx->retain);
    if (st != LETHE_OK)
        goto done;
    s.is_forget = calloc((size_t)ds->n, 1);
    s.x = lethe_calloc((size_t)batch * (size_t)ds->d, sizeof(float));
    s.ids = malloc(sizeof(uint64_t) * (size_t)batch);
    opt = lethe_optim_init(LETHE_OPTIM_ADAMW, net->n_params);
    int ok = s.is_forget && s.x && s.ids && opt;
    for (int k = 1; k <= s.chain.n && ok; k++) {
        long size;
        lethe_net_activation(net, s.chain.b[k], &size);
        ok = (s.dact[k] = lethe_calloc((size_t)batch * (size_t)size, sizeof(float))) != NULL;
    }
    if (!ok) {
        st = lethe_fail(LETHE_ERR_NOMEM, "blindspot: out of memory");
        goto done;
    }
    opt->weight_decay = 0;
    for (long i = 0; i < ctx->forget->n; i++)
        s.is_forget[ctx->forget->row[i]] = 1;
    ul_loop L = {&all, batch, (int)lethe_hp(ctx, "epochs"), (float)lethe_hp(ctx, "lr"), bs_grad,
                 &s, NULL, STREAM_ORDER, "blindspot"};
    st = ul_run(ctx, opt, &L);
done:
    for (int k = 0; k <= LETHE_NET_MAX_LAYERS; k++)
        lethe_free(s.dact[k]);
    ul_chain_free(&s.chain);
    lethe_net_free(s.bs);
    free(s.is_forget);
    lethe_free(s.x);
    free(s.ids);
    lethe_optim_free(opt);
    lethe_rows_free(&all);
    return st;
}

const lethe_method ul_blindspot = {"blindspot",
                                   "fine-tune toward a partly trained blindspot model on the "
                                   "forget set (L1 + attention transfer), L1 on retain",
                                   LETHE_FOR_REGRESS, "removal", 1, 1, params, run};
