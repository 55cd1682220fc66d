/* Status codes and per-thread error details. */
#include "lethe/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static _Thread_local char detail[1024];

const char *lethe_strerror(lethe_status s)
{
    switch (s) {
    case LETHE_OK: return "success";
    case LETHE_ERR_IO: return "input/output error";
    case LETHE_ERR_FORMAT: return "malformed input";
    case LETHE_ERR_INVALID: return "invalid argument";
    case LETHE_ERR_NOT_FOUND: return "not found";
    case LETHE_ERR_UNSUPPORTED: return "unsupported";
    case LETHE_ERR_NOMEM: return "out of memory";
    case LETHE_ERR_FAILED: return "operation failed";
    }
    return "unknown status";
}

lethe_status lethe_fail(lethe_status s, const char *fmt, ...)
{
    /* formatted apart first: callers pass lethe_error_detail() itself as
     * an argument to prefix it, and vsnprintf must not read what it writes */
    char buf[sizeof detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(detail, buf, sizeof detail);
    return s;
}

const char *lethe_error_detail(void) { return detail; }

void lethe_error_clear(void) { detail[0] = '\0'; }

void lethe_abort(const char *file, int line, const char *what)
{
    fprintf(stderr, "lethe: assertion failed at %s:%d: %s\n", file, line, what);
    fflush(stderr);
    abort();
}
