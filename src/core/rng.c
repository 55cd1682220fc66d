/* Philox4x32-10 and the draws built on it. */
#include "lethe/rng.h"
#include "lethe/status.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void lethe_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static void rng_refill(lethe_rng *r)
{
    uint32_t ctr[4] = {(uint32_t)r->block, (uint32_t)(r->block >> 32),
                       (uint32_t)r->stream, (uint32_t)(r->stream >> 32)};
    lethe_philox4x32(ctr, r->key, r->buf);
    r->block++;
    r->avail = 4;
}

lethe_rng lethe_rng_init(uint64_t seed, uint64_t stream)
{
    lethe_rng r = {{(uint32_t)seed, (uint32_t)(seed >> 32)}, stream, 0, {0, 0, 0, 0}, 0};
    return r;
}

void lethe_rng_seek(lethe_rng *r, uint64_t index)
{
    r->block = index / 4;
    r->avail = 0;
    unsigned skip = (unsigned)(index % 4);
    if (skip) {
        rng_refill(r);
        r->avail = 4 - (int)skip;
    }
}

uint32_t lethe_rng_u32(lethe_rng *r)
{
    if (r->avail == 0)
        rng_refill(r);
    return r->buf[4 - r->avail--];
}

uint64_t lethe_rng_u64(lethe_rng *r)
{
    uint64_t hi = lethe_rng_u32(r);
    return (hi << 32) | lethe_rng_u32(r);
}

double lethe_rng_uniform(lethe_rng *r)
{
    return (double)(lethe_rng_u64(r) >> 11) * 0x1.0p-53;
}

float lethe_rng_uniformf(lethe_rng *r)
{
    return (float)(lethe_rng_u32(r) >> 8) * 0x1.0p-24f;
}

double lethe_rng_normal(lethe_rng *r)
{
    double u1 = 1.0 - lethe_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = lethe_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t lethe_rng_below(lethe_rng *r, uint32_t n)
{
    LETHE_ASSERT(n > 0);
    /* Lemire's multiply-shift with rejection of the biased low region. */
    uint64_t m = (uint64_t)lethe_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)lethe_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void lethe_rng_shuffle(lethe_rng *r, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = lethe_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

uint64_t lethe_rng_hash(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t out[4];
    lethe_philox4x32(ctr, key, out);
    return ((uint64_t)out[0] << 32) | out[1];
}
