/* The append-only deletion ledger. */
#include "lethe/ledger.h"
#include "lethe/fileio.h"
#include "lethe/json.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

void lethe_ledger_free(lethe_ledger *l)
{
    if (!l)
        return;
    for (long i = 0; i < l->n_req; i++)
        free(l->req[i].ids);
    free(l->req);
    free(l->path);
    free(l);
}

static lethe_status bad(const lethe_ledger *l, long rec, const char *what)
{
    return lethe_fail(LETHE_ERR_FORMAT, "%s: record %ld: %s; the ledger is damaged (see "
                      "'lethe ledger verify')", l->path, rec, what);
}

/* Apply one complete record (its JSON text) to the replayed state. */
static lethe_status replay(lethe_ledger *l, long rec, const char *json, size_t len)
{
    cJSON *o;
    if (lethe_json_parse(json, len, l->path, &o) != LETHE_OK)
        return bad(l, rec, "not JSON");
    long long req;
    const char *state, *t;
    lethe_status st = LETHE_OK;
    if (lethe_json_get_int(o, "req", l->path, &req) != LETHE_OK || req < 1 ||
        lethe_json_get_string(o, "state", l->path, &state) != LETHE_OK ||
        lethe_json_get_string(o, "time", l->path, &t) != LETHE_OK) {
        st = bad(l, rec, "missing req, state or time");
    } else if (!strcmp(state, "received")) {
        const cJSON *ids = cJSON_GetObjectItem(o, "ids");
        long n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : 0;
        lethe_request *grown = realloc(l->req, sizeof *grown * (size_t)(l->n_req + 1));
        if (req != l->n_req + 1)
            st = bad(l, rec, "request numbers out of order");
        else if (n < 1)
            st = bad(l, rec, "a received request without ids");
        else if (!grown)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        if (grown)
            l->req = grown;
        lethe_request *r = st == LETHE_OK ? &l->req[l->n_req] : NULL;
        if (r) {
            memset(r, 0, sizeof *r);
            r->id = req;
            snprintf(r->received, sizeof r->received, "%s", t);
            if (!(r->ids = malloc(sizeof(uint64_t) * (size_t)n)))
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        }
        for (long i = 0; st == LETHE_OK && i < n; i++) {
            const cJSON *v = cJSON_GetArrayItem(ids, (int)i);
            double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
            if (d < 0 || d > 9007199254740992.0 || d != (double)(uint64_t)d)
                st = bad(l, rec, "an id that is not a whole number");
            else
                r->ids[r->n_ids++] = (uint64_t)d;
        }
        if (st == LETHE_OK)
            l->n_req++;
        else if (r)
            free(r->ids);
    } else if (!strcmp(state, "applied")) {
        if (req > l->n_req)
            st = bad(l, rec, "applied before it was received");
        else
            l->req[req - 1].state = LETHE_REQ_APPLIED;
    } else {
        st = bad(l, rec, "unknown state");
    }
    cJSON_Delete(o);
    return st;
}

lethe_status lethe_ledger_open(const char *path, lethe_ledger **out)
{
    *out = NULL;
    lethe_ledger *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    unsigned char *data = NULL;
    size_t len = 0;
    struct stat sb;
    lethe_status st = stat(path, &sb) == 0 ? lethe_file_read(path, &data, &len) : LETHE_OK;
    size_t pos = 0;
    while (st == LETHE_OK && pos < len) {
        unsigned char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl) { /* cut short by a crash: never acknowledged */
            l->torn = 1;
            break;
        }
        size_t line = (size_t)(nl - (data + pos));
        long rec = l->n_records + 1;
        char *sp = line >= 10 ? (char *)data + pos + line - 9 : NULL;
        char *end;
        unsigned long crc = sp && *sp == ' ' ? strtoul(sp + 1, &end, 16) : 0;
        if (!sp || *sp != ' ' || end != (char *)nl)
            st = bad(l, rec, "no checksum");
        else if (crc != crc32(0, data + pos, (uInt)(line - 9)))
            st = bad(l, rec, "checksum mismatch");
        else
            st = replay(l, rec, (char *)data + pos, line - 9);
        if (st == LETHE_OK) {
            l->n_records++;
            pos += line + 1;
            l->valid_bytes = (long)pos;
        }
    }
    free(data);
    if (st != LETHE_OK) {
        lethe_ledger_free(l);
        return st;
    }
    *out = l;
    return LETHE_OK;
}

lethe_status lethe_ledger_read(const char *dir, lethe_ledger **out)
{
    *out = NULL;
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/ledger.log", dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: not a directory", dir);
    if (stat(path, &sb) != 0)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no deletion ledger (no ledger.log: no "
                          "deletion was ever requested here, or this is not a run directory)",
                          dir);
    return lethe_ledger_open(path, out);
}

/* Append one record durably: drop a torn tail, write, fsync (and the
 * directory when the file is new). */
static lethe_status append(lethe_ledger *l, cJSON *o)
{
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!json)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    size_t n = strlen(json);
    char *line = malloc(n + 11);
    if (!line) {
        free(json);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    snprintf(line, n + 11, "%s %08lx\n", json, (unsigned long)crc32(0, (const Bytef *)json, (uInt)n));
    free(json);
    struct stat sb;
    int is_new = stat(l->path, &sb) != 0;
    int fd = open(l->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    lethe_status st = LETHE_OK;
    if (fd < 0)
        st = lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", l->path, strerror(errno));
    else if (ftruncate(fd, l->valid_bytes) != 0 || lseek(fd, l->valid_bytes, SEEK_SET) < 0)
        st = lethe_fail(LETHE_ERR_IO, "%s: %s", l->path, strerror(errno));
    else if (write(fd, line, n + 10) != (ssize_t)(n + 10) || fsync(fd) != 0)
        st = lethe_fail(LETHE_ERR_IO, "%s: cannot write a record: %s", l->path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (st == LETHE_OK && is_new) {
        char *copy = strdup(l->path);
        int dfd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(copy);
    }
    if (st == LETHE_OK) {
        l->valid_bytes += (long)(n + 10);
        l->n_records++;
        l->torn = 0;
    }
    free(line);
    return st;
}

static cJSON *record(long req, const char *state)
{
    char t[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "req", (double)req);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddStringToObject(o, "time", t);
    return o;
}

lethe_status lethe_ledger_receive(lethe_ledger *l, const uint64_t *ids, long n, long *req_id)
{
    if (n < 1)
        return lethe_fail(LETHE_ERR_INVALID, "a deletion request needs at least one id");
    long req = l->n_req + 1;
    cJSON *o = record(req, "received"), *arr = cJSON_AddArrayToObject(o, "ids");
    for (long i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)ids[i]));
    lethe_request *grown = realloc(l->req, sizeof *grown * (size_t)(l->n_req + 1));
    uint64_t *copy = malloc(sizeof(uint64_t) * (size_t)n);
    if (grown)
        l->req = grown;
    if (!grown || !copy) {
        free(copy);
        cJSON_Delete(o);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    snprintf(l->req[l->n_req].received, sizeof l->req[0].received, "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(o, "time")));
    lethe_status st = append(l, o);
    if (st != LETHE_OK) {
        free(copy);
        return st;
    }
    memcpy(copy, ids, sizeof(uint64_t) * (size_t)n);
    l->req[l->n_req].id = req;
    l->req[l->n_req].state = LETHE_REQ_RECEIVED;
    l->req[l->n_req].ids = copy;
    l->req[l->n_req].n_ids = n;
    l->n_req++;
    *req_id = req;
    return LETHE_OK;
}

lethe_status lethe_ledger_applied(lethe_ledger *l, long req_id)
{
    if (req_id < 1 || req_id > l->n_req)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no request %ld", l->path, req_id);
    if (l->req[req_id - 1].state == LETHE_REQ_APPLIED)
        return LETHE_OK;
    lethe_status st = append(l, record(req_id, "applied"));
    if (st == LETHE_OK)
        l->req[req_id - 1].state = LETHE_REQ_APPLIED;
    return st;
}

long lethe_ledger_pending(const lethe_ledger *l)
{
    long n = 0;
    for (long i = 0; i < l->n_req; i++)
        n += l->req[i].state == LETHE_REQ_RECEIVED;
    return n;
}

long lethe_ledger_find(const lethe_ledger *l, uint64_t id)
{
    for (long i = 0; i < l->n_req; i++)
        for (long k = 0; k < l->req[i].n_ids; k++)
            if (l->req[i].ids[k] == id)
                return l->req[i].id;
    return 0;
}
