/* S3T: layer groups, masked training, slice orders (cyclic, BMS against
 * brute force), prefix truncation, deletion without training, the ledger
 * path, and the deletion-capacity simulation against its expectation. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/fileio.h"
#include "lethe/recipe.h"
#include "lethe/rng.h"
#include "lethe/s3t.h"
#include "lethe/sha256.h"

TEST(s3t_groups_top_down)
{
    /* five hidden linear layers (indices 0, 2, 4, 6, 8) and the head (10) */
    lethe_net *net = lethe_net_init("in=8;linear=6;relu;linear=6;relu;linear=6;relu;linear=6;"
                                    "relu;linear=6;relu;linear=3");
    CHECK(net != NULL);
    lethe_s3t_groups g;
    CHECK_OK(lethe_s3t_group_layers(net, 5, &g));
    CHECK(g.head == 10 && g.head_off == net->layers[10].w_off);
    CHECK(g.head_off + g.head_len == net->n_params);
    for (int i = 0; i < 5; i++) { /* group 0 just below the head */
        int layer = 8 - 2 * i;
        CHECK_MSG(g.first[i] == layer && g.last[i] == layer, "group %d: layers %d-%d", i,
                  g.first[i], g.last[i]);
        CHECK(g.off[i] == net->layers[layer].w_off && g.len[i] == 6 * (layer ? 6 : 8) + 6);
    }
    /* 5 layers in 2 groups: the bottom group takes the extra layer */
    CHECK_OK(lethe_s3t_group_layers(net, 2, &g));
    CHECK(g.first[0] == 6 && g.last[0] == 8 && g.first[1] == 0 && g.last[1] == 4);
    CHECK(g.off[0] + g.len[0] == g.head_off && g.off[1] == 0 && g.len[1] == g.off[0]);
    CHECK_STATUS(lethe_s3t_group_layers(net, 6, &g), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "a deeper model"));
    lethe_net_free(net);
    /* the recipe's CNN: two convolutions and a hidden linear layer */
    net = lethe_net_init("in=1x8x8;conv=4;relu;pool;conv=4;relu;pool;linear=8;relu;linear=3");
    CHECK(net != NULL);
    CHECK_OK(lethe_s3t_group_layers(net, 3, &g));
    CHECK(g.first[0] == 6 && g.first[1] == 3 && g.first[2] == 0 && g.head == 8);
    CHECK_STATUS(lethe_s3t_group_layers(net, 4, &g), LETHE_ERR_INVALID);
    lethe_net_free(net);
}

TEST(s3t_masked_training_freezes_the_rest)
{
    lethe_task_opts o = {.limit = 200};
    lethe_dataset *tr, *te;
    CHECK_OK(lethe_task_load("digits", &o, &tr, &te));
    lethe_net *net = lethe_net_init("in=64;linear=16;relu;linear=16;relu;linear=16;relu;"
                                    "dropout=0.2;linear=10");
    CHECK(net != NULL);
    lethe_s3t_groups g;
    CHECK_OK(lethe_s3t_group_layers(net, 3, &g));
    lethe_rows rows;
    CHECK_OK(lethe_rows_all(&rows, tr->n));
    size_t bytes = sizeof(float) * (size_t)net->n_params;
    float *before = malloc(bytes);
    for (int optim = 0; optim < 2; optim++)
        for (int group = 0; group < 3; group++) {
            lethe_net_init_params(net, 11);
            memcpy(before, net->params, bytes);
            lethe_train_cfg cfg;
            lethe_train_defaults(&cfg);
            cfg.optim = optim ? LETHE_OPTIM_SGD : LETHE_OPTIM_ADAMW;
            cfg.weight_decay = 0.5f; /* strong decay: frozen weights must not shrink */
            cfg.clip = 1.0f;
            cfg.batch = 32, cfg.steps = 9, cfg.seed = 3;
            CHECK_OK(lethe_s3t_train_group(net, &g, group, tr, &rows, &cfg));
            long a = g.off[group], b = a + g.len[group];
            CHECK_MSG(!memcmp(net->params, before, sizeof(float) * (size_t)a),
                      "optim %d group %d: parameters below the group moved", optim, group);
            CHECK_MSG(!memcmp(net->params + b, before + b,
                              sizeof(float) * (size_t)(g.head_off - b)),
                      "optim %d group %d: parameters above the group moved", optim, group);
            CHECK(memcmp(net->params + a, before + a, sizeof(float) * (size_t)g.len[group]));
            CHECK(memcmp(net->params + g.head_off, before + g.head_off,
                         sizeof(float) * (size_t)g.head_len));
        }
    free(before);
    lethe_rows_free(&rows);
    lethe_net_free(net);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
}

static int is_perm(const int *v, int L)
{
    char seen[LETHE_S3T_MAX_SLICES] = {0};
    for (int i = 0; i < L; i++) {
        if (v[i] < 0 || v[i] >= L || seen[v[i]])
            return 0;
        seen[v[i]] = 1;
    }
    return 1;
}

TEST(s3t_cyclic_rotations)
{
    int seq[24 * 4];
    CHECK_OK(lethe_s3t_cyclic(4, 4, seq));
    for (int b = 0; b < 4; b++)
        for (int i = 0; i < 4; i++)
            CHECK(seq[b * 4 + i] == (b + i) % 4);
    int two[8];
    CHECK_OK(lethe_s3t_cyclic(4, 2, two));
    CHECK(!memcmp(two, seq, sizeof two));
    /* past L: the rotations first, then suffix rotations; all 4! reachable */
    CHECK_OK(lethe_s3t_cyclic(4, 24, seq));
    for (int b = 0; b < 24; b++) {
        CHECK(is_perm(seq + b * 4, 4));
        for (int c = 0; c < b; c++)
            CHECK_MSG(memcmp(seq + b * 4, seq + c * 4, 4 * sizeof(int)), "orders %d, %d equal",
                      c, b);
    }
    for (int b = 0; b < 4; b++)
        CHECK(seq[b * 4] == b && seq[b * 4 + 1] == (b + 1) % 4);
    int ten[40];
    CHECK_OK(lethe_s3t_cyclic(4, 10, ten));
    CHECK(!memcmp(ten, seq, sizeof ten)); /* a larger budget extends a smaller one */
    CHECK_STATUS(lethe_s3t_cyclic(4, 25, seq), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_s3t_cyclic(4, 0, seq), LETHE_ERR_INVALID);
}

/* The best total over injective maps rows -> cols, by enumeration. */
static double brute_assign(const double *cost, int rows, int cols, int r, unsigned used)
{
    if (r == rows)
        return 0;
    double best = -INFINITY;
    for (int j = 0; j < cols; j++) {
        if (used & (1u << j) || cost[r * cols + j] == -INFINITY)
            continue;
        double t = cost[r * cols + j] + brute_assign(cost, rows, cols, r + 1, used | (1u << j));
        if (t > best)
            best = t;
    }
    return best;
}

TEST(s3t_assignment_matches_brute_force)
{
    lethe_rng rng = lethe_rng_init(5, 1);
    double cost[7 * 7];
    int col[7];
    for (int trial = 0; trial < 300; trial++) {
        int cols = 1 + (int)lethe_rng_below(&rng, 7);
        int rows = 1 + (int)lethe_rng_below(&rng, (uint32_t)cols);
        for (int i = 0; i < rows * cols; i++)
            cost[i] = lethe_rng_uniform(&rng) < 0.2 ? -INFINITY
                                                    : 10 * lethe_rng_uniform(&rng) - 5;
        double want = brute_assign(cost, rows, cols, 0, 0);
        double got = lethe_s3t_assign(cost, rows, cols, col);
        if (want == -INFINITY) {
            CHECK_MSG(got == -INFINITY, "trial %d: infeasible, got %g", trial, got);
            continue;
        }
        CHECK_CLOSE(got, want, 1e-12, 1e-12);
        unsigned used = 0;
        double sum = 0;
        for (int r = 0; r < rows; r++) {
            CHECK(col[r] >= 0 && col[r] < cols && !(used & (1u << col[r])));
            used |= 1u << col[r];
            sum += cost[r * cols + col[r]];
        }
        CHECK_CLOSE(sum, got, 1e-12, 1e-12);
    }
}

/* Every round of a full BMS (B = L) is a maximum-weight matching: compare
 * the marginal weight of the columns it chose with brute force. */
static void check_bms_rounds(const int *seq, int L, const double *prior)
{
    double cost[LETHE_S3T_MAX_SLICES * LETHE_S3T_MAX_SLICES];
    for (int k = 1; k < L; k++) {
        double chosen = 0;
        for (int i = 0; i < L; i++) {
            double mass = 0;
            for (int t = 0; t < k; t++)
                mass += prior[seq[i * L + t]];
            for (int j = 0; j < L; j++) {
                int used = 0;
                for (int t = 0; t < k; t++)
                    used |= seq[i * L + t] == j;
                double keep = 1 - mass - prior[j];
                cost[i * L + j] = used ? -INFINITY : (k + 1) * pow(keep > 0 ? keep : 0, 100);
            }
            chosen += cost[i * L + seq[i * L + k]];
        }
        double best = brute_assign(cost, L, L, 0, 0);
        CHECK_MSG(fabs(chosen - best) <= 1e-9 * fabs(best) + 1e-300,
                  "round %d: matching weight %.17g, best %.17g", k, chosen, best);
    }
}

TEST(s3t_bms_against_brute_force)
{
    int seq[LETHE_S3T_MAX_SLICES * LETHE_S3T_MAX_SLICES];
    double prior[4] = {0.4, 0.3, 0.2, 0.1};
    CHECK_OK(lethe_s3t_bms(4, 4, prior, seq));
    /* the rarest slices lead: round 1 pairs 3 with 2 and 2 with 3 */
    CHECK_MSG(seq[0] == 3 && seq[1] == 2, "best order %d-%d-%d-%d", seq[0], seq[1], seq[2],
              seq[3]);
    check_bms_rounds(seq, 4, prior);
    /* every order a permutation, every position a permutation, scores sorted */
    for (int b = 0; b < 4; b++) {
        CHECK(is_perm(seq + b * 4, 4));
        if (b)
            CHECK(lethe_s3t_score(seq + b * 4, 4, prior) <=
                  lethe_s3t_score(seq + (b - 1) * 4, 4, prior));
    }
    for (int i = 0; i < 4; i++) {
        int col[4] = {seq[i], seq[4 + i], seq[8 + i], seq[12 + i]};
        CHECK(is_perm(col, 4));
    }
    /* random priors on 5 and 6 slices */
    lethe_rng rng = lethe_rng_init(9, 2);
    for (int trial = 0; trial < 20; trial++) {
        int L = 5 + trial % 2;
        double pr[6], sum = 0;
        for (int j = 0; j < L; j++)
            sum += pr[j] = lethe_rng_uniform(&rng) * (j % 3 ? 0.1 : 1.0);
        for (int j = 0; j < L; j++)
            pr[j] /= sum;
        CHECK_OK(lethe_s3t_bms(L, L, pr, seq));
        check_bms_rounds(seq, L, pr); /* the rounds on the kept order are the rounds */
        for (int b = 0; b < L; b++)
            CHECK(is_perm(seq + b * L, L));
        int first[LETHE_S3T_MAX_SLICES];
        for (int b = 0; b < L; b++)
            first[b] = seq[b * L];
        CHECK(is_perm(first, L));
    }
    /* without a prior every order is as good: still L distinct leads */
    CHECK_OK(lethe_s3t_bms(6, 3, NULL, seq));
    CHECK(seq[0] != seq[6] && seq[6] != seq[12] && seq[0] != seq[12]);
    CHECK_STATUS(lethe_s3t_bms(4, 5, prior, seq), LETHE_ERR_INVALID);
}

TEST(s3t_truncation_picks_the_longest_prefix)
{
    int seq[16];
    CHECK_OK(lethe_s3t_cyclic(4, 4, seq)); /* 0123 1230 2301 3012 */
    char hit[4] = {0, 0, 1, 0};
    int len;
    CHECK(lethe_s3t_surviving(seq, 4, 4, hit, &len) == 3 && len == 3);
    char none[4] = {0};
    CHECK(lethe_s3t_surviving(seq, 4, 4, none, &len) == 0 && len == 4);
    char two[4] = {1, 0, 1, 0}; /* 1230 and 3012 both keep one slice: the lower wins */
    CHECK(lethe_s3t_surviving(seq, 4, 4, two, &len) == 1 && len == 1);
    char all_lead[4] = {1, 1, 1, 1};
    CHECK(lethe_s3t_surviving(seq, 4, 4, all_lead, &len) == -1 && len == 0);
    char lead0[4] = {1, 0, 0, 0}; /* one order: cut at its first slice, dead */
    CHECK(lethe_s3t_surviving(seq, 1, 4, lead0, &len) == -1 && len == 0);
}

TEST(s3t_simulation_matches_expectations)
{
    lethe_s3t_capacity c;
    long runs = 4000;
    CHECK_OK(lethe_s3t_simulate(5, 6, 6, LETHE_S3T_CYCLIC, NULL, runs, 1, &c));
    double h5 = 1 + 1 / 2.0 + 1 / 3.0 + 1 / 4.0 + 1 / 5.0;
    CHECK_CLOSE(c.sisa_expected, 5 * h5, 1e-12, 0);
    /* within four standard errors of m H_m and of m L H_{m L} */
    CHECK_MSG(fabs(c.sisa_model.mean - 5 * h5) < 4 * c.sisa_model.sd / sqrt((double)runs),
              "SISA mean %.3f, expected %.3f", c.sisa_model.mean, 5 * h5);
    CHECK_MSG(fabs(c.s3t_model.mean - c.s3t_expected) < 4 * c.s3t_model.sd / sqrt((double)runs),
              "S3T mean %.3f, expected %.3f", c.s3t_model.mean, c.s3t_expected);
    CHECK(c.sisa_shard.mean == 1 && c.sisa_shard.max == 1 && c.lead == 6);
    CHECK(c.s3t_model.mean >= 3 * c.sisa_model.mean);
    CHECK(c.s3t_model.min >= 30 && c.sisa_model.min >= 5);
    /* one order per shard: the model dies when each shard's first slice is hit */
    CHECK_OK(lethe_s3t_simulate(5, 6, 1, LETHE_S3T_BMS, NULL, runs, 2, &c));
    CHECK(c.lead == 1);
    CHECK_MSG(fabs(c.s3t_model.mean - 30 * h5) < 4 * c.s3t_model.sd / sqrt((double)runs),
              "S3T B=1 mean %.3f, expected %.3f", c.s3t_model.mean, 30 * h5);
    lethe_s3t_capacity again;
    CHECK_OK(lethe_s3t_simulate(5, 6, 1, LETHE_S3T_BMS, NULL, runs, 2, &again));
    CHECK(again.s3t_model.mean == c.s3t_model.mean && again.sisa_model.sd == c.sisa_model.sd);
    /* skewed deletions: BMS leads with the rarely deleted slices and lasts
     * longer than cyclic rotations, which lead with slices 0..B-1 */
    double prior[6] = {0.3, 0.3, 0.3, 0.04, 0.03, 0.03};
    lethe_s3t_capacity cyc, bms;
    CHECK_OK(lethe_s3t_simulate(5, 6, 3, LETHE_S3T_CYCLIC, prior, 1000, 3, &cyc));
    CHECK_OK(lethe_s3t_simulate(5, 6, 3, LETHE_S3T_BMS, prior, 1000, 3, &bms));
    CHECK(isnan(bms.s3t_expected) && bms.lead == 3);
    CHECK_MSG(bms.s3t_model.mean > 3 * cyc.s3t_model.mean, "bms %.1f, cyclic %.1f",
              bms.s3t_model.mean, cyc.s3t_model.mean);
    double zero[6] = {1, 1, 1, 0, 0, 0};
    CHECK_OK(lethe_s3t_simulate(2, 6, 1, LETHE_S3T_CYCLIC, zero, 10, 3, &cyc));
    CHECK(cyc.s3t_model.mean > 0);
    /* BMS leads with a slice that is never deleted: the model never dies */
    CHECK_STATUS(lethe_s3t_simulate(2, 6, 1, LETHE_S3T_BMS, zero, 10, 3, &bms),
                 LETHE_ERR_INVALID);
}

/* ---- directories ---------------------------------------------------- */

static char root[] = "/tmp/lethe_s3t_XXXXXX";

static lethe_s3t *make(const char *name, int shards, int slices, int budget)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    lethe_task_opts o = {.limit = 400};
    lethe_dataset *tr, *te;
    lethe_recipe r;
    char spec[512];
    lethe_s3t *s = NULL;
    if (lethe_task_load("digits", &o, &tr, &te) != LETHE_OK)
        return NULL;
    lethe_recipe_default(tr, "mlp", &r);
    snprintf(r.widths, sizeof r.widths, "32-32-32");
    r.cfg.epochs = 4;
    r.cfg.sched = LETHE_SCHED_CONSTANT;
    lethe_recipe_spec(&r, tr, spec, sizeof spec);
    lethe_status st = lethe_s3t_create(dir, "digits", &o, spec, &r.cfg, shards, slices, budget,
                                       LETHE_S3T_CYCLIC, NULL, 0, 7, NULL, NULL, 0, &s);
    if (st == LETHE_OK)
        st = lethe_s3t_train(s);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    if (st != LETHE_OK) {
        fprintf(stderr, "  %s\n", lethe_error_detail());
        lethe_s3t_free(s);
        return NULL;
    }
    return s;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The checkpoint files of s as "name sha256" lines, sorted, into a string. */
static char *listing(const lethe_s3t *s)
{
    char dir[4200], path[4500];
    snprintf(dir, sizeof dir, "%s/ckpt", s->e.dir);
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char (*names)[64 + 12 + 1 + 64 + 2] = malloc(sizeof *names * 4096);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        if (strlen(e->d_name) != 64 + 12)
            continue;
        char hex[65];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lethe_sha256_file(path, hex) != LETHE_OK)
            continue;
        snprintf(names[n++], sizeof *names, "%.76s %s\n", e->d_name, hex);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_text);
    char *out = calloc((size_t)n + 1, sizeof *names);
    for (int i = 0; i < n; i++)
        strcat(out, names[i]);
    free(names);
    return out;
}

/* A training row of (shard, slice). */
static long row_in(const lethe_s3t *s, int shard, int slice, int nth)
{
    for (long i = 0; i < s->e.train->n; i++)
        if (s->e.shard_of[i] == shard && s->e.slice_of[i] == slice && nth-- == 0)
            return i;
    return -1;
}

static int file_equal(const char *a, const char *b)
{
    unsigned char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = lethe_file_read(a, &x, &nx) == LETHE_OK && lethe_file_read(b, &y, &ny) == LETHE_OK &&
               nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

TEST(s3t_forget_serves_existing_checkpoints)
{
    CHECK(mkdtemp(root));
    lethe_s3t *s = make("a", 3, 3, 3), *t = make("b", 3, 3, 3);
    CHECK(s && t);
    CHECK(s->trained_prefixes == 3 * 3 * 3 && lethe_ensemble_live(&s->e) == 3);
    char *before = listing(s), *before_b = listing(t);
    CHECK(before && before_b && !strcmp(before, before_b)); /* training is deterministic */
    /* delete a sample of (shard 1, slice 1): of shard 1's orders 012, 120 and
     * 201, 012 keeps one slice, 120 none and 201 two: serve prefix 2-0 */
    long del[2] = {row_in(s, 1, 1, 0), row_in(s, 1, 1, 1)};
    CHECK(del[0] >= 0 && del[1] >= 0);
    lethe_rows rows = {1, del};
    long req;
    CHECK_OK(lethe_ensemble_request(&s->e, &rows, &req));
    CHECK_OK(lethe_s3t_apply(s));
    CHECK(s->served[1] == 2 && s->served_len[1] == 2);
    CHECK(s->served[0] == 0 && s->served_len[0] == 3 && lethe_ensemble_live(&s->e) == 3);
    char *after = listing(s);
    CHECK(after != NULL);
    /* no file is new or changed: every remaining line was there before */
    char *line = after;
    while (*line) {
        char *end = strchr(line, '\n');
        *end = 0;
        CHECK_MSG(strstr(before, line), "checkpoint %s is new", line);
        *end = '\n';
        line = end + 1;
    }
    /* the prefixes holding slice 1 of shard 1 are gone: 01, 012, 1, 12, 120, 201 */
    CHECK_MSG(s->removed == 6, "removed %ld", s->removed);
    /* the served model is the stored checkpoint of prefix 2-0, unchanged */
    char served[4200], want[4300];
    lethe_ensemble_model_path(&s->e, 1, served, sizeof served);
    snprintf(want, sizeof want, "%s/ckpt/%s.safetensors", s->e.dir, s->key[(1 * 3 + 2) * 3 + 1]);
    CHECK(!strcmp(served, want));
    char hex[65];
    CHECK_OK(lethe_sha256_file(served, hex));
    CHECK(strstr(before, hex) && !strcmp(hex, s->sha[(1 * 3 + 2) * 3 + 1]));
    /* the same request on the twin gives the same state, byte for byte */
    CHECK_OK(lethe_ensemble_request(&t->e, &rows, &req));
    CHECK_OK(lethe_s3t_apply(t));
    char pa[4300], pb[4300];
    snprintf(pa, sizeof pa, "%s/state.json", s->e.dir);
    snprintf(pb, sizeof pb, "%s/state.json", t->e.dir);
    CHECK(file_equal(pa, pb));
    char *after_b = listing(t);
    CHECK(after_b && !strcmp(after, after_b));
    free(after_b);
    /* a deleted id again, an excluded-free directory: refused, nothing recorded */
    long records = s->e.ledger->n_records;
    CHECK_STATUS(lethe_ensemble_request(&s->e, &rows, &req), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "already deleted by request 1"));
    CHECK(s->e.ledger->n_records == records);
    /* the ensemble averages the live shards' logits */
    long n = s->e.test->n;
    float *y = malloc(sizeof(float) * (size_t)n * 10), *z = malloc(sizeof(float) * (size_t)n * 10);
    float *sum = calloc((size_t)n * 10, sizeof(float));
    CHECK_OK(lethe_ensemble_predict(&s->e, -1, s->e.test, NULL, y));
    for (int k = 0; k < 3; k++) {
        CHECK_OK(lethe_ensemble_predict(&s->e, k, s->e.test, NULL, z));
        for (long i = 0; i < n * 10; i++)
            sum[i] += z[i] / 3.0f;
    }
    for (long i = 0; i < n * 10; i++)
        CHECK_CLOSE(y[i], sum[i], 1e-5, 1e-5);
    free(y), free(z), free(sum);
    /* a second deletion in slice 2 of shard 1 leaves 0-... : only 0 survives */
    long d2 = row_in(s, 1, 2, 0);
    lethe_rows r2 = {1, &d2};
    CHECK_OK(lethe_ensemble_request(&s->e, &r2, &req));
    CHECK_OK(lethe_s3t_apply(s));
    CHECK(s->served[1] == 0 && s->served_len[1] == 1);
    /* the first slice too: shard 1 is dead, the others still serve */
    long d3 = row_in(s, 1, 0, 0);
    lethe_rows r3 = {1, &d3};
    CHECK_OK(lethe_ensemble_request(&s->e, &r3, &req));
    CHECK_OK(lethe_s3t_apply(s));
    CHECK(s->served[1] == -1 && lethe_ensemble_live(&s->e) == 2);
    float *one = malloc(sizeof(float) * (size_t)n * 10);
    CHECK_STATUS(lethe_ensemble_predict(&s->e, 1, s->e.test, NULL, one), LETHE_ERR_FAILED);
    CHECK_OK(lethe_ensemble_predict(&s->e, -1, s->e.test, NULL, one));
    free(one);
    free(before), free(before_b), free(after);
    lethe_s3t_free(s);
    lethe_s3t_free(t);
}

TEST(s3t_pending_request_applied_on_open)
{
    lethe_s3t *s = make("c", 2, 2, 1); /* one order per shard: 0-1 */
    CHECK(s != NULL);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", s->e.dir);
    /* a crash between the ledger record and applying it */
    long del = row_in(s, 0, 1, 0), req;
    lethe_rows rows = {1, &del};
    CHECK_OK(lethe_ensemble_request(&s->e, &rows, &req));
    CHECK(lethe_ledger_pending(s->e.ledger) == 1);
    char stale[4300];
    snprintf(stale, sizeof stale, "%s/ckpt/%s.safetensors", s->e.dir, s->key[1]);
    lethe_s3t_free(s);
    struct stat sb;
    CHECK(stat(stale, &sb) == 0);
    CHECK_OK(lethe_s3t_open(dir, &s));
    CHECK(lethe_ledger_pending(s->e.ledger) == 0 && s->e.ledger->n_req == 1);
    CHECK(s->served[0] == 0 && s->served_len[0] == 1 && s->served[1] == 0 &&
          s->served_len[1] == 2);
    CHECK(stat(stale, &sb) != 0); /* the checkpoint trained on it is gone */
    /* every shard dead: no model, predictions refuse */
    long d0[2] = {row_in(s, 0, 0, 0), row_in(s, 1, 0, 0)};
    if (d0[0] > d0[1]) {
        long t = d0[0];
        d0[0] = d0[1], d0[1] = t;
    }
    lethe_rows both = {2, d0};
    CHECK_OK(lethe_ensemble_request(&s->e, &both, &req));
    CHECK_OK(lethe_s3t_apply(s));
    CHECK(lethe_ensemble_live(&s->e) == 0);
    float *y = malloc(sizeof(float) * (size_t)s->e.test->n * 10);
    CHECK_STATUS(lethe_ensemble_predict(&s->e, -1, s->e.test, NULL, y), LETHE_ERR_FAILED);
    CHECK(strstr(lethe_error_detail(), "full retrain"));
    free(y);
    lethe_s3t_free(s);
    /* a directory of another kind is refused with a message */
    char other[4300];
    snprintf(other, sizeof other, "%s/sisa", root);
    mkdir(other, 0755);
    char cfg[4400];
    snprintf(cfg, sizeof cfg, "%s/sisa.json", other);
    CHECK_OK(lethe_file_write_atomic(cfg, "{}", 2));
    CHECK_STATUS(lethe_s3t_open(other, &s), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "SISA directory"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
}
