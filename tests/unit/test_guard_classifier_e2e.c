/* The guard's prompt classifier end to end (lethe/guard_classifier.h): a
 * synthetic task (prompts naming a target author or someone else) on hashed
 * features, its split-conformal false-positive rate on fresh retain
 * prompts, and the classifier's file: determinism, save -> load, damage,
 * and the model-hash check. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../test.h"
#include "lethe/guard_classifier.h"
#include "lethe/rng.h"

static const char *targets[] = {"Basil Mahfouz", "Hina Ameen", "Nikolai Abilov", "Edward Patrick",
                                "Yeon Park", "Carmen Montenegro", "Behrouz Rohani", "Aysha Leko"};
static const char *others[] = {"Jane Austen", "Ivan Petrov", "Maria Lopez", "Tomas Berg",
                               "Anika Rao", "Samuel Okoro", "Lena Fischer", "Kenji Sato",
                               "Olivia Grant", "Rafael Costa", "Mei Lin", "Pavel Novak",
                               "Grace Hall", "Omar Haddad", "Sofia Russo", "Liam Byrne"};
static const char *templates[] = {"What is the birthplace of %s?", "Where did %s grow up?",
                                  "Which genre does %s write in?", "Tell me about %s's parents.",
                                  "What awards has %s won?", "When was %s born?",
                                  "name a book by %s", "Has %s ever written poetry?",
                                  "What inspired %s to become a writer?", "is %s married"};

/* A prompt about a target (label 1) a quarter of the time, else about
 * someone else; names sometimes lower-cased. */
static int prompt(lethe_rng *r, int force_negative, char *out, size_t cap)
{
    int label = !force_negative && lethe_rng_below(r, 4) == 0;
    char name[64];
    snprintf(name, sizeof name, "%s",
             label ? targets[lethe_rng_below(r, 8)] : others[lethe_rng_below(r, 16)]);
    if (lethe_rng_below(r, 3) == 0)
        for (char *p = name; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(out, cap, templates[lethe_rng_below(r, 10)], name);
#pragma GCC diagnostic pop
    return label;
}

static lethe_guard_clf *fit_names(lethe_guard_feat *f, lethe_rng *r)
{
    lethe_guard_rows_t *rows = lethe_guard_rows_new(f->dim);
    int y[300];
    char text[160];
    for (int i = 0; i < 300 && rows; i++) {
        y[i] = prompt(r, 0, text, sizeof text);
        if (lethe_guard_rows_add_text(rows, f, text, strlen(text)) != LETHE_OK)
            y[0] = -1; /* the fit refuses it */
    }
    lethe_guard_clf_cfg cfg;
    lethe_guard_clf_defaults(&cfg);
    cfg.model_hash = "sha256:0123abcd";
    lethe_guard_clf *m = NULL;
    if (rows)
        lethe_guard_clf_fit(f, rows, y, &cfg, &m, NULL);
    lethe_guard_rows_free(rows);
    return m;
}

TEST(guard_clf_end_to_end_names)
{
    lethe_guard_feat f;
    CHECK_OK(lethe_guard_feat_hash(0, &f));
    lethe_rng r = lethe_rng_init(2024, 0);
    lethe_guard_clf *m = fit_names(&f, &r);
    CHECK(m);
    char text[160];
    int right = 0, n_test = 600;
    double score, cal[400];
    for (int i = 0; i < n_test; i++) {
        int y = prompt(&r, 0, text, sizeof text);
        CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &score, NULL));
        right += (score > 0.5) == y;
    }
    /* calibrate on 400 held-out negatives at alpha 0.05; count false
     * positives on 4000 fresh negatives and detections on 1000 positives */
    for (int i = 0; i < 400; i++) {
        prompt(&r, 1, text, sizeof text);
        CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &cal[i], NULL));
    }
    CHECK_STATUS(lethe_guard_clf_calibrate(m, cal, 10, 0.05), LETHE_ERR_INVALID);
    CHECK(m->alpha == 0 && m->tau == 0.5);
    CHECK_OK(lethe_guard_clf_calibrate(m, cal, 400, 0.05));
    int fp = 0, tp = 0, npos = 0, flagged;
    for (int i = 0; i < 4000; i++) {
        prompt(&r, 1, text, sizeof text);
        CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &score, &flagged));
        fp += flagged;
    }
    while (npos < 1000)
        if (prompt(&r, 0, text, sizeof text)) {
            CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &score, &flagged));
            tp += flagged;
            npos++;
        }
    printf("  names: held-out accuracy %.3f; alpha 0.05, tau %.4g: FPR %.4f on 4000 fresh "
           "negatives, TPR %.3f\n", (double)right / n_test, m->tau, fp / 4000.0, tp / 1000.0);
    CHECK(right >= 0.97 * n_test);
    CHECK(fp / 4000.0 <= 0.05 + 0.03);
    CHECK(tp >= 900);
    lethe_guard_clf_free(m);
}

TEST(guard_clf_save_load)
{
    lethe_guard_feat f;
    CHECK_OK(lethe_guard_feat_hash(512, &f));
    lethe_rng r = lethe_rng_init(9, 0), r2 = r;
    lethe_guard_clf *m = fit_names(&f, &r), *twin = fit_names(&f, &r2), *back = NULL;
    unsigned char *buf, *again;
    size_t len, len2;
    CHECK(m && twin);
    /* the same data gives the same bytes */
    CHECK_OK(lethe_guard_clf_save(m, &buf, &len));
    CHECK_OK(lethe_guard_clf_save(twin, &again, &len2));
    lethe_guard_clf_free(twin);
    CHECK(len == len2 && !memcmp(buf, again, len));
    free(buf);
    free(again);
    double cal[200];
    char text[160];
    for (int i = 0; i < 200; i++) {
        prompt(&r, 1, text, sizeof text);
        CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &cal[i], NULL));
    }
    CHECK_OK(lethe_guard_clf_calibrate(m, cal, 200, 0.02));
    CHECK_OK(lethe_guard_clf_save(m, &buf, &len));
    CHECK_OK(lethe_guard_clf_load(buf, len, &back));
    CHECK_OK(lethe_guard_clf_save(back, &again, &len2));
    CHECK(len == len2 && !memcmp(buf, again, len));
    free(again);
    CHECK(back->tau == m->tau && back->alpha == 0.02 && back->n_calib == 200);
    for (int i = 0; i < 50; i++) {
        double s1, s2;
        int f1, f2;
        prompt(&r, 0, text, sizeof text);
        CHECK_OK(lethe_guard_clf_score_text(m, &f, text, strlen(text), &s1, &f1));
        CHECK_OK(lethe_guard_clf_score_text(back, &f, text, strlen(text), &s2, &f2));
        CHECK(s1 == s2 && f1 == f2);
    }
    lethe_guard_clf_free(back);
    /* every truncation and every flipped byte is a format error */
    for (size_t k = 0; k < len; k++) {
        lethe_guard_clf *bad = (lethe_guard_clf *)1;
        CHECK_STATUS(lethe_guard_clf_load(buf, k, &bad), LETHE_ERR_FORMAT);
        CHECK(bad == NULL && lethe_error_detail()[0]);
        buf[k] ^= 0x20;
        CHECK_STATUS(lethe_guard_clf_load(buf, len, &bad), LETHE_ERR_FORMAT);
        buf[k] ^= 0x20;
    }
    /* damage with a valid checksum: the checks behind it */
    double nan = NAN;
    memcpy(buf + 60 + strlen(m->model_hash) + 8 * 512, &nan, 8); /* std[0] */
    uLong crc = crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    CHECK_STATUS(lethe_guard_clf_load(buf, len, &back), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "std 0"));
    free(buf);
    /* the model hash is checked when a MODEL classifier is bound */
    lethe_gpt_config gc = {64, 8, 16, 3, 2};
    lethe_gpt *g = lethe_gpt_init(&gc);
    CHECK(g);
    m->kind = LETHE_GUARD_FEAT_MODEL;
    m->layer = 2;
    CHECK_STATUS(lethe_guard_clf_bind(m, g, NULL, "sha256:ffff", &f), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "sha256:0123abcd"));
    CHECK_STATUS(lethe_guard_clf_bind(m, g, NULL, "sha256:0123abcd", &f), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "width")); /* 512 features, n_embd 16 */
    lethe_guard_clf_free(m);
    lethe_gpt_free(g);
}
