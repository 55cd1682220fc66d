/* Core module tests: status, rng, memory, gemm, file io, progress. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "../test.h"
#include "lethe/fileio.h"
#include "lethe/gemm.h"
#include "lethe/mem.h"
#include "lethe/sha256.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/rundir.h"

TEST(status_fail_sets_detail)
{
    CHECK(lethe_fail(LETHE_ERR_FORMAT, "x.csv: line %d: bad", 3) == LETHE_ERR_FORMAT);
    CHECK(!strcmp(lethe_error_detail(), "x.csv: line 3: bad"));
    lethe_error_clear();
    CHECK(lethe_error_detail()[0] == '\0');
    for (int s = LETHE_OK; s <= LETHE_ERR_FAILED; s++)
        CHECK(strcmp(lethe_strerror((lethe_status)s), "unknown status") != 0);
}

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
static int running_under_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

/* Flushing subnormals turns a product below FLT_MIN into 0 in this thread
 * and in a thread started afterwards; the test restores the mode. */
__attribute__((noinline)) static void *tiny_product(void *out)
{
    volatile float a = 1e-38f, b = 1e-3f;
    *(float *)out = a * b;
    return NULL;
}

TEST(gemm_flush_subnormals)
{
#if defined(__SSE__)
    unsigned saved = _mm_getcsr();
    float before = 1, after = 1, child = 1;
    tiny_product(&before);
    CHECK(before > 0.0f);
    CHECK(lethe_flush_subnormals() == 1);
    tiny_product(&after);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, tiny_product, &child) == 0);
    pthread_join(t, NULL);
    _mm_setcsr(saved);
    if (running_under_valgrind()) /* memcheck does not emulate FTZ/DAZ */
        return;
    CHECK(after == 0.0f && child == 0.0f);
#else
    CHECK(lethe_flush_subnormals() == 0);
#endif
}

/* Known answers from the Random123 distribution's kat_vectors. */
TEST(rng_philox_known_answers)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        lethe_philox4x32(kat[i], kat[i] + 4, out);
        for (int j = 0; j < 4; j++)
            CHECK_MSG(out[j] == kat[i][6 + j], "vector %d word %d: %08x != %08x", i, j,
                      out[j], kat[i][6 + j]);
    }
}

TEST(rng_streams_are_pure_functions)
{
    lethe_rng a = lethe_rng_init(42, 7), b = lethe_rng_init(42, 7), c = lethe_rng_init(42, 8);
    uint32_t first[10];
    int differ = 0;
    for (int i = 0; i < 10; i++) {
        first[i] = lethe_rng_u32(&a);
        CHECK(first[i] == lethe_rng_u32(&b));
        differ += first[i] != lethe_rng_u32(&c);
    }
    CHECK(differ >= 9);
    for (uint64_t k = 0; k < 10; k++) { /* seek reproduces any position */
        lethe_rng s = lethe_rng_init(42, 7);
        lethe_rng_seek(&s, k);
        CHECK(lethe_rng_u32(&s) == first[k]);
    }
    /* the cursor's words are the block function's words */
    uint32_t ctr[4] = {0, 0, 7, 0}, key[2] = {42, 0}, out[4];
    lethe_philox4x32(ctr, key, out);
    CHECK(out[0] == first[0] && out[3] == first[3]);
    CHECK(lethe_rng_hash(1, 2, 3) == lethe_rng_hash(1, 2, 3));
    CHECK(lethe_rng_hash(1, 2, 3) != lethe_rng_hash(1, 2, 4));
}

TEST(rng_distributions)
{
    lethe_rng r = lethe_rng_init(1, 0);
    const int n = 200000;
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int counts[7] = {0};
    for (int i = 0; i < n; i++) {
        double u = lethe_rng_uniform(&r);
        CHECK(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        double z = lethe_rng_normal(&r);
        nsum += z;
        nsum2 += z * z;
        counts[lethe_rng_below(&r, 7)]++;
        float f = lethe_rng_uniformf(&r);
        CHECK(f >= 0.0f && f < 1.0f);
    }
    CHECK_CLOSE(sum / n, 0.5, 0, 0.005);
    CHECK_CLOSE(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0, 0.002);
    CHECK_CLOSE(nsum / n, 0.0, 0, 0.01);
    CHECK_CLOSE(nsum2 / n, 1.0, 0, 0.02);
    for (int k = 0; k < 7; k++)
        CHECK_CLOSE(counts[k], n / 7.0, 0.03, 0);
    uint32_t idx[100];
    for (uint32_t i = 0; i < 100; i++)
        idx[i] = i;
    lethe_rng_shuffle(&r, idx, 100);
    int seen[100] = {0}, moved = 0;
    for (uint32_t i = 0; i < 100; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 100; i++)
        CHECK(seen[i] == 1);
    CHECK(moved > 80);
}

TEST(mem_calloc_and_arena)
{
    float *p = lethe_calloc(1000, sizeof(float));
    CHECK(p && ((uintptr_t)p % LETHE_ALIGN) == 0 && p[999] == 0.0f);
    lethe_free(p);
    lethe_free(NULL);
    CHECK(lethe_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(strstr(lethe_error_detail(), "overflows"));
    lethe_arena a;
    CHECK(lethe_arena_init(&a, 1024) == 0);
    char *x = lethe_arena_push(&a, 10), *y = lethe_arena_push(&a, 100);
    CHECK(x && y && (uintptr_t)y % LETHE_ALIGN == 0 && y >= x + 10);
    CHECK(lethe_arena_push(&a, 2000) == NULL);
    lethe_arena_reset(&a);
    CHECK(lethe_arena_push(&a, 1024) != NULL);
    lethe_arena_free(&a);
    lethe_arena_free(&a);
}

static void fill(float *x, int n, lethe_rng *r)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(2.0 * lethe_rng_uniform(r) - 1.0);
}

/* Every transpose combination, odd shapes, padded strides, alpha and beta,
 * against the reference loop; k past 256 and m past 128 cross the blocking
 * of the kernel, and m < n or m >= n take both of its routes. */
TEST(gemm_matches_reference)
{
    static const int shapes[][3] = {{1, 1, 1},      {3, 5, 7},     {17, 1, 9},   {1, 33, 2},
                                    {65, 31, 129},  {128, 96, 64}, {7, 200, 1},  {5, 4, 0},    {1, 257, 129},
                                    {16, 40, 300},  {40, 17, 530}, {3, 70, 257}, {150, 20, 33},
                                    /* above 2^24 multiply-adds, split among threads: by
                                     * rows, then (few rows) by columns */
                                    {300, 260, 220}, {100, 700, 260}};
    const size_t n_shapes = sizeof shapes / sizeof shapes[0] - (test_quick() ? 2 : 0);
    lethe_rng r = lethe_rng_init(3, 0);
    for (size_t s = 0; s < n_shapes; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int pad = 3;
                int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
                int arows = ta ? k : m, brows = tb ? n : k;
                float *A = malloc(sizeof(float) * (size_t)(arows * lda + 1));
                float *B = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
                float *C1 = malloc(sizeof(float) * (size_t)(m * ldc));
                float *C2 = malloc(sizeof(float) * (size_t)(m * ldc));
                fill(A, arows * lda + 1, &r);
                fill(B, brows * ldb + 1, &r);
                fill(C1, m * ldc, &r);
                memcpy(C2, C1, sizeof(float) * (size_t)(m * ldc));
                if (m == 1 && !ta) /* the one-row entry point */
                    lethe_gemv(tb, n, k, 0.75f, A, B, ldb, 0.5f, C1);
                else
                    lethe_gemm(ta, tb, m, n, k, 0.75f, A, lda, B, ldb, 0.5f, C1, ldc);
                lethe_gemm_ref(ta, tb, m, n, k, 0.75f, A, lda, B, ldb, 0.5f, C2, ldc);
                double worst = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double d = fabs(C1[i * ldc + j] - C2[i * ldc + j]);
                        worst = d > worst ? d : worst;
                    }
                free(A);
                free(B);
                free(C1);
                free(C2);
                CHECK_MSG(worst <= 1e-5 * (k + 1), "m=%d n=%d k=%d ta=%d tb=%d: diff %g", m, n,
                          k, ta, tb, worst);
            }
    }
}

#ifdef __AVX512F__
/* lethe's own kernel: a row of C does not depend on the other rows computed
 * with it; the one-row routes (matrix-vector products) give the bits the
 * tiles give, over several passes of k, in parallel and not, with beta zero
 * and not. (CBLAS, elsewhere, promises no such thing.) */
TEST(gemm_row_independent_of_batch)
{
    static const int shapes[][3] = {{9, 17, 5}, {40, 300, 600}, {40, 2100, 600}, {3, 1100, 300}};
    lethe_rng r = lethe_rng_init(5, 0);
    int mismatches = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bz = 0; bz < 2; bz++) {
                    float beta = bz ? 0.0f : 0.3f;
                    int lda = ta ? m : k, ldb = tb ? k : n;
                    float *A = malloc(sizeof(float) * (size_t)m * k);
                    float *B = malloc(sizeof(float) * (size_t)k * n);
                    float *C = malloc(sizeof(float) * (size_t)m * n);
                    float *row = malloc(sizeof(float) * (size_t)n);
                    float *a1 = malloc(sizeof(float) * (size_t)k);
                    fill(A, m * k, &r);
                    fill(B, k * n, &r);
                    fill(C, m * n, &r);
                    float *C0 = malloc(sizeof(float) * (size_t)m * n);
                    memcpy(C0, C, sizeof(float) * (size_t)m * n);
                    lethe_gemm(ta, tb, m, n, k, 0.75f, A, lda, B, ldb, beta, C, n);
                    for (int i = 0; i < m; i++) {
                        for (int p = 0; p < k; p++)
                            a1[p] = ta ? A[(long)p * m + i] : A[(long)i * k + p];
                        memcpy(row, C0 + (long)i * n, sizeof(float) * (size_t)n);
                        lethe_gemm(0, tb, 1, n, k, 0.75f, a1, k, B, ldb, beta, row, n);
                        mismatches += memcmp(row, C + (long)i * n, sizeof(float) * (size_t)n) != 0;
                    }
                    free(A), free(B), free(C), free(C0), free(row), free(a1);
                }
    }
    CHECK_MSG(mismatches == 0, "%d rows differ from their one-row product", mismatches);
}
#endif

TEST(gemm_beta_zero_ignores_nan)
{
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
    for (int i = 0; i < 4; i++)
        C[i] = NAN;
    lethe_gemm(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    /* [1 2 3; 4 5 6] x [1 0; 0 1; 1 1] = [4 5; 10 11] */
    CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
    for (int tb = 0; tb < 2; tb++) { /* one row: lethe_gemv */
        C[0] = C[1] = NAN;
        float Bt[6] = {1, 0, 1, 0, 1, 1}; /* B transposed */
        lethe_gemv(tb, 2, 3, 1.0f, A + 3, tb ? Bt : B, tb ? 3 : 2, 0.0f, C);
        CHECK(C[0] == 10 && C[1] == 11);
    }
    for (int i = 0; i < 4; i++)
        C[i] = NAN;
    lethe_gemm_ref(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
}

static char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/lethe-test-%ld-%s", (long)getpid(), name);
    return buf;
}

TEST(fileio_atomic_write_and_read)
{
    char *path = tmp_path("atomic");
    CHECK_OK(lethe_file_write_atomic(path, "hello", 5));
    unsigned char *data;
    size_t len;
    CHECK_OK(lethe_file_read(path, &data, &len));
    CHECK(len == 5 && !memcmp(data, "hello", 5) && data[5] == '\0');
    free(data);
    /* an aborted write leaves the old contents and no temporary file */
    lethe_afile *f = lethe_afile_open(path);
    CHECK(f);
    fputs("partial", f->fp);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s", f->tmp);
    lethe_afile_abort(f);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_OK(lethe_file_read(path, &data, &len));
    CHECK(len == 5);
    free(data);
    unlink(path);
    CHECK_STATUS(lethe_file_read(path, &data, &len), LETHE_ERR_IO);
    CHECK(strstr(lethe_error_detail(), path));
    CHECK_STATUS(lethe_file_read("/tmp", &data, &len), LETHE_ERR_IO);
    CHECK_STATUS(lethe_file_write_atomic("/nonexistent-dir/x", "a", 1), LETHE_ERR_IO);
}

/* Entries of directory d whose names contain `part`. */
static int count_names(const char *d, const char *part)
{
    DIR *dir = opendir(d);
    int n = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        n += strstr(e->d_name, part) != NULL;
    if (dir)
        closedir(dir);
    return n;
}

/* What is already at an output path is written through or followed, never
 * replaced: a symlink keeps pointing at its (rewritten) file, a FIFO and a
 * character device stay what they are, and no temporary file is left. */
TEST(fileio_atomic_keeps_links_and_devices)
{
    char dir[] = "/tmp/lethe-test-afile-XXXXXX", a[300], b[300], c[300];
    CHECK(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/file", dir);
    snprintf(b, sizeof b, "%s/link", dir);
    CHECK_OK(lethe_file_write_atomic(a, "old", 3));
    CHECK(symlink("file", b) == 0);
    CHECK_OK(lethe_file_write_atomic(b, "new!", 4));
    struct stat st;
    CHECK(lstat(b, &st) == 0 && S_ISLNK(st.st_mode));
    unsigned char *data;
    size_t len;
    CHECK_OK(lethe_file_read(a, &data, &len));
    CHECK(len == 4 && !memcmp(data, "new!", 4));
    free(data);
    /* a FIFO is written through: its reader gets the bytes */
    snprintf(c, sizeof c, "%s/fifo", dir);
    CHECK(mkfifo(c, 0600) == 0);
    int rfd = open(c, O_RDONLY | O_NONBLOCK);
    CHECK(rfd >= 0);
    CHECK_OK(lethe_file_write_atomic(c, "piped", 5));
    char got[16] = {0};
    CHECK(read(rfd, got, sizeof got) == 5 && !memcmp(got, "piped", 5));
    close(rfd);
    CHECK(lstat(c, &st) == 0 && S_ISFIFO(st.st_mode));
    unlink(c);
    /* a character device (the null device, made here: needs root) */
    if (mknod(c, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        CHECK_OK(lethe_file_write_atomic(c, "gone", 4));
        CHECK(lstat(c, &st) == 0 && S_ISCHR(st.st_mode));
        unlink(c);
    }
    /* a directory and a link to nothing are refused */
    CHECK_STATUS(lethe_file_write_atomic(dir, "x", 1), LETHE_ERR_IO);
    CHECK(symlink("missing", c) == 0);
    CHECK_STATUS(lethe_file_write_atomic(c, "x", 1), LETHE_ERR_IO);
    CHECK(lstat(c, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(count_names(dir, ".tmp.") == 0);
    CHECK(count_names(dir, "") == 5); /* ., .., file, link, the dangling link */
    unlink(c), unlink(b), unlink(a), rmdir(dir);
}

/* A run directory: an existing one is refused unless empty or forced, one
 * inside, equal to or around an input is refused, and abort removes what
 * begin created (missing parents too) and nothing else. */
TEST(rundir_begin_commit_abort)
{
    char dir[] = "/tmp/lethe-test-rundir-XXXXXX", out[400], in[300], f[420];
    CHECK(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/a/b/run", dir);
    lethe_rundir *rd;
    CHECK_OK(lethe_rundir_begin(out, 0, NULL, 0, &rd));
    snprintf(f, sizeof f, "%s/model.bin", out);
    CHECK_OK(lethe_file_write_atomic(f, "m", 1));
    lethe_rundir_abort(rd);
    snprintf(f, sizeof f, "%s/a", dir);
    CHECK(access(f, F_OK) != 0);   /* the parents it made are gone too */
    CHECK(count_names(dir, "") == 2);
    /* commit keeps it; a second begin is refused unless forced */
    CHECK_OK(lethe_rundir_begin(out, 0, NULL, 0, &rd));
    snprintf(f, sizeof f, "%s/model.bin", out);
    CHECK_OK(lethe_file_write_atomic(f, "m", 1));
    lethe_rundir_commit(rd);
    CHECK_STATUS(lethe_rundir_begin(out, 0, NULL, 0, &rd), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "already exists"));
    CHECK_OK(lethe_rundir_begin(out, 1, NULL, 0, &rd));
    lethe_rundir_abort(rd); /* it existed: left as it was */
    CHECK(access(f, F_OK) == 0);
    /* inputs: the output may not be one, lie in one, or hold one */
    snprintf(in, sizeof in, "%s/a/b/run", dir);
    const char *inputs[] = {"/no/such/input", in};
    CHECK_STATUS(lethe_rundir_begin(out, 1, inputs, 2, &rd), LETHE_ERR_INVALID);
    snprintf(out, sizeof out, "%s/a/b/run/../run/sub", dir);
    CHECK_STATUS(lethe_rundir_begin(out, 0, inputs, 2, &rd), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "inside the input"));
    CHECK(access(out, F_OK) != 0); /* refused after creating it: removed */
    snprintf(out, sizeof out, "%s/a", dir);
    CHECK_STATUS(lethe_rundir_begin(out, 1, inputs, 2, &rd), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "contains the input"));
    /* output files: existing refused unless forced, inside an input refused */
    CHECK_STATUS(lethe_outfile_check(f, 0, NULL, 0), LETHE_ERR_INVALID);
    CHECK_OK(lethe_outfile_check(f, 1, NULL, 0));
    snprintf(out, sizeof out, "%s/new.csv", in);
    CHECK_STATUS(lethe_outfile_check(out, 1, inputs, 2), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_outfile_check(f, 1, (const char *[]){f}, 1), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_outfile_check(dir, 1, NULL, 0), LETHE_ERR_INVALID); /* a directory */
    CHECK(lethe_remove_tree(dir) == 0 && access(dir, F_OK) != 0);
}

/* The table of temporary paths: a SIGTERM removes what is recorded (a file
 * and a directory tree) and still ends the process by that signal. */
TEST(rundir_signal_removes_inflight)
{
    char dir[] = "/tmp/lethe-test-signal-XXXXXX", f[300], sub[300], keep[300];
    CHECK(mkdtemp(dir));
    snprintf(f, sizeof f, "%s/x.tmp.1", dir);
    snprintf(sub, sizeof sub, "%s/run", dir);
    snprintf(keep, sizeof keep, "%s/kept", dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        lethe_inflight_handle_signals();
        char deep[400], mid[400];
        snprintf(mid, sizeof mid, "%s/a", sub);
        snprintf(deep, sizeof deep, "%s/a/b", sub);
        lethe_inflight_add(f);
        lethe_inflight_add(sub);
        int gone = lethe_inflight_add(keep);
        lethe_inflight_drop(gone);
        if (lethe_file_write_atomic(f, "t", 1) || lethe_file_write_atomic(keep, "k", 1) ||
            mkdir(sub, 0777) || mkdir(mid, 0777) || mkdir(deep, 0777))
            _exit(3);
        for (int i = 0; i < 200; i++) {
            snprintf(deep, sizeof deep, "%s/a/b/file%03d", sub, i);
            if (lethe_file_write_atomic(deep, "d", 1))
                _exit(3);
        }
        raise(SIGTERM);
        _exit(4); /* not reached: the handler re-raises */
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "status %d", status);
    CHECK(access(f, F_OK) != 0);
    CHECK(access(sub, F_OK) != 0);
    CHECK(access(keep, F_OK) == 0);
    CHECK(lethe_remove_tree(dir) == 0);
}

TEST(fileio_gzip)
{
    char *path = tmp_path("gz");
    gzFile gz = gzopen(path, "wb");
    CHECK(gz);
    for (int i = 0; i < 1000; i++)
        gzprintf(gz, "line %d\n", i);
    gzclose(gz);
    unsigned char *data;
    size_t len;
    CHECK_OK(lethe_file_read_gz(path, &data, &len));
    CHECK(len > 6000 && !memcmp(data, "line 0\nline 1\n", 14));
    free(data);
    /* truncated and corrupt gzip data are rejected */
    unsigned char *raw;
    size_t raw_len;
    CHECK_OK(lethe_file_read(path, &raw, &raw_len));
    CHECK_STATUS(lethe_gunzip(raw, raw_len / 2, 1 << 20, "t.gz", &data, &len), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "t.gz"));
    raw[raw_len / 2] ^= 0xff;
    raw[raw_len / 2 + 1] ^= 0xff;
    lethe_status st = lethe_gunzip(raw, raw_len, 1 << 20, "t.gz", &data, &len);
    if (st == LETHE_OK)
        free(data);
    CHECK(st == LETHE_ERR_FORMAT);
    raw[raw_len / 2] ^= 0xff;
    raw[raw_len / 2 + 1] ^= 0xff;
    CHECK_STATUS(lethe_gunzip(raw, raw_len, 100, "t.gz", &data, &len), LETHE_ERR_FORMAT);
    free(raw);
    /* a file that is not gzip is returned as it is */
    CHECK_OK(lethe_file_write_atomic(path, "plain", 5));
    CHECK_OK(lethe_file_read_gz(path, &data, &len));
    CHECK(len == 5);
    free(data);
    unlink(path);
}

TEST(progress_plain_lines)
{
    char *path = tmp_path("progress");
    FILE *fp = fopen(path, "w+");
    CHECK(fp);
    lethe_progress p;
    lethe_progress_init(&p, fp, "train", "steps", 100, 0);
    p.last -= 10; /* force a line */
    lethe_progress_update(&p, 50);
    lethe_progress_finish(&p);
    rewind(fp);
    char buf[512] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    unlink(path);
    CHECK(n > 0);
    CHECK(strstr(buf, "train: 50/100 steps (50%)"));
    CHECK(strstr(buf, "train: 50 steps in"));
}

/* FIPS 180-4 examples and a million 'a's (NIST's long message test). */
TEST(sha256_known_answers)
{
    char hex[65];
    lethe_sha256 s;
    lethe_sha256_init(&s);
    lethe_sha256_final(&s, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    lethe_sha256_init(&s);
    lethe_sha256_update(&s, "abc", 3);
    lethe_sha256_final(&s, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lethe_sha256_init(&s);
    for (size_t i = 0; i < strlen(m); i++) /* byte by byte: exercises the buffering */
        lethe_sha256_update(&s, m + i, 1);
    lethe_sha256_final(&s, hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    char a[1000];
    memset(a, 'a', sizeof a);
    lethe_sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        lethe_sha256_update(&s, a, sizeof a);
    lethe_sha256_final(&s, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}
