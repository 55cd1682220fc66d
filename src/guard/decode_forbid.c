/* GUARD's forbidden set: n-grams into the token trie and the automaton,
 * forbidden words into unit vectors, and the soft-match similarity of a
 * generated word (definitions in lethe/guard_decode.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode_impl.h"
#include "guard_impl.h"
#include "lethe/guard_classifier.h"

/* ---- which words are soft-matched ------------------------------------------- */

/* Function words of 3 letters or more (shorter words are never matched):
 * they occur in any answer, so matching them would prune everything. */
static const char *const stopwords[] = {
    "about", "above", "after", "again", "against", "all", "also", "and", "any", "are",
    "because", "been", "before", "being", "below", "between", "both", "but", "can",
    "could", "did", "does", "doing", "down", "during", "each", "few", "for", "from",
    "further", "had", "has", "have", "having", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "into", "its", "itself", "just", "may", "might", "more",
    "most", "must", "myself", "nor", "not", "now", "off", "once", "only", "other", "our",
    "ours", "ourselves", "out", "over", "own", "same", "shall", "she", "should", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
    "there", "these", "they", "this", "those", "through", "too", "under", "until", "upon",
    "very", "was", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "yet", "you", "your", "yours", "yourself", "yourselves",
};

int lethe_guard_stopword(const void *word, size_t len)
{
    const unsigned char *w = word;
    for (size_t i = 0; i < sizeof stopwords / sizeof stopwords[0]; i++) {
        const char *s = stopwords[i];
        size_t k = 0;
        while (k < len && s[k] && guard_lower(w[k]) == (unsigned char)s[k])
            k++;
        if (k == len && !s[k])
            return 1;
    }
    return 0;
}

/* UTF-8 code points: every byte but continuation bytes starts one. */
static size_t code_points(const unsigned char *w, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (w[i] & 0xC0) != 0x80;
    return n;
}

static int soft_matched(const unsigned char *w, size_t len)
{
    return len <= LETHE_GUARD_WORD_MAX && code_points(w, len) >= 3 &&
           !lethe_guard_stopword(w, len);
}

/* ---- word vectors ------------------------------------------------------------- */

lethe_status guard_soft_init(guard_soft *s, const lethe_guard_forbid_t *f)
{
    memset(s, 0, sizeof *s);
    s->f = f;
    /* the most n-grams a word can have: 3 lengths over at most WORD_MAX + 2 bytes */
    s->q = calloc((size_t)f->dim, sizeof *s->q);
    s->touched = malloc(sizeof *s->touched * 3 * (LETHE_GUARD_WORD_MAX + 2));
    if (!s->q || !s->touched) {
        guard_soft_free(s);
        return lethe_fail(LETHE_ERR_NOMEM, "guard decode: out of memory for word vectors");
    }
    return LETHE_OK;
}

void guard_soft_free(guard_soft *s)
{
    free(s->q);
    free(s->touched);
    s->q = NULL, s->touched = NULL;
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* HASH: counts of w's character 3-5-grams in s->q, scaled to unit norm;
 * their distinct buckets (ascending) in s->touched[0..*nnz). *nnz is 0 when
 * the signed counts all cancel. */
static void hash_vector(guard_soft *s, const unsigned char *w, size_t len, size_t *nnz)
{
    unsigned char *pad = s->buf;
    pad[0] = ' ';
    for (size_t i = 0; i < len; i++)
        pad[i + 1] = guard_lower(w[i]);
    pad[len + 1] = ' ';
    size_t n = 0;
    for (size_t k = 3; k <= 5; k++)
        for (size_t i = 0; i + k <= len + 2; i++) {
            uint64_t h = guard_ngram_hash('C', pad + i, k);
            uint32_t b = (uint32_t)((h & ~(1ull << 63)) % (uint64_t)s->f->dim);
            s->q[b] += (h >> 63) ? -1.0f : 1.0f;
            s->touched[n++] = b;
        }
    qsort(s->touched, n, sizeof *s->touched, by_u32);
    size_t m = 0;
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b = s->touched[i];
        if ((m && s->touched[m - 1] == b) || s->q[b] == 0.0f)
            continue;
        s->touched[m++] = b;
        ss += (double)s->q[b] * s->q[b];
    }
    if (m == 0) { /* cancelled: clear what was written */
        for (size_t i = 0; i < n; i++)
            s->q[s->touched[i]] = 0.0f;
    }
    /* a zero count left among the written buckets is 0 already */
    for (size_t i = 0; i < m; i++)
        s->q[s->touched[i]] = (float)(s->q[s->touched[i]] / sqrt(ss));
    *nnz = m;
}

/* EMBED: the sum of wte rows of " " + w's tokens, scaled to unit norm, in
 * s->q. *ok is 0 when no token is in the model's vocabulary. */
static lethe_status embed_vector(guard_soft *s, const unsigned char *w, size_t len, int *ok)
{
    const lethe_gpt *g = s->f->g;
    const int C = g->cfg.n_embd, V = g->cfg.vocab_size;
    const float *wte = g->params + g->tensors[0].offset;
    s->buf[0] = ' ';
    memcpy(s->buf + 1, w, len);
    uint32_t *ids = NULL;
    size_t n = 0;
    lethe_status st = lethe_tokenizer_encode(s->f->tok, s->buf, len + 1, &ids, &n);
    if (st)
        return st;
    memset(s->q, 0, sizeof(float) * (size_t)C);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= (uint32_t)V)
            continue;
        const float *row = wte + (size_t)ids[i] * (size_t)C;
        for (int j = 0; j < C; j++)
            s->q[j] += row[j];
        used++;
    }
    free(ids);
    double ss = 0;
    for (int j = 0; j < C; j++)
        ss += (double)s->q[j] * s->q[j];
    *ok = used > 0 && ss > 0;
    for (int j = 0; j < C && *ok; j++)
        s->q[j] = (float)(s->q[j] / sqrt(ss));
    return LETHE_OK;
}

lethe_status guard_soft_sim(guard_soft *s, const unsigned char *word, size_t len, double *sim)
{
    const lethe_guard_forbid_t *f = s->f;
    *sim = -INFINITY;
    if (f->n_words == 0 || !soft_matched(word, len))
        return LETHE_OK;
    double best = -INFINITY;
    if (f->kind == LETHE_GUARD_WORDVEC_HASH) {
        size_t nnz;
        hash_vector(s, word, len, &nnz);
        for (size_t i = 0; i < f->n_words && nnz; i++) {
            double d = 0;
            for (uint32_t k = f->off[i]; k < f->off[i + 1]; k++)
                d += (double)f->val[k] * s->q[f->col[k]];
            best = d > best ? d : best;
        }
        for (size_t i = 0; i < nnz; i++)
            s->q[s->touched[i]] = 0.0f;
    } else {
        int ok;
        lethe_status st = embed_vector(s, word, len, &ok);
        if (st)
            return st;
        for (size_t i = 0; i < f->n_words && ok; i++) {
            const float *v = f->vec + i * (size_t)f->dim;
            double d = 0;
            for (int j = 0; j < f->dim; j++)
                d += (double)v[j] * s->q[j];
            best = d > best ? d : best;
        }
    }
    *sim = best;
    return LETHE_OK;
}

/* ---- building ------------------------------------------------------------------- */

void lethe_guard_forbid_defaults(lethe_guard_forbid_cfg *cfg)
{
    cfg->wordvec = LETHE_GUARD_WORDVEC_EMBED;
    cfg->hash_dim = LETHE_GUARD_HASH_DIM;
}

void lethe_guard_forbid_free(lethe_guard_forbid_t *f)
{
    if (!f)
        return;
    lethe_guard_trie_free(f->trie);
    lethe_guard_ac_free(f->ac);
    free(f->vec), free(f->off), free(f->col), free(f->val);
    free(f);
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Encode text[0..len) and add it to the trie for id; track the longest. */
static lethe_status trie_add_text(lethe_guard_forbid_t *f, const char *text, size_t len,
                                  uint32_t id)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    lethe_status st = lethe_tokenizer_encode(f->tok, text, len, &ids, &n);
    if (st == LETHE_OK)
        st = lethe_guard_trie_add(f->trie, ids, n, id);
    if (st == LETHE_OK && n > f->longest)
        f->longest = n;
    free(ids);
    return st;
}

/* N-gram i: trimmed, into the automaton, and tokenised two ways into the trie. */
static lethe_status add_ngram(lethe_guard_forbid_t *f, const char *ngram, size_t i, char *tmp)
{
    size_t a = 0, b = strlen(ngram);
    while (a < b && is_space((unsigned char)ngram[a]))
        a++;
    while (b > a && is_space((unsigned char)ngram[b - 1]))
        b--;
    if (lethe_guard_normalize(ngram + a, b - a, (unsigned char *)tmp + 1) == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard forbid: n-gram %zu (\"%.40s\") has no letters or digits", i,
                          ngram);
    lethe_status st = lethe_guard_ac_add(f->ac, ngram + a, b - a, (uint32_t)i);
    /* inside text the n-gram follows a space; at the start it does not */
    tmp[0] = ' ';
    memcpy(tmp + 1, ngram + a, b - a);
    if (st == LETHE_OK)
        st = trie_add_text(f, tmp, b - a + 1, (uint32_t)i);
    if (st == LETHE_OK)
        st = trie_add_text(f, ngram + a, b - a, (uint32_t)i);
    return st;
}

static lethe_status add_ngrams(lethe_guard_forbid_t *f, const char *const *ngrams, size_t n)
{
    size_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ngrams[i])
            return lethe_fail(LETHE_ERR_INVALID, "guard forbid: n-gram %zu is NULL", i);
        size_t len = strlen(ngrams[i]);
        longest = len > longest ? len : longest;
    }
    char *tmp = malloc(longest + 2);
    if (!tmp)
        return lethe_fail(LETHE_ERR_NOMEM, "guard forbid: out of memory");
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && st == LETHE_OK; i++)
        st = add_ngram(f, ngrams[i], i, tmp);
    free(tmp);
    f->n_ngrams = n;
    return st;
}

/* Room the word arrays have: words (vec rows or off entries) and, for
 * HASH, non-zero entries (col, val). */
typedef struct room {
    size_t words, entries;
} room;

/* Grow *p (elements of `size` bytes, room for *cap) to hold `need`. */
static int grow(void **p, size_t size, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 1;
    size_t nc = 2 * need + 16;
    void *q = realloc(*p, size * nc);
    if (!q)
        return 0;
    *p = q, *cap = nc;
    return 1;
}

/* Append the vector now in s (nnz buckets for HASH) as forbidden word
 * f->n_words. */
static lethe_status store_vector(lethe_guard_forbid_t *f, const guard_soft *s, size_t nnz,
                                 room *r)
{
    size_t i = f->n_words, dim = (size_t)f->dim;
    if (f->kind == LETHE_GUARD_WORDVEC_EMBED) {
        size_t rows = r->words;
        if (!grow((void **)&f->vec, sizeof(float) * dim, &rows, i + 1))
            return lethe_fail(LETHE_ERR_NOMEM, "guard forbid: out of memory");
        r->words = rows;
        memcpy(f->vec + i * dim, s->q, sizeof(float) * dim);
    } else {
        /* col and val share one capacity: both grow to the same size */
        size_t end = (i ? f->off[i] : 0) + nnz, ec = r->entries;
        if (!grow((void **)&f->off, sizeof *f->off, &r->words, i + 2) ||
            !grow((void **)&f->col, sizeof *f->col, &ec, end) ||
            !grow((void **)&f->val, sizeof *f->val, &r->entries, end))
            return lethe_fail(LETHE_ERR_NOMEM, "guard forbid: out of memory");
        f->off[0] = 0;
        for (size_t k = 0; k < nnz; k++) {
            f->col[f->off[i] + k] = s->touched[k];
            f->val[f->off[i] + k] = s->q[s->touched[k]];
        }
        f->off[i + 1] = (uint32_t)end;
    }
    f->n_words++;
    return LETHE_OK;
}

/* One forbidden word w[0..len) (word bytes only). */
static lethe_status add_word(lethe_guard_forbid_t *f, guard_soft *s, const unsigned char *w,
                             size_t len, room *r)
{
    if (!soft_matched(w, len)) {
        f->n_skipped++;
        return LETHE_OK;
    }
    size_t nnz = 0;
    int ok = 1;
    lethe_status st = LETHE_OK;
    if (f->kind == LETHE_GUARD_WORDVEC_HASH) {
        hash_vector(s, w, len, &nnz);
        ok = nnz > 0;
    } else {
        st = embed_vector(s, w, len, &ok);
    }
    if (st == LETHE_OK && ok)
        st = store_vector(f, s, nnz, r);
    else if (st == LETHE_OK)
        f->n_skipped++;
    for (size_t k = 0; k < nnz; k++)
        s->q[s->touched[k]] = 0.0f;
    return st;
}

/* Entry i of the words list, split into its words. */
static lethe_status add_words(lethe_guard_forbid_t *f, const char *const *words, size_t n)
{
    guard_soft s;
    lethe_status st = guard_soft_init(&s, f);
    room r = {0, 0};
    for (size_t i = 0; i < n && st == LETHE_OK; i++) {
        if (!words[i]) {
            st = lethe_fail(LETHE_ERR_INVALID, "guard forbid: word %zu is NULL", i);
            break;
        }
        const unsigned char *w = (const unsigned char *)words[i];
        size_t len = strlen(words[i]), found = 0;
        for (size_t a = 0; a < len && st == LETHE_OK;) {
            while (a < len && !guard_is_word_byte(w[a]))
                a++;
            size_t b = a;
            while (b < len && guard_is_word_byte(w[b]))
                b++;
            if (b > a) {
                st = add_word(f, &s, w + a, b - a, &r);
                found++;
            }
            a = b;
        }
        if (st == LETHE_OK && !found)
            st = lethe_fail(LETHE_ERR_INVALID,
                            "guard forbid: word %zu (\"%.40s\") has no letters or digits", i,
                            words[i]);
    }
    guard_soft_free(&s);
    return st;
}

static lethe_status check_args(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                               const lethe_guard_forbid_cfg *c, size_t n_ngrams,
                               const char *const *ngrams, size_t n_words,
                               const char *const *words)
{
    if (!tok)
        return lethe_fail(LETHE_ERR_INVALID, "guard forbid: no tokenizer");
    if ((n_ngrams && !ngrams) || (n_words && !words))
        return lethe_fail(LETHE_ERR_INVALID, "guard forbid: a list with entries but no pointer");
    if (c->wordvec == LETHE_GUARD_WORDVEC_EMBED && !g)
        return lethe_fail(LETHE_ERR_INVALID, "guard forbid: EMBED word vectors need the model");
    if (c->wordvec != LETHE_GUARD_WORDVEC_EMBED && c->wordvec != LETHE_GUARD_WORDVEC_HASH)
        return lethe_fail(LETHE_ERR_INVALID, "guard forbid: unknown word-vector kind %d",
                          (int)c->wordvec);
    if (c->wordvec == LETHE_GUARD_WORDVEC_HASH &&
        (c->hash_dim < 2 || c->hash_dim > LETHE_GUARD_MAX_DIM))
        return lethe_fail(LETHE_ERR_INVALID, "guard forbid: %d hash buckets (2 to %d allowed)",
                          c->hash_dim, LETHE_GUARD_MAX_DIM);
    return LETHE_OK;
}

lethe_status lethe_guard_forbid_new(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                    const char *const *ngrams, size_t n_ngrams,
                                    const char *const *words, size_t n_words,
                                    const lethe_guard_forbid_cfg *cfg,
                                    lethe_guard_forbid_t **out)
{
    *out = NULL;
    lethe_guard_forbid_cfg c;
    lethe_guard_forbid_defaults(&c);
    if (cfg)
        c = *cfg;
    lethe_status st = check_args(g, tok, &c, n_ngrams, ngrams, n_words, words);
    if (st)
        return st;
    lethe_guard_forbid_t *f = calloc(1, sizeof *f);
    if (!f)
        return lethe_fail(LETHE_ERR_NOMEM, "guard forbid: out of memory");
    f->kind = c.wordvec;
    f->g = c.wordvec == LETHE_GUARD_WORDVEC_EMBED ? g : NULL;
    f->tok = tok;
    f->dim = c.wordvec == LETHE_GUARD_WORDVEC_EMBED ? g->cfg.n_embd : c.hash_dim;
    f->trie = lethe_guard_trie_new();
    f->ac = lethe_guard_ac_new();
    if (!f->trie || !f->ac)
        st = LETHE_ERR_NOMEM; /* detail set by the constructor */
    if (st == LETHE_OK)
        st = add_ngrams(f, ngrams, n_ngrams);
    if (st == LETHE_OK)
        st = add_words(f, words, n_words);
    if (st == LETHE_OK) /* decoding must find it built: it only reads */
        st = lethe_guard_ac_build(f->ac);
    if (st) {
        lethe_guard_forbid_free(f);
        return st;
    }
    *out = f;
    return LETHE_OK;
}

/* ---- inspecting ------------------------------------------------------------------ */

void lethe_guard_forbid_info_get(const lethe_guard_forbid_t *f, lethe_guard_forbid_info *info)
{
    *info = (lethe_guard_forbid_info){f->n_ngrams, lethe_guard_trie_count(f->trie),
                                      f->longest,  f->n_words,
                                      f->n_skipped, f->kind,
                                      f->dim};
}

const lethe_guard_trie_t *lethe_guard_forbid_trie(const lethe_guard_forbid_t *f)
{
    return f->trie;
}

const lethe_guard_ac_t *lethe_guard_forbid_ac(const lethe_guard_forbid_t *f) { return f->ac; }

lethe_status lethe_guard_forbid_similarity(const lethe_guard_forbid_t *f, const void *word,
                                           size_t len, double *sim)
{
    const unsigned char *w = word;
    *sim = -INFINITY;
    if (!f || !w || len == 0)
        return lethe_fail(LETHE_ERR_INVALID, "guard similarity: no forbidden set or empty word");
    for (size_t i = 0; i < len; i++)
        if (!guard_is_word_byte(w[i]))
            return lethe_fail(LETHE_ERR_INVALID,
                              "guard similarity: byte %zu of the word (0x%02x) is a separator",
                              i, w[i]);
    guard_soft s;
    lethe_status st = guard_soft_init(&s, f);
    if (st)
        return st;
    st = guard_soft_sim(&s, w, len, sim);
    guard_soft_free(&s);
    return st;
}
