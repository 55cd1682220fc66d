/* Editing and describing a guard file (lethe/guard_fit.h). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_fit.h"
#include "lethe/runlock.h"

static lethe_status apply(lethe_guard_t *g, const lethe_guard_edit *e, uint32_t *id)
{
    lethe_status st;
    if (e->op == LETHE_GUARD_EDIT_REMOVE) {
        *id = e->id;
        if (e->name && (st = lethe_guard_find(g, e->name, id)) != LETHE_OK)
            return lethe_fail(LETHE_ERR_NOT_FOUND, "guard: no target named '%s'", e->name);
        if ((st = lethe_guard_remove_target(g, *id)) != LETHE_OK)
            return lethe_fail(st, "guard: no target with id %u", *id);
        return LETHE_OK;
    }
    if (e->op != LETHE_GUARD_EDIT_ADD || !e->name)
        return lethe_fail(LETHE_ERR_INVALID, "guard: an edit adds a named target or removes one");
    st = lethe_guard_add_target(g, e->name, e->aliases, e->n_aliases, id);
    for (size_t i = 0; i < e->n_answers && st == LETHE_OK; i++)
        st = lethe_guard_add_answer(g, *id, e->answers[i]);
    for (size_t i = 0; i < e->n_ngrams && st == LETHE_OK; i++)
        st = lethe_guard_add_ngram(g, *id, e->ngrams[i]);
    return st;
}

lethe_status lethe_guard_file_edit(const char *path, const lethe_guard_edit *e, uint32_t *id_out)
{
    char *copy = strdup(path);
    if (!copy)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_runlock *lock = NULL;
    lethe_guard_t *g = NULL;
    uint32_t id = 0;
    lethe_status st = lethe_runlock_acquire(dirname(copy), 1, &lock);
    if (st == LETHE_OK)
        st = lethe_guard_load(path, &g);
    if (st == LETHE_OK)
        st = apply(g, e, &id);
    if (st == LETHE_OK)
        st = lethe_guard_save(g, path);
    if (st == LETHE_OK && id_out)
        *id_out = id;
    lethe_guard_free(g);
    lethe_runlock_release(lock);
    free(copy);
    return st;
}

static cJSON *strings(const char *const *s, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    return a;
}

static void add_classifier(cJSON *j, const lethe_guard_t *g)
{
    size_t len;
    const unsigned char *b = lethe_guard_classifier(g, &len);
    lethe_guard_clf *c = NULL;
    if (!b || lethe_guard_clf_load(b, len, &c) != LETHE_OK) {
        cJSON_AddNullToObject(j, "classifier");
        return;
    }
    cJSON *o = cJSON_AddObjectToObject(j, "classifier");
    cJSON_AddStringToObject(o, "features", c->kind == LETHE_GUARD_FEAT_HASH ? "hash" : "model");
    cJSON_AddNumberToObject(o, "dim", c->dim);
    cJSON_AddNumberToObject(o, "layer", c->layer);
    cJSON_AddNumberToObject(o, "tau", c->tau);
    cJSON_AddNumberToObject(o, "alpha", c->alpha);
    cJSON_AddNumberToObject(o, "calibration_prompts", c->n_calib);
    lethe_guard_clf_free(c);
}

lethe_status lethe_guard_file_describe(const char *path, int full, cJSON **out)
{
    lethe_guard_t *g = NULL;
    *out = NULL;
    lethe_status st = lethe_guard_load(path, &g);
    if (st != LETHE_OK)
        return st;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "guard", path);
    cJSON_AddStringToObject(j, "model_hash", lethe_guard_model_hash(g));
    cJSON_AddStringToObject(j, "model_name", lethe_guard_model_name(g));
    add_classifier(j, g);
    cJSON *ts = cJSON_AddArrayToObject(j, "targets");
    size_t n = lethe_guard_target_count(g), answers = 0, ngrams = 0;
    for (size_t i = 0; i < n; i++) {
        lethe_guard_target_info t;
        lethe_guard_target_get(g, i, &t);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", t.id);
        cJSON_AddStringToObject(o, "name", t.name);
        cJSON_AddItemToObject(o, "aliases", strings(t.aliases, t.n_aliases));
        cJSON_AddNumberToObject(o, "answers", (double)t.n_answers);
        cJSON_AddNumberToObject(o, "ngrams", (double)t.n_ngrams);
        if (full) {
            cJSON_AddItemToObject(o, "answer_texts", strings(t.answers, t.n_answers));
            cJSON_AddItemToObject(o, "ngram_texts", strings(t.ngrams, t.n_ngrams));
        }
        cJSON_AddItemToArray(ts, o);
        answers += t.n_answers, ngrams += t.n_ngrams;
    }
    cJSON_AddNumberToObject(j, "n_targets", (double)n);
    cJSON_AddNumberToObject(j, "n_answers", (double)answers);
    cJSON_AddNumberToObject(j, "n_ngrams", (double)ngrams);
    lethe_guard_free(g);
    *out = j;
    return LETHE_OK;
}
