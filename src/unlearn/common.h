/* Building blocks shared by the unlearning methods (internal to src/unlearn). */
#ifndef LETHE_UNLEARN_COMMON_H
#define LETHE_UNLEARN_COMMON_H

#include "lethe/optim.h"
#include "lethe/train.h"
#include "lethe/unlearn.h"

/* Accumulate the gradient of one batch (rows[0..B)) into ctx->net->grads
 * and return its mean loss; NAN (detail set) on failure. */
typedef double (*ul_grad_fn)(lethe_unlearn_ctx *ctx, const long *rows, int B, uint64_t seed,
                             void *user);

/* A pass of optimisation over rows in the keyed order of their ids. */
typedef struct ul_loop {
    const lethe_rows *rows;
    int batch, epochs;
    float lr;               /* constant rate */
    ul_grad_fn grad;
    void *user;
    const float *mask;      /* gradient mask (n_params) or NULL */
    uint64_t stream;        /* keeps the order of different phases apart */
    const char *phase;      /* names the phase in the log */
} ul_loop;

/* The optimizer the method's hyperparameters name: "adam" = 1 gives AdamW,
 * else SGD; "momentum" and "wd" when declared. NULL (detail set) on failure. */
lethe_optim *ul_optim(const lethe_unlearn_ctx *ctx);

/* Run L with opt (its state carries across calls). */
lethe_status ul_run(lethe_unlearn_ctx *ctx, lethe_optim *opt, const ul_loop *L);

/* Stage rows into the net's batch buffers and forward them. */
const float *ul_forward(lethe_net *net, const lethe_dataset *ds, const long *rows, int B,
                        int train, uint64_t seed);

/* Cross-entropy (classifiers) or the data's regression loss on a batch,
 * scaled by `scale` (negative for ascent); ds may carry replaced labels. */
double ul_task_grad(lethe_unlearn_ctx *ctx, const lethe_dataset *ds, const long *rows, int B,
                    uint64_t seed, float scale);

/* A view of ds sharing its features and ids with its own labels / targets,
 * copied from ds; free with ul_view_free. NULL on out-of-memory. */
lethe_dataset *ul_view(const lethe_dataset *ds);
void ul_view_free(lethe_dataset *v);

/* The union of two ascending row sets into a new one. */
lethe_status ul_rows_union(lethe_rows *out, const lethe_rows *a, const lethe_rows *b);

/* Replace each forget label by a uniformly drawn other class, keyed by
 * (seed, id). */
void ul_random_labels(lethe_dataset *v, const lethe_rows *rows, uint64_t seed);

/* Gaussian fine-tuning's targets: each target of rows replaced by a draw
 * from N(mean, sd) of all of v's targets, keyed by (seed, id). */
void ul_gaussian_targets(lethe_dataset *v, const lethe_rows *rows, uint64_t seed);

/* ---- teacher-student helpers (distill.c) and method internals that the
 *      tests check ---- */

/* p (V) = softmax(z / T), computed in double. */
void ul_softmax_t(double *p, const float *z, int V, double T);

/* Mean over B samples of KL(softmax(t / T) || softmax(s / T)); adds
 * scale * its gradient in the student logits, scale (p_s - p_t) / (T B),
 * to dlogits (B, V) when not NULL, and writes per-sample values to losses
 * (B) when not NULL. SCRUB's KL_T is T^2 times this (scale T^2 * weight). */
double ul_kl_t(float *dlogits, float *losses, const float *t_logits, const float *s_logits,
               int B, int V, double T, float scale);

/* A new network of like's spec with fresh parameters drawn from seed
 * (PyTorch's default initialisation). NULL (detail set) on failure; free
 * with lethe_net_free. */
lethe_net *ul_net_random(const lethe_net *like, uint64_t seed);

/* The rows of `from` whose keyed uniform of their id under (seed, stream)
 * is below frac: a subset that does not depend on which other rows exist.
 * out->row is allocated; free with lethe_rows_free. */
lethe_status ul_rows_subset(lethe_rows *out, const lethe_dataset *ds, const lethe_rows *from,
                            double frac, uint64_t seed, uint64_t stream);

/* SalUn's saliency mask (salun.c): mask (n_params) = 1 on the floor(q n)
 * parameters with the largest |gradient of the mean cross-entropy over the
 * forget set| of ctx->net (ties to the lower index), 0 elsewhere. */
lethe_status ul_salun_mask(lethe_unlearn_ctx *ctx, double q, float *mask);

/* Bad Teacher's incompetent teacher for ctx (badteacher.c): a network of
 * ctx->net's spec with fresh parameters drawn from ctx->seed. NULL (detail
 * set) on failure; free with lethe_net_free. */
lethe_net *ul_bad_teacher(const lethe_unlearn_ctx *ctx);

/* Boundary Shrink's targets (boundary.c): for each of rows, the FGSM input
 * x' = x + bound sign(d CE(net(x), y) / dx) of net in evaluation mode and
 * the label argmax net(x'), or the second best when that is y. labels
 * (rows->n) receives the labels; xadv (rows->n, d) the inputs when not NULL. */
lethe_status ul_boundary_targets(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                                 float bound, int32_t *labels, float *xadv);

/* Fisher forgetting's Fisher diagonal (fisher.c): F (n_params) = mean over
 * rows of sum_y p(y | x) (d log p(y | x) / d theta)^2 for net in evaluation
 * mode, the expectation over the model's own predictive distribution. */
lethe_status ul_fisher_diag(lethe_net *net, const lethe_dataset *ds, const lethe_rows *rows,
                            double *F);

/* ---- repr.c: a network cut into segments that share its parameters ----
 * For gradients on intermediate representations (LAF's embedding,
 * Blindspot's attention transfer): segment s is a lethe_net of layers
 * [b[s], b[s+1]) of the whole network, whose params and grads point into
 * the whole network's arena, so its backward accumulates into net->grads
 * and an update of net->params is seen by every segment. */
typedef struct ul_chain {
    lethe_net *net;                       /* the whole network (not owned) */
    int n;                                /* segments */
    int b[LETHE_NET_MAX_LAYERS + 1];      /* boundaries: b[0] = 0 ... b[n] = n_layers */
    lethe_net *seg[LETHE_NET_MAX_LAYERS]; /* owned; their arenas are views */
    float *g[2];                          /* gradient scratch, (cap, widest boundary) */
    int cap;
} ul_chain;

/* Cut net before each layer of cuts (n_cuts ascending, each in
 * (0, n_layers)). Free with ul_chain_free, before net. */
lethe_status ul_chain_init(ul_chain *c, lethe_net *net, const int *cuts, int n_cuts);
void ul_chain_free(ul_chain *c); /* safe on a zeroed or freed chain */

/* Forward B samples through every segment; segment s draws its dropout
 * masks from (hash(seed, s), ids[i]). The output (B, n_out), or NULL. */
const float *ul_chain_forward(ul_chain *c, const float *x, int B, int train, const uint64_t *ids,
                              uint64_t seed);

/* The activation at boundary k (0 <= k <= n) of the last forward: the input
 * of layer b[k] of the whole network, (B, size). */
const float *ul_chain_act(const ul_chain *c, int k, long *size);

/* Backpropagate through the last forward. dact[k] (B, size at boundary k)
 * is a gradient added at boundary k for k = 1..n (dact[n] is the output
 * gradient); dact or any dact[k] may be NULL for none. Parameter gradients
 * accumulate (+=) into the whole network's grads; dx (B, n_in), if not
 * NULL, receives (=) the gradient with respect to the input. */
lethe_status ul_chain_backward(ul_chain *c, const float *const *dact, int B, float *dx);

/* ---- laf.c: the representation VAEs of LAF ----------------------------
 * Encoder in=D;linear=H;relu;linear=2L giving (mu, logvar), decoder
 * in=L;linear=H;relu;linear=D, both lethe_nets. */
typedef struct ul_vae {
    lethe_net *enc, *dec;
    int d, latent;
    float kl;                /* weight of the KL term in the ELBO loss */
    int cap;                 /* work space, (cap, ...) each: */
    float *eps, *z, *dz, *dstat, *de;
} ul_vae;

/* A VAE on D-dimensional embeddings with H hidden units and L latents,
 * initialised from seed. NULL (detail set) on failure; free with
 * ul_vae_free. */
ul_vae *ul_vae_init(int d, int hidden, int latent, float kl, uint64_t seed);
void ul_vae_free(ul_vae *v); /* NULL is a no-op */

/* The ELBO loss of B embeddings e (B, D): the batch mean of
 * mean_j (xhat_j - e_j)^2 + kl * KL(N(mu, diag sigma^2) || N(0, I)), with
 * xhat = dec(z), z = mu + sigma * eps and eps drawn from (seed, ids[i]).
 * Accumulates its gradient into the VAE's parameter gradients (+=). NAN
 * (detail set) on out-of-memory. */
double ul_vae_elbo_grad(ul_vae *v, const float *e, int B, const uint64_t *ids, uint64_t seed);

/* The reconstruction risk R(e) = exp(r / (r + 1)), r = ||dec(mu(e)) - e||^2
 * (the mean code, no sampling), of B embeddings into R (B). If de is not
 * NULL, adds scale[i] * dR_i/de_i into de (B, D) (+=), backpropagating
 * through the frozen VAE (whose parameter gradients it overwrites with
 * meaningless values). */
lethe_status ul_vae_risk(ul_vae *v, const float *e, int B, float *R, float *de,
                         const float *scale);

/* LAF's two objectives on a batch X (B, n_in), B = Bf + Br, of Bf forget
 * rows followed by Br retain rows, through the extractor ext (the network
 * below the embedding; training mode, dropout drawn from (seed, ids[i])).
 * Each writes the objective to *loss and accumulates its gradient with
 * respect to ext's parameters into ext->grads (+=).
 *
 * Extractor unlearning: mean_{D_r} R_s(e) - mean_{D_f} R_u(e) with R as in
 * ul_vae_risk (s the VAE of all the training data, u that of the forget
 * set). work: B * (n_out + 2) floats. */
lethe_status ul_laf_unlearn_grad(lethe_net *ext, ul_vae *s, ul_vae *u, const float *X, int Bf,
                                 int Br, const uint64_t *ids, uint64_t seed, float *work,
                                 double *loss);

/* Representation alignment against the original's embeddings O (B, n_out):
 * with d = 1 - cos(e, o), mean_{D_r} d_r - log sum_{D_f} exp(d_f / tau),
 * the batch mean over D_r of log[exp(d_r) / sum_{D_f} exp(d_f / tau)].
 * dE: B * n_out floats, tmp: 5 B doubles of scratch. */
lethe_status ul_laf_align_grad(lethe_net *ext, const float *O, const float *X, int Bf, int Br,
                               const uint64_t *ids, uint64_t seed, double tau, float *dE,
                               double *tmp, double *loss);

/* ---- blindspot.c ------------------------------------------------------ */

/* Attention transfer between one sample's activations a and b, (C, P)
 * each with P = H * W (P == 1 for a fully connected layer). The map is
 * A(x) = q / max(||q||, 1e-12) with q = x^2 over the C features when
 * P == 1, or q = the channel mean of x^2 at each of the P positions.
 * Returns mean((A(a) - A(b))^2) and, if da is not NULL, adds scale times
 * its gradient with respect to a into da (C, P) (+=). */
double ul_attention_loss(float *da, const float *a, const float *b, int C, int P, float scale);

/* Blindspot's partially trained model: ctx's architecture from a random
 * start (keyed by ctx->seed), trained on the retain rows with L1 for
 * bs_epochs at bs_lr (Adam). ctx->method must declare bs_epochs, bs_lr and
 * batch. Free *out with lethe_net_free. */
lethe_status ul_blindspot_model(const lethe_unlearn_ctx *ctx, lethe_net **out);

#endif
