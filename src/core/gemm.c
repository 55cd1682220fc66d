/* GEMM: a register-blocked AVX-512 kernel where the compiler targets
 * AVX-512, CBLAS elsewhere, and the reference loop both are tested against.
 *
 * Why a kernel of our own: lethe's products are small and skinny (a batch of
 * 16 rows against a 784 x 256 weight, a 3x3 convolution's 32 x 144 x 196),
 * where a general BLAS spends much of its time packing operands and, in the
 * Debian OpenBLAS on CPUs it does not recognise, runs 256-bit code. */
#include "lethe/gemm.h"
#include "lethe/status.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#ifdef __AVX512F__
#include <immintrin.h>

/* C tiles are TM rows by NV vectors of VL columns, accumulated in registers
 * over passes of at most KC values of k. Each step of a pass broadcasts one
 * value of op(A) per row and multiplies it into the NV vectors of one row of
 * op(B), with a fused multiply-add.
 *
 * op(A) is read in place: a row is a fixed stride apart from the next and a
 * step is a fixed stride along it, in either layout. op(B) is read in place
 * when its rows are contiguous (tb == 0); otherwise one panel of KC x TN
 * values at a time is copied into contiguous rows. When op(B) is transposed
 * and C has fewer rows than columns (but at least TM), the product is formed
 * as C^T = op(B)^T op(A)^T, so the smaller operand is the one copied. A
 * single row of C (a matrix-vector product) streams an in-place op(B) row
 * by row (gemv_block), or uses one-row tiles on copied panels.
 *
 * Every element of C is the sum, pass by pass (k split at multiples of KC),
 * of its products taken in order of k, so the value does not depend on the
 * route taken, on the tile an element falls in or on the other rows of C:
 * a sample's output does not depend on the batch it is computed in. */
#define VL 16                   /* floats in a vector */
#define TM 8                    /* rows of a C tile */
#define KC 256                  /* values of k in one pass */
#define MC 128                  /* rows of C per block (op(A) block stays in L2) */
#define NC 512                  /* columns of an in-place op(B) block (a multiple of 2 VL) */
#define PARALLEL_MIN (1L << 24) /* multiply-adds below which one thread runs */
#define PAR_BLOCKS 8            /* blocks a large product is split into, at least */
#define GV_V 8                  /* vectors of columns a matrix-vector pass holds */
#define GV_N 1024               /* columns per thread's share of a matrix-vector product */
#define GEMV_PARALLEL_MIN (1L << 20) /* matrix-vector products: multiply-adds, ditto */

/* The problem after any swap: C (m x n, row stride ldc; stored transposed
 * when tc, i.e. element (i, j) at c[j * ldc + i]) = alpha op(A) op(B) + beta C,
 * with op(A)(i, p) = a[i * ars + p * aps] and op(B)(p, j) = b[p * bps + j * bjs]. */
typedef struct prob {
    const float *a;
    long ars, aps;
    const float *b;
    long bps, bjs;
    float *c;
    long ldc;
    int tc;
    int m, n, k;
    float alpha, beta;
} prob;

/* acc = the product of an R x kc block of op(A) (rows at arow[r], steps aps
 * apart; R is TM, or 1 for a single row) and a kc x (NV * VL) panel of op(B)
 * (rows bs apart, columns beyond `mask` zero). Inlined with constant R, NV
 * and aps == 1 where it applies. Each lane of an accumulator is its own
 * chain of fused multiply-adds over k, so R does not change any value. */
static inline __attribute__((always_inline)) void
tile_product(__m512 acc[TM][2], const int R, const int NV, const float *const arow[TM], long aps,
             const float *b, long bs, const __mmask16 mask[2], int kc)
{
    /* local accumulators, so that they stay in registers through the loop */
    __m512 c[TM][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            c[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m512 bv[2];
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_maskz_loadu_ps(mask[v], b + (long)p * bs + v * VL);
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(arow[r][(long)p * aps]);
            for (int v = 0; v < NV; v++)
                c[r][v] = _mm512_fmadd_ps(av, bv[v], c[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            acc[r][v] = c[r][v];
}

/* C tile (mr x nr at i0, j0) = alpha acc + beta C; beta == 0 does not read C. */
static void tile_store(const prob *P, __m512 acc[TM][2], int NV, int i0, int j0, int mr,
                       int nr, const __mmask16 mask[2], float beta)
{
    __m512 va = _mm512_set1_ps(P->alpha), vb = _mm512_set1_ps(beta);
    if (!P->tc) {
        for (int r = 0; r < mr; r++) {
            float *c = P->c + (long)(i0 + r) * P->ldc + j0;
            for (int v = 0; v < NV; v++) {
                __m512 x = _mm512_mul_ps(va, acc[r][v]);
                if (beta != 0.0f)
                    x = _mm512_add_ps(x, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mask[v],
                                                                                c + v * VL)));
                _mm512_mask_storeu_ps(c + v * VL, mask[v], x);
            }
        }
        return;
    }
    /* transposed C: tile row r is column i0 + r of the stored matrix */
    float t[TM][2 * VL];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(t[r] + v * VL, acc[r][v]);
    for (int j = 0; j < nr; j++) {
        float *c = P->c + (long)(j0 + j) * P->ldc + i0;
        for (int r = 0; r < mr; r++) {
            float x = P->alpha * t[r][j];
            c[r] = beta != 0.0f ? x + beta * c[r] : x;
        }
    }
}

/* Transpose the 16 x 16 block held in r[0..16) (row i in r[i]) in place:
 * interleave pairs of rows, then pairs of pairs, then 128-bit lanes twice. */
static inline void transpose16(__m512 r[VL])
{
    __m512 t[VL];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
    }
}

/* pack[p * TN + j] = element p of column j, for p < kc and j < nr, where
 * column j is contiguous at src + j * bjs; 16 x 16 blocks are transposed in
 * registers. Columns from nr up to the next multiple of 16 are zero. */
static void pack_panel(float *pack, int TN, const float *src, long bjs, int kc, int nr)
{
    for (int j0 = 0; j0 < nr; j0 += VL)
        for (int p0 = 0; p0 < kc; p0 += VL) {
            int np = kc - p0 < VL ? kc - p0 : VL;
            __mmask16 pm = np == VL ? (__mmask16)0xFFFF : (__mmask16)((1u << np) - 1);
            __m512 r[VL];
            for (int j = 0; j < VL; j++)
                r[j] = j0 + j < nr ? _mm512_maskz_loadu_ps(pm, src + (long)(j0 + j) * bjs + p0)
                                   : _mm512_setzero_ps();
            transpose16(r);
            for (int p = 0; p < np; p++)
                _mm512_storeu_ps(pack + (long)(p0 + p) * TN + j0, r[p]);
        }
}

/* One tile of one pass: C (mr x nr at i0, j0) from k in [p0, p0 + kc), with
 * op(B)'s panel rows at b, bs apart. */
static void gemm_tile(const prob *P, int i0, int j0, int p0, int kc, const float *b, long bs,
                      float beta)
{
    const int NV = P->n <= VL ? 1 : 2, TN = NV * VL;
    int mr = P->m - i0 < TM ? P->m - i0 : TM, nr = P->n - j0 < TN ? P->n - j0 : TN;
    __mmask16 mask[2];
    for (int v = 0; v < 2; v++) {
        int cols = nr - v * VL;
        mask[v] = cols >= VL ? (__mmask16)0xFFFF : cols > 0 ? (__mmask16)((1u << cols) - 1) : 0;
    }
    const float *arow[TM];
    for (int r = 0; r < TM; r++) /* rows past the end repeat the first */
        arow[r] = P->a + (long)(i0 + (r < mr ? r : 0)) * P->ars + (long)p0 * P->aps;
    __m512 acc[TM][2];
    if (mr == 1 && NV == 1)
        tile_product(acc, 1, 1, arow, P->aps, b, bs, mask, kc);
    else if (mr == 1)
        tile_product(acc, 1, 2, arow, P->aps, b, bs, mask, kc);
    else if (NV == 1 && P->aps == 1)
        tile_product(acc, TM, 1, arow, 1, b, bs, mask, kc);
    else if (NV == 1)
        tile_product(acc, TM, 1, arow, P->aps, b, bs, mask, kc);
    else if (P->aps == 1)
        tile_product(acc, TM, 2, arow, 1, b, bs, mask, kc);
    else
        tile_product(acc, TM, 2, arow, P->aps, b, bs, mask, kc);
    tile_store(P, acc, NV, i0, j0, mr, nr, mask, beta);
}

/* Rows [i_begin, i_end) and columns [j_begin, j_end) of C over all of k;
 * j_begin is a multiple of the tile width. */
static void gemm_block(const prob *P, int i_begin, int i_end, int j_begin, int j_end)
{
    const int TN = P->n <= VL ? VL : 2 * VL;
    float pack[KC * 2 * VL] __attribute__((aligned(64)));
    for (int p0 = 0; p0 < P->k; p0 += KC) {
        int kc = P->k - p0 < KC ? P->k - p0 : KC;
        float beta = p0 == 0 ? P->beta : 1.0f;
        if (P->bjs == 1) {
            /* op(B) in place, NC columns at a time (a KC x NC block stays in
             * L2 while every row of C in the range passes over it) */
            for (int jb = j_begin; jb < j_end; jb += NC) {
                int je = jb + NC < j_end ? jb + NC : j_end;
                for (int i0 = i_begin; i0 < i_end; i0 += TM)
                    for (int j0 = jb; j0 < je; j0 += TN)
                        gemm_tile(P, i0, j0, p0, kc, P->b + (long)p0 * P->bps + j0, P->bps,
                                  beta);
            }
            continue;
        }
        /* op(B) copied a panel at a time into contiguous rows, then used by
         * every row of C (its columns are contiguous here: bps == 1) */
        for (int j0 = j_begin; j0 < j_end; j0 += TN) {
            int nr = P->n - j0 < TN ? P->n - j0 : TN;
            pack_panel(pack, TN, P->b + p0 + (long)j0 * P->bjs, P->bjs, kc, nr);
            for (int i0 = i_begin; i0 < i_end; i0 += TM)
                gemm_tile(P, i0, j0, p0, kc, pack, TN, beta);
        }
    }
}

/* One row of C from op(B) in place (a matrix-vector product, the shape of
 * generation): GV_V vectors of columns at a time, op(B) streamed row by row
 * through a pass with the accumulators in registers. Each element is the
 * same chain of fused multiply-adds, pass by pass, as in the tiles, and is
 * stored the same way, so the value is the one the tiles give. */
static void gemv_block(const prob *P, int j_begin, int j_end)
{
    const __m512 va = _mm512_set1_ps(P->alpha);
    for (int p0 = 0; p0 < P->k; p0 += KC) {
        int kc = P->k - p0 < KC ? P->k - p0 : KC;
        const __m512 vb = _mm512_set1_ps(p0 == 0 ? P->beta : 1.0f);
        const int add = p0 > 0 || P->beta != 0.0f;
        for (int j0 = j_begin; j0 < j_end; j0 += GV_V * VL) {
            __mmask16 mk[GV_V];
            for (int v = 0; v < GV_V; v++) {
                int cols = j_end - j0 - v * VL;
                mk[v] = cols >= VL ? (__mmask16)0xFFFF
                        : cols > 0 ? (__mmask16)((1u << cols) - 1) : (__mmask16)0;
            }
            __m512 acc[GV_V];
            for (int v = 0; v < GV_V; v++)
                acc[v] = _mm512_setzero_ps();
            const float *b = P->b + (long)p0 * P->bps + j0;
            for (int p = 0; p < kc; p++, b += P->bps) {
                __m512 a = _mm512_set1_ps(P->a[(long)(p0 + p) * P->aps]);
                for (int v = 0; v < GV_V; v++)
                    acc[v] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(mk[v], b + v * VL), acc[v]);
            }
            float *c = P->c + j0;
            for (int v = 0; v < GV_V; v++) {
                __m512 x = _mm512_mul_ps(va, acc[v]);
                if (add)
                    x = _mm512_add_ps(x, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk[v], c + v * VL)));
                _mm512_mask_storeu_ps(c + v * VL, mk[v], x);
            }
        }
    }
}

static void gemm_kernel(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                        int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    prob P = {.c = C, .ldc = ldc, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta};
    if (tb && m < n && m >= TM) {
        /* C^T (n x m) = op(B)^T op(A)^T: op(B)^T(j, p) = B[j * ldb + p] is read
         * in place, op(A)^T(p, i) is the smaller operand, copied by panels */
        P.a = B, P.ars = ldb, P.aps = 1;
        P.b = A, P.bps = ta ? lda : 1, P.bjs = ta ? 1 : lda;
        P.tc = 1, P.m = n, P.n = m;
    } else {
        P.a = A, P.ars = ta ? 1 : lda, P.aps = ta ? lda : 1;
        P.b = B, P.bps = tb ? 1 : ldb, P.bjs = tb ? ldb : 1;
    }
    /* (a parallel region costs system calls even when its `if` is false, so
     * small products do not enter one) */
    if (P.m == 1 && P.bjs == 1 && !P.tc) {
        int nb = (P.n + GV_N - 1) / GV_N;
        if ((long)n * k <= GEMV_PARALLEL_MIN || nb == 1) {
            gemv_block(&P, 0, P.n);
            return;
        }
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nb; blk++)
            gemv_block(&P, blk * GV_N, (blk + 1) * GV_N < P.n ? (blk + 1) * GV_N : P.n);
        return;
    }
    /* Blocks of MC rows, and of columns too when there are few row blocks
     * (at least PAR_BLOCKS in all where the columns allow); threads share
     * them out only for large products. Each element is computed the same way
     * whichever block or thread it falls to. */
    const int TN = P.n <= VL ? VL : 2 * VL;
    int bm = (P.m + MC - 1) / MC, tiles = (P.n + TN - 1) / TN, bn = 1;
    if (bm < PAR_BLOCKS)
        bn = (PAR_BLOCKS + bm - 1) / bm < tiles ? (PAR_BLOCKS + bm - 1) / bm : tiles;
    int jw = (tiles + bn - 1) / bn * TN;
    bn = (P.n + jw - 1) / jw;
    if ((long)m * n * k <= PARALLEL_MIN || bm * bn == 1) {
        gemm_block(&P, 0, P.m, 0, P.n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < bm * bn; blk++) {
        int i0 = blk / bn * MC, j0 = blk % bn * jw;
        gemm_block(&P, i0, i0 + MC < P.m ? i0 + MC : P.m, j0, j0 + jw < P.n ? j0 + jw : P.n);
    }
}
#endif /* __AVX512F__ */

#ifndef __AVX512F__
/* lethe's own threads (OpenMP) and OpenBLAS's pool, side by side, spin
 * against each other: a TOFU evaluation ran twice as long. So OpenBLAS runs
 * one thread (unless OPENBLAS_NUM_THREADS says otherwise) and a large
 * product is split into blocks of CB_ROWS rows of C, or of CB_COLS columns
 * when C has few rows, which lethe's threads share. The blocks depend on the
 * shape alone, so the bits do not depend on the number of threads. */
#define CB_ROWS 64
#define CB_COLS 256
#define CB_PARALLEL_MIN (1L << 24) /* multiply-adds below which one thread runs */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_one_thread(void)
{
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
}

static void gemm_cblas(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    pthread_once(&blas_once, blas_one_thread);
    const CBLAS_TRANSPOSE oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
    const int by_rows = m >= 2 * CB_ROWS;
    const int blocks = by_rows ? (m + CB_ROWS - 1) / CB_ROWS : (n + CB_COLS - 1) / CB_COLS;
    if ((long)m * n * k <= CB_PARALLEL_MIN || blocks < 2) {
        cblas_sgemm(CblasRowMajor, oa, ob, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        if (by_rows) {
            const int i0 = blk * CB_ROWS, mb = m - i0 < CB_ROWS ? m - i0 : CB_ROWS;
            cblas_sgemm(CblasRowMajor, oa, ob, mb, n, k, alpha, ta ? A + i0 : A + (long)i0 * lda,
                        lda, B, ldb, beta, C + (long)i0 * ldc, ldc);
        } else {
            const int j0 = blk * CB_COLS, nb = n - j0 < CB_COLS ? n - j0 : CB_COLS;
            cblas_sgemm(CblasRowMajor, oa, ob, m, nb, k, alpha, A, lda,
                        tb ? B + (long)j0 * ldb : B + j0, ldb, beta, C + j0, ldc);
        }
    }
}
#endif

void lethe_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc)
{
    LETHE_ASSERT(m >= 0 && n >= 0 && k >= 0);
    if (m == 0 || n == 0)
        return;
    if (k == 0 || alpha == 0.0f) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
#ifdef __AVX512F__
    gemm_kernel(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    gemm_cblas(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void lethe_gemv(int tb, int n, int k, float alpha, const float *a, const float *B, int ldb,
                float beta, float *c)
{
#ifdef __AVX512F__
    lethe_gemm(0, tb, 1, n, k, alpha, a, k, B, ldb, beta, c, n);
#else
    LETHE_ASSERT(n >= 0 && k >= 0);
    if (n == 0 || k == 0 || alpha == 0.0f) {
        lethe_gemm(0, tb, 1, n, k, alpha, a, k, B, ldb, beta, c, n);
        return;
    }
    pthread_once(&blas_once, blas_one_thread);
    /* beta 0: c is cleared first, as some OpenBLAS versions scale it by 0
     * and so keep a NaN of uninitialised memory */
    if (beta == 0.0f)
        memset(c, 0, sizeof *c * (size_t)n);
    cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n, alpha, B,
                ldb, a, 1, beta, c, 1);
#endif
}

int lethe_flush_subnormals(void)
{
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return 1;
#else
    return 0;
#endif
}

void lethe_gemm_ref(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) {
                float a = ta ? A[(long)p * lda + i] : A[(long)i * lda + p];
                float b = tb ? B[(long)j * ldb + p] : B[(long)p * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(long)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}
