/* libFuzzer harness: the guard's prompt classifier. Each input is
 *   - loaded as a serialised classifier, as it is and with its last four
 *     bytes replaced by the right checksum (so the checks behind the
 *     checksum are reached): a format error with a message and no
 *     classifier, or a classifier that saves back to the same bytes and
 *     scores zeros and ones in [0, 1];
 *   - split at NUL bytes into prompts, labelled by the parity of their first
 *     byte: their hashed features must be finite with unit (or zero) norm
 *     and repeatable; when both labels occur, a classifier fitted on them
 *     must score them in [0, 1], keep those scores through a save and load,
 *     and take a split-conformal threshold that is one of the scores (or
 *     +infinity) with at most n - k of the n scores above it.
 * Any disagreement aborts. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lethe/guard_classifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIM 64
#define MAX_PROMPTS 32

static void check_scores(const lethe_guard_clf *c)
{
    float *x = calloc((size_t)c->dim, sizeof *x);
    LETHE_ASSERT(x);
    for (int pass = 0; pass < 2; pass++) {
        double s = lethe_guard_clf_score(c, x);
        LETHE_ASSERT(s >= 0 && s <= 1);
        for (int j = 0; j < c->dim; j++)
            x[j] = 1;
    }
    free(x);
}

/* Arbitrary bytes: a format error, or a classifier saving the same bytes. */
static void check_load(const uint8_t *data, size_t size)
{
    lethe_guard_clf *c = (lethe_guard_clf *)1;
    lethe_status st = lethe_guard_clf_load(data, size, &c);
    if (st != LETHE_OK) {
        LETHE_ASSERT(st == LETHE_ERR_FORMAT && c == NULL && lethe_error_detail()[0]);
        return;
    }
    unsigned char *buf;
    size_t len;
    LETHE_ASSERT(lethe_guard_clf_save(c, &buf, &len) == LETHE_OK);
    LETHE_ASSERT(len == size && !memcmp(buf, data, size));
    free(buf);
    check_scores(c);
    lethe_guard_clf_free(c);
}

static void check_load_fixed(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    uint8_t *copy = malloc(size);
    LETHE_ASSERT(copy);
    memcpy(copy, data, size);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
    for (int i = 0; i < 4; i++)
        copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check_load(copy, size);
    free(copy);
}

static void check_fit(const uint8_t *data, size_t size)
{
    lethe_guard_feat f;
    LETHE_ASSERT(lethe_guard_feat_hash(DIM, &f) == LETHE_OK);
    lethe_guard_rows_t *rows = lethe_guard_rows_new(DIM);
    LETHE_ASSERT(rows);
    int labels[MAX_PROMPTS], count[2] = {0, 0};
    const uint8_t *text[MAX_PROMPTS];
    size_t tlen[MAX_PROMPTS], n = 0, start = 0;
    float x[DIM], again[DIM];
    for (size_t i = 0; i <= size && n < MAX_PROMPTS; i++) {
        if (i < size && data[i] != 0)
            continue;
        text[n] = data + start;
        tlen[n] = i - start;
        labels[n] = tlen[n] ? data[start] & 1 : 0;
        LETHE_ASSERT(lethe_guard_features(&f, text[n], tlen[n], x) == LETHE_OK);
        LETHE_ASSERT(lethe_guard_features(&f, text[n], tlen[n], again) == LETHE_OK);
        LETHE_ASSERT(!memcmp(x, again, sizeof x));
        double ss = 0;
        for (int j = 0; j < DIM; j++) {
            LETHE_ASSERT(isfinite(x[j]));
            ss += (double)x[j] * x[j];
        }
        LETHE_ASSERT(ss == 0 || fabs(ss - 1) < 1e-5);
        LETHE_ASSERT(lethe_guard_rows_add(rows, x) == LETHE_OK);
        count[labels[n]]++;
        n++;
        start = i + 1;
    }
    lethe_guard_clf_cfg cfg;
    lethe_guard_clf_defaults(&cfg);
    cfg.max_iter = 30;
    cfg.model_hash = "fuzz";
    lethe_guard_clf *c = NULL, *back = NULL;
    lethe_status st = lethe_guard_clf_fit(&f, rows, labels, &cfg, &c, NULL);
    lethe_guard_rows_free(rows);
    if (!count[0] || !count[1]) {
        LETHE_ASSERT(st == LETHE_ERR_INVALID && c == NULL);
        return;
    }
    LETHE_ASSERT(st == LETHE_OK);
    unsigned char *buf;
    size_t len;
    LETHE_ASSERT(lethe_guard_clf_save(c, &buf, &len) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_clf_load(buf, len, &back) == LETHE_OK);
    free(buf);
    double scores[MAX_PROMPTS];
    for (size_t i = 0; i < n; i++) {
        double s2;
        LETHE_ASSERT(lethe_guard_clf_score_text(c, &f, text[i], tlen[i], &scores[i], NULL) ==
                     LETHE_OK);
        LETHE_ASSERT(lethe_guard_clf_score_text(back, &f, text[i], tlen[i], &s2, NULL) ==
                     LETHE_OK);
        LETHE_ASSERT(scores[i] >= 0 && scores[i] <= 1 && s2 == scores[i]);
    }
    double tau, alpha = 0.25;
    size_t k, above = 0, equal = 0;
    LETHE_ASSERT(lethe_guard_conformal_threshold(scores, n, alpha, &tau, &k) == LETHE_OK);
    for (size_t i = 0; i < n; i++) {
        above += scores[i] > tau;
        equal += scores[i] == tau;
    }
    LETHE_ASSERT(k > n ? tau == INFINITY && lethe_guard_clf_calibrate(c, scores, n, alpha) ==
                                                LETHE_ERR_INVALID
                       : equal > 0 && above <= n - k &&
                             lethe_guard_clf_calibrate(c, scores, n, alpha) == LETHE_OK &&
                             c->tau == tau);
    lethe_guard_clf_free(back);
    lethe_guard_clf_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_load(data, size);
    check_load_fixed(data, size);
    check_fit(data, size);
    return 0;
}
