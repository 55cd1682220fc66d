/* Pieces shared by the target index's files (internal to src/guard). */
#ifndef LETHE_GUARD_IMPL_H
#define LETHE_GUARD_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "lethe/guard_index.h"

/* Patterns and states are counted in uint32; this bound on the total leaves
 * room for the two wrapping spaces per pattern and the root. */
#define GUARD_MAX_TOTAL (1u << 31)

/* One stored pattern: its normalised bytes at pool + off. */
struct guard_pat {
    uint32_t off, len, id;
};

/* One output of a state: a pattern of `len` bytes for target `id`. */
struct guard_out {
    uint32_t id, len;
};

/* The automaton runs over " " + normalised text + " " and holds each pattern
 * as " " + pattern + " ", so a hit is a match at word boundaries and needs no
 * look-behind (see automaton.c). States are numbered breadth-first with each
 * state's children in byte order, so the children of s are the consecutive
 * states [st[s].child, st[s + 1].child) and their bytes are label[st[s].child
 * ..]: a transition is a search in a short byte run, with no edge array.
 * Breadth-first order also keeps the shallow states, where a scan of text
 * that mostly does not match spends its time, together in memory; what one
 * step reads of a state sits in one record. */
struct guard_state {
    uint32_t child;  /* the first child */
    uint32_t fail;   /* the longest proper suffix that is a state */
    uint32_t report; /* this state if it has outputs, else the nearest suffix
                        state (via fail) that has; 0 for none */
};

struct guard_tables {
    uint32_t n_states;
    struct guard_state *st; /* n_states + 1: the last one ends the children */
    unsigned char *label;   /* the byte on the edge into each state */
    uint32_t *out_start;    /* n_states + 1: outputs of s at out[out_start[s]..] */
    struct guard_out *out;
};

struct lethe_guard_ac {
    /* the patterns, in the order added: the source of truth */
    struct guard_pat *pats;
    size_t n_pats, pats_cap;
    unsigned char *pool;
    size_t pool_len, pool_cap;
    /* (bytes, id) -> pattern index + 1, open addressing (0 empty): dedupe */
    uint32_t *set;
    size_t set_cap;
    /* the built tables, valid when !dirty */
    struct guard_tables tab;
    atomic_int dirty;
    uint64_t generation; /* counts changes, so stale streams are caught */
    pthread_mutex_t lock; /* serialises lazy builds */
};

/* The state after reading byte c in state s: the child of s or of its
 * longest suffix state that has one, else the root. */
static inline uint32_t guard_step(const struct guard_tables *t, uint32_t s, unsigned char c)
{
    for (;;) {
        uint32_t lo = t->st[s].child, hi = t->st[s + 1].child;
        const unsigned char *lab = t->label;
        /* short runs (most states have one child) are searched in order */
        if (hi - lo <= 8) {
            for (uint32_t k = lo; k < hi; k++)
                if (lab[k] == c)
                    return k;
        } else {
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (lab[mid] < c)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < t->st[s + 1].child && lab[lo] == c)
                return lo;
        }
        if (s == 0)
            return 0;
        s = t->st[s].fail;
    }
}

/* Build ac->tab from ac's patterns (replacing the old tables on success). */
lethe_status guard_tables_build(const struct lethe_guard_ac *ac, struct guard_tables *out);
void guard_tables_free(struct guard_tables *tab);

/* Add an already normalised pattern; *added (may be NULL) is 0 when the
 * (pattern, id) pair was present. */
lethe_status guard_ac_add_normalized(lethe_guard_ac_t *ac, const unsigned char *p, size_t len,
                                     uint32_t id, int *added);

/* The same for the token trie (trie.c). */
lethe_status guard_trie_add(lethe_guard_trie_t *t, const uint32_t *seq, size_t n, uint32_t id,
                            int *added);

/* 1 for bytes kept by normalisation (letters, digits, bytes >= 0x80). */
static inline int guard_is_word_byte(unsigned char b)
{
    return b >= 0x80 || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') ||
           (b >= 'A' && b <= 'Z');
}

static inline unsigned char guard_lower(unsigned char b)
{
    return b >= 'A' && b <= 'Z' ? (unsigned char)(b + ('a' - 'A')) : b;
}

static inline uint64_t guard_hash(const unsigned char *p, size_t n, uint32_t id)
{
    uint64_t h = 0xcbf29ce484222325ull ^ id; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

/* Little-endian helpers for the serialisers. */
static inline void guard_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t guard_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The hash of the guard's n-gram features (the classifier's hashed
 * n-grams, the decoder's hashed word vectors): 64-bit FNV-1a over a kind
 * tag and the bytes, then MurmurHash3's finaliser. */
static inline uint64_t guard_ngram_hash(unsigned char tag, const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = (h ^ tag) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

#endif
