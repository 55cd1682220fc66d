/* Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * Every draw is a pure function of (seed, stream, index): no hidden global
 * state, no rand(). A lethe_rng is a cursor over one stream; copying it forks
 * the cursor. lethe_rng_hash gives a single keyed value without a cursor, for
 * example to order samples by a keyed hash of their id (DESIGN §5). */
#ifndef LETHE_RNG_H
#define LETHE_RNG_H

#include <stdint.h>

#include "lethe/api.h"
LETHE_API_BEGIN

/* One Philox4x32-10 block: out = philox(ctr, key). */
void lethe_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

typedef struct lethe_rng {
    uint32_t key[2];   /* the seed */
    uint64_t stream;   /* high half of the counter */
    uint64_t block;    /* next block index, low half of the counter */
    uint32_t buf[4];   /* the current block */
    int avail;         /* unread words left in buf */
} lethe_rng;

/* A cursor at the start of stream `stream` under seed `seed`. */
lethe_rng lethe_rng_init(uint64_t seed, uint64_t stream);
/* Move the cursor to 32-bit word `index` of its stream. */
void lethe_rng_seek(lethe_rng *r, uint64_t index);

uint32_t lethe_rng_u32(lethe_rng *r);
uint64_t lethe_rng_u64(lethe_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double lethe_rng_uniform(lethe_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float lethe_rng_uniformf(lethe_rng *r);
/* Standard normal (Box-Muller on two uniforms). */
double lethe_rng_normal(lethe_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t lethe_rng_below(lethe_rng *r, uint32_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void lethe_rng_shuffle(lethe_rng *r, uint32_t *idx, uint32_t n);

/* A 64-bit keyed value of (seed, stream, index), independent of any cursor. */
uint64_t lethe_rng_hash(uint64_t seed, uint64_t stream, uint64_t index);

LETHE_API_END
#endif
