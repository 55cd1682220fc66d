/* ALU's pipeline (lethe/guard_alu.h) over a scripted chat model: the gate
 * passes what names no target, the stages run in order with their calls and
 * tokens counted, and every reply the pipeline cannot read (rewrites or
 * ratings that are not the JSON asked for, an empty merge) or that still
 * names a target ends in a refusal, never the first answer; a failing call
 * is an error. The local chat model answers as lethe serve's chat endpoint
 * would: the served template, greedy, a long prompt cut at the front. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/guard_alu.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_decode.h"
#include "gpt_small.h"

typedef struct script {
    const char *const *replies;
    int n, at, fail_at;   /* fail_at: the call (0-based) that fails, or -1 */
    char systems[8][1024]; /* the system message of each call */
} script;

static lethe_status scripted(void *ctx, const lethe_alu_msg *m, int n, char **reply,
                             lethe_alu_usage *u)
{
    script *s = ctx;
    int i = s->at++;
    if (i < 8)
        snprintf(s->systems[i], sizeof s->systems[i], "%s", n > 0 ? m[0].content : "");
    if (i == s->fail_at)
        return lethe_fail(LETHE_ERR_IO, "endpoint unreachable");
    if (i >= s->n)
        return lethe_fail(LETHE_ERR_FORMAT, "script ran out at call %d", i);
    u->prompt_tokens = 10, u->completion_tokens = 5;
    *reply = strdup(s->replies[i]);
    return LETHE_OK;
}

static lethe_guard_t *guard(void)
{
    lethe_guard_t *g = lethe_guard_new("sha256:x", "m", 0);
    const char *al[] = {"Zajac"};
    uint32_t id;
    if (!g || lethe_guard_add_target(g, "Emil Zajac", al, 1, &id) ||
        lethe_guard_add_target(g, "Mara Quill", NULL, 0, &id)) {
        lethe_guard_free(g);
        return NULL;
    }
    return g;
}

static const char *A0 = "Emil Zajac was born in Havana.";
static const char *FIVE = "[\"A writer was born in a city.\", \"Someone was born.\", "
                          "\"I cannot assist with that question.\", \"A birth took place.\", "
                          "\"An author exists.\"]";

/* Run the script for query; check calls, stage and refusal. */
static void run(const char *query, const char *const *replies, int n, int fail_at,
                int want_calls, int want_stage, lethe_status want_st, script *s,
                lethe_alu_result *r)
{
    lethe_guard_t *g = guard();
    CHECK(g != NULL);
    *s = (script){.replies = replies, .n = n, .fail_at = fail_at};
    CHECK_STATUS(lethe_alu_answer(NULL, g, scripted, s, query, r), want_st);
    if (want_st == LETHE_OK) {
        CHECK_MSG(r->calls == want_calls && r->stage == want_stage,
                  "calls %d stage %s, want %d %s", r->calls, lethe_alu_stage_name(r->stage),
                  want_calls, lethe_alu_stage_name(want_stage));
        CHECK(r->prompt_tokens == 10L * want_calls && r->completion_tokens == 5L * want_calls);
        int refused = want_stage >= LETHE_ALU_REFUSED_ERASE;
        CHECK(r->refused == refused);
        if (refused)
            CHECK(!strcmp(r->text, LETHE_GUARD_REFUSAL));
        if (want_stage != LETHE_ALU_PASSED)
            CHECK(!strstr(r->text, "Zajac") && strcmp(r->text, A0));
    } else {
        CHECK(r->text == NULL);
    }
    lethe_guard_free(g);
}

TEST(guard_alu_gate_passes_what_names_no_target)
{
    script s;
    lethe_alu_result r;
    const char *rep[] = {"Paris is the capital of France."};
    run("What is the capital of France?", rep, 1, -1, 1, LETHE_ALU_PASSED, LETHE_OK, &s, &r);
    CHECK(!strcmp(r.text, rep[0]) && r.targets == 0 && isnan(r.mean_rating));
    lethe_alu_result_free(&r);
}

TEST(guard_alu_composes_the_best_rewrites)
{
    script s;
    lethe_alu_result r;
    const char *rep[] = {A0, FIVE, "ratings: [5, 4, 5, 2, 1]", "A writer was born somewhere."};
    run("Where was Emil Zajac born?", rep, 4, -1, 4, LETHE_ALU_COMPOSED, LETHE_OK, &s, &r);
    CHECK(!strcmp(r.text, rep[3]) && r.targets == 1);
    CHECK(fabs(r.mean_rating - 14.0 / 3) < 1e-12); /* 5, 5, 4 */
    /* the subjects reach the agents; the merge gets the three best */
    CHECK(strstr(s.systems[1], "Emil Zajac") && strstr(s.systems[1], "5 different rewrites"));
    CHECK(strstr(s.systems[2], "Emil Zajac") && strstr(s.systems[3], "Emil Zajac"));
    lethe_alu_result_free(&r);
    /* the first answer alone can trip the gate */
    const char *rep2[] = {"That was Mara Quill.", FIVE, "[5,5,5,5,5]", "An author did."};
    run("Who won the prize?", rep2, 4, -1, 4, LETHE_ALU_COMPOSED, LETHE_OK, &s, &r);
    CHECK(strstr(s.systems[1], "Mara Quill") && !strstr(s.systems[1], "Emil"));
    lethe_alu_result_free(&r);
}

TEST(guard_alu_refuses_what_it_cannot_read)
{
    script s;
    lethe_alu_result r;
    const char *q = "Where was Emil Zajac born?";
    const char *bad_list[] = {A0, "Sure, here are some rewrites: one, two."};
    run(q, bad_list, 2, -1, 2, LETHE_ALU_REFUSED_ERASE, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *not_strings[] = {A0, "[1, 2, 3]"};
    run(q, not_strings, 2, -1, 2, LETHE_ALU_REFUSED_ERASE, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *bad_ratings[] = {A0, FIVE, "[5, \"five\", 4, 4, 4]"};
    run(q, bad_ratings, 3, -1, 3, LETHE_ALU_REFUSED_CRITIC, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *few_ratings[] = {A0, FIVE, "[5, 5, 5]"};
    run(q, few_ratings, 3, -1, 3, LETHE_ALU_REFUSED_CRITIC, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *out_of_range[] = {A0, FIVE, "[5, 5, 5, 6, 0]"};
    run(q, out_of_range, 3, -1, 3, LETHE_ALU_REFUSED_CRITIC, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *low[] = {A0, FIVE, "[1, 2, 3, 2, 1]"};
    run(q, low, 3, -1, 3, LETHE_ALU_REFUSED_RATING, LETHE_OK, &s, &r);
    CHECK(fabs(r.mean_rating - 7.0 / 3) < 1e-12);
    lethe_alu_result_free(&r);
    const char *leaks[] = {A0, FIVE, "[5, 5, 5, 5, 5]", "As for Zajac, he was born in Havana."};
    run(q, leaks, 4, -1, 4, LETHE_ALU_REFUSED_AUDIT, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
    const char *empty[] = {A0, FIVE, "[5, 5, 5, 5, 5]", " \n "};
    run(q, empty, 4, -1, 4, LETHE_ALU_REFUSED_EMPTY, LETHE_OK, &s, &r);
    lethe_alu_result_free(&r);
}

TEST(guard_alu_failing_calls_are_errors)
{
    script s;
    lethe_alu_result r;
    const char *rep[] = {A0, FIVE, "[5, 5, 5, 5, 5]", "fine"};
    for (int at = 0; at < 4; at++) {
        run("Where was Emil Zajac born?", rep, 4, at, 0, 0, LETHE_ERR_IO, &s, &r);
        CHECK(strstr(lethe_error_detail(), "unreachable"));
        lethe_alu_result_free(&r);
    }
    lethe_guard_t *g = guard();
    CHECK(g != NULL);
    lethe_alu_cfg c;
    lethe_alu_defaults(&c);
    c.j = 6;
    CHECK_STATUS(lethe_alu_answer(&c, g, scripted, &s, "q", &r), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_alu_answer(NULL, g, NULL, &s, "q", &r), LETHE_ERR_INVALID);
    lethe_alu_result_free(&r);
    lethe_guard_free(g);
}

/* What lethe serve's chat endpoint answers to text: its ids (the last keep
 * of them), greedy max_new tokens, decoded, leading blanks skipped. */
static char *served_reply(const lethe_gpt *g, lethe_tokenizer_t *tok, const char *text,
                          size_t keep, int max_new, long *n_ids)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    if (lethe_tokenizer_encode(tok, text, strlen(text), &ids, &n))
        return NULL;
    *n_ids = (long)n;
    if (keep > n)
        keep = n;
    int32_t p[NPOS];
    for (size_t i = 0; i < keep; i++)
        p[i] = (int32_t)ids[n - keep + i];
    free(ids);
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = max_new;
    lethe_gen_result r;
    if (lethe_gpt_generate(g, p, (int)keep, &o, &r))
        return NULL;
    uint32_t u[NPOS];
    for (int i = 0; i < r.n; i++)
        u[i] = (uint32_t)r.tokens[i];
    unsigned char *b = NULL;
    size_t len = 0;
    lethe_status st = lethe_tokenizer_decode(tok, u, (size_t)r.n, &b, &len);
    lethe_gen_result_free(&r);
    if (st)
        return NULL;
    size_t lead = strspn((char *)b, " \n");
    memmove(b, b + lead, len - lead + 1);
    return (char *)b;
}

TEST(guard_alu_local_chat_answers_as_the_server)
{
    lethe_tokenizer_t *tok = small_tokenizer();
    lethe_gpt *g = small_model(300, 7);
    CHECK(tok && g);
    lethe_alu_local l;
    lethe_alu_local_init(&l, g, tok, -1);
    l.max_tokens = 6;
    lethe_alu_msg m[2] = {{"system", "be brief"}, {"user", "the cat"}};
    char *reply = NULL;
    lethe_alu_usage u = {0, 0};
    CHECK_OK(lethe_alu_local_chat(&l, m, 2, &reply, &u));
    long n_ids = 0;
    char *want = served_reply(g, tok, "be brief\nQuestion: the cat\nAnswer:", NPOS, 6, &n_ids);
    CHECK(want && reply && !strcmp(reply, want));
    CHECK(u.prompt_tokens == n_ids && u.completion_tokens == 6 && l.truncated == 0);
    free(reply), free(want);
    /* past the context: the last 40 - min(6, 40 / 4) tokens are kept */
    m[0].content = "the dog sat on the log and the cat sat on the mat while a dog ran to the "
                   "mat and the cat met a dog on the log, and then the cat sat still";
    CHECK_OK(lethe_alu_local_chat(&l, m, 2, &reply, &u));
    char text[256];
    snprintf(text, sizeof text, "%s\nQuestion: the cat\nAnswer:", m[0].content);
    want = served_reply(g, tok, text, NPOS - 6, 6, &n_ids);
    CHECK_MSG(n_ids > NPOS, "the long prompt has %ld ids", n_ids);
    CHECK(want && reply && !strcmp(reply, want));
    CHECK(u.prompt_tokens == NPOS - 6 && l.truncated == 1);
    free(reply), free(want);
    /* a role the template does not know, and no model */
    m[1].role = "tool";
    CHECK_STATUS(lethe_alu_local_chat(&l, m, 2, &reply, &u), LETHE_ERR_INVALID);
    CHECK(reply == NULL);
    m[1].role = "user";
    l.model = NULL;
    CHECK_STATUS(lethe_alu_local_chat(&l, m, 2, &reply, &u), LETHE_ERR_INVALID);
    lethe_gpt_free(g);
    lethe_tokenizer_free(tok);
}
