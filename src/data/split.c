/* Row subsets named on the command line: random fractions, whole classes,
 * target ranges and id files. */
#include "lethe/task.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORGET_STREAM 0xf0e7u

static lethe_status rows_alloc(lethe_rows *out, long n)
{
    out->n = 0;
    out->row = malloc((size_t)(n > 0 ? n : 1) * sizeof *out->row);
    return out->row ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", n);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* ids:FILE: one id per line; blank lines and '#' comments skipped. */
static lethe_status select_ids(const lethe_dataset *ds, const char *path, lethe_rows *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return lethe_fail(LETHE_ERR_IO, "%s: %s", path, strerror(errno));
    lethe_status st = rows_alloc(out, ds->n);
    char line[256];
    long lineno = 0;
    /* Map ids to rows once: sort (id, row) pairs and binary-search. */
    uint64_t *pairs = malloc((size_t)(ds->n > 0 ? ds->n : 1) * 2 * sizeof *pairs);
    if (st == LETHE_OK && !pairs)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (long i = 0; st == LETHE_OK && i < ds->n; i++)
        pairs[2 * i] = ds->ids[i], pairs[2 * i + 1] = (uint64_t)i;
    if (st == LETHE_OK)
        qsort(pairs, (size_t)ds->n, 2 * sizeof *pairs, cmp_u64);
    while (st == LETHE_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: line too long", path, lineno);
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0)
            continue;
        errno = 0;
        char *end;
        unsigned long long id = strtoull(p, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (end == p || *end || errno || *p == '-') {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%ld: '%.*s' is not a sample id", path, lineno,
                            (int)strcspn(p, "\r\n"), p);
            break;
        }
        uint64_t key[2] = {id, 0};
        uint64_t *hit = bsearch(key, pairs, (size_t)ds->n, 2 * sizeof *pairs, cmp_u64);
        if (!hit) {
            st = lethe_fail(LETHE_ERR_INVALID, "%s:%ld: id %llu is not in the %s training set",
                            path, lineno, id, ds->name);
            break;
        }
        out->row[out->n++] = (long)hit[1];
    }
    if (st == LETHE_OK && ferror(f))
        st = lethe_fail(LETHE_ERR_IO, "%s: read error", path);
    fclose(f);
    free(pairs);
    if (st != LETHE_OK)
        return st;
    qsort(out->row, (size_t)out->n, sizeof *out->row, cmp_long);
    long k = 0; /* drop repeated ids */
    for (long i = 0; i < out->n; i++)
        if (k == 0 || out->row[k - 1] != out->row[i])
            out->row[k++] = out->row[i];
    out->n = k;
    return LETHE_OK;
}

static int parse_double(const char *s, const char *stop, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && (end == stop || *end == *stop) && !errno && isfinite(*v);
}

lethe_status lethe_split_select(const lethe_dataset *ds, const char *spec, uint64_t seed,
                                lethe_rows *out)
{
    out->n = 0, out->row = NULL;
    lethe_status st;
    if (!strncmp(spec, "ids:", 4))
        st = select_ids(ds, spec + 4, out);
    else if (!strncmp(spec, "random:", 7)) {
        double f;
        if (!parse_double(spec + 7, "", &f) || f <= 0 || f >= 1)
            return lethe_fail(LETHE_ERR_INVALID,
                              "split '%s': random:F needs a fraction 0 < F < 1", spec);
        if ((st = rows_alloc(out, ds->n)) == LETHE_OK)
            for (long i = 0; i < ds->n; i++)
                if (lethe_id_uniform(seed, FORGET_STREAM, ds->ids[i]) < f)
                    out->row[out->n++] = i;
    } else if (!strncmp(spec, "class:", 6)) {
        if (ds->task != LETHE_TASK_CLASSIFY)
            return lethe_fail(LETHE_ERR_INVALID, "split '%s': %s is a regression task; use "
                              "range:LO:HI", spec, ds->name);
        char want[256] = {0};
        const char *p = spec + 6;
        do {
            char *end;
            errno = 0;
            long k = strtol(p, &end, 10);
            if (end == p || (*end && *end != ',') || errno || k < 0 || k >= ds->n_classes ||
                k >= 256)
                return lethe_fail(LETHE_ERR_INVALID,
                                  "split '%s': class:K[,K...] needs classes 0-%d", spec,
                                  ds->n_classes - 1);
            want[k] = 1;
            p = *end ? end + 1 : end;
        } while (*p);
        if ((st = rows_alloc(out, ds->n)) == LETHE_OK)
            for (long i = 0; i < ds->n; i++)
                if (want[ds->y[i]])
                    out->row[out->n++] = i;
    } else if (!strncmp(spec, "range:", 6)) {
        double lo, hi;
        const char *colon = strchr(spec + 6, ':');
        if (ds->task != LETHE_TASK_REGRESS)
            return lethe_fail(LETHE_ERR_INVALID, "split '%s': %s is a classification task; "
                              "use class:K", spec, ds->name);
        if (!colon || !parse_double(spec + 6, ":", &lo) || !parse_double(colon + 1, "", &hi) ||
            !(lo < hi))
            return lethe_fail(LETHE_ERR_INVALID, "split '%s': range:LO:HI needs LO < HI", spec);
        if ((st = rows_alloc(out, ds->n)) == LETHE_OK)
            for (long i = 0; i < ds->n; i++) {
                double t = ds->t[(size_t)i * (size_t)ds->n_targets] * ds->t_scale + ds->t_shift;
                if (t >= lo && t < hi)
                    out->row[out->n++] = i;
            }
    } else {
        st = select_ids(ds, spec, out);
    }
    if (st == LETHE_OK && out->n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "split '%s' selects no sample of %s", spec, ds->name);
    if (st != LETHE_OK)
        lethe_rows_free(out);
    return st;
}

const char *lethe_split_file(const char *spec)
{
    if (!spec)
        return NULL;
    if (!strncmp(spec, "ids:", 4))
        return spec + 4;
    if (!strncmp(spec, "random:", 7) || !strncmp(spec, "class:", 6) ||
        !strncmp(spec, "range:", 6))
        return NULL;
    return spec;
}

void lethe_rows_hash(const lethe_dataset *ds, const lethe_rows *rows, char buf[17])
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a over the bytes that define the data */
#define MIX(ptr, len)                                                                          \
    for (size_t k_ = 0; k_ < (len); k_++)                                                      \
        h = (h ^ ((const unsigned char *)(ptr))[k_]) * 0x100000001b3u
    if (rows) {
        for (long i = 0; i < rows->n; i++)
            MIX(&ds->ids[rows->row[i]], sizeof(uint64_t));
    } else {
        MIX(ds->ids, (size_t)ds->n * sizeof(uint64_t));
        MIX(ds->x, (size_t)ds->n * (size_t)ds->d * sizeof(float));
        if (ds->y)
            MIX(ds->y, (size_t)ds->n * sizeof(int32_t));
        if (ds->t)
            MIX(ds->t, (size_t)ds->n * (size_t)ds->n_targets * sizeof(float));
    }
#undef MIX
    snprintf(buf, 17, "%016llx", (unsigned long long)h);
}
