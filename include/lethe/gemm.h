/* The one matrix-multiply entry point (DESIGN §4.6).
 *
 * Row-major: C (m x n) = alpha * op(A) * op(B) + beta * C, where op(A) is
 * m x k (A is m x k, or k x m when ta is nonzero), op(B) is k x n (B is k x n,
 * or n x k when tb is nonzero); lda, ldb, ldc are the row strides of A, B, C
 * as stored. beta == 0 overwrites C without reading it (NaN in C is ignored).
 *
 * Built for AVX-512, lethe's own kernel computes it: every element of C is
 * then summed in the same order whatever m, n and the other rows are, so a
 * sample's output does not depend on the batch it is in, nor on the thread
 * count (threads share out row blocks of large products only). Elsewhere
 * CBLAS computes it. */
#ifndef LETHE_GEMM_H
#define LETHE_GEMM_H

#include "lethe/api.h"
LETHE_API_BEGIN

void lethe_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* One row: c (n) = alpha * a op(B) + beta * c, a of k values; lethe_gemm
 * with m = 1, for decoding, where one token's row multiplies each weight
 * matrix. Built for AVX-512 it is lethe_gemm's one-row route, bit for bit.
 * Elsewhere it is CBLAS's sgemv, which reads B in place where sgemm would
 * first copy all of it into panels to use them once (a decoding step of a
 * 90M model took twice as long); its bits may then differ from those of a
 * row of lethe_gemm's. */
void lethe_gemv(int tb, int n, int k, float alpha, const float *a, const float *B, int ldb,
                float beta, float *c);

/* Flush subnormal floats to zero (x86's FTZ and DAZ) in the calling thread
 * and in every thread it creates afterwards, OpenMP's pool included if it
 * has not started. Arithmetic on subnormals is many times slower on x86, and
 * training on text a model finds unlikely makes them (probabilities near
 * 1e-38 divided by the token count): a 10-step NPO run on unseen text took
 * 149 s with them and 15 s without. Values below 1.2e-38 become 0, which no
 * loss or update here can notice. lethe's command line calls it first; a
 * program embedding the library may too, before it starts threads. Returns
 * 1 when set, 0 where the processor has no such mode. */
int lethe_flush_subnormals(void);

/* The plain triple loop, accumulating in double: the test oracle. */
void lethe_gemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

LETHE_API_END
#endif
