/* The pairs of `lethe guard fit` over MUSE's layout (lethe/muse.h): one
 * target per forget document, its passages the forget pairs; the passages
 * of retain1 and retain2 the retain pairs (less the privleak retain
 * passages, MUSE's retain VerbMem, held out of the classifier). Rules in
 * lethe/guard_fit.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fit_muse.h"
#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/muse.h"

static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static lethe_status nomem(void)
{
    return lethe_fail(LETHE_ERR_NOMEM, "guard fit: out of memory");
}

int guard_fit_is_muse(const char *data)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/verbmem/forget.json", data);
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Append a string to a growing array of owned strings. */
static int push(char ***a, size_t *n, size_t *cap, char *s)
{
    if (!s)
        return -1;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        char **b = realloc(*a, c * sizeof *b);
        if (!b) {
            free(s);
            return -1;
        }
        *a = b, *cap = c;
    }
    (*a)[(*n)++] = s;
    return 0;
}

/* Passages of text as MUSE cuts them: LETHE_MUSE_PASSAGE_WORDS words from
 * word 0 in steps of that many; the first LETHE_MUSE_PROMPT_WORDS words the
 * question (the prompt), the whole passage the answer. A last, shorter
 * piece is a passage too when it has a word past the prompt. *n_out: the
 * passages added. */
static lethe_status cut(const char *t, char ***q, char ***a, size_t *n, size_t *cap_q,
                        size_t *cap_a, size_t *n_out)
{
    const size_t P = LETHE_MUSE_PASSAGE_WORDS, Q = LETHE_MUSE_PROMPT_WORDS;
    size_t words = 0, start = 0, prompt_end = 0, end = 0, n0 = *n;
    const char *p = t;
    for (;;) {
        while (space(*p))
            p++;
        int at_end = !*p;
        if (!at_end) {
            if (words % P == 0)
                start = (size_t)(p - t);
            while (*p && !space(*p))
                p++;
            end = (size_t)(p - t);
            words++;
            if (words % P == Q)
                prompt_end = end;
        }
        size_t in = words % P;
        if ((at_end && in > Q) || (!at_end && in == 0)) {
            size_t na = *n;
            if (push(q, &na, cap_q, strndup(t + start, prompt_end - start)) ||
                push(a, n, cap_a, strndup(t + start, end - start)))
                return nomem();
        }
        if (at_end)
            break;
    }
    *n_out = *n - n0;
    return LETHE_OK;
}

void guard_muse_free(guard_muse *m)
{
    for (size_t i = 0; i < m->nf; i++)
        free(m->fq[i]), free(m->fa[i]);
    for (size_t i = 0; i < m->nr_all; i++)
        free(m->rq[i]), free(m->ra[i]);
    for (size_t i = 0; i < m->nt; i++)
        free((char *)m->t[i].name);
    free(m->fq), free(m->fa), free(m->rq), free(m->ra), free(m->owner), free(m->t);
    free(m->more);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(m->held[i]);
    lethe_corpus_free(m->forget);
    lethe_corpus_free(m->retain[0]);
    lethe_corpus_free(m->retain[1]);
}

static int in_array(const cJSON *a, const char *s)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return 1;
    return 0;
}

/* The strings of a MUSE file: a JSON array of strings, or of objects whose
 * "question" and "answer" are. */
static lethe_status add_texts(guard_muse *m, const cJSON *a, const char *path)
{
    if (!cJSON_IsArray(a))
        return lethe_fail(LETHE_ERR_FORMAT, "%s: not a JSON array (MUSE's layout)", path);
    size_t n = 2 * (size_t)cJSON_GetArraySize(a);
    const char **more = realloc(m->more, (m->n_more + n + 1) * sizeof *more);
    if (!more)
        return nomem();
    m->more = more;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const char *q = cJSON_GetStringValue(e), *ans = NULL;
        if (!q) {
            q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "question"));
            ans = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "answer"));
            if (!q || !ans)
                return lethe_fail(LETHE_ERR_FORMAT, "%s: an item that is neither a string nor "
                                  "a question and answer", path);
        }
        m->more[m->n_more++] = q;
        if (ans)
            m->more[m->n_more++] = ans;
    }
    return LETHE_OK;
}

lethe_status guard_muse_load(const char *data, guard_muse *m, char *paths[3])
{
    static const char *const held[3] = {"privleak/retain.json", "knowmem/retain_qa.json",
                                        "knowmem/retain_qa_icl.json"};
    if (asprintf(&paths[0], "%s/raw/forget.jsonl", data) < 0 ||
        asprintf(&paths[1], "%s/raw/retain1.jsonl and retain2.jsonl", data) < 0 ||
        asprintf(&paths[2], "%s/%s", data, held[0]) < 0)
        return nomem();
    lethe_status st = lethe_corpus_load(paths[0], 0, &m->forget);
    for (int i = 0; i < 2 && st == LETHE_OK; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/raw/retain%d.jsonl", data, i + 1);
        st = lethe_corpus_load(path, 0, &m->retain[i]);
    }
    for (int i = 0; i < 3 && st == LETHE_OK; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", data, held[i]);
        if ((st = lethe_json_read(path, &m->held[i])) == LETHE_OK)
            st = add_texts(m, m->held[i], path);
    }
    if (st != LETHE_OK)
        return st;
    /* one target a forget document, its passages its pairs */
    m->t = calloc(m->forget->n, sizeof *m->t);
    if (!m->t)
        return nomem();
    size_t cq = 0, ca = 0, co = 0;
    for (size_t d = 0; d < m->forget->n; d++) {
        char *name = NULL;
        if (asprintf(&name, "forget document %llu", (unsigned long long)m->forget->ids[d]) < 0)
            return nomem();
        m->t[m->nt++].name = name;
        size_t k = 0;
        if ((st = cut(m->forget->texts[d], &m->fq, &m->fa, &m->nf, &cq, &ca, &k)) != LETHE_OK)
            return st;
        size_t *o = m->nf > co ? realloc(m->owner, m->nf * sizeof *o) : m->owner;
        if (!o)
            return nomem();
        m->owner = o, co = m->nf > co ? m->nf : co;
        for (size_t i = m->nf - k; i < m->nf; i++)
            m->owner[i] = d;
    }
    /* retain1's and retain2's passages; the privleak retain ones held out */
    cq = ca = 0;
    for (int r = 0; r < 2; r++)
        for (size_t d = 0; d < m->retain[r]->n; d++) {
            size_t k = 0;
            if ((st = cut(m->retain[r]->texts[d], &m->rq, &m->ra, &m->nr_all, &cq, &ca, &k)))
                return st;
        }
    /* held-out passages move to the end (ra[nr..nr_all)) */
    for (size_t i = 0; i < m->nr_all; i++) {
        if (in_array(m->held[0], m->ra[i])) {
            m->excluded++;
            continue;
        }
        char *q = m->rq[i], *a = m->ra[i];
        memmove(m->rq + m->nr + 1, m->rq + m->nr, (i - m->nr) * sizeof *m->rq);
        memmove(m->ra + m->nr + 1, m->ra + m->nr, (i - m->nr) * sizeof *m->ra);
        m->rq[m->nr] = q, m->ra[m->nr] = a;
        m->nr++;
    }
    if (!m->nf)
        return lethe_fail(LETHE_ERR_INVALID, "%s: no passage of more than %d words",
                          paths[0], LETHE_MUSE_PROMPT_WORDS);
    return LETHE_OK;
}
