/* Serialised target indexes: round trips of the trie, and truncated,
 * corrupted and repeated records in both formats (the automaton's round trip
 * against the naive matcher is in test_guard_index.c). */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_index.h"
#include "lethe/rng.h"

/* Load must say LETHE_ERR_FORMAT and leave *out NULL. */
static int ac_rejects(const void *buf, size_t len)
{
    lethe_guard_ac_t *ac = (lethe_guard_ac_t *)1;
    return lethe_guard_ac_load(buf, len, &ac) == LETHE_ERR_FORMAT && ac == NULL &&
           lethe_error_detail()[0];
}

TEST(guard_ac_serial_rejects_bad_buffers)
{
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    CHECK(ac);
    CHECK_OK(lethe_guard_ac_add(ac, "new york", 8, 1));
    CHECK_OK(lethe_guard_ac_add(ac, "nyc", 3, 1));
    unsigned char *buf, b[64];
    size_t len;
    CHECK_OK(lethe_guard_ac_save(ac, &buf, &len));
    lethe_guard_ac_free(ac);
    /* header 0-11, record "new york" 12-27 (length at 16), "nyc" 28-38 */
    CHECK(len == 39);
    for (size_t cut = 0; cut < len; cut++)
        CHECK_MSG(ac_rejects(buf, cut), "cut at %zu", cut);
    static const struct { size_t at; unsigned char v; } bad[] = {
        {0, 'X'},   /* magic */
        {4, 2},     /* version */
        {8, 3},     /* one record more than there is */
        {11, 0xff}, /* a count far beyond the buffer */
        {16, 0},    /* a pattern length of 0 */
        {16, 9},    /* a length into the next record */
        {19, 0x80}, /* a length of 2^31 */
        {20, 'N'},  /* upper case: not normalised */
        {20, ' '},  /* a leading space */
        {23, ','},  /* punctuation */
        {24, ' '},  /* two spaces in a row */
        {38, ' '},  /* a trailing space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(b, buf, len);
        b[bad[i].at] = bad[i].v;
        CHECK_MSG(ac_rejects(b, len), "corruption %zu", i);
    }
    memcpy(b, buf, len);
    b[len] = 'x';
    CHECK(ac_rejects(b, len + 1)); /* a byte left over */
    /* random corruption: a load or a format error, never a crash */
    lethe_rng r = lethe_rng_init(14, 0);
    for (int it = 0; it < 3000; it++) {
        memcpy(b, buf, len);
        for (int k = 0, nk = 1 + (int)lethe_rng_below(&r, 3); k < nk; k++)
            b[lethe_rng_below(&r, (uint32_t)len)] = (unsigned char)lethe_rng_u32(&r);
        lethe_guard_ac_t *got = NULL;
        lethe_status st = lethe_guard_ac_load(b, len, &got);
        CHECK(st == LETHE_ERR_FORMAT || (st == LETHE_OK && got));
        lethe_guard_ac_free(got);
    }
    free(buf);
    /* a repeat of one (pattern, id) */
    static const unsigned char dup[] = "LGAC\1\0\0\0\2\0\0\0"
                                       "\5\0\0\0\1\0\0\0a"
                                       "\5\0\0\0\1\0\0\0a";
    CHECK(ac_rejects(dup, sizeof dup - 1));
    lethe_guard_ac_t *one = NULL;
    unsigned char first[21];
    memcpy(first, dup, 21);
    first[8] = 1;
    CHECK_OK(lethe_guard_ac_load(first, 21, &one));
    CHECK(lethe_guard_ac_count(one) == 1);
    lethe_guard_ac_free(one);
    /* an empty index */
    CHECK(ac = lethe_guard_ac_new());
    CHECK_OK(lethe_guard_ac_save(ac, &buf, &len));
    CHECK(len == 12);
    lethe_guard_ac_free(ac);
    CHECK_OK(lethe_guard_ac_load(buf, len, &ac));
    CHECK(lethe_guard_ac_count(ac) == 0);
    size_t n;
    CHECK_OK(lethe_guard_ac_scan(ac, "anything", 8, NULL, NULL, &n));
    CHECK(n == 0);
    lethe_guard_ac_free(ac);
    free(buf);
}

static int trie_rejects(const void *buf, size_t len)
{
    lethe_guard_trie_t *t = (lethe_guard_trie_t *)1;
    return lethe_guard_trie_load(buf, len, &t) == LETHE_ERR_FORMAT && t == NULL &&
           lethe_error_detail()[0];
}

TEST(guard_trie_serial)
{
    lethe_guard_trie_t *t = lethe_guard_trie_new(), *back = NULL;
    CHECK(t);
    const uint32_t a[] = {7, 8, 9}, b[] = {0xdeadbeef};
    CHECK_OK(lethe_guard_trie_add(t, a, 3, 1));
    CHECK_OK(lethe_guard_trie_add(t, b, 1, 2));
    unsigned char *buf, *again, x[64];
    size_t len, len2;
    CHECK_OK(lethe_guard_trie_save(t, &buf, &len));
    CHECK(len == 12 + 8 + 12 + 8 + 4);
    CHECK_OK(lethe_guard_trie_load(buf, len, &back));
    CHECK_OK(lethe_guard_trie_save(back, &again, &len2));
    CHECK(len2 == len && !memcmp(buf, again, len));
    uint32_t cur[4];
    size_t ended, n = lethe_guard_trie_advance(back, cur, 0, 0xdeadbeef, cur, &ended, NULL);
    CHECK(n == 0 && ended == 1);
    /* truncations and corruptions */
    for (size_t cut = 0; cut < len; cut++)
        CHECK_MSG(trie_rejects(buf, cut), "cut at %zu", cut);
    static const struct { size_t at; unsigned char v; } bad[] = {
        {3, 'X'}, {4, 9}, {8, 3}, {11, 0x40}, {16, 0}, {16, 4}, {19, 1}, {36, 7},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(x, buf, len);
        x[bad[i].at] = bad[i].v;
        CHECK_MSG(trie_rejects(x, len), "corruption %zu", i);
    }
    memcpy(x, buf, len);
    x[len] = 0;
    CHECK(trie_rejects(x, len + 1));
    /* a repeated record: the second record made equal to the first */
    memcpy(x, buf, 32);
    memcpy(x + 32, buf + 12, 20);
    CHECK(trie_rejects(x, 52));
    lethe_rng r = lethe_rng_init(22, 0);
    for (int it = 0; it < 3000; it++) {
        memcpy(x, buf, len);
        x[lethe_rng_below(&r, (uint32_t)len)] = (unsigned char)lethe_rng_u32(&r);
        lethe_guard_trie_t *got = NULL;
        lethe_status st = lethe_guard_trie_load(x, len, &got);
        CHECK(st == LETHE_ERR_FORMAT || (st == LETHE_OK && got));
        lethe_guard_trie_free(got);
    }
    free(buf);
    free(again);
    lethe_guard_trie_free(t);
    lethe_guard_trie_free(back);
}
