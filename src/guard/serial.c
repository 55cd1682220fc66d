/* Serialisation of the automaton's patterns and of the token trie's
 * sequences (the layouts are in guard_index.h). Readers trust nothing: every
 * count is checked against the bytes that remain before anything is
 * allocated for it, so a buffer of n bytes never costs more than O(n). */
#include <stdlib.h>
#include <string.h>

#include "guard_impl.h"

#define HEADER 12 /* magic, version, count */

static lethe_status write_header(unsigned char **buf, size_t total, const char *magic,
                                 uint32_t version, size_t count)
{
    *buf = malloc(total);
    if (!*buf)
        return lethe_fail(LETHE_ERR_NOMEM, "guard index: out of memory for %zu bytes", total);
    memcpy(*buf, magic, 4);
    guard_put_u32(*buf + 4, version);
    guard_put_u32(*buf + 8, (uint32_t)count);
    return LETHE_OK;
}

/* Check the header; *count gets the record count, which must fit in the
 * rest of the buffer at min_record bytes each. */
static lethe_status read_header(const unsigned char *b, size_t len, const char *magic,
                                uint32_t version, size_t min_record, const char *what,
                                size_t *count)
{
    if (len < HEADER || memcmp(b, magic, 4))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a %s (no \"%s\" header)", what, what, magic);
    uint32_t v = guard_get_u32(b + 4);
    if (v != version)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: version %u, this build reads version %u", what,
                          v, version);
    *count = guard_get_u32(b + 8);
    if (*count > (len - HEADER) / min_record)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %zu records cannot fit in %zu bytes", what,
                          *count, len);
    return LETHE_OK;
}

/* ---- the automaton ---------------------------------------------------------- */

lethe_status lethe_guard_ac_save(const lethe_guard_ac_t *ac, unsigned char **buf, size_t *len)
{
    size_t n = lethe_guard_ac_count(ac), total = HEADER + 8 * n + ac->pool_len;
    lethe_status st = write_header(buf, total, "LGAC", LETHE_GUARD_AC_VERSION, n);
    if (st != LETHE_OK)
        return st;
    unsigned char *p = *buf + HEADER;
    for (size_t i = 0; i < n; i++) {
        size_t plen;
        uint32_t id;
        const unsigned char *pat = lethe_guard_ac_pattern(ac, i, &plen, &id);
        guard_put_u32(p, id);
        guard_put_u32(p + 4, (uint32_t)plen);
        memcpy(p + 8, pat, plen);
        p += 8 + plen;
    }
    *len = total;
    return LETHE_OK;
}

/* 1 when p[0..len) (len >= 1) is its own normalisation. */
static int is_normalized(const unsigned char *p, size_t len)
{
    if (p[0] == ' ' || p[len - 1] == ' ')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == ' ' ? p[i - 1] == ' ' : !guard_is_word_byte(c) || guard_lower(c) != c)
            return 0;
    }
    return 1;
}

static lethe_status read_patterns(lethe_guard_ac_t *ac, const unsigned char *b, size_t len,
                                  size_t count)
{
    size_t off = HEADER;
    for (size_t k = 0; k < count; k++) {
        if (len - off < 8)
            return lethe_fail(LETHE_ERR_FORMAT, "guard index: pattern %zu is cut short", k);
        uint32_t id = guard_get_u32(b + off), plen = guard_get_u32(b + off + 4);
        off += 8;
        if (plen == 0 || plen > LETHE_GUARD_MAX_PATTERN || plen > len - off)
            return lethe_fail(LETHE_ERR_FORMAT, "guard index: pattern %zu has a bad length %u",
                              k, plen);
        if (!is_normalized(b + off, plen))
            return lethe_fail(LETHE_ERR_FORMAT, "guard index: pattern %zu is not normalised", k);
        int added;
        lethe_status st = guard_ac_add_normalized(ac, b + off, plen, id, &added);
        if (st == LETHE_ERR_NOMEM)
            return st;
        if (st != LETHE_OK || !added)
            return lethe_fail(LETHE_ERR_FORMAT, "guard index: pattern %zu is %s", k,
                              st != LETHE_OK ? "rejected" : "a repeat");
        off += plen;
    }
    if (off != len)
        return lethe_fail(LETHE_ERR_FORMAT, "guard index: %zu bytes after the last pattern",
                          len - off);
    return LETHE_OK;
}

lethe_status lethe_guard_ac_load(const void *buf, size_t len, lethe_guard_ac_t **out)
{
    *out = NULL;
    size_t count;
    /* a record is at least an id, a length and one byte */
    lethe_status st = read_header(buf, len, "LGAC", LETHE_GUARD_AC_VERSION, 9, "guard index",
                                  &count);
    if (st != LETHE_OK)
        return st;
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    if (!ac)
        return LETHE_ERR_NOMEM;
    st = read_patterns(ac, buf, len, count);
    if (st == LETHE_OK)
        st = lethe_guard_ac_build(ac);
    if (st != LETHE_OK) {
        lethe_guard_ac_free(ac);
        return st;
    }
    *out = ac;
    return LETHE_OK;
}

/* ---- the token trie ----------------------------------------------------------- */

lethe_status lethe_guard_trie_save(const lethe_guard_trie_t *t, unsigned char **buf, size_t *len)
{
    size_t n = lethe_guard_trie_count(t), total = HEADER;
    for (size_t i = 0; i < n; i++) {
        size_t sn;
        uint32_t id;
        lethe_guard_trie_sequence(t, i, &sn, &id);
        total += 8 + 4 * sn;
    }
    lethe_status st = write_header(buf, total, "LGTR", LETHE_GUARD_TRIE_VERSION, n);
    if (st != LETHE_OK)
        return st;
    unsigned char *p = *buf + HEADER;
    for (size_t i = 0; i < n; i++) {
        size_t sn;
        uint32_t id;
        const uint32_t *seq = lethe_guard_trie_sequence(t, i, &sn, &id);
        guard_put_u32(p, id);
        guard_put_u32(p + 4, (uint32_t)sn);
        p += 8;
        for (size_t j = 0; j < sn; j++, p += 4)
            guard_put_u32(p, seq[j]);
    }
    *len = total;
    return LETHE_OK;
}

static lethe_status read_sequences(lethe_guard_trie_t *t, const unsigned char *b, size_t len,
                                   size_t count)
{
    size_t off = HEADER;
    uint32_t *seq = NULL;
    lethe_status st = LETHE_OK;
    for (size_t k = 0; k < count && st == LETHE_OK; k++) {
        if (len - off < 8) {
            st = lethe_fail(LETHE_ERR_FORMAT, "guard trie: sequence %zu is cut short", k);
            break;
        }
        uint32_t id = guard_get_u32(b + off), n = guard_get_u32(b + off + 4);
        off += 8;
        if (n == 0 || n > LETHE_GUARD_MAX_SEQUENCE || n > (len - off) / 4) {
            st = lethe_fail(LETHE_ERR_FORMAT, "guard trie: sequence %zu has a bad length %u", k, n);
            break;
        }
        uint32_t *s = realloc(seq, n * sizeof *s);
        if (!s) {
            st = lethe_fail(LETHE_ERR_NOMEM, "guard trie: out of memory");
            break;
        }
        seq = s;
        for (uint32_t j = 0; j < n; j++, off += 4)
            seq[j] = guard_get_u32(b + off);
        int added;
        st = guard_trie_add(t, seq, n, id, &added);
        if (st == LETHE_OK && !added)
            st = lethe_fail(LETHE_ERR_FORMAT, "guard trie: sequence %zu is a repeat", k);
        else if (st != LETHE_OK && st != LETHE_ERR_NOMEM)
            st = lethe_fail(LETHE_ERR_FORMAT, "guard trie: sequence %zu is rejected", k);
    }
    free(seq);
    if (st == LETHE_OK && off != len)
        st = lethe_fail(LETHE_ERR_FORMAT, "guard trie: %zu bytes after the last sequence",
                        len - off);
    return st;
}

lethe_status lethe_guard_trie_load(const void *buf, size_t len, lethe_guard_trie_t **out)
{
    *out = NULL;
    size_t count;
    lethe_status st = read_header(buf, len, "LGTR", LETHE_GUARD_TRIE_VERSION, 12, "guard trie",
                                  &count);
    if (st != LETHE_OK)
        return st;
    lethe_guard_trie_t *t = lethe_guard_trie_new();
    if (!t)
        return LETHE_ERR_NOMEM;
    st = read_sequences(t, buf, len, count);
    if (st != LETHE_OK) {
        lethe_guard_trie_free(t);
        return st;
    }
    *out = t;
    return LETHE_OK;
}
