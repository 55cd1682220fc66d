/* ALU's chat calls to an OpenAI-compatible endpoint over libcurl
 * (lethe/guard_alu.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "lethe/guard_alu.h"

#define MAX_BODY (16u << 20) /* a reply body larger than this is refused */

void lethe_alu_endpoint_defaults(lethe_alu_endpoint *e)
{
    *e = (lethe_alu_endpoint){.timeout_s = 60, .max_tokens = 512};
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;
static void init(void) { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct body {
    char *p;
    size_t n;
    int too_big;
} body;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    body *b = ctx;
    size_t m = size * nmemb;
    if (b->n + m > MAX_BODY) {
        b->too_big = 1;
        return 0;
    }
    char *q = realloc(b->p, b->n + m + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, data, m);
    b->p = q, b->n += m, b->p[b->n] = 0;
    return m;
}

static char *request_json(const lethe_alu_endpoint *e, const lethe_alu_msg *msgs, int n)
{
    cJSON *j = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(j, "messages");
    cJSON_AddStringToObject(j, "model", e->model ? e->model : "default");
    for (int i = 0; a && i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", msgs[i].role);
        cJSON_AddStringToObject(m, "content", msgs[i].content);
        cJSON_AddItemToArray(a, m);
    }
    cJSON_AddNumberToObject(j, "temperature", 0);
    cJSON_AddNumberToObject(j, "max_tokens", e->max_tokens);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* The reply's text and usage from a response body. */
static lethe_status parse(const char *url, const body *b, char **reply, lethe_alu_usage *u)
{
    cJSON *j = b->p ? cJSON_ParseWithLength(b->p, b->n) : NULL;
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    lethe_status st = LETHE_OK;
    if (!cJSON_IsString(content))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: the endpoint's reply is not a chat completion "
                        "(no choices[0].message.content): %.80s", url, b->p ? b->p : "(empty)");
    else if (!(*reply = strdup(content->valuestring)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    u->prompt_tokens = cJSON_IsNumber(pt) ? (long)pt->valuedouble : 0;
    u->completion_tokens = cJSON_IsNumber(ct) ? (long)ct->valuedouble : 0;
    cJSON_Delete(j);
    return st;
}

lethe_status lethe_alu_http_chat(void *ctx, const lethe_alu_msg *msgs, int n, char **reply,
                                 lethe_alu_usage *usage)
{
    const lethe_alu_endpoint *e = ctx;
    *reply = NULL;
    *usage = (lethe_alu_usage){0, 0};
    if (!e || !e->url || !e->url[0])
        return lethe_fail(LETHE_ERR_INVALID, "alu: no endpoint URL");
    pthread_once(&once, init);
    if (init_rc != CURLE_OK)
        return lethe_fail(LETHE_ERR_FAILED, "alu: libcurl did not initialise");
    size_t ul = strlen(e->url);
    const char *tail = "/chat/completions";
    int full = ul >= strlen(tail) && !strcmp(e->url + ul - strlen(tail), tail);
    char *url = malloc(ul + 32), *req = request_json(e, msgs, n), *auth = NULL;
    if (url)
        snprintf(url, ul + 32, "%s%s", e->url,
                 full ? "" : (e->url[ul - 1] == '/' ? "v1/chat/completions"
                                                     : "/v1/chat/completions"));
    if (e->api_key && asprintf(&auth, "Authorization: Bearer %s", e->api_key) < 0)
        auth = NULL;
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth)
        h = curl_slist_append(h, auth);
    body b = {0};
    lethe_status st = LETHE_OK;
    if (!url || !req || !c || !h || (e->api_key && !auth))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    long status = 0;
    if (st == LETHE_OK) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(e->timeout_s * 1000));
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK)
            st = lethe_fail(LETHE_ERR_IO, "%s: %s", url,
                            b.too_big ? "the reply is too large" : curl_easy_strerror(rc));
        else if (status >= 400)
            st = lethe_fail(LETHE_ERR_IO, "%s: HTTP %ld: %.80s", url, status,
                            b.p ? b.p : "");
    }
    if (st == LETHE_OK)
        st = parse(url, &b, reply, usage);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(b.p);
    free(auth);
    free(req);
    free(url);
    return st;
}
