/* The guard's target index: normalisation, the Aho-Corasick automaton
 * (against a naive matcher), streaming, the token trie, serialisation. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_index.h"
#include "lethe/rng.h"

/* ---- naive references ----------------------------------------------------- */

/* Normalisation spelled out rule by rule, apart from the library's code. */
static size_t ref_normalize(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int word = c >= 0x80 || strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ", c) != NULL;
        if (c == 0)
            word = 0; /* strchr finds the terminator */
        if (!word) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
            continue;
        }
        out[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
    }
    if (n && out[n - 1] == ' ')
        n--;
    return n;
}

struct pat {
    char text[16];
    size_t len;
    uint32_t id;
};

static int match_cmp(const void *a, const void *b)
{
    const lethe_guard_match *x = a, *y = b;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Every occurrence at word boundaries of every distinct (pattern, id), in the
 * library's report order (by end, then longest, then id). Returns the count. */
static size_t ref_matches(const struct pat *p, size_t np, const char *text, size_t len,
                          lethe_guard_match *out, size_t cap)
{
    char *t = malloc(len + 1), norm[16], other[16];
    size_t n = ref_normalize(text, len, t), k = 0;
    for (size_t i = 0; i < np; i++) {
        size_t m = ref_normalize(p[i].text, p[i].len, norm);
        int repeat = 0;
        for (size_t j = 0; j < i && !repeat; j++)
            repeat = p[j].id == p[i].id && ref_normalize(p[j].text, p[j].len, other) == m &&
                     !memcmp(norm, other, m);
        if (!m || repeat || m > n)
            continue;
        for (size_t s = 0; s + m <= n; s++) {
            if (memcmp(t + s, norm, m) || (s && t[s - 1] != ' ') || (s + m < n && t[s + m] != ' '))
                continue;
            if (k < cap)
                out[k] = (lethe_guard_match){p[i].id, s, s + m};
            k++;
        }
    }
    free(t);
    qsort(out, k < cap ? k : cap, sizeof *out, match_cmp);
    return k;
}

/* Random bytes from a small alphabet, so that matches are frequent; upper
 * case, punctuation and a UTF-8 lead byte exercise normalisation. With
 * `wide` set (for short patterns), a wide one, so that states have many
 * children and transitions take the binary search. */
static int wide;

static void random_text(lethe_rng *r, char *s, size_t n)
{
    static const char narrow_alpha[] = "aabbbc  A-,\xc3";
    static const char wide_alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789\xc3\xa9  ";
    const char *alpha = wide ? wide_alpha : narrow_alpha;
    uint32_t na = (uint32_t)(wide ? sizeof wide_alpha : sizeof narrow_alpha) - 1;
    for (size_t i = 0; i < n; i++)
        s[i] = alpha[lethe_rng_below(r, na)];
}

static size_t random_patterns(lethe_rng *r, struct pat *p, size_t max)
{
    size_t n = 1 + lethe_rng_below(r, (uint32_t)max);
    for (size_t i = 0; i < n; i++) {
        p[i].len = 1 + lethe_rng_below(r, wide ? 3 : 6);
        random_text(r, p[i].text, p[i].len);
        p[i].id = lethe_rng_below(r, 5); /* ids repeat: aliases */
    }
    return n;
}

/* A random text of at most cap bytes made of pattern texts, spaces and
 * random bytes, so that even long patterns over a wide alphabet match. */
static size_t mixed_text(lethe_rng *r, const struct pat *p, size_t np, char *s, size_t cap)
{
    size_t n = 0, want = lethe_rng_below(r, (uint32_t)cap);
    while (n < want) {
        uint32_t pick = lethe_rng_below(r, 4);
        const struct pat *q = &p[lethe_rng_below(r, (uint32_t)np)];
        if (pick == 0 && n + q->len <= cap) {
            memcpy(s + n, q->text, q->len);
            n += q->len;
        } else if (pick == 1) {
            s[n++] = ' ';
        } else {
            random_text(r, s + n++, 1);
        }
    }
    return n;
}

/* Add the patterns; those empty after normalisation must be refused. */
static int add_all(lethe_guard_ac_t *ac, const struct pat *p, size_t n)
{
    char norm[16];
    for (size_t i = 0; i < n; i++) {
        lethe_status st = lethe_guard_ac_add(ac, p[i].text, p[i].len, p[i].id);
        lethe_status want = ref_normalize(p[i].text, p[i].len, norm) ? LETHE_OK
                                                                     : LETHE_ERR_INVALID;
        if (st != want)
            return 0;
    }
    return 1;
}

/* The automaton's matches equal the naive ones, order included. */
static int same_as_ref(lethe_guard_ac_t *ac, const struct pat *p, size_t np, const char *text,
                       size_t len)
{
    lethe_guard_match got[512], want[512];
    size_t ng, nw = ref_matches(p, np, text, len, want, 512);
    if (lethe_guard_ac_find(ac, text, len, got, 512, &ng) != LETHE_OK || ng != nw)
        return 0;
    for (size_t i = 0; i < ng && i < 512; i++)
        if (got[i].id != want[i].id || got[i].start != want[i].start || got[i].end != want[i].end)
            return 0;
    return 1;
}

/* ---- normalisation -------------------------------------------------------- */

TEST(guard_normalize_cases)
{
    static const char *cases[][2] = {
        {"", ""},
        {"   ", ""},
        {"Hello", "hello"},
        {"  New-York's\tCaf\xc3\xa9! ", "new york s caf\xc3\xa9"},
        {"A__B..c", "a b c"},
        {"\xc3\x89T\xc3\x89", "\xc3\x89t\xc3\x89"}, /* non-ASCII is not case-folded */
        {"x\xc2\xa0y", "x\xc2\xa0y"},               /* nor is U+00A0 a space */
        {"R2-D2\n\n", "r2 d2"},
        {"\xff\xfe bad", "\xff\xfe bad"},
        {"[{(ok)}]", "ok"},
    };
    char out[80];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = lethe_guard_normalize(cases[i][0], strlen(cases[i][0]), (unsigned char *)out);
        CHECK_MSG(n == strlen(cases[i][1]) && !memcmp(out, cases[i][1], n), "case %zu: '%.*s'",
                  i, (int)n, out);
    }
    /* NUL and control bytes are separators; in place works */
    char s[] = "a\0b\x01\x7f" "C";
    size_t n = lethe_guard_normalize(s, sizeof s - 1, (unsigned char *)s);
    CHECK(n == 5 && !memcmp(s, "a b c", 5));
    /* random texts against the rule-by-rule reference */
    lethe_rng r = lethe_rng_init(7, 0);
    char text[80], want[80];
    for (int it = 0; it < 2000; it++) {
        size_t len = lethe_rng_below(&r, 80);
        for (size_t i = 0; i < len; i++)
            text[i] = (char)lethe_rng_below(&r, 256);
        size_t nw = ref_normalize(text, len, want);
        n = lethe_guard_normalize(text, len, (unsigned char *)out);
        CHECK_MSG(n == nw && !memcmp(out, want, n), "iteration %d", it);
    }
}

/* ---- the automaton -------------------------------------------------------- */

TEST(guard_ac_word_boundaries_and_nesting)
{
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    CHECK(ac);
    CHECK_OK(lethe_guard_ac_add(ac, "al", 2, 1));
    CHECK_OK(lethe_guard_ac_add(ac, "New York", 8, 2));
    CHECK_OK(lethe_guard_ac_add(ac, "york", 4, 3));
    CHECK_OK(lethe_guard_ac_add(ac, "new york city", 13, 4));
    CHECK_OK(lethe_guard_ac_add(ac, "caf", 3, 5));
    size_t n;
    lethe_guard_match m[8];
    /* inside words: nothing */
    const char *none = "also, Alabama; yorkshire newyork caf\xc3\xa9 sal";
    CHECK_OK(lethe_guard_ac_find(ac, none, strlen(none), m, 8, &n));
    CHECK(n == 0);
    /* at the edges and next to punctuation */
    CHECK_OK(lethe_guard_ac_find(ac, "Al", 2, m, 8, &n));
    CHECK(n == 1 && m[0].id == 1 && m[0].start == 0 && m[0].end == 2);
    CHECK_OK(lethe_guard_ac_find(ac, "(al).", 5, m, 8, &n));
    CHECK(n == 1 && m[0].start == 0 && m[0].end == 2);
    /* nested and overlapping: "i love new york city" */
    const char *t = "I love NEW-YORK  city!";
    CHECK_OK(lethe_guard_ac_find(ac, t, strlen(t), m, 8, &n));
    CHECK(n == 3);
    CHECK(m[0].id == 2 && m[0].start == 7 && m[0].end == 15);
    CHECK(m[1].id == 3 && m[1].start == 11 && m[1].end == 15);
    CHECK(m[2].id == 4 && m[2].start == 7 && m[2].end == 20);
    /* the count is the total even when the array is short */
    CHECK_OK(lethe_guard_ac_find(ac, t, strlen(t), m, 1, &n));
    CHECK(n == 3 && m[0].id == 2);
    lethe_guard_ac_free(ac);
    lethe_guard_ac_free(NULL);
}

TEST(guard_ac_aliases_remove_and_invalid)
{
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    CHECK(ac);
    CHECK_OK(lethe_guard_ac_add(ac, "Robert Smith", 12, 7));
    CHECK_OK(lethe_guard_ac_add(ac, "bob smith", 9, 7));
    CHECK_OK(lethe_guard_ac_add(ac, "ROBERT  SMITH!", 14, 7)); /* the same pair: no-op */
    CHECK_OK(lethe_guard_ac_add(ac, "robert smith", 12, 8));   /* same text, new id */
    CHECK_OK(lethe_guard_ac_add(ac, "smith", 5, 9));
    CHECK(lethe_guard_ac_count(ac) == 4);
    size_t len;
    uint32_t id;
    const unsigned char *p = lethe_guard_ac_pattern(ac, 1, &len, &id);
    CHECK(len == 9 && !memcmp(p, "bob smith", 9) && id == 7);
    CHECK_STATUS(lethe_guard_ac_add(ac, " .,; ", 5, 1), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_guard_ac_add(ac, "", 0, 1), LETHE_ERR_INVALID);
    size_t big = LETHE_GUARD_MAX_PATTERN + 1;
    char *huge = malloc(big);
    CHECK(huge);
    memset(huge, 'x', big);
    lethe_status st = lethe_guard_ac_add(ac, huge, big, 1);
    free(huge);
    CHECK_STATUS(st, LETHE_ERR_INVALID);

    const char *t = "Bob Smith met Robert Smith.";
    lethe_guard_match m[8];
    size_t n;
    CHECK_OK(lethe_guard_ac_find(ac, t, strlen(t), m, 8, &n));
    CHECK(n == 5); /* bob smith(7), smith(9), robert smith(7, 8), smith(9) */
    CHECK(m[0].id == 7 && m[1].id == 9 && m[2].id == 7 && m[3].id == 8 && m[4].id == 9);
    CHECK(lethe_guard_ac_remove(ac, 7) == 2);
    CHECK(lethe_guard_ac_remove(ac, 7) == 0);
    CHECK(lethe_guard_ac_count(ac) == 2);
    CHECK_OK(lethe_guard_ac_find(ac, t, strlen(t), m, 8, &n));
    CHECK(n == 3 && m[0].id == 9 && m[1].id == 8 && m[2].id == 9);
    /* a pattern removed can be added back */
    CHECK_OK(lethe_guard_ac_add(ac, "bob smith", 9, 7));
    CHECK_OK(lethe_guard_ac_find(ac, t, strlen(t), m, 8, &n));
    CHECK(n == 4 && m[0].id == 7 && m[0].start == 0);
    CHECK(lethe_guard_ac_remove(ac, 8) == 1 && lethe_guard_ac_remove(ac, 9) == 1 &&
          lethe_guard_ac_remove(ac, 7) == 1);
    CHECK_OK(lethe_guard_ac_scan(ac, t, strlen(t), NULL, NULL, &n));
    CHECK(n == 0 && lethe_guard_ac_count(ac) == 0);
    lethe_guard_ac_free(ac);
}

TEST(guard_ac_matches_naive_on_random_input)
{
    lethe_rng r = lethe_rng_init(11, 0);
    struct pat p[40];
    char text[120];
    for (int it = 0; it < 600; it++) {
        lethe_guard_ac_t *ac = lethe_guard_ac_new();
        CHECK(ac);
        wide = it % 3 == 2;
        size_t np = random_patterns(&r, p, 40);
        CHECK(add_all(ac, p, np));
        for (int k = 0; k < 5; k++) {
            size_t len = mixed_text(&r, p, np, text, sizeof text);
            CHECK_MSG(same_as_ref(ac, p, np, text, len), "iteration %d text %d", it, k);
        }
        /* remove one id, then everything must match the rest */
        uint32_t gone = lethe_rng_below(&r, 5);
        size_t kept = 0;
        for (size_t i = 0; i < np; i++)
            if (p[i].id != gone)
                p[kept++] = p[i];
        lethe_guard_ac_remove(ac, gone);
        /* the text may still hold removed patterns (p[kept..np) is stale) */
        size_t len = mixed_text(&r, p, np, text, sizeof text);
        CHECK_MSG(same_as_ref(ac, p, kept, text, len), "iteration %d after remove", it);
        lethe_guard_ac_free(ac);
    }
    wide = 0;
}

struct collect {
    lethe_guard_match m[512];
    size_t n;
};

static void collect_one(void *ctx, const lethe_guard_match *m)
{
    struct collect *c = ctx;
    if (c->n < 512)
        c->m[c->n] = *m;
    c->n++;
}

TEST(guard_ac_stream_equals_whole_text)
{
    lethe_rng r = lethe_rng_init(12, 0);
    struct pat p[30];
    char text[200];
    static struct collect whole, streamed;
    for (int it = 0; it < 300; it++) {
        lethe_guard_ac_t *ac = lethe_guard_ac_new();
        CHECK(ac);
        size_t np = random_patterns(&r, p, 30);
        CHECK(add_all(ac, p, np));
        size_t len = mixed_text(&r, p, np, text, sizeof text);
        whole.n = streamed.n = 0;
        CHECK_OK(lethe_guard_ac_scan(ac, text, len, collect_one, &whole, NULL));
        /* random chunks, one byte at a time in every third run */
        lethe_guard_stream st;
        CHECK_OK(lethe_guard_stream_init(&st, ac));
        size_t pos = 0, fed = 0;
        while (pos < len) {
            size_t c = it % 3 == 0 ? 1 : 1 + lethe_rng_below(&r, 8);
            if (c > len - pos)
                c = len - pos;
            fed += lethe_guard_stream_feed(&st, text + pos, c, collect_one, &streamed);
            /* peeking at the end leaves the stream as it was */
            lethe_guard_stream peek = st;
            lethe_guard_stream_end(&st, NULL, NULL);
            CHECK(peek.state == st.state && peek.pos == st.pos && peek.in_sep == st.in_sep);
            pos += c;
        }
        fed += lethe_guard_stream_end(&st, collect_one, &streamed);
        CHECK(fed == streamed.n && streamed.n == whole.n && whole.n <= 512);
        for (size_t i = 0; i < whole.n; i++)
            CHECK_MSG(whole.m[i].id == streamed.m[i].id && whole.m[i].start == streamed.m[i].start &&
                          whole.m[i].end == streamed.m[i].end,
                      "iteration %d match %zu", it, i);
        lethe_guard_ac_free(ac);
    }
}

TEST(guard_ac_stream_reports_when_the_word_closes)
{
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    CHECK(ac);
    CHECK_OK(lethe_guard_ac_add(ac, "john smith", 10, 42));
    lethe_guard_stream st;
    CHECK_OK(lethe_guard_stream_init(&st, ac));
    struct collect c = {.n = 0};
    CHECK(lethe_guard_stream_feed(&st, "Mr John", 7, NULL, NULL) == 0);
    CHECK(lethe_guard_stream_feed(&st, " Smith", 6, NULL, NULL) == 0);
    CHECK(lethe_guard_stream_end(&st, collect_one, &c) == 1); /* if the text ended here */
    CHECK(c.m[0].id == 42 && c.m[0].start == 3 && c.m[0].end == 13);
    lethe_guard_stream branch = st; /* a beam that goes on with "son" */
    CHECK(lethe_guard_stream_feed(&branch, "son ", 4, NULL, NULL) == 0);
    CHECK(lethe_guard_stream_feed(&st, ",", 1, NULL, NULL) == 1);
    CHECK(lethe_guard_stream_end(&st, NULL, NULL) == 0); /* reported already */
    lethe_guard_ac_free(ac);
}

struct scan_job {
    lethe_guard_ac_t *ac;
    const char *text;
    size_t n;
    lethe_status st;
};

static void *scan_thread(void *arg)
{
    struct scan_job *j = arg;
    j->st = lethe_guard_ac_scan(j->ac, j->text, strlen(j->text), NULL, NULL, &j->n);
    return NULL;
}

TEST(guard_ac_concurrent_scans_build_once)
{
    lethe_guard_ac_t *ac = lethe_guard_ac_new();
    CHECK(ac);
    char w[32];
    for (int i = 0; i < 2000; i++) {
        int k = snprintf(w, sizeof w, "w%d x%d", i, i % 7);
        CHECK_OK(lethe_guard_ac_add(ac, w, (size_t)k, (uint32_t)i));
    }
    /* the threads find the automaton out of date and race to build it */
    const char *text = "w5 x5 and w12 x5, w1999 x4";
    struct scan_job jobs[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        jobs[i] = (struct scan_job){ac, text, 0, LETHE_ERR_FAILED};
        CHECK(pthread_create(&th[i], NULL, scan_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++)
        CHECK(jobs[i].st == LETHE_OK && jobs[i].n == 3);
    CHECK(lethe_guard_ac_memory(ac) > 2000 * 8);
    lethe_guard_ac_free(ac);
}

/* ---- serialisation of the automaton --------------------------------------- */

TEST(guard_ac_serial_round_trip)
{
    lethe_rng r = lethe_rng_init(13, 0);
    struct pat p[30];
    char text[150];
    for (int it = 0; it < 100; it++) {
        lethe_guard_ac_t *ac = lethe_guard_ac_new(), *back = NULL;
        CHECK(ac);
        size_t np = random_patterns(&r, p, 30);
        CHECK(add_all(ac, p, np));
        unsigned char *buf, *again;
        size_t len, len2;
        CHECK_OK(lethe_guard_ac_save(ac, &buf, &len));
        CHECK_OK(lethe_guard_ac_load(buf, len, &back));
        CHECK(lethe_guard_ac_count(back) == lethe_guard_ac_count(ac));
        CHECK_OK(lethe_guard_ac_save(back, &again, &len2));
        CHECK(len2 == len && !memcmp(buf, again, len));
        size_t tl = mixed_text(&r, p, np, text, sizeof text);
        CHECK(same_as_ref(back, p, np, text, tl));
        free(buf);
        free(again);
        lethe_guard_ac_free(ac);
        lethe_guard_ac_free(back);
    }
}
