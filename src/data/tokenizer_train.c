/* Byte-level BPE training: count the pre-tokenized words of a corpus, then
 * merge the most frequent adjacent pair until the vocabulary is full, with
 * incremental pair counts (tokenizer.c has the tables and encoding). */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* A distinct word of the corpus: its bytes (in the caller's text), how often
 * it occurs, and its current symbols syms[at..at+len). */
struct tword {
    const unsigned char *bytes;
    uint32_t nbytes, len;
    uint64_t count;
    size_t at;
};

/* An adjacent pair of symbols: its total count over the corpus and the words
 * that hold it (a superset: a word may have lost the pair since). */
struct tpair {
    uint64_t key;
    int64_t count;
    uint32_t *words;
    uint32_t n_words, cap_words;
    uint32_t touched; /* the merge round that last added to count */
};

struct theap_entry {
    int64_t count;
    uint64_t key;
};

struct trainer {
    lethe_tokenizer_t *t;
    struct tword *words;
    size_t n_words, cap_words;
    size_t *wmap; /* word bytes -> index + 1 (0 empty); open addressing */
    size_t wmap_cap;
    uint32_t *syms;
    struct tpair *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *pmap; /* pair key -> index into pairs (NO_ID empty) */
    size_t pmap_cap;
    struct theap_entry *heap;
    size_t heap_n, heap_cap;
    uint32_t *fresh; /* pairs touched this round, to push */
    size_t n_fresh, cap_fresh;
};

static lethe_status train_oom(void) { return lethe_fail(LETHE_ERR_NOMEM, "tokenizer training: out of memory"); }

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Count one occurrence of word w[0..n). */
static lethe_status count_word(struct trainer *tr, const unsigned char *w, size_t n)
{
    if (n > UINT32_MAX / 2)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "tokenizer training: a word of %zu bytes", n);
    if ((tr->n_words + 1) * 2 > tr->wmap_cap) {
        size_t cap = tr->wmap_cap ? tr->wmap_cap * 2 : 4096;
        size_t *m = calloc(cap, sizeof *m);
        if (!m)
            return train_oom();
        for (size_t k = 0; k < tr->n_words; k++) {
            size_t i = (size_t)hash_bytes(tr->words[k].bytes, tr->words[k].nbytes) & (cap - 1);
            while (m[i])
                i = (i + 1) & (cap - 1);
            m[i] = k + 1;
        }
        free(tr->wmap);
        tr->wmap = m;
        tr->wmap_cap = cap;
    }
    size_t mask = tr->wmap_cap - 1, i = (size_t)hash_bytes(w, n) & mask;
    for (; tr->wmap[i]; i = (i + 1) & mask) {
        struct tword *x = &tr->words[tr->wmap[i] - 1];
        if (x->nbytes == n && !memcmp(x->bytes, w, n)) {
            x->count++;
            return LETHE_OK;
        }
    }
    if (grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words))
        return train_oom();
    tr->words[tr->n_words] = (struct tword){w, (uint32_t)n, (uint32_t)n, 1, 0};
    tr->wmap[i] = ++tr->n_words;
    return LETHE_OK;
}

/* The pair with key `key`, created (count 0) when absent; NULL when out of memory. */
static struct tpair *get_pair(struct trainer *tr, uint64_t key)
{
    if ((tr->n_pairs + 1) * 2 > tr->pmap_cap) {
        size_t cap = tr->pmap_cap ? tr->pmap_cap * 2 : 4096;
        uint32_t *m = malloc(cap * sizeof *m);
        if (!m)
            return NULL;
        memset(m, 0xFF, cap * sizeof *m);
        for (size_t k = 0; k < tr->n_pairs; k++) {
            size_t i = (size_t)hash_u64(tr->pairs[k].key) & (cap - 1);
            while (m[i] != NO_ID)
                i = (i + 1) & (cap - 1);
            m[i] = (uint32_t)k;
        }
        free(tr->pmap);
        tr->pmap = m;
        tr->pmap_cap = cap;
    }
    size_t mask = tr->pmap_cap - 1, i = (size_t)hash_u64(key) & mask;
    for (; tr->pmap[i] != NO_ID; i = (i + 1) & mask)
        if (tr->pairs[tr->pmap[i]].key == key)
            return &tr->pairs[tr->pmap[i]];
    if (tr->n_pairs >= NO_ID - 1 ||
        grow((void **)&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs))
        return NULL;
    tr->pairs[tr->n_pairs] = (struct tpair){.key = key, .touched = NO_ID};
    tr->pmap[i] = (uint32_t)tr->n_pairs;
    return &tr->pairs[tr->n_pairs++];
}

/* Heap order: larger count first, then the smaller pair (first id, then second). */
static int theap_before(struct theap_entry x, struct theap_entry y)
{
    return x.count > y.count || (x.count == y.count && x.key < y.key);
}

static lethe_status theap_push(struct trainer *tr, int64_t count, uint64_t key)
{
    if (grow((void **)&tr->heap, &tr->heap_cap, tr->heap_n + 1, sizeof *tr->heap))
        return train_oom();
    struct theap_entry c = {count, key};
    size_t i = tr->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!theap_before(c, tr->heap[p]))
            break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = c;
    return LETHE_OK;
}

static struct theap_entry theap_pop(struct trainer *tr)
{
    struct theap_entry top = tr->heap[0], last = tr->heap[--tr->heap_n];
    size_t i = 0, n = tr->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && theap_before(tr->heap[c + 1], tr->heap[c]))
            c++;
        if (!theap_before(tr->heap[c], last))
            break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n)
        tr->heap[i] = last;
    return top;
}

/* Add delta occurrences of every adjacent pair of word w. With `round` not
 * NO_ID, new holders are recorded and the pairs queued to be pushed. */
static lethe_status add_pairs(struct trainer *tr, uint32_t w, int64_t delta, uint32_t round)
{
    const struct tword *x = &tr->words[w];
    const uint32_t *s = tr->syms + x->at;
    for (uint32_t i = 0; i + 1 < x->len; i++) {
        struct tpair *p = get_pair(tr, pair_key(s[i], s[i + 1]));
        if (!p)
            return train_oom();
        p->count += delta;
        if (delta <= 0)
            continue;
        if (!p->n_words || p->words[p->n_words - 1] != w) {
            if (p->n_words == p->cap_words) {
                uint32_t cap = p->cap_words ? p->cap_words * 2 : 4;
                uint32_t *v = realloc(p->words, (size_t)cap * sizeof *v);
                if (!v)
                    return train_oom();
                p->words = v;
                p->cap_words = cap;
            }
            p->words[p->n_words++] = w;
        }
        if (round != NO_ID && p->touched != round) {
            p->touched = round;
            if (grow((void **)&tr->fresh, &tr->cap_fresh, tr->n_fresh + 1, sizeof *tr->fresh))
                return train_oom();
            tr->fresh[tr->n_fresh++] = (uint32_t)(p - tr->pairs);
        }
    }
    return LETHE_OK;
}

/* Replace (a, b) by c in word w, left to right; 1 if it held the pair. */
static int merge_word(struct trainer *tr, uint32_t w, uint32_t a, uint32_t b, uint32_t c)
{
    struct tword *x = &tr->words[w];
    uint32_t *s = tr->syms + x->at, j = 0;
    int hit = 0;
    for (uint32_t i = 0; i < x->len;) {
        if (i + 1 < x->len && s[i] == a && s[i + 1] == b) {
            s[j++] = c;
            i += 2;
            hit = 1;
        } else
            s[j++] = s[i++];
    }
    x->len = j;
    return hit;
}

static int word_has(const struct trainer *tr, uint32_t w, uint32_t a, uint32_t b)
{
    const struct tword *x = &tr->words[w];
    const uint32_t *s = tr->syms + x->at;
    for (uint32_t i = 0; i + 1 < x->len; i++)
        if (s[i] == a && s[i + 1] == b)
            return 1;
    return 0;
}

static void trainer_free(struct trainer *tr)
{
    for (size_t i = 0; i < tr->n_pairs; i++)
        free(tr->pairs[i].words);
    free(tr->pairs);
    free(tr->pmap);
    free(tr->words);
    free(tr->wmap);
    free(tr->syms);
    free(tr->heap);
    free(tr->fresh);
}

/* Is s[0..n) well-formed UTF-8? */
static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (tok_utf8_at(s, n, i, &k) < 0)
            return 0;
    return 1;
}

/* Start a phase of p (NULL: none) counting `unit` up to total. */
static void phase(lethe_progress *p, const char *unit, uint64_t total)
{
    if (!p)
        return;
    if (p->last != p->t0) /* a line or bar of the phase before was shown */
        lethe_progress_finish(p);
    lethe_progress_init(p, p->out, p->label, unit, total, p->quiet);
}

/* The merge loop: until the vocabulary holds `target` non-special tokens. */
static lethe_status train_merges(struct trainer *tr, size_t target, uint64_t min_frequency,
                                 lethe_progress *progress)
{
    lethe_tokenizer_t *t = tr->t;
    lethe_status st = LETHE_OK;
    size_t first = t->n_tokens;
    phase(progress, "new tokens", target > first ? target - first : 0);
    for (uint32_t round = 0; t->n_tokens < target && tr->heap_n; round++) {
        if (progress)
            lethe_progress_update(progress, t->n_tokens - first);
        struct theap_entry top = theap_pop(tr);
        struct tpair *p = get_pair(tr, top.key);
        if (!p)
            return train_oom();
        if (p->count != top.count) { /* stale: counts only fall, except fresh pairs */
            if (p->count > 0 && (st = theap_push(tr, p->count, top.key)) != LETHE_OK)
                return st;
            continue;
        }
        if (top.count <= 0 || (uint64_t)top.count < min_frequency)
            break;
        uint32_t a = (uint32_t)(top.key >> 32), b = (uint32_t)top.key, c;
        size_t la = t->len[a], lb = t->len[b];
        unsigned char *cat = malloc(la + lb);
        if (!cat)
            return train_oom();
        memcpy(cat, tok_bytes(t, a), la);
        memcpy(cat + la, tok_bytes(t, b), lb);
        if (!lethe_tokenizer_find(t, cat, la + lb, &c))
            st = lethe_tokenizer_add_token(t, c = (uint32_t)t->vocab_size, cat, la + lb, 0);
        free(cat);
        if (st != LETHE_OK || (st = lethe_tokenizer_add_merge(t, a, b, NULL)) != LETHE_OK)
            return st;
        /* Take the holders list: p may move as pairs are added. */
        uint32_t *holders = p->words, n_holders = p->n_words;
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        tr->n_fresh = 0;
        for (uint32_t k = 0; k < n_holders && st == LETHE_OK; k++) {
            uint32_t w = holders[k];
            if (!word_has(tr, w, a, b))
                continue;
            int64_t cw = (int64_t)tr->words[w].count;
            if ((st = add_pairs(tr, w, -cw, NO_ID)) != LETHE_OK)
                break;
            merge_word(tr, w, a, b, c);
            st = add_pairs(tr, w, cw, round);
        }
        free(holders);
        for (size_t k = 0; k < tr->n_fresh && st == LETHE_OK; k++) {
            const struct tpair *q = &tr->pairs[tr->fresh[k]];
            if (q->count > 0)
                st = theap_push(tr, q->count, q->key);
        }
        if (st != LETHE_OK)
            return st;
    }
    if (progress)
        lethe_progress_update(progress, t->n_tokens - first);
    return LETHE_OK;
}

lethe_status lethe_tokenizer_train(const char *const *texts, const size_t *lens, size_t n_texts,
                                   size_t vocab_size, const lethe_tokenizer_train_opts *opts,
                                   lethe_tokenizer_t **out)
{
    *out = NULL;
    lethe_tokenizer_train_opts o = opts ? *opts : (lethe_tokenizer_train_opts){0};
    if (o.n_special > LETHE_TOKENIZER_MAX_ID || vocab_size < 256 + o.n_special ||
        vocab_size > LETHE_TOKENIZER_MAX_ID)
        return lethe_fail(LETHE_ERR_INVALID,
                          "tokenizer training: vocabulary size %zu is out of range: it must hold "
                          "the 256 bytes and %zu special tokens, and be at most %u",
                          vocab_size, o.n_special, LETHE_TOKENIZER_MAX_ID);
    for (size_t k = 0; k < o.n_special; k++) {
        const char *s = o.special[k];
        if (!s || !*s || !valid_utf8((const unsigned char *)s, strlen(s)))
            return lethe_fail(LETHE_ERR_INVALID,
                              "tokenizer training: special token %zu is empty or not UTF-8",
                              k + 1);
        for (size_t j = 0; j < k; j++)
            if (!strcmp(s, o.special[j]))
                return lethe_fail(LETHE_ERR_INVALID,
                                  "tokenizer training: special token '%s' is given twice", s);
    }
    struct trainer tr = {0};
    lethe_status st = LETHE_OK;
    if (!(tr.t = lethe_tokenizer_new()))
        return LETHE_ERR_NOMEM;
    for (unsigned b = 0; b < 256 && st == LETHE_OK; b++) {
        unsigned char byte = (unsigned char)b;
        st = lethe_tokenizer_add_token(tr.t, b, &byte, 1, 0);
    }
    /* Count the words. */
    uint64_t bytes = 0, done = 0;
    for (size_t k = 0; k < n_texts; k++)
        bytes += lens[k];
    phase(o.progress, "bytes", bytes);
    for (size_t k = 0; k < n_texts && st == LETHE_OK; k++) {
        const unsigned char *s = (const unsigned char *)texts[k];
        for (size_t pos = 0, n = 0; pos < lens[k] && st == LETHE_OK; n++) {
            size_t end = lethe_tokenizer_split_next(s, lens[k], pos);
            st = count_word(&tr, s + pos, end - pos);
            pos = end;
            if (o.progress && n % 4096 == 0)
                lethe_progress_update(o.progress, done + pos);
        }
        done += lens[k];
        if (o.progress)
            lethe_progress_update(o.progress, done);
    }
    /* Symbols (the bytes), pair counts and holders, the first heap. */
    size_t total = 0;
    for (size_t w = 0; w < tr.n_words; w++) {
        tr.words[w].at = total;
        total += tr.words[w].nbytes;
    }
    if (st == LETHE_OK && tr.n_words > NO_ID - 1)
        st = lethe_fail(LETHE_ERR_UNSUPPORTED, "tokenizer training: too many distinct words");
    if (st == LETHE_OK && !(tr.syms = malloc((total ? total : 1) * sizeof *tr.syms)))
        st = train_oom();
    for (size_t w = 0; w < tr.n_words && st == LETHE_OK; w++) {
        for (uint32_t i = 0; i < tr.words[w].nbytes; i++)
            tr.syms[tr.words[w].at + i] = tr.words[w].bytes[i];
        st = add_pairs(&tr, (uint32_t)w, (int64_t)tr.words[w].count, NO_ID);
    }
    for (size_t i = 0; i < tr.n_pairs && st == LETHE_OK; i++)
        st = theap_push(&tr, tr.pairs[i].count, tr.pairs[i].key);
    if (st == LETHE_OK)
        st = train_merges(&tr, vocab_size - o.n_special, o.min_frequency, o.progress);
    for (size_t k = 0; k < o.n_special && st == LETHE_OK; k++)
        st = lethe_tokenizer_add_token(tr.t, (uint32_t)tr.t->vocab_size, o.special[k],
                                       strlen(o.special[k]), 1);
    lethe_tokenizer_t *t = tr.t;
    trainer_free(&tr);
    if (st != LETHE_OK) {
        lethe_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LETHE_OK;
}
