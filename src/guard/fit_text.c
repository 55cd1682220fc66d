/* Words, n-gram hashes and derived targets for fitting a guard. */
#include <stdlib.h>
#include <string.h>

#include "fit_text.h"
#include "guard_impl.h"
#include "lethe/guard_decode.h"

size_t fit_split(const char *t, fit_word **w)
{
    size_t len = strlen(t), n = 0, cap = 8;
    fit_word *a = malloc(sizeof *a * cap);
    if (!a)
        return (size_t)-1;
    for (size_t i = 0; i < len;) {
        if (!guard_is_word_byte((unsigned char)t[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && guard_is_word_byte((unsigned char)t[i]))
            i++;
        if (n == cap) {
            fit_word *b = realloc(a, sizeof *a * (cap *= 2));
            if (!b) {
                free(a);
                return (size_t)-1;
            }
            a = b;
        }
        a[n++] = (fit_word){s, i};
    }
    *w = a;
    return n;
}

uint64_t fit_ngram_hash(const char *t, const fit_word *w, size_t i, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = i; k < i + n; k++) {
        if (k > i)
            h = (h ^ ' ') * 0x100000001b3ull;
        for (size_t b = w[k].s; b < w[k].e; b++)
            h = (h ^ guard_lower((unsigned char)t[b])) * 0x100000001b3ull;
    }
    h ^= h >> 33; /* MurmurHash3's finaliser: the set uses the low bits */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

int fit_has_content(const char *t, const fit_word *w, size_t i, size_t n)
{
    for (size_t k = i; k < i + n; k++)
        if (!lethe_guard_stopword(t + w[k].s, w[k].e - w[k].s))
            return 1;
    return 0;
}

static int set_grow(fit_set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof *k);
    if (!k)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->k[i])
            continue;
        size_t j = s->k[i] & (cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = s->k[i];
    }
    free(s->k);
    s->k = k, s->cap = cap;
    return 0;
}

int fit_set_add(fit_set *s, uint64_t key)
{
    if ((s->n + 1) * 2 > s->cap && set_grow(s))
        return -1;
    size_t j = key & (s->cap - 1);
    while (s->k[j]) {
        if (s->k[j] == key)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->k[j] = key;
    s->n++;
    return 1;
}

int fit_set_has(const fit_set *s, uint64_t key)
{
    if (!s->cap)
        return 0;
    for (size_t j = key & (s->cap - 1); s->k[j]; j = (j + 1) & (s->cap - 1))
        if (s->k[j] == key)
            return 1;
    return 0;
}

void fit_set_free(fit_set *s)
{
    free(s->k);
    *s = (fit_set){0};
}

lethe_status fit_set_add_text(fit_set *s, const char *t)
{
    fit_word *w;
    size_t n = fit_split(t, &w);
    if (n == (size_t)-1)
        return lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        for (size_t k = 1; k <= LETHE_GUARD_NGRAM_MAX && i + k <= n && !bad; k++)
            bad = fit_set_add(s, fit_ngram_hash(t, w, i, k)) < 0;
    free(w);
    return bad ? lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory") : LETHE_OK;
}

/* ---- derived targets ------------------------------------------------------ */

#define NAME_MIN 2 /* words in a derived name */
#define NAME_MAX 4

/* A candidate name: its hash, where it first appears, in how many
 * questions, and the last question counted. */
typedef struct cand {
    uint64_t key;
    size_t q, s, e, words, count, last_q;
} cand;

typedef struct cands {
    cand *c;
    size_t n, cap;
    uint32_t *map; /* key -> index + 1, open addressing */
    size_t map_cap;
} cands;

static int is_capital(unsigned char b)
{
    return (b >= 'A' && b <= 'Z') || b >= 0x80;
}

/* The index of key in the table, or n when absent (and *slot its place). */
static size_t cands_find(const cands *c, uint64_t key, size_t *slot)
{
    size_t j = key & (c->map_cap - 1);
    while (c->map[j] && c->c[c->map[j] - 1].key != key)
        j = (j + 1) & (c->map_cap - 1);
    *slot = j;
    return c->map[j] ? c->map[j] - 1 : c->n;
}

static int cands_grow(cands *c)
{
    size_t cap = c->cap ? c->cap * 2 : 256;
    cand *a = realloc(c->c, sizeof *a * cap);
    if (!a)
        return -1;
    c->c = a, c->cap = cap;
    uint32_t *m = calloc(cap * 2, sizeof *m);
    if (!m)
        return -1;
    free(c->map);
    c->map = m, c->map_cap = cap * 2;
    for (size_t i = 0; i < c->n; i++) {
        size_t slot;
        cands_find(c, c->c[i].key, &slot);
        c->map[slot] = (uint32_t)(i + 1);
    }
    return 0;
}

/* Count candidate words[i .. i + k) of question qi. */
static int cands_note(cands *c, const char *t, const fit_word *w, size_t i, size_t k, size_t qi)
{
    if (c->n == c->cap && cands_grow(c))
        return -1;
    uint64_t key = fit_ngram_hash(t, w, i, k);
    size_t slot, at = cands_find(c, key, &slot);
    if (at == c->n) {
        c->c[c->n] = (cand){key, qi, w[i].s, w[i + k - 1].e, k, 1, qi};
        c->map[slot] = (uint32_t)++c->n;
    } else if (c->c[at].last_q != qi) {
        c->c[at].count++;
        c->c[at].last_q = qi;
    }
    return 0;
}

static int joined(const char *t, const fit_word *a, const fit_word *b)
{
    return b->s == a->e + 1 && (t[a->e] == ' ' || t[a->e] == '-');
}

/* Every run of capitalised words of question qi, as candidates. */
static int cands_question(cands *c, const char *t, size_t qi)
{
    fit_word *w;
    size_t n = fit_split(t, &w);
    if (n == (size_t)-1)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        for (size_t k = 1; k <= NAME_MAX && i + k <= n; k++) {
            size_t last = i + k - 1;
            if (!is_capital((unsigned char)t[w[last].s]) ||
                (k > 1 && !joined(t, &w[last - 1], &w[last])))
                break;
            if (k >= NAME_MIN && (bad = cands_note(c, t, w, i, k, qi)))
                break;
        }
    }
    free(w);
    return bad;
}

static int by_words(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->words != y->words)
        return x->words < y->words ? -1 : 1;
    if (x->q != y->q)
        return x->q < y->q ? -1 : 1;
    return (x->s > y->s) - (x->s < y->s);
}

/* Add the accepted candidate c (text `name`) with its aliases. */
static lethe_status add_derived(lethe_guard_t *g, const char *name, const fit_set *r)
{
    fit_word *w;
    size_t n = fit_split(name, &w);
    if (n == (size_t)-1)
        return lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
    char *alias[NAME_MAX * 2];
    size_t na = 0;
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && na < NAME_MAX * 2; i++) {
        size_t len = w[i].e - w[i].s;
        if (len < 3 || !fit_has_content(name, w, i, 1) || fit_set_has(r, fit_ngram_hash(name, w, i, 1)))
            continue;
        if (!(alias[na] = strndup(name + w[i].s, len))) {
            st = lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
            break;
        }
        na++;
    }
    if (st == LETHE_OK)
        st = lethe_guard_add_target(g, name, (const char *const *)alias, na, NULL);
    for (size_t i = 0; i < na; i++)
        free(alias[i]);
    free(w);
    return st;
}

lethe_status fit_derive_targets(lethe_guard_t *g, const char *const *q, size_t n,
                                const fit_set *r, size_t *added)
{
    cands c = {0};
    fit_set taken = {0};
    lethe_status st = LETHE_OK;
    *added = 0;
    for (size_t i = 0; i < n && st == LETHE_OK; i++)
        if (cands_question(&c, q[i], i))
            st = lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
    /* a name recurs: in at least a quarter as many questions as the most
     * frequent candidate (so an award named in two questions is not one) */
    size_t most = 0;
    for (size_t i = 0; i < c.n; i++)
        most = c.c[i].count > most ? c.c[i].count : most;
    size_t need = (most + 3) / 4 > 2 ? (most + 3) / 4 : 2;
    if (st == LETHE_OK && c.n)
        qsort(c.c, c.n, sizeof *c.c, by_words);
    for (size_t i = 0; i < c.n && st == LETHE_OK; i++) {
        const cand *x = &c.c[i];
        if (x->count < need || fit_set_has(r, x->key))
            continue;
        const char *t = q[x->q];
        fit_word *w;
        size_t nw = fit_split(t, &w);
        if (nw == (size_t)-1) {
            st = lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
            break;
        }
        size_t first = 0;
        while (w[first].s != x->s)
            first++;
        int holds = 0; /* a shorter accepted name inside */
        for (size_t k = NAME_MIN; k < x->words && !holds; k++)
            for (size_t j = first; j + k <= first + x->words && !holds; j++)
                holds = fit_set_has(&taken, fit_ngram_hash(t, w, j, k));
        free(w);
        if (holds)
            continue;
        char *name = strndup(t + x->s, x->e - x->s);
        if (!name) {
            st = lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
            break;
        }
        st = add_derived(g, name, r);
        free(name);
        if (st == LETHE_OK && fit_set_add(&taken, x->key) < 0)
            st = lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
        if (st == LETHE_OK)
            ++*added;
    }
    free(c.c);
    free(c.map);
    fit_set_free(&taken);
    return st;
}
