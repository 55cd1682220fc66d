/* libFuzzer harness: the guard's target index. Each input is
 *   - loaded as a serialised automaton and as a serialised trie: a format
 *     error with a message, or an index that saves back to the same bytes;
 *   - split at NUL bytes into patterns and a text (the last piece): the
 *     automaton built from the patterns (piece k has id k mod 3, so ids have
 *     aliases) must report exactly the naive matcher's matches, whole and
 *     streamed in chunks, after a removal, and after a save and load; the
 *     pieces as sequences of byte tokens in the trie must end exactly where
 *     a naive suffix test says.
 * Any disagreement aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PIECES 32
#define MAX_MATCHES 4096

struct piece {
    const uint8_t *p;
    size_t len;
    uint32_t id;
};

/* ---- naive references ----------------------------------------------------- */

static size_t ref_normalize(const uint8_t *s, size_t len, uint8_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        int upper = c >= 'A' && c <= 'Z';
        if (!(c >= 0x80 || upper || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
            continue;
        }
        out[n++] = upper ? (uint8_t)(c + 32) : c;
    }
    return n && out[n - 1] == ' ' ? n - 1 : n;
}

static int match_cmp(const void *a, const void *b)
{
    const lethe_guard_match *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The matches of the live pieces in text, sorted as the library reports. */
static size_t ref_matches(const struct piece *pc, size_t np, const uint8_t *text, size_t len,
                          lethe_guard_match *out)
{
    size_t longest = 0;
    for (size_t i = 0; i < np; i++)
        longest = pc[i].len > longest ? pc[i].len : longest;
    uint8_t *t = malloc(len + 1), *a = malloc(longest + 1), *b = malloc(longest + 1);
    LETHE_ASSERT(t && a && b);
    size_t n = ref_normalize(text, len, t), k = 0;
    for (size_t i = 0; i < np; i++) {
        size_t m = ref_normalize(pc[i].p, pc[i].len, a), repeat = 0;
        for (size_t j = 0; j < i && !repeat; j++) /* a repeated (pattern, id) counts once */
            repeat = pc[j].id == pc[i].id && ref_normalize(pc[j].p, pc[j].len, b) == m &&
                     !memcmp(a, b, m);
        for (size_t s = 0; m && !repeat && s + m <= n; s++)
            if (!memcmp(t + s, a, m) && (s == 0 || t[s - 1] == ' ') &&
                (s + m == n || t[s + m] == ' ') && k < MAX_MATCHES)
                out[k++] = (lethe_guard_match){pc[i].id, s, s + m};
    }
    free(t);
    free(a);
    free(b);
    qsort(out, k, sizeof *out, match_cmp);
    return k;
}

/* ---- checks ------------------------------------------------------------------ */

struct collect {
    lethe_guard_match *m;
    size_t n;
};

static void collect_one(void *ctx, const lethe_guard_match *m)
{
    struct collect *c = ctx;
    if (c->n < MAX_MATCHES)
        c->m[c->n] = *m;
    c->n++;
}

static void same(const lethe_guard_match *x, size_t nx, const lethe_guard_match *y, size_t ny)
{
    if (nx != ny)
        abort();
    for (size_t i = 0; i < nx; i++)
        if (x[i].id != y[i].id || x[i].start != y[i].start || x[i].end != y[i].end)
            abort();
}

/* Whole-text and streamed scans against the naive matcher. */
static void check_ac(lethe_guard_ac_t *ac, const struct piece *pc, size_t np, const uint8_t *text,
                     size_t len)
{
    static lethe_guard_match want[MAX_MATCHES], got[MAX_MATCHES], streamed[MAX_MATCHES];
    size_t nw = ref_matches(pc, np, text, len, want), ng;
    if (nw >= MAX_MATCHES)
        return; /* the reference stopped counting */
    LETHE_ASSERT(lethe_guard_ac_find(ac, text, len, got, MAX_MATCHES, &ng) == LETHE_OK);
    same(want, nw, got, ng);
    lethe_guard_stream st;
    LETHE_ASSERT(lethe_guard_stream_init(&st, ac) == LETHE_OK);
    struct collect c = {streamed, 0};
    size_t pos = 0, fed = 0;
    while (pos < len) { /* chunk sizes taken from the text itself */
        size_t k = 1 + text[pos] % 5;
        k = k < len - pos ? k : len - pos;
        fed += lethe_guard_stream_feed(&st, text + pos, k, collect_one, &c);
        pos += k;
    }
    fed += lethe_guard_stream_end(&st, collect_one, &c);
    LETHE_ASSERT(fed == c.n);
    same(want, nw, streamed, c.n);
}

static void check_patterns(const uint8_t *data, size_t size)
{
    struct piece pc[MAX_PIECES + 1];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= size && np <= MAX_PIECES; i++) {
        if (i == size || data[i] == 0) {
            pc[np] = (struct piece){data + start, i - start, (uint32_t)(np % 3)};
            np++;
            start = i + 1;
        }
    }
    const struct piece text = pc[--np]; /* the last piece is the text */
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    LETHE_ASSERT(ac);
    uint8_t *norm = malloc(size + 1);
    for (size_t i = 0; i < np; i++) {
        lethe_status st = lethe_guard_ac_add(ac, pc[i].p, pc[i].len, pc[i].id);
        int empty = ref_normalize(pc[i].p, pc[i].len, norm) == 0;
        if (st != (empty ? LETHE_ERR_INVALID : LETHE_OK))
            abort();
    }
    free(norm);
    check_ac(ac, pc, np, text.p, text.len);

    /* a save and load keeps the matches */
    unsigned char *buf;
    size_t len;
    lethe_guard_ac_t *back = NULL;
    LETHE_ASSERT(lethe_guard_ac_save(ac, &buf, &len) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_ac_load(buf, len, &back) == LETHE_OK);
    free(buf);
    check_ac(back, pc, np, text.p, text.len);
    lethe_guard_ac_free(back);

    /* removing id 1 leaves the others */
    size_t kept = 0;
    for (size_t i = 0; i < np; i++)
        if (pc[i].id != 1)
            pc[kept++] = pc[i];
    lethe_guard_ac_remove(ac, 1);
    check_ac(ac, pc, kept, text.p, text.len);
    lethe_guard_ac_free(ac);
}

/* The pieces as byte-token sequences; the text's bytes as generated tokens. */
static void check_trie(const uint8_t *data, size_t size)
{
    struct piece pc[MAX_PIECES + 1];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= size && np <= MAX_PIECES; i++)
        if (i == size || data[i] == 0) {
            pc[np] = (struct piece){data + start, i - start, (uint32_t)(np % 3)};
            np++;
            start = i + 1;
        }
    const struct piece text = pc[--np];
    lethe_guard_trie_t *t = lethe_guard_trie_new();
    LETHE_ASSERT(t);
    uint32_t seq[LETHE_GUARD_MAX_SEQUENCE / 16];
    for (size_t i = 0; i < np; i++) {
        size_t n = pc[i].len < sizeof seq / 4 ? pc[i].len : sizeof seq / 4;
        for (size_t j = 0; j < n; j++)
            seq[j] = pc[i].p[j];
        lethe_status st = lethe_guard_trie_add(t, seq, n, pc[i].id);
        if (st != (n ? LETHE_OK : LETHE_ERR_INVALID))
            abort();
        pc[i].len = n;
    }
    uint32_t *cur = malloc((text.len + 1) * sizeof *cur);
    size_t nc = 0;
    for (size_t m = 1; m <= text.len; m++) {
        size_t ended, want = 0;
        uint32_t id = 0, want_id = UINT32_MAX;
        nc = lethe_guard_trie_advance(t, cur, nc, text.p[m - 1], cur, &ended, &id);
        for (size_t i = 0; i < np; i++) {
            size_t n = pc[i].len, first = 1;
            if (!n || n > m || memcmp(text.p + m - n, pc[i].p, n))
                continue;
            for (size_t j = 0; j < i; j++) /* each token string once */
                first &= !(pc[j].len == n && !memcmp(pc[j].p, pc[i].p, n));
            want += first;
            want_id = pc[i].id < want_id ? pc[i].id : want_id;
        }
        if (ended != want || (want && id != want_id))
            abort();
    }
    free(cur);
    unsigned char *buf;
    size_t len;
    lethe_guard_trie_t *back = NULL;
    LETHE_ASSERT(lethe_guard_trie_save(t, &buf, &len) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_trie_load(buf, len, &back) == LETHE_OK);
    LETHE_ASSERT(lethe_guard_trie_count(back) == lethe_guard_trie_count(t));
    free(buf);
    lethe_guard_trie_free(back);
    lethe_guard_trie_free(t);
}

/* Loading arbitrary bytes: a format error, or an index saving the same bytes. */
static void check_loads(const uint8_t *data, size_t size)
{
    unsigned char *buf;
    size_t len;
    lethe_guard_ac_t *ac = NULL;
    if (lethe_guard_ac_load(data, size, &ac) == LETHE_OK) {
        LETHE_ASSERT(lethe_guard_ac_save(ac, &buf, &len) == LETHE_OK);
        LETHE_ASSERT(len == size && !memcmp(buf, data, size));
        size_t n;
        LETHE_ASSERT(lethe_guard_ac_scan(ac, data, size, NULL, NULL, &n) == LETHE_OK);
        free(buf);
        lethe_guard_ac_free(ac);
    } else
        LETHE_ASSERT(ac == NULL && lethe_error_detail()[0]);
    lethe_guard_trie_t *t = NULL;
    if (lethe_guard_trie_load(data, size, &t) == LETHE_OK) {
        LETHE_ASSERT(lethe_guard_trie_save(t, &buf, &len) == LETHE_OK);
        LETHE_ASSERT(len == size && !memcmp(buf, data, size));
        free(buf);
        lethe_guard_trie_free(t);
    } else
        LETHE_ASSERT(t == NULL && lethe_error_detail()[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_loads(data, size);
    check_patterns(data, size);
    check_trie(data, size);
    return 0;
}
