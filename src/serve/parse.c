/* Completion and chat request bodies into generation settings, the chat
 * template, and deletion bodies. Pure functions on buffers: the fuzz
 * harness drives them directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/json.h"
#include "serve_impl.h"

#define MAX_STOP_LEN 64

void serve_gen_req_free(serve_gen_req *r)
{
    free(r->prompt);
    free(r->query);
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* field is copied: it may point into the tree that is freed before the
 * caller reads *param. */
static lethe_status bad(const char **param, const char *field, const char *msg)
{
    static _Thread_local char name[64];
    if (field)
        snprintf(name, sizeof name, "%s", field);
    *param = field ? name : NULL;
    return lethe_fail(LETHE_ERR_INVALID, "%s", msg);
}

/* Fields that lethe honours only at OpenAI's neutral value. */
static int neutral(const cJSON *v, const char *key)
{
    if (cJSON_IsNull(v))
        return 1;
    if (!strcmp(key, "n") || !strcmp(key, "best_of"))
        return cJSON_IsNumber(v) && v->valuedouble == 1.0;
    if (!strcmp(key, "presence_penalty") || !strcmp(key, "frequency_penalty"))
        return cJSON_IsNumber(v) && v->valuedouble == 0.0;
    if (!strcmp(key, "echo") || !strcmp(key, "logprobs") || !strcmp(key, "parallel_tool_calls"))
        return cJSON_IsFalse(v) || (cJSON_IsNumber(v) && v->valuedouble == 0.0);
    if (!strcmp(key, "logit_bias") || !strcmp(key, "metadata"))
        return cJSON_IsObject(v) && !v->child;
    if (!strcmp(key, "suffix"))
        return cJSON_IsString(v) && !v->valuestring[0];
    return 0;
}

static const char *const completion_keys[] = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options",
    "stop", "seed", "user", "presence_penalty", "frequency_penalty", "logprobs", "echo",
    "suffix", "best_of", "logit_bias", NULL};
static const char *const chat_keys[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
    "stream", "stream_options", "stop", "seed", "user", "presence_penalty",
    "frequency_penalty", "logprobs", "logit_bias", "metadata", "parallel_tool_calls", NULL};
static const char *const neutral_keys[] = {
    "n", "best_of", "presence_penalty", "frequency_penalty", "echo", "logprobs",
    "parallel_tool_calls", "logit_bias", "metadata", "suffix", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

/* A number field in [lo, hi], integral when integer. */
static lethe_status number(const cJSON *v, const char *key, double lo, double hi, int integer,
                           double *out, const char **param)
{
    static _Thread_local char msg[160];
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi || (integer && v->valuedouble != floor(v->valuedouble))) {
        snprintf(msg, sizeof msg, "'%s' must be %s from %g to %g", key,
                 integer ? "an integer" : "a number", lo, hi);
        return bad(param, key, msg);
    }
    *out = v->valuedouble;
    return LETHE_OK;
}

static lethe_status stops(const cJSON *v, serve_gen_req *r, const char **param)
{
    if (cJSON_IsNull(v))
        return LETHE_OK;
    const cJSON *one = cJSON_IsString(v) ? v : NULL;
    if (!one && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SERVE_MAX_STOP))
        return bad(param, "stop", "'stop' must be a string or an array of at most 4 strings");
    for (const cJSON *e = one ? one : v->child; e; e = one ? NULL : e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) > MAX_STOP_LEN)
            return bad(param, "stop", "each stop sequence must be a string of 1 to 64 bytes");
        if (!(r->stop[r->n_stop] = strdup(e->valuestring)))
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        r->n_stop++;
    }
    return LETHE_OK;
}

static lethe_status prompt(const cJSON *v, serve_gen_req *r, const char **param)
{
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = v->child;
    if (!cJSON_IsString(v))
        return bad(param, "prompt", "'prompt' must be a string (or an array of one string)");
    r->prompt_len = strlen(v->valuestring);
    if (!(r->prompt = strdup(v->valuestring)))
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    return LETHE_OK;
}

/* A message's content: a string, or an array of {"type": "text", "text"}. */
static lethe_status content_text(const cJSON *c, char **out, const char **param)
{
    if (cJSON_IsString(c))
        return (*out = strdup(c->valuestring)) ? LETHE_OK
                                                : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!cJSON_IsArray(c))
        return bad(param, "messages", "a message's content must be a string or an array of "
                                      "text parts");
    size_t n = 0;
    for (const cJSON *p = c->child; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text") || !cJSON_IsString(t))
            return bad(param, "messages", "only text content parts are supported");
        n += strlen(t->valuestring);
    }
    char *s = malloc(n + 1);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s[0] = 0;
    for (const cJSON *p = c->child; p; p = p->next)
        strcat(s, cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring);
    *out = s;
    return LETHE_OK;
}

/* Append s to the growing buffer b (len, cap). */
static int append(char **b, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *t = realloc(*b, c);
        if (!t)
            return -1;
        *b = t, *cap = c;
    }
    memcpy(*b + *len, s, n + 1);
    *len += n;
    return 0;
}

lethe_status serve_chat_template(const cJSON *messages, char **out, size_t *len,
                                 char **last_user, const char **param)
{
    *out = NULL, *len = 0;
    if (last_user)
        *last_user = NULL;
    if (!cJSON_IsArray(messages) || !messages->child)
        return bad(param, "messages", "'messages' must be a non-empty array");
    char *b = NULL;
    size_t n = 0, cap = 0;
    const char *last = NULL;
    lethe_status st = LETHE_OK;
    for (const cJSON *m = messages->child; m && st == LETHE_OK; m = m->next) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !c) {
            st = bad(param, "messages", "each message needs a 'role' and a 'content'");
            break;
        }
        const char *r = role->valuestring;
        int sys = !strcmp(r, "system") || !strcmp(r, "developer");
        if (!sys && strcmp(r, "user") && strcmp(r, "assistant")) {
            st = bad(param, "messages", "a message's role must be system, developer, user or "
                                        "assistant");
            break;
        }
        char *text = NULL;
        if ((st = content_text(c, &text, param)))
            break;
        const char *pre = sys ? "" : !strcmp(r, "user") ? "Question: " : " ";
        const char *post = sys ? "\n" : !strcmp(r, "user") ? "\nAnswer:" : "\n";
        if (append(&b, &n, &cap, pre) || append(&b, &n, &cap, text) ||
            append(&b, &n, &cap, post))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        if (last_user && !strcmp(r, "user")) {
            free(*last_user);
            *last_user = text;
            text = NULL;
        }
        free(text);
        last = r;
    }
    if (st == LETHE_OK && strcmp(last, "user"))
        st = bad(param, "messages", "the last message must be the user's");
    if (st != LETHE_OK) {
        free(b);
        if (last_user) {
            free(*last_user);
            *last_user = NULL;
        }
        return st;
    }
    *out = b, *len = n;
    return LETHE_OK;
}

lethe_status serve_parse_gen(const char *body, size_t len, int chat, serve_gen_req *r,
                             const char **param)
{
    memset(r, 0, sizeof *r);
    r->chat = chat, r->max_tokens = -1, r->temperature = 1.0, r->top_p = 1.0;
    *param = NULL;
    cJSON *j = NULL;
    if (lethe_json_parse(body, len, "request body", &j) != LETHE_OK)
        return LETHE_ERR_INVALID;
    lethe_status st = LETHE_OK;
    if (!cJSON_IsObject(j))
        st = bad(param, NULL, "the request body must be a JSON object");
    const char *const *keys = chat ? chat_keys : completion_keys;
    int n_keys = 0;
    while (keys[n_keys])
        n_keys++;
    if (st == LETHE_OK && cJSON_GetArraySize(j) > n_keys)
        st = bad(param, NULL, "the request has more fields than there are arguments");
    for (const cJSON *v = st ? NULL : j->child; v && st == LETHE_OK; v = v->next) {
        const char *k = v->string;
        double d = 0;
        const cJSON *p = j->child;
        while (p != v && strcmp(p->string, k))
            p = p->next;
        if (p != v) {
            static _Thread_local char msg[160];
            snprintf(msg, sizeof msg, "the argument %.100s is given twice", k);
            st = bad(param, k, msg);
        } else if (!in_list(keys, k)) {
            static _Thread_local char msg[160];
            snprintf(msg, sizeof msg, "unrecognized request argument supplied: %.100s", k);
            st = bad(param, k, msg);
        } else if (in_list(neutral_keys, k)) {
            if (!neutral(v, k))
                st = bad(param, k, "this setting is not supported; leave it out or at its "
                                   "default");
        } else if (!strcmp(k, "model")) {
            if (!cJSON_IsString(v))
                st = bad(param, k, "'model' must be a string");
            else
                snprintf(r->model, sizeof r->model, "%s", v->valuestring);
        } else if (!strcmp(k, "prompt")) {
            st = prompt(v, r, param);
        } else if (!strcmp(k, "messages")) {
            st = serve_chat_template(v, &r->prompt, &r->prompt_len, &r->query, param);
        } else if (!strcmp(k, "max_tokens") || !strcmp(k, "max_completion_tokens")) {
            if (!cJSON_IsNull(v) && (st = number(v, k, 0, 1 << 20, 1, &d, param)) == LETHE_OK)
                r->max_tokens = (int)d;
        } else if (!strcmp(k, "temperature")) {
            if (!cJSON_IsNull(v) && (st = number(v, k, 0, 2, 0, &d, param)) == LETHE_OK)
                r->temperature = d;
        } else if (!strcmp(k, "top_p")) {
            if (!cJSON_IsNull(v) && (st = number(v, k, 0, 1, 0, &d, param)) == LETHE_OK)
                r->top_p = d;
            if (st == LETHE_OK && r->top_p <= 0)
                st = bad(param, k, "'top_p' must be above 0");
        } else if (!strcmp(k, "seed")) {
            if (!cJSON_IsNull(v) &&
                (st = number(v, k, 0, 9007199254740992.0, 1, &d, param)) == LETHE_OK)
                r->has_seed = 1, r->seed = (uint64_t)d;
        } else if (!strcmp(k, "stream")) {
            if (!cJSON_IsBool(v) && !cJSON_IsNull(v))
                st = bad(param, k, "'stream' must be a boolean");
            r->stream = cJSON_IsTrue(v);
        } else if (!strcmp(k, "stream_options")) {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(v, "include_usage");
            if (!cJSON_IsNull(v) && (!cJSON_IsObject(v) || (u && !cJSON_IsBool(u))))
                st = bad(param, k, "'stream_options' must be an object with a boolean "
                                   "'include_usage'");
            r->include_usage = cJSON_IsTrue(u);
        } else if (!strcmp(k, "stop")) {
            st = stops(v, r, param);
        } else if (!strcmp(k, "user")) {
            if (!cJSON_IsString(v))
                st = bad(param, k, "'user' must be a string");
        }
    }
    if (st == LETHE_OK && !r->prompt)
        st = bad(param, chat ? "messages" : "prompt",
                 chat ? "missing required argument 'messages'"
                      : "missing required argument 'prompt'");
    cJSON_Delete(j);
    return st;
}

size_t serve_utf8_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0, ok = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (k == 0) { /* a stray byte: keep it (it is replaced when written) */
            ok = ++i;
            continue;
        }
        if (i + k > n)
            break;
        size_t t = 1;
        while (t < k && (s[i + t] & 0xC0) == 0x80)
            t++;
        i += t;
        ok = i;
    }
    return ok;
}

lethe_status serve_parse_ids(const char *body, size_t len, long limit, uint64_t **ids, long *n)
{
    *ids = NULL, *n = 0;
    cJSON *j = NULL;
    if (lethe_json_parse(body, len, "request body", &j) != LETHE_OK)
        return LETHE_ERR_INVALID;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "ids");
    lethe_status st = LETHE_OK;
    if (!cJSON_IsObject(j) || !cJSON_IsArray(a) || !a->child)
        st = lethe_fail(LETHE_ERR_INVALID, "the body must be {\"ids\": [...]} with at least "
                                           "one id");
    for (const cJSON *v = st ? NULL : j->child; v && st == LETHE_OK; v = v->next)
        if (strcmp(v->string, "ids"))
            st = lethe_fail(LETHE_ERR_INVALID, "unrecognized request argument supplied: %.100s",
                            v->string);
    long cnt = st ? 0 : cJSON_GetArraySize(a);
    if (st == LETHE_OK && cnt > limit)
        st = lethe_fail(LETHE_ERR_INVALID, "at most %ld ids per request, not %ld", limit, cnt);
    uint64_t *out = st ? NULL : malloc(sizeof(uint64_t) * (size_t)cnt);
    if (st == LETHE_OK && !out)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    long k = 0;
    for (const cJSON *v = st ? NULL : a->child; v && st == LETHE_OK; v = v->next) {
        double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (!(d >= 0 && d <= 9007199254740992.0 && d == floor(d)))
            st = lethe_fail(LETHE_ERR_INVALID, "ids must be non-negative integers");
        else
            out[k++] = (uint64_t)d;
    }
    cJSON_Delete(j);
    if (st != LETHE_OK) {
        free(out);
        return st;
    }
    *ids = out, *n = k;
    return LETHE_OK;
}

lethe_status serve_parse_inputs(const char *body, size_t len, long d, long limit, float **x,
                                long *n)
{
    *x = NULL, *n = 0;
    cJSON *j = NULL;
    if (lethe_json_parse(body, len, "request body", &j) != LETHE_OK)
        return LETHE_ERR_INVALID;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    lethe_status st = LETHE_OK;
    if (!cJSON_IsObject(j) || !cJSON_IsArray(a) || !a->child)
        st = lethe_fail(LETHE_ERR_INVALID, "the body must be {\"inputs\": [[...], ...]} with at "
                                           "least one row");
    for (const cJSON *v = st ? NULL : j->child; v && st == LETHE_OK; v = v->next)
        if (strcmp(v->string, "inputs"))
            st = lethe_fail(LETHE_ERR_INVALID, "unrecognized request argument supplied: %.100s",
                            v->string);
    int flat = st == LETHE_OK && cJSON_IsNumber(a->child);
    long rows = st ? 0 : flat ? 1 : cJSON_GetArraySize(a);
    if (st == LETHE_OK && rows > limit)
        st = lethe_fail(LETHE_ERR_INVALID, "at most %ld rows per request, not %ld", limit,
                        rows);
    float *out = st ? NULL : malloc(sizeof(float) * (size_t)(rows * d + 1));
    if (st == LETHE_OK && !out)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    long r = 0;
    for (const cJSON *row = st ? NULL : flat ? a : a->child; row && st == LETHE_OK;
         row = flat ? NULL : row->next, r++) {
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != d) {
            st = lethe_fail(LETHE_ERR_INVALID, "row %ld: expected an array of %ld numbers", r,
                            d);
            break;
        }
        long k = 0;
        for (const cJSON *v = row->child; v; v = v->next, k++) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
                fabs(v->valuedouble) > 3.4e38) {
                st = lethe_fail(LETHE_ERR_INVALID, "row %ld, column %ld: expected a finite "
                                "number", r, k);
                break;
            }
            out[r * d + k] = (float)v->valuedouble;
        }
    }
    cJSON_Delete(j);
    if (st != LETHE_OK) {
        free(out);
        return st;
    }
    *x = out, *n = rows;
    return LETHE_OK;
}
