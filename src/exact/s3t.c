/* S3T: slice orders, layer groups, masked training, deletion by prefix
 * truncation, the deletion-capacity simulation, and S3T directories. */
#include "lethe/s3t.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/mem.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/run.h"
#include "lethe/sha256.h"
#include "ensemble_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Shards and slices use SISA's streams, so both split a data set alike. */
#define STREAM_INIT 0x53e7ull
#define STREAM_DROPOUT 0x5d0full
#define STREAM_SIM 0x515aull

#define BMS_POWER 100

/* ======================================================================
 * Slice orders
 * ====================================================================== */

static long factorial_capped(int n, long cap)
{
    long f = 1;
    for (int i = 2; i <= n && f <= cap; i++)
        f *= i;
    return f;
}

lethe_status lethe_s3t_cyclic(int L, int B, int *seq)
{
    if (L < 1 || L > LETHE_S3T_MAX_SLICES)
        return lethe_fail(LETHE_ERR_INVALID, "slices must be 1-%d, got %d",
                          LETHE_S3T_MAX_SLICES, L);
    long most = factorial_capped(L, LETHE_S3T_MAX_BUDGET);
    if (most > LETHE_S3T_MAX_BUDGET)
        most = LETHE_S3T_MAX_BUDGET;
    if (B < 1 || B > most)
        return lethe_fail(LETHE_ERR_INVALID,
                          "a budget of %d sequences is out of range: %d slices allow 1-%ld "
                          "distinct orders",
                          B, L, most);
    /* Level 1: the L left rotations. Level d+1 keeps the first d elements
     * of each level-d sequence and rotates the rest by r = 0, 1, ...,
     * round-robin over the parents, so r = 0 repeats level d in order. */
    int *cur = malloc(sizeof(int) * (size_t)LETHE_S3T_MAX_BUDGET * (size_t)L);
    int *next = malloc(sizeof(int) * (size_t)LETHE_S3T_MAX_BUDGET * (size_t)L);
    if (!cur || !next) {
        free(cur);
        free(next);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    long n = L < B ? L : B;
    for (long b = 0; b < n; b++)
        for (int i = 0; i < L; i++)
            cur[b * L + i] = (int)((b + i) % L);
    for (int d = 1; n < B && d < L - 1; d++) {
        long m = 0, parents = n;
        for (int r = 0; r < L - d && m < B; r++)
            for (long p = 0; p < parents && m < B; p++, m++) {
                const int *q = cur + p * L;
                int *o = next + m * L;
                memcpy(o, q, sizeof(int) * (size_t)d);
                for (int i = d; i < L; i++)
                    o[i] = q[d + (i - d + r) % (L - d)];
            }
        int *t = cur;
        cur = next, next = t;
        n = m;
    }
    LETHE_ASSERT(n == B);
    memcpy(seq, cur, sizeof(int) * (size_t)B * (size_t)L);
    free(cur);
    free(next);
    return LETHE_OK;
}

double lethe_s3t_score(const int *perm, int n, const double *prior)
{
    double c = 0, score = 0;
    for (int k = 0; k < n; k++) {
        c += prior[perm[k]];
        double keep = 1.0 - c;
        score += (k + 1) * pow(keep > 0 ? keep : 0, BMS_POWER);
    }
    return score;
}

double lethe_s3t_assign(const double *cost, int rows, int cols, int *col_of)
{
    LETHE_ASSERT(rows >= 1 && rows <= cols);
    /* Shortest augmenting paths with row and column potentials, minimising
     * the negated weights; index 0 is a virtual column. */
    int n = rows, m = cols;
    double total = 0;
    double *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)m + 1, sizeof *v);
    double *minv = malloc(sizeof(double) * ((size_t)m + 1));
    int *p = calloc((size_t)m + 1, sizeof *p), *way = calloc((size_t)m + 1, sizeof *way);
    char *used = malloc((size_t)m + 1);
    if (!u || !v || !minv || !p || !way || !used) {
        total = NAN;
        lethe_fail(LETHE_ERR_NOMEM, "out of memory for a %d x %d assignment", rows, cols);
        goto done;
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++)
            minv[j] = INFINITY, used[j] = 0;
        do {
            used[j0] = 1;
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (int j = 1; j <= m; j++) {
                if (used[j])
                    continue;
                double cur = -cost[(size_t)(i0 - 1) * (size_t)m + (size_t)(j - 1)] - u[i0] - v[j];
                if (cur < minv[j])
                    minv[j] = cur, way[j] = j0;
                if (minv[j] < delta)
                    delta = minv[j], j1 = j;
            }
            if (j1 == 0) { /* only forbidden pairs left: no assignment */
                total = -INFINITY;
                goto done;
            }
            for (int j = 0; j <= m; j++) {
                if (used[j])
                    u[p[j]] += delta, v[j] -= delta;
                else
                    minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    for (int j = 1; j <= m; j++)
        if (p[j]) {
            col_of[p[j] - 1] = j - 1;
            total += cost[(size_t)(p[j] - 1) * (size_t)m + (size_t)(j - 1)];
        }
done:
    free(u);
    free(v);
    free(minv);
    free(p);
    free(way);
    free(used);
    return total;
}

lethe_status lethe_s3t_bms(int L, int B, const double *prior, int *seq)
{
    if (L < 1 || L > LETHE_S3T_MAX_SLICES || B < 1 || B > L)
        return lethe_fail(LETHE_ERR_INVALID,
                          "BMS takes 1-%d slices and a budget of 1 to the number of slices "
                          "(got %d slices, budget %d)",
                          LETHE_S3T_MAX_SLICES, L, B);
    double pr[LETHE_S3T_MAX_SLICES], sum = 0;
    for (int j = 0; j < L; j++) {
        pr[j] = prior ? prior[j] : 1.0;
        if (!(pr[j] >= 0) || !isfinite(pr[j]))
            return lethe_fail(LETHE_ERR_INVALID, "the deletion prior of slice %d is not a "
                              "finite number >= 0", j);
        sum += pr[j];
    }
    if (!(sum > 0))
        return lethe_fail(LETHE_ERR_INVALID, "the deletion prior sums to zero");
    for (int j = 0; j < L; j++)
        pr[j] /= sum;
    int all[LETHE_S3T_MAX_SLICES * LETHE_S3T_MAX_SLICES];
    double cost[LETHE_S3T_MAX_SLICES * LETHE_S3T_MAX_SLICES], mass[LETHE_S3T_MAX_SLICES];
    char usedj[LETHE_S3T_MAX_SLICES][LETHE_S3T_MAX_SLICES];
    memset(usedj, 0, sizeof usedj);
    for (int i = 0; i < L; i++) {
        all[i * L] = i;
        mass[i] = pr[i];
        usedj[i][i] = 1;
    }
    /* Round k appends position k. score(perm + [j]) - score(perm) depends on
     * j alone through the marginal term, and every row takes exactly one
     * column, so maximising the marginals maximises the scores. A slice
     * already in a sequence is forbidden; an assignment avoiding them exists
     * (after k rounds every slice is used exactly k times, so the allowed
     * graph is (L-k)-regular). Forbidden pairs are -inf rather than a large
     * finite penalty, which would swamp the tiny marginals in rounding. */
    double forbid = -INFINITY;
    for (int k = 1; k < L; k++) {
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++) {
                double keep = 1.0 - mass[i] - pr[j];
                cost[i * L + j] = usedj[i][j] ? forbid
                                              : (k + 1) * pow(keep > 0 ? keep : 0, BMS_POWER);
            }
        int col[LETHE_S3T_MAX_SLICES];
        double w = lethe_s3t_assign(cost, L, L, col);
        if (isnan(w))
            return LETHE_ERR_NOMEM;
        LETHE_ASSERT(w > -INFINITY); /* the allowed graph is regular: a matching exists */
        for (int i = 0; i < L; i++) {
            LETHE_ASSERT(!usedj[i][col[i]]);
            all[i * L + k] = col[i];
            usedj[i][col[i]] = 1;
            mass[i] += pr[col[i]];
        }
    }
    /* Keep the B best, stable in the first slice. */
    int idx[LETHE_S3T_MAX_SLICES];
    double sc[LETHE_S3T_MAX_SLICES];
    for (int i = 0; i < L; i++)
        idx[i] = i, sc[i] = lethe_s3t_score(all + i * L, L, pr);
    for (int i = 1; i < L; i++) /* insertion sort: descending score, stable */
        for (int j = i; j > 0 && sc[idx[j]] > sc[idx[j - 1]]; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    for (int b = 0; b < B; b++)
        memcpy(seq + b * L, all + idx[b] * L, sizeof(int) * (size_t)L);
    return LETHE_OK;
}

/* ======================================================================
 * Layer groups and masked training
 * ====================================================================== */

lethe_status lethe_s3t_group_layers(const lethe_net *net, int L, lethe_s3t_groups *out)
{
    memset(out, 0, sizeof *out);
    int layer[LETHE_NET_MAX_LAYERS], P = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].w_len + net->layers[i].b_len > 0)
            layer[P++] = i;
    if (P == 0 || net->layers[layer[P - 1]].kind != LETHE_LAYER_LINEAR)
        return lethe_fail(LETHE_ERR_INVALID, "S3T needs a model that ends in a linear layer");
    int head = layer[--P];
    if (L < 1 || P < L)
        return lethe_fail(LETHE_ERR_INVALID,
                          "S3T trains one layer group per slice and the model has %d "
                          "parameterised layer%s below its head, fewer than the %d slices: "
                          "use fewer slices or a deeper model (e.g. an mlp of widths "
                          "256-256-256-256 for 4 slices)",
                          P, P == 1 ? "" : "s", L);
    out->n = L;
    out->head = head;
    out->head_off = net->layers[head].w_off;
    out->head_len = net->n_params - out->head_off;
    /* top-down: group 0 holds the highest layers; the bottom groups get the
     * extra layers when L does not divide P */
    int top = P; /* layers[0..top) are not yet grouped */
    for (int g = 0; g < L; g++) {
        int size = P / L + (g >= L - P % L ? 1 : 0);
        const lethe_layer *lo = &net->layers[layer[top - size]], *hi = &net->layers[layer[top - 1]];
        out->first[g] = layer[top - size];
        out->last[g] = layer[top - 1];
        out->off[g] = lo->w_off;
        out->len[g] = hi->b_off + hi->b_len - lo->w_off;
        top -= size;
    }
    LETHE_ASSERT(top == 0);
    return LETHE_OK;
}

lethe_status lethe_s3t_train_group(lethe_net *net, const lethe_s3t_groups *g, int group,
                                   const lethe_dataset *ds, const lethe_rows *rows,
                                   const lethe_train_cfg *cfg)
{
    LETHE_ASSERT(group >= 0 && group < g->n);
    if (cfg->batch <= 0)
        return lethe_fail(LETHE_ERR_INVALID, "batch size must be positive, got %d", cfg->batch);
    if ((ds->task == LETHE_TASK_CLASSIFY) != (cfg->loss == LETHE_LOSS_XENT))
        return lethe_fail(LETHE_ERR_INVALID, "%s: the loss does not fit the task", ds->name);
    long want_out = ds->task == LETHE_TASK_CLASSIFY ? ds->n_classes : ds->n_targets;
    if (net->n_in != ds->d || net->n_out != want_out)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the model does not fit the data", ds->name);
    if (cfg->steps <= 0 || rows->n == 0)
        return LETHE_OK;
    long n = rows->n, goff = g->off[group], glen = g->len[group];
    long *order = malloc(sizeof(long) * (size_t)n);
    lethe_optim *og = lethe_optim_init(cfg->optim, glen);
    lethe_optim *oh = lethe_optim_init(cfg->optim, g->head_len);
    lethe_status st = LETHE_OK;
    if (!order || !og || !oh) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory setting up training");
        goto done;
    }
    og->momentum = oh->momentum = cfg->momentum;
    og->weight_decay = oh->weight_decay = cfg->weight_decay;
    long per_epoch = (n + cfg->batch - 1) / cfg->batch;
    uint64_t drop_seed = 0;
    float *gg = net->grads + goff, *gh = net->grads + g->head_off;
    for (long step = 0; step < cfg->steps; step++) {
        long in_epoch = step % per_epoch;
        int epoch = (int)(step / per_epoch);
        if (in_epoch == 0) {
            if ((st = lethe_train_order(ds, rows, cfg->seed, epoch, order)) != LETHE_OK)
                goto done;
            drop_seed = lethe_rng_hash(cfg->seed, STREAM_DROPOUT, (uint64_t)epoch);
        }
        long b = in_epoch * cfg->batch;
        int B = (int)(n - b < cfg->batch ? n - b : cfg->batch);
        memset(net->grads, 0, sizeof(float) * (size_t)net->n_params);
        double loss = lethe_batch_grad(net, ds, order + b, B, cfg->loss, 1, drop_seed, 1.0f,
                                       NULL);
        if (!isfinite(loss)) {
            st = isnan(loss) && lethe_error_detail()[0]
                     ? LETHE_ERR_NOMEM
                     : lethe_fail(LETHE_ERR_FAILED,
                                  "%s: the loss diverged at step %ld of group %d (lower the learning rate?)",
                                  ds->name, step, group);
            goto done;
        }
        if (cfg->clip > 0) { /* the norm of the trainable gradient only */
            double a = lethe_grad_norm(gg, glen), h = lethe_grad_norm(gh, g->head_len);
            double norm = sqrt(a * a + h * h);
            if (norm > cfg->clip) {
                float k = (float)(cfg->clip / (norm + 1e-6));
                for (long i = 0; i < glen; i++)
                    gg[i] *= k;
                for (long i = 0; i < g->head_len; i++)
                    gh[i] *= k;
            }
        }
        lethe_optim_step(og, net->params + goff, gg, cfg->lr);
        lethe_optim_step(oh, net->params + g->head_off, gh, cfg->lr);
    }
done:
    free(order);
    lethe_optim_free(og);
    lethe_optim_free(oh);
    return st;
}

/* ======================================================================
 * Deletion and capacity
 * ====================================================================== */

int lethe_s3t_surviving(const int *seq, int B, int L, const char *hit, int *len)
{
    int best = -1, best_len = 0;
    for (int b = 0; b < B; b++) {
        int k = 0;
        while (k < L && !hit[seq[b * L + k]])
            k++;
        if (k > best_len)
            best = b, best_len = k;
    }
    *len = best_len;
    return best;
}

static void stat_add(lethe_s3t_stat *s, double *sum, double *sq, long x, long run)
{
    if (run == 0 || x < s->min)
        s->min = x;
    if (run == 0 || x > s->max)
        s->max = x;
    *sum += (double)x, *sq += (double)x * (double)x;
}

static void stat_end(lethe_s3t_stat *s, double sum, double sq, long runs)
{
    s->mean = sum / (double)runs;
    double var = runs > 1 ? (sq - sum * sum / (double)runs) / (double)(runs - 1) : 0;
    s->sd = var > 0 ? sqrt(var) : 0;
}

static double harmonic(long n)
{
    double h = 0;
    for (long k = 1; k <= n; k++)
        h += 1.0 / (double)k;
    return h;
}

lethe_status lethe_s3t_simulate(int m, int L, int B, lethe_s3t_order order,
                                const double *prior, long runs, uint64_t seed,
                                lethe_s3t_capacity *out)
{
    memset(out, 0, sizeof *out);
    if (m < 1 || m > 100000 || runs < 1 || runs > 10000000)
        return lethe_fail(LETHE_ERR_INVALID, "simulate needs 1-100000 shards and 1-10^7 runs");
    if (L < 1 || L > LETHE_S3T_MAX_SLICES)
        return lethe_fail(LETHE_ERR_INVALID, "slices must be 1-%d, got %d",
                          LETHE_S3T_MAX_SLICES, L);
    double cdf[LETHE_S3T_MAX_SLICES], total = 0;
    int uniform = 1;
    for (int j = 0; j < L; j++) {
        double p = prior ? prior[j] : 1.0;
        if (!isfinite(p) || p < 0)
            return lethe_fail(LETHE_ERR_INVALID, "the deletion prior must hold finite numbers "
                              ">= 0 (slice %d: %g)", j, p);
        uniform &= p == (prior ? prior[0] : 1.0);
        cdf[j] = total += p;
    }
    if (!(total > 0))
        return lethe_fail(LETHE_ERR_INVALID, "the deletion prior sums to zero");
    int *seq = malloc(sizeof(int) * (size_t)LETHE_S3T_MAX_BUDGET * (size_t)LETHE_S3T_MAX_SLICES);
    if (!seq)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = order == LETHE_S3T_BMS ? lethe_s3t_bms(L, B, prior, seq)
                                             : lethe_s3t_cyclic(L, B, seq);
    char *lead = NULL, *hit = NULL;
    int *alive_leads = NULL;
    if (st == LETHE_OK) {
        lead = calloc((size_t)L, 1);
        hit = malloc((size_t)m * (size_t)L);
        alive_leads = malloc(sizeof(int) * (size_t)m);
        if (!lead || !hit || !alive_leads)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (st != LETHE_OK)
        goto done;
    /* every shard has the same sequences; a sequence survives exactly as
     * long as its first slice is untouched */
    int n_lead = 0;
    for (int b = 0; b < B; b++)
        if (!lead[seq[b * L]])
            lead[seq[b * L]] = 1, n_lead++;
    for (int j = 0; j < L; j++)
        if (lead[j] && cdf[j] == (j ? cdf[j - 1] : 0)) {
            st = lethe_fail(LETHE_ERR_INVALID, "slice %d leads an order and is never deleted "
                            "under this prior, so no S3T shard would ever die", j);
            goto done;
        }
    out->runs = runs;
    out->lead = n_lead;
    double s[4] = {0}, q[4] = {0};
    for (long r = 0; r < runs; r++) {
        lethe_rng rng = lethe_rng_init(seed, STREAM_SIM + (uint64_t)r);
        memset(hit, 0, (size_t)m * (size_t)L);
        for (int k = 0; k < m; k++)
            alive_leads[k] = n_lead;
        long t = 0, sisa_shard = 0, sisa_model = 0, s3t_shard = 0, s3t_model = 0;
        int shards_hit = 0, shards_dead = 0;
        char *touched = calloc((size_t)m, 1);
        if (!touched) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            goto done;
        }
        while (!s3t_model || !sisa_model) {
            int k, j = 0;
            if (uniform) {
                uint32_t cell = lethe_rng_below(&rng, (uint32_t)((long)m * L));
                k = (int)(cell / (uint32_t)L), j = (int)(cell % (uint32_t)L);
            } else { /* a uniform shard, a slice drawn from the prior */
                k = (int)lethe_rng_below(&rng, (uint32_t)m);
                double u = lethe_rng_uniform(&rng) * total;
                while (j < L - 1 && cdf[j] <= u) /* the first slice whose mass covers u */
                    j++;
            }
            t++;
            if (!touched[k]) {
                touched[k] = 1;
                if (++shards_hit == 1)
                    sisa_shard = t;
                if (shards_hit == m)
                    sisa_model = t;
            }
            if (!hit[(size_t)k * L + j]) {
                hit[(size_t)k * L + j] = 1;
                if (lead[j] && --alive_leads[k] == 0) {
                    if (++shards_dead == 1)
                        s3t_shard = t;
                    if (shards_dead == m)
                        s3t_model = t;
                }
            }
        }
        free(touched);
        stat_add(&out->sisa_shard, &s[0], &q[0], sisa_shard, r);
        stat_add(&out->sisa_model, &s[1], &q[1], sisa_model, r);
        stat_add(&out->s3t_shard, &s[2], &q[2], s3t_shard, r);
        stat_add(&out->s3t_model, &s[3], &q[3], s3t_model, r);
    }
    stat_end(&out->sisa_shard, s[0], q[0], runs);
    stat_end(&out->sisa_model, s[1], q[1], runs);
    stat_end(&out->s3t_shard, s[2], q[2], runs);
    stat_end(&out->s3t_model, s[3], q[3], runs);
    out->sisa_expected = m * harmonic(m);
    out->s3t_expected = uniform ? (double)m * L * harmonic((long)m * n_lead) : NAN;
done:
    free(seq);
    free(lead);
    free(hit);
    free(alive_leads);
    return st;
}

/* ======================================================================
 * Directories
 * ====================================================================== */

#define SEQ(s, k, b) \
    ((s)->seq + ((size_t)(k) * (size_t)(s)->budget + (size_t)(b)) * (size_t)(s)->e.slices)
#define PFX(s, k, b, i) \
    (((size_t)(k) * (size_t)(s)->budget + (size_t)(b)) * (size_t)(s)->e.slices + (size_t)(i))

void lethe_s3t_free(lethe_s3t *s)
{
    if (!s)
        return;
    ex_free(&s->e);
    free(s->prior);
    free(s->seq);
    free(s->key);
    free(s->sha);
    free(s->hit);
    free(s->served);
    free(s->served_len);
    free(s);
}

static const char *order_name(lethe_s3t_order o)
{
    return o == LETHE_S3T_BMS ? "bms" : "cyclic";
}

/* The training seed of a prefix: the first 64 bits of its key. */
static uint64_t key_seed(const char *key)
{
    char head[17];
    memcpy(head, key, 16);
    head[16] = 0;
    return strtoull(head, NULL, 16);
}

/* Rows of (shard, slice) that training uses, ascending, and their count. */
static long slice_rows(const lethe_s3t *s, int shard, int slice, long *out)
{
    const lethe_ensemble *e = &s->e;
    long n = 0;
    for (long i = 0; i < e->train->n; i++)
        if (e->shard_of[i] == shard && e->slice_of[i] == slice && !e->excluded[i])
            out[n++] = i;
    return n;
}

/* Every prefix's key: the key of step i hashes the key of step i-1, the
 * slice it adds, that slice's ids and the step budget. */
static lethe_status compute_keys(lethe_s3t *s)
{
    const lethe_ensemble *e = &s->e;
    long *rows = malloc(sizeof(long) * (size_t)(e->train->n + 1));
    long *count = malloc(sizeof(long) * (size_t)e->slices);
    lethe_sha256 *slice_h = malloc(sizeof(lethe_sha256) * (size_t)e->slices);
    if (!rows || !count || !slice_h) {
        free(rows), free(count), free(slice_h);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < e->shards; k++) {
        /* hash each slice's ids once; chains continue from a copy */
        for (int j = 0; j < e->slices; j++) {
            count[j] = slice_rows(s, k, j, rows);
            lethe_sha256_init(&slice_h[j]);
            int32_t jj = j;
            lethe_sha256_update(&slice_h[j], &jj, sizeof jj);
            for (long r = 0; r < count[j]; r++)
                lethe_sha256_update(&slice_h[j], &e->train->ids[rows[r]], sizeof(uint64_t));
        }
        char root[65];
        ex_root_key(e, "lethe-s3t-1", 1, k, root);
        for (int b = 0; b < s->budget; b++) {
            const int *sq = SEQ(s, k, b);
            const char *prev = root;
            long n_cum = 0;
            for (int i = 0; i < e->slices; i++) {
                char ids_hex[65];
                lethe_sha256 h = slice_h[sq[i]];
                lethe_sha256_final(&h, ids_hex);
                n_cum += count[sq[i]];
                long steps = ex_steps(e, n_cum);
                lethe_sha256_init(&h);
                lethe_sha256_update(&h, prev, 64);
                lethe_sha256_update(&h, ids_hex, 64);
                lethe_sha256_update(&h, &steps, sizeof steps);
                lethe_sha256_final(&h, s->key[PFX(s, k, b, i)]);
                prev = s->key[PFX(s, k, b, i)];
            }
        }
    }
    free(rows);
    free(count);
    free(slice_h);
    return LETHE_OK;
}

/* Which slices hold a deleted sample, and each shard's surviving prefix
 * (the model it serves). */
static void truncate_all(lethe_s3t *s)
{
    lethe_ensemble *e = &s->e;
    memset(s->hit, 0, (size_t)e->shards * (size_t)e->slices);
    for (long i = 0; i < e->train->n; i++)
        if (e->deleted[i])
            s->hit[(size_t)e->shard_of[i] * (size_t)e->slices + (size_t)e->slice_of[i]] = 1;
    for (int k = 0; k < e->shards; k++) {
        s->served[k] = lethe_s3t_surviving(SEQ(s, k, 0), s->budget, e->slices,
                                           s->hit + (size_t)k * (size_t)e->slices,
                                           &s->served_len[k]);
        int b = s->served[k];
        snprintf(e->model[k], sizeof e->model[k], "%s",
                 b >= 0 ? s->key[PFX(s, k, b, s->served_len[k] - 1)] : "");
    }
}

void lethe_s3t_truncate(lethe_s3t *s)
{
    truncate_all(s);
}

/* Prefix (k, b, i) holds a deleted sample. */
static int tainted(const lethe_s3t *s, int k, int b, int i)
{
    const int *sq = SEQ(s, k, b);
    for (int t = 0; t <= i; t++)
        if (s->hit[(size_t)k * (size_t)s->e.slices + (size_t)sq[t]])
            return 1;
    return 0;
}

/* Read state.json's checkpoint hashes, if training finished. */
static lethe_status read_state(lethe_s3t *s)
{
    char path[4200];
    ex_path(&s->e, "state.json", path, sizeof path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return LETHE_OK; /* not trained yet */
    cJSON *j = NULL;
    const cJSON *map = NULL;
    lethe_status st = lethe_json_read(path, &j);
    if (st == LETHE_OK)
        st = lethe_json_get_object(j, "checkpoints", path, &map);
    if (st == LETHE_OK) {
        size_t total = (size_t)s->e.shards * (size_t)s->budget * (size_t)s->e.slices;
        for (size_t p = 0; p < total; p++) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, s->key[p]));
            if (v && strlen(v) == 64)
                memcpy(s->sha[p], v, 65);
        }
        s->trained = 1;
    }
    cJSON_Delete(j);
    return st;
}

/* After the common setup: the layer groups, the keys, the served prefixes
 * and what training left. */
static lethe_status setup(lethe_s3t *s, const cJSON *j)
{
    lethe_ensemble *e = &s->e;
    lethe_net *net = lethe_net_init(e->spec);
    if (!net)
        return LETHE_ERR_INVALID;
    lethe_status st = lethe_s3t_group_layers(net, e->slices, &s->groups);
    lethe_net_free(net);
    if (st == LETHE_OK)
        st = ex_setup(e, j);
    if (st != LETHE_OK)
        return st;
    size_t total = (size_t)e->shards * (size_t)s->budget * (size_t)e->slices;
    s->key = calloc(total, 65);
    s->sha = calloc(total, 65);
    s->hit = calloc((size_t)e->shards * (size_t)e->slices, 1);
    s->served = malloc(sizeof(int) * (size_t)e->shards);
    s->served_len = malloc(sizeof(int) * (size_t)e->shards);
    if (!s->key || !s->sha || !s->hit || !s->served || !s->served_len)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if ((st = compute_keys(s)) != LETHE_OK)
        return st;
    truncate_all(s);
    return read_state(s);
}

/* A JSON array of ints. */
static cJSON *int_array(const int *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* s3t.json's own keys. */
static void config_extra(cJSON *j, const void *self)
{
    const lethe_s3t *s = self;
    const lethe_ensemble *e = &s->e;
    cJSON_AddNumberToObject(j, "budget", s->budget);
    cJSON_AddStringToObject(j, "order", order_name(s->order));
    cJSON_AddNumberToObject(j, "clip", e->cfg.clip);
    if (s->prior) {
        cJSON *pr = cJSON_AddArrayToObject(j, "prior");
        for (int k = 0; k < e->shards; k++) {
            cJSON *row = cJSON_CreateArray();
            for (int i = 0; i < e->slices; i++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber(s->prior[k * e->slices + i]));
            cJSON_AddItemToArray(pr, row);
        }
    } else {
        cJSON_AddNullToObject(j, "prior");
    }
    cJSON *seqs = cJSON_AddArrayToObject(j, "sequences");
    for (int k = 0; k < e->shards; k++) {
        cJSON *sh = cJSON_CreateArray();
        for (int b = 0; b < s->budget; b++)
            cJSON_AddItemToArray(sh, int_array(SEQ(s, k, b), e->slices));
        cJSON_AddItemToArray(seqs, sh);
    }
}

/* Choose every shard's sequences. */
static lethe_status choose_sequences(lethe_s3t *s)
{
    const lethe_ensemble *e = &s->e;
    for (int k = 0; k < e->shards; k++) {
        lethe_status st = s->order == LETHE_S3T_BMS
                              ? lethe_s3t_bms(e->slices, s->budget,
                                              s->prior ? s->prior + k * e->slices : NULL,
                                              SEQ(s, k, 0))
                              : lethe_s3t_cyclic(e->slices, s->budget, SEQ(s, k, 0));
        if (st != LETHE_OK)
            return st;
    }
    return LETHE_OK;
}

static lethe_status check_shape(int shards, int slices, int budget, lethe_s3t_order order)
{
    if (shards < 1 || shards > 1024)
        return lethe_fail(LETHE_ERR_INVALID, "shards must be 1-1024, got %d", shards);
    if (slices < 1 || slices > LETHE_S3T_MAX_SLICES)
        return lethe_fail(LETHE_ERR_INVALID, "slices must be 1-%d, got %d",
                          LETHE_S3T_MAX_SLICES, slices);
    if (order == LETHE_S3T_BMS && (budget < 1 || budget > slices))
        return lethe_fail(LETHE_ERR_INVALID, "BMS takes a budget of 1-%d (the number of slices), "
                          "got %d", slices, budget);
    long most = factorial_capped(slices, LETHE_S3T_MAX_BUDGET);
    if (budget < 1 || budget > most || budget > LETHE_S3T_MAX_BUDGET)
        return lethe_fail(LETHE_ERR_INVALID, "a budget of %d is out of range for %d slices "
                          "(1-%ld)", budget, slices,
                          most < LETHE_S3T_MAX_BUDGET ? most : LETHE_S3T_MAX_BUDGET);
    return LETHE_OK;
}

/* Normalise the prior (n values: one per slice, or per slice of each
 * shard) into s->prior. */
static lethe_status set_prior(lethe_s3t *s, const double *prior, long n)
{
    int shards = s->e.shards, slices = s->e.slices;
    if (n != slices && n != (long)shards * slices)
        return lethe_fail(LETHE_ERR_INVALID, "the deletion prior has %ld values; give %d (one "
                          "per slice) or %d (one per slice of each shard)",
                          n, slices, shards * slices);
    if (!(s->prior = malloc(sizeof(double) * (size_t)shards * (size_t)slices)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; k < shards; k++) {
        long at = n == slices ? 0 : (long)k * slices;
        double sum = 0;
        for (int i = 0; i < slices; i++) {
            if (!isfinite(prior[at + i]) || prior[at + i] < 0)
                return lethe_fail(LETHE_ERR_INVALID, "the deletion prior must hold finite "
                                  "numbers >= 0 (value %ld is %g)", at + i + 1, prior[at + i]);
            sum += prior[at + i];
        }
        if (!(sum > 0))
            return lethe_fail(LETHE_ERR_INVALID, "the deletion prior of shard %d sums to zero",
                              k);
        for (int i = 0; i < slices; i++)
            s->prior[k * slices + i] = prior[at + i] / sum;
    }
    return LETHE_OK;
}

lethe_status lethe_s3t_create(const char *dir, const char *task, const lethe_task_opts *opts,
                              const char *spec, const lethe_train_cfg *cfg, int shards,
                              int slices, int budget, lethe_s3t_order order,
                              const double *prior, long n_prior, uint64_t seed,
                              const lethe_rows *excluded, const char *exclude, int force,
                              lethe_s3t **out)
{
    *out = NULL;
    lethe_status st = check_shape(shards, slices, budget, order);
    if (st != LETHE_OK)
        return st;
    lethe_net *net = lethe_net_init(spec);
    if (!net)
        return LETHE_ERR_INVALID;
    lethe_s3t_groups g;
    st = lethe_s3t_group_layers(net, slices, &g);
    lethe_net_free(net);
    if (st != LETHE_OK)
        return st;
    lethe_s3t *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    ex_init(&s->e, dir, "s3t", task, opts, spec, cfg, shards, slices, seed);
    s->budget = budget, s->order = order;
    s->seq = malloc(sizeof(int) * (size_t)shards * (size_t)budget * (size_t)slices);
    st = s->seq ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK && n_prior)
        st = set_prior(s, prior, n_prior);
    if (st == LETHE_OK)
        st = choose_sequences(s);
    if (st == LETHE_OK)
        st = ex_create(&s->e, force, excluded, exclude, config_extra, s);
    if (st == LETHE_OK)
        st = lethe_s3t_open(dir, out);
    ex_handover(&s->e, *out ? &(*out)->e : NULL);
    lethe_s3t_free(s);
    return st;
}

/* Read an int array of exactly n values in [lo, hi] into v. */
static lethe_status read_ints(const cJSON *a, int n, int lo, int hi, const char *where, int *v)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: expected an array of %d numbers", where, n);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int)e->valuedouble ||
            e->valuedouble < lo || e->valuedouble > hi)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: value %d must be a whole number in %d-%d",
                              where, i + 1, lo, hi);
        v[i++] = (int)e->valuedouble;
    }
    return LETHE_OK;
}

/* The sequences and prior of s3t.json, checked. */
static lethe_status read_sequences(lethe_s3t *s, const cJSON *j, const char *path)
{
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(j, "sequences");
    const cJSON *prior = cJSON_GetObjectItemCaseSensitive(j, "prior");
    int shards = s->e.shards, slices = s->e.slices;
    char where[4300];
    if (!cJSON_IsArray(seqs) || cJSON_GetArraySize(seqs) != shards)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: 'sequences' must hold one list per shard",
                          path);
    s->seq = malloc(sizeof(int) * (size_t)shards * (size_t)s->budget * (size_t)slices);
    if (!s->seq)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; k < shards; k++) {
        const cJSON *sh = cJSON_GetArrayItem(seqs, k);
        if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) != s->budget)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: shard %d must have %d sequences", path, k,
                              s->budget);
        for (int b = 0; b < s->budget; b++) {
            snprintf(where, sizeof where, "%s: sequence %d of shard %d", path, b, k);
            int *sq = SEQ(s, k, b);
            lethe_status st = read_ints(cJSON_GetArrayItem(sh, b), slices, 0, slices - 1,
                                        where, sq);
            if (st != LETHE_OK)
                return st;
            char seen[LETHE_S3T_MAX_SLICES] = {0};
            for (int i = 0; i < slices; i++) {
                if (seen[sq[i]])
                    return lethe_fail(LETHE_ERR_FORMAT, "%s: slice %d appears twice", where,
                                      sq[i]);
                seen[sq[i]] = 1;
            }
        }
    }
    if (!prior || cJSON_IsNull(prior))
        return LETHE_OK;
    if (!cJSON_IsArray(prior) || cJSON_GetArraySize(prior) != shards)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: 'prior' must be null or one list per shard",
                          path);
    s->prior = malloc(sizeof(double) * (size_t)shards * (size_t)slices);
    if (!s->prior)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int k = 0; k < shards; k++) {
        const cJSON *row = cJSON_GetArrayItem(prior, k);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != slices)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: prior of shard %d needs %d numbers", path,
                              k, slices);
        for (int i = 0; i < slices; i++) {
            const cJSON *v = cJSON_GetArrayItem(row, i);
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0))
                return lethe_fail(LETHE_ERR_FORMAT, "%s: prior of shard %d: value %d must be a "
                                  "number >= 0", path, k, i + 1);
            s->prior[k * slices + i] = v->valuedouble;
        }
    }
    return LETHE_OK;
}

lethe_status lethe_s3t_open(const char *dir, lethe_s3t **out)
{
    *out = NULL;
    lethe_s3t *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_ensemble *e = &s->e;
    cJSON *j = NULL;
    const char *order = NULL;
    long long budget = 0;
    double clip = 0;
    char path[4200];
    lethe_status st = ex_open(e, dir, "s3t", &j);
    ex_path(e, "s3t.json", path, sizeof path);
    if (st == LETHE_OK) /* stops at the first missing or mistyped key */
        (void)((st = lethe_json_get_string(j, "order", path, &order)) != LETHE_OK ||
               (st = lethe_json_get_int(j, "budget", path, &budget)) != LETHE_OK ||
               (st = lethe_json_get_number(j, "clip", path, &clip)) != LETHE_OK);
    if (st == LETHE_OK && strcmp(order, "bms") && strcmp(order, "cyclic"))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: order must be cyclic or bms", path);
    if (st == LETHE_OK) {
        s->order = !strcmp(order, "bms") ? LETHE_S3T_BMS : LETHE_S3T_CYCLIC;
        if (budget > LETHE_S3T_MAX_BUDGET ||
            check_shape(e->shards, e->slices, (int)budget, s->order) != LETHE_OK)
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: a setting is out of range", path);
    }
    if (st == LETHE_OK) {
        s->budget = (int)budget;
        e->cfg.clip = (float)clip;
        e->aggregate = LETHE_AGG_LOGITS;
        e->why_dead = "deletions cut every one of its sequences at the first slice";
        e->why_none = "every shard is dead, and a full retrain is needed (train again "
                      "excluding the deleted ids)";
        st = read_sequences(s, j, path);
    }
    if (st == LETHE_OK)
        st = setup(s, j);
    cJSON_Delete(j);
    /* serve what a crash left pending */
    if (st == LETHE_OK && s->trained && lethe_ledger_pending(e->ledger) > 0)
        st = lethe_s3t_apply(s);
    if (st != LETHE_OK) {
        lethe_s3t_free(s);
        return st;
    }
    *out = s;
    return LETHE_OK;
}

/* state.json: each shard's served prefix, and the hash of every checkpoint
 * that may still be served. */
static lethe_status write_state(lethe_s3t *s)
{
    const lethe_ensemble *e = &s->e;
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(j, "live", lethe_ensemble_live(e));
    cJSON *arr = cJSON_AddArrayToObject(j, "shards");
    lethe_status st = LETHE_OK;
    for (int k = 0; k < e->shards; k++) {
        int b = s->served[k], len = s->served_len[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "shard", k);
        cJSON_AddNumberToObject(o, "sequence", b);
        cJSON_AddNumberToObject(o, "prefix", len);
        cJSON_AddItemToObject(o, "slices", int_array(b >= 0 ? SEQ(s, k, b) : NULL, len));
        if (b >= 0) {
            const char *key = s->key[PFX(s, k, b, len - 1)], *sha = s->sha[PFX(s, k, b, len - 1)];
            if (!sha[0])
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: shard %d has no checkpoint for its prefix "
                                "of %d slices (training did not finish)", e->dir, k, len);
            cJSON_AddStringToObject(o, "checkpoint", key);
            cJSON_AddStringToObject(o, "sha256", sha);
        } else {
            cJSON_AddNullToObject(o, "checkpoint");
            cJSON_AddNullToObject(o, "sha256");
        }
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *map = cJSON_AddObjectToObject(j, "checkpoints");
    size_t total = (size_t)e->shards * (size_t)s->budget * (size_t)e->slices;
    for (size_t p = 0; p < total; p++) {
        int k = (int)(p / ((size_t)s->budget * (size_t)e->slices));
        int b = (int)(p / (size_t)e->slices % (size_t)s->budget), i = (int)(p % (size_t)e->slices);
        if (s->sha[p][0] && !tainted(s, k, b, i) &&
            !cJSON_GetObjectItemCaseSensitive(map, s->key[p]))
            cJSON_AddStringToObject(map, s->key[p], s->sha[p]);
    }
    char *txt = st == LETHE_OK ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (st != LETHE_OK)
        return st;
    if (!txt)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    char path[4200];
    ex_path(e, "state.json", path, sizeof path);
    st = lethe_file_write_atomic(path, txt, strlen(txt));
    free(txt);
    return st;
}

static lethe_status apply_locked(lethe_s3t *s);

/* Train prefix i of sequence b of shard k into net (holding prefix i-1,
 * or fresh when i is 0) and save it to path. */
static lethe_status train_prefix(lethe_s3t *s, lethe_net *net, int k, int b, int i,
                                 lethe_rows *cum, const char *path)
{
    const lethe_ensemble *e = &s->e;
    const int *sq = SEQ(s, k, b);
    size_t p = PFX(s, k, b, i);
    char in_slice[LETHE_S3T_MAX_SLICES] = {0};
    for (int t = 0; t <= i; t++)
        in_slice[sq[t]] = 1;
    cum->n = 0;
    for (long r = 0; r < e->train->n; r++)
        if (e->shard_of[r] == k && in_slice[e->slice_of[r]] && !e->excluded[r])
            cum->row[cum->n++] = r;
    lethe_train_cfg cfg = e->cfg;
    cfg.steps = ex_steps(e, cum->n);
    cfg.seed = key_seed(s->key[p]);
    lethe_status st = lethe_s3t_train_group(net, &s->groups, i, e->train, cum, &cfg);
    char sh[16], sl[16], n[24], sqs[3 * LETHE_S3T_MAX_SLICES + 1] = "";
    snprintf(sh, sizeof sh, "%d", k);
    snprintf(sl, sizeof sl, "%d", i + 1);
    snprintf(n, sizeof n, "%ld", cum->n);
    for (int t = 0; t <= i; t++)
        snprintf(sqs + strlen(sqs), sizeof sqs - strlen(sqs), t ? "-%d" : "%d", sq[t]);
    const char *meta[] = {"kind", "s3t", "key", s->key[p], "shard", sh, "prefix",
                          sl, "slices", sqs, "samples", n};
    if (st == LETHE_OK)
        st = lethe_net_save(net, path, meta, 6);
    if (st == LETHE_OK)
        st = lethe_sha256_file(path, s->sha[p]);
    return st;
}

static lethe_status train_locked(lethe_s3t *s)
{
    const lethe_ensemble *e = &s->e;
    lethe_rows cum = {0, malloc(sizeof(long) * (size_t)(e->train->n + 1))};
    lethe_net *net = lethe_net_init(e->spec);
    lethe_status st = cum.row && net ? LETHE_OK
                                     : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    char path[4200], prev_path[4200];
    s->trained_prefixes = 0;
    truncate_all(s);
    for (int k = 0; k < e->shards && st == LETHE_OK; k++) {
        uint64_t init_seed = lethe_rng_hash(e->seed, STREAM_INIT, (uint64_t)k);
        for (int b = 0; b < s->budget && st == LETHE_OK; b++) {
            int loaded = -1; /* the prefix length net holds; -1: stale */
            for (int i = 0; i < e->slices && st == LETHE_OK; i++) {
                if (tainted(s, k, b, i))
                    break; /* holds a deleted sample: never trained, never served */
                size_t p = PFX(s, k, b, i);
                lethe_ensemble_ckpt_path(e, s->key[p], path, sizeof path);
                struct stat sb;
                if (stat(path, &sb) == 0) { /* trained before, here or by a shared prefix */
                    if (!s->sha[p][0] && (st = lethe_sha256_file(path, s->sha[p])) != LETHE_OK)
                        break;
                    snprintf(prev_path, sizeof prev_path, "%s", path);
                    loaded = -1;
                    continue;
                }
                if (loaded != i) {
                    if (i == 0)
                        lethe_net_init_params(net, init_seed);
                    else if ((st = lethe_net_load_params(net, prev_path)) != LETHE_OK)
                        break;
                }
                st = train_prefix(s, net, k, b, i, &cum, path);
                if (st == LETHE_OK) {
                    s->trained_prefixes++;
                    loaded = i + 1;
                    snprintf(prev_path, sizeof prev_path, "%s", path);
                }
            }
        }
    }
    lethe_net_free(net);
    free(cum.row);
    if (st == LETHE_OK) {
        s->trained = 1;
        st = apply_locked(s); /* writes state.json */
    }
    return st;
}

/* fn(s) under the directory's lock, the ledger replayed first. */
static lethe_status locked(lethe_s3t *s, lethe_status (*fn)(lethe_s3t *))
{
    lethe_runlock *lock;
    lethe_status st = ex_lock(&s->e, &lock);
    if (st != LETHE_OK)
        return st;
    st = fn(s);
    lethe_runlock_release(lock);
    return st;
}

lethe_status lethe_s3t_train(lethe_s3t *s)
{
    lethe_status st = locked(s, train_locked);
    if (st == LETHE_OK)
        ex_keep(&s->e);
    return st;
}

static lethe_status apply_locked(lethe_s3t *s)
{
    const lethe_ensemble *e = &s->e;
    double t0 = lethe_now();
    s->removed = 0;
    s->switch_seconds = s->erase_seconds = 0;
    truncate_all(s);
    if (!s->trained)
        return lethe_fail(LETHE_ERR_INVALID, "%s: training has not finished", e->dir);
    /* First point state.json at the surviving prefixes, then remove what
     * was trained on deleted samples: a reader never sees a missing file. */
    lethe_status st = write_state(s);
    double t1 = lethe_now();
    s->switch_seconds = t1 - t0;
    size_t total = (size_t)e->shards * (size_t)s->budget * (size_t)e->slices;
    char path[4200];
    for (size_t p = 0; st == LETHE_OK && p < total; p++) {
        int k = (int)(p / ((size_t)s->budget * (size_t)e->slices));
        int b = (int)(p / (size_t)e->slices % (size_t)s->budget), i = (int)(p % (size_t)e->slices);
        if (!s->sha[p][0] || !tainted(s, k, b, i))
            continue;
        lethe_ensemble_ckpt_path(e, s->key[p], path, sizeof path);
        if (unlink(path) == 0)
            s->removed++;
        else if (errno != ENOENT)
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        s->sha[p][0] = 0;
    }
    s->erase_seconds = lethe_now() - t1;
    for (long q = 0; st == LETHE_OK && q < e->ledger->n_req; q++)
        if (e->ledger->req[q].state != LETHE_REQ_APPLIED)
            st = lethe_ledger_applied(e->ledger, q + 1);
    return st;
}

lethe_status lethe_s3t_apply(lethe_s3t *s)
{
    return locked(s, apply_locked);
}
