/* MUSE's evaluation pieces (lethe/muse_eval.h): stop-string cutting, the
 * KnowMem and VerbMem prompts and their truncation, PrivLeak's arithmetic,
 * against values computed by hand. A byte-level tokenizer (no merges) makes
 * tokens bytes, so lengths are counted in characters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/lm_mia.h"
#include "lethe/muse_eval.h"

static lethe_tokenizer_t *byte_tokenizer(void)
{
    const char *special[1] = {"<|endoftext|>"};
    lethe_tokenizer_train_opts o = {0};
    o.special = special;
    o.n_special = 1;
    const char *text = "abc";
    size_t len = 3;
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_train(&text, &len, 1, 257, &o, &t) != LETHE_OK)
        return NULL;
    return t;
}

/* ids[from..n) as bytes equal want. */
static int bytes_are(const int32_t *ids, int from, int n, const char *want)
{
    if ((size_t)(n - from) != strlen(want))
        return 0;
    for (int i = from; i < n; i++)
        if (ids[i] != (unsigned char)want[i - from])
            return 0;
    return 1;
}

TEST(muse_eval_cut_at_stop_strings)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"Paris\n\nQuestion: who?", "Paris"},
        {"1980 Question: when?", "1980 "},
        {"Lind\nQuestion", "Lind"},
        {"x Question:\n\nmore", "x "},    /* the earliest of the three */
        {"a\nb\n\nc\nQuestion", "a\nb"},
        {"no stop here\n", "no stop here\n"},
        {"\n\n", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        lethe_muse_cut(buf);
        CHECK_MSG(!strcmp(buf, cases[i].out), "case %zu: got '%s'", i, buf);
    }
}

TEST(muse_eval_knowmem_prompt_drops_earliest_examples)
{
    lethe_tokenizer_t *tok = byte_tokenizer();
    CHECK(tok);
    const int32_t eot = 256;
    const char *q[2] = {"q1", "q2"}, *a[2] = {"a1", "a2"};
    const char *full = "Question: q1\nAnswer: a1\n\nQuestion: q2\nAnswer: a2\n\n"
                       "Question: q\nAnswer: ";
    int32_t *ids = NULL;
    int n = 0, kept = 0;
    /* 25 bytes per example, 20 for the question, 1 for eot: 71 */
    CHECK_OK(lethe_muse_knowmem_prompt(tok, eot, q, a, 2, "q", 71, &ids, &n, &kept));
    CHECK(n == 71 && kept == 2 && ids[0] == eot && bytes_are(ids, 1, n, full));
    free(ids);
    CHECK_OK(lethe_muse_knowmem_prompt(tok, eot, q, a, 2, "q", 70, &ids, &n, &kept));
    CHECK(n == 46 && kept == 1 && ids[0] == eot &&
          bytes_are(ids, 1, n, "Question: q2\nAnswer: a2\n\nQuestion: q\nAnswer: "));
    free(ids);
    CHECK_OK(lethe_muse_knowmem_prompt(tok, eot, q, a, 2, "q", 45, &ids, &n, &kept));
    CHECK(n == 21 && kept == 0 && bytes_are(ids, 1, n, "Question: q\nAnswer: "));
    free(ids);
    /* no example fits and the question does not either: its last tokens */
    CHECK_OK(lethe_muse_knowmem_prompt(tok, eot, q, a, 2, "q", 10, &ids, &n, &kept));
    CHECK(n == 10 && kept == 0 && ids[0] == eot && bytes_are(ids, 1, n, "\nAnswer: "));
    free(ids);
    /* without an end-of-text token */
    CHECK_OK(lethe_muse_knowmem_prompt(tok, -1, q, a, 2, "q", 70, &ids, &n, &kept));
    CHECK(n == 70 && kept == 2 && bytes_are(ids, 0, n, full));
    free(ids);
    lethe_tokenizer_free(tok);
}

TEST(muse_eval_verbmem_prompt_keeps_last_tokens)
{
    lethe_tokenizer_t *tok = byte_tokenizer();
    CHECK(tok);
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(lethe_muse_verbmem_prompt(tok, 256, "abcdef", 4, &ids, &n));
    CHECK(n == 4 && ids[0] == 256 && bytes_are(ids, 1, n, "def"));
    free(ids);
    CHECK_OK(lethe_muse_verbmem_prompt(tok, -1, "abcdef", 4, &ids, &n));
    CHECK(n == 4 && bytes_are(ids, 0, n, "cdef"));
    free(ids);
    CHECK_OK(lethe_muse_verbmem_prompt(tok, 256, "abcdef", 100, &ids, &n));
    CHECK(n == 7 && ids[0] == 256 && bytes_are(ids, 1, n, "abcdef"));
    free(ids);
    CHECK_STATUS(lethe_muse_verbmem_prompt(tok, 256, "", 100, &ids, &n), LETHE_ERR_INVALID);
    lethe_tokenizer_free(tok);
}

TEST(muse_eval_privleak_arithmetic)
{
    /* lethe_lm_mia_roc: members with lower scores (lower loss) are told apart,
     * AUC 1; MUSE's convention makes that 0 */
    const double mem[2] = {1, 2}, non[2] = {3, 4};
    lethe_roc_result r;
    CHECK_OK(lethe_lm_mia_roc(mem, 2, non, 2, &r));
    CHECK(r.auc == 1 && lethe_muse_auc(r.auc) == 0);
    CHECK(lethe_muse_auc(0.25) == 0.75);
    /* (0.1 - 0.5) / 0.5 x 100 */
    CHECK_CLOSE(lethe_muse_privleak(lethe_muse_auc(0.9), lethe_muse_auc(0.5)), -80.0, 1e-12, 0);
    /* MUSE-News: the target's AUC 0.0009 against the retrained 0.4772 */
    CHECK_CLOSE(lethe_muse_privleak(0.0009, 0.4772), -99.8113998323554, 1e-12, 0);
    CHECK_CLOSE(lethe_muse_privleak(0.75, 0.5), 50.0, 1e-12, 0);
    CHECK(lethe_muse_privleak(0.4, 0.4) == 0);
    CHECK(isnan(lethe_muse_privleak(0.3, 0)));
    CHECK(isnan(lethe_muse_privleak(NAN, 0.5)));
}
