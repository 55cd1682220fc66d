/* Shared pieces of the command-line front end. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_report(const char *verb, lethe_status st)
{
    const char *detail = lethe_error_detail();
    fprintf(stderr, "lethe %s: %s\n", verb, detail[0] ? detail : lethe_strerror(st));
    switch (st) {
    case LETHE_OK: return CLI_EXIT_OK;
    case LETHE_ERR_IO:
    case LETHE_ERR_FORMAT:
    case LETHE_ERR_INVALID:
    case LETHE_ERR_NOT_FOUND:
    case LETHE_ERR_UNSUPPORTED: return CLI_EXIT_INPUT;
    case LETHE_ERR_NOMEM:
    case LETHE_ERR_FAILED: return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_FAILURE;
}

int cli_report_out(const char *verb, lethe_status st)
{
    const char *detail = lethe_error_detail();
    if (st != LETHE_ERR_INVALID || !strstr(detail, ": already exists"))
        return cli_report(verb, st);
    fprintf(stderr, "lethe %s: %s with --force\n", verb, detail);
    return CLI_EXIT_INPUT;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lethe %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'lethe %s --help'.\n", verb);
    return CLI_EXIT_USAGE;
}

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises the scanner completely */
    opterr = 1;
}

int cli_parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_numeric_option(const char *verb, const struct option *longopts, int c, const char *arg,
                       const cli_long_opt *ints, size_t n_ints, const cli_real_opt *reals,
                       size_t n_reals)
{
    const char *name = "?";
    for (const struct option *l = longopts; l->name; l++)
        if (l->val == c)
            name = l->name;
    for (size_t i = 0; i < n_ints; i++)
        if (ints[i].id == c) {
            if (cli_parse_long(arg, ints[i].v) || *ints[i].v < ints[i].lo ||
                *ints[i].v > ints[i].hi)
                return -cli_usage(verb, "--%s needs a whole number %ld-%ld, not '%s'", name,
                                  ints[i].lo, ints[i].hi, arg);
            return 1;
        }
    for (size_t i = 0; i < n_reals; i++)
        if (reals[i].id == c) {
            if (cli_parse_double(arg, reals[i].v) || !(*reals[i].v >= reals[i].lo) ||
                !(*reals[i].v <= reals[i].hi))
                return -cli_usage(verb, "--%s needs a number in [%g, %g], not '%s'", name,
                                  reals[i].lo, reals[i].hi, arg);
            return 1;
        }
    return 0;
}
