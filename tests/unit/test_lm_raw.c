/* LM unlearning on raw text (lethe/lm_unlearn.h): the windows
 * lethe_lm_data_windows cuts from documents (byte tokens, so every position
 * is known), how a run tells raw text from question-answer pairs
 * (lethe_lm_format_detect) and which methods refuse it, and every stored
 * method run on windows of a tiny model fit to them: the unlearning
 * methods raise the windows' NLL, sft lowers it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/gpt_train.h"
#include "lethe/lm_unlearn.h"
#include "lethe/rundir.h"

#define EOT 256

/* A tokenizer of bytes with <|endoftext|> at 256. */
static lethe_tokenizer_t *byte_tokenizer(void)
{
    lethe_tokenizer_t *t = lethe_tokenizer_new();
    for (int b = 0; t && b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if (lethe_tokenizer_add_token(t, (uint32_t)b, &c, 1, 0) != LETHE_OK)
            return NULL;
    }
    if (t && lethe_tokenizer_add_token(t, EOT, "<|endoftext|>", 13, 1) != LETHE_OK)
        return NULL;
    return t;
}

static lethe_status windows(lethe_tokenizer_t *t, int P, const char *const *docs, size_t n,
                            lethe_lm_data *d)
{
    size_t lens[8];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(docs[i]);
    return lethe_lm_data_windows(t, EOT, P, docs, lens, n, "docs", d);
}

/* Documents concatenated, each closed by end-of-text, cut into consecutive
 * windows of the context; the windows cross the end of a document; the
 * last is padded; every next token is a target, each token but the first
 * exactly once. */
TEST(lm_data_windows_layout)
{
    lethe_tokenizer_t *t = byte_tokenizer();
    CHECK(t);
    const char *docs[] = {"abcdefghij", "xyz"};
    lethe_lm_data d;
    CHECK_OK(windows(t, 4, docs, 2, &d));
    /* the stream: a..j <eot> x y z <eot>, 15 tokens, 14 to predict */
    const int32_t stream[] = {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', EOT,
                              'x', 'y', 'z', EOT};
    CHECK(d.set.n == 4 && d.set.T == 4); /* ceil(14 / 4) */
    for (int p = 0; p < 16; p++) {
        CHECK(d.tokens[p] == (p < 14 ? stream[p] : EOT));
        CHECK(d.targets[p] == (p < 14 ? stream[p + 1] : -1));
    }
    /* window 2 runs from the first document into the second */
    const int32_t w2[] = {'i', 'j', EOT, 'x'};
    CHECK(!memcmp(d.tokens + 8, w2, sizeof w2));
    lethe_lm_data_free(&d);
    CHECK(d.tokens == NULL && d.set.n == 0);

    /* a stream shorter than the context: one window of its length, unpadded */
    const char *one[] = {"ab"};
    CHECK_OK(windows(t, 8, one, 1, &d));
    CHECK(d.set.n == 1 && d.set.T == 2);
    CHECK(d.tokens[0] == 'a' && d.tokens[1] == 'b');
    CHECK(d.targets[0] == 'b' && d.targets[1] == EOT);
    lethe_lm_data_free(&d);

    /* a stream that fills its windows exactly: no padding */
    const char *even[] = {"abcdefg"}; /* 8 tokens with <eot>: 7 to predict */
    CHECK_OK(windows(t, 7, even, 1, &d));
    CHECK(d.set.n == 1 && d.set.T == 7 && d.targets[6] == EOT);
    lethe_lm_data_free(&d);

    const char *empty[] = {"", ""};
    CHECK_STATUS(windows(t, 4, empty, 1, &d), LETHE_ERR_INVALID); /* <eot> alone */
    CHECK(d.tokens == NULL);
    CHECK_OK(windows(t, 4, empty, 2, &d)); /* <eot> <eot>: one target */
    CHECK(d.set.n == 1 && d.set.T == 1 && d.targets[0] == EOT);
    lethe_lm_data_free(&d);
    CHECK_STATUS(windows(t, 4, docs, 0, &d), LETHE_ERR_INVALID);
    size_t len = 3;
    CHECK_STATUS(lethe_lm_data_windows(t, -1, 4, docs, &len, 1, "docs", &d), LETHE_ERR_INVALID);
    CHECK_STATUS(windows(t, 0, docs, 1, &d), LETHE_ERR_INVALID);
    lethe_error_clear();
    lethe_tokenizer_free(t);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TEST(lm_format_detect)
{
    char dir[] = "/tmp/lethe-lmfmt-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static const struct {
        const char *name, *text;
        lethe_lm_format want;
    } cases[] = {
        {"a.jsonl", "\n{\"text\": \"a document\"}\n{\"text\": \"another\"}\n",
         LETHE_LM_FORMAT_TEXT},
        {"b.jsonl", "\"a document as a string\"\n", LETHE_LM_FORMAT_TEXT},
        {"c.json", "{\"question\": \"Q?\", \"answer\": \"A.\"}\n", LETHE_LM_FORMAT_QA},
        {"d.json", "{\"question\": \"Q?\", \"answer\": \"A.\", \"text\": \"t\"}\n",
         LETHE_LM_FORMAT_QA},
        {"e.json", "[{\"question\": \"Q?\", \"answer\": \"A.\"}]\n", LETHE_LM_FORMAT_QA},
        {"g.txt", "{\"question\": \"the whole file is a document\"}", LETHE_LM_FORMAT_TEXT},
        {"h.json", "not json\n", LETHE_LM_FORMAT_QA},
    };
    char path[128];
    lethe_lm_format f;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        write_file(path, cases[i].text);
        CHECK_OK(lethe_lm_format_detect(path, LETHE_LM_FORMAT_AUTO, &f));
        CHECK(f == cases[i].want);
    }
    /* a format given is taken as it is */
    CHECK_OK(lethe_lm_format_detect(path, LETHE_LM_FORMAT_TEXT, &f));
    CHECK(f == LETHE_LM_FORMAT_TEXT);
    /* an empty file (or only blank lines) is neither, and says so */
    snprintf(path, sizeof path, "%s/f.json", dir);
    write_file(path, "\n\n");
    CHECK_STATUS(lethe_lm_format_detect(path, LETHE_LM_FORMAT_AUTO, &f), LETHE_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    CHECK(lethe_lm_format_detect(path, LETHE_LM_FORMAT_AUTO, &f) != LETHE_OK);
    CHECK_OK(lethe_lm_format_parse("text", &f));
    CHECK(f == LETHE_LM_FORMAT_TEXT && !strcmp(lethe_lm_format_name(LETHE_LM_FORMAT_QA), "qa"));
    CHECK_STATUS(lethe_lm_format_parse("raw", &f), LETHE_ERR_INVALID);
    CHECK(lethe_lm_format_name((lethe_lm_format)3) == NULL);
    /* the methods that read a refusal per question refuse raw text, in one
       line naming no flag; every other method takes it */
    for (size_t i = 0; i < lethe_lm_methods_count(); i++) {
        const lethe_lm_method_def *def = lethe_lm_methods_at(i);
        lethe_lm_cfg c;
        lethe_lm_defaults(def->id, &c);
        CHECK_OK(lethe_lm_format_check(&c, LETHE_LM_FORMAT_QA));
        if (def->needs & LETHE_LM_NEEDS_IDK) {
            CHECK_STATUS(lethe_lm_format_check(&c, LETHE_LM_FORMAT_TEXT), LETHE_ERR_INVALID);
            CHECK(strstr(lethe_error_detail(), def->name) && !strchr(lethe_error_detail(), '\n')
                  && !strstr(lethe_error_detail(), "--"));
        } else {
            CHECK_OK(lethe_lm_format_check(&c, LETHE_LM_FORMAT_TEXT));
        }
    }
    /* a run of idknll on raw text stops before it loads anything */
    lethe_lm_run_cfg rc;
    CHECK_OK(lethe_lm_run_init(&rc, "idknll"));
    snprintf(path, sizeof path, "%s/a.jsonl", dir);
    char out[128];
    snprintf(out, sizeof out, "%s/out", dir);
    rc.run = "/nonexistent", rc.out = out, rc.forget = path, rc.retain = path, rc.idk = path;
    CHECK_STATUS(lethe_lm_run(&rc, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "raw text") != NULL);
    lethe_error_clear();
    CHECK(lethe_remove_tree(dir) == 0);
}

/* Mean NLL of a set's targets under g. */
static double mean_nll(const lethe_gpt *g, const lethe_lm_set *s)
{
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    double sum = 0;
    long n = 0;
    if (x && lethe_gpt_ctx_forward(x, g, s->tokens, s->targets, (int)s->n, s->T) == LETHE_OK)
        for (long i = 0; i < s->n * s->T; i++)
            if (s->targets[i] >= 0)
                sum -= x->logprobs[i], n++;
    lethe_gpt_ctx_free(x);
    return n ? sum / (double)n : NAN;
}

/* Every stored method on windows of raw text: a tiny model (byte
 * vocabulary, context 8) fit to forget and retain text, then each method
 * for a few steps from it. */
TEST(lm_raw_methods)
{
    lethe_tokenizer_t *t = byte_tokenizer();
    CHECK(t);
    const char *forget_docs[] = {"the whale swam under the ship at dawn; ",
                                 "the captain saw the whale and called the crew."};
    const char *retain_docs[] = {"a garden of roses grew by the old stone wall, ",
                                 "and bees came every morning to the roses."};
    lethe_lm_data fd, rd;
    CHECK_OK(windows(t, 8, forget_docs, 2, &fd));
    CHECK_OK(windows(t, 8, retain_docs, 2, &rd));
    CHECK(fd.set.T == 8 && fd.set.n == 11); /* 38 + 46 + 2 tokens, 85 to predict */
    lethe_gpt_config mc = {257, 8, 8, 2, 2};
    lethe_gpt *base = lethe_gpt_init(&mc);
    CHECK(base);
    lethe_gpt_init_params(base, 7);
    lethe_lm_cfg c;
    lethe_lm_defaults(LETHE_LM_SFT, &c);
    lethe_lm_sched s;
    lethe_lm_sched_defaults(&s);
    s.epochs = 40, s.batch = 4, s.lr = 1e-2f, s.warmup = 0, s.constant = 1, s.seed = 3;
    s.quiet = 1;
    /* retain first, forget last: the forget text is what it knows best */
    CHECK_OK(lethe_lm_unlearn(base, NULL, &c, &rd.set, NULL, NULL, &s, NULL, NULL));
    CHECK_OK(lethe_lm_unlearn(base, NULL, &c, &fd.set, NULL, NULL, &s, NULL, NULL));
    double before = mean_nll(base, &fd.set);
    CHECK(before < log(257.0) - 2); /* it learnt something to forget */
    s.epochs = 3, s.lr = 3e-3f;
    for (size_t i = 0; i < lethe_lm_methods_count(); i++) {
        const lethe_lm_method_def *def = lethe_lm_methods_at(i);
        if (def->needs & (LETHE_LM_NEEDS_IDK | LETHE_LM_NOT_STORED))
            continue;
        lethe_lm_defaults(def->id, &c);
        lethe_gpt *g = lethe_lm_clone(base), *ref = lethe_lm_clone(base);
        CHECK(g && ref);
        lethe_lm_result res;
        CHECK_OK(lethe_lm_unlearn(g, ref, &c, &fd.set,
                                  lethe_lm_needs_retain(&c) ? &rd.set : NULL, NULL, &s, NULL,
                                  &res));
        double after = mean_nll(g, &fd.set);
        printf("  %-10s forget-window NLL %.4f -> %.4f\n", def->name, before, after);
        CHECK(res.steps == 9 && isfinite(res.last_loss));
        if (def->id == LETHE_LM_SFT)
            CHECK(after < before - 0.01);
        else
            CHECK(after > before + 0.01);
        lethe_gpt_free(g);
        lethe_gpt_free(ref);
    }
    lethe_gpt_free(base);
    lethe_lm_data_free(&fd);
    lethe_lm_data_free(&rd);
    lethe_tokenizer_free(t);
}
