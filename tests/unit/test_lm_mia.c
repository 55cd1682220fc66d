/* Membership inference on GPT models (lethe/lm_mia.h): every attack's score
 * against a direct PyTorch computation on the tiny GPT-2 twin
 * (tests/ref/make_lm_mia_fixture.py writes tests/ref/fixtures/lm_mia.json),
 * the ROC between members and non-members, bad texts and the text files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "../test.h"
#include "lethe/gpt_hf.h"
#include "lethe/json.h"
#include "lethe/lm_mia.h"
#include "lethe/tofu.h"

/* A score computed two ways from the same float32 forward (alone and in a
 * batch, or by the library and by hand): the same bits with lethe's own
 * GEMM, equal within float32 rounding with CBLAS (the sanitizer and portable
 * builds), whose results depend on the shapes multiplied. */
#ifdef __AVX512F__
#define SAME_RTOL 1e-12
#else
#define SAME_RTOL 1e-6
#endif

/* The fixture's model, and its reference: every parameter halved. */
static lethe_status load_pair(lethe_gpt_dir *d, lethe_gpt_dir *r)
{
    lethe_status st = lethe_gpt_dir_load(FIXTURES "gpt_hf_tiny", 1, d);
    if (!st)
        st = lethe_gpt_dir_load(FIXTURES "gpt_hf_tiny", 0, r);
    for (long i = 0; !st && i < r->model->n_params; i++)
        r->model->params[i] *= 0.5f;
    return st;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return v ? v->valuedouble : NAN;
}

/* The scores agree with PyTorch's in float64 to float32 rounding (lethe
 * computes the forward and backward in float32); changing any formula (the
 * token left out, k, the clamp, the sign, the mean over tensors) moves them
 * by far more. */
TEST(lm_mia_scores_match_the_torch_twin)
{
    lethe_gpt_dir d = {0}, r = {0};
    cJSON *root = NULL;
    CHECK_OK(load_pair(&d, &r));
    CHECK_OK(lethe_json_read(FIXTURES "lm_mia.json", &root));
    const cJSON *jt = cJSON_GetObjectItem(root, "texts"), *js = cJSON_GetObjectItem(root, "scores");
    const cJSON *jk = cJSON_GetObjectItem(root, "ks");
    size_t n = (size_t)cJSON_GetArraySize(jt), nm = (size_t)num(root, "n_members");
    CHECK(n >= 8 && nm > 0 && nm < n && cJSON_GetArraySize(js) == (int)n);
    const char *texts[16];
    for (size_t i = 0; i < n && i < 16; i++)
        texts[i] = cJSON_GetArrayItem(jt, (int)i)->valuestring;
    lethe_lm_mia_score a[16], b[16];
    int32_t eot = (int32_t)d.eot;
    /* the twin's tokens */
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        int len = 0;
        const cJSON *want = cJSON_GetObjectItem(cJSON_GetArrayItem(js, (int)i), "ids");
        CHECK_OK(lethe_lm_mia_encode(d.tok, eot, d.model->cfg.n_positions, texts[i], &ids, &len));
        int same = len == cJSON_GetArraySize(want);
        for (int t = 0; same && t < len; t++)
            same = ids[t] == cJSON_GetArrayItem(want, t)->valueint;
        free(ids);
        CHECK_MSG(same, "text %zu: tokens differ from the twin's", i + 1);
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, jk)
    {
        double k = kv->valuedouble;
        CHECK_OK(lethe_lm_mia_scores(d.model, r.model, d.tok, eot, texts, n, k, 3, a));
        CHECK_OK(lethe_lm_mia_gradnorm(d.model, d.tok, eot, texts, n, a));
        /* one text per forward: padding changes nothing */
        CHECK_OK(lethe_lm_mia_scores(d.model, r.model, d.tok, eot, texts, n, k, 1, b));
        char mk[32], mkpp[48];
        snprintf(mk, sizeof mk, "min_k@%g", k);
        snprintf(mkpp, sizeof mkpp, "min_k_plus_plus@%g", k);
        for (size_t i = 0; i < n; i++) {
            const cJSON *w = cJSON_GetArrayItem(js, (int)i);
            const double *s = a[i].score;
            CHECK(a[i].n == (int)num(w, "n"));
            CHECK_CLOSE(s[LETHE_MIA_LOSS], num(w, "loss"), 2e-6, 0);
            CHECK_CLOSE(s[LETHE_MIA_ZLIB], num(w, "zlib"), 2e-6, 0);
            CHECK_CLOSE(s[LETHE_MIA_REFERENCE], num(w, "reference"), 2e-6, 0);
            CHECK_CLOSE(s[LETHE_MIA_MIN_K], num(w, mk), 2e-6, 0);
            CHECK_CLOSE(s[LETHE_MIA_MIN_K_PP], num(w, mkpp), 2e-6, 0);
            CHECK_CLOSE(s[LETHE_MIA_GRADNORM], num(w, "gradnorm"), 1e-6, 0);
            CHECK(a[i].em == num(w, "em") && a[i].es == num(w, "es"));
            for (int t = 0; t < LETHE_MIA_GRADNORM; t++)
                CHECK_MSG(fabs(b[i].score[t] - s[t]) <= SAME_RTOL * fabs(s[t]),
                          "text %zu, %s: batch 1 %.17g, batch 3 %.17g",
                          i + 1, lethe_lm_mia_name(t), b[i].score[t], s[t]);
            CHECK(isnan(b[i].score[LETHE_MIA_GRADNORM]));
        }
    }
    /* the gradients are left zero */
    for (long i = 0; i < d.model->n_params; i++)
        CHECK(d.model->grads[i] == 0.0f);
    /* the ROC at k = the last of ks: members the first nm texts */
    static const int attacks[] = {LETHE_MIA_LOSS, LETHE_MIA_ZLIB, LETHE_MIA_REFERENCE,
                                  LETHE_MIA_GRADNORM, LETHE_MIA_MIN_K, LETHE_MIA_MIN_K_PP};
    const cJSON *roc = cJSON_GetObjectItem(root, "roc");
    for (size_t j = 0; j < sizeof attacks / sizeof *attacks; j++) {
        int at = attacks[j];
        char key[48];
        if (at == LETHE_MIA_MIN_K || at == LETHE_MIA_MIN_K_PP)
            snprintf(key, sizeof key, "%s@%g", lethe_lm_mia_name(at),
                     cJSON_GetArrayItem(jk, cJSON_GetArraySize(jk) - 1)->valuedouble);
        else
            snprintf(key, sizeof key, "%s", lethe_lm_mia_name(at));
        double s[16];
        for (size_t i = 0; i < n; i++)
            s[i] = a[i].score[at];
        lethe_roc_result res;
        CHECK_OK(lethe_lm_mia_roc(s, nm, s + nm, n - nm, &res));
        const cJSON *w = cJSON_GetObjectItem(roc, key);
        CHECK_MSG(w && res.auc == num(w, "auc"), "%s: AUC %.17g, the twin's %.17g", key,
                  res.auc, num(w, "auc"));
        CHECK_CLOSE(res.tpr_at_1fpr, num(w, "tpr_at_1fpr"), 0, 1e-12);
        CHECK_CLOSE(res.tpr_at_5fpr, num(w, "tpr_at_5fpr"), 0, 1e-12);
    }
    cJSON_Delete(root);
    lethe_gpt_dir_free(&d);
    lethe_gpt_dir_free(&r);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* -mean of the max(1, floor(k n)) smallest of v[0..n). */
static double min_k_by_hand(double *v, int n, double k)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    int m = (int)(k * n) > 0 ? (int)(k * n) : 1;
    double s = 0;
    for (int i = 0; i < m; i++)
        s += v[i];
    return -s / m;
}

/* Question-answer pairs laid out as TOFU's metrics read them: every attack
 * over the answer's tokens alone (the closing end-of-text token the last),
 * computed here by hand from one teacher-forced forward of the whole pair
 * and one backward; the prompt's tokens count nowhere. */
TEST(lm_mia_qa_pairs_score_the_answer_tokens)
{
    lethe_gpt_dir d = {0}, r = {0};
    CHECK_OK(load_pair(&d, &r));
    static const char *const q[3] = {"Where?", "Who?", "Why?"};
    static const char *const ans[3] = {"At sea.", "No one.", "Late."};
    const double k = 0.5;
    int32_t *ids[3], eot = (int32_t)d.eot;
    char text[3][96];
    lethe_lm_mia_seq seqs[3];
    for (int i = 0; i < 3; i++) {
        int np = 0, len = 0;
        CHECK_OK(lethe_qa_encode(d.tok, q[i], ans[i], eot, &ids[i], &np, &len));
        snprintf(text[i], sizeof text[i], " %s", ans[i]);
        seqs[i] = (lethe_lm_mia_seq){ids[i], len, np, text[i]};
        CHECK(np > 3 && ids[i][len - 1] == eot);
    }
    lethe_lm_mia_score a[3];
    CHECK_OK(lethe_lm_mia_seq_scores(d.model, r.model, seqs, 3, k, 2, a));
    CHECK_OK(lethe_lm_mia_seq_gradnorm(d.model, seqs, 3, a));
    const int V = d.model->cfg.vocab_size;
    for (int i = 0; i < 3; i++) {
        const int32_t *s = ids[i];
        int T = seqs[i].len - 1, s0 = seqs[i].start - 1, n = T - s0;
        int32_t tgt[128];
        double lp[128], z[128], nll = 0, nll_ref = 0;
        CHECK(T <= 128 && a[i].n == n);
        for (int t = 0; t < T; t++)
            tgt[t] = s[t + 1];
        CHECK_OK(lethe_gpt_forward(r.model, s, tgt, 1, T));
        for (int t = s0; t < T; t++)
            nll_ref -= r.model->logprobs[t];
        CHECK_OK(lethe_gpt_forward(d.model, s, tgt, 1, T));
        for (int t = s0; t < T; t++) {
            double mu, s2;
            lethe_gpt_logit_moments(d.model->logits + (long)t * V, V, &mu, &s2);
            lp[t - s0] = d.model->logprobs[t];
            z[t - s0] = (lp[t - s0] - mu) / sqrt(s2 > 1e-6 ? s2 : 1e-6);
            nll -= lp[t - s0];
        }
        nll /= n, nll_ref /= n;
        uLongf zl = compressBound(strlen(text[i]));
        Bytef buf[256];
        CHECK(compress2(buf, &zl, (const Bytef *)text[i], strlen(text[i]),
                        Z_DEFAULT_COMPRESSION) == Z_OK);
        const double *sc = a[i].score;
        CHECK_CLOSE(sc[LETHE_MIA_LOSS], nll, SAME_RTOL, 0);
        CHECK_CLOSE(sc[LETHE_MIA_ZLIB], nll / (double)zl, SAME_RTOL, 0);
        CHECK_CLOSE(sc[LETHE_MIA_REFERENCE], nll - nll_ref, SAME_RTOL * 1e3, 1e-12);
        CHECK_CLOSE(sc[LETHE_MIA_MIN_K], min_k_by_hand(lp, n - 1, k), SAME_RTOL, 0);
        CHECK_CLOSE(sc[LETHE_MIA_MIN_K_PP], min_k_by_hand(z, n - 1, k), SAME_RTOL, 0);
        /* the gradient of the answer's mean loss without its last token */
        for (int t = 0; t < T; t++)
            tgt[t] = t >= s0 && t < T - 1 ? s[t + 1] : -1;
        CHECK_OK(lethe_gpt_forward(d.model, s, tgt, 1, T));
        lethe_gpt_zero_grad(d.model);
        lethe_gpt_backward(d.model);
        double norms = 0;
        for (int j = 0; j < d.model->n_tensors; j++) {
            double q2 = 0;
            for (long e = 0; e < d.model->tensors[j].numel; e++) {
                double g = d.model->grads[d.model->tensors[j].offset + e];
                q2 += g * g;
            }
            norms += sqrt(q2);
        }
        CHECK_CLOSE(sc[LETHE_MIA_GRADNORM], norms / d.model->n_tensors, SAME_RTOL, 0);
        lethe_gpt_zero_grad(d.model);
    }
    /* a sequence with fewer than 2 scored tokens is named */
    seqs[1].start = seqs[1].len - 1;
    CHECK_STATUS(lethe_lm_mia_seq_scores(d.model, NULL, seqs, 3, k, 2, a), LETHE_ERR_INVALID);
    CHECK_MSG(strstr(lethe_error_detail(), "sequence 2:"), "%s", lethe_error_detail());
    CHECK_STATUS(lethe_lm_mia_seq_gradnorm(d.model, seqs, 3, a), LETHE_ERR_INVALID);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    lethe_gpt_dir_free(&d);
    lethe_gpt_dir_free(&r);
}

/* Members with lower scores than every non-member are told apart: AUC 1,
 * TPR 1 at any FPR; the reverse gives AUC 0. */
TEST(lm_mia_roc_members_are_positives)
{
    const double lo[3] = {1, 2, 3}, hi[4] = {4, 5, 6, 7};
    lethe_roc_result r;
    CHECK_OK(lethe_lm_mia_roc(lo, 3, hi, 4, &r));
    CHECK(r.auc == 1 && r.tpr_at_1fpr == 1 && r.tpr_at_5fpr == 1 && r.n_pos == 3);
    CHECK_OK(lethe_lm_mia_roc(hi, 4, lo, 3, &r));
    CHECK(r.auc == 0 && r.tpr_at_5fpr == 0);
    CHECK_STATUS(lethe_lm_mia_roc(lo, 3, hi, 0, &r), LETHE_ERR_INVALID);
}

TEST(lm_mia_rejects_texts_too_long_or_too_short)
{
    lethe_gpt_dir d = {0};
    CHECK_OK(lethe_gpt_dir_load(FIXTURES "gpt_hf_tiny", 1, &d));
    char longer[128];
    memset(longer, 'q', 40); /* 40 tokens; after the end-of-text token 32 fit */
    longer[40] = 0;
    const char *texts[3] = {"the winter in the north", longer, "a"};
    lethe_lm_mia_score s[3];
    CHECK_STATUS(lethe_lm_mia_scores(d.model, NULL, d.tok, (int32_t)d.eot, texts, 3, 0.4, 2, s),
                 LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "text 2:") && strstr(lethe_error_detail(), "context"));
    CHECK_STATUS(lethe_lm_mia_gradnorm(d.model, d.tok, (int32_t)d.eot, texts + 2, 1, s),
                 LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "text 1:") && strstr(lethe_error_detail(), "at least 2"));
    longer[33] = 0;
    CHECK_STATUS(lethe_lm_mia_scores(d.model, NULL, d.tok, (int32_t)d.eot, texts, 2, 0.4, 2, s),
                 LETHE_ERR_INVALID);
    CHECK_MSG(strstr(lethe_error_detail(), "text 2: the text has 33 tokens, more than the 32"),
              "%s", lethe_error_detail());
    longer[32] = 0;
    CHECK_OK(lethe_lm_mia_scores(d.model, NULL, d.tok, (int32_t)d.eot, texts, 2, 0.4, 2, s));
    CHECK(isnan(s[0].score[LETHE_MIA_REFERENCE]) && s[1].n == 32);
    CHECK_STATUS(lethe_lm_mia_scores(d.model, NULL, d.tok, (int32_t)d.eot, texts, 1, 0, 2, s),
                 LETHE_ERR_INVALID);
    lethe_gpt_dir_free(&d);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TEST(lm_mia_reads_plain_and_json_lines)
{
    char dir[] = "/tmp/lethe-lmmia-XXXXXX", a[64], b[64], c[64], e[64];
    CHECK(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/t.txt", dir);
    snprintf(b, sizeof b, "%s/t.jsonl", dir);
    snprintf(c, sizeof c, "%s/bad.jsonl", dir);
    snprintf(e, sizeof e, "%s/empty.txt", dir);
    write_file(a, "one\n\n  \n{\"text\": \"two\"}\r\nthree");
    write_file(b, "{\"text\": \"one\", \"id\": 3}\n\n\"two\"\n");
    write_file(c, "{\"text\": \"one\"}\n{\"txt\": \"two\"}\n");
    write_file(e, "\n \n");
    char **t = NULL;
    size_t *lines = NULL, n = 0;
    CHECK_OK(lethe_lm_mia_texts_read(a, &t, &lines, &n));
    CHECK(n == 3 && !strcmp(t[1], "{\"text\": \"two\"}") && !strcmp(t[2], "three") &&
          lines[0] == 1 && lines[1] == 4 && lines[2] == 5);
    free(t), free(lines);
    CHECK_OK(lethe_lm_mia_texts_read(b, &t, &lines, &n));
    CHECK(n == 2 && !strcmp(t[0], "one") && !strcmp(t[1], "two") && lines[1] == 3);
    free(t), free(lines);
    CHECK_STATUS(lethe_lm_mia_texts_read(c, &t, &lines, &n), LETHE_ERR_FORMAT);
    CHECK_MSG(strstr(lethe_error_detail(), "bad.jsonl:2") && t == NULL, "%s", lethe_error_detail());
    CHECK_STATUS(lethe_lm_mia_texts_read(e, &t, &lines, &n), LETHE_ERR_FORMAT);
    CHECK(strstr(lethe_error_detail(), "no texts"));
    unlink(a), unlink(b), unlink(c), unlink(e);
    rmdir(dir);
}
