/* Building the automaton's tables from the stored patterns.
 *
 * The trie of the wrapped patterns (" " + P + " ") is laid out breadth-first
 * straight from the patterns sorted by their wrapped bytes: the states at
 * depth d are the distinct d-byte prefixes, which in sorted order come in
 * runs, so pattern i starts a new state at depth d exactly when its longest
 * common prefix with pattern i - 1 is shorter than d. Walking the depths
 * with the list of patterns still long enough costs O(total bytes), gives
 * every state's children consecutive numbers in byte order, and needs no
 * pointer-linked trie. Failure links then follow in the same order. */
#include <stdlib.h>
#include <string.h>

#include "guard_impl.h"

/* A pattern as the builder sees it. */
struct spat {
    const unsigned char *p;
    uint32_t len, id;
};

/* Order by bytes, a prefix first, then by id. For the bytes of normalised
 * text (all >= 0x20) this is also the order of the wrapped strings: after a
 * common prefix the shorter string's closing space is <= any next byte. */
static int spat_cmp(const void *a, const void *b)
{
    const struct spat *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static inline uint32_t wlen(const struct spat *s) { return s->len + 2; }

/* Byte d of the wrapped pattern (d < wlen). */
static inline unsigned char wbyte(const struct spat *s, uint32_t d)
{
    return d == 0 || d > s->len ? ' ' : s->p[d - 1];
}

/* The longest common prefix of the wrapped patterns a and b. */
static uint32_t wrapped_lcp(const struct spat *a, const struct spat *b)
{
    uint32_t m = a->len < b->len ? a->len : b->len, k = 0;
    while (k < m && a->p[k] == b->p[k])
        k++;
    if (k < m)
        return 1 + k;
    if (a->len == b->len)
        return m + 2;
    /* one is a prefix of the other: the shorter one's closing space against
     * the longer one's next byte */
    const struct spat *longer = a->len > b->len ? a : b;
    return longer->p[m] == ' ' ? m + 2 : m + 1;
}

void guard_tables_free(struct guard_tables *tab)
{
    free(tab->st);
    free(tab->label);
    free(tab->out_start);
    free(tab->out);
    memset(tab, 0, sizeof *tab);
}

static lethe_status alloc_tables(struct guard_tables *t, size_t n_states, size_t n_out)
{
    t->n_states = (uint32_t)n_states;
    t->st = calloc(n_states + 1, sizeof *t->st);
    t->label = calloc(n_states, 1);
    t->out_start = calloc(n_states + 1, sizeof *t->out_start);
    t->out = malloc((n_out ? n_out : 1) * sizeof *t->out);
    if (!t->st || !t->label || !t->out_start || !t->out) {
        guard_tables_free(t);
        return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu states", n_states);
    }
    return LETHE_OK;
}

/* Number the states breadth-first: label[] and the child counts (in
 * st[].child, shifted by one) of every state, and in cur[i] the state
 * where sorted pattern i ends. act[] is scratch for n indices. */
static uint32_t lay_out(struct guard_tables *t, const struct spat *sp, const uint32_t *lcp,
                        size_t n, uint32_t *cur, uint32_t *act)
{
    size_t n_act = n;
    for (size_t i = 0; i < n; i++) {
        cur[i] = 0;
        act[i] = (uint32_t)i;
    }
    uint32_t next = 1;
    for (uint32_t d = 1; n_act; d++) {
        uint32_t last = 0;
        size_t kept = 0;
        for (size_t j = 0; j < n_act; j++) {
            uint32_t i = act[j];
            if (lcp[i] < d) { /* a prefix not seen at this depth: a new state */
                t->label[next] = wbyte(&sp[i], d - 1);
                t->st[cur[i] + 1].child++;
                cur[i] = next++;
            } else { /* the same prefix as the pattern before it */
                cur[i] = last;
            }
            last = cur[i];
            if (wlen(&sp[i]) > d)
                act[kept++] = i; /* still growing; else it ends at cur[i] */
        }
        n_act = kept;
    }
    return next;
}

/* Failure and report links, breadth-first so every link points back. */
static void link_states(struct guard_tables *t)
{
    t->st[0].fail = 0;
    t->st[0].report = 0;
    for (uint32_t p = 0; p < t->n_states; p++) {
        for (uint32_t s = t->st[p].child; s < t->st[p + 1].child; s++) {
            uint32_t f = p == 0 ? 0 : guard_step(t, t->st[p].fail, t->label[s]);
            t->st[s].fail = f;
            t->st[s].report = t->out_start[s] != t->out_start[s + 1] ? s : t->st[f].report;
        }
    }
}

/* Fill the tables from the sorted patterns. */
static lethe_status fill(struct guard_tables *t, const struct spat *sp, size_t n)
{
    uint32_t *lcp = malloc((n ? n : 1) * sizeof *lcp);
    uint32_t *cur = malloc((n ? n : 1) * sizeof *cur);
    uint32_t *act = malloc((n ? n : 1) * sizeof *act);
    lethe_status st = LETHE_OK;
    if (!lcp || !cur || !act) {
        st = lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu patterns", n);
        goto done;
    }
    /* distinct prefixes = 1 + sum (wrapped length - lcp with the one before) */
    size_t n_states = 1;
    for (size_t i = 0; i < n; i++) {
        lcp[i] = i ? wrapped_lcp(&sp[i - 1], &sp[i]) : 0;
        n_states += wlen(&sp[i]) - lcp[i];
    }
    if ((st = alloc_tables(t, n_states, n)) != LETHE_OK)
        goto done;
    uint32_t made = lay_out(t, sp, lcp, n, cur, act);
    LETHE_ASSERT(made == n_states);
    /* child counts -> first child: children follow all states before them */
    t->st[0].child = 1;
    for (uint32_t s = 1; s <= t->n_states; s++)
        t->st[s].child += t->st[s - 1].child;
    /* outputs: equal patterns are adjacent, so each state's run is id-sorted */
    for (size_t i = 0; i < n; i++)
        t->out_start[cur[i] + 1]++;
    for (uint32_t s = 1; s <= t->n_states; s++)
        t->out_start[s] += t->out_start[s - 1];
    /* out_start[s] is the fill cursor of s, which ends at s + 1's start;
     * one shift afterwards restores the starts */
    for (size_t i = 0; i < n; i++)
        t->out[t->out_start[cur[i]]++] = (struct guard_out){sp[i].id, sp[i].len};
    memmove(t->out_start + 1, t->out_start, t->n_states * sizeof *t->out_start);
    t->out_start[0] = 0;
    link_states(t);
done:
    free(lcp);
    free(cur);
    free(act);
    return st;
}

lethe_status guard_tables_build(const struct lethe_guard_ac *ac, struct guard_tables *out)
{
    size_t n = ac->n_pats;
    memset(out, 0, sizeof *out);
    struct spat *sp = malloc((n ? n : 1) * sizeof *sp);
    if (!sp)
        return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu patterns", n);
    for (size_t i = 0; i < n; i++)
        sp[i] = (struct spat){ac->pool + ac->pats[i].off, ac->pats[i].len, ac->pats[i].id};
    qsort(sp, n, sizeof *sp, spat_cmp);
    lethe_status st = fill(out, sp, n);
    free(sp);
    return st;
}
