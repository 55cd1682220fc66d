/* Answer retrieval (lethe_guard_retrieve) against a plain scan written
 * here: each answer's vector computed afresh from its text, dotted with the
 * prompt's over every bucket in increasing order (in double, rounded to
 * float), ranked best first with ties to the lower answer number. The same
 * answers, order and score bits are expected through additions, removals,
 * answers added to an early target (which renumbers the later ones), a save
 * and load, and from several threads retrieving from a just-changed guard
 * at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_file.h"

#define HASH "sha256:retrieve-test"

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A sentence of 3 to 14 words from a small vocabulary (many shared
 * n-grams), sometimes with a number. */
static void random_text(uint64_t *s, char *out, size_t cap)
{
    static const char *const words[] = {
        "the",     "author", "was",    "born",   "in",      "Lisbon", "novel",  "prize",
        "wrote",   "her",    "his",    "father", "mother",  "sea",    "glass",  "orchard",
        "studied", "marine", "poetry", "Kyoto",  "fishing", "won",    "stories", "about",
        "Quill",   "Mara",   "Oslo",   "fjord",  "teacher", "a",      "of",     "grief"};
    size_t nw = sizeof words / sizeof *words, len = 0;
    int n = 3 + (int)(next_rand(s) % 12);
    out[0] = 0;
    for (int i = 0; i < n && len + 24 < cap; i++) {
        if (next_rand(s) % 9 == 0)
            len += (size_t)snprintf(out + len, cap - len, "%s%u", i ? " " : "",
                                    (unsigned)(next_rand(s) % 2000));
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "",
                                    words[next_rand(s) % nw]);
    }
    if (len + 2 < cap)
        memcpy(out + len, ".", 2);
}

/* ---- the reference ---------------------------------------------------------- */

struct scored {
    float s;
    size_t idx;
};

static int by_rank(const void *a, const void *b)
{
    const struct scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Every answer's vector, recomputed from lethe_guard_answer's text, as its
 * non-zero entries in increasing bucket order: answer i's are
 * col/val[off[i] .. off[i + 1]). */
struct vecs {
    size_t *off;
    int *col;
    float *val;
};

static void vecs_free(struct vecs *v)
{
    free(v->off);
    free(v->col);
    free(v->val);
}

static int answer_vectors(const lethe_guard_t *g, struct vecs *v)
{
    size_t count = lethe_guard_answer_count(g), dim = (size_t)lethe_guard_dim(g), nz = 0;
    lethe_guard_feat f;
    float *a = malloc(dim * sizeof *a);
    *v = (struct vecs){calloc(count + 1, sizeof *v->off), NULL, NULL};
    if (!a || !v->off || lethe_guard_feat_hash((int)dim, &f) != LETHE_OK)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        const char *t = lethe_guard_answer(g, i, NULL);
        if (lethe_guard_features(&f, t, strlen(t), a) != LETHE_OK)
            goto fail;
        for (size_t c = 0; c < dim; c++) {
            if (a[c] == 0)
                continue;
            if (!(nz & (nz + 1))) { /* grow at 0, 1, 3, 7, ... entries */
                int *col = realloc(v->col, 2 * (nz + 1) * sizeof *col);
                float *val = realloc(v->val, 2 * (nz + 1) * sizeof *val);
                if (col)
                    v->col = col;
                if (val)
                    v->val = val;
                if (!col || !val)
                    goto fail;
            }
            v->col[nz] = (int)c;
            v->val[nz++] = a[c];
        }
        v->off[i + 1] = nz;
    }
    free(a);
    return 0;
fail:
    free(a);
    vecs_free(v);
    *v = (struct vecs){NULL, NULL, NULL};
    return -1;
}

/* The reference ranking of every answer for prompt into r[0..count). */
static int ref_rank(const lethe_guard_t *g, const struct vecs *v, const char *prompt,
                    struct scored *r)
{
    size_t count = lethe_guard_answer_count(g), dim = (size_t)lethe_guard_dim(g);
    lethe_guard_feat f;
    float *q = malloc(dim * sizeof *q);
    if (!q || lethe_guard_feat_hash((int)dim, &f) != LETHE_OK ||
        lethe_guard_features(&f, prompt, strlen(prompt), q) != LETHE_OK) {
        free(q);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        double dot = 0;
        for (size_t e = v->off[i]; e < v->off[i + 1]; e++)
            dot += (double)v->val[e] * q[v->col[e]];
        r[i] = (struct scored){(float)dot, i};
    }
    qsort(r, count, sizeof *r, by_rank);
    free(q);
    return 0;
}

/* lethe_guard_retrieve(g, prompt, k) is the reference's first min(k, count)
 * entries, score bits included; 0 when so, else a message in msg. */
static int same_as_ref(const lethe_guard_t *g, const struct scored *r, const char *prompt,
                       size_t k, char *msg, size_t cap)
{
    size_t count = lethe_guard_answer_count(g), want = k < count ? k : count;
    size_t *idx = malloc((k ? k : 1) * sizeof *idx), n = 12345;
    float *sc = malloc((k ? k : 1) * sizeof *sc);
    int bad = 0;
    if (!idx || !sc) {
        snprintf(msg, cap, "out of memory");
        bad = 1;
    } else if (lethe_guard_retrieve(g, prompt, strlen(prompt), k, idx, sc, &n) != LETHE_OK) {
        snprintf(msg, cap, "retrieve failed: %s", lethe_error_detail());
        bad = 1;
    } else if (n != want) {
        snprintf(msg, cap, "k %zu: %zu answers, expected %zu", k, n, want);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < n; i++)
        if (idx[i] != r[i].idx || memcmp(&sc[i], &r[i].s, sizeof(float))) {
            snprintf(msg, cap, "k %zu, rank %zu: answer %zu score %.9g, expected %zu %.9g", k,
                     i, idx[i], (double)sc[i], r[i].idx, (double)r[i].s);
            bad = 1;
        }
    /* without scores: the same answers */
    if (!bad && (lethe_guard_retrieve(g, prompt, strlen(prompt), k, idx, NULL, &n) != LETHE_OK ||
                 n != want)) {
        snprintf(msg, cap, "k %zu without scores: %zu answers", k, n);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < n; i++)
        if (idx[i] != r[i].idx) {
            snprintf(msg, cap, "k %zu without scores, rank %zu: answer %zu, expected %zu", k, i,
                     idx[i], r[i].idx);
            bad = 1;
        }
    free(idx);
    free(sc);
    return bad;
}

/* The prompts: some answers verbatim, random sentences, a prompt with no
 * features at all (every answer scores 0: the first k answers, in order),
 * and words no answer has. */
#define N_PROMPTS 40
static void make_prompts(const lethe_guard_t *g, uint64_t *s, char p[N_PROMPTS][256])
{
    size_t count = lethe_guard_answer_count(g);
    for (int i = 0; i < N_PROMPTS; i++) {
        if (i == 0)
            snprintf(p[i], 256, "?! ...");
        else if (i == 1)
            snprintf(p[i], 256, "zyxwv qqqq jjjj");
        else if (i < 10 && count)
            snprintf(p[i], 256, "%.255s", lethe_guard_answer(g, next_rand(s) % count, NULL));
        else
            random_text(s, p[i], 256);
    }
}

/* Every prompt at several k against the reference; 0 when all agree. */
static int check_all(const lethe_guard_t *g, uint64_t *s, const char *phase, char *msg,
                     size_t cap)
{
    size_t count = lethe_guard_answer_count(g);
    struct vecs vecs;
    int bad = answer_vectors(g, &vecs) != 0;
    struct scored *r = malloc((count ? count : 1) * sizeof *r);
    static char p[N_PROMPTS][256];
    make_prompts(g, s, p);
    const size_t ks[] = {0, 1, 2, 5, 17, count, count + 7};
    bad |= !r;
    if (bad)
        snprintf(msg, cap, "%s: reference failed", phase);
    for (int i = 0; !bad && i < N_PROMPTS; i++) {
        if (ref_rank(g, &vecs, p[i], r)) {
            snprintf(msg, cap, "%s: reference failed", phase);
            bad = 1;
        }
        for (size_t j = 0; !bad && j < sizeof ks / sizeof *ks; j++)
            if (same_as_ref(g, r, p[i], ks[j], msg, cap)) {
                size_t l = strlen(msg);
                snprintf(msg + l, cap - l, " (%s, prompt \"%.60s\")", phase, p[i]);
                bad = 1;
            }
    }
    vecs_free(&vecs);
    free(r);
    return bad;
}

static lethe_status add_answers(lethe_guard_t *g, uint32_t id, int n, uint64_t *s)
{
    char text[256];
    lethe_status st = LETHE_OK;
    for (int i = 0; i < n && st == LETHE_OK; i++) {
        random_text(s, text, sizeof text);
        st = lethe_guard_add_answer(g, id, text);
    }
    return st;
}

static void run_phases(int dim)
{
    char msg[512];
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)dim;
    lethe_guard_t *g = lethe_guard_new(HASH, NULL, dim);
    CHECK(g);
    /* nothing to retrieve yet */
    size_t idx[4], n = 9;
    CHECK_OK(lethe_guard_retrieve(g, "the author", 10, 4, idx, NULL, &n));
    CHECK(n == 0);
    /* eight targets of 0 to 60 answers; target 3 has none, target 5 holds
     * duplicates of target 1's first answers (ties) */
    uint32_t id[16];
    char name[32];
    for (int t = 0; t < 8; t++) {
        snprintf(name, sizeof name, "Target %d", t);
        CHECK_OK(lethe_guard_add_target(g, name, NULL, 0, &id[t]));
        if (t != 3)
            CHECK_OK(add_answers(g, id[t], 20 + (int)(next_rand(&s) % 41), &s));
    }
    for (int i = 0; i < 6; i++)
        CHECK_OK(lethe_guard_add_answer(g, id[5], lethe_guard_answer(g, (size_t)i, NULL)));
    CHECK_MSG(!check_all(g, &s, "added", msg, sizeof msg), "dim %d: %s", dim, msg);
    /* remove a middle target, the empty one and the first: later answers
     * are renumbered */
    CHECK_OK(lethe_guard_remove_target(g, id[4]));
    CHECK_OK(lethe_guard_remove_target(g, id[3]));
    CHECK_OK(lethe_guard_remove_target(g, id[0]));
    CHECK_MSG(!check_all(g, &s, "removed", msg, sizeof msg), "dim %d: %s", dim, msg);
    /* answers added to an early target (renumbering every later one), then
     * new targets at the end */
    CHECK_OK(add_answers(g, id[1], 15, &s));
    CHECK_MSG(!check_all(g, &s, "grown early", msg, sizeof msg), "dim %d: %s", dim, msg);
    for (int t = 8; t < 12; t++) {
        snprintf(name, sizeof name, "Target %d", t);
        CHECK_OK(lethe_guard_add_target(g, name, NULL, 0, &id[t]));
        CHECK_OK(add_answers(g, id[t], 25, &s));
    }
    CHECK_OK(lethe_guard_remove_target(g, id[6]));
    CHECK_OK(add_answers(g, id[2], 3, &s));
    CHECK(lethe_guard_answer_count(g) >= 200);
    CHECK_MSG(!check_all(g, &s, "grown", msg, sizeof msg), "dim %d: %s", dim, msg);
    /* a loaded copy ranks the same */
    unsigned char *buf;
    size_t len;
    CHECK_OK(lethe_guard_save_buf(g, &buf, &len));
    lethe_guard_t *back = NULL;
    lethe_status st = lethe_guard_load_buf(buf, len, "retrieve", &back);
    free(buf);
    CHECK_OK(st);
    int bad = check_all(back, &s, "loaded", msg, sizeof msg);
    lethe_guard_free(back);
    /* every target removed: nothing left to retrieve */
    for (size_t t = lethe_guard_target_count(g); t > 0; t--) {
        lethe_guard_target_info info;
        lethe_guard_target_get(g, t - 1, &info);
        if (lethe_guard_remove_target(g, info.id) != LETHE_OK)
            bad = 1;
    }
    n = 9;
    if (lethe_guard_retrieve(g, "the author", 10, 4, idx, NULL, &n) != LETHE_OK || n != 0)
        bad = 1;
    lethe_guard_free(g);
    CHECK_MSG(!bad, "dim %d: %s", dim, msg);
}

/* Few buckets (many collisions, long postings) and the default count. */
TEST(guard_retrieve_matches_scan)
{
    run_phases(64);
    run_phases(512);
    run_phases(0);
}

/* ---- threads ------------------------------------------------------------------ */

#define N_THREADS 4
#define N_TPROMPTS 12

struct job {
    const lethe_guard_t *g;
    const char (*prompt)[256];
    const size_t (*want)[8];
    int bad;
};

static void *retrieve_all(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < N_TPROMPTS; i++) {
        size_t idx[8], n;
        const char *p = j->prompt[i];
        if (lethe_guard_retrieve(j->g, p, strlen(p), 8, idx, NULL, &n) != LETHE_OK || n != 8 ||
            memcmp(idx, j->want[i], sizeof idx))
            j->bad = 1;
    }
    return NULL;
}

/* Threads retrieving at once from a guard whose index is stale (just
 * changed) all get the reference answers; then again once it is built. */
TEST(guard_retrieve_threads)
{
    uint64_t s = 42;
    lethe_guard_t *g = lethe_guard_new(HASH, NULL, 256);
    CHECK(g);
    uint32_t id[5];
    char name[32];
    for (int t = 0; t < 5; t++) {
        snprintf(name, sizeof name, "T%d", t);
        CHECK_OK(lethe_guard_add_target(g, name, NULL, 0, &id[t]));
        CHECK_OK(add_answers(g, id[t], 40, &s));
    }
    static char prompt[N_TPROMPTS][256];
    static size_t want[N_TPROMPTS][8];
    for (int round = 0; round < 3; round++) {
        /* change the guard, then rank with the reference */
        if (round == 1)
            CHECK_OK(lethe_guard_remove_target(g, id[1]));
        if (round == 2)
            CHECK_OK(add_answers(g, id[0], 10, &s));
        size_t count = lethe_guard_answer_count(g);
        struct vecs vecs = {NULL, NULL, NULL};
        struct scored *r = malloc(count * sizeof *r);
        int ok = r && !answer_vectors(g, &vecs);
        for (int i = 0; ok && i < N_TPROMPTS; i++) {
            random_text(&s, prompt[i], sizeof prompt[i]);
            ok = !ref_rank(g, &vecs, prompt[i], r);
            for (int k = 0; ok && k < 8; k++)
                want[i][k] = r[k].idx;
        }
        vecs_free(&vecs);
        free(r);
        CHECK(ok);
        for (int pass = 0; pass < 2; pass++) {
            pthread_t th[N_THREADS];
            struct job jobs[N_THREADS];
            int started = 0;
            for (int t = 0; t < N_THREADS; t++) {
                jobs[t] = (struct job){g, (const char(*)[256])prompt,
                                       (const size_t(*)[8])want, 0};
                if (pthread_create(&th[t], NULL, retrieve_all, &jobs[t]) == 0)
                    started++;
                else
                    break;
            }
            int bad = 0;
            for (int t = 0; t < started; t++) {
                pthread_join(th[t], NULL);
                bad |= jobs[t].bad;
            }
            CHECK(started == N_THREADS);
            CHECK_MSG(!bad, "round %d, pass %d: a thread got other answers", round, pass);
        }
    }
    lethe_guard_free(g);
}
