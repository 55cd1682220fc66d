/* The facts behind the benchmark's answers, for the audit's latent probe
 * and neighbour probe: a benchmark made by lethe's generator
 * (lethe/authors.h) is a function of the seed in its manifest, so every
 * row's fact (its key: "science fiction", "Havana, Cuba", "a marine
 * biologist") can be made again and looked up by question. */
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/json.h"

typedef struct entry {
    const char *q, *key;
} entry;

static int by_question(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->q, ((const entry *)b)->q);
}

void audit_keys_free(audit_keys *k)
{
    for (size_t i = 0; i < k->n_tables; i++)
        lethe_tofu_free(&k->tables[i]);
    free(k->tables);
    free(k->map);
    memset(k, 0, sizeof *k);
}

/* The manifest's generator settings; 0 when DATA was not made by lethe. */
static int manifest(const char *data, double *seed, double *authors, double *qa)
{
    char path[4096];
    cJSON *m = NULL;
    int ok = 0;
    snprintf(path, sizeof path, "%s/manifest.json", data);
    FILE *f = fopen(path, "r");
    if (f && (fclose(f), lethe_json_read(path, &m) == LETHE_OK)) {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(m, "generator");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(m, "seed");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "authors");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(m, "qa_per_author");
        ok = cJSON_IsString(g) && !strncmp(g->valuestring, "lethe ", 6) && cJSON_IsNumber(s) &&
             cJSON_IsNumber(n) && cJSON_IsNumber(k) && s->valuedouble >= 0 &&
             s->valuedouble <= 9007199254740992.0 && n->valuedouble >= LETHE_AUTHORS_MIN &&
             n->valuedouble <= LETHE_AUTHORS_MAX && k->valuedouble >= 1 &&
             k->valuedouble <= LETHE_AUTHORS_QA_MAX;
        if (ok)
            *seed = s->valuedouble, *authors = n->valuedouble, *qa = k->valuedouble;
    }
    cJSON_Delete(m);
    return ok;
}

lethe_status audit_keys_load(const char *data, audit_keys *k)
{
    memset(k, 0, sizeof *k);
    double seed, authors, qa;
    if (!manifest(data, &seed, &authors, &qa))
        return LETHE_OK; /* no keys: the probes that need them say so */
    const long n = (long)authors, h = lethe_authors_split_size(n, 10);
    k->tables = calloc((size_t)(n + h), sizeof *k->tables);
    if (!k->tables)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = LETHE_OK;
    size_t rows = 0;
    for (long i = 0; !st && i < n + h; i++) {
        uint64_t id = i < n ? (uint64_t)i : (uint64_t)(LETHE_AUTHORS_MAX + i - n);
        st = lethe_authors_qa((uint64_t)seed, id, (int)qa, &k->tables[i]);
        if (!st)
            k->n_tables++, rows += k->tables[i].n;
    }
    k->map = st ? NULL : malloc(sizeof(entry) * (rows ? rows : 1));
    if (!st && !k->map)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    entry *e = k->map;
    for (size_t t = 0; !st && t < k->n_tables; t++)
        for (size_t r = 0; r < k->tables[t].n; r++)
            if (k->tables[t].rows[r].key)
                e[k->n++] = (entry){k->tables[t].rows[r].question, k->tables[t].rows[r].key};
    if (st) {
        audit_keys_free(k);
        return st;
    }
    qsort(e, k->n, sizeof *e, by_question);
    return LETHE_OK;
}

lethe_status audit_keys_of(const audit_keys *k, const char *name, const lethe_tofu *t,
                           const char **keys)
{
    for (size_t i = 0; i < t->n; i++) {
        entry want = {t->rows[i].question, NULL};
        const entry *hit = k->n ? bsearch(&want, k->map, k->n, sizeof want, by_question) : NULL;
        if (!hit || !strstr(t->rows[i].answer, hit->key))
            return lethe_fail(LETHE_ERR_INVALID, "%s row %zu ('%.60s') is not the benchmark "
                              "its manifest.json describes", name, i + 1, t->rows[i].question);
        keys[i] = hit->key;
    }
    return LETHE_OK;
}
