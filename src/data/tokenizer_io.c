/* Tokenizer files: GPT-2's vocab.json + merges.txt, and Hugging Face's
 * tokenizer.json (BPE with a ByteLevel pre-tokenizer), read and written. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/tokenizer.h"

/* ------------------------------------------------------------- helpers */

/* A short printable rendering of s[0..n) for messages: at most ~40 bytes,
 * control bytes and quotes as \xNN, cut on a character boundary. */
static const char *preview(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= cap || (o >= 40 && (c & 0xC0) != 0x80)) {
            if (i < n && o + 4 < cap)
                o += (size_t)snprintf(buf + o, cap - o, "...");
            break;
        }
        if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}

/* Re-fail with "PREFIX: <the current detail>", keeping the status. */
static lethe_status refail(lethe_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static lethe_status refail(lethe_status st, const char *fmt, ...)
{
    char detail[512], prefix[512];
    snprintf(detail, sizeof detail, "%s", lethe_error_detail());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    return lethe_fail(st, "%s: %s", prefix, detail);
}

/* The UTF-8 code point at s (left > 0 bytes there) and its length in *n,
 * or -1 (with *n = 1) when s does not start a well-formed sequence. */
static long utf8_cp(const unsigned char *s, size_t left, size_t *n)
{
    unsigned char b = s[0];
    *n = 1;
    if (b < 0x80) {
        *n = 1;
        return b;
    }
    int k = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xC2 && b <= 0xDF ? 2 : 0;
    if (!k || (size_t)k > left)
        return -1;
    long cp = b & (0x7F >> k);
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *n = (size_t)k;
    return cp;
}

/* The bytes spelled by token string s[0..n) in GPT-2's alphabet, written
 * to out (room for n bytes): their count, or 0 with *bad set to the first
 * code point outside the alphabet (-1 for malformed UTF-8). */
static size_t unspell(const char *s, size_t n, unsigned char *out, long *bad)
{
    size_t o = 0;
    for (size_t i = 0, k; i < n; i += k) {
        long cp = utf8_cp((const unsigned char *)s + i, n - i, &k);
        int b = cp < 0 ? -1 : lethe_tokenizer_char_byte((uint32_t)cp);
        if (b < 0) {
            *bad = cp;
            return 0;
        }
        out[o++] = (unsigned char)b;
    }
    return o;
}

static lethe_status spelling_error(const char *where, const char *s, long bad)
{
    char pv[64];
    if (bad < 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: token '%s' is not valid UTF-8", where,
                          preview(s, strlen(s), pv, sizeof pv));
    return lethe_fail(LETHE_ERR_FORMAT,
                      "%s: token '%s' has U+%04lX, which is not in GPT-2's byte alphabet "
                      "(not a byte-level BPE vocabulary?)",
                      where, preview(s, strlen(s), pv, sizeof pv), bad);
}

/* The id of a JSON number node: an integer in [0, LETHE_TOKENIZER_MAX_ID). */
static lethe_status id_of(const cJSON *v, const char *where, const char *key, uint32_t *id)
{
    char pv[64];
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= LETHE_TOKENIZER_MAX_ID ||
        v->valuedouble != (double)(uint32_t)v->valuedouble)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: token '%s': the id must be an integer from 0 to %u, got %s%s",
                          where, preview(key, strlen(key), pv, sizeof pv),
                          LETHE_TOKENIZER_MAX_ID - 1, cJSON_IsNumber(v) ? "" : "JSON ",
                          cJSON_IsNumber(v) ? "another number" : lethe_json_type_name(v));
    *id = (uint32_t)v->valuedouble;
    return LETHE_OK;
}

/* Add every member of the vocabulary object `vocab` (keys in GPT-2's
 * alphabet). Ids already held by special tokens are skipped when the key
 * spells the same text. */
static lethe_status add_vocab(lethe_tokenizer_t *t, const cJSON *vocab, const char *where)
{
    const cJSON *it;
    size_t cap = 256;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", where);
    lethe_status st = LETHE_OK;
    char pv[64];
    cJSON_ArrayForEach(it, vocab)
    {
        const char *key = it->string;
        uint32_t id = 0;
        if ((st = id_of(it, where, key, &id)) != LETHE_OK)
            break;
        size_t n = strlen(key), len;
        if (n > cap) {
            unsigned char *nb = realloc(buf, n);
            if (!nb) {
                st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", where);
                break;
            }
            buf = nb;
            cap = n;
        }
        if (lethe_tokenizer_is_special(t, id)) {
            const unsigned char *have = lethe_tokenizer_token(t, id, &len);
            long bad;
            size_t m = unspell(key, n, buf, &bad);
            if ((len == n && !memcmp(have, key, n)) || (m == len && m && !memcmp(have, buf, m)))
                continue;
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: id %u is both token '%s' and an added token",
                            where, id, preview(key, n, pv, sizeof pv));
            break;
        }
        long bad = 0;
        if (n == 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: an empty token (id %u)", where, id);
            break;
        }
        if (!(len = unspell(key, n, buf, &bad))) {
            st = spelling_error(where, key, bad);
            break;
        }
        if ((st = lethe_tokenizer_add_token(t, id, buf, len, 0)) != LETHE_OK) {
            st = refail(st, "%s: token '%s'", where, preview(key, n, pv, sizeof pv));
            break;
        }
    }
    free(buf);
    return st;
}

/* Look up a merge's part (spelled in GPT-2's alphabet). */
static lethe_status part_id(const lethe_tokenizer_t *t, const char *s, size_t n, const char *where,
                            const char *vocab_name, uint32_t *id)
{
    char pv[64];
    unsigned char small[256], *buf = n <= sizeof small ? small : malloc(n);
    if (!buf)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", where);
    long bad;
    size_t len = n ? unspell(s, n, buf, &bad) : 0;
    int found = len && lethe_tokenizer_find(t, buf, len, id);
    if (buf != small)
        free(buf);
    if (!found)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: '%s' is not a token of %s", where,
                          preview(s, n, pv, sizeof pv), vocab_name);
    return LETHE_OK;
}

static lethe_status add_merge_parts(lethe_tokenizer_t *t, const char *a, size_t na, const char *b,
                                    size_t nb, const char *where, const char *vocab_name)
{
    uint32_t ia, ib;
    lethe_status st = part_id(t, a, na, where, vocab_name, &ia);
    if (st == LETHE_OK)
        st = part_id(t, b, nb, where, vocab_name, &ib);
    if (st == LETHE_OK && (st = lethe_tokenizer_add_merge(t, ia, ib, NULL)) != LETHE_OK) {
        char pa[64], pb[64];
        st = lethe_fail(st, "%s: merge '%s' '%s': their concatenation is not a token of %s",
                        where, preview(a, na, pa, sizeof pa), preview(b, nb, pb, sizeof pb),
                        vocab_name);
    }
    return st;
}

/* ---------------------------------------------------- GPT-2's two files */

lethe_status lethe_tokenizer_parse_gpt2(const char *vocab, size_t vocab_len,
                                        const char *vocab_name, const char *merges,
                                        size_t merges_len, const char *merges_name,
                                        lethe_tokenizer_t **out)
{
    *out = NULL;
    cJSON *root;
    lethe_status st = lethe_json_parse(vocab, vocab_len, vocab_name, &root);
    if (st != LETHE_OK)
        return st;
    lethe_tokenizer_t *t = NULL;
    if (!cJSON_IsObject(root)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: expected an object of token: id, got %s",
                        vocab_name, lethe_json_type_name(root));
        goto done;
    }
    if (!(t = lethe_tokenizer_new())) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    if ((st = add_vocab(t, root, vocab_name)) != LETHE_OK)
        goto done;
    size_t pos = 0, line = 0;
    char where[512];
    while (pos < merges_len && st == LETHE_OK) {
        const char *s = merges + pos;
        const char *nl = memchr(s, '\n', merges_len - pos);
        size_t n = nl ? (size_t)(nl - s) : merges_len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        if (n && s[n - 1] == '\r')
            n--;
        if (n == 0 || (line == 1 && n >= 8 && !memcmp(s, "#version", 8)))
            continue;
        snprintf(where, sizeof where, "%s:%zu", merges_name, line);
        const char *sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp + 1 == s + n || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1)) ||
            memchr(s, '\0', n)) {
            char pv[64];
            st = lethe_fail(LETHE_ERR_FORMAT,
                            "%s: expected two tokens separated by one space, got '%s'", where,
                            preview(s, n, pv, sizeof pv));
            break;
        }
        st = add_merge_parts(t, s, (size_t)(sp - s), sp + 1, (size_t)(s + n - sp - 1), where,
                             vocab_name);
    }
    if (st == LETHE_OK)
        st = lethe_tokenizer_check(t, vocab_name);
done:
    cJSON_Delete(root);
    if (st != LETHE_OK) {
        lethe_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LETHE_OK;
}

lethe_status lethe_tokenizer_load_gpt2(const char *vocab_path, const char *merges_path,
                                       lethe_tokenizer_t **out)
{
    *out = NULL;
    unsigned char *v = NULL, *m = NULL;
    size_t nv, nm;
    lethe_status st = lethe_file_read_gz(vocab_path, &v, &nv);
    if (st == LETHE_OK)
        st = lethe_file_read_gz(merges_path, &m, &nm);
    if (st == LETHE_OK)
        st = lethe_tokenizer_parse_gpt2((const char *)v, nv, vocab_path, (const char *)m, nm,
                                        merges_path, out);
    free(v);
    free(m);
    return st;
}

/* ----------------------------------------------------- tokenizer.json */

/* A member that must be absent, null, false or "" for lethe to match
 * Hugging Face's behaviour. */
static lethe_status must_be_unset(const cJSON *obj, const char *key, const char *name,
                                  const char *path, const char *why)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v) ||
        (cJSON_IsString(v) && !v->valuestring[0]))
        return LETHE_OK;
    return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: %s%s%s is set; %s", name, path ? path : "",
                      path ? "." : "", key, why);
}

static lethe_status check_pretokenizer(const cJSON *pre, const char *name)
{
    const char *type = NULL;
    if (!pre || cJSON_IsNull(pre))
        return LETHE_OK; /* GPT-2's splitting is lethe's only one */
    if (cJSON_IsObject(pre)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pre, "type");
        type = cJSON_IsString(ty) ? ty->valuestring : NULL;
    }
    if (!type || strcmp(type, "ByteLevel"))
        return lethe_fail(LETHE_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer is %s%s%s, not ByteLevel; lethe splits words with "
                          "GPT-2's pattern only",
                          name, type ? "'" : "", type ? type : lethe_json_type_name(pre),
                          type ? "'" : "");
    lethe_status st = must_be_unset(pre, "add_prefix_space", name, "pre_tokenizer",
                                    "lethe does not add a leading space");
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
    if (st == LETHE_OK && re && cJSON_IsFalse(re))
        st = lethe_fail(LETHE_ERR_UNSUPPORTED,
                        "%s: pre_tokenizer.use_regex is false; lethe always splits words", name);
    return st;
}

static lethe_status add_special(lethe_tokenizer_t *t, const cJSON *added, const char *name)
{
    if (!added || cJSON_IsNull(added))
        return LETHE_OK;
    if (!cJSON_IsArray(added))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: added_tokens: expected an array, got %s", name,
                          lethe_json_type_name(added));
    const cJSON *it;
    size_t k = 0;
    char where[512];
    cJSON_ArrayForEach(it, added)
    {
        snprintf(where, sizeof where, "%s: added_tokens[%zu]", name, k++);
        const char *content;
        long long id;
        lethe_status st = lethe_json_get_string(it, "content", where, &content);
        if (st == LETHE_OK)
            st = lethe_json_get_int(it, "id", where, &id);
        if (st == LETHE_OK && (id < 0 || id >= LETHE_TOKENIZER_MAX_ID))
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: id %lld is out of range", where, id);
        if (st == LETHE_OK && !content[0])
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: empty content", where);
        if (st == LETHE_OK &&
            (st = lethe_tokenizer_add_token(t, (uint32_t)id, content, strlen(content), 1)) !=
                LETHE_OK)
            st = refail(st, "%s", where);
        if (st != LETHE_OK)
            return st;
    }
    return LETHE_OK;
}

static lethe_status add_json_merges(lethe_tokenizer_t *t, const cJSON *merges, const char *name)
{
    const cJSON *it;
    size_t k = 0;
    char where[512];
    cJSON_ArrayForEach(it, merges)
    {
        snprintf(where, sizeof where, "%s: model.merges[%zu]", name, k++);
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (cJSON_IsString(it)) {
            const char *s = it->valuestring, *sp = strchr(s, ' ');
            if (sp && sp != s && sp[1] && !strchr(sp + 1, ' ')) {
                a = s;
                na = (size_t)(sp - s);
                b = sp + 1;
                nb = strlen(b);
            }
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(it->child) && cJSON_IsString(it->child->next)) {
            a = it->child->valuestring;
            b = it->child->next->valuestring;
            na = strlen(a);
            nb = strlen(b);
        }
        if (!a || !na || !nb)
            return lethe_fail(LETHE_ERR_FORMAT,
                              "%s: expected \"a b\" (two tokens and one space) or [\"a\", \"b\"], "
                              "got %s",
                              where,
                              cJSON_IsString(it) || cJSON_IsArray(it) ? "something else"
                                                                      : lethe_json_type_name(it));
        lethe_status st = add_merge_parts(t, a, na, b, nb, where, "model.vocab");
        if (st != LETHE_OK)
            return st;
    }
    return LETHE_OK;
}

lethe_status lethe_tokenizer_parse_json(const char *buf, size_t len, const char *name,
                                        lethe_tokenizer_t **out)
{
    *out = NULL;
    cJSON *root;
    lethe_status st = lethe_json_parse(buf, len, name, &root);
    if (st != LETHE_OK)
        return st;
    lethe_tokenizer_t *t = NULL;
    const cJSON *model, *vocab, *merges;
    const char *type;
    char where[512];
    snprintf(where, sizeof where, "%s: model", name);
    if (!cJSON_IsObject(root)) {
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: expected a JSON object, got %s", name,
                        lethe_json_type_name(root));
        goto done;
    }
    if ((st = lethe_json_get_object(root, "model", name, &model)) != LETHE_OK ||
        (st = lethe_json_opt_string(model, "type", where, "BPE", &type)) != LETHE_OK)
        goto done;
    if (strcmp(type, "BPE")) {
        char pv[64];
        st = lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: model.type is '%s'; lethe reads BPE only",
                        name, preview(type, strlen(type), pv, sizeof pv));
        goto done;
    }
    if ((st = must_be_unset(root, "normalizer", name, NULL, "lethe applies no normalizer")) ||
        (st = check_pretokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                 name)) ||
        (st = must_be_unset(model, "continuing_subword_prefix", name, "model",
                            "byte-level BPE has no subword prefix")) ||
        (st = must_be_unset(model, "end_of_word_suffix", name, "model",
                            "byte-level BPE has no word suffix")) ||
        (st = must_be_unset(model, "ignore_merges", name, "model",
                            "lethe applies the merges to every word")))
        goto done;
    if ((st = lethe_json_get_object(model, "vocab", where, &vocab)) != LETHE_OK ||
        (st = lethe_json_get_array(model, "merges", where, &merges)) != LETHE_OK)
        goto done;
    if (!(t = lethe_tokenizer_new())) {
        st = LETHE_ERR_NOMEM;
        goto done;
    }
    snprintf(where, sizeof where, "%s: model.vocab", name);
    if ((st = add_special(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), name)) ||
        (st = add_vocab(t, vocab, where)) || (st = add_json_merges(t, merges, name)))
        goto done;
    st = lethe_tokenizer_check(t, where);
done:
    cJSON_Delete(root);
    if (st != LETHE_OK) {
        lethe_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LETHE_OK;
}

lethe_status lethe_tokenizer_load_json(const char *path, lethe_tokenizer_t **out)
{
    *out = NULL;
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_tokenizer_parse_json((const char *)data, len, path, out);
    free(data);
    return st;
}

/* -------------------------------------------------------------- writing */

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, n < (int)sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string of UTF-8 text s[0..n). */
static void sb_json(struct sbuf *b, const unsigned char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20)
            sb_fmt(b, "\\u%04X", c);
        else
            sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

/* Token `id` spelled in GPT-2's alphabet, as a JSON string. */
static void sb_spelled(struct sbuf *b, const lethe_tokenizer_t *t, uint32_t id)
{
    size_t len;
    const unsigned char *p = lethe_tokenizer_token(t, id, &len);
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = lethe_tokenizer_byte_char(p[i]);
        char u[3];
        if (cp < 0x80) {
            if (cp == '"' || cp == '\\')
                sb_put(b, "\\", 1);
            u[0] = (char)cp;
            sb_put(b, u, 1);
        } else { /* the alphabet stays below U+0800 */
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            sb_put(b, u, 2);
        }
    }
    sb_put(b, "\"", 1);
}

static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        long cp = utf8_cp(s + i, n - i, &k);
        if (cp < 0 || cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF ||
            (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000))
            return 0;
    }
    return 1;
}

lethe_status lethe_tokenizer_to_json(const lethe_tokenizer_t *t, char **text)
{
    *text = NULL;
    struct sbuf b = {0};
    size_t vs = lethe_tokenizer_vocab_size(t), n_special = 0;
    for (uint32_t id = 0; id < vs; id++) {
        size_t len;
        const unsigned char *p = lethe_tokenizer_token(t, id, &len);
        if (p && lethe_tokenizer_is_special(t, id)) {
            if (!utf8_ok(p, len))
                return lethe_fail(LETHE_ERR_UNSUPPORTED,
                                  "tokenizer: special token %u is not UTF-8 text, which "
                                  "tokenizer.json cannot hold",
                                  id);
            n_special++;
        }
    }
    sb_str(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
               "  \"added_tokens\": [");
    size_t k = 0;
    for (uint32_t id = 0; id < vs; id++) {
        size_t len;
        const unsigned char *p = lethe_tokenizer_token(t, id, &len);
        if (!p || !lethe_tokenizer_is_special(t, id))
            continue;
        sb_fmt(&b, "%s\n    {\n      \"id\": %u,\n      \"content\": ", k++ ? "," : "", id);
        sb_json(&b, p, len);
        sb_str(&b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n"
                   "      \"rstrip\": false,\n      \"normalized\": false,\n"
                   "      \"special\": true\n    }");
    }
    sb_str(&b, n_special ? "\n  ],\n" : "],\n");
    sb_str(&b, "  \"normalizer\": null,\n"
               "  \"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n"
               "    \"add_prefix_space\": false,\n    \"trim_offsets\": true,\n"
               "    \"use_regex\": true\n  },\n"
               "  \"post_processor\": {\n    \"type\": \"ByteLevel\",\n"
               "    \"add_prefix_space\": true,\n    \"trim_offsets\": false,\n"
               "    \"use_regex\": true\n  },\n"
               "  \"decoder\": {\n    \"type\": \"ByteLevel\",\n"
               "    \"add_prefix_space\": true,\n    \"trim_offsets\": true,\n"
               "    \"use_regex\": true\n  },\n"
               "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n"
               "    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n"
               "    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
               "    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
               "    \"vocab\": {");
    k = 0;
    for (uint32_t id = 0; id < vs; id++) {
        size_t len;
        const unsigned char *p = lethe_tokenizer_token(t, id, &len);
        if (!p)
            continue;
        sb_str(&b, k++ ? ",\n      " : "\n      ");
        if (lethe_tokenizer_is_special(t, id))
            sb_json(&b, p, len);
        else
            sb_spelled(&b, t, id);
        sb_fmt(&b, ": %u", id);
    }
    sb_str(&b, k ? "\n    },\n    \"merges\": [" : "},\n    \"merges\": [");
    size_t nm = lethe_tokenizer_n_merges(t);
    for (size_t r = 0; r < nm; r++) {
        uint32_t x, y, z;
        lethe_tokenizer_merge(t, r, &x, &y, &z);
        sb_str(&b, r ? ",\n      [" : "\n      [");
        sb_spelled(&b, t, x);
        sb_str(&b, ", ");
        sb_spelled(&b, t, y);
        sb_str(&b, "]");
    }
    sb_str(&b, nm ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n");
    if (b.oom) {
        free(b.p);
        return lethe_fail(LETHE_ERR_NOMEM, "tokenizer: out of memory writing tokenizer.json");
    }
    *text = b.p;
    return LETHE_OK;
}

lethe_status lethe_tokenizer_save_json(const lethe_tokenizer_t *t, const char *path)
{
    char *text;
    lethe_status st = lethe_tokenizer_to_json(t, &text);
    if (st != LETHE_OK)
        return st;
    st = lethe_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}
