/* S3T: sequence-aware sharded sliced training (Chowdhury et al., ICLR
 * 2025), with deletion that takes no gradient step.
 *
 * Each training sample goes to one of m shards and one of L slices by a
 * keyed hash of its id, as in SISA. The parameterised layers below the head
 * (the last linear layer) are split into L contiguous layer groups counted
 * top-down: group 0 sits just below the head, group L-1 at the bottom. A
 * shard is trained along B slice orders (sequences). For a sequence sigma,
 * step i trains only group i and the head, on the cumulative data of slices
 * sigma(0..i), starting from step i-1's checkpoint; every other parameter
 * stays where it is (groups above at their trained values, groups below at
 * their initial values). Step i gets ceil(2E/(L+1) * n_i / batch) optimizer
 * steps, n_i being the samples of sigma(0..i). So group i depends only on
 * the slices sigma(0..i), and each step ends with a checkpoint of the whole
 * network, content-addressed by the prefix: sequences that share a prefix
 * share its checkpoints.
 *
 * Deleting a sample of (shard s, slice j) cuts every sequence of s just
 * before j. The shard then serves the checkpoint of its longest surviving
 * prefix (ties: the lowest sequence index); a shard with no surviving
 * prefix is dead. Predictions average the logits of the live shards.
 * Checkpoints whose prefix holds a deleted sample are removed: they were
 * trained on it. Nothing is retrained, so a deletion costs bookkeeping, a
 * small atomic state write and a few unlinks.
 *
 * A directory holds s3t.json (the configuration and the sequences),
 * ckpt/KEY.safetensors, state.json (each shard's served prefix and model
 * file sha256, and the sha256 of every checkpoint) and ledger.log; the
 * configuration, requests (lethe_ensemble_request) and prediction
 * (lethe_ensemble_predict, the mean of the live shards' logits) are the
 * sharded ensemble's (lethe/ensemble.h). lethe_s3t_train and lethe_s3t_apply
 * hold the directory's lock (lethe/runlock.h) and replay the ledger again
 * under it. */
#ifndef LETHE_S3T_H
#define LETHE_S3T_H

#include <stdint.h>

#include "lethe/ensemble.h"
#include "lethe/net.h"
#include "lethe/train.h"
#include "lethe/task.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* The defaults of an S3T ensemble (lethe s3t train), and of the capacity
 * simulation (lethe_s3t_simulate: slices, runs). */
enum { LETHE_S3T_SHARDS = 5, LETHE_S3T_SLICES = 2, LETHE_S3T_SIM_SLICES = 6, LETHE_S3T_SIM_RUNS = 100 };

#define LETHE_S3T_MAX_SLICES 24
#define LETHE_S3T_MAX_BUDGET 256

typedef enum lethe_s3t_order { LETHE_S3T_CYCLIC, LETHE_S3T_BMS } lethe_s3t_order;

/* ---- Slice orders ------------------------------------------------------ */

/* Cyclic rotations into seq (B, L): sequence b < L is 0..L-1 rotated left
 * by b (it starts at slice b), so the first min(B, L) sequences lead with
 * distinct slices. For B > L each sequence of the previous level is
 * followed by the rotations of its suffix after one more fixed element,
 * taken round-robin, so every prefix of the list is as spread as it can be.
 * B must be 1..min(L!, LETHE_S3T_MAX_BUDGET). */
lethe_status lethe_s3t_cyclic(int L, int B, int *seq);

/* The BMS score of a slice order perm[0..n) under a per-slice deletion
 * prior (summing to 1): sum over prefixes k = 1..n of k * (1 - c_k)^100,
 * c_k the prior mass of the first k slices. */
double lethe_s3t_score(const int *perm, int n, const double *prior);

/* Bipartite-matching selection into seq (B, L), B <= L. Starting from the L
 * one-slice sequences [j], each of L-1 rounds extends every sequence by one
 * unused slice with a single maximum-weight assignment of the marginal
 * score (a Hungarian solve), so each position of the L sequences is a
 * permutation of the slices. The B sequences with the highest score are
 * kept, in order of score (ties: the lower first slice). prior (L) may be
 * NULL for uniform, where every assignment weighs the same. */
lethe_status lethe_s3t_bms(int L, int B, const double *prior, int *seq);

/* Maximum-weight assignment: rows <= cols, cost (rows, cols) row-major,
 * finite or -INFINITY for a forbidden pair. col_of[r] receives row r's
 * column; columns are distinct. Returns the total weight, -INFINITY when
 * every assignment uses a forbidden pair, or NAN (detail set) when out of
 * memory. O(rows^2 cols). */
double lethe_s3t_assign(const double *cost, int rows, int cols, int *col_of);

/* ---- Layer groups and masked training ---------------------------------- */

typedef struct lethe_s3t_groups {
    int n;                              /* L */
    int head;                           /* layer index of the head */
    int first[LETHE_NET_MAX_LAYERS];    /* group g: layers first[g]..last[g] */
    int last[LETHE_NET_MAX_LAYERS];
    long off[LETHE_NET_MAX_LAYERS];     /* group g's parameters: [off, off + len) */
    long len[LETHE_NET_MAX_LAYERS];
    long head_off, head_len;            /* the head's parameters (to the end) */
} lethe_s3t_groups;

/* Split net's parameterised layers below the head into L groups, top-down.
 * Groups hold floor(P/L) or ceil(P/L) of the P layers, the larger ones at
 * the bottom. Fewer than L such layers is LETHE_ERR_INVALID with a hint. */
lethe_status lethe_s3t_group_layers(const lethe_net *net, int L, lethe_s3t_groups *out);

/* Train group `group` and the head of net in place on rows of ds for
 * cfg->steps optimizer steps (cfg->optim, lr, momentum, weight_decay, clip,
 * batch, loss, seed; a constant rate), visiting rows in the keyed order of
 * lethe_train_order each epoch. Every other parameter is left bit-identical:
 * the optimizer, weight decay and clipping see only the trainable ranges. */
lethe_status lethe_s3t_train_group(lethe_net *net, const lethe_s3t_groups *g, int group,
                                   const lethe_dataset *ds, const lethe_rows *rows,
                                   const lethe_train_cfg *cfg);

/* ---- Deletion ----------------------------------------------------------- */

/* The surviving prefix of a shard whose sequences are seq (B, L), given
 * hit (L): hit[j] != 0 when slice j holds a deleted sample. Returns the
 * served sequence (the longest surviving prefix; ties: the lowest index)
 * and its length in *len, or -1 and 0 when every sequence is cut at its
 * first slice (the shard is dead). */
int lethe_s3t_surviving(const int *seq, int B, int L, const char *hit, int *len);

/* ---- Deletion capacity ------------------------------------------------- */

typedef struct lethe_s3t_stat {
    double mean, sd;
    long min, max;
} lethe_s3t_stat;

typedef struct lethe_s3t_capacity {
    long runs;
    lethe_s3t_stat sisa_shard, sisa_model; /* deletions until a shard / every shard is hit */
    lethe_s3t_stat s3t_shard, s3t_model;   /* until a shard / every shard has no sequence */
    double sisa_expected;                  /* m * H_m */
    double s3t_expected;                   /* m * L * H_{m * lead slices}; see below */
    int lead;                              /* distinct first slices per shard */
} lethe_s3t_capacity;

/* Simulate `runs` streams of deletions over the m*L (shard, slice) cells
 * (with replacement), drawn from (seed, stream = run): uniform, or a
 * uniform shard and a slice drawn from prior (L weights; NULL: uniform),
 * which BMS also uses to choose the sequences. A SISA shard dies at its
 * first hit (it must retrain); an S3T shard when every one of its sequences
 * has lost its first slice, i.e. when its `lead` distinct first slices are
 * all hit. Under uniform deletions the model's death is a coupon collector
 * over m * lead cells that each deletion reaches with probability lead / L:
 * expected m * L * H_{m*lead} deletions (NAN under a non-uniform prior),
 * against m * H_m for SISA. */
lethe_status lethe_s3t_simulate(int m, int L, int B, lethe_s3t_order order,
                                const double *prior, long runs, uint64_t seed,
                                lethe_s3t_capacity *out);

/* ---- S3T directories --------------------------------------------------- */

typedef struct lethe_s3t {
    lethe_ensemble e;           /* aggregate: the mean of the logits; model: each
                                   shard's served prefix ("" when dead) */
    int budget;
    lethe_s3t_order order;
    double *prior;              /* (shards, slices) normalised, or NULL */
    int *seq;                   /* (shards, budget, slices) */
    lethe_s3t_groups groups;
    char (*key)[65];            /* (shards, budget, slices): each prefix's checkpoint key */
    char (*sha)[65];            /* same shape: its file's sha256 ("" if none) */
    char *hit;                  /* (shards, slices) */
    int *served, *served_len;   /* per shard: sequence (-1: dead) and prefix length */
    int trained;                /* state.json exists: training finished */
    long trained_prefixes;      /* prefixes trained by the last lethe_s3t_train */
    long removed;               /* checkpoint files removed by the last apply */
    double switch_seconds;      /* last apply: until state.json served the new prefixes */
    double erase_seconds;       /* last apply: removing the checkpoints */
} lethe_s3t;

/* Start an S3T directory and choose the sequences. dir is created by the
 * rule of lethe_sisa_create (lethe/sisa.h), kept once the first
 * lethe_s3t_train completes. prior (shards * slices values, or slices values
 * shared by every shard; n_prior 0 for none) is normalised per shard.
 * excluded and exclude are those of lethe_sisa_create. Free with
 * lethe_s3t_free. */
lethe_status lethe_s3t_create(const char *dir, const char *task, const lethe_task_opts *opts,
                              const char *spec, const lethe_train_cfg *cfg, int shards,
                              int slices, int budget, lethe_s3t_order order,
                              const double *prior, long n_prior, uint64_t seed,
                              const lethe_rows *excluded, const char *exclude, int force,
                              lethe_s3t **out);

/* Open a directory and replay its ledger; requests a crash left pending are
 * applied here (when training has finished). */
lethe_status lethe_s3t_open(const char *dir, lethe_s3t **out);
void lethe_s3t_free(lethe_s3t *s); /* NULL is a no-op */

/* Train every checkpoint that is missing, skipping prefixes that hold a
 * deleted sample, then write state.json. Resumes an interrupted run. */
lethe_status lethe_s3t_train(lethe_s3t *s);

/* Recompute, in memory only, the hit slices and every shard's surviving
 * prefix from s->e.deleted (hit, served, served_len and e.model): what
 * lethe_s3t_apply writes next, without writing anything. A process that
 * holds the models in memory switches to the cut prefixes at once with it
 * and leaves the files to lethe_s3t_apply. */
void lethe_s3t_truncate(lethe_s3t *s);

/* Serve every recorded request: recompute the hit slices and each shard's
 * surviving prefix, write state.json (from then on every reader serves the
 * cut prefixes), remove the checkpoints trained on deleted samples and mark
 * pending requests applied. No gradient step. Idempotent. The time to the
 * switch and the time spent removing files are left in switch_seconds and
 * erase_seconds. */
lethe_status lethe_s3t_apply(lethe_s3t *s);

LETHE_API_END
#endif
