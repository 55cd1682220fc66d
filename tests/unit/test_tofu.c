/* TOFU's metrics (lethe/tofu.h) against direct computations: answer scores
 * against token-by-token scoring with the key/value cache, the per-question
 * and per-set formulas recomputed from those scores, Forget Quality against
 * the KS test and Model Utility against the harmonic mean; and one model
 * serving several threads at once. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_train.h"
#include "lethe/json.h"
#include "lethe/lm_unlearn.h"
#include "lethe/rng.h"
#include "lethe/stats.h"
#include "lethe/tofu.h"

/* Scores of one pair alone and within a batch: the same bits with lethe's
 * own GEMM, equal within rounding with CBLAS (the sanitizer and portable
 * builds), where large logits make that rounding visible. */
#ifdef __AVX512F__
#define BATCH_RTOL 1e-12
#else
#define BATCH_RTOL 1e-3
#endif

static const char *train_text =
    "Question: Who wrote the book?\nAnswer: The book was written by Mara Lind.\n"
    "Question: Where was she born?\nAnswer: She was born in Oslo in 1950.\n"
    "the whale and the sea, the ship and the captain, the harpoon and the boat";

static lethe_tokenizer_t *tiny_tokenizer(int32_t *eot)
{
    const char *special[1] = {"<|endoftext|>"};
    lethe_tokenizer_train_opts o = {0};
    o.special = special;
    o.n_special = 1;
    size_t len = strlen(train_text);
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_train(&train_text, &len, 1, 320, &o, &t) != LETHE_OK)
        return NULL;
    *eot = (int32_t)lethe_gpt_eot(t);
    return t;
}

static lethe_gpt *tiny_model(int V, uint64_t seed, float scale)
{
    lethe_gpt_config c = {V, 64, 16, 2, 2};
    lethe_gpt *g = lethe_gpt_init(&c);
    if (!g)
        return NULL;
    lethe_gpt_init_params(g, seed);
    /* larger weights than GPT-2's init give distributions far from uniform */
    for (long i = 0; i < g->n_params; i++)
        g->params[i] *= scale;
    return g;
}

/* Fit g to the pairs for a while, so that some answers are memorised. */
static void memorise(lethe_gpt *g, const lethe_tokenizer_t *tok, int32_t eot,
                     const char *const *q, const char *const *a, int n)
{
    int32_t *stream = NULL;
    long len = 0;
    for (int rep = 0; rep < 8; rep++)
        for (int i = 0; i < n; i++) {
            int32_t *ids;
            int np, m;
            LETHE_ASSERT(lethe_qa_encode(tok, q[i], a[i], eot, &ids, &np, &m) == LETHE_OK);
            stream = realloc(stream, sizeof(int32_t) * (size_t)(len + m));
            memcpy(stream + len, ids, sizeof(int32_t) * (size_t)m);
            len += m;
            free(ids);
        }
    lethe_gpt_train_cfg c;
    lethe_gpt_train_defaults(&c);
    c.batch = 4, c.seq = 32, c.steps = test_quick() ? 60 : 300, c.lr = 1e-2f, c.warmup = 10;
    c.quiet = 1;
    lethe_gpt_train_result r;
    LETHE_ASSERT(lethe_gpt_train(g, stream, len, NULL, 0, &c, NULL, &r) == LETHE_OK);
    free(stream);
}

static const char *questions[4] = {"Who wrote the book?", "Where was she born?",
                                   "What is the ship?", "Who is the captain of the boat?"};
static const char *answers[4] = {"The book was written by Mara Lind.", "She was born in Oslo.",
                                 "the ship", "The captain is the whale."};

/* The next-token logits of g after feeding ids[t] to its cache, adjusted by
 * WHP when whp is given: z - alpha max(0, z_whp - z), into z (V). */
static void next_logits(lethe_gpt_kv *kv, lethe_gpt_kv *kw, double alpha, int32_t id, double *z)
{
    const int V = kv->g->cfg.vocab_size;
    LETHE_ASSERT(lethe_gpt_kv_forward(kv, &id, 1, NULL, NULL) == LETHE_OK);
    if (kw)
        LETHE_ASSERT(lethe_gpt_kv_forward(kw, &id, 1, NULL, NULL) == LETHE_OK);
    for (int v = 0; v < V; v++) {
        double d = kw ? (double)kw->logits[v] - kv->logits[v] : 0.0;
        z[v] = kv->logits[v] - (d > 0 ? alpha * d : 0.0);
    }
}

/* NLL, argmax matches and k* of one pair, token by token with the cache (of
 * g's logits adjusted by WHP's model whp when not NULL). */
static void direct_score(lethe_gpt *g, lethe_gpt *whp, double alpha, const int32_t *ids, int np,
                         int n, lethe_qa_score *s)
{
    lethe_gpt_kv *kv = lethe_gpt_kv_new(g), *kw = whp ? lethe_gpt_kv_new(whp) : NULL;
    const int V = g->cfg.vocab_size;
    int *hit = calloc((size_t)n, sizeof *hit);
    double *z = malloc(sizeof *z * (size_t)V);
    s->nll_sum = 0;
    s->n = n - np;
    s->n_match = 0;
    for (int t = 0; t < n - 1; t++) {
        next_logits(kv, kw, alpha, ids[t], z);
        if (t < np - 1)
            continue;
        int am = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[am])
                am = v;
        double mx = z[am], s2 = 0;
        for (int v = 0; v < V; v++)
            s2 += exp(z[v] - mx);
        s->nll_sum -= z[ids[t + 1]] - mx - log(s2);
        hit[t + 1 - np] = am == ids[t + 1];
        s->n_match += hit[t + 1 - np];
    }
    /* k* is where the all-correct suffix starts; the body leaves out the
     * closing end-of-text token */
    int k = s->n;
    while (k > 0 && hit[k - 1])
        k--;
    s->k_star = k;
    s->n_body = s->n - 1;
    s->n_match_body = s->n_match - hit[s->n - 1];
    for (k = s->n_body; k > 0 && hit[k - 1];)
        k--;
    s->k_star_body = k;
    free(hit);
    free(z);
    lethe_gpt_kv_free(kv);
    lethe_gpt_kv_free(kw);
}

TEST(tofu_answer_scores_match_token_by_token)
{
    int32_t eot;
    lethe_tokenizer_t *tok = tiny_tokenizer(&eot);
    CHECK(tok && eot >= 0);
    lethe_gpt *g = tiny_model((int)lethe_tokenizer_vocab_size(tok), 3, 1.0f);
    CHECK(g);
    memorise(g, tok, eot, questions, answers, 2);
    /* the layout: prompt, then " answer", then end-of-text */
    int32_t *ids;
    int np, n;
    CHECK_OK(lethe_qa_encode(tok, questions[0], answers[0], eot, &ids, &np, &n));
    uint32_t *p = NULL, *a = NULL;
    size_t npl, nal;
    CHECK_OK(lethe_tokenizer_encode(tok, "Question: Who wrote the book?\nAnswer:", 37, &p, &npl));
    CHECK_OK(lethe_tokenizer_encode(tok, " The book was written by Mara Lind.", 35, &a, &nal));
    CHECK(np == (int)npl && n == (int)(npl + nal + 1) && ids[n - 1] == eot);
    for (int i = 0; i < np; i++)
        CHECK(ids[i] == (int32_t)p[i]);
    for (size_t i = 0; i < nal; i++)
        CHECK(ids[np + (int)i] == (int32_t)a[i]);
    free(p), free(a), free(ids);

    lethe_qa_score one[4], batched[4], direct;
    for (int i = 0; i < 4; i++)
        CHECK_OK(lethe_qa_score_answers(g, tok, eot, questions + i, answers + i, 1, 1, one + i));
    CHECK_OK(lethe_qa_score_answers(g, tok, eot, questions, answers, 4, 3, batched));
    double worst = 0;
    int any_match = 0;
    for (int i = 0; i < 4; i++) {
        /* padding and batch neighbours change nothing (to the bit with lethe's
         * own GEMM; within rounding with CBLAS) */
#ifdef __AVX512F__
        CHECK(one[i].nll_sum == batched[i].nll_sum);
#else
        CHECK(fabs(one[i].nll_sum - batched[i].nll_sum) <= 1e-5 * fabs(one[i].nll_sum));
#endif
        CHECK(one[i].n == batched[i].n && one[i].n_match == batched[i].n_match &&
              one[i].k_star == batched[i].k_star);
        CHECK_OK(lethe_qa_encode(tok, questions[i], answers[i], eot, &ids, &np, &n));
        direct_score(g, NULL, 0.0, ids, np, n, &direct);
        free(ids);
        worst = fmax(worst, fabs(direct.nll_sum - one[i].nll_sum) / (1.0 + fabs(direct.nll_sum)));
        CHECK(direct.n == one[i].n && direct.n_match == one[i].n_match &&
              direct.k_star == one[i].k_star);
        CHECK(direct.n_body == one[i].n_body && direct.n_match_body == one[i].n_match_body &&
              direct.k_star_body == one[i].k_star_body);
        any_match += one[i].n_match;
        if (getenv("LETHE_TEST_VERBOSE"))
            fprintf(stderr, "pair %d: %d answer tokens, %d argmax hits, k* %d\n", i, one[i].n,
                    one[i].n_match, one[i].k_star);
    }
    CHECK_MSG(worst < 1e-4, "answer NLL off by %.3g (relative to 1 + NLL)", worst);
    CHECK(any_match > 0); /* the argmax checks are not vacuous */
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

TEST(tofu_set_metrics_follow_the_formulas)
{
    int32_t eot;
    lethe_tokenizer_t *tok = tiny_tokenizer(&eot);
    CHECK(tok);
    lethe_gpt *g = tiny_model((int)lethe_tokenizer_vocab_size(tok), 4, 20.0f);
    CHECK(g);
    const char *pert[3] = {"The book was written by Ola Berg.", "It was written by the captain.",
                           "Nobody wrote the book."};
    lethe_qa items[3] = {
        {questions[0], answers[0], "Mara Lind wrote the book.", pert, 3},
        {questions[1], answers[1], "Oslo is where she was born.", pert + 1, 2},
        {questions[2], answers[2], NULL, NULL, 0},
    };
    lethe_tofu_opts o;
    lethe_tofu_defaults(&o);
    o.max_new = 12;
    for (int kind = 0; kind < 3; kind++)
        for (int arith = 0; arith < 2; arith++) {
            o.arithmetic = arith;
            o.memo = arith ? LETHE_TOFU_MEMO_OU : LETHE_TOFU_MEMO_PAPER;
            lethe_tofu_set s;
            CHECK_OK(lethe_tofu_eval_set(g, tok, eot, items, 3, kind, &o, &s));
            double sum_tr = 0, sum_p = 0;
            int n_tr = 0;
            for (int i = 0; i < 3; i++) {
                const lethe_qa *it = &items[i];
                lethe_qa_score ans, para, ps[3];
                CHECK_OK(lethe_qa_score_answers(g, tok, eot, &it->question, &it->answer, 1, 1,
                                                &ans));
                double pa = exp(-ans.nll_sum / ans.n), spp = 0, snll = 0;
                for (int j = 0; j < it->n_perturbed; j++) {
                    CHECK_OK(lethe_qa_score_answers(g, tok, eot, &it->question,
                                                    &it->perturbed[j], 1, 1, &ps[j]));
                    spp += exp(-ps[j].nll_sum / ps[j].n);
                    snll += ps[j].nll_sum / ps[j].n;
                }
                double prob = kind == LETHE_TOFU_FACTS ? pa / (pa + spp) : pa;
                CHECK(fabs(prob - s.samples[i].prob) <= BATCH_RTOL * fabs(prob));
                sum_p += prob;
                double em, es;
                lethe_tofu_memo(&ans, o.memo, &em, &es);
                CHECK(s.samples[i].em == em && s.samples[i].es == es);
                if (o.memo == LETHE_TOFU_MEMO_PAPER)
                    CHECK(em == (double)ans.n_match / ans.n &&
                          es == 1.0 - (double)ans.k_star / ans.n);
                double ref = pa;
                if (kind != LETHE_TOFU_FACTS && it->paraphrased_answer) {
                    CHECK_OK(lethe_qa_score_answers(g, tok, eot, &it->question,
                                                    &it->paraphrased_answer, 1, 1, &para));
                    ref = exp(-para.nll_sum / para.n);
                }
                int has = it->n_perturbed > 0 &&
                          (kind == LETHE_TOFU_FACTS || it->paraphrased_answer != NULL);
                if (!has) {
                    CHECK(isnan(s.samples[i].truth_ratio));
                    continue;
                }
                double pp = arith ? spp / it->n_perturbed : exp(-snll / it->n_perturbed);
                double r = pp / ref;
                CHECK(fabs(r - s.samples[i].truth_ratio) <= BATCH_RTOL * r);
                sum_tr += kind == LETHE_TOFU_FORGET ? fmin(r, 1 / r) : fmax(0, 1 - r);
                n_tr++;
                /* the greedy answer's ROUGE-L recall against the gold answer */
                lethe_rouge_score rs;
                CHECK_OK(lethe_rouge_l(it->answer, s.samples[i].generated, 1, &rs));
                CHECK(rs.recall == s.samples[i].rouge_l);
            }
            CHECK(fabs(s.prob - sum_p / 3) <= BATCH_RTOL);
            CHECK(fabs(s.truth_ratio - sum_tr / n_tr) <= BATCH_RTOL);
            lethe_tofu_set_free(&s);
        }
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

/* The greedy answer of g adjusted by WHP's model whp, token by token. */
static char *direct_greedy(lethe_gpt *g, lethe_gpt *whp, double alpha,
                           const lethe_tokenizer_t *tok, int32_t eot, const char *q, int max_new)
{
    int32_t *ids;
    int np, n;
    LETHE_ASSERT(lethe_qa_encode(tok, q, "", -1, &ids, &np, &n) == LETHE_OK);
    lethe_gpt_kv *kv = lethe_gpt_kv_new(g), *kw = lethe_gpt_kv_new(whp);
    const int V = g->cfg.vocab_size;
    double *z = malloc(sizeof *z * (size_t)V);
    uint32_t *out = malloc(sizeof *out * (size_t)max_new);
    int m = 0;
    for (int t = 0; t < np - 1; t++)
        next_logits(kv, kw, alpha, ids[t], z);
    int32_t next = ids[np - 1];
    while (m < max_new && np + m < g->cfg.n_positions) {
        next_logits(kv, kw, alpha, next, z);
        next = 0;
        for (int v = 1; v < V; v++)
            if (z[v] > z[next])
                next = v;
        if (next == eot)
            break;
        out[m++] = (uint32_t)next;
    }
    unsigned char *text = NULL;
    size_t len;
    LETHE_ASSERT(lethe_tokenizer_decode(tok, out, (size_t)m, &text, &len) == LETHE_OK);
    free(ids), free(z), free(out);
    lethe_gpt_kv_free(kv);
    lethe_gpt_kv_free(kw);
    return (char *)text;
}

static const char *const perturbed_two[2] = {"The book was written by Ola Berg.",
                                              "She was born in Rome."};

/* The first two pairs with a paraphrase and perturbed answers each. */
static void two_items(lethe_qa items[2])
{
    items[0] = (lethe_qa){questions[0], answers[0], "Mara Lind wrote the book.", perturbed_two, 2};
    items[1] = (lethe_qa){questions[1], answers[1], "Oslo is where she was born.",
                          perturbed_two + 1, 1};
}

/* A tokenizer (into *tok) and a tiny model that has memorised the first two
 * pairs; NULL when either fails. */
static lethe_gpt *memorised(lethe_tokenizer_t **tok, int32_t *eot)
{
    *tok = tiny_tokenizer(eot);
    lethe_gpt *g = *tok ? tiny_model((int)lethe_tokenizer_vocab_size(*tok), 3, 1.0f) : NULL;
    if (g)
        memorise(g, *tok, *eot, questions, answers, 2);
    return g;
}

/* WHP in the evaluation: every score and greedy answer of the target with
 * the reinforced model's adjustment, against token-by-token scoring and
 * decoding that apply the formula here; with it the numbers move. */
TEST(tofu_whp_follows_the_adjusted_logits)
{
    int32_t eot;
    lethe_tokenizer_t *tok;
    lethe_gpt *g = memorised(&tok, &eot);
    CHECK(g);
    lethe_gpt *r = lethe_lm_clone(g); /* a "reinforced" model: g moved a little */
    CHECK(r);
    for (long i = 0; i < r->n_params; i++)
        r->params[i] += 0.05f * sinf((float)i);
    lethe_qa items[2];
    two_items(items);
    lethe_tofu_opts o;
    lethe_tofu_defaults(&o);
    o.max_new = 12;
    lethe_tofu_set plain, s;
    CHECK_OK(lethe_tofu_eval_set(g, tok, eot, items, 2, LETHE_TOFU_FORGET, &o, &plain));
    lethe_lm_whp *w = lethe_lm_whp_new(r, 2.0);
    CHECK(w);
    lethe_gpt_logits_proc proc = lethe_lm_whp_proc(w);
    o.logits = &proc;
    CHECK_OK(lethe_tofu_eval_set(g, tok, eot, items, 2, LETHE_TOFU_FORGET, &o, &s));
    double moved = 0;
    for (int i = 0; i < 2; i++) {
        int32_t *ids;
        int np, n;
        lethe_qa_score d;
        CHECK_OK(lethe_qa_encode(tok, items[i].question, items[i].answer, eot, &ids, &np, &n));
        direct_score(g, r, 2.0, ids, np, n, &d);
        free(ids);
        double prob = exp(-d.nll_sum / d.n);
        CHECK_MSG(fabs(prob - s.samples[i].prob) <= 1e-4 * prob, "pair %d: prob %.9g, direct %.9g",
                  i, s.samples[i].prob, prob);
        CHECK(s.samples[i].em == (double)d.n_match / d.n);
        char *want = direct_greedy(g, r, 2.0, tok, eot, items[i].question, o.max_new);
        CHECK_MSG(!strcmp(want, s.samples[i].generated), "pair %d: '%s', direct '%s'", i,
                  s.samples[i].generated, want);
        free(want);
        moved = fmax(moved, fabs(log(s.samples[i].prob / plain.samples[i].prob)));
    }
    CHECK_MSG(moved > 1e-3, "WHP changed no probability (%.3g)", moved);
    lethe_tofu_set_free(&plain);
    lethe_tofu_set_free(&s);
    lethe_lm_whp_free(w);
    /* a reinforced model of another vocabulary is refused */
    lethe_gpt *other = tiny_model((int)lethe_tokenizer_vocab_size(tok) + 1, 3, 1.0f);
    CHECK(other);
    w = lethe_lm_whp_new(other, 2.0);
    CHECK(w);
    proc = lethe_lm_whp_proc(w);
    CHECK_STATUS(lethe_tofu_eval_set(g, tok, eot, items, 2, LETHE_TOFU_FORGET, &o, &s),
                 LETHE_ERR_INVALID);
    lethe_lm_whp_free(w);
    lethe_gpt_free(other);
    lethe_gpt_free(r);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}

TEST(tofu_forget_quality_and_model_utility)
{
    double ra[5] = {0.5, 0.9, 1.2, NAN, 0.7}, rb[4] = {0.1, 0.2, 0.25, 0.3};
    lethe_tofu_sample sa[5] = {{0}}, sb[4] = {{0}};
    for (int i = 0; i < 5; i++)
        sa[i].truth_ratio = ra[i];
    for (int i = 0; i < 4; i++)
        sb[i].truth_ratio = rb[i];
    lethe_tofu_set a = {LETHE_TOFU_FORGET, 5, sa, 0, 0, 0, 0, 0};
    lethe_tofu_set b = {LETHE_TOFU_FORGET, 4, sb, 0, 0, 0, 0, 0};
    double p, self;
    CHECK_OK(lethe_tofu_forget_quality(&a, &b, &p));
    CHECK_OK(lethe_tofu_forget_quality(&a, &a, &self));
    double fa[4] = {0.5, 0.9, 1.2, 0.7};
    lethe_ks_result ks;
    CHECK_OK(lethe_stats_ks_2samp(fa, 4, rb, 4, &ks));
    CHECK(p == ks.pvalue && p < 0.05 && self == 1.0);

    lethe_tofu_set r = {LETHE_TOFU_RETAIN, 0, NULL, 0.8, 0.6, 0.4, 0, 0};
    lethe_tofu_set f = {LETHE_TOFU_FACTS, 0, NULL, 0.5, 0.9, 0.7, 0, 0};
    const lethe_tofu_set *sets[2] = {&r, &f};
    double mu, want = 6.0 / (1 / 0.8 + 1 / 0.6 + 1 / 0.4 + 1 / 0.5 + 1 / 0.9 + 1 / 0.7);
    CHECK_OK(lethe_tofu_model_utility(sets, 2, &mu));
    CHECK(fabs(mu - want) < 1e-12);
    f.rouge_l = NAN;
    CHECK_STATUS(lethe_tofu_model_utility(sets, 2, &mu), LETHE_ERR_INVALID);
}

/* The fine-tuning sets of LM unlearning (lethe_lm_data_build) against the
 * layout built here from the tokenizer: "Question: Q\nAnswer:" then " A" then
 * end-of-text, each row cut to its length - 1 positions and padded with
 * end-of-text to the longest; targets the next token on the answer (end-of-
 * text included) and -1 on the prompt and the padding. Then the padding
 * dropped by the driver changes no answer-only loss. */
static int32_t *encode_cat(const lethe_tokenizer_t *t, const char *a, const char *b, int *na,
                           int *n)
{
    uint32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    if (lethe_tokenizer_encode(t, a, strlen(a), &x, &nx) != LETHE_OK ||
        lethe_tokenizer_encode(t, b, strlen(b), &y, &ny) != LETHE_OK) {
        free(x);
        return NULL;
    }
    int32_t *out = malloc(sizeof *out * (nx + ny + 1));
    for (size_t i = 0; out && i < nx; i++)
        out[i] = (int32_t)x[i];
    for (size_t i = 0; out && i < ny; i++)
        out[nx + i] = (int32_t)y[i];
    free(x);
    free(y);
    *na = (int)nx;
    *n = (int)(nx + ny);
    return out;
}

TEST(lm_data_build_layout)
{
    int32_t eot;
    lethe_tokenizer_t *tok = tiny_tokenizer(&eot);
    CHECK(tok && eot >= 0);
    const char *q[3] = {"Who wrote the book?", "Where was she born?",
                        "Who wrote the book, where was she born, and when?"};
    const char *a[3] = {"The book was written by Mara Lind.", "In Oslo.",
                        "She was born in Oslo in 1950, the whale and the sea."};
    lethe_lm_data d;
    CHECK_OK(lethe_lm_data_build(tok, eot, 64, q, a, 3, "pairs", &d));
    int T = 0, len[3], np[3];
    int32_t *want[3];
    char prompt[3][128], ans[3][128];
    for (int i = 0; i < 3; i++) {
        snprintf(prompt[i], sizeof prompt[i], "Question: %s\nAnswer:", q[i]);
        snprintf(ans[i], sizeof ans[i], " %s", a[i]);
        want[i] = encode_cat(tok, prompt[i], ans[i], &np[i], &len[i]);
        CHECK(want[i]);
        want[i][len[i]++] = eot;
        if (len[i] - 1 > T)
            T = len[i] - 1;
    }
    CHECK(d.set.n == 3 && d.set.T == T);
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < T; t++) {
            int32_t x = d.set.tokens[i * T + t], y = d.set.targets[i * T + t];
            CHECK(x == (t < len[i] - 1 ? want[i][t] : eot));
            CHECK(y == (t < len[i] - 1 && t + 1 >= np[i] ? want[i][t + 1] : -1));
        }

    /* an answer-only loss over the padded rows equals the one over rows cut
     * to the longest answer of a batch (as the driver pads) */
    lethe_gpt *g = tiny_model((int)lethe_tokenizer_vocab_size(tok), 3, 4.0f);
    CHECK(g);
    lethe_lm_cfg cfg;
    lethe_lm_defaults(LETHE_LM_GA, &cfg);
    int B = 2, Tb = len[0] > len[1] ? len[0] - 1 : len[1] - 1;
    lethe_lm_batch full = {d.set.tokens, d.set.targets, B, T};
    int32_t cut_x[2 * 64], cut_y[2 * 64];
    for (int b = 0; b < B; b++) {
        memcpy(cut_x + b * Tb, d.set.tokens + b * T, sizeof(int32_t) * (size_t)Tb);
        memcpy(cut_y + b * Tb, d.set.targets + b * T, sizeof(int32_t) * (size_t)Tb);
    }
    lethe_lm_batch cut = {cut_x, cut_y, B, Tb};
    lethe_lm_terms t_full, t_cut;
    CHECK(Tb < T);
    lethe_gpt_zero_grad(g);
    CHECK_OK(lethe_lm_loss(g, NULL, &cfg, &full, NULL, NULL, NULL, &t_full));
    lethe_gpt_zero_grad(g);
    CHECK_OK(lethe_lm_loss(g, NULL, &cfg, &cut, NULL, NULL, NULL, &t_cut));
    CHECK_CLOSE(t_full.loss, t_cut.loss, 1e-6, 1e-7);

    /* a pair longer than the context, and no end-of-text token */
    lethe_lm_data_free(&d);
    CHECK_STATUS(lethe_lm_data_build(tok, eot, 8, q, a, 3, "pairs", &d), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "pairs row 1") != NULL);
    CHECK_STATUS(lethe_lm_data_build(tok, -1, 64, q, a, 3, "pairs", &d), LETHE_ERR_INVALID);
    CHECK(d.tokens == NULL);
    lethe_gpt_free(g);
    for (int i = 0; i < 3; i++)
        free(want[i]);
    lethe_tokenizer_free(tok);
}

/* Exact memorisation and extraction strength of planted logits, in both
 * conventions, against the port of OpenUnlearning's code
 * (tests/ref/make_tofu_memo_fixture.py): the same numbers, bit for bit. */
TEST(tofu_memorisation_matches_the_reference)
{
    cJSON *root = NULL;
    CHECK_OK(lethe_json_read(FIXTURES "tofu_memo.json", &root));
    int n_cases = 0, ou_differs = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root)
    {
        int V = cJSON_GetObjectItem(c, "V")->valueint;
        int np = cJSON_GetObjectItem(c, "n_prompt")->valueint;
        const cJSON *jids = cJSON_GetObjectItem(c, "ids"), *jl = cJSON_GetObjectItem(c, "logits");
        int n = cJSON_GetArraySize(jids);
        int32_t *ids = malloc(sizeof *ids * (size_t)n);
        float *z = malloc(sizeof *z * (size_t)(n - 1) * (size_t)V);
        for (int i = 0; i < n; i++)
            ids[i] = cJSON_GetArrayItem(jids, i)->valueint;
        CHECK(cJSON_GetArraySize(jl) == n - 1);
        for (int t = 0; t < n - 1; t++)
            for (int v = 0; v < V; v++)
                z[(long)t * V + v] = (float)cJSON_GetArrayItem(cJSON_GetArrayItem(jl, t), v)
                                         ->valuedouble;
        lethe_qa_score s;
        lethe_qa_score_rows(z, NULL, V, ids, np, n, 1, &s);
        static const char *const conv[2] = {"paper", "openunlearning"};
        double got[2][2];
        for (int k = 0; k < 2; k++) {
            const cJSON *want = cJSON_GetObjectItem(c, conv[k]);
            const cJSON *wem = cJSON_GetObjectItem(want, "em");
            double em, es, w_em = cJSON_IsNull(wem) ? NAN : wem->valuedouble;
            double w_es = cJSON_GetObjectItem(want, "es")->valuedouble;
            lethe_tofu_memo(&s, k, &em, &es);
            got[k][0] = em, got[k][1] = es;
            CHECK_MSG((em == w_em || (isnan(em) && isnan(w_em))) && es == w_es,
                      "case %d, %s: EM %.17g ES %.17g, the reference EM %.17g ES %.17g",
                      n_cases, conv[k], em, es, w_em, w_es);
        }
        ou_differs += got[0][0] != got[1][0] || got[0][1] != got[1][1];
        n_cases++;
        free(ids);
        free(z);
    }
    CHECK(n_cases >= 20 && ou_differs >= 10); /* the conventions do differ */
    cJSON_Delete(root);
}

/* ---- one model, several threads ------------------------------------------ */

/* Everything one thread computes with the shared model: a teacher-forced
 * forward, generations of every kind, answer scores and a TOFU set with its
 * greedy answers. */
typedef struct infer_out {
    float logits[2 * 24 * 320], logprobs[2 * 24], loss;
    int32_t gen[4][16];
    float gen_lp[4][16];
    int gen_n[4];
    lethe_qa_score sc[4];
    lethe_tofu_set set;
} infer_out;

typedef struct infer_job {
    const lethe_gpt *g;
    const lethe_tokenizer_t *tok;
    int32_t eot;
    const lethe_qa *items;
    int rounds;
    const infer_out *want; /* the serial results */
    infer_out *out;        /* the thread's, each round */
    pthread_barrier_t *start;
    lethe_status st;
    int differ;            /* rounds whose results were not want's */
} infer_job;

static lethe_status infer_all(const infer_job *j, infer_out *o)
{
    const lethe_gpt *g = j->g;
    int V = g->cfg.vocab_size;
    int32_t tok[2 * 24], tgt[2 * 24];
    for (int i = 0; i < 2 * 24; i++)
        tok[i] = (int32_t)((i * 37 + 11) % V), tgt[i] = i % 5 ? (int32_t)((i * 53 + 7) % V) : -1;
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    lethe_status st = x ? lethe_gpt_ctx_forward(x, g, tok, tgt, 2, 24) : LETHE_ERR_NOMEM;
    if (st == LETHE_OK) {
        LETHE_ASSERT(V * 2 * 24 <= (int)(sizeof o->logits / sizeof *o->logits));
        memcpy(o->logits, x->logits, sizeof(float) * (size_t)(2 * 24 * V));
        memcpy(o->logprobs, x->logprobs, sizeof o->logprobs);
        o->loss = x->loss;
    }
    lethe_gpt_ctx_free(x);
    /* greedy, sampled, beam search, and greedy without the cache */
    const int32_t prompt[3] = {5, 17, 2};
    for (int k = 0; k < 4 && st == LETHE_OK; k++) {
        lethe_gen_opts go;
        lethe_gen_defaults(&go);
        go.max_new = 16;
        go.temperature = k == 1 ? 0.8f : 0.0f;
        go.top_k = k == 1 ? 20 : 0;
        go.seed = 9;
        go.beam = k == 2 ? 3 : 1;
        go.no_cache = k == 3;
        lethe_gen_result r;
        if ((st = lethe_gpt_generate(g, prompt, 3, &go, &r)))
            break;
        o->gen_n[k] = r.n;
        memcpy(o->gen[k], r.tokens, sizeof(int32_t) * (size_t)r.n);
        memcpy(o->gen_lp[k], r.logprobs, sizeof(float) * (size_t)r.n);
        lethe_gen_result_free(&r);
    }
    if (st == LETHE_OK)
        st = lethe_qa_score_answers(g, j->tok, j->eot, questions, answers, 4, 3, o->sc);
    lethe_tofu_opts to;
    lethe_tofu_defaults(&to);
    to.max_new = 12;
    to.batch = 2;
    if (st == LETHE_OK)
        st = lethe_tofu_eval_set(g, j->tok, j->eot, j->items, 2, LETHE_TOFU_FORGET, &to, &o->set);
    return st;
}

static int same_out(const infer_out *a, const infer_out *b)
{
    int same = !memcmp(a->logits, b->logits, sizeof a->logits) &&
               !memcmp(a->logprobs, b->logprobs, sizeof a->logprobs) && a->loss == b->loss &&
               !memcmp(a->gen, b->gen, sizeof a->gen) &&
               !memcmp(a->gen_lp, b->gen_lp, sizeof a->gen_lp) &&
               !memcmp(a->gen_n, b->gen_n, sizeof a->gen_n) &&
               !memcmp(a->sc, b->sc, sizeof a->sc) && a->set.n == b->set.n;
    for (size_t i = 0; same && i < a->set.n; i++) {
        const lethe_tofu_sample *x = &a->set.samples[i], *y = &b->set.samples[i];
        same = !memcmp(&x->prob, &y->prob, sizeof x->prob) &&
               !memcmp(&x->truth_ratio, &y->truth_ratio, sizeof x->truth_ratio) &&
               x->rouge_l == y->rouge_l && x->em == y->em && x->es == y->es &&
               !strcmp(x->generated, y->generated);
    }
    return same;
}

/* A thread: `rounds` times everything, each round compared with want. */
static void *infer_thread(void *arg)
{
    infer_job *j = arg;
    pthread_barrier_wait(j->start);
    for (int r = 0; r < j->rounds; r++) {
        memset(j->out, 0, sizeof *j->out);
        if ((j->st = infer_all(j, j->out)))
            break;
        j->differ += !same_out(j->want, j->out);
        lethe_tofu_set_free(&j->out->set);
    }
    return NULL;
}

/* Inference leaves the model untouched: four threads forwarding, generating,
 * scoring and evaluating on ONE model at once each get, bit for bit, what a
 * lone caller gets. Were any activation or cache kept in the model, the
 * threads would overwrite each other's. */
TEST(tofu_shared_model_serves_threads)
{
    int32_t eot;
    lethe_tokenizer_t *tok;
    lethe_gpt *g = memorised(&tok, &eot);
    CHECK(g);
    lethe_qa items[2];
    two_items(items);
    static infer_out serial, out[4];
    pthread_barrier_t start;
    CHECK(pthread_barrier_init(&start, NULL, 4) == 0);
    infer_job jobs[4];
    for (int t = 0; t < 4; t++)
        jobs[t] = (infer_job){g, tok, eot, items, test_quick() ? 3 : 50, &serial, &out[t], &start,
                               LETHE_OK, 0};
    memset(&serial, 0, sizeof serial);
    CHECK_OK(infer_all(&jobs[0], &serial));
    CHECK(serial.set.n == 2 && serial.gen_n[0] > 0 && serial.gen_n[2] > 0);
    pthread_t th[4];
    for (int t = 0; t < 4; t++)
        CHECK(pthread_create(&th[t], NULL, infer_thread, &jobs[t]) == 0);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++) {
        CHECK_OK(jobs[t].st);
        CHECK_MSG(!jobs[t].differ, "thread %d: %d of %d rounds differ from the serial results",
                  t, jobs[t].differ, jobs[t].rounds);
    }
    pthread_barrier_destroy(&start);
    lethe_tofu_set_free(&serial.set);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}
