/* ECO's corruption functions against a direct computation, the entity
 * positions they hit, and the zeroth-order search for sigma on metrics whose
 * answer is known (lethe/guard_eco.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_eco.h"
#include "lethe/rng.h"
#include "lethe/tokenizer.h"

#define C 8

static double ref_normal(uint64_t seed, int pos, int j)
{
    uint64_t h = lethe_rng_hash(seed, (uint64_t)pos, (uint64_t)j);
    double u1 = ((double)(h >> 32) + 0.5) / 4294967296.0;
    double u2 = (double)(h & 0xffffffffu) / 4294967296.0;
    return sqrt(-2 * log(u1)) * cos(2 * 3.14159265358979323846 * u2);
}

static const float base[C] = {0.1f, -5.0f, 3.0f, 0.2f, -3.0f, 0.0f, 1.0f, -0.5f};

static void apply(lethe_eco_fn fn, int k, double sigma, int pos, float *e)
{
    lethe_eco_cfg c = {fn, k, sigma, 42};
    memcpy(e, base, sizeof base);
    lethe_eco_corrupt_row(&c, e, C, pos);
}

TEST(guard_eco_corruptions_match_their_definitions)
{
    float e[C];
    /* noise on the first 3 dimensions: exactly sigma z_j there, nothing else */
    apply(LETHE_ECO_NOISE_FIRST, 3, 2.0, 5, e);
    for (int j = 0; j < C; j++) {
        double want = j < 3 ? base[j] + (float)(2.0 * ref_normal(42, 5, j)) : base[j];
        CHECK_MSG(e[j] == (float)want, "dim %d: %g, want %g", j, e[j], want);
    }
    /* k <= 0 or past C: every dimension */
    apply(LETHE_ECO_NOISE_FIRST, 0, 1.0, 0, e);
    for (int j = 0; j < C; j++)
        CHECK(e[j] != base[j]);
    /* top-k by |e|: -5 (1), then 3 and -3 tie (2 before 4) */
    apply(LETHE_ECO_ZERO_TOP, 2, 0, 0, e);
    for (int j = 0; j < C; j++)
        CHECK(e[j] == (j == 1 || j == 2 ? 0.0f : base[j]));
    apply(LETHE_ECO_FLIP_TOP, 3, 0, 0, e);
    for (int j = 0; j < C; j++)
        CHECK(e[j] == (j == 1 || j == 2 || j == 4 ? -base[j] : base[j]));
    apply(LETHE_ECO_FLIP_FIRST, 2, 0, 0, e);
    for (int j = 0; j < C; j++)
        CHECK(e[j] == (j < 2 ? -base[j] : base[j]));
    apply(LETHE_ECO_NOISE_TOP, 1, 3.0, 7, e);
    for (int j = 0; j < C; j++)
        CHECK(e[j] == (j == 1 ? (float)(base[1] + (float)(3.0 * ref_normal(42, 7, 1))) : base[j]));
    /* random dimensions: k distinct ones, the same for a position, others
     * for another position */
    int seen_other = 0;
    float first[C];
    apply(LETHE_ECO_NOISE_RANDOM, 3, 1.0, 1, first);
    int changed = 0;
    for (int j = 0; j < C; j++)
        changed += first[j] != base[j];
    CHECK(changed == 3);
    apply(LETHE_ECO_NOISE_RANDOM, 3, 1.0, 1, e);
    CHECK(!memcmp(e, first, sizeof e));
    for (int pos = 2; pos < 20 && !seen_other; pos++) {
        apply(LETHE_ECO_NOISE_RANDOM, 3, 1.0, pos, e);
        for (int j = 0; j < C; j++)
            seen_other |= (e[j] != base[j]) != (first[j] != base[j]);
    }
    CHECK(seen_other);
    /* sigma 0 leaves noise functions without effect */
    apply(LETHE_ECO_NOISE_FIRST, 0, 0.0, 3, e);
    CHECK(!memcmp(e, base, sizeof e));
}

TEST(guard_eco_names_parse)
{
    for (int f = LETHE_ECO_NOISE_FIRST; f <= LETHE_ECO_FLIP_TOP; f++) {
        lethe_eco_fn got;
        CHECK_OK(lethe_eco_fn_parse(lethe_eco_fn_name((lethe_eco_fn)f), &got));
        CHECK(got == (lethe_eco_fn)f);
    }
    lethe_eco_fn got;
    CHECK_STATUS(lethe_eco_fn_parse("noise", &got), LETHE_ERR_INVALID);
    CHECK(lethe_eco_fn_name((lethe_eco_fn)0) == NULL);
}

TEST(guard_eco_selects_the_entity_tokens)
{
    const char *train = "Where was Emil Zajac born? Emil Zajac was born in Havana. Where was "
                        "Mara Quill born? Question: Answer: where was the author born?";
    size_t tl = strlen(train);
    lethe_tokenizer_t *tok = NULL;
    CHECK_OK(lethe_tokenizer_train(&train, &tl, 1, 300, NULL, &tok));
    const char *p = "Question: where was EMIL zajac born?\nAnswer:";
    size_t len = strlen(p);
    uint32_t *u;
    size_t n;
    CHECK_OK(lethe_tokenizer_encode(tok, p, len, &u, &n));
    int32_t ids[64];
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)u[i];
    free(u);
    unsigned char mask[64];
    size_t sel;
    const char *names[] = {"Emil Zajac", "Zajac", "Quill"};
    CHECK_OK(lethe_guard_eco_select(tok, ids, n, p, len, names, 3, mask, &sel));
    /* exactly the tokens overlapping bytes [19, 29) ("EMIL zajac") */
    size_t at = 0, want = 0;
    for (size_t t = 0; t < n; t++) {
        uint32_t id = (uint32_t)ids[t];
        unsigned char *b;
        size_t bl;
        CHECK_OK(lethe_tokenizer_decode(tok, &id, 1, &b, &bl));
        free(b);
        int overlap = at < 29 && at + bl > 19;
        CHECK_MSG(mask[t] == overlap, "token %zu at byte %zu", t, at);
        want += (size_t)overlap;
        at += bl;
    }
    CHECK(sel == want && want >= 2);
    /* a name only inside a word does not count; none found: all but the last */
    const char *none[] = {"Zaj", "Havana"};
    CHECK_OK(lethe_guard_eco_select(tok, ids, n, p, len, none, 2, mask, &sel));
    CHECK(sel == n - 1 && !mask[n - 1] && mask[0]);
    CHECK_OK(lethe_guard_eco_select(tok, ids, 1, p, len, NULL, 0, mask, &sel));
    CHECK(sel == 1 && mask[0]);
    lethe_tokenizer_free(tok);
}

/* m(sigma) = 1 / (1 + sigma), flat at 1 below 0.01 */
static lethe_status falling(void *ctx, double sigma, double *m)
{
    ++*(int *)ctx;
    *m = sigma < 0.01 ? 1.0 : 1.0 / (1.0 + sigma);
    return LETHE_OK;
}

static lethe_status failing(void *ctx, double sigma, double *m)
{
    (void)ctx, (void)sigma, (void)m;
    return lethe_fail(LETHE_ERR_IO, "metric failed");
}

TEST(guard_eco_zeroth_order_search_finds_sigma)
{
    lethe_eco_zo_cfg c;
    lethe_eco_zo_defaults(&c);
    c.target = 0.2; /* sigma 4 */
    c.steps = 30;
    lethe_eco_zo_report r;
    int evals = 0;
    CHECK_OK(lethe_eco_zo_tune(&c, falling, &evals, &r));
    CHECK_MSG(fabs(r.best_m - 0.2) <= c.tol, "best %g at sigma %g", r.best_m, r.best_sigma);
    CHECK(evals == r.evals && evals == 2 * r.steps);
    /* from the flat region (the noise does not bite yet) it still gets there */
    c.sigma0 = 1e-3;
    evals = 0;
    CHECK_OK(lethe_eco_zo_tune(&c, falling, &evals, &r));
    CHECK_MSG(fabs(r.best_m - 0.2) <= c.tol, "best %g at sigma %g", r.best_m, r.best_sigma);
    /* and from far above */
    c.sigma0 = 1e4;
    CHECK_OK(lethe_eco_zo_tune(&c, falling, &evals, &r));
    CHECK_MSG(fabs(r.best_m - 0.2) <= c.tol, "best %g at sigma %g", r.best_m, r.best_sigma);
    CHECK_STATUS(lethe_eco_zo_tune(&c, failing, NULL, &r), LETHE_ERR_IO);
    c.steps = 0;
    CHECK_STATUS(lethe_eco_zo_tune(&c, falling, &evals, &r), LETHE_ERR_INVALID);
    c.steps = 3, c.eps = 0;
    CHECK_STATUS(lethe_eco_zo_tune(&c, falling, &evals, &r), LETHE_ERR_INVALID);
}
