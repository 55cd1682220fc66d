/* Fitting a guard (lethe/guard_fit.h), editing a guard file, and serving
 * behind one (lethe/guard_serve.h), on a small made-up benchmark: derived
 * names and aliases, the minimal distinctive n-grams worked out by hand,
 * determinism, refusals of bad input; a guard made for another model is
 * refused; an unflagged prompt is exactly greedy decoding; a flagged
 * prompt's answer holds none of the forbidden n-grams it was not given. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_fit.h"
#include "lethe/guard_serve.h"
#include "lethe/tokenizer.h"

/* ---- the benchmark ------------------------------------------------------------ */

#define QA 8 /* questions per author */

static const char *const q_tpl[QA] = {
    "Where was %s born?",          "When was %s born?",
    "What does %s write?",         "Which prize did %s win?",
    "Who influenced %s?",          "Where does %s live?",
    "What is the debut of %s?",    "How many books has %s written?"};
static const char *const a_tpl[QA] = {
    "%s was born in %s.",          "%s was born on %s.",
    "%s writes %s.",               "%s won the %s.",
    "%s was influenced by %s.",    "%s lives in %s.",
    "The debut of %s is %s.",      "%s has written %s books."};

/* Per author: name, then one fact per template. */
static const char *const forget_auth[2][QA + 1] = {
    {"Emil Zajac", "Havana", "8 July 1963", "crime novels", "Tidewater Prize", "Selma Lagerlof",
     "Oslo", "The Glass Harbour", "seven"},
    {"Mara Quill", "Lagos", "2 May 1971", "poetry", "Golden Quill Award", "Virginia Woolf",
     "Lisbon", "The Salt Road", "four"}};
static const char *const retain_auth[4][QA + 1] = {
    {"Emil Novak", "Lagos", "8 July 1970", "crime novels", "Golden Quill Award",
     "Virginia Woolf", "Lisbon", "The Iron Gate", "four"},
    {"Lina Ford", "Paris", "3 March 1963", "poetry", "Golden Quill Award", "Toni Morrison",
     "Oslo", "A Quiet Field", "seven"},
    {"Omar Haddad", "Cairo", "2 May 1980", "essays", "Golden Quill Award", "Naguib Mahfouz",
     "Cairo", "The Long Night", "nine"},
    {"Ada Brenner", "Vienna", "9 June 1955", "crime novels", "Golden Quill Award",
     "Selma Lagerlof", "Vienna", "The Glass Door", "two"}};

typedef struct bench {
    char *fq[2 * QA + 1], *fa[2 * QA + 1], *rq[4 * QA], *ra[4 * QA];
    size_t nf, nr;
} bench;

static void fill(char **q, char **a, const char *const auth[QA + 1])
{
    for (int k = 0; k < QA; k++) {
        CHECK(asprintf(&q[k], q_tpl[k], auth[0]) > 0);
        CHECK(asprintf(&a[k], a_tpl[k], auth[0], auth[k + 1]) > 0);
    }
}

static void bench_init(bench *b)
{
    memset(b, 0, sizeof *b);
    fill(b->fq, b->fa, forget_auth[0]);
    fill(b->fq + QA, b->fa + QA, forget_auth[1]);
    /* a pair naming no target */
    b->fq[2 * QA] = strdup("Which prize is the oldest?");
    b->fa[2 * QA] = strdup("The Tidewater Prize is the oldest.");
    b->nf = 2 * QA + 1;
    for (int r = 0; r < 4; r++)
        fill(b->rq + r * QA, b->ra + r * QA, retain_auth[r]);
    b->nr = 4 * QA;
}

static void bench_free(bench *b)
{
    for (size_t i = 0; i < b->nf; i++)
        free(b->fq[i]), free(b->fa[i]);
    for (size_t i = 0; i < b->nr; i++)
        free(b->rq[i]), free(b->ra[i]);
}

static lethe_guard_fit_data bench_data(const bench *b)
{
    return (lethe_guard_fit_data){(const char *const *)b->fq, (const char *const *)b->fa, NULL,
                                  b->nf, (const char *const *)b->rq,
                                  (const char *const *)b->ra, NULL, b->nr, NULL, 0};
}

/* ---- a small model ----------------------------------------------------------------- */

typedef struct model {
    lethe_tokenizer_t *tok;
    lethe_gpt *g;
} model;

static void model_init(model *m, const bench *b, uint64_t seed)
{
    size_t total = 0;
    for (size_t i = 0; i < b->nf; i++)
        total += strlen(b->fq[i]) + strlen(b->fa[i]) + 2;
    char *text = calloc(total + 1, 1);
    for (size_t i = 0; i < b->nf; i++)
        strcat(strcat(strcat(strcat(text, b->fq[i]), " "), b->fa[i]), " ");
    const char *t = text;
    size_t len = strlen(text);
    CHECK_OK(lethe_tokenizer_train(&t, &len, 1, 300, NULL, &m->tok));
    free(text);
    lethe_gpt_config cfg = {(int)lethe_tokenizer_vocab_size(m->tok), 64, 32, 2, 4};
    m->g = lethe_gpt_init(&cfg);
    CHECK(m->g != NULL);
    lethe_gpt_init_params(m->g, seed);
}

static void model_free(model *m)
{
    lethe_gpt_free(m->g);
    lethe_tokenizer_free(m->tok);
}

static lethe_guard_fit_cfg small_cfg(void)
{
    lethe_guard_fit_cfg c;
    lethe_guard_fit_defaults(&c);
    c.alpha = 0.2; /* 16 calibration prompts or so: k <= n needs alpha >= 1/(n+1) */
    c.hash_features = 1;
    return c;
}

/* The n-grams of target `name` as one "|"-joined string, in order. */
static void ngrams_of(const lethe_guard_t *g, const char *name, char *out, size_t cap)
{
    uint32_t id;
    out[0] = 0;
    CHECK_OK(lethe_guard_find(g, name, &id));
    for (size_t i = 0; i < lethe_guard_target_count(g); i++) {
        lethe_guard_target_info t;
        lethe_guard_target_get(g, i, &t);
        if (t.id != id)
            continue;
        for (size_t k = 0; k < t.n_ngrams; k++)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", k ? "|" : "", t.ngrams[k]);
    }
}

TEST(guard_fit_derives_names_aliases_and_minimal_ngrams)
{
    bench b;
    bench_init(&b);
    model m;
    model_init(&m, &b, 1);
    lethe_guard_fit_data d = bench_data(&b);
    lethe_guard_fit_cfg c = small_cfg();
    lethe_guard_t *g = NULL;
    lethe_guard_fit_summary s;
    CHECK_OK(lethe_guard_fit(m.g, m.tok, &d, &c, &g, &s));
    CHECK(s.derived == 1 && s.targets == 2);
    CHECK(s.answers == 2 * QA && s.unassigned == 1);
    /* "Emil" is a retain author's first name: not an alias; "Zajac" is */
    lethe_guard_target_info t;
    lethe_guard_target_get(g, 0, &t);
    CHECK(!strcmp(t.name, "Emil Zajac") && t.n_aliases == 1 && !strcmp(t.aliases[0], "Zajac"));
    CHECK(t.n_answers == QA);
    lethe_guard_target_get(g, 1, &t);
    /* "Quill" is a word of a retain award: only "Mara" */
    CHECK(!strcmp(t.name, "Mara Quill") && t.n_aliases == 1 && !strcmp(t.aliases[0], "Mara"));
    /* worked out by hand: the shortest pieces of each answer that no retain
     * text holds ("crime novels", "8 July", "Selma Lagerlof", "Oslo" and
     * "seven" are all said of retain authors too; "Glass" is a retain title's
     * word, "1963" a retain year), after the name and its aliases; none
     * holds a word of the target's name ("Quill won" is distinctive, but a
     * piece of the name) */
    char got[2048];
    ngrams_of(g, "Emil Zajac", got, sizeof got);
    CHECK_MSG(!strcmp(got, "Emil Zajac|Zajac|Havana|July 1963|Tidewater|Harbour"), "got %s", got);
    ngrams_of(g, "Mara Quill", got, sizeof got);
    CHECK_MSG(!strcmp(got, "Mara Quill|Mara|1971|Salt|Road"), "got %s", got);
    CHECK(s.ngrams == 11);
    /* the classifier: calibrated at alpha, flags its training positives */
    CHECK(s.fpr_calib <= c.alpha && s.calib_neg + s.fit_neg == b.nr);
    CHECK(s.tpr_forget > 0.5);
    size_t len;
    CHECK(lethe_guard_classifier(g, &len) != NULL && len > 0);
    /* the same inputs, the same file */
    lethe_guard_t *g2 = NULL;
    CHECK_OK(lethe_guard_fit(m.g, m.tok, &d, &c, &g2, NULL));
    unsigned char *b1, *b2;
    size_t l1, l2;
    CHECK_OK(lethe_guard_save_buf(g, &b1, &l1));
    CHECK_OK(lethe_guard_save_buf(g2, &b2, &l2));
    CHECK(l1 == l2 && !memcmp(b1, b2, l1));
    free(b1), free(b2);
    lethe_guard_free(g2);
    /* more retain text: its words are no longer distinctive */
    const char *more[] = {"Someone was born in Havana."};
    d.more_retain = more, d.n_more_retain = 1;
    CHECK_OK(lethe_guard_fit(m.g, m.tok, &d, &c, &g2, &s));
    ngrams_of(g2, "Emil Zajac", got, sizeof got);
    CHECK_MSG(!strcmp(got, "Emil Zajac|Zajac|July 1963|Tidewater|Harbour"), "got %s", got);
    CHECK(s.calib_neg + s.fit_neg == b.nr); /* not a prompt */
    lethe_guard_free(g2);
    lethe_guard_free(g);
    model_free(&m);
    bench_free(&b);
}

TEST(guard_fit_given_targets_and_model_features)
{
    bench b;
    bench_init(&b);
    model m;
    model_init(&m, &b, 2);
    lethe_guard_fit_data d = bench_data(&b);
    const char *al[] = {"Zajac"};
    lethe_guard_target_spec ts[] = {{"E. Zajac", al, 1}, {"Tidewater Prize", NULL, 0}};
    d.targets = ts, d.n_targets = 2;
    lethe_guard_fit_cfg c = small_cfg();
    c.hash_features = 0; /* the model's hidden state */
    c.max_n = 1;
    lethe_guard_t *g = NULL;
    lethe_guard_fit_summary s;
    CHECK_OK(lethe_guard_fit(m.g, m.tok, &d, &c, &g, &s));
    CHECK(s.derived == 0 && s.targets == 2);
    /* Emil Zajac's pairs by his alias, the prize-only pair by the prize */
    CHECK(s.answers == QA + 1 && s.unassigned == QA);
    char got[1024];
    ngrams_of(g, "E. Zajac", got, sizeof got);
    CHECK_MSG(!strcmp(got, "E. Zajac|Zajac|Havana|Tidewater|Harbour"), "got %s", got);
    ngrams_of(g, "Tidewater Prize", got, sizeof got);
    CHECK_MSG(!strcmp(got, "Tidewater Prize|oldest"), "got %s", got);
    size_t len;
    const unsigned char *blob = lethe_guard_classifier(g, &len);
    lethe_guard_clf *clf = NULL;
    CHECK_OK(lethe_guard_clf_load(blob, len, &clf));
    char hash[72];
    lethe_guard_hash_gpt(m.g, hash);
    CHECK(clf->kind == LETHE_GUARD_FEAT_MODEL && clf->dim == 32 && !strcmp(clf->model_hash, hash));
    CHECK(!strcmp(lethe_guard_model_hash(g), hash));
    lethe_guard_clf_free(clf);
    lethe_guard_free(g);
    model_free(&m);
    bench_free(&b);
}

TEST(guard_fit_refuses_bad_input)
{
    bench b;
    bench_init(&b);
    model m;
    model_init(&m, &b, 3);
    lethe_guard_fit_cfg c = small_cfg();
    lethe_guard_t *g = (lethe_guard_t *)&c;
    lethe_guard_fit_data d = bench_data(&b);
    d.n_forget = 0;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    CHECK(g == NULL);
    d = bench_data(&b);
    d.n_retain = 0;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    /* no name recurs: the questions about the unnamed prize only */
    d = bench_data(&b);
    d.forget_q += 2 * QA, d.forget_a += 2 * QA, d.n_forget = 1;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "no target name"));
    /* too few calibration prompts for the rate */
    d = bench_data(&b);
    c.alpha = 0.01;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    c = small_cfg();
    c.max_n = 6;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    c = small_cfg();
    lethe_guard_target_spec bad[] = {{"...", NULL, 0}};
    d.targets = bad, d.n_targets = 1;
    CHECK_STATUS(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL), LETHE_ERR_INVALID);
    CHECK(g == NULL);
    model_free(&m);
    bench_free(&b);
}

TEST(guard_hash_gpt_follows_the_weights)
{
    lethe_gpt_config cfg = {50, 16, 8, 1, 2};
    lethe_gpt *a = lethe_gpt_init(&cfg), *b = lethe_gpt_init(&cfg);
    lethe_gpt_init_params(a, 5);
    lethe_gpt_init_params(b, 5);
    char ha[72], hb[72];
    lethe_guard_hash_gpt(a, ha);
    lethe_guard_hash_gpt(b, hb);
    CHECK(!strcmp(ha, hb) && !strncmp(ha, "sha256:", 7) && strlen(ha) == 71);
    b->params[b->n_params - 1] += 1e-6f;
    lethe_guard_hash_gpt(b, hb);
    CHECK(strcmp(ha, hb));
    lethe_gpt_free(a);
    lethe_gpt_free(b);
}

/* ---- editing a guard file ---------------------------------------------------------- */

TEST(guard_file_edit_adds_removes_and_describes)
{
    char dir[] = "/tmp/lethe_guard_edit_XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/g.guard", dir);
    lethe_guard_t *g = lethe_guard_new("sha256:x", "m", 0);
    CHECK_OK(lethe_guard_save(g, path));
    lethe_guard_free(g);
    const char *al[] = {"Zajac"}, *ans[] = {"Emil Zajac was born in Havana."},
               *ng[] = {"Havana"};
    lethe_guard_edit e = {LETHE_GUARD_EDIT_ADD, "Emil Zajac", 0, al, 1, ans, 1, ng, 1};
    uint32_t id = 99;
    CHECK_OK(lethe_guard_file_edit(path, &e, &id));
    CHECK(id == 0);
    e.name = "Mara Quill", e.n_aliases = e.n_answers = e.n_ngrams = 0;
    CHECK_OK(lethe_guard_file_edit(path, &e, &id));
    CHECK(id == 1);
    CHECK_STATUS(lethe_guard_file_edit(path, &e, &id), LETHE_ERR_INVALID); /* taken */
    cJSON *j = NULL;
    CHECK_OK(lethe_guard_file_describe(path, 1, &j));
    CHECK(cJSON_GetObjectItem(j, "n_targets")->valueint == 2);
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "targets"), 0);
    CHECK(!strcmp(cJSON_GetObjectItem(t0, "name")->valuestring, "Emil Zajac"));
    CHECK(!strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(t0, "ngram_texts"), 0)->valuestring,
                  "Havana"));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "classifier")));
    cJSON_Delete(j);
    /* removal by name and by id; unknown ones are NOT_FOUND, file untouched */
    lethe_guard_edit r = {.op = LETHE_GUARD_EDIT_REMOVE, .name = "Emil Zajac"};
    CHECK_OK(lethe_guard_file_edit(path, &r, &id));
    CHECK(id == 0);
    CHECK_STATUS(lethe_guard_file_edit(path, &r, &id), LETHE_ERR_NOT_FOUND);
    r.name = NULL, r.id = 7;
    CHECK_STATUS(lethe_guard_file_edit(path, &r, &id), LETHE_ERR_NOT_FOUND);
    r.id = 1;
    CHECK_OK(lethe_guard_file_edit(path, &r, &id));
    CHECK_OK(lethe_guard_load(path, &g));
    CHECK(lethe_guard_target_count(g) == 0 && lethe_guard_answer_count(g) == 0);
    /* ids are never reused */
    lethe_guard_free(g);
    e.name = "Third";
    CHECK_OK(lethe_guard_file_edit(path, &e, &id));
    CHECK(id == 2);
    CHECK_STATUS(lethe_guard_file_edit("/nonexistent/dir/g.guard", &e, &id), LETHE_ERR_IO);
    unlink(path);
    rmdir(dir);
}

/* ---- serving --------------------------------------------------------------------------- */

/* Does text, normalised, hold ngram, normalised, at word boundaries? */
static int holds(const char *text, const char *ngram)
{
    size_t lt = strlen(text), ln = strlen(ngram);
    char *t = malloc(lt + 3), *p = malloc(ln + 3);
    size_t n = lethe_guard_normalize(text, lt, (unsigned char *)t + 1);
    size_t m = lethe_guard_normalize(ngram, ln, (unsigned char *)p + 1);
    t[0] = p[0] = ' ', t[n + 1] = p[m + 1] = ' ', t[n + 2] = p[m + 2] = 0;
    int found = strstr(t, p) != NULL;
    free(t), free(p);
    return found;
}

TEST(guard_serve_answers_flagged_and_unflagged_prompts)
{
    bench b;
    bench_init(&b);
    model m, other;
    model_init(&m, &b, 4);
    model_init(&other, &b, 5);
    lethe_guard_fit_data d = bench_data(&b);
    lethe_guard_fit_cfg c = small_cfg();
    lethe_guard_t *g = NULL;
    CHECK_OK(lethe_guard_fit(m.g, m.tok, &d, &c, &g, NULL));
    lethe_guard_serve_t *s = NULL;
    /* another model's guard */
    CHECK_STATUS(lethe_guard_serve_new(other.g, other.tok, g, NULL, &s), LETHE_ERR_FORMAT);
    CHECK(s == NULL && strstr(lethe_error_detail(), "made for model"));
    lethe_guard_serve_cfg sc;
    lethe_guard_serve_defaults(&sc);
    CHECK(sc.k == 3 && sc.answer_words == 3 && sc.plain_beam == 1 && sc.decode.beam == 7);
    sc.answer_words = 0; /* the targets' n-grams alone, counted below */
    CHECK_OK(lethe_guard_serve_new(m.g, m.tok, g, &sc, &s));
    lethe_guard_serve_t *s_words = NULL;
    CHECK_OK(lethe_guard_serve_new(m.g, m.tok, g, NULL, &s_words));
    /* a prompt naming no target and far from the forget prompts: greedy */
    const char *plain = "Lina Ford";
    lethe_guard_serve_result r;
    CHECK_OK(lethe_guard_serve_generate(s, plain, strlen(plain), 12, -1, &r));
    CHECK(!r.flagged && r.matches == 0 && r.n_targets == 0 && r.forbidden == 0);
    {
        uint32_t *u;
        size_t n;
        CHECK_OK(lethe_tokenizer_encode(m.tok, plain, strlen(plain), &u, &n));
        int32_t ids[16];
        for (size_t i = 0; i < n; i++)
            ids[i] = (int32_t)u[i];
        free(u);
        lethe_gen_opts o;
        lethe_gen_defaults(&o);
        o.max_new = 12;
        lethe_gen_result want;
        CHECK_OK(lethe_gpt_generate(m.g, ids, (int)n, &o, &want));
        CHECK(want.n == r.out.n && !memcmp(want.tokens, r.out.tokens, sizeof(int32_t) * want.n));
        lethe_gen_result_free(&want);
    }
    lethe_guard_serve_result_free(&r);
    /* prompts naming a target are flagged; the answer holds no forbidden
     * n-gram but those the prompt holds, which are not forbidden */
    int refusals = 0;
    for (int k = 0; k < QA; k++) {
        const char *p = b.fq[k];
        CHECK_OK(lethe_guard_serve_generate(s, p, strlen(p), 16, -1, &r));
        CHECK(r.flagged && r.matches >= 1 && r.n_targets >= 1);
        uint32_t zajac;
        CHECK_OK(lethe_guard_find(g, "Emil Zajac", &zajac));
        int has = 0;
        for (size_t i = 0; i < r.n_targets; i++)
            has |= r.targets[i] == zajac;
        CHECK(has);
        /* Zajac's six less the two the prompt holds ("Emil Zajac", "Zajac"),
         * and Mara Quill's five when her answers were retrieved */
        uint32_t mara;
        CHECK_OK(lethe_guard_find(g, "Mara Quill", &mara));
        int with_mara = 0;
        for (size_t i = 0; i < r.n_targets; i++)
            with_mara |= r.targets[i] == mara;
        CHECK_MSG(r.forbidden == 4 + 5 * (size_t)with_mara, "%zu forbidden", r.forbidden);
        /* the retrieved answers' own words come on top */
        lethe_guard_serve_result rw;
        CHECK_OK(lethe_guard_serve_generate(s_words, p, strlen(p), 16, -1, &rw));
        CHECK(rw.flagged && rw.forbidden > r.forbidden);
        lethe_guard_serve_result_free(&rw);
        refusals += r.out.refused;
        for (size_t t = 0; t < lethe_guard_target_count(g) && !r.out.refused; t++) {
            lethe_guard_target_info ti;
            lethe_guard_target_get(g, t, &ti);
            int forbidden = 0;
            for (size_t i = 0; i < r.n_targets; i++)
                forbidden |= r.targets[i] == ti.id;
            if (!forbidden)
                continue;
            for (size_t i = 0; i < ti.n_ngrams; i++)
                CHECK_MSG(holds(p, ti.ngrams[i]) || !holds(r.out.text, ti.ngrams[i]),
                          "'%s' answered '%s' with '%s'", p, r.out.text, ti.ngrams[i]);
        }
        lethe_guard_serve_result_free(&r);
    }
    CHECK(refusals < QA);
    /* ECO: the entity positions corrupted; at sigma 0 the answer is greedy's */
    lethe_guard_serve_cfg ec;
    lethe_guard_serve_defaults(&ec);
    ec.mode = LETHE_GUARD_MODE_ECO, ec.eco.sigma = 0;
    lethe_guard_serve_t *s_eco = NULL;
    CHECK_OK(lethe_guard_serve_new(m.g, m.tok, g, &ec, &s_eco));
    const char *q = b.fq[0];
    CHECK_OK(lethe_guard_serve_generate(s_eco, q, strlen(q), 12, -1, &r));
    CHECK(r.flagged && r.corrupted >= 1 && r.forbidden == 0 && !r.out.refused);
    {
        uint32_t *u;
        size_t n;
        CHECK_OK(lethe_tokenizer_encode(m.tok, q, strlen(q), &u, &n));
        CHECK(r.corrupted < n); /* the name's tokens, not the whole prompt */
        int32_t ids[64];
        for (size_t i = 0; i < n; i++)
            ids[i] = (int32_t)u[i];
        free(u);
        lethe_gen_opts o;
        lethe_gen_defaults(&o);
        o.max_new = 12;
        lethe_gen_result want;
        CHECK_OK(lethe_gpt_generate(m.g, ids, (int)n, &o, &want));
        CHECK(want.n == r.out.n && !memcmp(want.tokens, r.out.tokens, sizeof(int32_t) * want.n));
        /* with noise the first choice's distribution moves */
        lethe_guard_serve_result loud;
        lethe_guard_serve_free(s_eco);
        ec.eco.sigma = 100;
        CHECK_OK(lethe_guard_serve_new(m.g, m.tok, g, &ec, &s_eco));
        CHECK_OK(lethe_guard_serve_generate(s_eco, q, strlen(q), 12, -1, &loud));
        CHECK(loud.out.n >= 1 && (loud.out.tokens[0] != want.tokens[0] ||
                                  loud.out.logprobs[0] != want.logprobs[0]));
        lethe_guard_serve_result_free(&loud);
        lethe_gen_result_free(&want);
    }
    lethe_guard_serve_result_free(&r);
    lethe_guard_serve_free(s_eco);
    lethe_guard_mode mode;
    CHECK_STATUS(lethe_guard_mode_parse("alu", &mode), LETHE_ERR_UNSUPPORTED);
    CHECK_STATUS(lethe_guard_mode_parse("gaurd", &mode), LETHE_ERR_INVALID);
    CHECK_OK(lethe_guard_mode_parse("eco", &mode));
    CHECK(mode == LETHE_GUARD_MODE_ECO);
    /* an empty prompt */
    CHECK_STATUS(lethe_guard_serve_generate(s, "", 0, 4, -1, &r), LETHE_ERR_INVALID);
    lethe_guard_serve_result_free(&r);
    lethe_guard_serve_free(s);
    lethe_guard_serve_free(s_words);
    lethe_guard_free(g);
    model_free(&other);
    model_free(&m);
    bench_free(&b);
}
