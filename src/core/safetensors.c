/* safetensors: a fully validating reader, F32 conversion, and a
 * deterministic F32 writer. See include/lethe/safetensors.h. */
#include "lethe/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"

static const struct {
    const char *name;
    unsigned bits;
} dtype_table[LETHE_DTYPE_COUNT] = {
    [LETHE_DTYPE_BOOL] = {"BOOL", 8},       [LETHE_DTYPE_U8] = {"U8", 8},
    [LETHE_DTYPE_I8] = {"I8", 8},           [LETHE_DTYPE_I16] = {"I16", 16},
    [LETHE_DTYPE_U16] = {"U16", 16},        [LETHE_DTYPE_F16] = {"F16", 16},
    [LETHE_DTYPE_BF16] = {"BF16", 16},      [LETHE_DTYPE_I32] = {"I32", 32},
    [LETHE_DTYPE_U32] = {"U32", 32},        [LETHE_DTYPE_F32] = {"F32", 32},
    [LETHE_DTYPE_F64] = {"F64", 64},        [LETHE_DTYPE_I64] = {"I64", 64},
    [LETHE_DTYPE_U64] = {"U64", 64},        [LETHE_DTYPE_C64] = {"C64", 64},
    [LETHE_DTYPE_F8_E4M3] = {"F8_E4M3", 8}, [LETHE_DTYPE_F8_E5M2] = {"F8_E5M2", 8},
    [LETHE_DTYPE_F8_E8M0] = {"F8_E8M0", 8}, [LETHE_DTYPE_F6_E2M3] = {"F6_E2M3", 6},
    [LETHE_DTYPE_F6_E3M2] = {"F6_E3M2", 6}, [LETHE_DTYPE_F4] = {"F4", 4},
};

const char *lethe_dtype_name(lethe_dtype d)
{
    LETHE_ASSERT((unsigned)d < LETHE_DTYPE_COUNT);
    return dtype_table[d].name;
}

bool lethe_dtype_from_name(const char *name, lethe_dtype *out)
{
    for (int d = 0; d < LETHE_DTYPE_COUNT; d++)
        if (!strcmp(dtype_table[d].name, name)) {
            *out = (lethe_dtype)d;
            return true;
        }
    return false;
}

unsigned lethe_dtype_bits(lethe_dtype d)
{
    LETHE_ASSERT((unsigned)d < LETHE_DTYPE_COUNT);
    return dtype_table[d].bits;
}

bool lethe_dtype_to_f32_supported(lethe_dtype d)
{
    switch (d) {
    case LETHE_DTYPE_F32: case LETHE_DTYPE_F16: case LETHE_DTYPE_BF16: case LETHE_DTYPE_F64:
    case LETHE_DTYPE_I64: case LETHE_DTYPE_I32: case LETHE_DTYPE_U8: case LETHE_DTYPE_I8:
    case LETHE_DTYPE_BOOL:
        return true;
    default:
        return false;
    }
}

/* ---- helpers for messages ---------------------------------------------- */

#define QUOTE_CAP 96

/* A printable, bounded copy of s for a one-line message: control bytes
 * become \xNN and long strings end in "...". Returns buf. */
static const char *quoted(char buf[QUOTE_CAP], const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        /* Cut at a character boundary, or anyway before the buffer ends. */
        if ((o >= QUOTE_CAP - 16 && (c & 0xC0) != 0x80) || o >= QUOTE_CAP - 8) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, QUOTE_CAP - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}

/* "[2, 3]", shortened with "..." when long. */
static const char *shape_str(char buf[QUOTE_CAP], const size_t *shape, size_t rank)
{
    size_t o = 0;
    buf[o++] = '[';
    for (size_t i = 0; i < rank; i++) {
        if (o > QUOTE_CAP - 32) {
            o += (size_t)snprintf(buf + o, QUOTE_CAP - o, ", ...");
            break;
        }
        o += (size_t)snprintf(buf + o, QUOTE_CAP - o, i ? ", %zu" : "%zu", shape[i]);
    }
    snprintf(buf + o, QUOTE_CAP - o, "]");
    return buf;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Returns n when s[0..n) is valid, else the offset of the first bad byte. */
static size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (n - i <= k)
            return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += k + 1;
    }
    return n;
}

/* ---- reading ------------------------------------------------------------ */

void lethe_safetensors_free(lethe_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
        free(st->tensors[i].shape);
    }
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->tensors);
    free(st->meta);
    free(st->name);
    free(st->owned);
    free(st);
}

/* Length of the strict JSON number at s[0..n), or 0 when there is none;
 * *is_int says whether it has neither fraction nor exponent. */
static size_t json_number_len(const char *s, size_t n, int *is_int)
{
#define DIGIT(k) ((k) < n && s[k] >= '0' && s[k] <= '9')
    size_t i = 0;
    *is_int = 1;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (DIGIT(i))
        while (DIGIT(i))
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        *is_int = 0;
        i++;
        if (!DIGIT(i))
            return 0;
        while (DIGIT(i))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!DIGIT(i))
            return 0;
        while (DIGIT(i))
            i++;
    }
    return i;
#undef DIGIT
}

/* What cJSON does not check, in a header it has accepted: numbers follow
 * JSON's grammar, and those inside an entry's "shape" or "data_offsets"
 * array are written as integers (the tree only holds doubles, so "4.0"
 * would pass unseen); strings hold no raw control bytes, and no NUL (names
 * become C strings). Depth 1 is the header object, 2 an entry, 3 its arrays. */
static lethe_status header_scan(const char *h, size_t n, const char *file)
{
    int depth = 0, key_is_int = 0, int_array = 0;
    size_t i = 0;
    while (i < n) {
        char c = h[i];
        if (c == '"') {
            size_t start = ++i;
            for (; i < n && h[i] != '"'; i++) {
                if ((unsigned char)h[i] < 0x20)
                    return lethe_fail(LETHE_ERR_FORMAT,
                                      "%s: header string holds the control byte 0x%02x at "
                                      "header offset %zu",
                                      file, (unsigned char)h[i], i);
                if (h[i] == '\\') {
                    if (n - i > 5 && !memcmp(h + i + 1, "u0000", 5))
                        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                                          "%s: header string holds an escaped NUL character "
                                          "(\\u0000) at header offset %zu",
                                          file, i);
                    i++; /* skip the escaped character */
                }
            }
            size_t len = i++ - start, j = i;
            while (j < n && strchr(" \t\r\n", h[j]) && h[j])
                j++;
            if (depth == 2 && j < n && h[j] == ':') /* a key of an entry */
                key_is_int = (len == 5 && !memcmp(h + start, "shape", 5)) ||
                             (len == 12 && !memcmp(h + start, "data_offsets", 12));
        } else if (c == '{' || c == '[') {
            if (++depth == 3)
                int_array = c == '[' && key_is_int;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
        } else if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < n && h[i] && strchr("0123456789+-.eE", h[i]))
                i++;
            int is_int, shown = (int)(i - start > 40 ? 40 : i - start);
            if (json_number_len(h + start, i - start, &is_int) != i - start)
                return lethe_fail(LETHE_ERR_FORMAT, "%s: header number '%.*s' is not valid JSON",
                                  file, shown, h + start);
            if (depth == 3 && int_array && !is_int)
                return lethe_fail(LETHE_ERR_FORMAT,
                                  "%s: header number '%.*s' is not an integer (shapes and "
                                  "data_offsets hold non-negative integers)",
                                  file, shown, h + start);
        } else {
            i++;
        }
    }
    return LETHE_OK;
}

/* A JSON value that must be a non-negative integer that fits a size_t. */
static lethe_status json_size(const cJSON *v, size_t *out, const char *file, const char *tname,
                              const char *what)
{
    char q[QUOTE_CAP];
    if (!cJSON_IsNumber(v))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' %s is not a number", file,
                          quoted(q, tname), what);
    double d = v->valuedouble;
    if (d < 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' %s (%.0f) is negative", file,
                          quoted(q, tname), what, d);
    /* 2^53: beyond it a double no longer holds every integer exactly. */
    if (!isfinite(d) || d > 9007199254740992.0 || d > (double)SIZE_MAX)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' %s is too large", file,
                          quoted(q, tname), what);
    if (d != floor(d))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' %s is not an integer", file,
                          quoted(q, tname), what);
    *out = (size_t)d;
    return LETHE_OK;
}

/* Fill t from one header entry {"dtype", "shape", "data_offsets"}. Keys
 * other than those three are ignored, as the reference reader does. */
static lethe_status parse_entry(const cJSON *e, lethe_st_tensor *t, const char *file)
{
    char q[QUOTE_CAP], q2[QUOTE_CAP];
    const char *tn = quoted(q, t->name);
    if (!cJSON_IsObject(e))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' is not an object", file, tn);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = !strcmp(k->string, "dtype")          ? &dtype
                             : !strcmp(k->string, "shape")        ? &shape
                             : !strcmp(k->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot)
            continue;
        if (*slot)
            return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' has two '%s' keys", file, tn,
                              k->string);
        *slot = k;
    }
    if (!dtype || !shape || !offs)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' lacks '%s'", file, tn,
                          !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' dtype is not a string", file, tn);
    if (!lethe_dtype_from_name(dtype->valuestring, &t->dtype))
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' has unknown dtype '%s' (known: BOOL, U8, I8, I16, "
                          "U16, F16, BF16, I32, U32, F32, F64, I64, U64, C64, F8_E4M3, "
                          "F8_E5M2, F8_E8M0, F6_E2M3, F6_E3M2, F4)",
                          file, tn, quoted(q2, dtype->valuestring));
    if (!cJSON_IsArray(shape))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' shape is not an array", file, tn);
    t->rank = (size_t)cJSON_GetArraySize(shape);
    if (t->rank) {
        t->shape = calloc(t->rank, sizeof *t->shape);
        if (!t->shape)
            return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
    }
    size_t i = 0;
    for (const cJSON *v = shape->child; v; v = v->next, i++) {
        char what[48];
        snprintf(what, sizeof what, "shape entry %zu", i);
        lethe_status st = json_size(v, &t->shape[i], file, t->name, what);
        if (st != LETHE_OK)
            return st;
    }
    t->numel = 1;
    for (i = 0; i < t->rank; i++) {
        if (t->shape[i] && t->numel > SIZE_MAX / t->shape[i])
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: tensor '%s' shape %s has too many elements (overflow)", file,
                              tn, shape_str(q2, t->shape, t->rank));
        t->numel *= t->shape[i];
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' data_offsets is not an array of two integers", file,
                          tn);
    lethe_status st = json_size(offs->child, &t->begin, file, t->name, "data_offsets begin");
    if (st == LETHE_OK)
        st = json_size(offs->child->next, &t->end, file, t->name, "data_offsets end");
    if (st != LETHE_OK)
        return st;
    if (t->end < t->begin)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' data_offsets [%zu, %zu] end before "
                          "they begin", file, tn, t->begin, t->end);
    unsigned bits = lethe_dtype_bits(t->dtype);
    if (t->numel > SIZE_MAX / bits)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' shape %s has too many elements (overflow)", file, tn,
                          shape_str(q2, t->shape, t->rank));
    size_t nbits = t->numel * bits;
    if (nbits % 8)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' has %zu %s elements, which do not fill whole bytes",
                          file, tn, t->numel, dtype_table[t->dtype].name);
    if (nbits / 8 != t->end - t->begin)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: tensor '%s' holds %zu %s elements (%zu bytes) but data_offsets "
                          "[%zu, %zu] span %zu bytes",
                          file, tn, t->numel, dtype_table[t->dtype].name, nbits / 8, t->begin,
                          t->end, t->end - t->begin);
    return LETHE_OK;
}

static lethe_status parse_meta(const cJSON *m, lethe_safetensors *st)
{
    const char *file = st->name;
    if (!cJSON_IsObject(m))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: __metadata__ is not a map of strings to strings",
                          file);
    size_t n = (size_t)cJSON_GetArraySize(m);
    if (n && !(st->meta = calloc(n, sizeof *st->meta)))
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
    char q[QUOTE_CAP];
    for (const cJSON *v = m->child; v; v = v->next) {
        if (!cJSON_IsString(v))
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: __metadata__ value of '%s' is not a string (metadata maps "
                              "strings to strings)",
                              file, quoted(q, v->string));
        lethe_st_meta *e = &st->meta[st->n_meta++];
        if (!(e->key = strdup(v->string)) || !(e->value = strdup(v->valuestring)))
            return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
    }
    return LETHE_OK;
}

static int meta_by_key(const void *a, const void *b)
{
    return strcmp(((const lethe_st_meta *)a)->key, ((const lethe_st_meta *)b)->key);
}

static int name_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tensor_by_layout(const void *a, const void *b)
{
    const lethe_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Names unique; then the buffer covered exactly, in layout order. */
static lethe_status check_layout(lethe_safetensors *st)
{
    const char *file = st->name;
    char q[QUOTE_CAP], q2[QUOTE_CAP];
    if (st->n_tensors > 1) {
        char **names = malloc(st->n_tensors * sizeof *names);
        if (!names)
            return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < st->n_tensors; i++)
            names[i] = st->tensors[i].name;
        qsort(names, st->n_tensors, sizeof *names, name_ptr_cmp);
        for (size_t i = 1; i < st->n_tensors; i++)
            if (!strcmp(names[i - 1], names[i])) {
                lethe_status s = lethe_fail(LETHE_ERR_FORMAT,
                                            "%s: tensor name '%s' appears twice in the header",
                                            file, quoted(q, names[i]));
                free(names);
                return s;
            }
        free(names);
        qsort(st->tensors, st->n_tensors, sizeof *st->tensors, tensor_by_layout);
    }
    size_t expected = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const lethe_st_tensor *t = &st->tensors[i];
        if (t->begin > expected)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: tensor '%s' data_offsets [%zu, %zu] leave a gap after byte "
                              "%zu",
                              file, quoted(q, t->name), t->begin, t->end, expected);
        if (t->begin < expected) {
            const lethe_st_tensor *p = &st->tensors[i - 1];
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: tensor '%s' data_offsets [%zu, %zu] overlap tensor '%s' "
                              "[%zu, %zu]",
                              file, quoted(q, t->name), t->begin, t->end, quoted(q2, p->name),
                              p->begin, p->end);
        }
        expected = t->end;
    }
    if (expected < st->data_len)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: %zu trailing bytes after the last tensor's data (the tensors "
                          "cover %zu of %zu data bytes)",
                          file, st->data_len - expected, expected, st->data_len);
    if (expected > st->data_len)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: file is truncated: the tensors need %zu data bytes but only %zu "
                          "follow the header",
                          file, expected, st->data_len);
    return LETHE_OK;
}

/* Everything after the 8-byte length and bounds checks: the JSON header. */
static lethe_status parse_header(const char *h, size_t n, lethe_safetensors *st)
{
    const char *file = st->name;
    size_t bad = utf8_check((const unsigned char *)h, n);
    if (bad != n)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %zu of the "
                          "header)", file, bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, n, &end, 0);
    if (!root) {
        size_t at = end && end >= h && end <= h + n ? (size_t)(end - h) : 0;
        return lethe_fail(LETHE_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu of the "
                          "header)", file, at);
    }
    /* The specification pads with spaces; other JSON whitespace is accepted
     * too, as the reference reader's JSON parser does. */
    lethe_status s = LETHE_OK;
    for (size_t i = (size_t)(end - h); i < n; i++)
        if (!strchr(" \t\r\n", h[i]) || h[i] == '\0') {
            s = lethe_fail(LETHE_ERR_FORMAT,
                           "%s: header has bytes after its JSON object (at byte %zu of the "
                           "header; only space padding may follow)", file, i);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: header is not a JSON object", file);
        goto done;
    }
    if ((s = header_scan(h, (size_t)(end - h), file)) != LETHE_OK)
        goto done;

    size_t n_entries = (size_t)cJSON_GetArraySize(root);
    if (n_entries && !(st->tensors = calloc(n_entries, sizeof *st->tensors))) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_meta++) {
                s = lethe_fail(LETHE_ERR_FORMAT, "%s: __metadata__ appears twice in the header",
                               file);
                goto done;
            }
            if ((s = parse_meta(e, st)) != LETHE_OK)
                goto done;
            continue;
        }
        lethe_st_tensor *t = &st->tensors[st->n_tensors++];
        if (!(t->name = strdup(e->string))) {
            s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
            goto done;
        }
        if ((s = parse_entry(e, t, file)) != LETHE_OK)
            goto done;
    }
    if (st->n_meta > 1) {
        qsort(st->meta, st->n_meta, sizeof *st->meta, meta_by_key);
        char q[QUOTE_CAP];
        for (size_t i = 1; i < st->n_meta; i++)
            if (!strcmp(st->meta[i - 1].key, st->meta[i].key)) {
                s = lethe_fail(LETHE_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", file,
                               quoted(q, st->meta[i].key));
                goto done;
            }
    }
    s = check_layout(st);
done:
    cJSON_Delete(root);
    return s;
}

lethe_status lethe_safetensors_parse(const unsigned char *buf, size_t len, const char *name,
                                     lethe_safetensors **out)
{
    *out = NULL;
    const char *file = name ? name : "<memory>";
    lethe_safetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->name = strdup(file))) {
        free(st);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", file);
    }
    lethe_status s;
    if (len == 0) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: file is empty (a safetensors file starts with an "
                       "8-byte header length)", file);
        goto fail;
    }
    if (len < 8) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header "
                       "length", file, len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    if (n > LETHE_SAFETENSORS_MAX_HEADER) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u bytes",
                       file, (unsigned long long)n, LETHE_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (n > len - 8) {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: file is truncated: header length %llu runs past the "
                       "end of the file (%zu bytes)", file, (unsigned long long)n, len);
        goto fail;
    }
    if (n == 0 || buf[8] != '{') {
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: header does not start with '{'", file);
        goto fail;
    }
    st->header_len = (size_t)n;
    st->data_len = len - 8 - st->header_len;
    if ((s = parse_header((const char *)buf + 8, st->header_len, st)) != LETHE_OK)
        goto fail;
    const unsigned char *data = buf + 8 + st->header_len;
    for (size_t i = 0; i < st->n_tensors; i++)
        st->tensors[i].data = data + st->tensors[i].begin;
    *out = st;
    return LETHE_OK;
fail:
    lethe_safetensors_free(st);
    return s;
}

lethe_status lethe_safetensors_open(const char *path, lethe_safetensors **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t len;
    lethe_status s = lethe_file_read(path, &buf, &len);
    if (s != LETHE_OK)
        return s;
    s = lethe_safetensors_parse(buf, len, path, out);
    if (s != LETHE_OK) {
        free(buf);
        return s;
    }
    (*out)->owned = buf;
    return LETHE_OK;
}

const lethe_st_tensor *lethe_safetensors_find(const lethe_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    char q[QUOTE_CAP];
    lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no tensor named '%s'", st->name, quoted(q, name));
    return NULL;
}

const char *lethe_safetensors_meta(const lethe_safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key))
            return st->meta[i].value;
    return NULL;
}

/* ---- conversion --------------------------------------------------------- */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half to float, exactly (subnormals, infinities and NaN payloads). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F)
        return bits_to_f32(sign | 0x7F800000u | man << 13);
    if (exp == 0) {
        float v = (float)man * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -v : v;
    }
    return bits_to_f32(sign | (exp + 112) << 23 | man << 13);
}

lethe_status lethe_safetensors_to_f32(const lethe_safetensors *st, const lethe_st_tensor *t,
                                      float *out)
{
    const unsigned char *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case LETHE_DTYPE_F32:
        for (size_t i = 0; i < n; i++)
            out[i] = bits_to_f32(rd32(p + 4 * i));
        break;
    case LETHE_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = f16_to_f32(rd16(p + 2 * i));
        break;
    case LETHE_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = bits_to_f32((uint32_t)rd16(p + 2 * i) << 16);
        break;
    case LETHE_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = rd64(p + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            out[i] = (float)d;
        }
        break;
    case LETHE_DTYPE_I64:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(int64_t)rd64(p + 8 * i);
        break;
    case LETHE_DTYPE_I32:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(int32_t)rd32(p + 4 * i);
        break;
    case LETHE_DTYPE_U8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)p[i];
        break;
    case LETHE_DTYPE_I8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(int8_t)p[i];
        break;
    case LETHE_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++)
            out[i] = p[i] ? 1.0f : 0.0f;
        break;
    default: {
        char q[QUOTE_CAP];
        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s: tensor '%s' has dtype %s, which lethe cannot convert to F32 "
                          "(supported: F32, F16, BF16, F64, I64, I32, U8, BOOL)",
                          st->name, quoted(q, t->name), dtype_table[t->dtype].name);
    }
    }
    return LETHE_OK;
}

lethe_status lethe_safetensors_load_f32(const lethe_safetensors *st, const char *name,
                                        size_t rank, const size_t *shape, float *out)
{
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    if (!t)
        return LETHE_ERR_NOT_FOUND;
    if (t->rank != rank || (rank && memcmp(t->shape, shape, rank * sizeof *shape))) {
        char q[QUOTE_CAP], a[QUOTE_CAP], b[QUOTE_CAP];
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s",
                          st->name, quoted(q, name), shape_str(a, t->shape, t->rank),
                          shape_str(b, shape, rank));
    }
    return lethe_safetensors_to_f32(st, t, out);
}

/* ---- writing ------------------------------------------------------------ */

/* A growable byte buffer; `oom` sticks once an allocation fails. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, size_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal, escaping as Python's json.dumps(ensure_ascii=False)
 * and serde_json do: \" \\ \b \f \n \r \t, other control bytes as \u00xx. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : NULL;
        if (esc) {
            sb_str(b, esc);
        } else if (c < 0x20) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            sb_str(b, tmp);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static size_t elem_size(lethe_dtype d) { return d == LETHE_DTYPE_F32 ? 4 : 1; }

/* Larger elements first, then by name: each tensor stays aligned. */
static int out_by_size_name(const void *a, const void *b)
{
    const lethe_st_out *x = *(const lethe_st_out *const *)a, *y = *(const lethe_st_out *const *)b;
    size_t sx = elem_size(x->dtype), sy = elem_size(y->dtype);
    return sx != sy ? (sx > sy ? -1 : 1) : strcmp(x->name, y->name);
}

static int meta_ptr_by_key(const void *a, const void *b)
{
    return strcmp((*(const lethe_st_meta *const *)a)->key, (*(const lethe_st_meta *const *)b)->key);
}

static int utf8_ok(const char *s)
{
    size_t n = strlen(s);
    return utf8_check((const unsigned char *)s, n) == n;
}

/* Sort, check, and lay out the header. */
static lethe_status build_header(const char *path, const lethe_st_out **ts, size_t n,
                                 const lethe_st_meta **ms, size_t n_meta, sbuf *h)
{
    char q[QUOTE_CAP];
    qsort(ts, n, sizeof *ts, out_by_size_name);
    qsort(ms, n_meta, sizeof *ms, meta_ptr_by_key);
    for (size_t i = 0; i < n_meta; i++) {
        if (!utf8_ok(ms[i]->key) || !utf8_ok(ms[i]->value))
            return lethe_fail(LETHE_ERR_INVALID, "%s: metadata '%s' is not valid UTF-8", path,
                              quoted(q, ms[i]->key));
        if (i && !strcmp(ms[i - 1]->key, ms[i]->key))
            return lethe_fail(LETHE_ERR_INVALID, "%s: metadata key '%s' given twice", path,
                              quoted(q, ms[i]->key));
    }
    sb_put(h, "{", 1);
    if (n_meta) {
        sb_str(h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i)
                sb_put(h, ",", 1);
            sb_json_string(h, ms[i]->key);
            sb_put(h, ":", 1);
            sb_json_string(h, ms[i]->value);
        }
        sb_put(h, "}", 1);
    }
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const lethe_st_out *t = ts[i];
        size_t es = elem_size(t->dtype);
        if (!utf8_ok(t->name) || !strcmp(t->name, "__metadata__"))
            return lethe_fail(LETHE_ERR_INVALID, "%s: '%s' cannot be a tensor name", path,
                              quoted(q, t->name));
        if (i && !strcmp(ts[i - 1]->name, t->name))
            return lethe_fail(LETHE_ERR_INVALID, "%s: tensor '%s' given twice", path,
                              quoted(q, t->name));
        size_t numel = 1;
        for (size_t d = 0; d < t->rank; d++) {
            if (t->shape[d] && numel > SIZE_MAX / t->shape[d])
                return lethe_fail(LETHE_ERR_INVALID, "%s: tensor '%s' shape overflows", path,
                                  quoted(q, t->name));
            numel *= t->shape[d];
        }
        if (numel > (SIZE_MAX - offset) / es)
            return lethe_fail(LETHE_ERR_INVALID, "%s: tensors too large", path);
        if (numel && !t->data)
            return lethe_fail(LETHE_ERR_INVALID, "%s: tensor '%s' has no data", path,
                              quoted(q, t->name));
        if (n_meta || i)
            sb_put(h, ",", 1);
        sb_json_string(h, t->name);
        sb_str(h, ":{\"dtype\":\"");
        sb_str(h, lethe_dtype_name(t->dtype));
        sb_str(h, "\",\"shape\":[");
        for (size_t d = 0; d < t->rank; d++)
            sb_fmt(h, d ? ",%zu" : "%zu", t->shape[d]);
        sb_fmt(h, "],\"data_offsets\":[%zu,", offset);
        offset += numel * es;
        sb_fmt(h, "%zu]}", offset);
    }
    sb_put(h, "}", 1);
    while (!h->oom && h->len % 8)
        sb_put(h, " ", 1);
    if (h->oom)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory building the header", path);
    if (h->len > LETHE_SAFETENSORS_MAX_HEADER)
        return lethe_fail(LETHE_ERR_INVALID, "%s: header of %zu bytes exceeds the limit of %u",
                          path, h->len, LETHE_SAFETENSORS_MAX_HEADER);
    return LETHE_OK;
}

static int write_f32_le(FILE *fp, const float *x, size_t n)
{
    unsigned char buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        buf[used++] = (unsigned char)u;
        buf[used++] = (unsigned char)(u >> 8);
        buf[used++] = (unsigned char)(u >> 16);
        buf[used++] = (unsigned char)(u >> 24);
        if (used == sizeof buf) {
            if (fwrite(buf, 1, used, fp) != used)
                return -1;
            used = 0;
        }
    }
    return used && fwrite(buf, 1, used, fp) != used ? -1 : 0;
}

lethe_status lethe_safetensors_write_typed(const char *path, const lethe_st_out *tensors,
                                           size_t n, const lethe_st_meta *meta, size_t n_meta)
{
    lethe_status s = LETHE_OK;
    sbuf h = {0};
    lethe_afile *f = NULL;
    const lethe_st_out **ts = malloc((n ? n : 1) * sizeof *ts);
    const lethe_st_meta **ms = malloc((n_meta ? n_meta : 1) * sizeof *ms);
    if (!ts || !ms) {
        s = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ts[i] = &tensors[i];
        lethe_dtype d = tensors[i].dtype;
        if (!tensors[i].name || (tensors[i].rank && !tensors[i].shape)) {
            s = lethe_fail(LETHE_ERR_INVALID, "%s: tensor %zu has no name or no shape", path, i);
            goto done;
        }
        if (d != LETHE_DTYPE_F32 && d != LETHE_DTYPE_I8 && d != LETHE_DTYPE_U8) {
            s = lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: tensor %zu: writing %s is not supported",
                           path, i, lethe_dtype_name(d));
            goto done;
        }
    }
    for (size_t i = 0; i < n_meta; i++)
        ms[i] = &meta[i];
    if ((s = build_header(path, ts, n, ms, n_meta, &h)) != LETHE_OK)
        goto done;
    if (!(f = lethe_afile_open(path))) {
        s = LETHE_ERR_IO;
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int bad = fwrite(len8, 1, 8, f->fp) != 8 || fwrite(h.p, 1, h.len, f->fp) != h.len;
    for (size_t i = 0; i < n && !bad; i++) {
        size_t numel = 1;
        for (size_t d = 0; d < ts[i]->rank; d++)
            numel *= ts[i]->shape[d];
        bad = ts[i]->dtype == LETHE_DTYPE_F32 ? write_f32_le(f->fp, ts[i]->data, numel) != 0
                                               : numel && fwrite(ts[i]->data, 1, numel, f->fp) != numel;
    }
    if (bad) {
        s = lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        lethe_afile_abort(f);
        goto done;
    }
    s = lethe_afile_commit(f);
done:
    free(h.p);
    free(ts);
    free(ms);
    return s;
}

lethe_status lethe_safetensors_write(const char *path, const lethe_st_f32 *tensors, size_t n,
                                     const lethe_st_meta *meta, size_t n_meta)
{
    lethe_st_out *ts = malloc((n ? n : 1) * sizeof *ts);
    if (!ts)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        ts[i] = (lethe_st_out){tensors[i].name, LETHE_DTYPE_F32, tensors[i].rank,
                               tensors[i].shape, tensors[i].data};
    lethe_status s = lethe_safetensors_write_typed(path, ts, n, meta, n_meta);
    free(ts);
    return s;
}
