/* GPT training: window order, schedule, token streams, determinism. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lethe/fileio.h"
#include "lethe/gpt_train.h"
#include "lethe/rng.h"
#include "../test.h"

TEST(gpt_train_windows)
{
    CHECK(lethe_gpt_windows(0, 4) == 0);
    CHECK(lethe_gpt_windows(4, 4) == 0);  /* needs T + 1 tokens */
    CHECK(lethe_gpt_windows(5, 4) == 1);
    CHECK(lethe_gpt_windows(8, 4) == 1);
    CHECK(lethe_gpt_windows(9, 4) == 2);  /* windows share their boundary token */
    CHECK(lethe_gpt_windows(100, 0) == 0);
}

TEST(gpt_train_window_order_deterministic)
{
    enum { N = 257 };
    long a[N], b[N], c[N], d[N];
    int seen[N] = {0};
    CHECK_OK(lethe_gpt_window_order(N, 7, 0, a));
    CHECK_OK(lethe_gpt_window_order(N, 7, 0, b));
    CHECK_OK(lethe_gpt_window_order(N, 7, 1, c));
    CHECK_OK(lethe_gpt_window_order(N, 8, 0, d));
    CHECK(!memcmp(a, b, sizeof a)); /* same seed and epoch: same order */
    CHECK(memcmp(a, c, sizeof a));  /* another epoch: another order */
    CHECK(memcmp(a, d, sizeof a));  /* another seed: another order */
    for (int i = 0; i < N; i++) {
        CHECK(a[i] >= 0 && a[i] < N);
        CHECK(!seen[a[i]]);
        seen[a[i]] = 1;
    }
    int moved = 0; /* shuffled, not the identity */
    for (int i = 0; i < N; i++)
        moved += a[i] != i;
    CHECK(moved > N / 2);
    /* The order of a window depends on its index only: a prefix of the
     * windows keeps its relative order in a longer stream. */
    long e[N + 50];
    CHECK_OK(lethe_gpt_window_order(N + 50, 7, 0, e));
    int k = 0;
    for (int i = 0; i < N + 50; i++)
        if (e[i] < N)
            CHECK(e[i] == a[k++]);
    CHECK(k == N);
}

TEST(gpt_train_schedule)
{
    lethe_gpt_train_cfg c;
    lethe_gpt_train_defaults(&c);
    c.lr = 1e-3f, c.min_lr = 1e-4f, c.warmup = 10, c.steps = 110;
    /* linear warm-up to the peak */
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 0), 1e-4, 1e-6, 0);
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 4), 5e-4, 1e-6, 0);
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 9), 1e-3, 1e-6, 0);
    /* cosine from the peak to min_lr: the peak, the middle, near the end */
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 10), 1e-3, 1e-6, 0);
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 60), 5.5e-4, 1e-5, 0);
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 110), 1e-4, 1e-5, 0);
    for (long t = 10; t < 110; t++)
        CHECK(lethe_gpt_train_lr(&c, t + 1) <= lethe_gpt_train_lr(&c, t));
    c.warmup = 0;
    CHECK_CLOSE(lethe_gpt_train_lr(&c, 0), 1e-3, 1e-6, 0);
}

/* A tokenizer of bytes with <|endoftext|> at 256. */
static lethe_tokenizer_t *byte_tokenizer(void)
{
    lethe_tokenizer_t *t = lethe_tokenizer_new();
    for (int b = 0; t && b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (lethe_tokenizer_add_token(t, (uint32_t)b, &c, 1, 0) != LETHE_OK)
            return NULL;
    }
    if (t && lethe_tokenizer_add_token(t, 256, "<|endoftext|>", 13, 1) != LETHE_OK)
        return NULL;
    return t;
}

TEST(gpt_train_encode_docs)
{
    lethe_tokenizer_t *t = byte_tokenizer();
    CHECK(t);
    CHECK(lethe_gpt_eot(t) == 256);
    const char *texts[] = {"ab", "c", "de"};
    size_t lens[] = {2, 1, 2}, idx[] = {2, 0};
    int32_t *s;
    long n;
    CHECK_OK(lethe_gpt_encode_docs(t, texts, lens, idx, 2, 256, &s, &n));
    int32_t want[] = {'d', 'e', 256, 'a', 'b', 256};
    CHECK(n == 6);
    CHECK(!memcmp(s, want, sizeof want));
    free(s);
    lethe_tokenizer_free(t);
}

/* Train a small model on a byte stream; its parameters and losses. */
static lethe_status train_small(uint64_t seed, int accum, float *params, long *n_params,
                                lethe_gpt_train_result *res)
{
    lethe_gpt_config cfg = {260, 16, 16, 2, 2};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    if (!g)
        return LETHE_ERR_NOMEM;
    int32_t s[600], v[100];
    for (int i = 0; i < 600; i++)
        s[i] = "the cat sat on the mat. "[i % 24];
    for (int i = 0; i < 100; i++)
        v[i] = "the mat sat on the cat. "[i % 24];
    lethe_gpt_train_cfg c;
    lethe_gpt_train_defaults(&c);
    c.batch = 4, c.seq = 8, c.accum = accum, c.steps = 40, c.lr = 1e-2f, c.min_lr = 1e-3f;
    c.warmup = 4, c.eval_every = 10, c.seed = seed, c.quiet = 1;
    lethe_gpt_init_params(g, 1);
    lethe_status st = lethe_gpt_train(g, s, 600, v, 100, &c, NULL, res);
    *n_params = g->n_params;
    if (params)
        memcpy(params, g->params, sizeof(float) * (size_t)g->n_params);
    lethe_gpt_free(g);
    return st;
}

TEST(gpt_train_deterministic_and_learns)
{
    long n;
    lethe_gpt_train_result r1, r2, r3;
    CHECK_OK(train_small(3, 2, NULL, &n, &r1));
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n),
          *c = malloc(sizeof(float) * (size_t)n);
    CHECK(a && b && c);
    CHECK_OK(train_small(3, 2, a, &n, &r1));
    CHECK_OK(train_small(3, 2, b, &n, &r2));
    CHECK_OK(train_small(4, 2, c, &n, &r3));
    int same = !memcmp(a, b, sizeof(float) * (size_t)n);
    int differs = memcmp(a, c, sizeof(float) * (size_t)n) != 0;
    free(a), free(b), free(c);
    CHECK(same);    /* same seed: the same bits */
    CHECK(differs); /* another seed: another window order */
    CHECK(r1.steps == 40 && r1.tokens == 40L * 2 * 4 * 8);
    CHECK_MSG(r1.last_loss < 0.5 * r1.first_loss, "loss %g -> %g", r1.first_loss, r1.last_loss);
    CHECK(r1.val_loss == r1.val_loss && r1.val_loss < r1.first_loss);
}

TEST(gpt_train_epoch_shift)
{
    /* a keyed draw in [0, min(T, n - T)), recomputed here from its definition */
    int seen[8] = {0};
    for (long e = 0; e < 64; e++) {
        long s = lethe_gpt_epoch_shift(1000, 8, 5, e);
        CHECK(s == (long)(lethe_rng_hash(5, 0x200000000ull + (uint64_t)e, 0) % 8));
        seen[s] = 1;
        CHECK(lethe_gpt_windows(1000 - s, 8) >= 1);
    }
    int distinct = 0;
    for (int i = 0; i < 8; i++)
        distinct += seen[i];
    CHECK(distinct == 8);
    CHECK(lethe_gpt_epoch_shift(12, 8, 5, 3) < 4); /* a short stream: below n - T */
    CHECK(lethe_gpt_epoch_shift(9, 8, 5, 3) == 0); /* one window: no room to shift */
}

/* Mean loss of g on the windows of s starting at `first`, `first` + T, ... */
static double loss_from(lethe_gpt *g, const int32_t *s, long n, long first, int T)
{
    double sum = 0;
    int k = 0;
    for (long o = first; o + T + 1 <= n; o += T, k++) {
        if (lethe_gpt_forward(g, s + o, s + o + 1, 1, T) != LETHE_OK)
            return NAN;
        sum += g->loss;
    }
    return sum / k;
}

/* A random token stream learnt with and without shifted windows: without,
 * the model knows it at the window grid's offsets only; with, at any. */
TEST(gpt_train_shift_learns_every_offset)
{
    enum { T = 12, N = 6 * T + 1 };
    int32_t s[N];
    const int steps = test_quick() ? 20 : 400; /* quick: the shifted windows, not the learning */
    lethe_rng r = lethe_rng_init(11, 0);
    for (int i = 0; i < N; i++)
        s[i] = (int32_t)(lethe_rng_u64(&r) % 48);
    double aligned[2], off[2];
    for (int shift = 0; shift < 2; shift++) {
        lethe_gpt_config cfg = {48, T, 32, 2, 2};
        lethe_gpt *g = lethe_gpt_init(&cfg);
        CHECK(g);
        lethe_gpt_init_params(g, 2);
        lethe_gpt_train_cfg c;
        lethe_gpt_train_defaults(&c);
        c.batch = 4, c.seq = T, c.steps = steps, c.lr = 1e-2f, c.min_lr = 1e-3f;
        c.warmup = 10, c.seed = 1, c.shift = shift, c.quiet = 1;
        lethe_gpt_train_result res;
        CHECK_OK(lethe_gpt_train(g, s, N, NULL, 0, &c, NULL, &res));
        aligned[shift] = loss_from(g, s, N, 0, T);
        off[shift] = loss_from(g, s, N, T / 2, T);
        lethe_gpt_free(g);
    }
    CHECK(isfinite(aligned[0]) && isfinite(aligned[1]) && isfinite(off[0]) && isfinite(off[1]));
    if (test_quick())
        return;
    CHECK_MSG(aligned[0] < 0.2, "no shift, aligned: %g", aligned[0]);
    CHECK_MSG(off[0] > 2 * off[1] && off[1] < 0.5, "half a window off: %g without, %g with",
              off[0], off[1]);
}

TEST(gpt_train_rejects_bad_streams)
{
    lethe_gpt_config cfg = {260, 16, 16, 1, 2};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    CHECK(g);
    int32_t s[20] = {0};
    lethe_gpt_train_cfg c;
    lethe_gpt_train_result r;
    lethe_gpt_train_defaults(&c);
    c.seq = 8, c.quiet = 1;
    lethe_status st1 = lethe_gpt_train(g, s, 5, NULL, 0, &c, NULL, &r); /* too short */
    c.seq = 32;
    lethe_status st2 = lethe_gpt_train(g, s, 20, NULL, 0, &c, NULL, &r); /* seq > positions */
    c.seq = 8;
    s[3] = 260;
    lethe_status st3 = lethe_gpt_train(g, s, 20, NULL, 0, &c, NULL, &r); /* id out of range */
    lethe_gpt_free(g);
    CHECK(st1 == LETHE_ERR_INVALID);
    CHECK(st2 == LETHE_ERR_INVALID);
    CHECK(st3 == LETHE_ERR_INVALID);
}

/* The bigram baseline against a direct computation on a tiny stream. */
TEST(gpt_train_bigram_baseline)
{
    /* p(1 | 0) under {0, 1, 0, 2}, V 3, lambda 0.5: 0.5 * 1/2 + 0.5 * 2/7. */
    const int32_t t4[4] = {0, 1, 0, 2};
    CHECK_CLOSE(lethe_bigram_prob(t4, 4, 3, 0.5, 0, 1), 0.25 + 1.0 / 7, 0, 1e-15);
    /* an unseen context (2 ends the stream): the unigram alone, (1 + 1) / 7 */
    CHECK_CLOSE(lethe_bigram_prob(t4, 4, 3, 0.5, 2, 0), 3.0 / 7, 0, 1e-15);

    /* A mostly cyclic stream 0 1 2 3 with some 4s; 5 occurs in validation only. */
    enum { N = 60, NV = 12, V = 6 };
    int32_t tr[N], va[NV] = {0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 5};
    for (int i = 0; i < N; i++)
        tr[i] = i % 7 == 6 ? 4 : i % 4;
    lethe_bigram_result r;
    CHECK_OK(lethe_bigram_val_loss(tr, N, va, NV, V, &r));
    CHECK(r.n_scored == NV - 1);
    CHECK(r.lambda >= 0 && r.lambda < 1);
    double direct = 0;
    for (int i = 1; i < NV; i++)
        direct -= log(lethe_bigram_prob(tr, N, V, r.lambda, va[i - 1], va[i]));
    direct /= NV - 1;
    CHECK_CLOSE(r.val_loss, direct, 0, 1e-12);
    /* lambda: the grid point with the lowest held-out loss (fit on the first
     * 54 tokens, pairs ending in the last 6) */
    int m = N - N / 10;
    double best = INFINITY;
    for (int k = 0; k < LETHE_BIGRAM_GRID; k++) {
        double l = (double)k / LETHE_BIGRAM_GRID, ce = 0;
        for (int i = m; i < N; i++)
            ce -= log(lethe_bigram_prob(tr, m, V, l, tr[i - 1], tr[i]));
        ce /= N - m;
        CHECK_MSG(ce >= r.heldout_loss - 1e-12, "lambda %g: %g < %g", l, ce, r.heldout_loss);
        if (ce < best)
            best = ce;
    }
    CHECK_CLOSE(r.heldout_loss, best, 0, 1e-12);
    /* the stream is predictable: lambda high, the loss below the uniform log V */
    CHECK_MSG(r.lambda > 0.5 && r.val_loss < log(V), "lambda %g, val %g", r.lambda,
              r.val_loss);

    /* errors: too short, an id out of range */
    CHECK_STATUS(lethe_bigram_val_loss(tr, 10, va, NV, V, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_bigram_val_loss(tr, N, va, 1, V, &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_bigram_val_loss(tr, N, va, NV, 4, &r), LETHE_ERR_INVALID);
}

/* A whole run as a library call: a corpus file in, a run directory out,
 * the same bytes twice; bad settings refused before anything is written,
 * in messages that name no command-line option. */
static int same_file(const char *a, const char *b)
{
    unsigned char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = lethe_file_read(a, &x, &nx) == LETHE_OK && lethe_file_read(b, &y, &ny) == LETHE_OK &&
               nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

TEST(gpt_run_library)
{
    char root[] = "/tmp/lethe_gptrun_XXXXXX", data[300], a[300], b[300], p[400], q[400];
    CHECK(mkdtemp(root));
    snprintf(data, sizeof data, "%s/corpus.txt", root);
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    FILE *f = fopen(data, "w");
    CHECK(f);
    for (int i = 0; i < 60; i++)
        fprintf(f, "the whale swam past ship number %d and the sea was calm. ", i);
    fclose(f);
    lethe_gpt_run_cfg rc;
    lethe_gpt_run_defaults(&rc);
    rc.data = data, rc.out = a, rc.preset = "tiny", rc.vocab = 300, rc.seq = 16;
    rc.steps = test_quick() ? 1 : 3;
    rc.quiet = 1;
    lethe_gpt_run_result res;
    CHECK_OK(lethe_gpt_run(&rc, &res));
    CHECK(res.train.steps == rc.steps && res.vocab_size <= 300 && !strcmp(res.preset, "tiny"));
    rc.out = b;
    CHECK_OK(lethe_gpt_run(&rc, NULL));
    const char *files[] = {"model.safetensors", "config.json", "log.jsonl", "tokenizer.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", a, files[i]);
        snprintf(q, sizeof q, "%s/%s", b, files[i]);
        CHECK_MSG(same_file(p, q), "%s differs", files[i]);
        remove(p);
        remove(q);
    }
    rmdir(a);
    rmdir(b);
    rc.epochs = 2; /* with steps too */
    CHECK_STATUS(lethe_gpt_run(&rc, NULL), LETHE_ERR_INVALID);
    CHECK(!strstr(lethe_error_detail(), "--"));
    rc.epochs = 0, rc.seq = 4096; /* no window fits the text */
    CHECK_STATUS(lethe_gpt_run(&rc, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "window") && !strstr(lethe_error_detail(), "--"));
    CHECK(access(b, F_OK) != 0); /* nothing written */
    remove(data);
    rmdir(root);
}
