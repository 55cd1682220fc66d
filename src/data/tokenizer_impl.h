/* Pieces shared by the tokenizer's files (internal to src/data). */
#ifndef LETHE_DATA_TOKENIZER_IMPL_H
#define LETHE_DATA_TOKENIZER_IMPL_H

#include "lethe/tokenizer.h"

#define NO_ID UINT32_MAX
#define NO_PAIR UINT64_MAX

struct merge {
    uint32_t a, b, result;
};

struct lethe_tokenizer {
    /* tokens, indexed by id: bytes at pool + off[id], len[id] bytes (0: no token) */
    size_t id_cap, vocab_size, n_tokens;
    size_t *off;
    uint32_t *len;
    unsigned char *special;
    unsigned char *pool;
    size_t pool_len, pool_cap;
    /* bytes -> id of the non-special tokens: open addressing, NO_ID empty */
    uint32_t *bmap;
    size_t bmap_cap, bmap_n;
    /* merges in rank order, and (a << 32 | b) -> rank */
    struct merge *merges;
    size_t n_merges, merges_cap;
    uint64_t *pkeys;
    uint32_t *pranks;
    size_t pmap_cap;
    uint32_t byte_id[256]; /* the token of each single byte, NO_ID if none */
};

static inline uint64_t hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

static inline const unsigned char *tok_bytes(const lethe_tokenizer_t *t, uint32_t id)
{
    return t->pool + t->off[id];
}

/* The code point starting at s[i] (i < len) and its length in *n; -1 with
 * *n = 1 for a byte that does not start a well-formed UTF-8 sequence
 * (overlong forms, surrogates and values above U+10FFFF are not). */
int32_t tok_utf8_at(const unsigned char *s, size_t len, size_t i, size_t *n);

#endif
