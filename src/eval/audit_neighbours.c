/* The audit's side-effect probe (lethe/audit.h, "neighbours"): does
 * unlearning the forget entities damage what the model knows about the
 * entities that resemble them?
 *
 * A retain row is a neighbour when the fact it states (its key, from the
 * generator) is also stated by a forget row: another author born in the same
 * city, writing in the same genre, with a father of the same trade. It is
 * distant when its fact is shared by other retain rows but by no forget row.
 * Facts of one entity alone (titles, dates) are neither. The teacher-forced
 * accuracy of both sets' answers, for target, model and oracle: the model's
 * damage is the oracle's accuracy minus its own, and the damage on neighbours
 * beyond that on distant facts is the side effect of forgetting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/tofu.h"

enum { SCORE_BATCH = 16 };

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* How many of the n sorted strings s equal key. */
static size_t count(const char **s, size_t n, const char *key)
{
    const char **hit = bsearch(&key, s, n, sizeof *s, cmp_str);
    if (!hit)
        return 0;
    const char **lo = hit, **hi = hit;
    while (lo > s && !strcmp(lo[-1], key))
        lo--;
    while (hi + 1 < s + n && !strcmp(hi[1], key))
        hi++;
    return (size_t)(hi - lo) + 1;
}

/* Mean teacher-forced accuracy of the n pairs (q, ans) under g. */
static lethe_status score(const audit_ctx *a, const lethe_gpt *g, const char **q,
                          const char **ans, size_t n, lethe_qa_score *buf, double *acc)
{
    lethe_status st = lethe_qa_score_answers(g, a->run.tok, (int32_t)a->run.eot, q, ans, n,
                                             SCORE_BATCH, buf);
    double s = 0.0;
    for (size_t i = 0; !st && i < n; i++)
        s += (double)buf[i].n_match / buf[i].n;
    *acc = n ? s / (double)n : NAN;
    return st;
}

lethe_status audit_neighbours(const audit_ctx *a, cJSON *eval, cJSON *sum)
{
    audit_keys k = {0};
    lethe_tofu retain = {0};
    lethe_status st = audit_keys_load(a->c->data, &k);
    if (!st && !k.n) {
        audit_not_run(sum, "neighbours", 0, NO_KEYS);
        audit_keys_free(&k);
        return LETHE_OK;
    }
    const size_t nf = a->forget.n;
    if (!st)
        st = audit_load_sibling(a->c, "retain", 1, &retain);
    const size_t nr = retain.n;
    const char **fk = malloc(sizeof *fk * (nf ? nf : 1));
    const char **rk = malloc(sizeof *rk * (nr ? nr : 1));
    const char **rs = malloc(sizeof *rs * (nr ? nr : 1));
    const char **q[2], **ans[2];
    size_t n[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        q[s] = malloc(sizeof **q * (nr ? nr : 1));
        ans[s] = malloc(sizeof **ans * (nr ? nr : 1));
        if (!q[s] || !ans[s])
            st = st ? st : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    lethe_qa_score *buf = calloc(nr ? nr : 1, sizeof *buf);
    if (!st && (!fk || !rk || !rs || !buf))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (!st)
        st = audit_keys_of(&k, "forget", &a->forget, fk);
    if (!st)
        st = audit_keys_of(&k, "retain", &retain, rk);
    if (!st) {
        qsort(fk, nf, sizeof *fk, cmp_str);
        memcpy(rs, rk, sizeof *rs * nr);
        qsort(rs, nr, sizeof *rs, cmp_str);
        for (size_t i = 0; i < nr; i++) {
            int s = count(fk, nf, rk[i]) ? 0 : count(rs, nr, rk[i]) >= 2 ? 1 : -1;
            if (s < 0)
                continue;
            q[s][n[s]] = retain.rows[i].question;
            ans[s][n[s]++] = retain.rows[i].answer;
        }
    }
    int small = !st && (!n[0] || !n[1]);
    if (small) {
        char why[256];
        snprintf(why, sizeof why, "the benchmark is too small: %zu retain facts are shared "
                 "with a forget entity and %zu only among retain entities", n[0], n[1]);
        audit_not_run(sum, "neighbours", 0, why);
    }
    double acc[3][2] = {{0}};
    const lethe_gpt *g[3] = {a->target.model, a->run.model, a->oracle.model};
    static const char *const who[3] = {"target", "model", "oracle"};
    for (int m = 0; !st && !small && m < 3; m++) {
        audit_progress(a, "neighbours: the %s on %zu neighbouring and %zu distant facts", who[m],
                       n[0], n[1]);
        for (int s = 0; !st && s < 2; s++)
            st = score(a, g[m], q[s], ans[s], n[s], buf, &acc[m][s]);
    }
    if (!st && !small) {
        cJSON *e = cJSON_AddObjectToObject(eval, "neighbours");
        cJSON *o = cJSON_AddObjectToObject(sum, "neighbours");
        cJSON_AddNumberToObject(o, "n_neighbours", (double)n[0]);
        cJSON_AddNumberToObject(o, "n_distant", (double)n[1]);
        for (int m = 0; m < 3; m++) {
            cJSON *w = cJSON_AddObjectToObject(e, who[m]);
            audit_num(w, "neighbours", acc[m][0]);
            audit_num(w, "distant", acc[m][1]);
            char key[32];
            snprintf(key, sizeof key, "%s_neighbours", who[m]);
            audit_num(o, key, acc[m][0]);
            snprintf(key, sizeof key, "%s_distant", who[m]);
            audit_num(o, key, acc[m][1]);
        }
        const double dn = acc[2][0] - acc[1][0], dd = acc[2][1] - acc[1][1];
        audit_num(o, "damage_neighbours", dn);
        audit_num(o, "damage_distant", dd);
        audit_num(o, "side_effect", dn - dd);
        char ev[512];
        snprintf(ev, sizeof ev, "neighbours: on %zu retain facts shared with a forget entity the "
                 "model's accuracy is %.3f against the oracle's %.3f; on %zu shared only among "
                 "retain entities, %.3f against %.3f: %+.3f of damage beyond the distant facts'",
                 n[0], acc[1][0], acc[2][0], n[1], acc[1][1], acc[2][1], dn - dd);
        cJSON_AddStringToObject(o, "evidence", ev);
    }
    free(buf);
    for (int s = 0; s < 2; s++)
        free(q[s]), free(ans[s]);
    free(fk), free(rk), free(rs);
    lethe_tofu_free(&retain);
    audit_keys_free(&k);
    return st;
}
