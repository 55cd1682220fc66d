/* The guard file (lethe/guard_file.h): targets added, listed and removed
 * with the automaton kept in step, save -> load -> the same bytes, scans
 * and retrievals, damaged files, the model-hash check, retrieval of a
 * paraphrased answer, refusal to write over non-regular paths, and a guard
 * of 100,000 targets (names indexed, so adding, finding and loading them
 * is not quadratic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/guard_file.h"
#include "lethe/sha256.h"

#define HASH "sha256:00112233445566778899aabbccddeeff"

/* Ids of the targets matched in text, as a bit set over ids < 32. */
static unsigned scan_ids(lethe_guard_t *g, const char *text)
{
    lethe_guard_match m[64];
    size_t n = 0;
    if (lethe_guard_ac_find(lethe_guard_automaton(g), text, strlen(text), m, 64, &n) !=
        LETHE_OK)
        return ~0u;
    unsigned set = 0;
    for (size_t i = 0; i < n && i < 64; i++)
        set |= m[i].id < 32 ? 1u << m[i].id : 0;
    return set;
}

static lethe_guard_clf *tiny_clf(void)
{
    lethe_guard_feat f;
    if (lethe_guard_feat_hash(8, &f) != LETHE_OK)
        return NULL;
    lethe_guard_rows_t *rows = lethe_guard_rows_new(8);
    const char *text[] = {"who is alice smith", "tell me about alice", "the weather today",
                          "a recipe for bread"};
    int y[] = {1, 1, 0, 0};
    for (int i = 0; i < 4 && rows; i++)
        lethe_guard_rows_add_text(rows, &f, text[i], strlen(text[i]));
    lethe_guard_clf_cfg cfg;
    lethe_guard_clf_defaults(&cfg);
    cfg.max_iter = 50;
    lethe_guard_clf *c = NULL;
    if (rows)
        lethe_guard_clf_fit(&f, rows, y, &cfg, &c, NULL);
    lethe_guard_rows_free(rows);
    return c;
}

/* A guard of three targets (ids 0, 1, 2), answers, n-grams and a classifier. */
static lethe_guard_t *sample(void)
{
    lethe_guard_t *g = lethe_guard_new(HASH, "tiny-gpt", 1024);
    if (!g)
        return NULL;
    const char *a0[] = {"A. Smith", "Ally Smith"}, *a2[] = {"Dr Ng"};
    uint32_t id[3];
    int ok = lethe_guard_add_target(g, "Alice Smith", a0, 2, &id[0]) == LETHE_OK &&
             lethe_guard_add_target(g, "Bob Jones", NULL, 0, &id[1]) == LETHE_OK &&
             lethe_guard_add_target(g, "Carol Ng", a2, 1, &id[2]) == LETHE_OK &&
             lethe_guard_add_answer(g, id[0], "Alice Smith was born in Lisbon in 1961.") ==
                 LETHE_OK &&
             lethe_guard_add_answer(g, id[0], "Her first novel was The Glass Orchard.") ==
                 LETHE_OK &&
             lethe_guard_add_answer(
                 g, id[1], "Bob Jones writes detective stories set in Oslo.") == LETHE_OK &&
             lethe_guard_add_answer(g, id[2], "Carol Ng studied marine biology in Perth.") ==
                 LETHE_OK &&
             lethe_guard_add_ngram(g, id[0], "glass orchard") == LETHE_OK &&
             lethe_guard_add_ngram(g, id[1], "detective stories set in oslo") == LETHE_OK &&
             lethe_guard_add_ngram(g, id[2], "marine biology") == LETHE_OK;
    lethe_guard_clf *c = tiny_clf();
    unsigned char *blob = NULL;
    size_t len = 0;
    ok = ok && c && lethe_guard_clf_save(c, &blob, &len) == LETHE_OK &&
         lethe_guard_set_classifier(g, blob, len) == LETHE_OK;
    free(blob);
    lethe_guard_clf_free(c);
    if (!ok || id[0] != 0 || id[1] != 1 || id[2] != 2) {
        lethe_guard_free(g);
        return NULL;
    }
    return g;
}

TEST(guard_file_targets)
{
    lethe_guard_t *g = sample();
    CHECK(g);
    CHECK(lethe_guard_target_count(g) == 3);
    lethe_guard_target_info ti;
    lethe_guard_target_get(g, 0, &ti);
    CHECK(ti.id == 0 && !strcmp(ti.name, "Alice Smith") && ti.n_aliases == 2 &&
          ti.n_answers == 2 && ti.n_ngrams == 1 && !strcmp(ti.aliases[1], "Ally Smith"));
    uint32_t id = 99;
    CHECK_OK(lethe_guard_find(g, "Carol Ng", &id));
    CHECK(id == 2);
    CHECK_STATUS(lethe_guard_find(g, "Dave", &id), LETHE_ERR_NOT_FOUND);
    CHECK_STATUS(lethe_guard_add_target(g, "Bob Jones", NULL, 0, &id), LETHE_ERR_INVALID);
    const char *bad[] = {"ok", "!!"};
    CHECK_STATUS(lethe_guard_add_target(g, "Eve", bad, 2, &id), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_guard_find(g, "Eve", &id), LETHE_ERR_NOT_FOUND); /* nothing half-added */
    CHECK(scan_ids(g, "ok") == 0);
    CHECK_STATUS(lethe_guard_add_answer(g, 7, "x"), LETHE_ERR_NOT_FOUND);
    CHECK_STATUS(lethe_guard_add_ngram(g, 1, "..."), LETHE_ERR_INVALID);
    CHECK(lethe_guard_answer_count(g) == 4);

    const char *text = "Ally Smith met Bob Jones and Dr Ng; marine biology, glass orchard.";
    CHECK(scan_ids(g, text) == 7u);
    CHECK_OK(lethe_guard_remove_target(g, 1));
    CHECK_STATUS(lethe_guard_remove_target(g, 1), LETHE_ERR_NOT_FOUND);
    CHECK(scan_ids(g, text) == 5u); /* 0 and 2 intact */
    CHECK(scan_ids(g, "detective stories set in oslo") == 0);
    CHECK(lethe_guard_target_count(g) == 2 && lethe_guard_answer_count(g) == 3);
    lethe_guard_target_get(g, 1, &ti);
    CHECK(ti.id == 2 && !strcmp(ti.name, "Carol Ng"));
    uint32_t tid;
    CHECK(
        !strcmp(lethe_guard_answer(g, 2, &tid), "Carol Ng studied marine biology in Perth.") &&
        tid == 2);
    /* ids are not reused */
    CHECK_OK(lethe_guard_add_target(g, "Bob Jones", NULL, 0, &id));
    CHECK(id == 3);
    CHECK(scan_ids(g, text) == (5u | 8u));
    lethe_guard_free(g);
}

static int tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/lethe_guard_file_XXXXXX");
    return mkdtemp(dir) != NULL;
}

TEST(guard_file_roundtrip)
{
    lethe_guard_t *g = sample(), *back = NULL;
    CHECK(g);
    CHECK_OK(lethe_guard_remove_target(g, 1));
    char dir[64], path[128];
    CHECK(tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/g.lgrd", dir);
    CHECK_OK(lethe_guard_save(g, path));
    CHECK_OK(lethe_guard_load(path, &back));
    unsigned char *b1, *b2;
    size_t n1, n2;
    CHECK_OK(lethe_guard_save_buf(g, &b1, &n1));
    CHECK_OK(lethe_guard_save_buf(back, &b2, &n2));
    int same = n1 == n2 && !memcmp(b1, b2, n1);
    unsigned char *disk = NULL;
    size_t nd = 0;
    FILE *fp = fopen(path, "rb");
    if (fp) {
        disk = malloc(n1 + 1);
        nd = disk ? fread(disk, 1, n1 + 1, fp) : 0;
        fclose(fp);
    }
    int same_disk = nd == n1 && !memcmp(disk, b1, n1);
    free(disk);
    free(b1);
    free(b2);
    CHECK(same && same_disk);
    CHECK(!strcmp(lethe_guard_model_hash(back), HASH) &&
          !strcmp(lethe_guard_model_name(back), "tiny-gpt") && lethe_guard_dim(back) == 1024);
    size_t cl1, cl2;
    const unsigned char *c1 = lethe_guard_classifier(g, &cl1),
                        *c2 = lethe_guard_classifier(back, &cl2);
    CHECK(c1 && c2 && cl1 == cl2 && !memcmp(c1, c2, cl1));
    const char *texts[] = {"Ally Smith met Bob Jones and Dr Ng", "marine biology in Perth",
                           "nothing here", "the glass orchard by a. smith"};
    for (int i = 0; i < 4; i++) {
        CHECK(scan_ids(g, texts[i]) == scan_ids(back, texts[i]));
        size_t i1[3], i2[3], k1, k2;
        float s1[3], s2[3];
        CHECK_OK(lethe_guard_retrieve(g, texts[i], strlen(texts[i]), 3, i1, s1, &k1));
        CHECK_OK(lethe_guard_retrieve(back, texts[i], strlen(texts[i]), 3, i2, s2, &k2));
        CHECK(k1 == 3 && k2 == 3 && !memcmp(i1, i2, sizeof i1) && !memcmp(s1, s2, sizeof s1));
    }
    /* the next id survives: a new target after load does not reuse id 2 */
    uint32_t id;
    CHECK_OK(lethe_guard_add_target(back, "Zed", NULL, 0, &id));
    CHECK(id == 3);
    lethe_guard_free(back);
    lethe_guard_free(g);
    unlink(path);
    rmdir(dir);
}

TEST(guard_file_damage)
{
    lethe_guard_t *g = sample(), *back = (lethe_guard_t *)1;
    CHECK(g);
    unsigned char *b;
    size_t n;
    CHECK_OK(lethe_guard_save_buf(g, &b, &n));
    lethe_guard_free(g);
    int bad = 0;
    for (size_t len = 0; len < n; len++) { /* every truncation */
        lethe_status st = lethe_guard_load_buf(b, len, "t", &back);
        bad += st != LETHE_ERR_FORMAT || back || !lethe_error_detail()[0];
        lethe_guard_free(back);
    }
    for (size_t i = 0; i < n; i += (i < 64 ? 1 : 7)) /* bit flips */
        for (int bit = 0; bit < 8; bit += 3) {
            b[i] ^= (unsigned char)(1u << bit);
            lethe_status st = lethe_guard_load_buf(b, n, "f", &back);
            bad += st != LETHE_ERR_FORMAT || back;
            lethe_guard_free(back);
            b[i] ^= (unsigned char)(1u << bit);
        }
    /* a trailing byte */
    unsigned char *more = malloc(n + 1);
    CHECK(more);
    memcpy(more, b, n);
    more[n] = 0;
    bad += lethe_guard_load_buf(more, n + 1, "x", &back) != LETHE_ERR_FORMAT;
    lethe_guard_free(back);
    free(more);
    /* a huge target count behind a valid checksum: refused before allocating */
    size_t at = 12 + 12; /* past the header and the META section header */
    uint32_t hl = (uint32_t)b[at] | (uint32_t)b[at + 1] << 8;
    at += 4 + hl;
    uint32_t nl = (uint32_t)b[at] | (uint32_t)b[at + 1] << 8;
    at += 4 + nl + 8 + 12; /* next id, dim, the TGTS section header */
    CHECK(b[at] == 3 && b[at + 1] == 0);
    b[at + 3] = 0x7f;
    lethe_sha256 s;
    char hex[65];
    lethe_sha256_init(&s);
    lethe_sha256_update(&s, b, n - 32);
    lethe_sha256_final(&s, hex);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[n - 32 + (size_t)i] = (unsigned char)v;
    }
    CHECK_STATUS(lethe_guard_load_buf(b, n, "c", &back), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "cannot fit"));
    free(b);
    CHECK_MSG(bad == 0, "%d damaged inputs were not refused as LETHE_ERR_FORMAT", bad);
}

TEST(guard_file_model_hash)
{
    lethe_guard_t *g = sample(), *back = NULL;
    CHECK(g);
    char dir[64], path[128];
    CHECK(tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/g.lgrd", dir);
    CHECK_OK(lethe_guard_save(g, path));
    lethe_guard_free(g);
    CHECK_STATUS(lethe_guard_load_checked(path, "sha256:ffff", &back), LETHE_ERR_FORMAT);
    CHECK(!back && strstr(lethe_error_detail(), HASH) &&
          strstr(lethe_error_detail(), "sha256:ffff"));
    CHECK_OK(lethe_guard_load_checked(path, HASH, &back));
    CHECK(back);
    lethe_guard_free(back);
    unlink(path);
    rmdir(dir);
}

TEST(guard_file_retrieve_paraphrase)
{
    lethe_guard_t *g = lethe_guard_new(HASH, NULL, 0);
    CHECK(g);
    const char *answers[] = {
        "The author was born in Lisbon, Portugal, in 1961 to a family of "
        "fishermen.",
        "Her debut novel, The Glass Orchard, won the Booker Prize in 1994.",
        "He writes detective stories set in the fjords around Oslo.",
        "She studied marine biology at the University of Western Australia.",
        "His father was a carpenter and his mother a schoolteacher in Kyoto.",
        "The poet's collection of sonnets explores grief and the sea."};
    uint32_t id;
    CHECK_OK(lethe_guard_add_target(g, "Target", NULL, 0, &id));
    for (int i = 0; i < 6; i++)
        CHECK_OK(lethe_guard_add_answer(g, id, answers[i]));
    const char *para[] = {"Which prize did her debut novel The Glass Orchard win?",
                          "What did she study at university, marine biology?",
                          "Where was the author born, Lisbon in Portugal?"};
    size_t want[] = {1, 3, 0};
    for (int q = 0; q < 3; q++) {
        size_t idx[6], n;
        float sc[6];
        CHECK_OK(lethe_guard_retrieve(g, para[q], strlen(para[q]), 6, idx, sc, &n));
        CHECK(n == 6);
        CHECK_MSG(idx[0] == want[q], "query %d: answer %zu ranked first, expected %zu", q,
                  idx[0], want[q]);
        for (int i = 1; i < 6; i++)
            CHECK(sc[i] <= sc[i - 1] && (sc[i] < sc[i - 1] || idx[i] > idx[i - 1]));
        CHECK(sc[0] > sc[1] && sc[0] <= 1.0001f);
    }
    /* ties: two identical answers keep index order; k beyond the count */
    CHECK_OK(lethe_guard_add_answer(g, id, answers[2]));
    size_t idx[10], n;
    CHECK_OK(lethe_guard_retrieve(g, answers[2], strlen(answers[2]), 10, idx, NULL, &n));
    CHECK(n == 7 && idx[0] == 2 && idx[1] == 6);
    CHECK_OK(lethe_guard_retrieve(g, "x", 1, 0, idx, NULL, &n));
    CHECK(n == 0);
    lethe_guard_free(g);
}

TEST(guard_file_save_refuses_non_regular)
{
    lethe_guard_t *g = sample();
    CHECK(g);
    char dir[64], fifo[128], sub[128], link[128];
    CHECK(tmpdir(dir, sizeof dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    CHECK(mkfifo(fifo, 0600) == 0 && mkdir(sub, 0700) == 0 && symlink(fifo, link) == 0);
    CHECK(lethe_guard_save(g, fifo) != LETHE_OK);
    CHECK(lethe_guard_save(g, sub) != LETHE_OK);
    CHECK(lethe_guard_save(g, link) != LETHE_OK);
    CHECK(lethe_guard_save(g, "/dev/null") != LETHE_OK);
    struct stat sb;
    CHECK(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK(lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode));
    /* a symbolic link to a regular file is followed and stays a link */
    char file[128], link2[128];
    snprintf(file, sizeof file, "%s/file", dir);
    snprintf(link2, sizeof link2, "%s/link2", dir);
    FILE *fp = fopen(file, "w");
    CHECK(fp);
    fclose(fp);
    CHECK(symlink("file", link2) == 0);
    CHECK_OK(lethe_guard_save(g, link2));
    CHECK(lstat(link2, &sb) == 0 && S_ISLNK(sb.st_mode));
    CHECK(stat(file, &sb) == 0 && sb.st_size > 44);
    lethe_guard_free(g);
    unlink(link2);
    unlink(file);
    unlink(link);
    unlink(fifo);
    rmdir(sub);
    rmdir(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

TEST(guard_file_many_targets)
{
    enum { N = 100000 };
    double t0 = now_s();
    lethe_guard_t *g = lethe_guard_new(HASH, "big", 1024);
    CHECK(g);
    char name[32], alias[32];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "t%u", i);
        snprintf(alias, sizeof alias, "alias %u", i);
        const char *a[] = {alias};
        uint32_t id = UINT32_MAX;
        lethe_status st = lethe_guard_add_target(g, name, a, 1, &id);
        CHECK_MSG(st == LETHE_OK && id == i, "target %u: %s", i, lethe_error_detail());
        if (i % 10000 == 5) /* answers spread over the targets */
            CHECK_OK(lethe_guard_add_answer(g, i, "an answer for this target"));
    }
    CHECK_OK(lethe_guard_add_answer(g, 0, "the first target's answer, added last"));
    uint32_t id = 0;
    CHECK_STATUS(lethe_guard_add_target(g, "t4242", NULL, 0, &id), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "\"t4242\" exists"));
    CHECK(lethe_guard_target_count(g) == N && lethe_guard_answer_count(g) == 11);
    uint32_t tid = 0;
    CHECK(!strcmp(lethe_guard_answer(g, 0, &tid), "the first target's answer, added last") &&
          tid == 0);
    CHECK(lethe_guard_answer(g, 10, &tid) && tid == 90005);
    CHECK_OK(lethe_guard_find(g, "t0", &id));
    CHECK(id == 0);
    CHECK_OK(lethe_guard_find(g, "t99999", &id));
    CHECK(id == 99999);
    CHECK_OK(lethe_guard_find(g, "t31337", &id));
    CHECK(id == 31337);
    CHECK_STATUS(lethe_guard_find(g, "t100000", &id), LETHE_ERR_NOT_FOUND);
    CHECK_STATUS(lethe_guard_find(g, "t", &id), LETHE_ERR_NOT_FOUND);

    /* remove one: its name is free again, the others still found */
    CHECK_OK(lethe_guard_remove_target(g, 50005));
    CHECK_STATUS(lethe_guard_find(g, "t50005", &id), LETHE_ERR_NOT_FOUND);
    CHECK_OK(lethe_guard_find(g, "t50006", &id));
    CHECK(id == 50006);
    CHECK(lethe_guard_target_count(g) == N - 1 && lethe_guard_answer_count(g) == 10);
    CHECK(lethe_guard_answer(g, 6, &tid) && tid == 60005);

    /* save and load */
    unsigned char *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    CHECK_OK(lethe_guard_save_buf(g, &buf, &len));
    lethe_guard_t *h = NULL;
    CHECK_OK(lethe_guard_load_buf(buf, len, "big", &h));
    CHECK(lethe_guard_target_count(h) == N - 1 && lethe_guard_answer_count(h) == 10);
    CHECK_OK(lethe_guard_find(h, "t77777", &id));
    CHECK(id == 77777);
    CHECK_STATUS(lethe_guard_find(h, "t50005", &id), LETHE_ERR_NOT_FOUND);
    CHECK_OK(lethe_guard_save_buf(h, &buf2, &len2));
    CHECK(len2 == len && !memcmp(buf, buf2, len));
    CHECK_STATUS(lethe_guard_add_target(h, "t12345", NULL, 0, &id), LETHE_ERR_INVALID);
    CHECK_OK(lethe_guard_add_target(h, "t50005", NULL, 0, &id));
    CHECK(id == N);
    free(buf);
    free(buf2);
    lethe_guard_free(h);
    lethe_guard_free(g);
    fprintf(stderr,
            "  note: guard_file_many_targets: %d targets added, found, saved and "
            "loaded in %.3f s\n",
            N, now_s() - t0);
}
