/* What the language-model unlearning files share (not installed): the step
 * a method's forget term sees, its working buffers, and the terms several
 * methods compute (src/unlearn/lm_loss.c). */
#ifndef LETHE_LM_COMMON_H
#define LETHE_LM_COMMON_H

#include "lethe/lm_unlearn.h"

/* Working buffers, grown on demand and freed by lethe_lm_loss. */
typedef struct lm_scratch {
    float *dloss; /* (N) or (N, C) */
    float *buf;   /* (N, max(V, C)) */
} lm_scratch;

/* One step's inputs as a method's forget term sees them. */
struct lethe_lm_step {
    lethe_gpt *g, *ref;                /* ref NULL where the method reads none */
    const lethe_lm_cfg *cfg;
    const lethe_lm_batch *forget, *idk; /* idk NULL unless the method reads it */
    const float *control;              /* RMU's control vector, else NULL */
    lm_scratch *S;
};

float *lm_grow(float **p, size_t n);
double lm_log_sigmoid(double x);
double lm_sigmoid(double x);
lethe_status lm_fwd(lethe_gpt *m, const lethe_lm_batch *b);
/* Per sequence of the last forward of m: the sum of the answer tokens'
 * log-probabilities (s) and their count (n); either may be NULL. */
void lm_seq_stats(const lethe_gpt *m, double *s, int *n);
/* The block RMU steers: cfg->rmu_layer, or min(7, n_layer - 1) when < 0. */
int lm_rmu_layer(const lethe_lm_cfg *cfg, const lethe_gpt *g);
/* beta > 0 (for the losses that divide by it). */
lethe_status lm_check_beta(const lethe_lm_cfg *cfg, const lethe_gpt *g);

/* Mean token NLL of b (positive) into *value, backpropagated with weight w
 * (0: no backward). */
lethe_status lm_nll_term(lethe_gpt *g, const lethe_lm_batch *b, double w, lm_scratch *S,
                         double *value);
/* NPO and IdkDPO: -(2/beta) mean_b logsigmoid(beta (win - lose)), win / lose
 * the log-ratios theta - ref of the sequence log-probabilities (win 0 when
 * NULL). */
lethe_status lm_dpo_term(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_batch *win,
                         const lethe_lm_batch *lose, double beta, double gamma, lm_scratch *S,
                         double *value);
/* WGA and SatImp: L = mean_t w_t logp_t over the answer tokens, w_t =
 * weight(cfg, logp_t) held constant. */
lethe_status lm_weighted_term(const struct lethe_lm_step *s,
                              double (*weight)(const lethe_lm_cfg *cfg, double lp),
                              double *value);
/* The forget terms of GA and GradDiff (minus the mean token NLL, ascended)
 * and of the fine-tunes (the mean token NLL, descended). */
lethe_status lm_ascent_forget(const lethe_lm_step *s, double *value);
lethe_status lm_descent_forget(const lethe_lm_step *s, double *value);
/* RMU's activation loss on hidden state i of g's last forward (see lm_loss.c). */
lethe_status lm_act_term(lethe_gpt *g, int i, const float *tgt, int per_row, double w,
                         lm_scratch *S, double *value);

#endif
