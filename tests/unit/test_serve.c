/* The server's request handling on buffers (src/serve/serve_impl.h): the
 * completion and chat parsers, the chat template, UTF-8 prefixes, deletion
 * and prediction bodies, and routing with its authority rules on a server
 * with nothing loaded. */
#include <stdlib.h>
#include <string.h>

#include "../../src/serve/serve_impl.h"
#include "../test.h"

static lethe_status gen(const char *body, int chat, serve_gen_req *r, const char **param)
{
    return serve_parse_gen(body, strlen(body), chat, r, param);
}

TEST(serve_parse_completion)
{
    serve_gen_req r;
    const char *param;
    CHECK_OK(gen("{\"model\": \"m\", \"prompt\": [\"hello\"], \"max_tokens\": 7, "
                 "\"temperature\": 0, \"top_p\": 0.5, \"seed\": 3, \"stop\": \"\\n\", "
                 "\"stream\": true, \"stream_options\": {\"include_usage\": true}, "
                 "\"n\": 1, \"logprobs\": null, \"presence_penalty\": 0}",
                 0, &r, &param));
    CHECK(!strcmp(r.prompt, "hello") && r.prompt_len == 5 && !strcmp(r.model, "m"));
    CHECK(r.max_tokens == 7 && r.temperature == 0 && r.top_p == 0.5);
    CHECK(r.has_seed && r.seed == 3 && r.stream && r.include_usage);
    CHECK(r.n_stop == 1 && !strcmp(r.stop[0], "\n"));
    serve_gen_req_free(&r);
    /* defaults */
    CHECK_OK(gen("{\"prompt\": \"\"}", 0, &r, &param));
    CHECK(r.max_tokens == -1 && r.temperature == 1 && r.top_p == 1 && !r.stream && !r.has_seed);
    serve_gen_req_free(&r);
    /* each refusal names its field */
    static const char *const bad[][2] = {
        {"{\"prompt\": 1}", "prompt"},
        {"{\"prompt\": [\"a\", \"b\"]}", "prompt"},
        {"{\"prompt\": \"a\", \"max_tokens\": 1.5}", "max_tokens"},
        {"{\"prompt\": \"a\", \"max_tokens\": -1}", "max_tokens"},
        {"{\"prompt\": \"a\", \"temperature\": 3}", "temperature"},
        {"{\"prompt\": \"a\", \"top_p\": 0}", "top_p"},
        {"{\"prompt\": \"a\", \"n\": 2}", "n"},
        {"{\"prompt\": \"a\", \"frequency_penalty\": 0.5}", "frequency_penalty"},
        {"{\"prompt\": \"a\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "stop"},
        {"{\"prompt\": \"a\", \"stop\": \"\"}", "stop"},
        {"{\"prompt\": \"a\", \"stream\": 1}", "stream"},
        {"{\"prompt\": \"a\", \"messages\": []}", "messages"},
        {"{\"prompt\": \"a\", \"zzz\": 1}", "zzz"},
        {"{\"max_tokens\": 2}", "prompt"},
        {"{\"prompt\": \"a\", \"prompt\": \"b\"}", "prompt"},
        {"{\"prompt\": \"a\", \"stop\": [\"x\"], \"stop\": [\"y\", \"z\", \"w\", \"v\"]}", "stop"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_STATUS(gen(bad[i][0], 0, &r, &param), LETHE_ERR_INVALID);
        CHECK_MSG(param && !strcmp(param, bad[i][1]), "%s: param %s", bad[i][0],
                  param ? param : "(null)");
        serve_gen_req_free(&r);
    }
    CHECK_STATUS(gen("{\"prompt\": \"a\",", 0, &r, &param), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "invalid JSON"));
    serve_gen_req_free(&r);
    CHECK_STATUS(gen("[]", 0, &r, &param), LETHE_ERR_INVALID);
    serve_gen_req_free(&r);
}

TEST(serve_chat_template_layout)
{
    serve_gen_req r;
    const char *param;
    CHECK_OK(gen("{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
                 "{\"role\": \"user\", \"content\": \"Who wrote it?\"}, "
                 "{\"role\": \"assistant\", \"content\": \"Jo.\"}, "
                 "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Wh\"}, "
                 "{\"type\": \"text\", \"text\": \"en?\"}]}], \"max_completion_tokens\": 9}",
                 1, &r, &param));
    CHECK(!strcmp(r.prompt, "Be brief.\nQuestion: Who wrote it?\nAnswer: Jo.\n"
                            "Question: When?\nAnswer:"));
    CHECK(r.prompt_len == strlen(r.prompt) && r.chat && r.max_tokens == 9);
    CHECK(r.query && !strcmp(r.query, "When?")); /* ALU's query: the last user message */
    serve_gen_req_free(&r);
    static const char *const bad[] = {
        "{\"messages\": []}",
        "{\"messages\": {}}",
        "{\"messages\": [{\"role\": \"user\"}]}",
        "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, "
        "{\"role\": \"assistant\", \"content\": \"y\"}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
        "{\"messages\": [1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_STATUS(gen(bad[i], 1, &r, &param), LETHE_ERR_INVALID);
        CHECK_MSG(param && !strcmp(param, "messages"), "%s", bad[i]);
        serve_gen_req_free(&r);
    }
    /* a completion's fields that chat does not take */
    CHECK_STATUS(gen("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"prompt\": "
                     "\"p\"}", 1, &r, &param), LETHE_ERR_INVALID);
    serve_gen_req_free(&r);
}

TEST(serve_utf8_prefix_holds_back_partial_characters)
{
    const unsigned char s[] = {'a', 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80};
    CHECK(serve_utf8_prefix(s, 10) == 10);
    CHECK(serve_utf8_prefix(s, 9) == 6);
    CHECK(serve_utf8_prefix(s, 7) == 6);
    CHECK(serve_utf8_prefix(s, 5) == 3);
    CHECK(serve_utf8_prefix(s, 2) == 1);
    const unsigned char stray[] = {0x80, 'b'};
    CHECK(serve_utf8_prefix(stray, 2) == 2);
}

TEST(serve_parse_ids_and_inputs)
{
    uint64_t *ids;
    long n;
    const char *ok = "{\"ids\": [0, 5, 9007199254740992]}";
    CHECK_OK(serve_parse_ids(ok, strlen(ok), 10, &ids, &n));
    CHECK(n == 3 && ids[0] == 0 && ids[1] == 5 && ids[2] == 9007199254740992ULL);
    free(ids);
    static const char *const bad[] = {"{\"ids\": []}", "{\"ids\": [-1]}", "{\"ids\": [1.5]}",
                                      "{\"ids\": [\"1\"]}", "{\"ids\": 1}", "{\"id\": [1]}",
                                      "{\"ids\": [1], \"x\": 0}", "[1]", "{\"ids\": [1e300]}",
                                      "{\"ids\": [1, 2, 3]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_STATUS(serve_parse_ids(bad[i], strlen(bad[i]), 2, &ids, &n), LETHE_ERR_INVALID);
        CHECK(ids == NULL);
    }
    float *x;
    const char *rows = "{\"inputs\": [[1, 2], [3.5, -4]]}", *one = "{\"inputs\": [7, 8]}";
    CHECK_OK(serve_parse_inputs(rows, strlen(rows), 2, 10, &x, &n));
    CHECK(n == 2 && x[0] == 1 && x[1] == 2 && x[2] == 3.5f && x[3] == -4);
    free(x);
    CHECK_OK(serve_parse_inputs(one, strlen(one), 2, 10, &x, &n));
    CHECK(n == 1 && x[0] == 7 && x[1] == 8);
    free(x);
    static const char *const badx[] = {"{\"inputs\": [[1]]}", "{\"inputs\": [[1, 2, 3]]}",
                                       "{\"inputs\": [[1, \"2\"]]}", "{\"inputs\": []}",
                                       "{\"inputs\": [[1, 1e39]]}", "{\"inputs\": [[1, 2]], "
                                       "\"x\": 1}", "{\"inputs\": [[1, 2], [1, 2], [1, 2]]}"};
    for (size_t i = 0; i < sizeof badx / sizeof *badx; i++) {
        CHECK_STATUS(serve_parse_inputs(badx[i], strlen(badx[i]), 2, 2, &x, &n),
                     LETHE_ERR_INVALID);
        CHECK(x == NULL);
    }
}

/* Route one request on s; the status, and the body in *body (freed by the
 * next call). */
static int route(serve *s, const char *method, const char *path, const char *auth,
                 const char *body, char **out)
{
    serve_req q = {method, path, auth, body, strlen(body)};
    serve_resp r;
    serve_route(s, &q, &r);
    free(*out);
    *out = r.body;
    return r.status;
}

TEST(serve_route_authority_and_errors)
{
    serve *s = calloc(1, sizeof *s);
    CHECK(s);
    char *b = NULL;
    /* loading: only /health answers, with 503 */
    CHECK(route(s, "GET", "/health", NULL, "", &b) == 503 && strstr(b, "loading"));
    CHECK(route(s, "GET", "/v1/models", NULL, "", &b) == 503);
    s->ready = 1;
    snprintf(s->model_name, sizeof s->model_name, "m");
    CHECK(route(s, "GET", "/health", NULL, "", &b) == 200);
    /* no token: reads open, changes refused */
    CHECK(route(s, "GET", "/v1/models", NULL, "", &b) == 200 && strstr(b, "\"id\":\"m\""));
    CHECK(route(s, "POST", "/v1/guard/targets", NULL, "{}", &b) == 403);
    CHECK(strstr(b, "\"type\":\"permission_error\""));
    /* a token: everything but /health needs it */
    strcpy(s->token, "abc");
    s->token_len = 3;
    CHECK(route(s, "GET", "/v1/models", NULL, "", &b) == 401);
    CHECK(route(s, "GET", "/v1/models", "Bearer ab", "", &b) == 401);
    CHECK(route(s, "GET", "/v1/models", "Bearer abcd", "", &b) == 401);
    CHECK(route(s, "GET", "/v1/models", "Basic abc", "", &b) == 401);
    CHECK(route(s, "GET", "/v1/models", "Bearer abc", "", &b) == 200);
    CHECK(route(s, "GET", "/health", NULL, "", &b) == 200);
    s->cfg.open_reads = 1;
    CHECK(route(s, "GET", "/v1/models", NULL, "", &b) == 200);
    CHECK(route(s, "GET", "/metrics", NULL, "", &b) == 200 &&
          strstr(b, "# TYPE lethe_request_seconds histogram"));
    CHECK(route(s, "POST", "/v1/deletions", NULL, "{\"ids\": [1]}", &b) == 401);
    CHECK(route(s, "POST", "/v1/deletions", "Bearer abc", "{\"ids\": [1]}", &b) == 404);
    /* unknown paths and methods */
    CHECK(route(s, "GET", "/v2/x", NULL, "", &b) == 404 && strstr(b, "\"type\":\"not_found_error\""));
    CHECK(route(s, "DELETE", "/v1/models", NULL, "", &b) == 405);
    CHECK(route(s, "GET", "/v1/deletions/7", "Bearer abc", "", &b) == 404);
    free(b);
    free(s);
}
