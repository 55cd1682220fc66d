/* The token trie of the target index: sequences of token ids, and cursors
 * that the constrained decoder advances one generated token at a time.
 *
 * The token alphabet is a whole vocabulary (tens of thousands of ids), so
 * edges live in one open-addressing hash table keyed by (parent, token)
 * rather than in per-node arrays. The stored sequences are the source of
 * truth: remove() drops some and re-inserts the rest into the same arrays,
 * which are large enough already, so it needs no allocation. */
#include <stdlib.h>
#include <string.h>

#include "guard_impl.h"

#define NO_KEY UINT64_MAX

struct trie_seq {
    uint32_t off, n, id;
};

struct trie_node {
    uint32_t n_children;
    uint32_t n_end;   /* stored sequences ending here */
    uint32_t min_end; /* the smallest of their ids */
};

struct lethe_guard_trie {
    /* the sequences in the order added: tokens at pool + off */
    struct trie_seq *seqs;
    size_t n_seqs, seqs_cap;
    uint32_t *pool;
    size_t pool_len, pool_cap;
    /* (tokens, id) -> sequence index + 1, open addressing (0 empty) */
    uint32_t *set;
    size_t set_cap;
    /* nodes, 0 the root; edges (parent << 32 | token) -> child */
    struct trie_node *nodes;
    size_t n_nodes, nodes_cap;
    uint64_t *ekey;
    uint32_t *eval;
    size_t n_edges, edge_cap;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t seq_hash(const uint32_t *s, size_t n, uint32_t id)
{
    uint64_t h = mix64(id ^ ((uint64_t)n << 32));
    for (size_t i = 0; i < n; i++)
        h = mix64(h ^ s[i]);
    return h;
}

lethe_guard_trie_t *lethe_guard_trie_new(void)
{
    lethe_guard_trie_t *t = calloc(1, sizeof *t);
    if (t)
        t->nodes = calloc(1, sizeof *t->nodes);
    if (!t || !t->nodes) {
        free(t);
        lethe_fail(LETHE_ERR_NOMEM, "guard trie: out of memory");
        return NULL;
    }
    t->n_nodes = t->nodes_cap = 1;
    return t;
}

void lethe_guard_trie_free(lethe_guard_trie_t *t)
{
    if (!t)
        return;
    free(t->seqs);
    free(t->pool);
    free(t->set);
    free(t->nodes);
    free(t->ekey);
    free(t->eval);
    free(t);
}

/* ---- the edge table and the sequence set ---------------------------------- */

static size_t edge_slot(const lethe_guard_trie_t *t, uint64_t key)
{
    size_t mask = t->edge_cap - 1;
    size_t i = mix64(key) & mask;
    while (t->ekey[i] != NO_KEY && t->ekey[i] != key)
        i = (i + 1) & mask;
    return i;
}

/* The child of node by token, or 0 (the root is nobody's child). */
static uint32_t child_of(const lethe_guard_trie_t *t, uint32_t node, uint32_t token)
{
    if (!t->n_edges)
        return 0;
    size_t i = edge_slot(t, (uint64_t)node << 32 | token);
    return t->ekey[i] == NO_KEY ? 0 : t->eval[i];
}

static size_t set_slot(const lethe_guard_trie_t *t, const uint32_t *s, size_t n, uint32_t id)
{
    size_t mask = t->set_cap - 1;
    for (size_t i = seq_hash(s, n, id) & mask;; i = (i + 1) & mask) {
        uint32_t e = t->set[i];
        if (!e)
            return i;
        const struct trie_seq *q = &t->seqs[e - 1];
        if (q->id == id && q->n == n && !memcmp(t->pool + q->off, s, n * sizeof *s))
            return i;
    }
}

static void set_refill(lethe_guard_trie_t *t)
{
    memset(t->set, 0, t->set_cap * sizeof *t->set);
    for (size_t k = 0; k < t->n_seqs; k++) {
        const struct trie_seq *q = &t->seqs[k];
        t->set[set_slot(t, t->pool + q->off, q->n, q->id)] = (uint32_t)k + 1;
    }
}

/* Put the path of sequence k into the nodes and edges (room is reserved). */
static void insert_path(lethe_guard_trie_t *t, const struct trie_seq *q)
{
    uint32_t node = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        uint64_t key = (uint64_t)node << 32 | t->pool[q->off + i];
        size_t slot = edge_slot(t, key);
        if (t->ekey[slot] == NO_KEY) {
            t->ekey[slot] = key;
            t->eval[slot] = (uint32_t)t->n_nodes;
            t->nodes[t->n_nodes] = (struct trie_node){0, 0, 0};
            t->nodes[node].n_children++;
            t->n_nodes++;
            t->n_edges++;
        }
        node = t->eval[slot];
    }
    struct trie_node *e = &t->nodes[node];
    if (!e->n_end || q->id < e->min_end)
        e->min_end = q->id;
    e->n_end++;
}

/* Empty the nodes and edges and insert every stored sequence again. */
static void rebuild_paths(lethe_guard_trie_t *t)
{
    t->nodes[0] = (struct trie_node){0, 0, 0};
    t->n_nodes = 1;
    t->n_edges = 0;
    for (size_t i = 0; i < t->edge_cap; i++)
        t->ekey[i] = NO_KEY;
    for (size_t k = 0; k < t->n_seqs; k++)
        insert_path(t, &t->seqs[k]);
}

/* Move the edges into the tables k and v of cap slots (node numbers stay). */
static void rehash(lethe_guard_trie_t *t, uint64_t *k, uint32_t *v, size_t cap)
{
    uint64_t *ok = t->ekey;
    uint32_t *ov = t->eval;
    size_t ocap = t->edge_cap;
    t->ekey = k;
    t->eval = v;
    t->edge_cap = cap;
    for (size_t i = 0; i < cap; i++)
        k[i] = NO_KEY;
    for (size_t i = 0; i < ocap; i++) {
        if (ok[i] == NO_KEY)
            continue;
        size_t slot = edge_slot(t, ok[i]);
        k[slot] = ok[i];
        v[slot] = ov[i];
    }
    free(ok);
    free(ov);
}

/* Grow *p (an array of *cap elements of `size` bytes) to at least `need`. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Room for one more sequence of n tokens, its nodes and its edges. */
static lethe_status reserve(lethe_guard_trie_t *t, size_t n)
{
    if (grow((void **)&t->seqs, &t->seqs_cap, t->n_seqs + 1, sizeof *t->seqs) ||
        grow((void **)&t->pool, &t->pool_cap, t->pool_len + n, sizeof *t->pool) ||
        grow((void **)&t->nodes, &t->nodes_cap, t->n_nodes + n, sizeof *t->nodes))
        return lethe_fail(LETHE_ERR_NOMEM, "guard trie: out of memory");
    if (2 * (t->n_seqs + 1) > t->set_cap) {
        size_t cap = t->set_cap ? 2 * t->set_cap : 32;
        uint32_t *s = malloc(cap * sizeof *s);
        if (!s)
            return lethe_fail(LETHE_ERR_NOMEM, "guard trie: out of memory");
        free(t->set);
        t->set = s;
        t->set_cap = cap;
        set_refill(t);
    }
    if (2 * (t->n_edges + n) > t->edge_cap) {
        size_t cap = t->edge_cap ? t->edge_cap : 64;
        while (2 * (t->n_edges + n) > cap)
            cap *= 2;
        uint64_t *k = malloc(cap * sizeof *k);
        uint32_t *v = malloc(cap * sizeof *v);
        if (!k || !v) {
            free(k);
            free(v);
            return lethe_fail(LETHE_ERR_NOMEM, "guard trie: out of memory for %zu edges", cap);
        }
        rehash(t, k, v, cap);
    }
    return LETHE_OK;
}

/* ---- the public calls ------------------------------------------------------- */

lethe_status guard_trie_add(lethe_guard_trie_t *t, const uint32_t *seq, size_t n, uint32_t id,
                            int *added)
{
    if (added)
        *added = 0;
    if (n == 0 || n > LETHE_GUARD_MAX_SEQUENCE)
        return lethe_fail(LETHE_ERR_INVALID, "guard trie: a sequence of %zu tokens (1 to %u)", n,
                          LETHE_GUARD_MAX_SEQUENCE);
    if (t->pool_len + n >= GUARD_MAX_TOTAL)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "guard trie: more than 2^31 tokens");
    if (t->set_cap && t->set[set_slot(t, seq, n, id)])
        return LETHE_OK;
    lethe_status st = reserve(t, n);
    if (st != LETHE_OK)
        return st;
    struct trie_seq *q = &t->seqs[t->n_seqs];
    *q = (struct trie_seq){(uint32_t)t->pool_len, (uint32_t)n, id};
    memcpy(t->pool + t->pool_len, seq, n * sizeof *seq);
    t->pool_len += n;
    t->set[set_slot(t, seq, n, id)] = (uint32_t)++t->n_seqs;
    insert_path(t, q);
    if (added)
        *added = 1;
    return LETHE_OK;
}

lethe_status lethe_guard_trie_add(lethe_guard_trie_t *t, const uint32_t *seq, size_t n,
                                  uint32_t id)
{
    return guard_trie_add(t, seq, n, id, NULL);
}

size_t lethe_guard_trie_remove(lethe_guard_trie_t *t, uint32_t id)
{
    size_t kept = 0, pool = 0;
    for (size_t k = 0; k < t->n_seqs; k++) {
        struct trie_seq q = t->seqs[k];
        if (q.id == id)
            continue;
        memmove(t->pool + pool, t->pool + q.off, q.n * sizeof *t->pool);
        q.off = (uint32_t)pool;
        pool += q.n;
        t->seqs[kept++] = q;
    }
    size_t removed = t->n_seqs - kept;
    if (removed) {
        t->n_seqs = kept;
        t->pool_len = pool;
        set_refill(t);
        rebuild_paths(t);
    }
    return removed;
}

size_t lethe_guard_trie_count(const lethe_guard_trie_t *t) { return t->n_seqs; }

const uint32_t *lethe_guard_trie_sequence(const lethe_guard_trie_t *t, size_t i, size_t *n,
                                          uint32_t *id)
{
    LETHE_ASSERT(i < t->n_seqs);
    *n = t->seqs[i].n;
    *id = t->seqs[i].id;
    return t->pool + t->seqs[i].off;
}

size_t lethe_guard_trie_advance(const lethe_guard_trie_t *t, const uint32_t *cur, size_t n_cur,
                                uint32_t token, uint32_t *next, size_t *n_ended,
                                uint32_t *ended_id)
{
    size_t k = 0, ended = 0;
    uint32_t best = 0;
    /* j == n_cur is the fresh cursor at the root; next[k] with k <= j never
     * overwrites a cursor not yet read, so next may be cur */
    for (size_t j = 0; j <= n_cur; j++) {
        uint32_t node = j < n_cur ? cur[j] : 0;
        LETHE_ASSERT(node < t->n_nodes);
        uint32_t c = child_of(t, node, token);
        if (!c)
            continue;
        const struct trie_node *e = &t->nodes[c];
        if (e->n_end) {
            if (!ended || e->min_end < best)
                best = e->min_end;
            ended++;
        }
        if (e->n_children) /* a leaf cannot grow: drop the cursor */
            next[k++] = c;
    }
    if (n_ended)
        *n_ended = ended;
    if (ended && ended_id)
        *ended_id = best;
    return k;
}
