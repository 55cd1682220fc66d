/* Text corpora for language models: the npm corpora, .txt and .jsonl files. */
#include "lethe/corpus.h"
#include "lethe/data.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/sha256.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void lethe_corpus_free(lethe_corpus *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->texts && i < c->n; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->lens);
    free(c->ids);
    free(c);
}

/* Room for cap documents. */
static lethe_status corpus_reserve(lethe_corpus *c, size_t cap)
{
    char **t = realloc(c->texts, cap * sizeof *t);
    if (t)
        c->texts = t;
    size_t *l = realloc(c->lens, cap * sizeof *l);
    if (l)
        c->lens = l;
    uint64_t *id = realloc(c->ids, cap * sizeof *id);
    if (id)
        c->ids = id;
    return t && l && id ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory for the corpus");
}

/* Append a copy of text[0..len) with id `id`. */
static lethe_status corpus_push(lethe_corpus *c, size_t *cap, uint64_t id, const char *text,
                                size_t len)
{
    if (c->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        lethe_status st = corpus_reserve(c, nc);
        if (st != LETHE_OK)
            return st;
        *cap = nc;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for the corpus");
    memcpy(copy, text, len);
    copy[len] = 0;
    c->texts[c->n] = copy;
    c->lens[c->n] = len;
    c->ids[c->n] = id;
    c->n++;
    return LETHE_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The "text" member of one npm .json file. */
static lethe_status push_json_file(lethe_corpus *c, size_t *cap, const char *dir,
                                   const char *file, uint64_t id)
{
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cJSON *j = NULL;
    const char *text = NULL;
    lethe_status st = lethe_json_read(path, &j);
    if (st == LETHE_OK)
        st = lethe_json_get_string(j, "text", path, &text);
    if (st == LETHE_OK)
        st = corpus_push(c, cap, id, text, strlen(text));
    cJSON_Delete(j);
    return st;
}

/* The location of an installed npm corpus into dir; NOT_FOUND with a hint. */
static lethe_status npm_dir(const char *name, char *dir, size_t cap)
{
    const lethe_data_entry *e;
    lethe_data_state ds;
    lethe_status st = lethe_data_find(name, &e);
    if (st == LETHE_OK)
        st = lethe_data_probe(e, &ds);
    if (st != LETHE_OK)
        return st;
    if (!ds.installed)
        return lethe_fail(LETHE_ERR_NOT_FOUND,
                          "corpus %s is not installed (%s missing; run 'lethe data install %s' "
                          "or scripts/deps.sh)",
                          name, ds.first_missing ? ds.first_missing : "files", name);
    return lethe_data_location(e, dir, cap);
}

static lethe_status load_moby(lethe_corpus *c, long limit)
{
    char dir[4096], path[4200];
    size_t cap = 0;
    lethe_status st = npm_dir("moby-dick", dir, sizeof dir);
    if (st != LETHE_OK)
        return st;
    snprintf(path, sizeof path, "%s/file_list.json", dir);
    cJSON *list = NULL;
    if ((st = lethe_json_read(path, &list)) != LETHE_OK)
        return st;
    if (!cJSON_IsArray(list))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: expected an array of file names", path);
    uint64_t id = 0;
    for (cJSON *it = list ? list->child : NULL; st == LETHE_OK && it; it = it->next, id++) {
        if (limit > 0 && (long)c->n >= limit)
            break;
        if (!cJSON_IsString(it) || !ends_with(it->valuestring, ".txt")) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: entry %llu is not a .txt file name", path,
                            (unsigned long long)id);
            break;
        }
        char file[512];
        size_t k = strlen(it->valuestring) - 4;
        snprintf(file, sizeof file, "%.*s.json", (int)(k < 400 ? k : 400), it->valuestring);
        st = push_json_file(c, &cap, dir, file, id);
    }
    cJSON_Delete(list);
    return st;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static lethe_status load_sotu(lethe_corpus *c, long limit)
{
    char dir[4096];
    size_t cap = 0, n = 0, ncap = 0;
    char **names = NULL;
    lethe_status st = npm_dir("sotu", dir, sizeof dir);
    if (st != LETHE_OK)
        return st;
    DIR *d = opendir(dir);
    if (!d)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot read the directory", dir);
    for (struct dirent *e; st == LETHE_OK && (e = readdir(d));) {
        /* the addresses: YEAR_NAME_PARTY.json */
        if (!ends_with(e->d_name, ".json") || e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 256;
            char **p = realloc(names, ncap * sizeof *p);
            if (!p) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name)))
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (st == LETHE_OK)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; st == LETHE_OK && i < n && (limit <= 0 || (long)i < limit); i++)
        st = push_json_file(c, &cap, dir, names[i], i);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

/* One document per non-blank line: {"text": "..."} or "...". */
static lethe_status load_jsonl(lethe_corpus *c, const char *path, long limit)
{
    unsigned char *buf;
    size_t len, cap = 0;
    lethe_status st = lethe_file_read(path, &buf, &len);
    if (st != LETHE_OK)
        return st;
    const char *p = (const char *)buf, *end = p + len;
    size_t line = 0;
    uint64_t id = 0;
    while (st == LETHE_OK && p < end && (limit <= 0 || (long)c->n < limit)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%zu", path, line);
            cJSON *j = NULL;
            st = lethe_json_parse_at(p, (size_t)(e - p), path, line, &j);
            const char *text = NULL;
            if (st == LETHE_OK) {
                if (cJSON_IsString(j))
                    text = j->valuestring;
                else if (cJSON_IsObject(j))
                    st = lethe_json_get_string(j, "text", where, &text);
                else
                    st = lethe_fail(LETHE_ERR_FORMAT,
                                    "%s: expected an object with a \"text\" string, or a string",
                                    where);
            }
            if (st == LETHE_OK)
                st = corpus_push(c, &cap, id++, text, strlen(text));
            cJSON_Delete(j);
        }
        p = nl ? nl + 1 : end;
    }
    free(buf);
    return st;
}

static lethe_status load_txt(lethe_corpus *c, const char *path)
{
    unsigned char *buf;
    size_t len, cap = 0;
    lethe_status st = lethe_file_read(path, &buf, &len);
    if (st != LETHE_OK)
        return st;
    st = corpus_push(c, &cap, 0, (const char *)buf, len);
    free(buf);
    return st;
}

/* "A,B,...": each part loaded on its own, the documents one after another,
 * the ids of part k (from 0) offset by k << 40; limit applies to the whole. */
static lethe_status load_parts(lethe_corpus *c, const char *spec, long limit)
{
    size_t cap = 0, k = 0;
    lethe_status st = LETHE_OK;
    for (const char *p = spec; st == LETHE_OK; k++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char part[sizeof c->name];
        if (n == 0 || n >= sizeof part)
            return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: an empty or too long part in the "
                              "corpus list (expected NAME,NAME,...)", spec);
        memcpy(part, p, n);
        part[n] = 0;
        lethe_corpus *one;
        if ((st = lethe_corpus_load(part, 0, &one)) != LETHE_OK)
            return st;
        for (size_t i = 0; st == LETHE_OK && i < one->n; i++)
            if (one->ids[i] >> 40)
                st = lethe_fail(LETHE_ERR_INVALID, "%s: document id %llu too large for a "
                                "corpus list", part, (unsigned long long)one->ids[i]);
            else
                st = corpus_push(c, &cap, (uint64_t)k << 40 | one->ids[i], one->texts[i],
                                 one->lens[i]);
        lethe_corpus_free(one);
        if (!comma)
            break;
        p = comma + 1;
    }
    while (st == LETHE_OK && limit > 0 && c->n > (size_t)limit)
        free(c->texts[--c->n]);
    return st;
}

lethe_status lethe_corpus_load(const char *spec, long limit, lethe_corpus **out)
{
    *out = NULL;
    lethe_corpus *c = calloc(1, sizeof *c);
    if (!c)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(c->name, sizeof c->name, "%s", spec);
    lethe_status st;
    if (strchr(spec, ','))
        st = load_parts(c, spec, limit);
    else if (!strcmp(spec, "moby") || !strcmp(spec, "moby-dick"))
        st = load_moby(c, limit);
    else if (!strcmp(spec, "sotu"))
        st = load_sotu(c, limit);
    else if (ends_with(spec, ".jsonl"))
        st = load_jsonl(c, spec, limit);
    else if (ends_with(spec, ".txt"))
        st = load_txt(c, spec);
    else
        st = lethe_fail(LETHE_ERR_NOT_FOUND,
                        "unknown corpus '%s' (expected moby, sotu, FILE.txt or FILE.jsonl, or "
                        "a comma-separated list of them)", spec);
    size_t bytes = 0;
    for (size_t i = 0; st == LETHE_OK && i < c->n; i++)
        bytes += c->lens[i];
    if (st == LETHE_OK && c->n == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the corpus is empty (no documents)", spec);
    else if (st == LETHE_OK && bytes == 0)
        st = lethe_fail(LETHE_ERR_INVALID, "%s: the corpus is empty (%zu document%s, no text)",
                        spec, c->n, c->n == 1 ? "" : "s");
    if (st != LETHE_OK) {
        lethe_corpus_free(c);
        return st;
    }
    *out = c;
    return LETHE_OK;
}

void lethe_corpus_hash(const lethe_corpus *c, char hex[17])
{
    lethe_sha256 s;
    char full[65];
    lethe_sha256_init(&s);
    for (size_t i = 0; i < c->n; i++) {
        uint64_t head[2] = {c->ids[i], (uint64_t)c->lens[i]};
        lethe_sha256_update(&s, head, sizeof head);
        lethe_sha256_update(&s, c->texts[i], c->lens[i]);
    }
    lethe_sha256_final(&s, full);
    memcpy(hex, full, 16);
    hex[16] = 0;
}
