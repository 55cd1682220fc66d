/* Byte-level BPE tokenizer: the byte alphabet, GPT-2's word splitting on
 * hand-checked cases (checked once against the pattern in node), round trips
 * of random bytes, GPT-2's ids for a few texts, training (merges worked by
 * hand, determinism), tokenizer.json round trips and loading errors.
 * GPT-2's ids for hundreds of texts are checked by tests/integ/test_tokenizer.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/tokenizer.h"

/* ----------------------------------------------------------- helpers */

static uint32_t lcg_state;
static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state >> 8;
}

/* The words of s, joined with '|' (s must not hold '|'). */
static void split_join(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = lethe_tokenizer_split_next(s, len, pos);
        if (pos && o + 1 < cap)
            out[o++] = '|';
        for (size_t i = pos; i < end && o + 1 < cap; i++)
            out[o++] = s[i];
        pos = end;
    }
    out[o] = '\0';
}

#define CHECK_SPLIT(text, want)                                                   \
    do {                                                                          \
        char got_[512];                                                           \
        split_join(text, sizeof(text) - 1, got_, sizeof got_);                    \
        CHECK_MSG(!strcmp(got_, want), "split of %s: got '%s', want '%s'", #text, \
                  got_, want);                                                    \
    } while (0)

static lethe_tokenizer_t *gpt2(void)
{
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_load_gpt2(FIXTURES "gpt2-vocab.json.gz", FIXTURES "gpt2-merges.txt.gz",
                                  &t) != LETHE_OK)
        return NULL;
    return t;
}

/* encode then decode gives s back; 1 on success */
static int round_trip(const lethe_tokenizer_t *t, const unsigned char *s, size_t len)
{
    uint32_t *ids;
    unsigned char *back;
    size_t n, blen;
    if (lethe_tokenizer_encode(t, s, len, &ids, &n) != LETHE_OK)
        return 0;
    int ok = lethe_tokenizer_decode(t, ids, n, &back, &blen) == LETHE_OK && blen == len &&
             !memcmp(back, s, len);
    if (ok)
        free(back);
    free(ids);
    return ok;
}

static int encodes_to(const lethe_tokenizer_t *t, const char *s, const uint32_t *want, size_t nw)
{
    uint32_t *ids;
    size_t n;
    if (lethe_tokenizer_encode(t, s, strlen(s), &ids, &n) != LETHE_OK)
        return 0;
    int ok = n == nw && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
    free(ids);
    return ok;
}

/* ------------------------------------------------------------ alphabet */

TEST(tokenizer_byte_alphabet)
{
    CHECK(lethe_tokenizer_byte_char('A') == 'A');
    CHECK(lethe_tokenizer_byte_char('~') == '~');
    CHECK(lethe_tokenizer_byte_char(0) == 0x100);
    CHECK(lethe_tokenizer_byte_char('\n') == 0x10A);
    CHECK(lethe_tokenizer_byte_char(' ') == 0x120); /* 'Ġ' */
    CHECK(lethe_tokenizer_byte_char(0x7F) == 0x121);
    CHECK(lethe_tokenizer_byte_char(0xA0) == 0x142);
    CHECK(lethe_tokenizer_byte_char(0xAD) == 0x143);
    CHECK(lethe_tokenizer_byte_char(0xE9) == 0xE9);
    int seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t c = lethe_tokenizer_byte_char((unsigned char)b);
        CHECK(c < 0x144 && !seen[c]);
        seen[c] = 1;
        CHECK(lethe_tokenizer_char_byte(c) == b);
    }
    CHECK(lethe_tokenizer_char_byte(' ') == -1);
    CHECK(lethe_tokenizer_char_byte(0xAD) == -1);
    CHECK(lethe_tokenizer_char_byte(0x144) == -1);
    CHECK(lethe_tokenizer_char_byte(0x2581) == -1);
}

/* ------------------------------------------------------------ splitting */

TEST(tokenizer_split_gpt2_pattern)
{
    CHECK_SPLIT("Hello world", "Hello| world");
    CHECK_SPLIT("it's", "it|'s");
    CHECK_SPLIT("I'M here", "I|'|M| here");
    CHECK_SPLIT("they're we've I'd you'll 'twas", "they|'re| we|'ve| I|'d| you|'ll| '|twas");
    CHECK_SPLIT("?'s", "?'|s");
    CHECK_SPLIT(" 's", " '|s");
    CHECK_SPLIT("a   b", "a|  | b");
    CHECK_SPLIT("x  ", "x|  ");
    CHECK_SPLIT("\t\tx", "\t|\t|x");
    CHECK_SPLIT("line\n\nnext\n", "line|\n|\n|next|\n");
    CHECK_SPLIT(" ", " ");
    CHECK_SPLIT("  ", "  ");
    CHECK_SPLIT("123abc", "123|abc");
    CHECK_SPLIT(" 123 x", " 123| x");
    CHECK_SPLIT("x\xD9\xA1\xD9\xA2\xD9\xA3 \xD9\xA4", "x|\xD9\xA1\xD9\xA2\xD9\xA3| \xD9\xA4");
    CHECK_SPLIT("h\xC3\xA9llo w\xC3\xB6rld", "h\xC3\xA9llo| w\xC3\xB6rld");
    CHECK_SPLIT("\xE6\x97\xA5\xE6\x9C\xAC \xE3\x83\x86", "\xE6\x97\xA5\xE6\x9C\xAC| \xE3\x83\x86");
    CHECK_SPLIT("\xF0\x9F\x98\x80\xF0\x9F\x98\x80 a", "\xF0\x9F\x98\x80\xF0\x9F\x98\x80| a");
    CHECK_SPLIT("e\xCC\x81", "e|\xCC\x81");                   /* combining mark: not \p{L} */
    CHECK_SPLIT("a\xC2\xA0" "b", "a|\xC2\xA0|b");             /* no-break space is \s */
    CHECK_SPLIT("a \xE3\x80\x80" "b", "a| |\xE3\x80\x80|b"); /* ideographic space */
    CHECK_SPLIT("x\xE2\x80\x83 y", "x|\xE2\x80\x83| y");
    CHECK_SPLIT("\xC2\xBDx\xC2\xB2", "\xC2\xBD|x|\xC2\xB2"); /* fractions, superscripts: \p{N} */
    /* bytes outside valid UTF-8 count as one "other" character each */
    CHECK_SPLIT("ab\xFF" "cd", "ab|\xFF|cd");
    CHECK_SPLIT(" \xFF\xFE!", " \xFF\xFE!");
    CHECK_SPLIT("x\xE2\x82", "x|\xE2\x82");                 /* truncated sequence */
    CHECK_SPLIT("\xC0\xAF" "a", "\xC0\xAF|a");                /* overlong '/' */
    CHECK_SPLIT("\xED\xA0\x80z", "\xED\xA0\x80|z");           /* a surrogate */
    CHECK_SPLIT("\xF4\x90\x80\x80" "1", "\xF4\x90\x80\x80|1"); /* above U+10FFFF */
    char got[64];
    split_join("a\0b \0", 5, got, sizeof got);
    CHECK(!memcmp(got, "a|\0|b| \0", 8));
}

/* ------------------------------------------------------------ GPT-2 */

TEST(tokenizer_gpt2_ids)
{
    lethe_tokenizer_t *t = gpt2();
    CHECK_MSG(t, "cannot load GPT-2's files: %s", lethe_error_detail());
    CHECK(lethe_tokenizer_vocab_size(t) == 50257);
    CHECK(lethe_tokenizer_n_tokens(t) == 50257);
    CHECK(lethe_tokenizer_n_merges(t) == 50000);
    /* ids from gpt-tokenizer's r50k_base */
    static const uint32_t hello[] = {15496, 995, 11, 340, 338, 257, 1332, 220, 220, 286, 220,
                                     220, 402, 11571, 12, 17, 338, 11241, 7509, 0};
    int ok = encodes_to(t, "Hello world, it's a test   of   GPT-2's tokenizer!", hello, 20);
    static const uint32_t none[1] = {0};
    ok = ok && encodes_to(t, "", none, 0);
    size_t len;
    const unsigned char *eot = lethe_tokenizer_token(t, 50256, &len);
    ok = ok && eot && len == 13 && !memcmp(eot, "<|endoftext|>", 13);
    uint32_t id = 0;
    ok = ok && lethe_tokenizer_find(t, " the", 4, &id) && id == 262;
    lethe_tokenizer_free(t);
    CHECK(ok);
}

TEST(tokenizer_round_trips_random_bytes)
{
    lethe_tokenizer_t *t = gpt2();
    CHECK_MSG(t, "cannot load GPT-2's files: %s", lethe_error_detail());
    static const char *const pool[] = {"a", "Z", " ", "  ", "\n", "\t", "'", "'s", "1", "\xC3\xA9",
                                       "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "\xCC\x81", "\xC2\xA0",
                                       "\xFF", "\xE2\x82", "\x80", "\0", "!", "\xED\xA0\x80"};
    unsigned char buf[4096];
    int bad = 0;
    lcg_state = 12345;
    for (int k = 0; k < 3000 && !bad; k++) {
        size_t len = lcg() % 300;
        int mode = k % 3;
        size_t o = 0;
        while (o < len) {
            if (mode == 0) /* uniform bytes */
                buf[o++] = (unsigned char)lcg();
            else if (mode == 1) /* printable ASCII and blanks */
                buf[o++] = (lcg() % 8 == 0 ? (unsigned char)" \n\t\r"[lcg() % 4]
                                                 : (unsigned char)(32 + lcg() % 95));
            else { /* pieces of UTF-8, broken UTF-8 and NUL */
                const char *p = pool[lcg() % (sizeof pool / sizeof pool[0])];
                size_t n = p[0] ? strlen(p) : 1;
                for (size_t i = 0; i < n && o < sizeof buf; i++)
                    buf[o++] = (unsigned char)p[i];
            }
        }
        if (!round_trip(t, buf, o))
            bad = k + 1;
    }
    /* a long text (the per-call cache) equals the words encoded one by one */
    size_t len = 0;
    while (len + 40 < sizeof buf) {
        static const char *const words[] = {" the", " whale", "'s", " ship", ",", "\n", " 42",
                                            "  ", " \xC3\xA9t\xC3\xA9", "!"};
        const char *w = words[lcg() % 10];
        memcpy(buf + len, w, strlen(w));
        len += strlen(w);
    }
    uint32_t *all = NULL, *one = NULL;
    size_t n_all = 0, n_one, at = 0;
    int same = lethe_tokenizer_encode(t, buf, len, &all, &n_all) == LETHE_OK;
    for (size_t pos = 0; same && pos < len;) {
        size_t end = lethe_tokenizer_split_next(buf, len, pos);
        same = lethe_tokenizer_encode(t, buf + pos, end - pos, &one, &n_one) == LETHE_OK &&
               at + n_one <= n_all && !memcmp(all + at, one, n_one * sizeof *one);
        at += n_one;
        free(one);
        pos = end;
    }
    same = same && at == n_all;
    free(all);
    /* one very long word (a run of letters, then of digits) stays fast */
    size_t big = 1 << 20;
    unsigned char *s = malloc(big);
    int long_ok = s != NULL;
    if (s) {
        for (size_t i = 0; i < big; i++)
            s[i] = i < big / 2 ? (unsigned char)('a' + i % 3) : (unsigned char)('0' + i % 10);
        long_ok = round_trip(t, s, big);
        free(s);
    }
    lethe_tokenizer_free(t);
    CHECK_MSG(!bad, "random string %d does not round-trip", bad);
    CHECK_MSG(same, "encoding a long text differs from encoding its words one by one");
    CHECK(long_ok);
}

TEST(tokenizer_encode_missing_byte)
{
    lethe_tokenizer_t *t = lethe_tokenizer_new();
    CHECK(t);
    lethe_status st = lethe_tokenizer_add_token(t, 0, "a", 1, 0);
    if (st == LETHE_OK)
        st = lethe_tokenizer_add_token(t, 1, "b", 1, 0);
    if (st == LETHE_OK)
        st = lethe_tokenizer_add_token(t, 2, "ab", 2, 0);
    uint32_t r = 0, *ids = NULL;
    size_t n = 0;
    if (st == LETHE_OK)
        st = lethe_tokenizer_add_merge(t, 0, 1, &r);
    lethe_status enc_ok = lethe_tokenizer_encode(t, "abab", 4, &ids, &n);
    int two = enc_ok == LETHE_OK && n == 2 && ids[0] == 2 && ids[1] == 2;
    free(ids);
    lethe_status bad = lethe_tokenizer_encode(t, "abc", 3, &ids, &n);
    int names_byte = strstr(lethe_error_detail(), "byte 0x63") != NULL;
    lethe_status chk = lethe_tokenizer_check(t, "hand-built");
    lethe_status dup = lethe_tokenizer_add_token(t, 3, "ab", 2, 0);
    lethe_status nomerge = lethe_tokenizer_add_merge(t, 1, 0, NULL);
    uint32_t unknown = 99;
    unsigned char *out = NULL;
    size_t len;
    lethe_status dec = lethe_tokenizer_decode(t, &unknown, 1, &out, &len);
    lethe_tokenizer_free(t);
    CHECK_OK(st);
    CHECK(r == 2 && two);
    CHECK(bad == LETHE_ERR_UNSUPPORTED && names_byte);
    CHECK(chk == LETHE_ERR_FORMAT);
    CHECK(dup == LETHE_ERR_FORMAT);
    CHECK(nomerge == LETHE_ERR_FORMAT);
    CHECK(dec == LETHE_ERR_INVALID && out == NULL);
    CHECK(strstr(lethe_error_detail(), "id 99"));
}

/* ------------------------------------------------------------ training */

static int merge_is(const lethe_tokenizer_t *t, size_t rank, uint32_t a, uint32_t b, uint32_t r)
{
    uint32_t x, y, z;
    if (rank >= lethe_tokenizer_n_merges(t))
        return 0;
    lethe_tokenizer_merge(t, rank, &x, &y, &z);
    return x == a && y == b && z == r;
}

TEST(tokenizer_train_first_merges_by_hand)
{
    /* Words "ab" x1, " ab" x2, " abc" x1: (a,b) occurs 4 times, (' ',a) 3,
     * (b,c) 1. So: (a,b) -> 256; then (' ', 256) 3 times -> 257; then
     * (257, c) once -> 258 "ab"-less " abc", and nothing is left. */
    const char *texts[] = {"ab ab ab abc"};
    size_t lens[] = {12};
    lethe_tokenizer_train_opts o = {0};
    lethe_tokenizer_t *t = NULL;
    CHECK_OK(lethe_tokenizer_train(texts, lens, 1, 300, &o, &t));
    int ok = lethe_tokenizer_n_merges(t) == 3 && lethe_tokenizer_n_tokens(t) == 259 &&
             merge_is(t, 0, 'a', 'b', 256) && merge_is(t, 1, ' ', 256, 257) &&
             merge_is(t, 2, 257, 'c', 258);
    size_t len;
    const unsigned char *p = lethe_tokenizer_token(t, 258, &len);
    ok = ok && p && len == 4 && !memcmp(p, " abc", 4);
    lethe_tokenizer_free(t);
    CHECK(ok);
    /* min_frequency 2 stops before the pair seen once */
    o.min_frequency = 2;
    CHECK_OK(lethe_tokenizer_train(texts, lens, 1, 300, &o, &t));
    ok = lethe_tokenizer_n_merges(t) == 2;
    lethe_tokenizer_free(t);
    CHECK(ok);
    /* vocab_size bounds the merges */
    CHECK_OK(lethe_tokenizer_train(texts, lens, 1, 257, NULL, &t));
    ok = lethe_tokenizer_n_merges(t) == 1 && lethe_tokenizer_vocab_size(t) == 257;
    lethe_tokenizer_free(t);
    CHECK(ok);
    /* Ties: words "xy" and " yx", every pair once. The smaller first id wins:
     * (' ', y) -> 256; then (x, y) (120 < 256) -> 257; then (256, x) -> 258. */
    const char *tie[] = {"xy yx"};
    size_t tie_len[] = {5};
    CHECK_OK(lethe_tokenizer_train(tie, tie_len, 1, 1000, NULL, &t));
    ok = lethe_tokenizer_n_merges(t) == 3 && merge_is(t, 0, ' ', 'y', 256) &&
         merge_is(t, 1, 'x', 'y', 257) && merge_is(t, 2, 256, 'x', 258);
    lethe_tokenizer_free(t);
    CHECK(ok);
}

TEST(tokenizer_train_deterministic_and_round_trips)
{
    /* a small corpus with many scripts and odd bytes */
    static const char *const pieces[] = {
        "The whale's jaw ", "swam ", "and swam; ", "\xC3\xA9t\xC3\xA9 ", "\xE6\x97\xA5\xE6\x9C\xAC ",
        "1234 ", "\n\n", "  ", "they've ", "\xFF\xFE", "\0"};
    size_t cap = 20000, len = 0;
    char *text = malloc(cap);
    CHECK(text);
    lcg_state = 7;
    while (len + 32 < cap) {
        size_t k = lcg() % 11, n = k == 10 ? 1 : strlen(pieces[k]);
        memcpy(text + len, pieces[k], n);
        len += n;
    }
    const char *texts[] = {text, "a second text about whales"};
    size_t lens[] = {len, 26};
    const char *special[] = {"<|endoftext|>", "<|pad|>"};
    lethe_tokenizer_train_opts o = {.special = special, .n_special = 2};
    lethe_tokenizer_t *a = NULL, *b = NULL, *c = NULL;
    char *ja = NULL, *jb = NULL, *jc = NULL;
    lethe_status st = lethe_tokenizer_train(texts, lens, 2, 300, &o, &a);
    if (st == LETHE_OK)
        st = lethe_tokenizer_train(texts, lens, 2, 300, &o, &b);
    if (st == LETHE_OK)
        st = lethe_tokenizer_to_json(a, &ja);
    if (st == LETHE_OK)
        st = lethe_tokenizer_to_json(b, &jb);
    if (st == LETHE_OK)
        st = lethe_tokenizer_parse_json(ja, strlen(ja), "trained.json", &c);
    if (st == LETHE_OK)
        st = lethe_tokenizer_to_json(c, &jc);
    int same = st == LETHE_OK && !strcmp(ja, jb) && !strcmp(ja, jc);
    int sizes = st == LETHE_OK && lethe_tokenizer_vocab_size(a) == 300 &&
                lethe_tokenizer_n_tokens(a) == 300 && lethe_tokenizer_n_merges(a) >= 298 - 256 &&
                lethe_tokenizer_is_special(c, 298) && lethe_tokenizer_is_special(c, 299) &&
                !lethe_tokenizer_is_special(c, 297);
    int rt = st == LETHE_OK && round_trip(a, (const unsigned char *)text, len) &&
             round_trip(c, (const unsigned char *)text, len);
    /* encoding agrees between the trained tokenizer and its reloaded copy */
    uint32_t *ia = NULL, *ic = NULL;
    size_t na = 0, nc = 0;
    int agree = st == LETHE_OK && lethe_tokenizer_encode(a, text, len, &ia, &na) == LETHE_OK &&
                lethe_tokenizer_encode(c, text, len, &ic, &nc) == LETHE_OK && na == nc &&
                !memcmp(ia, ic, na * sizeof *ia) && na < len / 2;
    free(ia);
    free(ic);
    free(ja);
    free(jb);
    free(jc);
    free(text);
    lethe_tokenizer_free(a);
    lethe_tokenizer_free(b);
    lethe_tokenizer_free(c);
    CHECK_OK(st);
    CHECK_MSG(same, "two trainings (or a save and reload) differ");
    CHECK(sizes);
    CHECK(rt);
    CHECK(agree);
}

TEST(tokenizer_train_bad_arguments)
{
    const char *texts[] = {"abc"};
    size_t lens[] = {3};
    lethe_tokenizer_t *t = (lethe_tokenizer_t *)1;
    CHECK_STATUS(lethe_tokenizer_train(texts, lens, 1, 255, NULL, &t), LETHE_ERR_INVALID);
    CHECK(t == NULL);
    const char *special[] = {"<s>", "<s>"};
    lethe_tokenizer_train_opts o = {.special = special, .n_special = 2};
    CHECK_STATUS(lethe_tokenizer_train(texts, lens, 1, 300, &o, &t), LETHE_ERR_INVALID);
    const char *bad_utf8[] = {"\xFF"};
    o = (lethe_tokenizer_train_opts){.special = bad_utf8, .n_special = 1};
    CHECK_STATUS(lethe_tokenizer_train(texts, lens, 1, 300, &o, &t), LETHE_ERR_INVALID);
    /* an empty corpus gives the 256 bytes */
    CHECK_OK(lethe_tokenizer_train(texts, lens, 0, 300, NULL, &t));
    int ok = lethe_tokenizer_n_tokens(t) == 256 && lethe_tokenizer_n_merges(t) == 0 &&
             round_trip(t, (const unsigned char *)"\0\xFFxyz", 5);
    lethe_tokenizer_free(t);
    CHECK(ok);
}

/* ------------------------------------------------------------ files */

TEST(tokenizer_json_round_trip_gpt2)
{
    lethe_tokenizer_t *t = gpt2(), *u = NULL;
    CHECK_MSG(t, "cannot load GPT-2's files: %s", lethe_error_detail());
    char *text = NULL;
    lethe_status st = lethe_tokenizer_to_json(t, &text);
    if (st == LETHE_OK)
        st = lethe_tokenizer_parse_json(text, strlen(text), "gpt2.json", &u);
    int ok = st == LETHE_OK && lethe_tokenizer_n_tokens(u) == 50257 &&
             lethe_tokenizer_n_merges(u) == 50000 &&
             strstr(text, "[\"\xC4\xA0\", \"t\"]") != NULL; /* the first merge: "Ġ t" */
    for (size_t r = 0; ok && r < 50000; r += 97) {
        uint32_t a, b, c, x, y, z;
        lethe_tokenizer_merge(t, r, &a, &b, &c);
        lethe_tokenizer_merge(u, r, &x, &y, &z);
        ok = a == x && b == y && c == z;
    }
    static const uint32_t want[] = {15496, 995};
    ok = ok && encodes_to(u, "Hello world", want, 2);
    free(text);
    lethe_tokenizer_free(t);
    lethe_tokenizer_free(u);
    CHECK_OK(st);
    CHECK(ok);
}

/* A tokenizer.json with the 256 byte tokens (ids 0..255 = byte values), then
 * `vocab` (members to append, starting with a comma, or ""), `merges` (the
 * array's contents) and `extra` (root members, each ending with a comma). */
static char *make_json(const char *vocab, const char *merges, const char *extra)
{
    size_t cap = 8192 + strlen(vocab) + strlen(merges) + strlen(extra), o = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    o += (size_t)snprintf(s + o, cap - o, "{%s\"model\": {\"type\": \"BPE\", \"vocab\": {", extra);
    for (int b = 0; b < 256; b++) {
        uint32_t c = lethe_tokenizer_byte_char((unsigned char)b);
        o += (size_t)snprintf(s + o, cap - o, "%s\"", b ? ", " : "");
        if (c == '"' || c == '\\')
            s[o++] = '\\';
        if (c < 0x80)
            s[o++] = (char)c;
        else {
            s[o++] = (char)(0xC0 | (c >> 6));
            s[o++] = (char)(0x80 | (c & 0x3F));
        }
        o += (size_t)snprintf(s + o, cap - o, "\": %d", b);
    }
    snprintf(s + o, cap - o, "%s}, \"merges\": [%s]}}", vocab, merges);
    return s;
}

/* Parse make_json(...) and expect status `want` and a detail holding `has`. */
static int json_fails(const char *vocab, const char *merges, const char *extra,
                      lethe_status want, const char *has)
{
    char *s = make_json(vocab, merges, extra);
    lethe_tokenizer_t *t = NULL;
    lethe_status st = s ? lethe_tokenizer_parse_json(s, strlen(s), "tok.json", &t) : LETHE_OK;
    free(s);
    int ok = st == want && t == NULL && strstr(lethe_error_detail(), has) &&
             strstr(lethe_error_detail(), "tok.json") && !strchr(lethe_error_detail(), '\n');
    if (!ok)
        fprintf(stderr, "    got %s: %s\n", lethe_strerror(st), lethe_error_detail());
    lethe_tokenizer_free(t);
    return ok;
}

TEST(tokenizer_json_layouts)
{
    /* merges as "a b" strings and as [a, b] pairs, added tokens */
    const char *extra = "\"added_tokens\": [{\"id\": 259, \"content\": \"<|end|>\", "
                        "\"special\": true}], \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
                        "\"add_prefix_space\": false}, \"normalizer\": null,";
    char *s = make_json(", \"ab\": 256, \"\xC4\xA0" "ab\": 257, \"<|end|>\": 259",
                        "\"a b\", [\"\xC4\xA0\", \"ab\"]", extra);
    CHECK(s);
    lethe_tokenizer_t *t = NULL;
    lethe_status st = lethe_tokenizer_parse_json(s, strlen(s), "tok.json", &t);
    free(s);
    CHECK_OK(st);
    static const uint32_t want[] = {256, 257, 257, 'c'};
    int ok = encodes_to(t, "ab ab abc", want, 4) && lethe_tokenizer_is_special(t, 259) &&
             lethe_tokenizer_vocab_size(t) == 260 && lethe_tokenizer_n_tokens(t) == 259;
    uint32_t ids[] = {259, 'x'};
    unsigned char *out = NULL;
    size_t len = 0;
    ok = ok && lethe_tokenizer_decode(t, ids, 2, &out, &len) == LETHE_OK && len == 8 &&
         !memcmp(out, "<|end|>x", 8);
    free(out);
    lethe_tokenizer_free(t);
    CHECK(ok);
}

TEST(tokenizer_json_errors)
{
    lethe_tokenizer_t *t = NULL;
    CHECK_STATUS(lethe_tokenizer_parse_json("{\"model\": ", 10, "tok.json", &t), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "tok.json:1:"));
    CHECK_STATUS(lethe_tokenizer_parse_json("[1]", 3, "tok.json", &t), LETHE_ERR_FORMAT);
    CHECK_STATUS(lethe_tokenizer_parse_json("{}", 2, "tok.json", &t), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "'model'"));
    CHECK_STATUS(lethe_tokenizer_load_json("/nonexistent/tokenizer.json", &t), LETHE_ERR_IO);
    char *base = make_json("", "", "");
    CHECK(base);
    lethe_status st = lethe_tokenizer_parse_json(base, strlen(base), "tok.json", &t);
    free(base);
    CHECK_OK(st);
    lethe_tokenizer_free(t);
    t = NULL;
    CHECK(json_fails("", "\"qq z\"", "", LETHE_ERR_FORMAT, "'qq' is not a token"));
    CHECK(json_fails(", \"xy\": 256", "\"x y\", \"x q\"", "", LETHE_ERR_FORMAT,
                     "model.merges[1]"));
    CHECK(json_fails("", "\"x y\"", "", LETHE_ERR_FORMAT, "concatenation"));
    CHECK(json_fails("", "\"xy\"", "", LETHE_ERR_FORMAT, "expected \"a b\""));
    CHECK(json_fails("", "[\"x\"]", "", LETHE_ERR_FORMAT, "expected \"a b\""));
    CHECK(json_fails("", "7", "", LETHE_ERR_FORMAT, "got number"));
    CHECK(json_fails(", \"\xE2\x96\x81the\": 300", "", "", LETHE_ERR_FORMAT,
                     "U+2581, which is not in GPT-2's byte alphabet"));
    CHECK(json_fails(", \"xy\": -1", "", "", LETHE_ERR_FORMAT, "the id must be an integer"));
    CHECK(json_fails(", \"xy\": 2.5", "", "", LETHE_ERR_FORMAT, "the id must be an integer"));
    CHECK(json_fails(", \"xy\": \"9\"", "", "", LETHE_ERR_FORMAT, "got JSON string"));
    CHECK(json_fails(", \"xy\": 5", "", "", LETHE_ERR_FORMAT, "given twice"));
    CHECK(json_fails(", \"xy\": 300, \"xy\": 301", "", "", LETHE_ERR_FORMAT, "same bytes"));
    CHECK(json_fails(", \"\": 300", "", "", LETHE_ERR_FORMAT, "empty token"));
    CHECK(json_fails("", "", "\"normalizer\": {\"type\": \"NFC\"},", LETHE_ERR_UNSUPPORTED,
                     "normalizer is set"));
    CHECK(json_fails("", "", "\"pre_tokenizer\": {\"type\": \"Metaspace\"},",
                     LETHE_ERR_UNSUPPORTED, "pre_tokenizer is 'Metaspace'"));
    CHECK(json_fails("", "", "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                     "true},", LETHE_ERR_UNSUPPORTED, "add_prefix_space"));
    CHECK(json_fails("", "", "\"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}],",
                     LETHE_ERR_FORMAT, "model.vocab"));
    CHECK(json_fails("", "", "\"added_tokens\": 3,", LETHE_ERR_FORMAT, "added_tokens"));
    /* a vocabulary without every byte */
    const char *no_bytes = "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
                           "\"merges\": [\"a b\"]}}";
    CHECK_STATUS(lethe_tokenizer_parse_json(no_bytes, strlen(no_bytes), "tok.json", &t),
                 LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "no token for byte 0x00"));
    const char *wordpiece = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
    CHECK_STATUS(lethe_tokenizer_parse_json(wordpiece, strlen(wordpiece), "tok.json", &t),
                 LETHE_ERR_UNSUPPORTED);
    CHECK(strstr(lethe_error_detail(), "WordPiece"));
}

TEST(tokenizer_gpt2_file_errors)
{
    char *full = make_json(", \"xy\": 256", "", "");
    CHECK(full);
    /* the vocab object inside make_json's text */
    char *v = strstr(full, "\"vocab\": ") + 9, *end = strstr(v, "}, \"merges\"") + 1;
    size_t vlen = (size_t)(end - v);
    lethe_tokenizer_t *t = NULL;
    const char *m1 = "#version: 0.2\nx y\n", *m2 = "x y\r\nxy\n", *m3 = "#version: 0.2\nx qq\n";
    lethe_status ok = lethe_tokenizer_parse_gpt2(v, vlen, "vocab.json", m1, strlen(m1),
                                                 "merges.txt", &t);
    int good = ok == LETHE_OK && lethe_tokenizer_n_merges(t) == 1;
    lethe_tokenizer_free(t);
    t = NULL;
    lethe_status two = lethe_tokenizer_parse_gpt2(v, vlen, "vocab.json", m2, strlen(m2),
                                                  "merges.txt", &t);
    char d1[256];
    snprintf(d1, sizeof d1, "%s", lethe_error_detail());
    lethe_status unk = lethe_tokenizer_parse_gpt2(v, vlen, "vocab.json", m3, strlen(m3),
                                                  "merges.txt", &t);
    char d2[256];
    snprintf(d2, sizeof d2, "%s", lethe_error_detail());
    lethe_status arr = lethe_tokenizer_parse_gpt2("[]", 2, "vocab.json", "", 0, "merges.txt", &t);
    char d3[256];
    snprintf(d3, sizeof d3, "%s", lethe_error_detail());
    lethe_status missing = lethe_tokenizer_load_gpt2(FIXTURES "gpt2-vocab.json.gz",
                                                     "/nonexistent/merges.txt", &t);
    free(full);
    CHECK(good);
    CHECK(two == LETHE_ERR_FORMAT && strstr(d1, "merges.txt:2: expected two tokens"));
    CHECK(unk == LETHE_ERR_FORMAT && strstr(d2, "merges.txt:2: 'qq' is not a token of vocab.json"));
    CHECK(arr == LETHE_ERR_FORMAT && strstr(d3, "vocab.json: expected an object"));
    CHECK(missing == LETHE_ERR_IO && strstr(lethe_error_detail(), "/nonexistent/merges.txt"));
    CHECK(t == NULL);
}
