/* The Aho-Corasick automaton of the target index: the pattern store, lazy
 * building, whole-text and streaming scans. The tables are built in
 * ac_build.c.
 *
 * Word boundaries without look-behind: the automaton reads the normalised
 * text between two virtual spaces, " " + text + " ", and holds each pattern
 * P as " " + P + " ". A hit of " P " is then exactly an occurrence of P whose
 * neighbours are spaces or the text's edges, and it is known as soon as the
 * space after P is read, which is what a stream needs. Normalisation is done
 * on the fly (one space per separator run, none at the very start), so a
 * stream fed in any chunks reads the same bytes as a whole-text scan. */
#include <stdlib.h>
#include <string.h>

#include "guard_impl.h"

lethe_guard_ac_t *lethe_guard_ac_new(void)
{
    lethe_guard_ac_t *ac = calloc(1, sizeof *ac);
    if (!ac) {
        lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&ac->lock, NULL) != 0) {
        free(ac);
        lethe_fail(LETHE_ERR_NOMEM, "guard index: cannot create a mutex");
        return NULL;
    }
    atomic_init(&ac->dirty, 1);
    return ac;
}

void lethe_guard_ac_free(lethe_guard_ac_t *ac)
{
    if (!ac)
        return;
    guard_tables_free(&ac->tab);
    pthread_mutex_destroy(&ac->lock);
    free(ac->pats);
    free(ac->pool);
    free(ac->set);
    free(ac);
}

/* ---- the pattern store -------------------------------------------------- */

/* The slot of (p, id) in the dedupe set: its entry, or the empty slot where
 * it would go. The set is never full (load <= 1/2). */
static size_t set_slot(const lethe_guard_ac_t *ac, const unsigned char *p, size_t len, uint32_t id)
{
    size_t mask = ac->set_cap - 1;
    for (size_t i = guard_hash(p, len, id) & mask;; i = (i + 1) & mask) {
        uint32_t e = ac->set[i];
        if (!e)
            return i;
        const struct guard_pat *q = &ac->pats[e - 1];
        if (q->id == id && q->len == len && !memcmp(ac->pool + q->off, p, len))
            return i;
    }
}

/* Refill the set from the patterns (after a resize or a removal). */
static void set_refill(lethe_guard_ac_t *ac)
{
    memset(ac->set, 0, ac->set_cap * sizeof *ac->set);
    for (size_t k = 0; k < ac->n_pats; k++) {
        const struct guard_pat *q = &ac->pats[k];
        ac->set[set_slot(ac, ac->pool + q->off, q->len, q->id)] = (uint32_t)k + 1;
    }
}

/* Room for one more pattern of len bytes in the pattern array, the pool and
 * the set. */
static lethe_status reserve(lethe_guard_ac_t *ac, size_t len)
{
    if (ac->n_pats == ac->pats_cap) {
        size_t cap = ac->pats_cap ? 2 * ac->pats_cap : 16;
        struct guard_pat *p = realloc(ac->pats, cap * sizeof *p);
        if (!p)
            return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu patterns", cap);
        ac->pats = p;
        ac->pats_cap = cap;
    }
    if (ac->pool_cap - ac->pool_len < len) {
        size_t cap = ac->pool_cap ? ac->pool_cap : 256;
        while (cap - ac->pool_len < len)
            cap *= 2;
        unsigned char *p = realloc(ac->pool, cap);
        if (!p)
            return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu bytes", cap);
        ac->pool = p;
        ac->pool_cap = cap;
    }
    if (2 * (ac->n_pats + 1) > ac->set_cap) {
        size_t cap = ac->set_cap ? 2 * ac->set_cap : 32;
        uint32_t *s = malloc(cap * sizeof *s);
        if (!s)
            return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory");
        free(ac->set);
        ac->set = s;
        ac->set_cap = cap;
        set_refill(ac);
    }
    return LETHE_OK;
}

static void mark_changed(lethe_guard_ac_t *ac)
{
    ac->generation++;
    atomic_store_explicit(&ac->dirty, 1, memory_order_release);
}

lethe_status guard_ac_add_normalized(lethe_guard_ac_t *ac, const unsigned char *p, size_t len,
                                     uint32_t id, int *added)
{
    if (added)
        *added = 0;
    if (len == 0)
        return lethe_fail(LETHE_ERR_INVALID, "guard index: a pattern is empty after normalisation");
    if (len > LETHE_GUARD_MAX_PATTERN)
        return lethe_fail(LETHE_ERR_INVALID, "guard index: a pattern of %zu bytes (at most %u)",
                          len, LETHE_GUARD_MAX_PATTERN);
    /* states <= 1 + sum (len + 2): keep that inside uint32 */
    if (ac->pool_len + len + 2 * (ac->n_pats + 1) >= GUARD_MAX_TOTAL)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "guard index: more than 2^31 pattern bytes");
    if (ac->set_cap) {
        size_t i = set_slot(ac, p, len, id);
        if (ac->set[i])
            return LETHE_OK;
    }
    lethe_status st = reserve(ac, len);
    if (st != LETHE_OK)
        return st;
    memcpy(ac->pool + ac->pool_len, p, len);
    struct guard_pat *q = &ac->pats[ac->n_pats];
    q->off = (uint32_t)ac->pool_len;
    q->len = (uint32_t)len;
    q->id = id;
    ac->set[set_slot(ac, p, len, id)] = (uint32_t)++ac->n_pats;
    ac->pool_len += len;
    mark_changed(ac);
    if (added)
        *added = 1;
    return LETHE_OK;
}

lethe_status lethe_guard_ac_add(lethe_guard_ac_t *ac, const void *pattern, size_t len,
                                uint32_t id)
{
    unsigned char *tmp = malloc(len ? len : 1);
    if (!tmp)
        return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu bytes", len);
    size_t n = lethe_guard_normalize(pattern, len, tmp);
    lethe_status st = guard_ac_add_normalized(ac, tmp, n, id, NULL);
    free(tmp);
    return st;
}

size_t lethe_guard_ac_remove(lethe_guard_ac_t *ac, uint32_t id)
{
    size_t kept = 0, pool = 0;
    for (size_t k = 0; k < ac->n_pats; k++) {
        struct guard_pat q = ac->pats[k];
        if (q.id == id)
            continue;
        /* compact the pool too; offsets only move down, so memmove is safe */
        memmove(ac->pool + pool, ac->pool + q.off, q.len);
        q.off = (uint32_t)pool;
        pool += q.len;
        ac->pats[kept++] = q;
    }
    size_t removed = ac->n_pats - kept;
    if (removed) {
        ac->n_pats = kept;
        ac->pool_len = pool;
        set_refill(ac);
        mark_changed(ac);
    }
    return removed;
}

size_t lethe_guard_ac_count(const lethe_guard_ac_t *ac) { return ac->n_pats; }

const unsigned char *lethe_guard_ac_pattern(const lethe_guard_ac_t *ac, size_t i, size_t *len,
                                            uint32_t *id)
{
    LETHE_ASSERT(i < ac->n_pats);
    *len = ac->pats[i].len;
    *id = ac->pats[i].id;
    return ac->pool + ac->pats[i].off;
}

size_t lethe_guard_ac_memory(const lethe_guard_ac_t *ac)
{
    const struct guard_tables *t = &ac->tab;
    size_t n = sizeof *ac + ac->pats_cap * sizeof *ac->pats + ac->pool_cap +
               ac->set_cap * sizeof *ac->set;
    if (t->n_states)
        n += ((size_t)t->n_states + 1) * (sizeof *t->st + sizeof *t->out_start) + t->n_states +
             (size_t)t->out_start[t->n_states] * sizeof *t->out;
    return n;
}

/* ---- building ------------------------------------------------------------ */

lethe_status lethe_guard_ac_build(lethe_guard_ac_t *ac)
{
    if (!atomic_load_explicit(&ac->dirty, memory_order_acquire))
        return LETHE_OK;
    lethe_status st = LETHE_OK;
    pthread_mutex_lock(&ac->lock);
    if (atomic_load_explicit(&ac->dirty, memory_order_relaxed)) {
        struct guard_tables tab;
        st = guard_tables_build(ac, &tab);
        if (st == LETHE_OK) {
            guard_tables_free(&ac->tab);
            ac->tab = tab;
            atomic_store_explicit(&ac->dirty, 0, memory_order_release);
        }
    }
    pthread_mutex_unlock(&ac->lock);
    return st;
}

/* ---- scanning ------------------------------------------------------------ */

/* Report the outputs of state s, reached after `pos` automaton bytes (the
 * last of them the space after the match). */
static size_t report(const struct guard_tables *t, uint32_t s, size_t pos,
                     lethe_guard_match_fn fn, void *ctx)
{
    size_t n = 0;
    for (uint32_t r = t->st[s].report; r; r = t->st[t->st[r].fail].report) {
        for (uint32_t k = t->out_start[r]; k < t->out_start[r + 1]; k++, n++) {
            if (!fn)
                continue;
            /* automaton byte i is normalised byte i - 1 */
            lethe_guard_match m = {t->out[k].id, pos - 2 - t->out[k].len, pos - 2};
            fn(ctx, &m);
        }
    }
    return n;
}

lethe_status lethe_guard_stream_init(lethe_guard_stream *st, lethe_guard_ac_t *ac)
{
    lethe_status s = lethe_guard_ac_build(ac);
    if (s != LETHE_OK)
        return s;
    st->ac = ac;
    st->generation = ac->generation;
    /* the virtual leading space; no pattern ends on it */
    st->state = guard_step(&ac->tab, 0, ' ');
    st->pos = 1;
    st->in_sep = 1;
    return LETHE_OK;
}

size_t lethe_guard_stream_feed(lethe_guard_stream *st, const void *text, size_t len,
                               lethe_guard_match_fn fn, void *ctx)
{
    const lethe_guard_ac_t *ac = st->ac;
    LETHE_ASSERT(st->generation == ac->generation);
    const struct guard_tables *t = &ac->tab;
    const unsigned char *s = text;
    uint32_t state = st->state;
    size_t pos = st->pos, n = 0;
    int in_sep = st->in_sep;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (guard_is_word_byte(c)) {
            c = guard_lower(c);
            in_sep = 0;
        } else if (in_sep) {
            continue; /* a run of separators is one space */
        } else {
            c = ' ';
            in_sep = 1;
        }
        state = guard_step(t, state, c);
        pos++;
        if (t->st[state].report)
            n += report(t, state, pos, fn, ctx);
    }
    st->state = state;
    st->pos = pos;
    st->in_sep = in_sep;
    return n;
}

size_t lethe_guard_stream_end(const lethe_guard_stream *st, lethe_guard_match_fn fn, void *ctx)
{
    LETHE_ASSERT(st->generation == st->ac->generation);
    if (st->in_sep)
        return 0; /* the closing space was read already, or the text is empty */
    const struct guard_tables *t = &st->ac->tab;
    return report(t, guard_step(t, st->state, ' '), st->pos + 1, fn, ctx);
}

lethe_status lethe_guard_ac_scan(lethe_guard_ac_t *ac, const void *text, size_t len,
                                 lethe_guard_match_fn fn, void *ctx, size_t *n_matches)
{
    lethe_guard_stream st;
    lethe_status s = lethe_guard_stream_init(&st, ac);
    if (s != LETHE_OK)
        return s;
    size_t n = lethe_guard_stream_feed(&st, text, len, fn, ctx);
    n += lethe_guard_stream_end(&st, fn, ctx);
    if (n_matches)
        *n_matches = n;
    return LETHE_OK;
}

struct find_ctx {
    lethe_guard_match *out;
    size_t cap, n;
};

static void find_one(void *ctx, const lethe_guard_match *m)
{
    struct find_ctx *f = ctx;
    if (f->n < f->cap)
        f->out[f->n] = *m;
    f->n++;
}

lethe_status lethe_guard_ac_find(lethe_guard_ac_t *ac, const void *text, size_t len,
                                 lethe_guard_match *out, size_t cap, size_t *n_matches)
{
    struct find_ctx f = {out, cap, 0};
    lethe_status s = lethe_guard_ac_scan(ac, text, len, find_one, &f, NULL);
    *n_matches = s == LETHE_OK ? f.n : 0;
    return s;
}
