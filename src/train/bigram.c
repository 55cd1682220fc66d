/* A bigram baseline for GPT training (lethe/gpt_train.h): Jelinek-Mercer
 * interpolation of the maximum-likelihood bigram with an add-one unigram,
 * the weight chosen on a held-out slice of the training stream. */
#include "lethe/gpt_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct counts {
    int64_t *keys; /* distinct pairs a * V + b, ascending */
    long *pair;    /* their counts */
    long n_pairs;
    long *ctx;     /* (V) pairs starting with a */
    long *uni;     /* (V) occurrences of each token */
    long n;        /* tokens counted */
    int V;
} counts;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void counts_free(counts *c)
{
    free(c->keys);
    free(c->pair);
    free(c->ctx);
    free(c->uni);
    memset(c, 0, sizeof *c);
}

/* Counts of s[0..n) (n >= 1): its n - 1 pairs and n tokens. */
static lethe_status counts_make(const int32_t *s, long n, int V, counts *c)
{
    memset(c, 0, sizeof *c);
    c->V = V;
    c->n = n;
    long np = n - 1;
    c->keys = malloc(sizeof *c->keys * (size_t)(np > 0 ? np : 1));
    c->pair = malloc(sizeof *c->pair * (size_t)(np > 0 ? np : 1));
    c->ctx = calloc((size_t)V, sizeof *c->ctx);
    c->uni = calloc((size_t)V, sizeof *c->uni);
    if (!c->keys || !c->pair || !c->ctx || !c->uni) {
        counts_free(c);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory counting bigrams");
    }
    for (long i = 0; i < n; i++)
        c->uni[s[i]]++;
    for (long i = 0; i < np; i++) {
        c->keys[i] = (int64_t)s[i] * V + s[i + 1];
        c->ctx[s[i]]++;
    }
    qsort(c->keys, (size_t)np, sizeof *c->keys, cmp_i64);
    long m = 0;
    for (long i = 0; i < np; i++) {
        if (m > 0 && c->keys[m - 1] == c->keys[i]) {
            c->pair[m - 1]++;
        } else {
            c->keys[m] = c->keys[i];
            c->pair[m++] = 1;
        }
    }
    c->n_pairs = m;
    return LETHE_OK;
}

static long pair_count(const counts *c, int32_t a, int32_t b)
{
    int64_t key = (int64_t)a * c->V + b;
    long lo = 0, hi = c->n_pairs;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (c->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_pairs && c->keys[lo] == key ? c->pair[lo] : 0;
}

/* For each pair (s[i-1], s[i]), i in [from, to): the ML bigram probability
 * (-1 when the context was never seen) and the add-one unigram's. */
static void probs(const counts *c, const int32_t *s, long from, long to, double *ml, double *pu)
{
    for (long i = from; i < to; i++) {
        int32_t a = s[i - 1], b = s[i];
        ml[i - from] = c->ctx[a] > 0 ? (double)pair_count(c, a, b) / (double)c->ctx[a] : -1.0;
        pu[i - from] = ((double)c->uni[b] + 1.0) / ((double)c->n + (double)c->V);
    }
}

static double mean_ce(const double *ml, const double *pu, long n, double lambda)
{
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum -= log(ml[i] >= 0 ? lambda * ml[i] + (1 - lambda) * pu[i] : pu[i]);
    return n > 0 ? sum / (double)n : NAN;
}

double lethe_bigram_prob(const int32_t *train, long n_train, int vocab, double lambda, int32_t a,
                         int32_t b)
{
    long ctx = 0, pair = 0, uni = 0;
    for (long i = 0; i < n_train; i++) {
        uni += train[i] == b;
        if (i + 1 < n_train && train[i] == a) {
            ctx++;
            pair += train[i + 1] == b;
        }
    }
    double pu = ((double)uni + 1.0) / ((double)n_train + (double)vocab);
    return ctx > 0 ? lambda * (double)pair / (double)ctx + (1 - lambda) * pu : pu;
}

static lethe_status check(const int32_t *s, long n, int V, const char *what)
{
    for (long i = 0; i < n; i++)
        if (s[i] < 0 || s[i] >= V)
            return lethe_fail(LETHE_ERR_INVALID, "bigram: %s token %ld is id %d, outside the "
                              "vocabulary of %d", what, i, s[i], V);
    return LETHE_OK;
}

lethe_status lethe_bigram_val_loss(const int32_t *train, long n_train, const int32_t *val,
                                   long n_val, int vocab, lethe_bigram_result *res)
{
    memset(res, 0, sizeof *res);
    res->val_loss = res->heldout_loss = res->lambda = NAN;
    if (vocab <= 0 || n_train < LETHE_BIGRAM_MIN_TRAIN || n_val < 2)
        return lethe_fail(LETHE_ERR_INVALID, "bigram: needs a vocabulary, at least %d training "
                          "tokens and 2 validation tokens (got %d, %ld, %ld)",
                          LETHE_BIGRAM_MIN_TRAIN, vocab, n_train, n_val);
    lethe_status st = check(train, n_train, vocab, "training");
    if (st == LETHE_OK)
        st = check(val, n_val, vocab, "validation");
    if (st != LETHE_OK)
        return st;
    /* Fit on the first 90% of the training stream, choose the weight on the
     * pairs ending in the last 10%, refit on everything. */
    long m = n_train - n_train / 10, nh = n_train - m, nv = n_val - 1;
    long cap = nh > nv ? nh : nv;
    double *ml = malloc(sizeof *ml * (size_t)cap), *pu = malloc(sizeof *pu * (size_t)cap);
    counts c = {0};
    if (!ml || !pu) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory for the bigram baseline");
        goto done;
    }
    if ((st = counts_make(train, m, vocab, &c)) != LETHE_OK)
        goto done;
    probs(&c, train, m, n_train, ml, pu);
    counts_free(&c);
    double best = INFINITY, best_l = 0;
    for (int k = 0; k < LETHE_BIGRAM_GRID; k++) {
        double l = (double)k / LETHE_BIGRAM_GRID;
        double ce = mean_ce(ml, pu, nh, l);
        if (ce < best)
            best = ce, best_l = l;
    }
    res->lambda = best_l;
    res->heldout_loss = best;
    if ((st = counts_make(train, n_train, vocab, &c)) != LETHE_OK)
        goto done;
    probs(&c, val, 1, n_val, ml, pu);
    res->val_loss = mean_ce(ml, pu, nv, best_l);
    res->n_scored = nv;
done:
    counts_free(&c);
    free(ml);
    free(pu);
    return st;
}
