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
    fprintf(stderr, " (see 'lethe %s --help')\n", verb);
    return CLI_EXIT_USAGE;
}

void cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises the scanner completely */
    opterr = 1;
}

void cli_getopt_begin(void)
{
    optind = 0;
    opterr = 0; /* cli_bad_option says what was wrong */
}

int cli_bad_option(const char *verb, char **argv, const struct option *longopts)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    size_t n = strcspn(arg, "=");
    for (const struct option *l = longopts; arg[0] == '-' && arg[1] == '-' && l->name; l++)
        if (strlen(l->name) == n - 2 && !strncmp(l->name, arg + 2, n - 2))
            return cli_usage(verb, l->has_arg ? "option '%s' needs a value"
                                              : "option '%s' takes no value",
                             arg);
    if (optopt && arg[0] == '-' && arg[1] != '-')
        return cli_usage(verb, "unknown option '-%c'", optopt);
    return cli_usage(verb, "unknown option '%s'", arg);
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

/* "2^53" for powers of two above a million, else the decimal number. */
static const char *show_long(long v, char *buf, size_t n)
{
    int k = 0;
    while (k < 62 && (1L << k) < v)
        k++;
    if (v > 1000000 && v == 1L << k)
        snprintf(buf, n, "2^%d", k);
    else
        snprintf(buf, n, "%ld", v);
    return buf;
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
            char lo[32], hi[32];
            show_long(ints[i].lo, lo, sizeof lo);
            show_long(ints[i].hi, hi, sizeof hi);
            long v;
            int bad = cli_parse_long(arg, &v);
            if (bad && errno != ERANGE)
                return -cli_usage(verb, "--%s needs a whole number from %s to %s, not '%s'",
                                  name, lo, hi, arg);
            if (bad || v < ints[i].lo || v > ints[i].hi)
                return -cli_usage(verb, "--%s %s is out of range: it takes %s to %s", name, arg,
                                  lo, hi);
            *ints[i].v = v;
            return 1;
        }
    for (size_t i = 0; i < n_reals; i++)
        if (reals[i].id == c) {
            double v;
            if (cli_parse_double(arg, &v) && errno != ERANGE)
                return -cli_usage(verb, "--%s needs a number from %g to %g, not '%s'", name,
                                  reals[i].lo, reals[i].hi, arg);
            if (!(v >= reals[i].lo) || !(v <= reals[i].hi) || errno == ERANGE)
                return -cli_usage(verb, "--%s %s is out of range: it takes %g to %g", name, arg,
                                  reals[i].lo, reals[i].hi);
            *reals[i].v = v;
            return 1;
        }
    return 0;
}
