/* Status codes, error details and invariant checks.
 *
 * Two tiers (DESIGN §4.4): a broken invariant aborts through LETHE_ASSERT,
 * printing file:line; anything caused by input returns a lethe_status, with
 * a one-line detail message written once, where the problem is found, into
 * a per-thread buffer (lethe_error_detail). Library code never exits. */
#ifndef LETHE_STATUS_H
#define LETHE_STATUS_H

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_status {
    LETHE_OK = 0,
    LETHE_ERR_IO,          /* a file could not be opened, read or written */
    LETHE_ERR_FORMAT,      /* input data is malformed */
    LETHE_ERR_INVALID,     /* an argument has a bad value */
    LETHE_ERR_NOT_FOUND,   /* a named thing (data set, tensor, key) is absent */
    LETHE_ERR_UNSUPPORTED, /* valid input that lethe does not handle */
    LETHE_ERR_NOMEM,       /* out of memory */
    LETHE_ERR_FAILED       /* an operation failed for another reason */
} lethe_status;

/* A short static description of a status code ("malformed input", ...). */
const char *lethe_strerror(lethe_status s);

/* Record the detail message for this thread and return s, so callers write
 * `return lethe_fail(LETHE_ERR_FORMAT, "%s: ...", path);`. The message should
 * say what went wrong, where (file, line, key), and a hint when there is one. */
lethe_status lethe_fail(lethe_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The detail message of the last lethe_fail on this thread, or "" if none.
 * The buffer belongs to the library and is overwritten by the next failure. */
const char *lethe_error_detail(void);
void lethe_error_clear(void);

/* Print "lethe: assertion failed at file:line: expr" and abort. */
_Noreturn void lethe_abort(const char *file, int line, const char *what);

#define LETHE_ASSERT(cond) \
    do { if (!(cond)) lethe_abort(__FILE__, __LINE__, #cond); } while (0)

LETHE_API_END
#endif
