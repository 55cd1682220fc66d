/* The unit test runner. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"

#define MAX_TESTS 4096

static struct {
    const char *name;
    void (*fn)(void);
} tests[MAX_TESTS];
static int n_tests;
static int current_failed;

void test_register(const char *name, void (*fn)(void))
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests; raise MAX_TESTS\n");
        abort();
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed = 1;
}

int test_quick(void)
{
    const char *q = getenv("LETHE_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

static int by_name(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    /* LETHE_TEST_TIMES=1 prints each test's wall time, to find slow ones. */
    const char *times = getenv("LETHE_TEST_TIMES");
    int show_times = times && *times && strcmp(times, "0") != 0;
    /* LETHE_TEST_SHARD=I/N runs every Nth of the selected tests from the
     * Ith (in name order), so that N runners share the suite. */
    const char *shard = getenv("LETHE_TEST_SHARD");
    int sh_i = 0, sh_n = 1;
    if (shard && *shard && (sscanf(shard, "%d/%d", &sh_i, &sh_n) != 2 || sh_n < 1 || sh_i < 0 ||
                            sh_i >= sh_n)) {
        fprintf(stderr, "LETHE_TEST_SHARD is I/N with 0 <= I < N, not '%s'\n", shard);
        return 2;
    }
    qsort(tests, (size_t)n_tests, sizeof tests[0], by_name);
    int passed = 0, failed = 0, selected = 0;
    for (int i = 0; i < n_tests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        if (selected++ % sh_n != sh_i)
            continue;
        current_failed = 0;
        lethe_error_clear();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (show_times)
            fprintf(stderr, "time %8.3f %s\n",
                    (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                    tests[i].name);
        if (current_failed) {
            fprintf(stderr, "FAIL %s\n", tests[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
