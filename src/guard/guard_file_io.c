/* The guard file's on-disk form (lethe/guard_file.h): the LGRD format,
 * save and load with every check on the way in. The in-memory guard is in
 * guard_file.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guard_file_impl.h"
#include "lethe/fileio.h"
#include "lethe/sha256.h"

lethe_status guard_check_clf(const void *blob, size_t len)
{
    lethe_guard_clf *c = NULL;
    lethe_status st = lethe_guard_clf_load(blob, len, &c);
    lethe_guard_clf_free(c);
    return st;
}

/* ---- writing
 * ------------------------------------------------------------------------- */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} wbuf;

static void put(wbuf *w, const void *d, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p) {
            w->oom = 1;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->n, d, n);
    w->n += n;
}

static void put_u32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(w, b, 4);
}

static void put_u64_at(wbuf *w, size_t at, uint64_t v)
{
    if (w->oom)
        return;
    for (int i = 0; i < 8; i++)
        w->p[at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static void put_str(wbuf *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void put_strs(wbuf *w, char *const *s, size_t n)
{
    put_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_str(w, s[i]);
}

/* Start a section: its tag and a length patched by end_section. */
static size_t begin_section(wbuf *w, const char tag[4])
{
    put(w, tag, 4);
    size_t at = w->n;
    put(w, "\0\0\0\0\0\0\0\0", 8);
    return at;
}

static void end_section(wbuf *w, size_t at)
{
    put_u64_at(w, at, (uint64_t)(w->n - at - 8));
}

static void hex_to_raw(const char hex[65], unsigned char raw[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex[2 * i], lo = hex[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
}

static void digest(const unsigned char *d, size_t n, unsigned char raw[32])
{
    lethe_sha256 s;
    char hex[65];
    lethe_sha256_init(&s);
    lethe_sha256_update(&s, d, n);
    lethe_sha256_final(&s, hex);
    hex_to_raw(hex, raw);
}

lethe_status lethe_guard_save_buf(const lethe_guard_t *g, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    wbuf w = {0};
    put(&w, "LGRD", 4);
    put_u32(&w, LETHE_GUARD_FILE_VERSION);
    put_u32(&w, g->clf ? 3u : 2u);
    size_t at = begin_section(&w, "META");
    put_str(&w, g->model_hash);
    put_str(&w, g->model_name);
    put_u32(&w, g->next_id);
    put_u32(&w, (uint32_t)g->dim);
    end_section(&w, at);
    at = begin_section(&w, "TGTS");
    put_u32(&w, (uint32_t)g->n);
    for (size_t i = 0; i < g->n; i++) {
        const guard_target *t = &g->t[i];
        put_u32(&w, t->id);
        put_str(&w, t->name);
        put_strs(&w, t->alias, t->n_alias);
        put_strs(&w, t->ans, t->n_ans);
        put_strs(&w, t->ngram, t->n_ngram);
    }
    end_section(&w, at);
    if (g->clf) {
        at = begin_section(&w, "CLFB");
        put(&w, g->clf, g->clf_len);
        end_section(&w, at);
    }
    unsigned char sum[32];
    if (!w.oom) {
        digest(w.p, w.n, sum);
        put(&w, sum, 32);
    }
    if (w.oom) {
        free(w.p);
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    }
    *buf = w.p;
    *len = w.n;
    return LETHE_OK;
}

lethe_status lethe_guard_save(const lethe_guard_t *g, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode))
            return lethe_fail(LETHE_ERR_INVALID,
                              "%s: not a regular file; a guard is only written to a regular "
                              "file or a new path",
                              path);
    } else if (errno != ENOENT) {
        return lethe_fail(LETHE_ERR_IO, "%s: %s", path, strerror(errno));
    } else if (lstat(path, &sb) == 0) {
        return lethe_fail(LETHE_ERR_INVALID, "%s: a symbolic link to a missing file", path);
    }
    unsigned char *buf;
    size_t len;
    lethe_status st = lethe_guard_save_buf(g, &buf, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_file_write_atomic(path, buf, len);
    free(buf);
    return st;
}

/* ---- reading
 * ----------------------------------------------------------------------------
 */

typedef struct rbuf {
    const unsigned char *p;
    size_t n, at;
    const char *name;
} rbuf;

#define BAD(r, ...) bad_(r, __VA_ARGS__)

static lethe_status bad_(const rbuf *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static lethe_status bad_(const rbuf *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lethe_fail(LETHE_ERR_FORMAT, "%s: %s at byte %zu", r->name, msg, r->at);
}

static size_t left(const rbuf *r)
{
    return r->n - r->at;
}

static lethe_status get_u32(rbuf *r, uint32_t *v, const char *what)
{
    if (left(r) < 4)
        return BAD(r, "truncated (%s)", what);
    const unsigned char *b = r->p + r->at;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    r->at += 4;
    return LETHE_OK;
}

static lethe_status get_u64(rbuf *r, uint64_t *v, const char *what)
{
    if (left(r) < 8)
        return BAD(r, "truncated (%s)", what);
    *v = 0;
    for (int i = 7; i >= 0; i--)
        *v = *v << 8 | r->p[r->at + (size_t)i];
    r->at += 8;
    return LETHE_OK;
}

/* A string of 1 .. max bytes (0 allowed when allow_empty), no NUL. *s points
 * into the buffer (not terminated). */
static lethe_status get_str(rbuf *r, const char *what, uint32_t max, int allow_empty,
                            const unsigned char **s, uint32_t *len)
{
    lethe_status st = get_u32(r, len, what);
    if (st != LETHE_OK)
        return st;
    if (*len > left(r))
        return BAD(r, "%s of %u bytes runs past the end", what, *len);
    if (*len > max || (!*len && !allow_empty))
        return BAD(r, "%s of %u bytes (1 to %u allowed)", what, *len, max);
    if (memchr(r->p + r->at, 0, *len))
        return BAD(r, "%s holds a NUL byte", what);
    *s = r->p + r->at;
    r->at += *len;
    return LETHE_OK;
}

static lethe_status get_count(rbuf *r, const char *what, uint32_t *n)
{
    lethe_status st = get_u32(r, n, what);
    if (st == LETHE_OK && *n > left(r) / 5) /* each entry takes at least 5 bytes */
        return BAD(r, "%u %s cannot fit in the %zu bytes left", *n, what, left(r));
    return st;
}

/* A pattern for the automaton: must normalise to something. */
static int pattern_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9'))
            return 1;
    }
    return 0;
}

static lethe_status read_target(rbuf *r, lethe_guard_t *g, uint32_t min_id)
{
    uint32_t id = 0, len = 0, cnt = 0;
    const unsigned char *s;
    lethe_status st = get_u32(r, &id, "target id");
    if (st != LETHE_OK)
        return st;
    if (id < min_id || id >= g->next_id)
        return BAD(r, "target id %u out of order or not below the next id %u", id, g->next_id);
    if ((st = get_str(r, "target name", LETHE_GUARD_MAX_PATTERN, 0, &s, &len)) != LETHE_OK)
        return st;
    if (!pattern_ok(s, len))
        return BAD(r, "target %u's name has no word byte", id);
    char *name = guard_dup_n(s, len);
    if (!name)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    if (guard_find_name(g, name, len)) {
        free(name);
        return BAD(r, "target %u's name is taken", id);
    }
    /* aliases: read them all first, then add the target */
    if ((st = get_count(r, "aliases", &cnt)) != LETHE_OK) {
        free(name);
        return st;
    }
    char **alias = calloc(cnt ? cnt : 1, sizeof *alias);
    if (!alias) {
        free(name);
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    }
    for (uint32_t i = 0; i < cnt && st == LETHE_OK; i++) {
        if ((st = get_str(r, "alias", LETHE_GUARD_MAX_PATTERN, 0, &s, &len)) != LETHE_OK)
            break;
        if (!pattern_ok(s, len))
            st = BAD(r, "target %u's alias %u has no word byte", id, i);
        else if (!(alias[i] = guard_dup_n(s, len)))
            st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    }
    if (st == LETHE_OK)
        st = guard_add_target_id(g, id, name, (const char *const *)alias, cnt);
    free(name);
    guard_strs_free(alias, cnt);
    if (st != LETHE_OK)
        return st;
    if ((st = get_count(r, "answers", &cnt)) != LETHE_OK)
        return st;
    for (uint32_t i = 0; i < cnt; i++) {
        if ((st = get_str(r, "answer", LETHE_GUARD_MAX_TEXT, 0, &s, &len)) != LETHE_OK)
            return st;
        char *a = guard_dup_n(s, len);
        if (!a)
            return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
        st = lethe_guard_add_answer(g, id, a);
        free(a);
        if (st != LETHE_OK)
            return st;
    }
    if ((st = get_count(r, "n-grams", &cnt)) != LETHE_OK)
        return st;
    for (uint32_t i = 0; i < cnt; i++) {
        if ((st = get_str(r, "n-gram", LETHE_GUARD_MAX_PATTERN, 0, &s, &len)) != LETHE_OK)
            return st;
        if (!pattern_ok(s, len))
            return BAD(r, "target %u's n-gram %u has no word byte", id, i);
        char *a = guard_dup_n(s, len);
        if (!a)
            return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
        st = lethe_guard_add_ngram(g, id, a);
        free(a);
        if (st != LETHE_OK)
            return st == LETHE_ERR_NOMEM ? st : BAD(r, "target %u's n-gram %u", id, i);
    }
    return LETHE_OK;
}

/* Enter section `tag`: *end gets the offset past it. */
static lethe_status get_section(rbuf *r, const char *tag, size_t *end)
{
    if (left(r) < 4 || memcmp(r->p + r->at, tag, 4))
        return BAD(r, "expected section \"%s\"", tag);
    r->at += 4;
    uint64_t len = 0;
    lethe_status st = get_u64(r, &len, "section length");
    if (st != LETHE_OK)
        return st;
    if (len > left(r))
        return BAD(r, "section \"%s\" of %llu bytes runs past the end", tag,
                   (unsigned long long)len);
    *end = r->at + (size_t)len;
    return LETHE_OK;
}

static lethe_status end_of_section(rbuf *r, const char *tag, size_t end)
{
    if (r->at != end)
        return BAD(r, "section \"%s\" has %zu bytes left over", tag, end - r->at);
    return LETHE_OK;
}

lethe_status lethe_guard_load_buf(const void *buf, size_t len, const char *name,
                                  lethe_guard_t **out)
{
    *out = NULL;
    rbuf whole = {buf, len, 0, name ? name : "guard"};
    if (len < 12 + 32 || memcmp(buf, "LGRD", 4))
        return BAD(&whole, "not a guard file (no \"LGRD\" magic, or too short)");
    unsigned char sum[32];
    digest(buf, len - 32, sum);
    if (memcmp(sum, (const unsigned char *)buf + len - 32, 32)) {
        whole.at = len - 32;
        return BAD(&whole, "SHA-256 mismatch: the file is damaged");
    }
    rbuf r = {buf, len - 32, 4, whole.name};
    uint32_t version = 0, n_sec = 0, next_id = 0, dim = 0;
    const unsigned char *s, *hash_s, *name_s;
    uint32_t hash_len, name_len;
    size_t end;
    lethe_guard_t *g = NULL;
    lethe_status st = get_u32(&r, &version, "version");
    if (st != LETHE_OK)
        return st;
    if (version != LETHE_GUARD_FILE_VERSION)
        return BAD(&r, "version %u (this build reads %u)", version, LETHE_GUARD_FILE_VERSION);
    if ((st = get_u32(&r, &n_sec, "section count")) != LETHE_OK)
        return st;
    if (n_sec != 2 && n_sec != 3)
        return BAD(&r, "%u sections (2 or 3 expected)", n_sec);
    if ((st = get_section(&r, "META", &end)) != LETHE_OK)
        return st;
    {
        rbuf m = {r.p, end, r.at, r.name};
        if ((st = get_str(&m, "model hash", LETHE_GUARD_MODEL_HASH_MAX, 0, &hash_s,
                          &hash_len)) ||
            (st = get_str(&m, "model name", LETHE_GUARD_MAX_PATTERN, 1, &name_s, &name_len)) ||
            (st = get_u32(&m, &next_id, "next id")) || (st = get_u32(&m, &dim, "dim")))
            return st;
        if (dim < 2 || dim > LETHE_GUARD_FILE_MAX_DIM)
            return BAD(&m, "%u retrieval buckets (2 to %d allowed)", dim,
                       LETHE_GUARD_FILE_MAX_DIM);
        r.at = m.at;
        if ((st = end_of_section(&r, "META", end)) != LETHE_OK)
            return st;
    }
    char *hash = guard_dup_n(hash_s, hash_len), *mname = guard_dup_n(name_s, name_len);
    if (hash && mname)
        g = lethe_guard_new(hash, mname, (int)dim);
    free(hash);
    free(mname);
    if (!g)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    g->next_id = next_id;
    if ((st = get_section(&r, "TGTS", &end)) != LETHE_OK)
        goto fail;
    {
        rbuf t = {r.p, end, r.at, r.name};
        uint32_t n_t;
        if ((st = get_count(&t, "targets", &n_t)) != LETHE_OK)
            goto fail;
        for (uint32_t i = 0; i < n_t; i++)
            if ((st = read_target(&t, g, i ? g->t[g->n - 1].id + 1 : 0)) != LETHE_OK)
                goto fail;
        r.at = t.at;
        if ((st = end_of_section(&r, "TGTS", end)) != LETHE_OK)
            goto fail;
    }
    if (n_sec == 3) {
        if ((st = get_section(&r, "CLFB", &end)) != LETHE_OK)
            goto fail;
        s = r.p + r.at;
        if (end == r.at) {
            st = BAD(&r, "empty classifier section");
            goto fail;
        }
        st = guard_check_clf(s, end - r.at);
        if (st == LETHE_ERR_NOMEM)
            goto fail;
        if (st != LETHE_OK) {
            char why[200];
            snprintf(why, sizeof why, "%s", lethe_error_detail());
            st = BAD(&r, "classifier section: %s", why);
            goto fail;
        }
        if (!(g->clf = malloc(end - r.at))) {
            st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
            goto fail;
        }
        memcpy(g->clf, s, end - r.at);
        g->clf_len = end - r.at;
        r.at = end;
    }
    if (left(&r)) {
        st = BAD(&r, "%zu unexpected bytes before the checksum", left(&r));
        goto fail;
    }
    *out = g;
    return LETHE_OK;
fail:
    if (st == LETHE_ERR_INVALID) /* an add refused something the checks let through */
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: %s", r.name, lethe_error_detail());
    lethe_guard_free(g);
    return st;
}

lethe_status lethe_guard_load(const char *path, lethe_guard_t **out)
{
    *out = NULL;
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    st = lethe_guard_load_buf(data, len, path, out);
    free(data);
    return st;
}

lethe_status lethe_guard_load_checked(const char *path, const char *expected_model_hash,
                                      lethe_guard_t **out)
{
    lethe_status st = lethe_guard_load(path, out);
    if (st != LETHE_OK)
        return st;
    if (!expected_model_hash || strcmp((*out)->model_hash, expected_model_hash)) {
        st = lethe_fail(LETHE_ERR_FORMAT,
                        "%s: guard made for model %s, but the model's hash is %s; refit the "
                        "guard for this model",
                        path, (*out)->model_hash,
                        expected_model_hash ? expected_model_hash : "(none)");
        lethe_guard_free(*out);
        *out = NULL;
    }
    return st;
}
