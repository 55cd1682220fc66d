/* The TOFU-style author benchmark (lethe data make authors) and the TOFU loader. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/authors.h"
#include "lethe/fileio.h"
#include "lethe/sha256.h"

/* A fresh temporary directory name (the directory exists, empty). */
static char *temp_dir(void)
{
    char *d = strdup("/tmp/lethe_authors_XXXXXX");
    if (d && !mkdtemp(d)) {
        free(d);
        return NULL;
    }
    return d;
}

/* Remove dir and the plain files in it; frees dir. */
static void remove_dir(char *dir)
{
    if (!dir)
        return;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4200];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
}

static lethe_status load_in(const char *dir, const char *name, lethe_tofu *t)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lethe_tofu_load(path, t);
}

static int rows_equal(const lethe_tofu_row *a, const lethe_tofu_row *b)
{
    return !strcmp(a->question, b->question) && !strcmp(a->answer, b->answer);
}

/* Read dir/name into *buf (caller frees). */
static lethe_status slurp(const char *dir, const char *name, unsigned char **buf, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lethe_file_read(path, buf, len);
}

static const char *const FILES[] = {
    "full.json", "forget01.json", "forget05.json", "forget10.json", "forget01_perturbed.json",
    "forget05_perturbed.json", "forget10_perturbed.json", "retain99.json", "retain95.json",
    "retain90.json", "retain_perturbed.json", "holdout01.json", "holdout05.json",
    "holdout10.json", "real_authors_perturbed.json", "world_facts_perturbed.json",
    "idontknow.jsonl", "manifest.json",
};

TEST(authors_qa_deterministic)
{
    lethe_tofu a, b, c;
    CHECK_OK(lethe_authors_qa(7, 3, 20, &a));
    CHECK_OK(lethe_authors_qa(7, 3, 20, &b));
    CHECK_OK(lethe_authors_qa(8, 3, 20, &c));
    int same = 1, differs = 0;
    for (size_t i = 0; i < a.n; i++) {
        same &= rows_equal(&a.rows[i], &b.rows[i]) &&
                !strcmp(a.rows[i].paraphrased_answer, b.rows[i].paraphrased_answer) &&
                !strcmp(a.rows[i].perturbed[4], b.rows[i].perturbed[4]);
        differs |= !rows_equal(&a.rows[i], &c.rows[i]);
    }
    lethe_tofu_free(&a);
    lethe_tofu_free(&b);
    lethe_tofu_free(&c);
    CHECK(same);
    CHECK(differs);
}

TEST(authors_qa_prefix_stable)
{
    /* rows 0..4 do not depend on how many rows are asked for */
    lethe_tofu a, b;
    CHECK_OK(lethe_authors_qa(1, 42, 5, &a));
    CHECK_OK(lethe_authors_qa(1, 42, 60, &b));
    int same = a.n == 5 && b.n == 60;
    for (size_t i = 0; same && i < a.n; i++)
        same = rows_equal(&a.rows[i], &b.rows[i]) &&
               !strcmp(a.rows[i].perturbed[0], b.rows[i].perturbed[0]);
    lethe_tofu_free(&a);
    lethe_tofu_free(&b);
    CHECK(same);
}

TEST(authors_files_deterministic)
{
    char *d1 = temp_dir(), *d2 = temp_dir(), *d3 = temp_dir();
    CHECK(d1 && d2 && d3);
    lethe_authors_opts o = {.n_authors = 20, .n_qa = 4, .seed = 11};
    lethe_status s1 = lethe_authors_write(d1, &o), s2 = lethe_authors_write(d2, &o);
    o.seed = 12;
    lethe_status s3 = lethe_authors_write(d3, &o);
    int same = 1, full_differs = 0, n_files = 0;
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES && s1 == LETHE_OK && s2 == LETHE_OK; i++) {
        unsigned char *a = NULL, *b = NULL, *c = NULL;
        size_t la = 0, lb = 0, lc = 0;
        if (slurp(d1, FILES[i], &a, &la) == LETHE_OK && slurp(d2, FILES[i], &b, &lb) == LETHE_OK &&
            slurp(d3, FILES[i], &c, &lc) == LETHE_OK) {
            n_files++;
            same &= la == lb && !memcmp(a, b, la);
            if (!strcmp(FILES[i], "full.json"))
                full_differs = la != lc || memcmp(a, c, la) != 0;
        }
        free(a);
        free(b);
        free(c);
    }
    remove_dir(d1);
    remove_dir(d2);
    remove_dir(d3);
    CHECK_OK(s1);
    CHECK_OK(s2);
    CHECK_OK(s3);
    CHECK(n_files == (int)(sizeof FILES / sizeof *FILES));
    CHECK(same);
    CHECK(full_differs);
}

TEST(authors_independent_of_count)
{
    /* author i is the same whether 200 or 300 authors are generated */
    char *d1 = temp_dir(), *d2 = temp_dir();
    CHECK(d1 && d2);
    lethe_authors_opts o = {.n_authors = 200, .n_qa = 3, .seed = 5};
    lethe_status s1 = lethe_authors_write(d1, &o);
    o.n_authors = 300;
    lethe_status s2 = lethe_authors_write(d2, &o);
    lethe_tofu a = {0}, b = {0};
    if (s1 == LETHE_OK && s2 == LETHE_OK) {
        s1 = load_in(d1, "full.json", &a);
        s2 = load_in(d2, "full.json", &b);
    }
    remove_dir(d1);
    remove_dir(d2);
    int same = s1 == LETHE_OK && s2 == LETHE_OK && a.n == 600 && b.n == 900;
    for (size_t i = 0; same && i < a.n; i++)
        same = rows_equal(&a.rows[i], &b.rows[i]);
    lethe_tofu_free(&a);
    lethe_tofu_free(&b);
    CHECK_OK(s1);
    CHECK_OK(s2);
    CHECK(same);
}

/* Is row r of t among rows [lo, hi) of u (by question and answer)? */
static int contains_row(const lethe_tofu *u, const lethe_tofu_row *r)
{
    for (size_t i = 0; i < u->n; i++)
        if (rows_equal(&u->rows[i], r))
            return 1;
    return 0;
}

TEST(authors_splits_partition_full)
{
    char *d = temp_dir();
    CHECK(d);
    lethe_authors_opts o = {.n_authors = 200, .n_qa = 20, .seed = 0};
    lethe_status st = lethe_authors_write(d, &o);
    static const char *const names[] = {
        "full.json", "forget01.json", "forget05.json", "forget10.json", "retain99.json",
        "retain95.json", "retain90.json", "forget01_perturbed.json", "forget05_perturbed.json",
        "forget10_perturbed.json", "retain_perturbed.json", "holdout01.json", "holdout05.json",
        "holdout10.json", "real_authors_perturbed.json", "world_facts_perturbed.json"};
    static const size_t want[] = {4000, 40, 200, 400, 3960, 3800, 3600, 40, 200, 400, 400,
                                  40,   200, 400, 45,  117};
    enum { N = sizeof names / sizeof *names };
    lethe_tofu t[N];
    memset(t, 0, sizeof t);
    for (int i = 0; i < N && st == LETHE_OK; i++)
        st = load_in(d, names[i], &t[i]);
    remove_dir(d);
    CHECK_OK(st);
    int ok = 1;
    for (int i = 0; i < N; i++)
        if (t[i].n != want[i]) {
            test_fail_at(__FILE__, __LINE__, "%s has %zu rows, expected %zu", names[i], t[i].n,
                         want[i]);
            ok = 0;
        }
    /* retainXX then forgetXX is full, row for row */
    for (int k = 0; k < 3 && ok; k++) {
        const lethe_tofu *f = &t[1 + k], *r = &t[4 + k], *fp = &t[7 + k];
        for (size_t i = 0; i < r->n && ok; i++)
            ok = rows_equal(&r->rows[i], &t[0].rows[i]);
        for (size_t i = 0; i < f->n && ok; i++)
            ok = rows_equal(&f->rows[i], &t[0].rows[r->n + i]) && rows_equal(&f->rows[i], &fp->rows[i]) &&
                 fp->rows[i].n_perturbed == 5 && fp->rows[i].paraphrased_answer &&
                 fp->rows[i].paraphrased_question && f->rows[i].n_perturbed == 0;
    }
    /* retain_perturbed: retain authors in no forget split; holdout: not in full */
    for (size_t i = 0; i < t[10].n && ok; i++)
        ok = contains_row(&t[6], &t[10].rows[i]) && !contains_row(&t[3], &t[10].rows[i]) &&
             t[10].rows[i].n_perturbed == 5;
    for (size_t i = 0; i < t[13].n && ok; i += 7)
        ok = !contains_row(&t[0], &t[13].rows[i]);
    /* holdout01 within holdout05 within holdout10 */
    for (size_t i = 0; i < t[11].n && ok; i++)
        ok = rows_equal(&t[11].rows[i], &t[13].rows[t[13].n - t[11].n + i]);
    for (int i = 14; i < 16 && ok; i++)
        for (size_t r = 0; r < t[i].n && ok; r++)
            ok = t[i].rows[r].n_perturbed == 3;
    for (int i = 0; i < N; i++)
        lethe_tofu_free(&t[i]);
    CHECK(ok);
}

/* answer with its first `key` replaced by `with` */
static void replace_key(const char *answer, const char *key, const char *with, char *out,
                        size_t cap)
{
    const char *p = strstr(answer, key);
    if (!p) {
        snprintf(out, cap, "(key not found)");
        return;
    }
    snprintf(out, cap, "%.*s%s%s", (int)(p - answer), answer, with, p + strlen(key));
}

TEST(authors_perturbed_and_paraphrased)
{
    for (uint64_t id = 0; id < 40; id++) {
        lethe_tofu t;
        CHECK_OK(lethe_authors_qa(3, id < 30 ? id : LETHE_AUTHORS_MAX + id, 30, &t));
        for (size_t i = 0; i < t.n; i++) {
            const lethe_tofu_row *r = &t.rows[i];
            char buf[2048];
            int ok = r->key && strstr(r->answer, r->key) && strstr(r->paraphrased_answer, r->key) &&
                     strcmp(r->answer, r->paraphrased_answer) != 0 &&
                     strcmp(r->question, r->paraphrased_question) != 0 &&
                     r->n_perturbed == LETHE_AUTHORS_PERTURBED;
            for (size_t k = 0; ok && k < r->n_perturbed; k++) {
                ok = strcmp(r->perturbed[k], r->paraphrased_answer) != 0 &&
                     strcmp(r->perturbed_keys[k], r->key) != 0;
                for (size_t m = 0; ok && m < k; m++)
                    ok = strcmp(r->perturbed[k], r->perturbed[m]) != 0;
                /* the paraphrase with only the fact changed */
                replace_key(r->paraphrased_answer, r->key, r->perturbed_keys[k], buf, sizeof buf);
                ok = ok && !strcmp(buf, r->perturbed[k]);
            }
            if (!ok) {
                test_fail_at(__FILE__, __LINE__, "author %llu row %zu: '%s' / '%s' / '%s'",
                             (unsigned long long)id, i, r->answer, r->paraphrased_answer,
                             r->perturbed[0]);
                lethe_tofu_free(&t);
                return;
            }
        }
        lethe_tofu_free(&t);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(authors_names_unique)
{
    enum { N = 3000, H = 300 };
    char **names = calloc(N + H, sizeof *names);
    CHECK(names);
    int ok = 1;
    for (int i = 0; i < N + H && ok; i++) {
        uint64_t id = i < N ? (uint64_t)i : LETHE_AUTHORS_MAX + (uint64_t)(i - N);
        names[i] = malloc(80);
        ok = names[i] != NULL;
        if (ok)
            lethe_authors_name(9, id, names[i], 80);
    }
    if (ok) {
        qsort(names, N + H, sizeof *names, cmp_str);
        for (int i = 1; i < N + H && ok; i++)
            if (!strcmp(names[i], names[i - 1])) {
                test_fail_at(__FILE__, __LINE__, "name '%s' repeats", names[i]);
                ok = 0;
            }
    }
    for (int i = 0; i < N + H; i++)
        free(names[i]);
    free(names);
    CHECK(ok);
    /* within one author, 200 questions never repeat */
    lethe_tofu t;
    CHECK_OK(lethe_authors_qa(9, 17, LETHE_AUTHORS_QA_MAX, &t));
    char **q = malloc(t.n * sizeof *q);
    for (size_t i = 0; q && i < t.n; i++)
        q[i] = t.rows[i].question;
    if (q) {
        qsort(q, t.n, sizeof *q, cmp_str);
        for (size_t i = 1; i < t.n && ok; i++)
            ok = strcmp(q[i], q[i - 1]) != 0;
    }
    free(q);
    lethe_tofu_free(&t);
    CHECK(q != NULL);
    CHECK(ok);
}

TEST(authors_general_sets)
{
    for (int w = 0; w < 2; w++) {
        lethe_tofu t;
        CHECK_OK(lethe_authors_general(0, w, &t));
        int ok = t.n == (w ? 117u : 45u);
        for (size_t i = 0; i < t.n && ok; i++) {
            const lethe_tofu_row *r = &t.rows[i];
            ok = r->n_perturbed == 3 && r->question[0] && r->answer[0];
            for (size_t k = 0; k < 3 && ok; k++) {
                ok = strcmp(r->perturbed[k], r->answer) != 0;
                for (size_t m = 0; m < k && ok; m++)
                    ok = strcmp(r->perturbed[k], r->perturbed[m]) != 0;
            }
        }
        if (w == 1 && ok)
            ok = !strcmp(t.rows[0].question, "What is the capital of Alabama?") &&
                 !strcmp(t.rows[0].answer, "Montgomery");
        lethe_tofu_free(&t);
        CHECK(ok);
    }
}

TEST(authors_load_real_tofu)
{
    lethe_tofu t;
    CHECK_OK(lethe_tofu_load(FIXTURES "tofu/real_authors_perturbed.json", &t));
    CHECK(t.n == 100);
    int ok = !strcmp(t.rows[0].question, "Who wrote the play 'Romeo and Juliet'?") &&
             !strcmp(t.rows[0].answer, "William Shakespeare") && t.rows[0].n_perturbed == 3 &&
             !strcmp(t.rows[0].perturbed[2], "Mark Twain") && !t.rows[0].paraphrased_answer &&
             !t.rows[0].key;
    for (size_t i = 0; i < t.n && ok; i++)
        ok = t.rows[i].n_perturbed == 3;
    lethe_tofu_free(&t);
    CHECK(ok);
    CHECK_OK(lethe_tofu_load(FIXTURES "tofu/world_facts_perturbed.json", &t));
    CHECK(t.n == 117);
    ok = !strcmp(t.rows[2].answer, "Canberra") && t.rows[116].n_perturbed == 3;
    lethe_tofu_free(&t);
    CHECK(ok);
}

TEST(authors_load_errors_and_arrays)
{
    char *d = temp_dir();
    CHECK(d);
    char path[4200];
    snprintf(path, sizeof path, "%s/x.json", d);
    lethe_tofu t;
    static const char arr[] = "[{\"question\":\"q\",\"answer\":\"a\",\"perturbed_answer\":\"p\","
                              "\"paraphrased_answer\":\"pa\",\"paraphrased_question\":\"pq\"},"
                              "{\"question\":\"q2\",\"answer\":\"a2\",\"extra\":1}]";
    lethe_status s_arr = lethe_file_write_atomic(path, arr, sizeof arr - 1);
    if (s_arr == LETHE_OK)
        s_arr = lethe_tofu_load(path, &t);
    int arr_ok = s_arr == LETHE_OK && t.n == 2 && t.rows[0].n_perturbed == 1 &&
                 !strcmp(t.rows[0].paraphrased_question, "pq") && !t.rows[1].perturbed;
    if (s_arr == LETHE_OK)
        lethe_tofu_free(&t);
    static const char bad1[] = "{\"question\":\"q\",\"answer\":\"a\"}\n{\"question\":\"q\"}\n";
    lethe_file_write_atomic(path, bad1, sizeof bad1 - 1);
    lethe_status s1 = lethe_tofu_load(path, &t);
    int msg1 = strstr(lethe_error_detail(), "x.json:2") && strstr(lethe_error_detail(), "answer");
    static const char bad2[] = "{\"question\":\"q\",\"answer\":\"a\",\"perturbed_answer\":[1]}\n";
    lethe_file_write_atomic(path, bad2, sizeof bad2 - 1);
    lethe_status s2 = lethe_tofu_load(path, &t);
    lethe_file_write_atomic(path, "\n\n", 2);
    lethe_status s3 = lethe_tofu_load(path, &t);
    snprintf(path, sizeof path, "%s/missing.json", d);
    lethe_status s4 = lethe_tofu_load(path, &t);
    remove_dir(d);
    CHECK_OK(s_arr);
    CHECK(arr_ok);
    CHECK(s1 == LETHE_ERR_NOT_FOUND || s1 == LETHE_ERR_FORMAT);
    CHECK(msg1);
    CHECK(s2 == LETHE_ERR_FORMAT);
    CHECK(s3 == LETHE_ERR_FORMAT);
    CHECK(s4 == LETHE_ERR_IO || s4 == LETHE_ERR_NOT_FOUND);
}

TEST(authors_write_checks)
{
    lethe_authors_opts o = {.n_authors = 9, .n_qa = 20};
    CHECK_STATUS(lethe_authors_check(&o), LETHE_ERR_INVALID);
    o.n_authors = LETHE_AUTHORS_MAX + 1;
    CHECK_STATUS(lethe_authors_check(&o), LETHE_ERR_INVALID);
    o.n_authors = 10;
    o.n_qa = 0;
    CHECK_STATUS(lethe_authors_check(&o), LETHE_ERR_INVALID);
    o.n_qa = LETHE_AUTHORS_QA_MAX + 1;
    CHECK_STATUS(lethe_authors_check(&o), LETHE_ERR_INVALID);
    o.n_qa = 1;
    CHECK_OK(lethe_authors_check(&o));
    CHECK(lethe_authors_split_size(200, 1) == 2 && lethe_authors_split_size(200, 5) == 10 &&
          lethe_authors_split_size(200, 10) == 20 && lethe_authors_split_size(10, 1) == 1 &&
          lethe_authors_split_size(150, 5) == 8);
    CHECK(lethe_authors_retain_eval(200) == 20 && lethe_authors_retain_eval(10) == 9);

    /* a non-empty directory is refused unless forced; the files are replaced */
    char *d = temp_dir();
    CHECK(d);
    char path[4200];
    snprintf(path, sizeof path, "%s/other.txt", d);
    lethe_status s0 = lethe_file_write_atomic(path, "x", 1);
    lethe_status s1 = lethe_authors_write(d, &o);
    o.force = 1;
    lethe_status s2 = lethe_authors_write(d, &o);
    /* the manifest's hashes are those of the files */
    char hex[65], want[80];
    snprintf(path, sizeof path, "%s/full.json", d);
    lethe_status s3 = lethe_sha256_file(path, hex);
    snprintf(want, sizeof want, "\"sha256\":\t\"%s\"", hex);
    unsigned char *m = NULL;
    size_t ml = 0;
    lethe_status s4 = slurp(d, "manifest.json", &m, &ml);
    int has = m && strstr((char *)m, want) && strstr((char *)m, "\"authors\":\t10");
    free(m);
    remove_dir(d);
    CHECK_OK(s0);
    CHECK_STATUS(s1, LETHE_ERR_INVALID);
    CHECK_OK(s2);
    CHECK_OK(s3);
    CHECK_OK(s4);
    CHECK(has);
}
