/* exp and the logistic function in plain arithmetic the compiler vectorises
 * inside `omp simd` loops (libm's expf and tanhf are scalar calls).
 *
 * lethe_vexpf: x = n ln 2 + r with n the nearest integer to x / ln 2 and
 * |r| <= ln 2 / 2 (ln 2 split in two parts, Cody-Waite), exp(r) by Cephes'
 * degree-7 polynomial, times 2^n built in the exponent bits. Arguments are
 * clamped to [-87, 88], so the result is always a normal float: below
 * exp(-87) ~ 1.6e-38 it is that value instead of a smaller one or 0, which
 * no sum of exponentials here can notice. Relative error under 2e-7 over the
 * range (checked against exp in double by the kernel tests).
 *
 * Only float +, -, *, / and integer bit operations, in the written order
 * (no -ffast-math), so a build gives the same bits at any thread count. */
#ifndef LETHE_VMATH_H
#define LETHE_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float lethe_vexpf(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    /* round x / ln 2 to the nearest integer: adding 1.5 * 2^23 leaves it in
     * the low mantissa bits */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* unsigned: a NaN x (a diverged model) gives a NaN p, and n's garbage
     * must not be a signed shift's undefined behaviour */
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* log-sum-exp of z[0..V) in double, from the largest value (-inf when
 * every value is -inf): the log-softmax's normaliser of generation and of
 * the guard's decoder, which must agree to the bit. */
static inline double lethe_vlogsumexp(const float *z, int V)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int v = 0; v < V; v++)
        mx = z[v] > mx ? z[v] : mx;
    if (!isfinite(mx))
        return mx;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V; v++)
        s += lethe_vexpf(z[v] - mx);
    return mx + log(s);
}

/* 1 / (1 + exp(-x)) */
static inline float lethe_vsigmoidf(float x)
{
    return 1.0f / (1.0f + lethe_vexpf(-x));
}

#endif
