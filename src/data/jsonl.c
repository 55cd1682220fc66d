/* JSON Lines: one JSON object per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"
#include "lethe/loaders.h"

void lethe_jsonl_free(lethe_jsonl *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++)
        cJSON_Delete(j->rows[i]);
    free(j->rows);
    free(j->lines);
    free(j->name);
    memset(j, 0, sizeof *j);
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Append obj (taking it) as row n; grows the arrays. */
static lethe_status push_row(lethe_jsonl *j, size_t *cap, cJSON *obj, size_t line)
{
    if (j->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        cJSON **rows = realloc(j->rows, ncap * sizeof *rows);
        if (rows)
            j->rows = rows;
        size_t *lines = realloc(j->lines, ncap * sizeof *lines);
        if (lines)
            j->lines = lines;
        if (!rows || !lines) {
            cJSON_Delete(obj);
            return lethe_fail(LETHE_ERR_NOMEM, "%s:%zu: out of memory", j->name, line);
        }
        *cap = ncap;
    }
    j->rows[j->n] = obj;
    j->lines[j->n] = line;
    j->n++;
    return LETHE_OK;
}

lethe_status lethe_jsonl_parse(const char *buf, size_t len, const char *name, lethe_jsonl *out)
{
    memset(out, 0, sizeof *out);
    lethe_jsonl j = {0};
    size_t cap = 0;
    lethe_status st = LETHE_OK;
    if (!(j.name = strdup(name)))
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", name);
    size_t pos = 0, line = 1;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        pos = 3;
    while (pos < len) {
        const char *start = buf + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        if (!is_blank(start, n)) {
            cJSON *obj;
            st = lethe_json_parse_at(start, n, name, line, &obj);
            if (st != LETHE_OK)
                goto fail;
            if (!cJSON_IsObject(obj)) {
                const char *t = lethe_json_type_name(obj);
                st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: expected a JSON object, got %s %s",
                                name, line, t[0] == 'a' ? "an" : "a", t);
                cJSON_Delete(obj);
                goto fail;
            }
            if ((st = push_row(&j, &cap, obj, line)) != LETHE_OK)
                goto fail;
        }
        pos += n + (nl ? 1 : 0);
        line++;
    }
    *out = j;
    return LETHE_OK;
fail:
    lethe_jsonl_free(&j);
    return st;
}

lethe_status lethe_jsonl_read(const char *path, lethe_jsonl *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_jsonl_parse((const char *)data, len, path, out);
    free(data);
    return st;
}

const char *lethe_jsonl_where(const lethe_jsonl *j, size_t i, char *buf, size_t cap)
{
    LETHE_ASSERT(i < j->n && cap > 0);
    snprintf(buf, cap, "%s:%zu", j->name ? j->name : "(jsonl)", j->lines[i]);
    return buf;
}
