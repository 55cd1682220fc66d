/* The guard's token trie: cursors (by hand and against a naive matcher) and
 * removal. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_index.h"
#include "lethe/rng.h"

TEST(guard_trie_cursors_by_hand)
{
    lethe_guard_trie_t *t = lethe_guard_trie_new();
    CHECK(t);
    const uint32_t a[] = {1, 2, 3}, b[] = {2, 3}, c[] = {2}, d[] = {5, UINT32_MAX};
    CHECK_OK(lethe_guard_trie_add(t, a, 3, 10));
    CHECK_OK(lethe_guard_trie_add(t, b, 2, 11));
    CHECK_OK(lethe_guard_trie_add(t, c, 1, 12));
    CHECK_OK(lethe_guard_trie_add(t, d, 2, 14));
    CHECK_OK(lethe_guard_trie_add(t, d, 2, 13)); /* an alias of the same tokens */
    CHECK_OK(lethe_guard_trie_add(t, d, 2, 13)); /* a repeat: no-op */
    CHECK(lethe_guard_trie_count(t) == 5);
    CHECK_STATUS(lethe_guard_trie_add(t, a, 0, 1), LETHE_ERR_INVALID);

    uint32_t cur[8], next[8], id = 999;
    size_t n = 0, ended;
    /* 1: a starts */
    n = lethe_guard_trie_advance(t, cur, n, 1, next, &ended, &id);
    CHECK(n == 1 && ended == 0 && id == 999);
    memcpy(cur, next, n * sizeof *cur);
    /* 1 2: a goes on, b starts, c ends */
    n = lethe_guard_trie_advance(t, cur, n, 2, next, &ended, &id);
    CHECK(n == 2 && ended == 1 && id == 12);
    memcpy(cur, next, n * sizeof *cur);
    /* 1 2 3: a and b end; both are leaves, so no cursor is left */
    n = lethe_guard_trie_advance(t, cur, n, 3, next, &ended, &id);
    CHECK(n == 0 && ended == 2 && id == 10);
    /* 5 max: the smallest id of the aliases; in place (next == cur) */
    n = lethe_guard_trie_advance(t, cur, 0, 5, cur, &ended, NULL);
    CHECK(n == 1 && ended == 0);
    n = lethe_guard_trie_advance(t, cur, n, UINT32_MAX, cur, &ended, &id);
    CHECK(n == 0 && ended == 1 && id == 13);
    /* an unknown token drops every cursor */
    n = lethe_guard_trie_advance(t, cur, 0, 1, cur, NULL, NULL);
    n = lethe_guard_trie_advance(t, cur, n, 7, cur, &ended, NULL);
    CHECK(n == 0 && ended == 0);

    /* remove: a (10) goes, so 1 2 3 only ends b */
    CHECK(lethe_guard_trie_remove(t, 10) == 1 && lethe_guard_trie_remove(t, 10) == 0);
    CHECK(lethe_guard_trie_count(t) == 4);
    n = lethe_guard_trie_advance(t, cur, 0, 1, cur, &ended, NULL);
    CHECK(n == 0 && ended == 0);
    n = lethe_guard_trie_advance(t, cur, n, 2, cur, &ended, &id);
    CHECK(n == 1 && ended == 1 && id == 12);
    n = lethe_guard_trie_advance(t, cur, n, 3, cur, &ended, &id);
    CHECK(n == 0 && ended == 1 && id == 11);
    size_t sn;
    const uint32_t *s = lethe_guard_trie_sequence(t, 0, &sn, &id);
    CHECK(sn == 2 && s[0] == 2 && s[1] == 3 && id == 11);
    lethe_guard_trie_free(t);
    lethe_guard_trie_free(NULL);
}

#define MAXS 24

struct seq {
    uint32_t tok[6];
    size_t n;
    uint32_t id;
};

/* The naive answer after generated[0..m): how many distinct stored token
 * strings end there, their smallest id, and how many distinct proper
 * prefixes of stored strings (the cursors that can grow) end there. */
static void ref_step(const struct seq *s, size_t ns, const uint32_t *g, size_t m, size_t *ended,
                     uint32_t *min_id, size_t *growing)
{
    *ended = *growing = 0;
    for (size_t i = 0; i < ns; i++) {
        int first_end = 1, first_pre = 1;
        for (size_t j = 0; j < i; j++) { /* count each token string once */
            if (s[j].n == s[i].n && !memcmp(s[j].tok, s[i].tok, s[i].n * 4))
                first_end = 0;
        }
        if (s[i].n <= m && !memcmp(g + m - s[i].n, s[i].tok, s[i].n * 4)) {
            if (!*ended || s[i].id < *min_id)
                *min_id = s[i].id;
            *ended += first_end;
        }
        /* proper prefixes of length L ending here, counted once per string */
        for (size_t L = 1; L < s[i].n && L <= m; L++) {
            if (memcmp(g + m - L, s[i].tok, L * 4))
                continue;
            first_pre = 1;
            for (size_t j = 0; j < i && first_pre; j++)
                if (s[j].n > L && !memcmp(s[j].tok, s[i].tok, L * 4))
                    first_pre = 0;
            *growing += first_pre;
        }
    }
}

TEST(guard_trie_matches_naive_on_random_input)
{
    lethe_rng r = lethe_rng_init(21, 0);
    struct seq s[MAXS];
    uint32_t g[64], cur[8], next[8];
    for (int it = 0; it < 300; it++) {
        lethe_guard_trie_t *t = lethe_guard_trie_new();
        CHECK(t);
        size_t ns = 1 + lethe_rng_below(&r, MAXS);
        for (size_t i = 0; i < ns; i++) {
            s[i].n = 1 + lethe_rng_below(&r, 6);
            for (size_t k = 0; k < s[i].n; k++)
                s[i].tok[k] = lethe_rng_below(&r, 3) * 1000003u;
            s[i].id = lethe_rng_below(&r, 50);
            CHECK_OK(lethe_guard_trie_add(t, s[i].tok, s[i].n, s[i].id));
        }
        if (it % 2) { /* half the runs drop an id first */
            uint32_t gone = s[0].id;
            size_t kept = 0;
            for (size_t i = 0; i < ns; i++)
                if (s[i].id != gone)
                    s[kept++] = s[i];
            ns = kept;
            lethe_guard_trie_remove(t, gone);
        }
        size_t n = 0;
        for (size_t m = 1; m <= 64; m++) {
            g[m - 1] = lethe_rng_below(&r, 3) * 1000003u;
            size_t ended, want_ended, growing;
            uint32_t id = 0, want_id = 0;
            CHECK(n + 1 <= 8);
            n = lethe_guard_trie_advance(t, cur, n, g[m - 1], next, &ended, &id);
            memcpy(cur, next, n * sizeof *cur);
            ref_step(s, ns, g, m, &want_ended, &want_id, &growing);
            CHECK_MSG(ended == want_ended && n == growing && (!ended || id == want_id),
                      "iteration %d step %zu: %zu/%zu ended, %zu/%zu cursors", it, m, ended,
                      want_ended, n, growing);
        }
        lethe_guard_trie_free(t);
    }
}
