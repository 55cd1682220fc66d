/* The HTTP side of lethe/serve.h over libmicrohttpd: a thread per
 * connection (at most max_connections), bodies gathered up to max_body,
 * idle connections closed after timeout_s, streams drained from their job. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/live.h"
#include "serve_impl.h"

void lethe_serve_defaults(lethe_serve_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->max_body = 1 << 20;
    c->max_new = 256;
    c->timeout_s = 30;
    c->gen_timeout_s = 120;
    c->max_connections = 128;
}

int lethe_serve_port(const lethe_serve_t *s)
{
    return s->port;
}

/* ---- one connection's request ------------------------------------------ */

typedef struct conn {
    char *body;
    size_t len, cap, dropped;
    int too_big, status, ep;
    struct timespec t0;
} conn;

static long since_us(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - t0->tv_sec) * 1000000L + (t.tv_nsec - t0->tv_nsec) / 1000);
}

static int endpoint(const char *path)
{
    if (!strcmp(path, "/v1/completions"))
        return SERVE_EP_COMPLETIONS;
    if (!strcmp(path, "/v1/chat/completions"))
        return SERVE_EP_CHAT;
    if (!strcmp(path, "/v1/predict"))
        return SERVE_EP_PREDICT;
    if (!strncmp(path, "/v1/deletions", 13))
        return SERVE_EP_DELETIONS;
    if (!strncmp(path, "/v1/guard/", 10))
        return SERVE_EP_GUARD;
    return SERVE_EP_OTHER;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    long n;
    while ((n = serve_job_read(cls, buf, max)) == 0) {
    }
    return n < 0 ? (ssize_t)MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_free(void *cls)
{
    serve_job_release(cls);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, conn *k, serve_resp *r)
{
    struct MHD_Response *m;
    if (r->stream) {
        m = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, r->stream,
                                              stream_free);
        if (!m) {
            serve_job_release(r->stream);
            return MHD_NO;
        }
        MHD_add_response_header(m, "Content-Type", "text/event-stream");
        MHD_add_response_header(m, "Cache-Control", "no-cache");
    } else {
        m = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!m) {
            free(r->body);
            return MHD_NO;
        }
        MHD_add_response_header(m, "Content-Type", r->type ? r->type : "application/json");
    }
    if (r->status == 401)
        MHD_add_response_header(m, "WWW-Authenticate", "Bearer");
    k->status = r->status;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, m);
    MHD_destroy_response(m);
    return ok;
}

static enum MHD_Result too_big(struct MHD_Connection *c, serve *s, conn *k)
{
    serve_resp r = {0};
    serve_error(&r, 413, NULL, "the request body exceeds %zu bytes", s->cfg.max_body);
    return send_resp(c, k, &r);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **con_cls)
{
    (void)version;
    serve *s = cls;
    conn *k = *con_cls;
    if (!k) {
        if (!(k = calloc(1, sizeof *k)))
            return MHD_NO;
        *con_cls = k;
        clock_gettime(CLOCK_MONOTONIC, &k->t0);
        k->ep = endpoint(url);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
            k->too_big = 1;
            return too_big(c, s, k);
        }
        return MHD_YES;
    }
    if (*size) {
        /* a body that outgrows the limit is read and dropped, up to 16
         * times the limit, then answered 413 (or cut off beyond that) */
        if (k->too_big || k->len + *size > s->cfg.max_body) {
            k->dropped += *size;
            k->too_big = 1;
            *size = 0;
            return k->dropped > 16 * s->cfg.max_body ? MHD_NO : MHD_YES;
        }
        if (k->len + *size > k->cap) {
            size_t cap = (k->len + *size) * 2 < s->cfg.max_body ? (k->len + *size) * 2
                                                                : s->cfg.max_body;
            char *b = realloc(k->body, cap);
            if (!b)
                return MHD_NO;
            k->body = b, k->cap = cap;
        }
        memcpy(k->body + k->len, data, *size);
        k->len += *size, *size = 0;
        return MHD_YES;
    }
    if (k->too_big)
        return k->status ? MHD_YES : too_big(c, s, k);
    serve_req q = {method, url, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                   k->body ? k->body : "", k->len};
    serve_resp r;
    serve_route(s, &q, &r);
    return send_resp(c, k, &r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode why)
{
    (void)c, (void)why;
    serve *s = cls;
    conn *k = *con_cls;
    if (!k)
        return;
    if (k->status)
        serve_metrics_record(s, k->ep, k->status, since_us(&k->t0));
    free(k->body);
    free(k);
    *con_cls = NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static lethe_status read_token(serve *s, const char *path)
{
    unsigned char *b = NULL;
    size_t n = 0;
    lethe_status st = lethe_file_read(path, &b, &n);
    if (st != LETHE_OK)
        return st;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    if (n == 0 || n >= sizeof s->token || memchr(b, '\n', n) || memchr(b, 0, n))
        st = lethe_fail(LETHE_ERR_INVALID, "%s: a token file holds one token of 1 to %zu bytes "
                        "on one line", path, sizeof s->token - 1);
    else
        memcpy(s->token, b, n), s->token_len = n;
    free(b);
    return st;
}

static int loopback(const struct sockaddr *a)
{
    if (a->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr) >> 24) ==
               127;
    if (a->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr);
    return 0;
}

/* A language model (a GPT run or a Hugging Face GPT-2 directory) or
 * something lethe/live.h serves. */
static int is_lm(const char *dir)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/sisa.json", dir);
    if (!stat(p, &st))
        return 0;
    snprintf(p, sizeof p, "%s/s3t.json", dir);
    if (!stat(p, &st))
        return 0;
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *j = NULL;
    if (lethe_json_read(p, &j) != LETHE_OK)
        return 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    int lm = (cJSON_IsString(m) && !strcmp(m->valuestring, "gpt")) ||
             cJSON_GetObjectItemCaseSensitive(j, "model_type") != NULL;
    cJSON_Delete(j);
    return lm;
}

lethe_status lethe_serve_start(const lethe_serve_cfg *c, lethe_serve_t **out)
{
    *out = NULL;
    if (!c || !c->run || !c->host)
        return lethe_fail(LETHE_ERR_INVALID, "a run directory and a host are needed");
    if (c->port < 0 || c->port > 65535 || c->threads < 0 || c->max_body < 64 ||
        c->max_new < 1 || c->max_prompt < 0 || c->timeout_s < 1 || c->gen_timeout_s < 1 ||
        c->max_connections < 1)
        return lethe_fail(LETHE_ERR_INVALID, "a port 0-65535, and positive limits, are "
                                             "needed");
    if (c->guard && !c->guard[0])
        return lethe_fail(LETHE_ERR_INVALID, "an empty guard path");
    if (c->mode && (!c->guard || (strcmp(c->mode, "guard") && strcmp(c->mode, "eco") &&
                                  strcmp(c->mode, "alu"))))
        return lethe_fail(LETHE_ERR_INVALID, "a mode (guard, eco or alu) goes with a guard, "
                          "not '%s'", c->mode);
    serve *s = calloc(1, sizeof *s);
    if (!s)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    s->cfg = *c;
    if (s->cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = n > 0 ? (int)n : 1;
    }
    pthread_rwlock_init(&s->guard_lock, NULL);
    s->created = (long)time(NULL);
    const char *base = strrchr(c->run, '/');
    base = base && base[1] ? base + 1 : c->run;
    snprintf(s->model_name, sizeof s->model_name, "%s", c->model_name ? c->model_name : base);
    lethe_status st = c->token_file ? read_token(s, c->token_file) : LETHE_OK;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    if (st == LETHE_OK && getaddrinfo(c->host, port, &hints, &ai))
        st = lethe_fail(LETHE_ERR_INVALID, "cannot resolve the address '%s'", c->host);
    if (st == LETHE_OK && !loopback(ai->ai_addr) && !s->token_len)
        st = lethe_fail(LETHE_ERR_INVALID, "%s is not a loopback address: a token file "
                        "is needed to listen there", c->host);
    if (st == LETHE_OK) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)c->port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)c->max_connections, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
            MHD_OPTION_END);
        if (!s->daemon)
            st = lethe_fail(LETHE_ERR_IO, "cannot listen on %s port %d (in use, or not "
                            "this machine's address)", c->host, c->port);
    }
    if (ai)
        freeaddrinfo(ai);
    if (st == LETHE_OK) {
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
        s->port = i ? i->port : c->port;
        if (is_lm(c->run))
            st = serve_lm_open(s);
        else if (c->guard)
            st = lethe_fail(LETHE_ERR_INVALID, "%s is not a language model; a guard "
                            "serves language models only", c->run);
        else
            st = lethe_live_open(c->run, &s->live);
    }
    if (st != LETHE_OK) {
        lethe_serve_stop(s);
        return st;
    }
    atomic_store(&s->ready, 1);
    *out = s;
    return LETHE_OK;
}

void lethe_serve_stop(lethe_serve_t *h)
{
    serve *s = h;
    if (!s)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    serve_lm_free(s->lm);
    lethe_live_free(s->live);
    pthread_rwlock_destroy(&s->guard_lock);
    free(s);
}
