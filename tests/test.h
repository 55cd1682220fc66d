/* A small test harness: TEST(name) registers a test, CHECK* fail it.
 * The runner (tests/unit/main.c) runs every test, or those whose name
 * contains argv[1], and ends with "N passed, N failed". */
#ifndef LETHE_TEST_H
#define LETHE_TEST_H

#include <math.h>
#include <stdio.h>

#include "lethe/status.h"

#define FIXTURES "tests/ref/fixtures/"

void test_register(const char *name, void (*fn)(void));
/* Nonzero under LETHE_TEST_QUICK (the valgrind run, a hundred times slower
 * on the GEMM-heavy tests): a test may then do less of the same work. */
int test_quick(void);
void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                              \
    static void name(void);                                                     \
    __attribute__((constructor)) static void name##_register(void)              \
    {                                                                           \
        test_register(#name, name);                                             \
    }                                                                           \
    static void name(void)

/* Each CHECK that fails records the failure and returns from the test. */
#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail_at(__FILE__, __LINE__, "%s", #cond);                      \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_MSG(cond, ...)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                      \
            return;                                                             \
        }                                                                       \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol)                                           \
    do {                                                                        \
        double check_a_ = (double)(a), check_b_ = (double)(b);                  \
        if (!(fabs(check_a_ - check_b_) <= (atol) + (rtol)*fabs(check_b_))) {   \
            test_fail_at(__FILE__, __LINE__, "%s = %.17g, expected %s = %.17g", \
                         #a, check_a_, #b, check_b_);                           \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_STATUS(expr, want)                                                \
    do {                                                                        \
        lethe_status check_s_ = (expr);                                         \
        if (check_s_ != (want)) {                                               \
            test_fail_at(__FILE__, __LINE__, "%s returned %s (%s), expected %s", \
                         #expr, lethe_strerror(check_s_), lethe_error_detail(), \
                         lethe_strerror(want));                                 \
            return;                                                             \
        }                                                                       \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, LETHE_OK)

#endif
