/* MUSE-style corpora from the State of the Union addresses and Moby-Dick
 * (lethe/muse.h, docs/muse.md). */
#include "lethe/muse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "lethe/corpus.h"
#include "lethe/fileio.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"

/* Streams of lethe_rng_hash, one per draw. */
enum { S_SPLIT = 0x4d55, S_VERBMEM, S_PRIVLEAK, S_KNOWMEM = S_PRIVLEAK + 4 };

void lethe_muse_defaults(lethe_muse_corpus corpus, lethe_muse_opts *o)
{
    memset(o, 0, sizeof *o);
    o->corpus = corpus;
    if (corpus == LETHE_MUSE_NEWS)
        *o = (lethe_muse_opts){.corpus = corpus, .n_forget = 10, .n_retain = 40,
                               .n_holdout = 40, .max_words = 2000};
    else
        *o = (lethe_muse_opts){.corpus = corpus, .n_forget = 10, .n_retain = 32,
                               .n_holdout = 16, .max_words = 0};
}

const char *lethe_muse_corpus_name(lethe_muse_corpus corpus)
{
    return corpus == LETHE_MUSE_NEWS ? "sotu" : "moby";
}

lethe_status lethe_muse_check(const lethe_muse_opts *o)
{
    if (o->corpus != LETHE_MUSE_NEWS && o->corpus != LETHE_MUSE_BOOKS)
        return lethe_fail(LETHE_ERR_INVALID, "unknown MUSE corpus %d (news or books)",
                          (int)o->corpus);
    if (o->seed > (1ULL << 53))
        return lethe_fail(LETHE_ERR_INVALID, "the seed must be at most 2^53");
    const long n[3] = {o->n_forget, o->n_retain, o->n_holdout};
    static const char *const what[3] = {"forget", "retain", "holdout"};
    for (int i = 0; i < 3; i++)
        if (n[i] < 1 || n[i] > LETHE_MUSE_DOCS_MAX)
            return lethe_fail(LETHE_ERR_INVALID, "the %s set must hold 1 to %d documents, "
                              "got %ld", what[i], LETHE_MUSE_DOCS_MAX, n[i]);
    if (o->max_words != 0 && (o->max_words < LETHE_MUSE_PASSAGE_WORDS || o->max_words > 1L << 30))
        return lethe_fail(LETHE_ERR_INVALID, "the word limit must be 0 (whole documents) or "
                          "%d to 2^30, got %ld", LETHE_MUSE_PASSAGE_WORDS, o->max_words);
    return LETHE_OK;
}

/* ---- text ------------------------------------------------------------- */

typedef struct span {
    size_t s, e; /* bytes [s, e) of the text */
} span;

typedef struct doc {
    uint64_t id;
    const char *text;
    size_t len; /* after the cut */
    span *w;    /* the words within len */
    size_t nw;
} doc;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The words of text[0..len); NULL on no memory (an empty text gives a
 * non-NULL array of 0). */
static span *split_words(const char *t, size_t len, size_t *n)
{
    size_t cap = 64, k = 0;
    span *w = malloc(cap * sizeof *w);
    for (size_t i = 0; w && i < len;) {
        while (i < len && is_space(t[i]))
            i++;
        if (i == len)
            break;
        size_t s = i;
        while (i < len && !is_space(t[i]))
            i++;
        if (k == cap) {
            span *p = realloc(w, 2 * cap * sizeof *w);
            if (!p) {
                free(w);
                return NULL;
            }
            w = p;
            cap *= 2;
        }
        w[k++] = (span){s, i};
    }
    *n = k;
    return w;
}

/* The length of t[s..e) without closing quotes and brackets at its end. */
static size_t strip_closers(const char *t, size_t s, size_t e)
{
    for (;;) {
        if (e > s && strchr(")]\"'", t[e - 1]))
            e--;
        else if (e >= s + 3 && (unsigned char)t[e - 3] == 0xE2 && (unsigned char)t[e - 2] == 0x80 &&
                 ((unsigned char)t[e - 1] == 0x9D || (unsigned char)t[e - 1] == 0x99))
            e -= 3; /* ” ’ */
        else
            return e;
    }
}

/* Does word i of d end a sentence? */
static int sentence_end(const doc *d, size_t i)
{
    const char *t = d->text;
    if (i + 1 == d->nw)
        return 1;
    for (size_t k = d->w[i].e; k + 1 < d->w[i + 1].s; k++)
        if (t[k] == '\n' && memchr(t + k + 1, '\n', d->w[i + 1].s - k - 1))
            return 1; /* a blank line */
    size_t s = d->w[i].s, e = strip_closers(t, s, d->w[i].e);
    if (e == s || !strchr(".!?", t[e - 1]))
        return 0;
    if (t[e - 1] != '.')
        return 1;
    while (s < e && strchr("(\"'", t[s]))
        s++;
    size_t n = e - 1 - s; /* the word before its final '.' */
    static const char *const ABBR[] = {"Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr"};
    for (size_t k = 0; k < sizeof ABBR / sizeof *ABBR; k++)
        if (n == strlen(ABBR[k]) && !memcmp(t + s, ABBR[k], n))
            return 0;
    return n > 1 && !memchr(t + s, '.', n);
}

/* The cut of max_words (see lethe/muse.h): d->len and d->nw. */
static void cut_doc(doc *d, long max_words)
{
    if (max_words <= 0 || d->nw <= (size_t)max_words)
        return;
    size_t m = (size_t)max_words, k = m;
    for (size_t i = m; i-- > m / 2;)
        if (sentence_end(d, i)) {
            k = i + 1;
            break;
        }
    d->nw = k;
    d->len = d->w[k - 1].e;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [A-Z][a-z]+ with inner hyphens ("Anglo-Saxon"). */
static int capitalised(const char *t, size_t s, size_t e)
{
    if (e - s < 2 || t[s] < 'A' || t[s] > 'Z')
        return 0;
    for (size_t k = s + 1; k < e; k++) {
        int lower = t[k] >= 'a' && t[k] <= 'z';
        if (!lower && !(t[k] == '-' && k > s + 1 && k + 1 < e))
            return 0;
    }
    return t[s + 1] >= 'a' && t[s + 1] <= 'z';
}

/* The word without trailing punctuation (a possessive 's too). */
static size_t word_core_end(const char *t, span w)
{
    size_t e = w.e;
    for (;;) {
        size_t e2 = strip_closers(t, w.s, e);
        while (e2 > w.s && strchr(",.;:!?", t[e2 - 1]))
            e2--;
        if (e2 >= w.s + 2 && t[e2 - 2] == '\'' && t[e2 - 1] == 's')
            e2 -= 2;
        else if (e2 >= w.s + 4 && !memcmp(t + e2 - 4, "\xE2\x80\x99s", 4))
            e2 -= 4;
        if (e2 == e)
            return e;
        e = e2;
    }
}

/* A year or number: the word's digits with punctuation around it stripped.
 * 2 for a year, 1 for another number, 0 for neither. */
static int numeric(const char *t, span w, span *out)
{
    size_t s = w.s, e = word_core_end(t, w);
    while (s < e && strchr("(\"'$", t[s]))
        s++;
    if (e - s >= 3 && !memcmp(t + s, "\xE2\x80\x9C", 3))
        s += 3; /* “ */
    if (s >= e || !is_digit(t[s]) || !is_digit(t[e - 1]))
        return 0;
    for (size_t k = s; k < e; k++)
        if (!is_digit(t[k]) && t[k] != ',' && t[k] != '.')
            return 0;
    *out = (span){s, e};
    if (e - s == 4 && strspn(t + s, "0123456789") >= 4) {
        int y = atoi(t + s);
        if (y >= 1500 && y <= 2099)
            return 2;
    }
    return 1;
}

/* The answer of the sentence of words [a, b] (see lethe/muse.h); 0 if none. */
static int cloze_answer(const doc *d, size_t a, size_t b, span *ans)
{
    const char *t = d->text;
    span num = {0, 0};
    int have_num = 0;
    for (size_t i = a; i <= b; i++) {
        span c;
        int k = numeric(t, d->w[i], &c);
        if (k == 2) {
            *ans = c;
            return 1;
        }
        if (k == 1 && !have_num) {
            num = c;
            have_num = 1;
        }
    }
    for (size_t i = a + 1; i <= b; i++) {
        size_t j = i;
        if (!capitalised(t, d->w[i].s, word_core_end(t, d->w[i])))
            continue;
        while (j < b && word_core_end(t, d->w[j]) == d->w[j].e && d->w[j + 1].s == d->w[j].e + 1 &&
               t[d->w[j].e] == ' ' &&
               capitalised(t, d->w[j + 1].s, word_core_end(t, d->w[j + 1])))
            j++;
        if (j > i) {
            *ans = (span){d->w[i].s, word_core_end(t, d->w[j])};
            return 1;
        }
    }
    *ans = num;
    return have_num;
}

/* ---- an output buffer ------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
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
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* s[0..n) with each run of whitespace made one space. */
static void sb_collapse(sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_space(s[i])) {
            sb_put(b, s + i, 1);
        } else if (i + 1 < n && !is_space(s[i + 1])) {
            sb_put(b, " ", 1);
        } else if (i + 1 == n) {
            sb_put(b, " ", 1);
        }
    }
}

/* One output file: a JSON Lines file (lines) or a JSON array (elements on
 * lines of their own). */
typedef struct outfile {
    char name[40];
    int array;
    sbuf b;
    long rows, words;
    cJSON *ids; /* document ids, for document files; else NULL */
} outfile;

/* Append one JSON value j (consumed) as a row. */
static void out_item(outfile *o, cJSON *j)
{
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        o->b.oom = 1;
        return;
    }
    if (o->array)
        sb_str(&o->b, o->rows ? ",\n" : "[\n");
    sb_str(&o->b, text);
    if (!o->array)
        sb_str(&o->b, "\n");
    free(text);
    o->rows++;
}

static void out_end(outfile *o)
{
    if (o->array)
        sb_str(&o->b, o->rows ? "\n]\n" : "[]\n");
}

static cJSON *pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *j = cJSON_CreateObject();
    if (j && (!cJSON_AddStringToObject(j, k1, v1) || !cJSON_AddStringToObject(j, k2, v2))) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The documents of a set (indices into docs, ascending id), one a line. */
static void out_docs(outfile *o, const doc *docs, const size_t *set, size_t n)
{
    o->ids = cJSON_CreateArray();
    if (!o->ids)
        o->b.oom = 1;
    for (size_t i = 0; i < n && !o->b.oom; i++) {
        const doc *d = &docs[set[i]];
        char *text = strndup(d->text, d->len);
        cJSON *j = cJSON_CreateObject();
        if (!text || !j || !cJSON_AddNumberToObject(j, "id", (double)d->id) ||
            !cJSON_AddStringToObject(j, "text", text) ||
            !cJSON_AddItemToArray(o->ids, cJSON_CreateNumber((double)d->id))) {
            cJSON_Delete(j);
            j = NULL;
        }
        free(text);
        out_item(o, j);
        o->words += (long)d->nw;
    }
    out_end(o);
}

/* ---- draws ------------------------------------------------------------ */

/* A drawn item: document `doc` (an index into docs), item k of it, its key. */
typedef struct draw {
    uint64_t key;
    size_t doc, k;
    span a, b; /* passages: the prompt and gt; questions: the sentence and answer */
} draw;

static int by_key(const void *x, const void *y)
{
    const draw *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->doc != b->doc)
        return a->doc < b->doc ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

static int by_place(const void *x, const void *y)
{
    const draw *a = x, *b = y;
    if (a->doc != b->doc)
        return a->doc < b->doc ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

typedef struct draws {
    draw *d;
    size_t n, cap;
} draws;

static int draws_push(draws *v, draw x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        draw *p = realloc(v->d, cap * sizeof *p);
        if (!p)
            return -1;
        v->d = p;
        v->cap = cap;
    }
    v->d[v->n++] = x;
    return 0;
}

/* Every passage of the set's documents, keyed under `stream`. */
static int passages(const doc *docs, const size_t *set, size_t n, uint64_t seed,
                    uint64_t stream, draws *v)
{
    const size_t P = LETHE_MUSE_PASSAGE_WORDS, Q = LETHE_MUSE_PROMPT_WORDS;
    for (size_t i = 0; i < n; i++) {
        const doc *d = &docs[set[i]];
        for (size_t k = 0; (k + 1) * P <= d->nw; k++) {
            const span *w = d->w + k * P;
            draw x = {.key = lethe_rng_hash(seed, stream, d->id << 20 | k), .doc = set[i], .k = k,
                      .a = {w[0].s, w[Q - 1].e}, .b = {w[Q].s, w[P - 1].e}};
            if (draws_push(v, x))
                return -1;
        }
    }
    qsort(v->d, v->n, sizeof *v->d, by_key);
    return 0;
}

/* The question of draw x into b: "Fill in the blank: ..." */
static void question(sbuf *b, const doc *docs, const draw *x)
{
    const char *t = docs[x->doc].text;
    sb_str(b, "Fill in the blank: ");
    sb_collapse(b, t + x->a.s, x->b.s - x->a.s);
    sb_str(b, "____");
    sb_collapse(b, t + x->b.e, x->a.e - x->b.e);
}

/* Every cloze question of the set's documents, keyed under `stream`. */
static int questions(const doc *docs, const size_t *set, size_t n, uint64_t seed,
                     uint64_t stream, draws *v)
{
    sbuf q = {0};
    for (size_t i = 0; i < n && !q.oom; i++) {
        const doc *d = &docs[set[i]];
        size_t a = 0, sentence = 0;
        for (size_t j = 0; j < d->nw && !q.oom; j++) {
            if (!sentence_end(d, j))
                continue;
            size_t words = j - a + 1;
            span ans;
            if (words >= 8 && words <= 60 && cloze_answer(d, a, j, &ans)) {
                draw x = {.key = lethe_rng_hash(seed, stream, d->id << 24 | sentence),
                          .doc = set[i], .k = sentence, .a = {d->w[a].s, d->w[j].e}, .b = ans};
                q.n = 0;
                question(&q, docs, &x);
                char *answer = strndup(d->text + ans.s, ans.e - ans.s);
                if (!answer)
                    q.oom = 1;
                else if (!q.oom && !strstr(q.p, answer) && draws_push(v, x))
                    q.oom = 1;
                free(answer);
            }
            a = j + 1;
            sentence++;
        }
    }
    free(q.p);
    if (q.oom)
        return -1;
    qsort(v->d, v->n, sizeof *v->d, by_key);
    return 0;
}

/* Write the first `want` passages of v (prompt/gt pairs, or whole texts). */
static void out_passages(outfile *o, const doc *docs, draws *v, size_t want, int verbmem)
{
    size_t n = v->n < want ? v->n : want;
    qsort(v->d, n, sizeof *v->d, by_place);
    for (size_t i = 0; i < n && !o->b.oom; i++) {
        const draw *x = &v->d[i];
        const char *t = docs[x->doc].text;
        char *p = strndup(t + x->a.s, x->a.e - x->a.s), *g = strndup(t + x->b.s, x->b.e - x->b.s);
        char *whole = strndup(t + x->a.s, x->b.e - x->a.s);
        cJSON *j = NULL;
        if (p && g && whole)
            j = verbmem ? pair("prompt", p, "gt", g) : cJSON_CreateString(whole);
        free(p);
        free(g);
        free(whole);
        out_item(o, j);
        o->words += LETHE_MUSE_PASSAGE_WORDS;
    }
    out_end(o);
}

/* Draw the ICL questions, then the evaluated ones, skipping a repeated
 * question and an answer drawn three times already. */
static void out_questions(outfile *icl, outfile *qa, const doc *docs, draws *v)
{
    enum { N = LETHE_MUSE_ICL + LETHE_MUSE_QA };
    size_t taken = 0;
    sbuf q = {0};
    char **seen = calloc(2 * N, sizeof *seen); /* questions, then answers */
    if (!seen)
        q.oom = 1;
    for (size_t i = 0; i < v->n && taken < N && !q.oom; i++) {
        const draw *x = &v->d[i];
        q.n = 0;
        question(&q, docs, x);
        char *ans = strndup(docs[x->doc].text + x->b.s, x->b.e - x->b.s);
        int dup = 0, same_answer = 0;
        for (size_t k = 0; ans && k < taken && !q.oom; k++) {
            dup |= !strcmp(seen[k], q.p);
            same_answer += !strcmp(seen[N + k], ans);
        }
        if (!ans || q.oom || dup || same_answer >= 3) {
            q.oom |= !ans;
            free(ans);
            continue;
        }
        seen[N + taken] = ans;
        if (!(seen[taken] = strdup(q.p)))
            q.oom = 1;
        v->d[taken++] = *x;
    }
    for (size_t k = 0; seen && k < taken; k++) {
        free(seen[k]);
        free(seen[N + k]);
    }
    free(seen);
    size_t n_icl = taken < LETHE_MUSE_ICL ? taken : LETHE_MUSE_ICL;
    for (int part = 0; part < 2 && !q.oom; part++) {
        outfile *o = part ? qa : icl;
        draw *x = v->d + (part ? n_icl : 0);
        size_t n = part ? taken - n_icl : n_icl;
        qsort(x, n, sizeof *x, by_place);
        for (size_t i = 0; i < n && !o->b.oom; i++) {
            q.n = 0;
            question(&q, docs, &x[i]);
            char *ans = strndup(docs[x[i].doc].text + x[i].b.s, x[i].b.e - x[i].b.s);
            out_item(o, ans && !q.oom ? pair("question", q.p, "answer", ans) : NULL);
            free(ans);
        }
        out_end(o);
    }
    if (q.oom)
        qa->b.oom = icl->b.oom = 1;
    free(q.p);
}

/* ---- the writer ------------------------------------------------------- */

enum { F_FORGET, F_RETAIN1, F_RETAIN2, F_HOLDOUT, F_VERBMEM, F_KF, F_KR, F_KFI, F_KRI,
       F_PF, F_PR, F_PH, F_SCAL, F_SUST = F_SCAL + LETHE_MUSE_FOLDS,
       N_FILES = F_SUST + LETHE_MUSE_FOLDS };

static const char *const NAMES[F_SCAL] = {
    "raw/forget.jsonl",          "raw/retain1.jsonl",        "raw/retain2.jsonl",
    "raw/holdout.jsonl",         "verbmem/forget.json",      "knowmem/forget_qa.json",
    "knowmem/retain_qa.json",    "knowmem/forget_qa_icl.json", "knowmem/retain_qa_icl.json",
    "privleak/forget.json",      "privleak/retain.json",     "privleak/holdout.json",
};

static const char *const SUBDIRS[] = {"raw", "verbmem", "knowmem", "privleak", "scal", "sust"};

typedef struct ranked {
    uint64_t key;
    size_t i;
} ranked;

static int by_rank(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static int by_index(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return a < b ? -1 : a > b;
}

/* The documents: the corpus's (books without its table of contents), cut. */
static lethe_status make_docs(const lethe_corpus *c, const lethe_muse_opts *o, doc **out,
                              size_t *n_out)
{
    doc *docs = calloc(c->n ? c->n : 1, sizeof *docs);
    size_t n = 0;
    if (!docs)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        if (o->corpus == LETHE_MUSE_BOOKS && c->ids[i] == 0)
            continue;
        doc *d = &docs[n++];
        *d = (doc){.id = c->ids[i], .text = c->texts[i], .len = c->lens[i]};
        if (!(d->w = split_words(d->text, d->len, &d->nw))) {
            for (size_t k = 0; k < n; k++)
                free(docs[k].w);
            free(docs);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        cut_doc(d, o->max_words);
    }
    *out = docs;
    *n_out = n;
    return LETHE_OK;
}

/* Make a subdirectory of dir; *made says whether it was created here. */
static lethe_status make_subdir(const char *dir, const char *sub, int *made)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    struct stat sb;
    *made = 0;
    if (mkdir(path, 0755) == 0) {
        *made = 1;
        return LETHE_OK;
    }
    if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return LETHE_OK;
    return lethe_fail(LETHE_ERR_IO, "%s: cannot create the directory: %s", path,
                      errno == EEXIST ? "a file is in the way" : strerror(errno));
}

static lethe_status write_manifest(const char *dir, const lethe_muse_opts *o,
                                   const lethe_corpus *c, size_t n_docs, outfile *f, int n_files,
                                   char (*hex)[65])
{
    char chash[17];
    lethe_corpus_hash(c, chash);
    int news = o->corpus == LETHE_MUSE_NEWS;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "benchmark", news ? "lethe MUSE-style news (State of the Union)"
                                                 : "lethe MUSE-style books (Moby-Dick)");
    cJSON_AddStringToObject(m, "generator", news ? "lethe " LETHE_VERSION " data make muse-news"
                                                 : "lethe " LETHE_VERSION " data make muse-books");
    cJSON_AddStringToObject(m, "corpus", lethe_muse_corpus_name(o->corpus));
    cJSON_AddStringToObject(m, "corpus_hash", chash);
    cJSON_AddNumberToObject(m, "corpus_documents", (double)n_docs);
    cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    cJSON_AddNumberToObject(m, "forget", (double)o->n_forget);
    cJSON_AddNumberToObject(m, "retain", (double)o->n_retain);
    cJSON_AddNumberToObject(m, "holdout", (double)o->n_holdout);
    cJSON_AddNumberToObject(m, "max_words", (double)o->max_words);
    cJSON_AddNumberToObject(m, "prompt_words", LETHE_MUSE_PROMPT_WORDS);
    cJSON_AddNumberToObject(m, "gt_words", LETHE_MUSE_GT_WORDS);
    cJSON *files = cJSON_AddArrayToObject(m, "files");
    for (int i = 0; i < n_files; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(files, e);
        cJSON_AddStringToObject(e, "name", f[i].name);
        cJSON_AddNumberToObject(e, "rows", (double)f[i].rows);
        if (f[i].words)
            cJSON_AddNumberToObject(e, "words", (double)f[i].words);
        cJSON_AddNumberToObject(e, "bytes", (double)f[i].b.n);
        cJSON_AddStringToObject(e, "sha256", hex[i]);
        if (f[i].ids) {
            cJSON_AddItemToObject(e, "ids", f[i].ids);
            f[i].ids = NULL;
        }
    }
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory writing the manifest");
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    size_t tl = strlen(text);
    text[tl] = '\n'; /* replaces the NUL; written with its length */
    lethe_status st = lethe_file_write_atomic(path, text, tl + 1);
    free(text);
    return st;
}

lethe_status lethe_muse_write(const char *dir, const lethe_muse_opts *o)
{
    lethe_status st = lethe_muse_check(o);
    if (st != LETHE_OK)
        return st;
    lethe_corpus *c;
    if ((st = lethe_corpus_load(lethe_muse_corpus_name(o->corpus), 0, &c)) != LETHE_OK)
        return st;
    int news = o->corpus == LETHE_MUSE_NEWS;
    size_t F = (size_t)o->n_forget, R = (size_t)o->n_retain, H = (size_t)o->n_holdout;
    size_t pool = news ? LETHE_MUSE_FOLDS * F : F, need = pool + 2 * R + H, n = 0;
    doc *docs = NULL;
    ranked *rk = NULL;
    size_t *sets = NULL;
    outfile *f = calloc(N_FILES, sizeof *f);
    char(*hex)[65] = calloc(N_FILES, sizeof *hex);
    draws v = {0};
    int n_files = news ? N_FILES : F_SCAL;
    if (!f || !hex)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = make_docs(c, o, &docs, &n);
    if (st == LETHE_OK && need > n)
        st = lethe_fail(LETHE_ERR_INVALID,
                        "%s: the sizes need %zu documents (%s%zu forget, 2 x %zu retain, %zu "
                        "holdout) but the corpus has %zu",
                        c->name, need, news ? "4 folds x " : "", F, R, H, n);
    /* The split: documents by keyed hash; each set in ascending id. */
    if (st == LETHE_OK && (!(rk = malloc(n * sizeof *rk)) || !(sets = malloc(need * sizeof *sets))))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    const size_t *set[F_HOLDOUT + 1];
    size_t set_n[F_HOLDOUT + 1] = {F, R, R, H};
    size_t *scal = NULL;
    if (st == LETHE_OK) {
        for (size_t i = 0; i < n; i++)
            rk[i] = (ranked){lethe_rng_hash(o->seed, S_SPLIT, docs[i].id), i};
        qsort(rk, n, sizeof *rk, by_rank);
        for (size_t i = 0; i < need; i++)
            sets[i] = rk[i].i;
        size_t at = pool;
        for (int s = F_RETAIN1; s <= F_HOLDOUT; at += set_n[s], s++) {
            set[s] = sets + at;
            qsort(sets + at, set_n[s], sizeof *sets, by_index);
        }
        set[F_FORGET] = sets;
        if (news && !(scal = malloc(pool * sizeof *scal)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        for (size_t k = 0; news && scal && k < LETHE_MUSE_FOLDS; k++) {
            memcpy(scal, sets, (k + 1) * F * sizeof *scal); /* folds 1..k+1, by rank */
            qsort(scal, (k + 1) * F, sizeof *scal, by_index);
            snprintf(f[F_SCAL + k].name, sizeof f->name, "scal/forget_%zu.jsonl", k + 1);
            out_docs(&f[F_SCAL + k], docs, scal, (k + 1) * F);
        }
        for (size_t k = 0; news && scal && k < LETHE_MUSE_FOLDS; k++) {
            qsort(sets + k * F, F, sizeof *sets, by_index); /* fold k+1 alone */
            snprintf(f[F_SUST + k].name, sizeof f->name, "sust/forget_%zu.jsonl", k + 1);
            out_docs(&f[F_SUST + k], docs, sets + k * F, F);
        }
        if (!news)
            qsort(sets, F, sizeof *sets, by_index);
    }
    for (int s = F_FORGET; s <= F_HOLDOUT && st == LETHE_OK; s++) {
        snprintf(f[s].name, sizeof f->name, "%s", NAMES[s]);
        out_docs(&f[s], docs, set[s], set_n[s]);
    }
    for (int i = F_VERBMEM; i < F_SCAL; i++) {
        snprintf(f[i].name, sizeof f->name, "%s", NAMES[i]);
        f[i].array = 1;
    }
    /* verbmem and privleak: passages; knowmem: questions. */
    static const int PRIV_SET[3] = {F_FORGET, F_RETAIN1, F_HOLDOUT};
    for (int i = 0; i < 4 && st == LETHE_OK; i++) {
        const int s = i ? PRIV_SET[i - 1] : F_FORGET;
        v.n = 0;
        if (passages(docs, set[s], set_n[s], o->seed, i ? S_PRIVLEAK + (uint64_t)i : S_VERBMEM,
                     &v))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        else if (v.n == 0)
            st = lethe_fail(LETHE_ERR_INVALID, "%s: the %s set has no passage of %d words",
                            c->name, NAMES[s] + 4, LETHE_MUSE_PASSAGE_WORDS);
        else if (i == 0)
            out_passages(&f[F_VERBMEM], docs, &v, LETHE_MUSE_VERBMEM, 1);
        else
            out_passages(&f[F_PF + i - 1], docs, &v, LETHE_MUSE_PRIVLEAK, 0);
    }
    for (int i = 0; i < 2 && st == LETHE_OK; i++) {
        const int s = i ? F_RETAIN1 : F_FORGET;
        v.n = 0;
        if (questions(docs, set[s], set_n[s], o->seed, S_KNOWMEM + (uint64_t)i, &v))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        else if (v.n <= LETHE_MUSE_ICL)
            st = lethe_fail(LETHE_ERR_INVALID, "%s: the %s set gives %zu questions, too few for "
                            "%d in-context examples and a question", c->name, NAMES[s] + 4, v.n,
                            LETHE_MUSE_ICL);
        else
            out_questions(&f[i ? F_KRI : F_KFI], &f[i ? F_KR : F_KF], docs, &v);
    }
    for (int i = 0; i < n_files && st == LETHE_OK; i++)
        if (f[i].b.oom)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory building %s", f[i].name);

    /* Write: the subdirectories, the files, the manifest last. */
    lethe_rundir *rd = NULL;
    int made[sizeof SUBDIRS / sizeof *SUBDIRS] = {0}, slot[sizeof SUBDIRS / sizeof *SUBDIRS];
    int n_sub = news ? 6 : 4;
    if (st == LETHE_OK)
        st = lethe_rundir_begin(dir, o->force, NULL, 0, &rd);
    for (int i = 0; i < n_sub; i++)
        slot[i] = -1;
    for (int i = 0; i < n_sub && rd && st == LETHE_OK; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, SUBDIRS[i]);
        st = make_subdir(dir, SUBDIRS[i], &made[i]);
        if (made[i])
            slot[i] = lethe_inflight_add(path);
    }
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, "data make", "files", (uint64_t)n_files, o->quiet);
    for (int i = 0; i < n_files && rd && st == LETHE_OK; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, f[i].name);
        lethe_sha256 sh;
        lethe_sha256_init(&sh);
        lethe_sha256_update(&sh, f[i].b.p, f[i].b.n);
        lethe_sha256_final(&sh, hex[i]);
        st = lethe_file_write_atomic(path, f[i].b.p ? f[i].b.p : "", f[i].b.n);
        lethe_progress_update(&prog, (uint64_t)i + 1);
    }
    if (prog.last > prog.t0)
        lethe_progress_finish(&prog);
    if (rd && st == LETHE_OK)
        st = write_manifest(dir, o, c, n, f, n_files, hex);
    for (int i = 0; i < n_sub; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, SUBDIRS[i]);
        if (st != LETHE_OK && made[i])
            lethe_remove_tree(path);
        lethe_inflight_drop(slot[i]);
    }
    if (rd)
        lethe_rundir_end(rd, st);
    for (int i = 0; f && i < N_FILES; i++) {
        free(f[i].b.p);
        cJSON_Delete(f[i].ids);
    }
    for (size_t i = 0; docs && i < n; i++)
        free(docs[i].w);
    free(docs);
    free(rk);
    free(sets);
    free(scal);
    free(v.d);
    free(f);
    free(hex);
    lethe_corpus_free(c);
    return st;
}
