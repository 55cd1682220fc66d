/* libFuzzer harness: the server's request handling on plain buffers. The
 * first byte picks the target: a completion body, a chat body, a deletion
 * body, a prediction body (4 features), or a whole request routed through
 * authority and the endpoints of a server with nothing loaded ("METHOD
 * PATH\nAUTHORIZATION\nBODY"). Bad input must come back as a status or a
 * 4xx answer, never as a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/serve/serve_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of p[0..n) into buf (NUL-terminated, cut at cap). */
static size_t line(const char *p, size_t n, char *buf, size_t cap)
{
    size_t i = 0;
    while (i < n && p[i] != '\n')
        i++;
    size_t k = i < cap - 1 ? i : cap - 1;
    memcpy(buf, p, k);
    buf[k] = 0;
    return i < n ? i + 1 : i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    const char *param;
    switch (data[0] % 5) {
    case 0:
    case 1: {
        serve_gen_req r;
        if (serve_parse_gen(body, len, data[0] % 5, &r, &param) == LETHE_OK)
            LETHE_ASSERT(r.prompt && r.prompt_len == strlen(r.prompt) && r.n_stop <= 4);
        serve_gen_req_free(&r);
        break;
    }
    case 2: {
        uint64_t *ids;
        long n;
        if (serve_parse_ids(body, len, 1000, &ids, &n) == LETHE_OK)
            LETHE_ASSERT(n >= 1 && n <= 1000);
        free(ids);
        break;
    }
    case 3: {
        float *x;
        long n;
        if (serve_parse_inputs(body, len, 4, 100, &x, &n) == LETHE_OK)
            LETHE_ASSERT(n >= 1 && n <= 100);
        free(x);
        break;
    }
    default: {
        static serve s; /* nothing loaded: routing, authority and errors only */
        char head[256], method[16] = "", path[200] = "", auth[256];
        size_t k = line(body, len, head, sizeof head);
        k += line(body + k, len - k, auth, sizeof auth);
        char *sp = strchr(head, ' ');
        if (sp) {
            *sp = 0;
            snprintf(method, sizeof method, "%s", head);
            snprintf(path, sizeof path, "%s", sp + 1);
        }
        s.ready = 1;
        s.cfg.open_reads = data[0] & 8;
        strcpy(s.token, "t0ken");
        s.token_len = (data[0] & 16) ? 5 : 0;
        serve_req q = {method, path, auth[0] ? auth : NULL, body + k, len - k};
        serve_resp r;
        serve_route(&s, &q, &r);
        LETHE_ASSERT(r.status >= 200 && r.status < 600 && r.body && !r.stream);
        free(r.body);
        break;
    }
    }
    return 0;
}
