/* The prompt classifier's split-conformal calibration and its binary file
 * (the definitions and the layout are in guard_classifier.h). The reader
 * trusts nothing: the length is checked against the layout before anything
 * is allocated, so a buffer of n bytes never costs more than O(n). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lethe/guard_classifier.h"

/* ---- split-conformal calibration -------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

lethe_status lethe_guard_conformal_threshold(const double *scores, size_t n, double alpha,
                                             double *tau, size_t *rank)
{
    if (!(alpha > 0 && alpha < 1) || n == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard calibration: alpha %g with %zu scores (alpha in (0, 1), n > 0)",
                          alpha, n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(scores[i]))
            return lethe_fail(LETHE_ERR_INVALID, "guard calibration: score %zu is %g", i,
                              scores[i]);
    double q = (double)(n + 1) * (1 - alpha);
    size_t k = (size_t)ceil(q - 1e-12 * q);
    if (rank)
        *rank = k;
    if (k > n) {
        *tau = INFINITY;
        return LETHE_OK;
    }
    double *s = malloc(n * sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "guard calibration: out of memory for %zu scores", n);
    memcpy(s, scores, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    *tau = s[k - 1];
    free(s);
    return LETHE_OK;
}

lethe_status lethe_guard_clf_calibrate(lethe_guard_clf *c, const double *scores, size_t n,
                                       double alpha)
{
    for (size_t i = 0; i < n; i++)
        if (!(scores[i] >= 0 && scores[i] <= 1))
            return lethe_fail(LETHE_ERR_INVALID,
                              "guard calibration: score %zu is %g, not a probability", i,
                              scores[i]);
    if (n > UINT32_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "guard calibration: %zu scores is too many", n);
    double tau;
    size_t k;
    lethe_status st = lethe_guard_conformal_threshold(scores, n, alpha, &tau, &k);
    if (st != LETHE_OK)
        return st;
    if (k > n)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard calibration: %zu held-out retain prompts cannot bound the false "
                          "positive rate by %g; at least %.0f are needed",
                          n, alpha, ceil((1 - alpha) / alpha - 1e-9));
    c->tau = tau;
    c->alpha = alpha;
    c->n_calib = (uint32_t)n;
    return LETHE_OK;
}

/* ---- serialisation ---------------------------------------------------------- */

#define HEAD 60 /* bytes before the model hash; the layout is in the header */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_f64(unsigned char *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u32(p, (uint32_t)u);
    put_u32(p + 4, (uint32_t)(u >> 32));
}

static double get_f64(const unsigned char *p)
{
    uint64_t u = get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static uint32_t checksum(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n; off += 1u << 30) /* crc32 takes a 32-bit length */
        crc = crc32(crc, p + off, (uInt)(n - off < (1u << 30) ? n - off : (1u << 30)));
    return (uint32_t)crc;
}

lethe_status lethe_guard_clf_save(const lethe_guard_clf *c, unsigned char **buf, size_t *len)
{
    size_t hl = strlen(c->model_hash), d = (size_t)c->dim, total = HEAD + hl + 24 * d + 4;
    unsigned char *b = malloc(total);
    *buf = NULL;
    if (!b)
        return lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory for %zu bytes", total);
    memcpy(b, "LGCL", 4);
    uint32_t head[5] = {LETHE_GUARD_CLF_VERSION, (uint32_t)c->kind, (uint32_t)c->layer,
                        (uint32_t)c->dim, c->n_calib};
    for (int i = 0; i < 5; i++)
        put_u32(b + 4 + 4 * i, head[i]);
    double vals[4] = {c->C, c->alpha, c->tau, c->bias};
    for (int i = 0; i < 4; i++)
        put_f64(b + 24 + 8 * i, vals[i]);
    put_u32(b + 56, (uint32_t)hl);
    memcpy(b + HEAD, c->model_hash, hl);
    unsigned char *p = b + HEAD + hl;
    const double *arrays[3] = {c->mean, c->std, c->w};
    for (int a = 0; a < 3; a++)
        for (size_t j = 0; j < d; j++, p += 8)
            put_f64(p, arrays[a][j]);
    put_u32(p, checksum(b, total - 4));
    *buf = b;
    *len = total;
    return LETHE_OK;
}

#define BAD(...) lethe_fail(LETHE_ERR_FORMAT, "guard classifier: " __VA_ARGS__)

/* Check everything in b[0..len) but the arrays' values. */
static lethe_status check_layout(const unsigned char *b, size_t len)
{
    if (len < HEAD + 4 || memcmp(b, "LGCL", 4))
        return BAD("not a guard classifier (no \"LGCL\" header in %zu bytes)", len);
    uint32_t version = get_u32(b + 4), kind = get_u32(b + 8), dim = get_u32(b + 16);
    int32_t layer = (int32_t)get_u32(b + 12);
    uint32_t hl = get_u32(b + 56), n_calib = get_u32(b + 20);
    if (version != LETHE_GUARD_CLF_VERSION)
        return BAD("version %u, this build reads version %u", version, LETHE_GUARD_CLF_VERSION);
    if (kind != LETHE_GUARD_FEAT_HASH && kind != LETHE_GUARD_FEAT_MODEL)
        return BAD("unknown feature kind %u", kind);
    if (dim < 1 || dim > LETHE_GUARD_MAX_DIM || hl > LETHE_GUARD_MODEL_HASH_MAX)
        return BAD("%u features and a model hash of %u bytes", dim, hl);
    if (len != HEAD + hl + 24 * (size_t)dim + 4)
        return BAD("%zu bytes, the layout of %u features takes %zu", len, dim,
                   HEAD + hl + 24 * (size_t)dim + 4);
    if (get_u32(b + len - 4) != checksum(b, len - 4))
        return BAD("checksum mismatch (the file is damaged)");
    if (kind == LETHE_GUARD_FEAT_HASH ? layer != -1 : layer < 0)
        return BAD("hidden state %d for features of kind %u", layer, kind);
    for (uint32_t i = 0; i < hl; i++)
        if (b[HEAD + i] < 0x20 || b[HEAD + i] > 0x7e)
            return BAD("the model hash has byte 0x%02x", b[HEAD + i]);
    double C = get_f64(b + 24), alpha = get_f64(b + 32), tau = get_f64(b + 40);
    double bias = get_f64(b + 48);
    if (!(C > 0) || !isfinite(C) || !(alpha >= 0 && alpha < 1) || !(tau >= 0 && tau <= 1) ||
        !isfinite(bias) || (alpha == 0) != (n_calib == 0))
        return BAD("C %g, alpha %g (%u calibration prompts), tau %g, bias %g", C, alpha,
                   n_calib, tau, bias);
    return LETHE_OK;
}

lethe_status lethe_guard_clf_load(const void *buf, size_t len, lethe_guard_clf **out)
{
    const unsigned char *b = buf;
    *out = NULL;
    lethe_status st = check_layout(b, len);
    if (st != LETHE_OK)
        return st;
    uint32_t dim = get_u32(b + 16), hl = get_u32(b + 56);
    lethe_guard_clf *c = calloc(1, sizeof *c);
    if (c) {
        c->mean = malloc(dim * sizeof *c->mean);
        c->std = malloc(dim * sizeof *c->std);
        c->w = malloc(dim * sizeof *c->w);
    }
    if (!c || !c->mean || !c->std || !c->w) {
        lethe_guard_clf_free(c);
        return lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory for %u features", dim);
    }
    c->dim = (int)dim;
    c->kind = (lethe_guard_feat_kind)get_u32(b + 8);
    c->layer = (int32_t)get_u32(b + 12);
    c->n_calib = get_u32(b + 20);
    c->C = get_f64(b + 24);
    c->alpha = get_f64(b + 32);
    c->tau = get_f64(b + 40);
    c->bias = get_f64(b + 48);
    memcpy(c->model_hash, b + HEAD, hl);
    c->model_hash[hl] = 0;
    const unsigned char *p = b + HEAD + hl;
    double *arrays[3] = {c->mean, c->std, c->w};
    const char *names[3] = {"mean", "std", "weight"};
    for (int a = 0; a < 3; a++)
        for (uint32_t j = 0; j < dim; j++, p += 8) {
            double v = get_f64(p);
            if (!isfinite(v) || (a == 1 && !(v > 0))) {
                lethe_guard_clf_free(c);
                return BAD("%s %u is %g", names[a], j, v);
            }
            arrays[a][j] = v;
        }
    *out = c;
    return LETHE_OK;
}
