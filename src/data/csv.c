/* CSV (RFC 4180) and blank-separated tables. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"
#include "lethe/loaders.h"

void lethe_csv_free(lethe_csv *c)
{
    if (!c)
        return;
    free(c->header);
    free(c->cells);
    free(c->lines);
    free(c->name);
    free(c->store);
    memset(c, 0, sizeof *c);
}

/* Parser state: input, the write cursor into the store, growing arrays. */
typedef struct parser {
    const char *buf;
    size_t len, pos, line;
    char delim; /* ' ' = runs of blanks */
    const char *name;
    char *store;
    size_t used, store_cap;
    char **fields; /* every field parsed so far (header first when present) */
    size_t n_fields, fields_cap;
} parser;

static lethe_status push_field(parser *p, char *f)
{
    if (p->n_fields == p->fields_cap) {
        size_t ncap = p->fields_cap ? p->fields_cap * 2 : 256;
        char **nf = realloc(p->fields, ncap * sizeof *nf);
        if (!nf)
            return lethe_fail(LETHE_ERR_NOMEM, "%s:%zu: out of memory", p->name, p->line);
        p->fields = nf;
        p->fields_cap = ncap;
    }
    p->fields[p->n_fields++] = f;
    return LETHE_OK;
}

static void put(parser *p, char c)
{
    LETHE_ASSERT(p->used < p->store_cap); /* fields never outgrow the input */
    p->store[p->used++] = c;
}

/* At pos: "\n", "\r\n" or a final "\r" ends a line; returns its length (0 if none). */
static size_t line_end(const parser *p)
{
    if (p->pos >= p->len)
        return 0;
    if (p->buf[p->pos] == '\n')
        return 1;
    if (p->buf[p->pos] == '\r' && (p->pos + 1 == p->len || p->buf[p->pos + 1] == '\n'))
        return p->pos + 1 == p->len ? 1 : 2;
    return 0;
}

static lethe_status nul_byte(const parser *p)
{
    return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: NUL byte in the text", p->name, p->line);
}

/* One quoted field; pos is at the opening quote. */
static lethe_status quoted_field(parser *p)
{
    size_t open_line = p->line;
    p->pos++;
    for (;;) {
        if (p->pos >= p->len)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s:%zu: unterminated quoted field (no closing '\"')", p->name,
                              open_line);
        char c = p->buf[p->pos];
        if (c == '"') {
            if (p->pos + 1 < p->len && p->buf[p->pos + 1] == '"') {
                put(p, '"');
                p->pos += 2;
                continue;
            }
            p->pos++;
            break;
        }
        if (c == '\0')
            return nul_byte(p);
        if (c == '\n')
            p->line++;
        put(p, c);
        p->pos++;
    }
    if (p->pos < p->len && p->buf[p->pos] != p->delim && !line_end(p)) {
        char c = p->buf[p->pos];
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s:%zu: unexpected '%c' after a closing quote (a quote inside a "
                          "quoted field is written '\"\"')",
                          p->name, p->line, c >= 0x20 && c < 0x7f ? c : '?');
    }
    return LETHE_OK;
}

/* One delimited record; pos is at its first byte (not at a line end).
 * Leaves pos after the record's line end. */
static lethe_status delimited_record(parser *p)
{
    for (;;) {
        char *f = p->store + p->used;
        lethe_status st;
        if (p->pos < p->len && p->buf[p->pos] == '"') {
            if ((st = quoted_field(p)) != LETHE_OK)
                return st;
        } else {
            while (p->pos < p->len && p->buf[p->pos] != p->delim && !line_end(p)) {
                if (p->buf[p->pos] == '\0')
                    return nul_byte(p);
                put(p, p->buf[p->pos++]);
            }
        }
        put(p, '\0');
        if ((st = push_field(p, f)) != LETHE_OK)
            return st;
        if (p->pos < p->len && p->buf[p->pos] == p->delim) {
            p->pos++;
            continue;
        }
        size_t e = line_end(p);
        if (e) {
            p->pos += e;
            p->line++;
        }
        return LETHE_OK;
    }
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* One blank-separated record; pos is at its first field. */
static lethe_status blank_record(parser *p)
{
    for (;;) {
        char *f = p->store + p->used;
        while (p->pos < p->len && !is_blank(p->buf[p->pos]) && p->buf[p->pos] != '\n') {
            if (p->buf[p->pos] == '\0')
                return nul_byte(p);
            put(p, p->buf[p->pos++]);
        }
        put(p, '\0');
        lethe_status st = push_field(p, f);
        if (st != LETHE_OK)
            return st;
        while (p->pos < p->len && is_blank(p->buf[p->pos]))
            p->pos++;
        if (p->pos >= p->len)
            return LETHE_OK;
        if (p->buf[p->pos] == '\n') {
            p->pos++;
            p->line++;
            return LETHE_OK;
        }
    }
}

/* Skip empty (or, in blank mode, all-blank) lines. Returns 1 if a record
 * follows, with pos at its first byte (blank mode: its first field). */
static int next_record(parser *p)
{
    for (;;) {
        size_t at = p->pos;
        if (p->delim == ' ')
            while (at < p->len && is_blank(p->buf[at]))
                at++;
        p->pos = at;
        if (at >= p->len)
            return 0;
        size_t e = p->delim == ' ' ? (p->buf[at] == '\n') : line_end(p);
        if (!e)
            return 1;
        p->pos = at + e;
        p->line++;
    }
}

lethe_status lethe_csv_parse(const char *buf, size_t len, const char *name,
                             const lethe_csv_opts *opts, lethe_csv *out)
{
    memset(out, 0, sizeof *out);
    lethe_csv_opts o = opts ? *opts : (lethe_csv_opts){0};
    if (!o.delim)
        o.delim = ',';
    if (o.delim == '"' || o.delim == '\n' || o.delim == '\r')
        return lethe_fail(LETHE_ERR_INVALID, "%s: '%c' cannot separate CSV fields", name,
                          o.delim == '"' ? '"' : '?');
    lethe_csv c = {0};
    size_t *lines = NULL, n_lines = 0, lines_cap = 0;
    lethe_status st = LETHE_OK;
    parser p = {.buf = buf, .len = len, .line = 1, .delim = o.delim, .name = name};
    p.store_cap = len + 2;
    if (!(c.name = strdup(name)) || !(p.store = malloc(p.store_cap))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        p.pos = 3;
    for (size_t k = 0; k < o.skip_lines && p.pos < len; k++) {
        const char *nl = memchr(buf + p.pos, '\n', len - p.pos);
        p.pos = nl ? (size_t)(nl - buf) + 1 : len;
        p.line++;
    }
    size_t expect = 0, expect_line = 0, first_data = 0;
    int have_header = 0;
    while ((o.max_rows == 0 || n_lines < o.max_rows) && next_record(&p)) {
        size_t rec_line = p.line, before = p.n_fields;
        st = o.delim == ' ' ? blank_record(&p) : delimited_record(&p);
        if (st != LETHE_OK)
            goto fail;
        size_t n = p.n_fields - before;
        if (expect == 0) {
            expect = n;
            expect_line = rec_line;
        } else if (n != expect) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: row has %zu field%s, expected %zu (as on line %zu)",
                            name, rec_line, n, n == 1 ? "" : "s", expect, expect_line);
            goto fail;
        }
        if (o.header && !have_header) {
            have_header = 1;
            first_data = p.n_fields;
            continue;
        }
        if (n_lines == lines_cap) {
            size_t ncap = lines_cap ? lines_cap * 2 : 256;
            size_t *nl = realloc(lines, ncap * sizeof *nl);
            if (!nl) {
                st = lethe_fail(LETHE_ERR_NOMEM, "%s:%zu: out of memory", name, rec_line);
                goto fail;
            }
            lines = nl;
            lines_cap = ncap;
        }
        lines[n_lines++] = rec_line;
    }
    if (o.header && !have_header) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no header row (the file has no records)", name);
        goto fail;
    }
    c.n_cols = expect;
    c.n_rows = n_lines;
    if (have_header) {
        if (!(c.header = malloc(expect * sizeof *c.header))) {
            st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", name);
            goto fail;
        }
        memcpy(c.header, p.fields, expect * sizeof *c.header);
        memmove(p.fields, p.fields + first_data, (p.n_fields - first_data) * sizeof *p.fields);
        p.n_fields -= first_data;
    }
    c.cells = p.fields;
    c.lines = lines;
    c.store = p.store;
    *out = c;
    return LETHE_OK;
fail:
    free(p.fields);
    free(p.store);
    free(lines);
    lethe_csv_free(&c);
    return st;
}

lethe_status lethe_csv_read(const char *path, const lethe_csv_opts *opts, lethe_csv *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_csv_parse((const char *)data, len, path, opts, out);
    free(data);
    return st;
}

const char *lethe_csv_cell(const lethe_csv *c, size_t row, size_t col)
{
    LETHE_ASSERT(row < c->n_rows && col < c->n_cols);
    return c->cells[row * c->n_cols + col];
}

lethe_status lethe_csv_column(const lethe_csv *c, const char *name, size_t *col)
{
    if (!c->header)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no header row to find column '%s' in", c->name,
                          name);
    for (size_t j = 0; j < c->n_cols; j++)
        if (!strcmp(c->header[j], name)) {
            *col = j;
            return LETHE_OK;
        }
    char list[256];
    size_t k = 0;
    list[0] = '\0';
    for (size_t j = 0; j < c->n_cols && k + 8 < sizeof list; j++) {
        int w = snprintf(list + k, sizeof list - k, "%s%s", j ? ", " : "", c->header[j]);
        if (w < 0)
            break;
        k += (size_t)w;
    }
    if (k >= sizeof list - 1)
        memcpy(list + sizeof list - 5, "...", 4);
    return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no column '%s' (columns: %s)", c->name, name,
                      list);
}

/* Parse one cell as a finite double; 0 on success. */
static int cell_number(const char *s, double *v)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return -1;
    char *end;
    *v = strtod(s, &end);
    if (end == s)
        return -1;
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    return *end ? -1 : 0;
}

static lethe_status bad_cell(const lethe_csv *c, size_t r, size_t j, const char *why)
{
    const char *s = lethe_csv_cell(c, r, j);
    char shown[44];
    size_t k = 0;
    for (; s[k] && k < 40; k++)
        shown[k] = (s[k] >= 0x20 && s[k] < 0x7f) || (unsigned char)s[k] >= 0x80 ? s[k] : '?';
    shown[k] = '\0';
    if (s[k])
        memcpy(shown + (k - 3), "...", 4);
    if (c->header)
        return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: column '%s': '%s' %s", c->name, c->lines[r],
                          c->header[j], shown, why);
    return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: column %zu: '%s' %s", c->name, c->lines[r],
                      j + 1, shown, why);
}

/* Shared by the double and float conversions: exactly one of d, f is set. */
static lethe_status to_numbers(const lethe_csv *c, size_t col, size_t ncols, double *d,
                               float *f)
{
    if (col > c->n_cols || ncols > c->n_cols - col)
        return lethe_fail(LETHE_ERR_INVALID, "%s: columns %zu..%zu requested, the table has %zu",
                          c->name, col + 1, col + ncols, c->n_cols);
    for (size_t r = 0; r < c->n_rows; r++)
        for (size_t j = 0; j < ncols; j++) {
            double v;
            if (cell_number(lethe_csv_cell(c, r, col + j), &v) != 0)
                return bad_cell(c, r, col + j, "is not a number");
            if (!isfinite(v))
                return bad_cell(c, r, col + j, "is not a finite number");
            if (d) {
                d[r * ncols + j] = v;
            } else {
                if (fabs(v) > FLT_MAX)
                    return bad_cell(c, r, col + j, "is out of range for a float");
                f[r * ncols + j] = (float)v;
            }
        }
    return LETHE_OK;
}

lethe_status lethe_csv_to_double(const lethe_csv *c, size_t col, size_t ncols, double *out)
{
    return to_numbers(c, col, ncols, out, NULL);
}

lethe_status lethe_csv_to_float(const lethe_csv *c, size_t col, size_t ncols, float *out)
{
    return to_numbers(c, col, ncols, NULL, out);
}
