/* ALU's agent pipeline over a chat callback (lethe/guard_alu.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe/guard_alu.h"
#include "lethe/guard_decode.h"

#define MAX_SUBJECTS 16

static const char *const stage_names[] = {"passed",          "composed",
                                          "refused_erase",   "refused_critic",
                                          "refused_rating",  "refused_audit",
                                          "refused_empty"};

const char *lethe_alu_stage_name(int stage)
{
    return stage >= 0 && stage <= LETHE_ALU_REFUSED_EMPTY ? stage_names[stage] : "unknown";
}

void lethe_alu_defaults(lethe_alu_cfg *c)
{
    *c = (lethe_alu_cfg){.k = 5, .j = 3, .threshold = 4.0, .refusal = LETHE_GUARD_REFUSAL};
}

void lethe_alu_result_free(lethe_alu_result *r)
{
    if (r) {
        free(r->text);
        r->text = NULL;
    }
}

/* One call: system and user messages; counts it. */
static lethe_status call(lethe_alu_chat chat, void *ctx, const char *system, const char *user,
                         lethe_alu_result *r, char **reply)
{
    lethe_alu_msg m[2] = {{"system", system}, {"user", user}};
    lethe_alu_usage u = {0, 0};
    *reply = NULL;
    lethe_status st = chat(ctx, m, 2, reply, &u);
    r->calls++;
    r->prompt_tokens += u.prompt_tokens, r->completion_tokens += u.completion_tokens;
    if (st == LETHE_OK && !*reply)
        st = lethe_fail(LETHE_ERR_FORMAT, "alu: the chat model returned no text");
    return st;
}

/* The JSON array inside a reply (from its first '[' to its last ']'), or
 * NULL. */
static cJSON *array_in(const char *reply)
{
    const char *a = strchr(reply, '['), *b = strrchr(reply, ']');
    if (!a || !b || b < a)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(a, (size_t)(b - a + 1));
    if (j && !cJSON_IsArray(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Targets found in text by the automaton, into ids (deduplicated). */
typedef struct found {
    uint32_t id[MAX_SUBJECTS];
    size_t n;
} found;

static void on_match(void *ctx, const lethe_guard_match *m)
{
    found *f = ctx;
    for (size_t i = 0; i < f->n; i++)
        if (f->id[i] == m->id)
            return;
    if (f->n < MAX_SUBJECTS)
        f->id[f->n++] = m->id;
}

static lethe_status scan(lethe_guard_t *g, const char *text, found *f)
{
    return lethe_guard_ac_scan(lethe_guard_automaton(g), text, strlen(text), on_match, f, NULL);
}

/* "Name A, Name B": the names of the targets found. */
static char *subjects(const lethe_guard_t *g, const found *f)
{
    size_t len = 1;
    const char *names[MAX_SUBJECTS];
    size_t nn = 0;
    for (size_t t = 0; t < lethe_guard_target_count(g); t++) {
        lethe_guard_target_info ti;
        lethe_guard_target_get(g, t, &ti);
        for (size_t i = 0; i < f->n; i++)
            if (ti.id == f->id[i]) {
                names[nn++] = ti.name;
                len += strlen(ti.name) + 2;
            }
    }
    char *s = calloc(len, 1);
    for (size_t i = 0; s && i < nn; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, names[i]);
    }
    return s;
}

static lethe_status refuse(const lethe_alu_cfg *c, lethe_alu_result *r, int stage)
{
    r->refused = 1, r->stage = stage;
    free(r->text);
    r->text = strdup(c->refusal);
    return r->text ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
}

/* Steps 3 to 6 for query, A0 and the subjects. */
static lethe_status erase(const lethe_alu_cfg *c, lethe_guard_t *g, lethe_alu_chat chat,
                          void *ctx, const char *query, const char *a0, const char *subj,
                          lethe_alu_result *r)
{
    char *sys = NULL, *user = NULL, *reply = NULL;
    cJSON *rw = NULL, *rt = NULL;
    lethe_status st = LETHE_OK;
    if (asprintf(&sys, "Given a query and a response, rewrite the response so that it holds "
                 "no information at all, direct or indirect, about these subjects: %s. Give "
                 "%d different rewrites as a JSON array of %d strings and nothing else. When "
                 "no sensible rewrite exists, each string is \"I cannot assist with that "
                 "question.\"", subj, c->k, c->k) < 0 ||
        asprintf(&user, "Query: %s\nResponse: %s", query, a0) < 0)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = call(chat, ctx, sys, user, r, &reply);
    if (st == LETHE_OK)
        rw = array_in(reply);
    int n = rw ? cJSON_GetArraySize(rw) : 0, ok = n >= 1 && n <= LETHE_ALU_MAX_K;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(rw, i);
        ok = cJSON_IsString(e) && e->valuestring[0];
    }
    free(sys), free(user), free(reply);
    sys = user = reply = NULL;
    if (st == LETHE_OK && !ok)
        st = refuse(c, r, LETHE_ALU_REFUSED_ERASE);
    /* the critic */
    char *listing = NULL;
    size_t ll = 0;
    FILE *mf = st == LETHE_OK && ok ? open_memstream(&listing, &ll) : NULL;
    if (mf) {
        for (int i = 0; i < n; i++)
            fprintf(mf, "%d. %s\n", i + 1, cJSON_GetArrayItem(rw, i)->valuestring);
        fclose(mf);
    }
    if (listing &&
        (asprintf(&sys, "Rate how much each numbered response reveals about these subjects: "
                  "%s, directly or through relationships and clues: 1 when the subject is "
                  "plain to see, 5 when no trace of it is left. Reply with a JSON array of %d "
                  "integers from 1 to 5, in order, and nothing else.", subj, n) < 0 ||
         asprintf(&user, "%s", listing) < 0))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (listing && st == LETHE_OK)
        st = call(chat, ctx, sys, user, r, &reply);
    if (listing && st == LETHE_OK)
        rt = array_in(reply);
    int rating[LETHE_ALU_MAX_K], rated = listing && rt && cJSON_GetArraySize(rt) == n;
    for (int i = 0; rated && i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(rt, i);
        rated = cJSON_IsNumber(e) && e->valuedouble == floor(e->valuedouble) &&
                e->valuedouble >= 1 && e->valuedouble <= 5;
        rating[i] = rated ? (int)e->valuedouble : 0;
    }
    free(sys), free(user), free(reply), free(listing);
    sys = user = reply = listing = NULL;
    if (st == LETHE_OK && ok && !rated)
        st = refuse(c, r, LETHE_ALU_REFUSED_CRITIC);
    /* the composer: the j best (stable: earlier first on ties) */
    int order[LETHE_ALU_MAX_K], m = n < c->j ? n : c->j;
    double sum = 0;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 0; rated && i < m; i++) {
        int best = i;
        for (int k = i + 1; k < n; k++)
            if (rating[order[k]] > rating[order[best]])
                best = k;
        int t = order[best];
        memmove(order + i + 1, order + i, sizeof *order * (size_t)(best - i));
        order[i] = t;
        sum += rating[t];
    }
    if (rated)
        r->mean_rating = sum / m;
    if (st == LETHE_OK && rated && r->mean_rating < c->threshold)
        st = refuse(c, r, LETHE_ALU_REFUSED_RATING);
    int compose = st == LETHE_OK && rated && !r->refused;
    mf = compose ? open_memstream(&listing, &ll) : NULL;
    if (mf) {
        for (int i = 0; i < m; i++)
            fprintf(mf, "Variation %d: %s\n", i + 1,
                    cJSON_GetArrayItem(rw, order[i])->valuestring);
        fclose(mf);
    }
    if (compose && !listing)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (compose && st == LETHE_OK &&
        (asprintf(&sys, "You are an expert editor. Combine these variations into one "
                  "coherent answer. Add no new information, and do not mention or allude to "
                  "these subjects: %s.", subj) < 0))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (compose && st == LETHE_OK)
        st = call(chat, ctx, sys, listing, r, &reply);
    free(sys), free(listing);
    cJSON_Delete(rw), cJSON_Delete(rt);
    if (!compose || st != LETHE_OK) {
        free(reply);
        return st;
    }
    /* the final audit */
    found f2 = {{0}, 0};
    if (!reply[strspn(reply, " \t\r\n")]) {
        free(reply);
        return refuse(c, r, LETHE_ALU_REFUSED_EMPTY);
    }
    st = scan(g, reply, &f2);
    if (st == LETHE_OK && f2.n) {
        free(reply);
        return refuse(c, r, LETHE_ALU_REFUSED_AUDIT);
    }
    r->text = reply, r->stage = LETHE_ALU_COMPOSED;
    return st;
}

lethe_status lethe_alu_answer(const lethe_alu_cfg *cfg, lethe_guard_t *g, lethe_alu_chat chat,
                              void *ctx, const char *query, lethe_alu_result *res)
{
    lethe_alu_cfg c;
    if (cfg)
        c = *cfg;
    else
        lethe_alu_defaults(&c);
    memset(res, 0, sizeof *res);
    res->mean_rating = NAN;
    if (!g || !chat || !query || c.k < 1 || c.k > LETHE_ALU_MAX_K || c.j < 1 || c.j > c.k ||
        !c.refusal)
        return lethe_fail(LETHE_ERR_INVALID, "alu: a guard, a chat model, a query, and 1 <= j "
                          "<= k <= %d are needed", LETHE_ALU_MAX_K);
    char *a0 = NULL;
    lethe_status st = call(chat, ctx, "You are a helpful assistant. Answer the user's query "
                           "directly and to the point.", query, res, &a0);
    found f = {{0}, 0};
    if (st == LETHE_OK)
        st = scan(g, query, &f);
    if (st == LETHE_OK)
        st = scan(g, a0, &f);
    res->targets = f.n;
    if (st == LETHE_OK && !f.n) { /* the gate: nothing to erase */
        res->text = a0, res->stage = LETHE_ALU_PASSED;
        return LETHE_OK;
    }
    char *subj = st == LETHE_OK ? subjects(g, &f) : NULL;
    if (st == LETHE_OK && !subj)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = erase(&c, g, chat, ctx, query, a0, subj, res);
    free(subj);
    free(a0);
    if (st != LETHE_OK)
        lethe_alu_result_free(res);
    return st;
}
