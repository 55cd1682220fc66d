/* The audit's latent probe (lethe/audit.h, "probe"): can a linear read-out
 * of the hidden states still name the forgotten facts?
 *
 * Each row's answer is cut just before the fact it states (its key, from the
 * generator: "... writes mainly" | "science fiction"), and the hidden states
 * of the last token of question + cut answer are read at every layer. Facts
 * whose value is shared by at least MIN_CLASS retain rows are classes; a
 * ridge classifier per layer (one-hot targets, features standardised on the
 * retain rows, its strength chosen on a fifth of the retain entities held
 * out, then refitted on all of them) learns to name the value from retain
 * rows and is scored on the forget rows and on the holdout rows (facts no
 * model saw: the floor). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "lethe/gpt.h"
#include "lethe/linear.h"
#include "lethe/tofu.h"

enum { MIN_CLASS = 3, BATCH = 16, N_SETS = 3 };
enum { S_RETAIN, S_FORGET, S_HOLDOUT };
static const char *const set_name[N_SETS] = {"retain", "forget", "holdout"};
static const double lambdas[] = {1e3, 1e2, 1e1, 1.0, 1e-1};
#define N_LAMBDA (int)(sizeof lambdas / sizeof lambdas[0])
#define MIN_LEAD 0.1 /* the target's lead over the oracle that makes a layer count */

/* A probed row: its tokens (question and answer up to the fact) and class. */
typedef struct item {
    int32_t *ids;
    int n, cls, set, fold; /* fold 1: held out to choose the ridge strength */
} item;

typedef struct probe {
    item *it;
    size_t n, n_set[N_SETS];
    const char **classes; /* the class names (keys), sorted */
    int k;
} probe;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void probe_free(probe *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->it[i].ids);
    free(p->it);
    free(p->classes);
    memset(p, 0, sizeof *p);
}

/* The classes: retain keys that occur at least MIN_CLASS times. */
static lethe_status classes(probe *p, const char **keys, size_t n)
{
    const char **s = malloc(sizeof *s * (n ? n : 1));
    p->classes = malloc(sizeof *p->classes * (n ? n : 1));
    if (!s || !p->classes) {
        free(s);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    memcpy(s, keys, sizeof *s * n);
    qsort(s, n, sizeof *s, cmp_str);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && !strcmp(s[j], s[i]); j++)
            ;
        if (j - i >= MIN_CLASS)
            p->classes[p->k++] = s[i];
    }
    free(s);
    return LETHE_OK;
}

/* Add t's rows whose key is a class to p as set `set`. */
static lethe_status add_rows(const audit_ctx *a, probe *p, const lethe_tofu *t,
                             const char **keys, int set)
{
    item *it = realloc(p->it, sizeof *it * (p->n + t->n + 1));
    if (!it)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    p->it = it;
    lethe_status st = LETHE_OK;
    for (size_t i = 0; !st && i < t->n; i++) {
        const char **c = bsearch(&keys[i], p->classes, (size_t)p->k, sizeof *c, cmp_str);
        const char *ans = t->rows[i].answer, *at = strstr(ans, keys[i]);
        size_t cut = (size_t)(at - ans);
        while (cut > 0 && (ans[cut - 1] == ' ' || ans[cut - 1] == '"'))
            cut--;
        if (!c || !cut)
            continue;
        char *prefix = strndup(ans, cut);
        item *e = &p->it[p->n];
        int np;
        st = prefix ? lethe_qa_encode(a->run.tok, t->rows[i].question, prefix, -1, &e->ids,
                                      &np, &e->n)
                    : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        free(prefix);
        if (st)
            break;
        if (e->n > a->run.model->cfg.n_positions) {
            free(e->ids);
            continue;
        }
        e->cls = (int)(c - p->classes);
        e->set = set;
        e->fold = (int)(i / (size_t)a->per_entity) % 5 == 4;
        p->n++, p->n_set[set]++;
    }
    return st;
}

/* The hidden states of every item's last token, layer by layer:
 * feat[(l * n + i) * C ...]. */
static lethe_status states(const lethe_gpt *g, const probe *p, float *feat)
{
    const int C = g->cfg.n_embd, H = g->cfg.n_layer + 2;
    lethe_gpt_ctx *x = lethe_gpt_ctx_new();
    int32_t *tok = NULL;
    lethe_status st = x ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (size_t i0 = 0; !st && i0 < p->n; i0 += BATCH) {
        int B = (int)(p->n - i0 < BATCH ? p->n - i0 : BATCH), T = 1;
        for (int b = 0; b < B; b++)
            T = p->it[i0 + b].n > T ? p->it[i0 + b].n : T;
        int32_t *t2 = realloc(tok, sizeof *tok * (size_t)B * (size_t)T);
        if (!t2) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            break;
        }
        tok = t2;
        for (int b = 0; b < B; b++) /* padding after the last token changes nothing */
            for (int j = 0; j < T; j++)
                tok[b * T + j] = j < p->it[i0 + b].n ? p->it[i0 + b].ids[j] : p->it[i0 + b].ids[0];
        st = lethe_gpt_ctx_forward_to(x, g, tok, B, T, H - 1);
        for (int l = 0; !st && l < H; l++) {
            const float *h = lethe_gpt_ctx_hidden(x, l);
            for (int b = 0; b < B; b++)
                memcpy(feat + ((size_t)l * p->n + i0 + (size_t)b) * (size_t)C,
                       h + ((size_t)b * (size_t)T + (size_t)p->it[i0 + b].n - 1) * (size_t)C,
                       sizeof *feat * (size_t)C);
        }
    }
    free(tok);
    lethe_gpt_ctx_free(x);
    return st;
}

/* Share of rows (of `set`, or of fold 1 of the retain rows when set < 0)
 * whose largest output is their class. */
static double accuracy(const probe *p, const double *out, int set)
{
    long hit = 0, n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const item *e = &p->it[i];
        if (set < 0 ? e->set != S_RETAIN || !e->fold : e->set != set)
            continue;
        const double *o = out + i * (size_t)p->k;
        int best = 0;
        for (int c = 1; c < p->k; c++)
            if (o[c] > o[best])
                best = c;
        hit += best == e->cls, n++;
    }
    return n ? (double)hit / (double)n : NAN;
}

/* Fit the ridge classifier on layer states X (n, C) and score it: acc[set]
 * for the forget and holdout rows, acc[S_RETAIN] for the retain entities
 * held out (by the fit that left them out), *lambda the strength chosen. */
static lethe_status fit_layer(const probe *p, const float *X, int C, double *acc,
                              double *lambda)
{
    lethe_dataset *ds = lethe_dataset_alloc("probe", LETHE_TASK_REGRESS, (long)p->n, C, p->k);
    double *out = malloc(sizeof *out * p->n * (size_t)p->k);
    long *rows = malloc(sizeof *rows * (p->n ? p->n : 1));
    double *mu = calloc((size_t)C, sizeof *mu), *sd = calloc((size_t)C, sizeof *sd);
    if (!ds || !out || !rows || !mu || !sd) {
        lethe_dataset_free(ds);
        free(out), free(rows), free(mu), free(sd);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    /* standardise on the retain rows */
    const double nr = (double)p->n_set[S_RETAIN];
    for (size_t i = 0; i < p->n; i++)
        for (int j = 0; p->it[i].set == S_RETAIN && j < C; j++)
            mu[j] += X[i * (size_t)C + (size_t)j] / nr;
    for (size_t i = 0; i < p->n; i++)
        for (int j = 0; p->it[i].set == S_RETAIN && j < C; j++) {
            double d = X[i * (size_t)C + (size_t)j] - mu[j];
            sd[j] += d * d / nr;
        }
    for (int j = 0; j < C; j++)
        sd[j] = sd[j] > 1e-12 ? sqrt(sd[j]) : 1.0;
    for (size_t i = 0; i < p->n; i++) {
        ds->ids[i] = i;
        for (int j = 0; j < C; j++)
            ds->x[i * (size_t)C + (size_t)j] =
                (float)((X[i * (size_t)C + (size_t)j] - mu[j]) / sd[j]);
        for (int c = 0; c < p->k; c++)
            ds->t[i * (size_t)p->k + (size_t)c] = c == p->it[i].cls;
    }
    lethe_linear_cfg cfg;
    lethe_linear_defaults(LETHE_LINEAR_RIDGE, &cfg);
    lethe_status st = LETHE_OK;
    double best = -1.0;
    for (int pass = 0; !st && pass <= N_LAMBDA; pass++) {
        /* passes 0 .. N_LAMBDA - 1 choose on the held-out fold; the last
           refits on every retain row */
        lethe_rows r = {.row = rows};
        for (size_t i = 0; i < p->n; i++)
            if (p->it[i].set == S_RETAIN && (pass == N_LAMBDA || !p->it[i].fold))
                rows[r.n++] = (long)i;
        cfg.lambda = pass < N_LAMBDA ? lambdas[pass] : *lambda;
        lethe_linear *m = NULL;
        st = lethe_linear_fit(LETHE_LINEAR_RIDGE, &cfg, ds, &r, &m);
        if (!st) {
            lethe_linear_predict(m, ds->x, ds->n, out);
            if (pass < N_LAMBDA) {
                double v = accuracy(p, out, -1);
                if (v > best) /* ties keep the stronger penalty */
                    best = v, *lambda = cfg.lambda;
            } else {
                for (int s = S_FORGET; s < N_SETS; s++)
                    acc[s] = accuracy(p, out, s);
                acc[S_RETAIN] = best; /* the held-out entities', fitted without them */
            }
        }
        lethe_linear_free(m);
    }
    lethe_dataset_free(ds);
    free(out), free(rows), free(mu), free(sd);
    return st;
}

/* Per layer: the probe's accuracy on each set for one model. */
static lethe_status probe_model(const audit_ctx *a, const lethe_gpt *g, const probe *p,
                                double *acc, double *lambda)
{
    const int C = g->cfg.n_embd, H = g->cfg.n_layer + 2;
    float *feat = malloc(sizeof *feat * (size_t)H * p->n * (size_t)C);
    lethe_status st = feat ? states(g, p, feat) : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int l = 0; !st && l < H; l++)
        st = fit_layer(p, feat + (size_t)l * p->n * (size_t)C, C, acc + l * N_SETS, &lambda[l]);
    (void)a;
    free(feat);
    return st;
}

static cJSON *layer_json(const double *acc, const double *lambda, int H)
{
    cJSON *o = cJSON_CreateObject();
    double col[64];
    for (int s = 0; s < N_SETS; s++) {
        for (int l = 0; l < H; l++)
            col[l] = acc[l * N_SETS + s];
        cJSON_AddItemToObject(o, s == S_RETAIN ? "retain_heldout" : set_name[s],
                              audit_array(col, H));
    }
    cJSON_AddItemToObject(o, "lambda", audit_array(lambda, H));
    return o;
}

/* The summary's figures and verdict. */
static void summarize(cJSON *o, const double *at, const double *am, const double *ao, int H)
{
    double share[64], tf[64], mf[64], of[64], th[64];
    int decide = -1;
    for (int l = 0; l < H; l++) {
        tf[l] = at[l * N_SETS + S_FORGET], mf[l] = am[l * N_SETS + S_FORGET];
        of[l] = ao[l * N_SETS + S_FORGET], th[l] = at[l * N_SETS + S_HOLDOUT];
        double lead = tf[l] - of[l];
        share[l] = lead > 1e-9 ? (mf[l] - of[l]) / lead : NAN;
        if (l >= 1 && lead >= MIN_LEAD && (decide < 0 || share[l] > share[decide]))
            decide = l;
    }
    cJSON_AddItemToObject(o, "target_forget", audit_array(tf, H));
    cJSON_AddItemToObject(o, "model_forget", audit_array(mf, H));
    cJSON_AddItemToObject(o, "oracle_forget", audit_array(of, H));
    cJSON_AddItemToObject(o, "target_holdout", audit_array(th, H));
    cJSON_AddItemToObject(o, "share", audit_array(share, H));
    char ev[512];
    if (decide < 0) {
        cJSON_AddNullToObject(o, "layer");
        cJSON_AddNullToObject(o, "verdict");
        snprintf(ev, sizeof ev, "probe: undecided: at no layer does the probe read the target's "
                 "forget facts %.2f better than the oracle's", MIN_LEAD);
    } else {
        int l = decide;
        cJSON_AddNumberToObject(o, "layer", l);
        cJSON_AddStringToObject(o, "verdict", share[l] >= 0.5 ? "suppression" : "removal");
        snprintf(ev, sizeof ev, "probe: a linear probe fitted on retain facts names %.0f%% of "
                 "the forget facts from the model's layer %d, against %.0f%% from the target's "
                 "and %.0f%% from the oracle's (%.0f%% of holdout facts no model saw): %.0f%% "
                 "of the target's lead %s", 100 * mf[l], l, 100 * tf[l], 100 * of[l],
                 100 * th[l], 100 * share[l],
                 share[l] >= 0.5 ? "is still inside" : "remains at the best layer");
    }
    cJSON_AddStringToObject(o, "evidence", ev);
}

lethe_status audit_latent(const audit_ctx *a, cJSON *eval, cJSON *sum)
{
    audit_keys k = {0};
    lethe_tofu t[N_SETS] = {{0}};
    const char **keys[N_SETS] = {0};
    probe p = {0};
    lethe_status st = audit_keys_load(a->c->data, &k);
    if (!st && !k.n) {
        audit_not_run(sum, "probe", 1, NO_KEYS);
        audit_keys_free(&k);
        return LETHE_OK;
    }
    if (!st)
        st = audit_load_sibling(a->c, "retain", 1, &t[S_RETAIN]);
    if (!st)
        st = audit_load_sibling(a->c, "holdout", 0, &t[S_HOLDOUT]);
    t[S_FORGET] = a->forget;
    for (int s = 0; !st && s < N_SETS; s++) {
        keys[s] = malloc(sizeof *keys[s] * (t[s].n ? t[s].n : 1));
        st = keys[s] ? audit_keys_of(&k, set_name[s], &t[s], keys[s])
                     : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    if (!st)
        st = classes(&p, keys[S_RETAIN], t[S_RETAIN].n);
    for (int s = 0; !st && s < N_SETS; s++)
        st = add_rows(a, &p, &t[s], keys[s], s);
    const int H = a->run.model->cfg.n_layer + 2;
    int small = !st && (p.k < 2 || !p.n_set[S_FORGET] || !p.n_set[S_HOLDOUT]);
    if (small) {
        char why[256];
        snprintf(why, sizeof why, "the benchmark is too small: %d values are each stated by %d retain "
                 "rows or more, with %zu forget and %zu holdout rows stating one", p.k, MIN_CLASS,
                 p.n_set[S_FORGET], p.n_set[S_HOLDOUT]);
        audit_not_run(sum, "probe", 1, why);
    }
    if (!st && H > 64)
        st = lethe_fail(LETHE_ERR_UNSUPPORTED, "the latent probe reads at most 62 layers");
    double acc[3][64 * N_SETS], lambda[3][64];
    const lethe_gpt *g[3] = {a->target.model, a->run.model, a->oracle.model};
    static const char *const who[3] = {"target", "model", "oracle"};
    for (int m = 0; !st && !small && m < 3; m++) {
        audit_progress(a, "probe: the %s's hidden states, %zu facts of %d classes", who[m], p.n,
                       p.k);
        st = probe_model(a, g[m], &p, acc[m], lambda[m]);
    }
    if (!st && !small) {
        cJSON *e = cJSON_AddObjectToObject(eval, "probe");
        cJSON_AddItemToObject(e, "classes", cJSON_CreateStringArray(p.classes, p.k));
        for (int m = 0; m < 3; m++)
            cJSON_AddItemToObject(e, who[m], layer_json(acc[m], lambda[m], H));
        cJSON *o = cJSON_AddObjectToObject(sum, "probe");
        cJSON_AddNumberToObject(o, "classes", p.k);
        for (int s = 0; s < N_SETS; s++) {
            char name[32];
            snprintf(name, sizeof name, "n_%s", set_name[s]);
            cJSON_AddNumberToObject(o, name, (double)p.n_set[s]);
        }
        summarize(o, acc[0], acc[1], acc[2], H);
    }
    t[S_FORGET] = (lethe_tofu){0}; /* a's */
    for (int s = 0; s < N_SETS; s++) {
        lethe_tofu_free(&t[s]);
        free(keys[s]);
    }
    probe_free(&p);
    audit_keys_free(&k);
    return st;
}
