/* ECO's corruption of prompt embeddings (lethe/guard_eco.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "guard_impl.h"
#include "lethe/guard_eco.h"
#include "lethe/rng.h"

static const char *const names[] = {NULL,        "noise_first", "noise_random", "noise_top",
                                    "zero_top",  "flip_first",  "flip_top"};

void lethe_eco_defaults(lethe_eco_cfg *c)
{
    *c = (lethe_eco_cfg){.fn = LETHE_ECO_NOISE_FIRST, .k = 0, .sigma = 1.0};
}

const char *lethe_eco_fn_name(lethe_eco_fn fn)
{
    return fn >= LETHE_ECO_NOISE_FIRST && fn <= LETHE_ECO_FLIP_TOP ? names[fn] : NULL;
}

lethe_status lethe_eco_fn_parse(const char *s, lethe_eco_fn *fn)
{
    for (int i = LETHE_ECO_NOISE_FIRST; i <= LETHE_ECO_FLIP_TOP; i++)
        if (!strcmp(s, names[i])) {
            *fn = (lethe_eco_fn)i;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID, "unknown corruption '%s' (noise_first, noise_random, "
                      "noise_top, zero_top, flip_first, flip_top)", s);
}

/* N(0, 1) for (seed, pos, j): Box-Muller on the two halves of one hash. */
static double normal(uint64_t seed, int pos, int j)
{
    uint64_t h = lethe_rng_hash(seed, (uint64_t)pos, (uint64_t)j);
    double u1 = ((double)(h >> 32) + 0.5) * 0x1p-32, u2 = (double)(h & 0xffffffffu) * 0x1p-32;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* The k dimensions to corrupt into dims[0..k). */
static void choose(const lethe_eco_cfg *c, const float *e, int C, int k, int pos, int *dims)
{
    int top = c->fn == LETHE_ECO_NOISE_TOP || c->fn == LETHE_ECO_ZERO_TOP ||
              c->fn == LETHE_ECO_FLIP_TOP;
    if (c->fn == LETHE_ECO_NOISE_RANDOM) {
        int *perm = malloc(sizeof *perm * (size_t)C);
        if (!perm) { /* no room to shuffle: the first k, still a corruption */
            for (int i = 0; i < k; i++)
                dims[i] = i;
            return;
        }
        for (int i = 0; i < C; i++)
            perm[i] = i;
        for (int i = 0; i < k; i++) {
            uint64_t h = lethe_rng_hash(c->seed, (uint64_t)pos + (1ull << 32), (uint64_t)i);
            int j = i + (int)(h % (uint64_t)(C - i));
            int t = perm[i];
            perm[i] = perm[j], perm[j] = t;
            dims[i] = perm[i];
        }
        free(perm);
    } else if (top) {
        /* k passes, each taking the largest |e| not taken (lower index on ties) */
        unsigned char *taken = calloc((size_t)C, 1);
        for (int i = 0; i < k; i++) {
            int best = taken ? -1 : i; /* no room to mark: the first k */
            for (int j = 0; taken && j < C; j++)
                if (!taken[j] && (best < 0 || fabsf(e[j]) > fabsf(e[best])))
                    best = j;
            dims[i] = best;
            if (taken)
                taken[best] = 1;
        }
        free(taken);
    } else {
        for (int i = 0; i < k; i++)
            dims[i] = i;
    }
}

void lethe_eco_corrupt_row(const lethe_eco_cfg *c, float *e, int C, int pos)
{
    int k = c->k <= 0 || c->k > C ? C : c->k;
    int *dims = malloc(sizeof *dims * (size_t)k);
    if (!dims)
        return;
    choose(c, e, C, k, pos, dims);
    for (int i = 0; i < k; i++) {
        int j = dims[i];
        switch (c->fn) {
        case LETHE_ECO_ZERO_TOP: e[j] = 0.0f; break;
        case LETHE_ECO_FLIP_FIRST:
        case LETHE_ECO_FLIP_TOP: e[j] = -e[j]; break;
        default: e[j] += (float)(c->sigma * normal(c->seed, pos, j)); break;
        }
    }
    free(dims);
}

/* Occurrences of name (ASCII case ignored, word bounded) in p[0..len):
 * mark bytes [s, e) of each in hit. */
static void mark_name(const char *p, size_t len, const char *name, unsigned char *hit)
{
    size_t m = strlen(name);
    for (size_t i = 0; m && i + m <= len; i++) {
        if (strncasecmp(p + i, name, m))
            continue;
        if ((i && guard_is_word_byte((unsigned char)p[i - 1])) ||
            (i + m < len && guard_is_word_byte((unsigned char)p[i + m])))
            continue;
        memset(hit + i, 1, m);
    }
}

lethe_status lethe_guard_eco_select(const lethe_tokenizer_t *tok, const int32_t *ids, size_t n,
                                    const char *prompt, size_t len, const char *const *nm,
                                    size_t n_names, unsigned char *mask, size_t *selected)
{
    unsigned char *hit = calloc(len + 1, 1);
    if (!hit)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    for (size_t i = 0; i < n_names; i++)
        mark_name(prompt, len, nm[i], hit);
    size_t at = 0, count = 0;
    lethe_status st = LETHE_OK;
    for (size_t t = 0; t < n && st == LETHE_OK; t++) {
        uint32_t id = (uint32_t)ids[t];
        unsigned char *b = NULL;
        size_t bl = 0;
        st = lethe_tokenizer_decode(tok, &id, 1, &b, &bl);
        mask[t] = 0;
        for (size_t j = at; st == LETHE_OK && j < at + bl && j < len; j++)
            mask[t] |= hit[j];
        count += mask[t];
        at += bl;
        free(b);
    }
    free(hit);
    if (st == LETHE_OK && !count) /* no entity found: all but the last */
        for (size_t t = 0; t < n; t++)
            count += mask[t] = (unsigned char)(t + 1 < n || n == 1);
    *selected = count;
    return st;
}

/* ---- zeroth-order tuning ---------------------------------------------------- */

void lethe_eco_zo_defaults(lethe_eco_zo_cfg *c)
{
    *c = (lethe_eco_zo_cfg){.sigma0 = 1.0, .eps = 0.5, .lr = 4.0, .sigma_min = 1e-3,
                            .sigma_max = 1e6, .steps = 10, .tol = 0.01};
}

static void note(lethe_eco_zo_report *r, const lethe_eco_zo_cfg *c, double sigma, double m)
{
    double f = fabs(m - c->target), best = fabs(r->best_m - c->target);
    if (r->evals++ == 0 || f < best || (f == best && sigma < r->best_sigma))
        r->best_sigma = sigma, r->best_m = m;
}

lethe_status lethe_eco_zo_tune(const lethe_eco_zo_cfg *c, lethe_eco_metric metric, void *ctx,
                               lethe_eco_zo_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (!(c->sigma_min > 0 && c->sigma_max >= c->sigma_min && c->sigma0 > 0 && c->eps > 0 &&
          c->lr >= 0 && c->tol >= 0) ||
        c->steps < 1 || c->steps > LETHE_ECO_ZO_MAX_STEPS)
        return lethe_fail(LETHE_ERR_INVALID, "eco tuning: bad settings (sigmas and eps above "
                          "0, 1 to %d steps)", LETHE_ECO_ZO_MAX_STEPS);
    double lo = log(c->sigma_min), hi = log(c->sigma_max);
    double u = fmin(hi, fmax(lo, log(c->sigma0))), eps = c->eps, last_g = 0;
    for (int s = 0; s < c->steps; s++) {
        lethe_eco_zo_step *t = &rep->trace[s];
        t->sigma = exp(u);
        t->eps = eps;
        lethe_status st = metric(ctx, exp(u + eps), &t->m_plus);
        if (st == LETHE_OK)
            st = metric(ctx, exp(u - eps), &t->m_minus);
        if (st != LETHE_OK)
            return st;
        rep->steps = s + 1;
        note(rep, c, exp(u - eps), t->m_minus);
        note(rep, c, exp(u + eps), t->m_plus);
        if (fabs(rep->best_m - c->target) <= c->tol)
            break;
        double fp = fabs(t->m_plus - c->target), fm = fabs(t->m_minus - c->target);
        double g = (fp - fm) / (2 * eps);
        if (g * last_g < 0) /* the slope turned: the target is between, look closer */
            eps *= 0.5;
        if (g != 0)
            last_g = g;
        if (g == 0) /* flat: toward the target, the metric falling as sigma grows */
            u += (0.5 * (t->m_plus + t->m_minus) > c->target ? 2 : -2) * eps;
        else /* at least eps: a shallow slope would otherwise crawl */
            u -= (g > 0 ? 1 : -1) * fmax(c->lr * fabs(g), eps);
        u = fmin(hi, fmax(lo, u));
    }
    return LETHE_OK;
}
