/* The guard file (lethe/guard_file.h): the in-memory guard - targets,
 * answers, n-grams, the automaton over them, the index of target names,
 * the classifier bytes and answer retrieval. The LGRD file is in
 * guard_file_io.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "guard_file_impl.h"

/* ---- the retrieval index -------------------------------------------------
 *
 * An inverted index over the answers' sparse vectors. For each hash column
 * c, either the postings (answer number, value) of the answers whose
 * vector has c, in increasing answer number, at post[start[c] ..
 * start[c + 1]), or, for a column at least half the answers have (short
 * character n-grams such as " th"), a dense row of every answer's value at
 * dense[slot[c] * n_answers ..] (0 for the answers without it): no larger
 * than its postings, and summed in one sequential pass.
 *
 * The answers' vectors (guard_target.vec) stay the source of truth; the
 * index is derived from them by the first retrieval after a change (every
 * change to the answers or their numbering marks it dirty), under a mutex,
 * as the automaton is (guard_impl.h), so concurrent retrievals on an
 * unchanged guard are safe.
 *
 * It lives in one block with the guard's feature scratch, which only this
 * file uses: g->scratch points at the block's last member. */
typedef struct guard_posting {
    uint32_t ans;
    float val;
} guard_posting;

typedef struct guard_retr {
    pthread_mutex_t lock; /* serialises lazy builds */
    atomic_int dirty;     /* the index misses a change (or was never built) */
    size_t *start;        /* (dim + 1) */
    guard_posting *post;  /* (start[dim]) */
    int32_t *slot;        /* (dim) a dense column's row, or -1 */
    float *dense;         /* (dense columns * answers) */
    float scratch[];      /* (dim) g->scratch */
} guard_retr;

static guard_retr *retr_of(const lethe_guard_t *g)
{
    return (guard_retr *)(void *)((char *)g->scratch - offsetof(guard_retr, scratch));
}

static void retr_drop(guard_retr *rx)
{
    free(rx->start);
    free(rx->post);
    free(rx->slot);
    free(rx->dense);
    rx->start = NULL;
    rx->post = NULL;
    rx->slot = NULL;
    rx->dense = NULL;
}

/* The answers changed: the next retrieval rebuilds the index. */
static void retr_dirty(lethe_guard_t *g)
{
    atomic_store_explicit(&retr_of(g)->dirty, 1, memory_order_relaxed);
}

/* Build the index from the answers' vectors (rx->lock held). */
static lethe_status retr_build(const lethe_guard_t *g, guard_retr *rx)
{
    retr_drop(rx); /* stale: free it first, for a lower peak */
    if (g->n_answers > UINT32_MAX)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: too many answers to index");
    size_t dim = (size_t)g->dim, na = g->n_answers, n_dense = 0;
    size_t *start = calloc(dim + 1, sizeof *start);
    int32_t *slot = malloc(dim * sizeof *slot);
    guard_posting *post = NULL;
    float *dense = NULL;
    if (!start || !slot)
        goto nomem;
    /* count each column's answers into start[c + 1]; a column at least
     * half of them have is dense and has no postings */
    for (size_t j = 0; j < g->n; j++)
        for (size_t a = 0; a < g->t[j].n_ans; a++) {
            const guard_svec *v = &g->t[j].vec[a];
            for (uint32_t e = 0; e < v->n; e++)
                start[v->col[e] + 1]++;
        }
    for (size_t c = 0; c < dim; c++) {
        slot[c] = -1;
        if (start[c + 1] && 2 * start[c + 1] >= na) {
            slot[c] = (int32_t)n_dense++;
            start[c + 1] = 0;
        }
    }
    /* start[c] becomes the first of column c's postings, moves to the end
     * of them as they are filled in, and is shifted back after */
    for (size_t c = 0; c < dim; c++)
        start[c + 1] += start[c];
    post = malloc((start[dim] ? start[dim] : 1) * sizeof *post);
    dense = calloc(n_dense ? n_dense * na : 1, sizeof *dense);
    if (!post || !dense)
        goto nomem;
    uint32_t idx = 0;
    for (size_t j = 0; j < g->n; j++)
        for (size_t a = 0; a < g->t[j].n_ans; a++, idx++) {
            const guard_svec *v = &g->t[j].vec[a];
            for (uint32_t e = 0; e < v->n; e++) {
                int32_t c = v->col[e];
                if (slot[c] >= 0)
                    dense[(size_t)slot[c] * na + idx] = v->val[e];
                else
                    post[start[c]++] = (guard_posting){idx, v->val[e]};
            }
        }
    memmove(start + 1, start, dim * sizeof *start);
    start[0] = 0;
    rx->start = start;
    rx->post = post;
    rx->slot = slot;
    rx->dense = dense;
    return LETHE_OK;
nomem:
    free(start);
    free(slot);
    free(post);
    free(dense);
    return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
}

/* Make the index current; safe to call from several threads at once. */
static lethe_status retr_ready(const lethe_guard_t *g)
{
    guard_retr *rx = retr_of(g);
    if (!atomic_load_explicit(&rx->dirty, memory_order_acquire))
        return LETHE_OK;
    lethe_status st = LETHE_OK;
    pthread_mutex_lock(&rx->lock);
    if (atomic_load_explicit(&rx->dirty, memory_order_relaxed)) {
        st = retr_build(g, rx);
        if (st == LETHE_OK)
            atomic_store_explicit(&rx->dirty, 0, memory_order_release);
    }
    pthread_mutex_unlock(&rx->lock);
    return st;
}

char *guard_dup_n(const void *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void guard_strs_free(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

static void target_free(guard_target *t)
{
    free(t->name);
    guard_strs_free(t->alias, t->n_alias);
    guard_strs_free(t->ans, t->n_ans);
    guard_strs_free(t->ngram, t->n_ngram);
    for (size_t i = 0; i < t->n_ans; i++) {
        free(t->vec[i].col);
        free(t->vec[i].val);
    }
    free(t->vec);
}

void lethe_guard_free(lethe_guard_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        target_free(&g->t[i]);
    free(g->t);
    free(g->name_slot);
    lethe_guard_ac_free(g->ac);
    free(g->clf);
    if (g->scratch) {
        guard_retr *rx = retr_of(g);
        retr_drop(rx);
        pthread_mutex_destroy(&rx->lock);
        free(rx);
    }
    free(g->model_hash);
    free(g->model_name);
    free(g);
}

lethe_guard_t *lethe_guard_new(const char *model_hash, const char *model_name, int dim)
{
    if (!model_hash || !model_hash[0] || strlen(model_hash) > LETHE_GUARD_MODEL_HASH_MAX) {
        lethe_fail(LETHE_ERR_INVALID, "guard: the model hash must be 1 to %d bytes",
                   LETHE_GUARD_MODEL_HASH_MAX);
        return NULL;
    }
    if (!model_name)
        model_name = "";
    if (strlen(model_name) > LETHE_GUARD_MAX_PATTERN) {
        lethe_fail(LETHE_ERR_INVALID, "guard: model name longer than %u bytes",
                   LETHE_GUARD_MAX_PATTERN);
        return NULL;
    }
    if (dim == 0)
        dim = LETHE_GUARD_HASH_DIM;
    if (dim < 2 || dim > LETHE_GUARD_FILE_MAX_DIM) {
        lethe_fail(LETHE_ERR_INVALID, "guard: %d retrieval buckets (2 to %d allowed)", dim,
                   LETHE_GUARD_FILE_MAX_DIM);
        return NULL;
    }
    lethe_guard_t *g = calloc(1, sizeof *g);
    if (!g)
        goto nomem;
    g->dim = dim;
    g->model_hash = guard_dup_n(model_hash, strlen(model_hash));
    g->model_name = guard_dup_n(model_name, strlen(model_name));
    guard_retr *rx = malloc(sizeof *rx + (size_t)dim * sizeof *rx->scratch);
    if (rx && pthread_mutex_init(&rx->lock, NULL) != 0) {
        free(rx);
        rx = NULL;
    }
    if (rx) {
        atomic_init(&rx->dirty, 1);
        rx->start = NULL;
        rx->post = NULL;
        rx->slot = NULL;
        rx->dense = NULL;
        g->scratch = rx->scratch;
    }
    g->ac = lethe_guard_ac_new();
    if (!g->model_hash || !g->model_name || !g->scratch || !g->ac)
        goto nomem;
    return g;
nomem:
    lethe_guard_free(g);
    lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    return NULL;
}

const char *lethe_guard_model_hash(const lethe_guard_t *g)
{
    return g->model_hash;
}

const char *lethe_guard_model_name(const lethe_guard_t *g)
{
    return g->model_name;
}

int lethe_guard_dim(const lethe_guard_t *g)
{
    return g->dim;
}

/* ---- targets
 * ------------------------------------------------------------------ */

static guard_target *find_id(const lethe_guard_t *g, uint32_t id, size_t *pos)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->t[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return lo < g->n && g->t[lo].id == id ? &g->t[lo] : NULL;
}

/* ---- the name index: open addressing over t[].name ---- */

static size_t name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return (size_t)h;
}

/* The slot holding name[0..len), or the empty slot where it would go. */
static size_t name_probe(const lethe_guard_t *g, const char *name, size_t len)
{
    size_t mask = g->name_cap - 1, i = name_hash(name, len) & mask;
    for (;; i = (i + 1) & mask) {
        size_t s = g->name_slot[i];
        if (!s)
            return i;
        const char *tn = g->t[s - 1].name;
        if (!strncmp(tn, name, len) && !tn[len]) /* name has no NUL */
            return i;
    }
}

const guard_target *guard_find_name(const lethe_guard_t *g, const char *name, size_t len)
{
    if (!g->name_cap)
        return NULL;
    size_t s = g->name_slot[name_probe(g, name, len)];
    return s ? &g->t[s - 1] : NULL;
}

/* Index targets 0 .. n-1 afresh in the table as it is (large enough). */
static void name_rebuild(lethe_guard_t *g)
{
    if (!g->name_cap)
        return;
    memset(g->name_slot, 0, g->name_cap * sizeof *g->name_slot);
    for (size_t i = 0; i < g->n; i++)
        g->name_slot[name_probe(g, g->t[i].name, strlen(g->t[i].name))] = i + 1;
}

/* Make room to index n_targets names at load factor at most 1/2. */
static lethe_status name_reserve(lethe_guard_t *g, size_t n_targets)
{
    if (2 * n_targets <= g->name_cap)
        return LETHE_OK;
    size_t cap = g->name_cap ? g->name_cap : 16;
    while (cap < 2 * n_targets)
        cap *= 2;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    free(g->name_slot);
    g->name_slot = slot;
    g->name_cap = cap;
    name_rebuild(g);
    return LETHE_OK;
}

static lethe_status push_str(char ***arr, size_t *n, const char *s)
{
    char **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    *arr = a;
    if (!(a[*n] = guard_dup_n(s, strlen(s))))
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    (*n)++;
    return LETHE_OK;
}

lethe_status guard_add_target_id(lethe_guard_t *g, uint32_t id, const char *name,
                                 const char *const *aliases, size_t n_aliases)
{
    if (!name)
        return lethe_fail(LETHE_ERR_INVALID, "guard: a target needs a name");
    size_t name_len = strlen(name);
    if (guard_find_name(g, name, name_len))
        return lethe_fail(LETHE_ERR_INVALID, "guard: a target named \"%.80s\" exists", name);
    lethe_status st = name_reserve(g, g->n + 1);
    if (st != LETHE_OK)
        return st;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        guard_target *t = realloc(g->t, cap * sizeof *t);
        if (!t)
            return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
        g->t = t;
        g->cap = cap;
    }
    guard_target *t = &g->t[g->n];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->ans0 = g->n_answers;
    if (!(t->name = guard_dup_n(name, name_len)))
        st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    if (st == LETHE_OK)
        st = lethe_guard_ac_add(g->ac, name, name_len, id);
    for (size_t i = 0; i < n_aliases && st == LETHE_OK; i++) {
        if (!aliases[i])
            st = lethe_fail(LETHE_ERR_INVALID, "guard: alias %zu is NULL", i);
        else if ((st = lethe_guard_ac_add(g->ac, aliases[i], strlen(aliases[i]), id)) ==
                 LETHE_OK)
            st = push_str(&t->alias, &t->n_alias, aliases[i]);
    }
    if (st != LETHE_OK) {
        lethe_guard_ac_remove(g->ac, id);
        target_free(t);
        return st;
    }
    g->name_slot[name_probe(g, name, name_len)] = g->n + 1;
    g->n++;
    return LETHE_OK;
}

lethe_status lethe_guard_add_target(lethe_guard_t *g, const char *name,
                                    const char *const *aliases, size_t n_aliases, uint32_t *id)
{
    if (g->next_id == UINT32_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "guard: target ids ran out");
    lethe_status st = guard_add_target_id(g, g->next_id, name, aliases, n_aliases);
    if (st != LETHE_OK)
        return st;
    if (id)
        *id = g->next_id;
    g->next_id++;
    return LETHE_OK;
}

/* The answer's sparse vector. */
static lethe_status answer_vec(lethe_guard_t *g, const char *text, size_t len, guard_svec *v)
{
    lethe_guard_feat f;
    lethe_status st = lethe_guard_feat_hash(g->dim, &f);
    if (st == LETHE_OK)
        st = lethe_guard_features(&f, text, len, g->scratch);
    if (st != LETHE_OK)
        return st;
    uint32_t nz = 0;
    for (int j = 0; j < g->dim; j++)
        nz += g->scratch[j] != 0;
    v->n = nz;
    v->col = malloc((nz ? nz : 1) * sizeof *v->col);
    v->val = malloc((nz ? nz : 1) * sizeof *v->val);
    if (!v->col || !v->val) {
        free(v->col);
        free(v->val);
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    }
    nz = 0;
    for (int j = 0; j < g->dim; j++)
        if (g->scratch[j] != 0) {
            v->col[nz] = j;
            v->val[nz++] = g->scratch[j];
        }
    return LETHE_OK;
}

lethe_status lethe_guard_add_answer(lethe_guard_t *g, uint32_t id, const char *text)
{
    size_t pos;
    guard_target *t = find_id(g, id, &pos);
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "guard: no target with id %u", id);
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > LETHE_GUARD_MAX_TEXT)
        return lethe_fail(LETHE_ERR_INVALID, "guard: an answer must be 1 to %u bytes",
                          LETHE_GUARD_MAX_TEXT);
    guard_svec *vec = realloc(t->vec, (t->n_ans + 1) * sizeof *vec);
    if (!vec)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    t->vec = vec;
    guard_svec v;
    lethe_status st = answer_vec(g, text, len, &v);
    if (st != LETHE_OK)
        return st;
    if ((st = push_str(&t->ans, &t->n_ans, text)) != LETHE_OK) {
        free(v.col);
        free(v.val);
        return st;
    }
    t->vec[t->n_ans - 1] = v;
    g->n_answers++;
    retr_dirty(g);
    for (size_t j = pos + 1; j < g->n; j++) /* none when adding to the last one */
        g->t[j].ans0++;
    return LETHE_OK;
}

lethe_status lethe_guard_add_ngram(lethe_guard_t *g, uint32_t id, const char *text)
{
    guard_target *t = find_id(g, id, NULL);
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "guard: no target with id %u", id);
    if (!text)
        return lethe_fail(LETHE_ERR_INVALID, "guard: n-gram is NULL");
    size_t before = lethe_guard_ac_count(g->ac);
    lethe_status st = lethe_guard_ac_add(g->ac, text, strlen(text), id);
    if (st != LETHE_OK)
        return st;
    if ((st = push_str(&t->ngram, &t->n_ngram, text)) != LETHE_OK) {
        if (lethe_guard_ac_count(g->ac) > before) {
            /* undo: rebuild this target's patterns without the new one */
            lethe_guard_ac_remove(g->ac, id);
            lethe_guard_ac_add(g->ac, t->name, strlen(t->name), id);
            for (size_t i = 0; i < t->n_alias; i++)
                lethe_guard_ac_add(g->ac, t->alias[i], strlen(t->alias[i]), id);
            for (size_t i = 0; i < t->n_ngram; i++)
                lethe_guard_ac_add(g->ac, t->ngram[i], strlen(t->ngram[i]), id);
        }
        return st;
    }
    return LETHE_OK;
}

lethe_status lethe_guard_remove_target(lethe_guard_t *g, uint32_t id)
{
    size_t pos;
    guard_target *t = find_id(g, id, &pos);
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "guard: no target with id %u", id);
    lethe_guard_ac_remove(g->ac, id);
    size_t gone = t->n_ans;
    g->n_answers -= gone;
    if (gone)
        retr_dirty(g);
    target_free(t);
    memmove(&g->t[pos], &g->t[pos + 1], (g->n - pos - 1) * sizeof *g->t);
    g->n--;
    for (size_t j = pos; j < g->n; j++)
        g->t[j].ans0 -= gone;
    name_rebuild(g); /* the indices after pos moved down */
    return LETHE_OK;
}

size_t lethe_guard_target_count(const lethe_guard_t *g)
{
    return g->n;
}

void lethe_guard_target_get(const lethe_guard_t *g, size_t i, lethe_guard_target_info *info)
{
    LETHE_ASSERT(i < g->n);
    const guard_target *t = &g->t[i];
    *info = (lethe_guard_target_info){t->id,
                                      t->name,
                                      t->n_alias,
                                      t->n_ans,
                                      t->n_ngram,
                                      (const char *const *)t->alias,
                                      (const char *const *)t->ans,
                                      (const char *const *)t->ngram};
}

lethe_status lethe_guard_find(const lethe_guard_t *g, const char *name, uint32_t *id)
{
    const guard_target *t = name ? guard_find_name(g, name, strlen(name)) : NULL;
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "guard: no target named \"%.80s\"",
                          name ? name : "(null)");
    if (id)
        *id = t->id;
    return LETHE_OK;
}

lethe_guard_ac_t *lethe_guard_automaton(lethe_guard_t *g)
{
    return g->ac;
}

/* ---- the classifier
 * --------------------------------------------------------------- */

lethe_status lethe_guard_set_classifier(lethe_guard_t *g, const void *blob, size_t len)
{
    if (!blob || !len) {
        free(g->clf);
        g->clf = NULL;
        g->clf_len = 0;
        return LETHE_OK;
    }
    lethe_status st = guard_check_clf(blob, len);
    if (st == LETHE_ERR_NOMEM)
        return st;
    if (st != LETHE_OK)
        return lethe_fail(LETHE_ERR_INVALID, "guard: classifier bytes: %s",
                          lethe_error_detail());
    unsigned char *c = malloc(len);
    if (!c)
        return lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
    memcpy(c, blob, len);
    free(g->clf);
    g->clf = c;
    g->clf_len = len;
    return LETHE_OK;
}

const unsigned char *lethe_guard_classifier(const lethe_guard_t *g, size_t *len)
{
    *len = g->clf_len;
    return g->clf;
}

/* ---- retrieval
 * ---------------------------------------------------------------------- */

size_t lethe_guard_answer_count(const lethe_guard_t *g)
{
    return g->n_answers;
}

const char *lethe_guard_answer(const lethe_guard_t *g, size_t i, uint32_t *target_id)
{
    LETHE_ASSERT(i < g->n_answers);
    /* the last target whose answers start at or before i holds it (one
     * with none is followed by one starting at the same number) */
    size_t lo = 0, hi = g->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->t[mid].ans0 <= i)
            lo = mid;
        else
            hi = mid;
    }
    const guard_target *t = &g->t[lo];
    LETHE_ASSERT(i >= t->ans0 && i - t->ans0 < t->n_ans);
    if (target_id)
        *target_id = t->id;
    return t->ans[i - t->ans0];
}

lethe_status lethe_guard_retrieve(const lethe_guard_t *g, const void *prompt, size_t len,
                                  size_t k, size_t *idx_out, float *scores_out, size_t *n)
{
    *n = 0;
    if (k > g->n_answers)
        k = g->n_answers;
    if (k == 0)
        return LETHE_OK;
    lethe_guard_feat f;
    lethe_status st = lethe_guard_feat_hash(g->dim, &f);
    if (st != LETHE_OK || (st = retr_ready(g)) != LETHE_OK)
        return st;
    const guard_retr *rx = retr_of(g);
    float *q = malloc((size_t)g->dim * sizeof *q);
    float *best = malloc(k * sizeof *best);
    double *dot = calloc(g->n_answers, sizeof *dot);
    if (!q || !best || !dot) {
        st = lethe_fail(LETHE_ERR_NOMEM, "guard: out of memory");
        goto done;
    }
    if ((st = lethe_guard_features(&f, prompt, len, q)) != LETHE_OK)
        goto done;
    /* Term at a time, over the prompt's columns in increasing order: each
     * answer's dot product is summed in double over its columns in
     * increasing order, as a scan of its vector would. The columns a scan
     * adds with a zero prompt value, and a dense row's zeros, contribute
     * +-0, which leaves a double sum started at +0 as it is (it is never
     * -0). Answers sharing no column score +0. */
    size_t na = g->n_answers;
    for (int c = 0; c < g->dim; c++) {
        if (q[c] == 0)
            continue;
        double qc = q[c];
        if (rx->slot[c] >= 0) {
            const float *row = rx->dense + (size_t)rx->slot[c] * na;
            for (size_t a = 0; a < na; a++)
                dot[a] += (double)row[a] * qc;
            continue;
        }
        const guard_posting *p = rx->post + rx->start[c], *end = rx->post + rx->start[c + 1];
        for (; p < end; p++)
            dot[p->ans] += (double)p->val * qc;
    }
    size_t have = 0;
    for (size_t idx = 0; idx < na; idx++) {
        float s = (float)dot[idx];
        /* insert after every kept entry scoring >= s (earlier index wins ties) */
        if (have == k && !(s > best[k - 1]))
            continue;
        size_t p = have < k ? have : k - 1;
        while (p > 0 && s > best[p - 1]) {
            best[p] = best[p - 1];
            idx_out[p] = idx_out[p - 1];
            p--;
        }
        best[p] = s;
        idx_out[p] = idx;
        if (have < k)
            have++;
    }
    if (scores_out)
        memcpy(scores_out, best, have * sizeof *best);
    *n = have;
done:
    free(q);
    free(best);
    free(dot);
    return st;
}
