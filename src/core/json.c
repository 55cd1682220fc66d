/* JSON parsing with positioned errors, and typed getters, over cJSON. */
#include "lethe/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"

static int is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Fail with "NAME:LINE:COL: WHAT near '...'" for byte offset pos of buf. */
static lethe_status fail_at(const char *buf, size_t len, size_t pos, const char *name,
                            size_t first_line, const char *what)
{
    size_t line = first_line, col = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (pos >= len)
        return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu:%zu: %s at end of input", name, line, col,
                          what);
    char near[28];
    size_t k = 0;
    for (size_t i = pos; i < len && k < 24 && buf[i] != '\n' && buf[i] != '\r'; i++) {
        unsigned char c = (unsigned char)buf[i];
        near[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    near[k] = '\0';
    return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu:%zu: %s near '%s'", name, line, col, what, near);
}

lethe_status lethe_json_parse_at(const char *buf, size_t len, const char *name,
                                 size_t first_line, cJSON **out)
{
    *out = NULL;
    const char *nul = len ? memchr(buf, '\0', len) : NULL;
    if (nul)
        return fail_at(buf, len, (size_t)(nul - buf), name, first_line,
                       "NUL byte in JSON text");
    size_t start = 0;
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        start = 3;
    while (start < len && is_json_space((unsigned char)buf[start]))
        start++;
    if (start == len)
        return fail_at(buf, len, len, name, first_line, "expected a JSON value");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t pos = end ? (size_t)(end - buf) : 0;
        return fail_at(buf, len, pos, name, first_line, "invalid JSON");
    }
    size_t pos = (size_t)(end - buf);
    while (pos < len && is_json_space((unsigned char)buf[pos]))
        pos++;
    if (pos < len) {
        cJSON_Delete(root);
        return fail_at(buf, len, pos, name, first_line, "unexpected text after the JSON value");
    }
    *out = root;
    return LETHE_OK;
}

lethe_status lethe_json_parse(const char *buf, size_t len, const char *name, cJSON **out)
{
    return lethe_json_parse_at(buf, len, name, 1, out);
}

lethe_status lethe_json_read(const char *path, cJSON **out)
{
    *out = NULL;
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_json_parse((const char *)data, len, path, out);
    free(data);
    return st;
}

const char *lethe_json_type_name(const cJSON *node)
{
    if (!node)
        return "nothing";
    if (cJSON_IsObject(node))
        return "object";
    if (cJSON_IsArray(node))
        return "array";
    if (cJSON_IsString(node))
        return "string";
    if (cJSON_IsNumber(node))
        return "number";
    if (cJSON_IsBool(node))
        return "boolean";
    if (cJSON_IsNull(node))
        return "null";
    return "invalid";
}

/* "an object", "a string", ...: a node's type with its article. */
static const char *type_phrase(const cJSON *node)
{
    if (!node)
        return "nothing";
    if (cJSON_IsObject(node))
        return "an object";
    if (cJSON_IsArray(node))
        return "an array";
    if (cJSON_IsString(node))
        return "a string";
    if (cJSON_IsNumber(node))
        return "a number";
    if (cJSON_IsBool(node))
        return "a boolean";
    if (cJSON_IsNull(node))
        return "null";
    return "an invalid node";
}

/* The member `key` of obj: LETHE_OK with *item set (NULL when absent and
 * `optional`), or a failure when obj is no object or a required key is absent. */
static lethe_status member(const cJSON *obj, const char *key, const char *where, int optional,
                           const cJSON **item)
{
    *item = NULL;
    if (!cJSON_IsObject(obj))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: expected an object, got %s", where,
                          type_phrase(obj));
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || (optional && cJSON_IsNull(it))) {
        if (optional)
            return LETHE_OK;
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: missing key '%s'", where, key);
    }
    *item = it;
    return LETHE_OK;
}

static lethe_status wrong_type(const char *where, const char *key, const char *want,
                               const cJSON *got)
{
    return lethe_fail(LETHE_ERR_FORMAT, "%s: key '%s': expected %s, got %s", where, key, want,
                      type_phrase(got));
}

lethe_status lethe_json_get_object(const cJSON *obj, const char *key, const char *where,
                                   const cJSON **out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    if (st != LETHE_OK)
        return st;
    if (!cJSON_IsObject(it))
        return wrong_type(where, key, "an object", it);
    *out = it;
    return LETHE_OK;
}

lethe_status lethe_json_get_array(const cJSON *obj, const char *key, const char *where,
                                  const cJSON **out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    if (st != LETHE_OK)
        return st;
    if (!cJSON_IsArray(it))
        return wrong_type(where, key, "an array", it);
    *out = it;
    return LETHE_OK;
}

static lethe_status as_string(const cJSON *it, const char *key, const char *where,
                              const char **out)
{
    if (!cJSON_IsString(it) || !it->valuestring)
        return wrong_type(where, key, "a string", it);
    *out = it->valuestring;
    return LETHE_OK;
}

static lethe_status as_number(const cJSON *it, const char *key, const char *where, double *out)
{
    if (!cJSON_IsNumber(it))
        return wrong_type(where, key, "a number", it);
    if (!isfinite(it->valuedouble))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: key '%s': number out of range", where, key);
    *out = it->valuedouble;
    return LETHE_OK;
}

static lethe_status as_int(const cJSON *it, const char *key, const char *where, long long *out)
{
    double v = 0;
    lethe_status st = as_number(it, key, where, &v);
    if (st != LETHE_OK)
        return st;
    if (v != floor(v))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: key '%s': expected an integer, got %.17g", where,
                          key, v);
    if (fabs(v) > 9007199254740992.0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: key '%s': integer %.17g is out of range", where,
                          key, v);
    *out = (long long)v;
    return LETHE_OK;
}

static lethe_status as_bool(const cJSON *it, const char *key, const char *where, int *out)
{
    if (!cJSON_IsBool(it))
        return wrong_type(where, key, "a boolean", it);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return LETHE_OK;
}

lethe_status lethe_json_get_string(const cJSON *obj, const char *key, const char *where,
                                   const char **out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    return st != LETHE_OK ? st : as_string(it, key, where, out);
}

lethe_status lethe_json_get_number(const cJSON *obj, const char *key, const char *where,
                                   double *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    return st != LETHE_OK ? st : as_number(it, key, where, out);
}

lethe_status lethe_json_get_int(const cJSON *obj, const char *key, const char *where,
                                long long *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    return st != LETHE_OK ? st : as_int(it, key, where, out);
}

lethe_status lethe_json_get_bool(const cJSON *obj, const char *key, const char *where, int *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 0, &it);
    return st != LETHE_OK ? st : as_bool(it, key, where, out);
}

lethe_status lethe_json_get_strings(const cJSON *obj, const char *key, const char *where,
                                    const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const cJSON *arr;
    lethe_status st = lethe_json_get_array(obj, key, where, &arr);
    if (st != LETHE_OK)
        return st;
    size_t count = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr) {
        if (!cJSON_IsString(el) || !el->valuestring)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: key '%s': element %zu is %s, expected a string", where, key,
                              count, type_phrase(el));
        count++;
    }
    if (count == 0)
        return LETHE_OK;
    const char **v = malloc(count * sizeof *v);
    if (!v)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: key '%s': out of memory", where, key);
    size_t i = 0;
    cJSON_ArrayForEach(el, arr) v[i++] = el->valuestring;
    *out = v;
    *n = count;
    return LETHE_OK;
}

lethe_status lethe_json_opt_string(const cJSON *obj, const char *key, const char *where,
                                   const char *dflt, const char **out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 1, &it);
    if (st != LETHE_OK)
        return st;
    if (!it) {
        *out = dflt;
        return LETHE_OK;
    }
    return as_string(it, key, where, out);
}

lethe_status lethe_json_opt_number(const cJSON *obj, const char *key, const char *where,
                                   double dflt, double *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 1, &it);
    if (st != LETHE_OK)
        return st;
    if (!it) {
        *out = dflt;
        return LETHE_OK;
    }
    return as_number(it, key, where, out);
}

lethe_status lethe_json_opt_int(const cJSON *obj, const char *key, const char *where,
                                long long dflt, long long *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 1, &it);
    if (st != LETHE_OK)
        return st;
    if (!it) {
        *out = dflt;
        return LETHE_OK;
    }
    return as_int(it, key, where, out);
}

lethe_status lethe_json_opt_bool(const cJSON *obj, const char *key, const char *where, int dflt,
                                 int *out)
{
    const cJSON *it;
    lethe_status st = member(obj, key, where, 1, &it);
    if (st != LETHE_OK)
        return st;
    if (!it) {
        *out = dflt;
        return LETHE_OK;
    }
    return as_bool(it, key, where, out);
}

lethe_status lethe_json_write(const char *dir, const char *name, const cJSON *j)
{
    char path[4200];
    char *text = cJSON_Print(j);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = '\n'; /* cJSON_Print's NUL becomes the final newline */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lethe_status st = lethe_file_write_atomic(path, text, len + 1);
    free(text);
    return st;
}
