/* JSON through cJSON: parsing with file:line:column errors, and typed
 * getters whose failures say where, which key, and what was wrong.
 *
 * Trees are plain cJSON trees (free with cJSON_Delete). Getters hand out
 * pointers into the tree: they live as long as the tree does.
 *
 * `where` arguments label messages: a file name ("config.json"), a file and
 * line ("tofu.jsonl:12"), or a path inside a document ("config.json: model").
 * A failed getter returns LETHE_ERR_NOT_FOUND for a missing key and
 * LETHE_ERR_FORMAT for a value of the wrong type or range, with messages like
 *   config.json: missing key 'lr'
 *   config.json: key 'lr': expected a number, got a string
 *
 * cJSON records its last parse error in a process-wide variable; lethe never
 * reads it, but parsing from several threads at once is a benign race there. */
#ifndef LETHE_JSON_H
#define LETHE_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* Parse buf[0..len) (NUL termination not needed) as one JSON value; `name`
 * labels messages. Leading UTF-8 byte-order mark and surrounding whitespace
 * are allowed; trailing content and NUL bytes are not. On failure: NULL in
 * *out and LETHE_ERR_FORMAT with "NAME:LINE:COL: invalid JSON near '...'".
 * The caller frees *out with cJSON_Delete. */
lethe_status lethe_json_parse(const char *buf, size_t len, const char *name, cJSON **out);

/* As lethe_json_parse, but buf's first line is line `first_line` of `name`
 * (for a value cut out of a larger file, such as one line of JSON Lines). */
lethe_status lethe_json_parse_at(const char *buf, size_t len, const char *name,
                                 size_t first_line, cJSON **out);

/* Read and parse a file (gzip-compressed files are inflated). Caller frees. */
lethe_status lethe_json_read(const char *path, cJSON **out);
/* Write j pretty-printed, with a closing newline, atomically to dir/name
 * (a run's config.json, an evaluation's summary). LETHE_ERR_IO,
 * LETHE_ERR_NOMEM. */
lethe_status lethe_json_write(const char *dir, const char *name, const cJSON *j);

/* A short name for a node's type: "object", "array", "string", "number",
 * "boolean", "null" or "invalid". Static storage. */
const char *lethe_json_type_name(const cJSON *node);

/* Required members of the object `obj` (an error if obj is not an object).
 * Keys are case-sensitive. *out points into the tree. */
lethe_status lethe_json_get_object(const cJSON *obj, const char *key, const char *where,
                                   const cJSON **out);
lethe_status lethe_json_get_array(const cJSON *obj, const char *key, const char *where,
                                  const cJSON **out);
lethe_status lethe_json_get_string(const cJSON *obj, const char *key, const char *where,
                                   const char **out);
lethe_status lethe_json_get_number(const cJSON *obj, const char *key, const char *where,
                                   double *out);
/* A number with no fractional part, within [-2^53, 2^53]. */
lethe_status lethe_json_get_int(const cJSON *obj, const char *key, const char *where,
                                long long *out);
lethe_status lethe_json_get_bool(const cJSON *obj, const char *key, const char *where,
                                 int *out);
/* An array whose every element is a string: *out is a new array of *n
 * pointers into the tree (NULL when *n is 0). The caller frees *out with
 * free(); the strings belong to the tree. */
lethe_status lethe_json_get_strings(const cJSON *obj, const char *key, const char *where,
                                    const char ***out, size_t *n);

/* Optional members: a missing key (or an explicit null) leaves `dflt` in
 * *out and succeeds; a present key of the wrong type still fails. */
lethe_status lethe_json_opt_string(const cJSON *obj, const char *key, const char *where,
                                   const char *dflt, const char **out);
lethe_status lethe_json_opt_number(const cJSON *obj, const char *key, const char *where,
                                   double dflt, double *out);
lethe_status lethe_json_opt_int(const cJSON *obj, const char *key, const char *where,
                                long long dflt, long long *out);
lethe_status lethe_json_opt_bool(const cJSON *obj, const char *key, const char *where, int dflt,
                                 int *out);

LETHE_API_END
#endif
