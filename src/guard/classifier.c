/* The guard's prompt classifier: a class-weighted, L2-regularised logistic
 * regression on standardised features, fitted by full-batch L-BFGS, and its
 * scores (the definitions are in guard_classifier.h; calibration and the
 * file are in classifier_io.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/guard_classifier.h"

#define HISTORY 10 /* L-BFGS memory */

void lethe_guard_clf_defaults(lethe_guard_clf_cfg *cfg)
{
    *cfg = (lethe_guard_clf_cfg){.C = 1.0, .tol = 1e-8, .max_iter = 1000, .model_hash = NULL};
}

void lethe_guard_clf_free(lethe_guard_clf *c)
{
    if (!c)
        return;
    free(c->mean);
    free(c->std);
    free(c->w);
    free(c);
}

/* A classifier with zeroed arrays of dim, tau 0.5, uncalibrated. */
static lethe_guard_clf *clf_alloc(int dim)
{
    lethe_guard_clf *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->dim = dim;
    c->mean = calloc((size_t)dim, sizeof *c->mean);
    c->std = calloc((size_t)dim, sizeof *c->std);
    c->w = calloc((size_t)dim, sizeof *c->w);
    if (!c->mean || !c->std || !c->w) {
        lethe_guard_clf_free(c);
        return NULL;
    }
    c->tau = 0.5;
    return c;
}

/* ---- the objective ---------------------------------------------------------- */

/* The fit's problem: rows x, labels, class weights, standardisation. */
struct problem {
    const lethe_guard_rows_t *x;
    const int *y;
    size_t n;
    int d;
    double C, cw[2];
    const double *mu, *sd;
    double *u, *acc; /* (d) scratch: w / sd, and sum_i r_i x_i */
};

/* log(1 + exp(t)), without overflow. */
static double softplus(double t)
{
    return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t));
}

static double sigmoid(double t)
{
    if (t >= 0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* F(theta) = ||w||^2 / (2 C n) + (1 / n) sum_i cw_i log(1 + exp(-s_i m_i)),
 * m_i = w.z_i + b, theta = (w, b); its gradient into g (d + 1). The
 * standardisation is applied implicitly, so rows stay sparse:
 *   w.z_i = sum_j x_ij u_j - sum_j u_j mu_j,  u = w / sd,
 *   dF/dw_j = w_j / (C n) + (sum_i r_i x_ij - mu_j sum_i r_i) / sd_j. */
static double objective(const struct problem *p, const double *theta, double *g)
{
    int d = p->d;
    double shift = 0, reg = 0, rsum = 0, loss = 0, b = theta[d];
    for (int j = 0; j < d; j++) {
        p->u[j] = theta[j] / p->sd[j];
        shift += p->u[j] * p->mu[j];
        reg += theta[j] * theta[j];
        p->acc[j] = 0;
    }
    for (size_t i = 0; i < p->n; i++) {
        const int32_t *col;
        const float *val;
        size_t k = lethe_guard_rows_sparse(p->x, i, &col, &val);
        double m = b - shift;
        for (size_t e = 0; e < k; e++)
            m += val[e] * p->u[col[e]];
        double s = p->y[i] ? 1.0 : -1.0, cw = p->cw[p->y[i]] / (double)p->n;
        loss += cw * softplus(-s * m);
        double r = -s * cw * sigmoid(-s * m); /* d loss_i / d m_i */
        rsum += r;
        for (size_t e = 0; e < k; e++)
            p->acc[col[e]] += r * val[e];
    }
    double cn = p->C * (double)p->n;
    for (int j = 0; j < d; j++)
        g[j] = theta[j] / cn + (p->acc[j] - p->mu[j] * rsum) / p->sd[j];
    g[d] = rsum;
    return loss + reg / (2 * cn);
}

static double max_abs(const double *v, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    return m;
}

static double dot(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* L-BFGS from theta = 0: two-loop recursion over the last HISTORY pairs,
 * backtracking Armijo search (c1 1e-4, halving) from a unit step (the first
 * step is scaled to length 1). A pair with s.y <= 0 is not stored (it cannot
 * happen on a strictly convex function but for rounding). A step that fails
 * Armijo only by rounding (no change in F at double precision) is taken when
 * it lowers the gradient. theta (P) holds the result. */
static lethe_status lbfgs(const struct problem *p, double tol, int max_iter, double *theta,
                          lethe_guard_fit_report *rep)
{
    int P = p->d + 1;
    size_t nvec = 4 + 2 * (size_t)HISTORY;
    double *mem = calloc(nvec * (size_t)P, sizeof *mem);
    if (!mem)
        return lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory for %d weights", P);
    double *g = mem, *dir = g + P, *tnew = dir + P, *gnew = tnew + P, *S = gnew + P,
           *Y = S + (size_t)HISTORY * P;
    double rho[HISTORY], alph[HISTORY];
    int head = 0, stored = 0, it = 0;
    memset(theta, 0, (size_t)P * sizeof *theta);
    double f = objective(p, theta, g);
    /* a zero gradient is the optimum even when tol is 0 */
    while (it < max_iter && max_abs(g, P) >= tol && max_abs(g, P) > 0) {
        /* dir = -H g */
        for (int i = 0; i < P; i++)
            dir[i] = -g[i];
        for (int k = 0; k < stored; k++) {
            int s = (head - 1 - k + HISTORY) % HISTORY;
            alph[s] = rho[s] * dot(S + (size_t)s * P, dir, P);
            for (int i = 0; i < P; i++)
                dir[i] -= alph[s] * Y[(size_t)s * P + i];
        }
        double gamma;
        if (stored) {
            int s = (head - 1 + HISTORY) % HISTORY;
            const double *y = Y + (size_t)s * P;
            gamma = dot(S + (size_t)s * P, y, P) / dot(y, y, P);
        } else {
            gamma = 1.0 / sqrt(dot(g, g, P));
        }
        for (int i = 0; i < P; i++)
            dir[i] *= gamma;
        for (int k = stored - 1; k >= 0; k--) {
            int s = (head - 1 - k + HISTORY) % HISTORY;
            double beta = rho[s] * dot(Y + (size_t)s * P, dir, P);
            for (int i = 0; i < P; i++)
                dir[i] += (alph[s] - beta) * S[(size_t)s * P + i];
        }
        double slope = dot(g, dir, P);
        if (!(slope < 0)) { /* not a descent direction (rounding): restart */
            double gn = sqrt(dot(g, g, P));
            for (int i = 0; i < P; i++)
                dir[i] = -g[i] / gn;
            slope = dot(g, dir, P);
            stored = 0;
        }
        double t = 1.0, fnew = f;
        int ok = 0;
        for (int tries = 0; tries < 60 && !ok; tries++, t *= 0.5) {
            for (int i = 0; i < P; i++)
                tnew[i] = theta[i] + t * dir[i];
            fnew = objective(p, tnew, gnew);
            ok = fnew <= f + 1e-4 * t * slope ||
                 (fnew <= f + 1e-15 * fabs(f) && max_abs(gnew, P) < max_abs(g, P));
        }
        if (!ok)
            break; /* no progress is possible at double precision */
        /* the pair (s, y) = (tnew - theta, gnew - g), kept when s.y > 0 */
        double sy = 0, yy = 0;
        for (int i = 0; i < P; i++) {
            double si = tnew[i] - theta[i], yi = gnew[i] - g[i];
            sy += si * yi;
            yy += yi * yi;
        }
        if (sy > 1e-16 * yy && yy > 0) {
            for (int i = 0; i < P; i++) {
                S[(size_t)head * P + i] = tnew[i] - theta[i];
                Y[(size_t)head * P + i] = gnew[i] - g[i];
            }
            rho[head] = 1.0 / sy;
            head = (head + 1) % HISTORY;
            stored += stored < HISTORY;
        }
        memcpy(theta, tnew, (size_t)P * sizeof *theta);
        memcpy(g, gnew, (size_t)P * sizeof *g);
        f = fnew;
        it++;
    }
    if (rep)
        *rep = (lethe_guard_fit_report){it, max_abs(g, P) < tol || max_abs(g, P) == 0, f,
                                        max_abs(g, P)};
    free(mem);
    return LETHE_OK;
}

/* ---- fitting ---------------------------------------------------------------- */

/* Training mean and population std of every feature, std 1 where the
 * feature is constant: as scikit-learn's StandardScaler, the variance counts
 * as 0 when var <= n eps var + (n eps mean)^2 (a constant column's rounding)
 * or the std is below 10 eps. */
static lethe_status standardise(const lethe_guard_rows_t *x, double *mu, double *sd)
{
    size_t n = lethe_guard_rows_count(x);
    int d = lethe_guard_rows_dim(x);
    size_t *nz = calloc((size_t)d, sizeof *nz); /* non-zeros per feature */
    if (!nz)
        return lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory for %d features", d);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const int32_t *col;
            const float *val;
            size_t k = lethe_guard_rows_sparse(x, i, &col, &val);
            for (size_t e = 0; e < k; e++) {
                int j = col[e];
                if (pass == 0) {
                    mu[j] += val[e];
                    nz[j]++;
                } else {
                    sd[j] += (val[e] - mu[j]) * (val[e] - mu[j]);
                }
            }
        }
        for (int j = 0; j < d && pass == 0; j++)
            mu[j] /= (double)n;
    }
    for (int j = 0; j < d; j++) { /* the zeros each add mu^2 */
        double var = (sd[j] + (double)(n - nz[j]) * mu[j] * mu[j]) / (double)n;
        double eps = 2.220446049250313e-16, ne = (double)n * eps;
        int constant = var <= ne * var + (ne * mu[j]) * (ne * mu[j]) || sqrt(var) < 10 * eps;
        sd[j] = constant ? 1.0 : sqrt(var);
    }
    free(nz);
    return LETHE_OK;
}

lethe_status lethe_guard_clf_fit(const lethe_guard_feat *f, const lethe_guard_rows_t *x,
                                 const int *labels, const lethe_guard_clf_cfg *cfg,
                                 lethe_guard_clf **out, lethe_guard_fit_report *rep)
{
    *out = NULL;
    size_t n = lethe_guard_rows_count(x), count[2] = {0, 0};
    int d = lethe_guard_rows_dim(x);
    if (f->dim != d || (f->kind != LETHE_GUARD_FEAT_HASH && f->kind != LETHE_GUARD_FEAT_MODEL))
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard classifier: extractor of kind %d with %d features for rows of %d",
                          (int)f->kind, f->dim, d);
    if (!(cfg->C > 0) || !isfinite(cfg->C) || !(cfg->tol >= 0) || cfg->max_iter < 0)
        return lethe_fail(LETHE_ERR_INVALID, "guard classifier: C %g, tol %g, max_iter %d",
                          cfg->C, cfg->tol, cfg->max_iter);
    const char *hash = cfg->model_hash ? cfg->model_hash : "";
    if (strlen(hash) > LETHE_GUARD_MODEL_HASH_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "guard classifier: a model hash of %zu bytes (%d at most)",
                          strlen(hash), LETHE_GUARD_MODEL_HASH_MAX);
    for (const char *h = hash; *h; h++)
        if (*h < 0x20 || *h > 0x7e)
            return lethe_fail(LETHE_ERR_INVALID,
                              "guard classifier: the model hash must be printable ASCII");
    for (size_t i = 0; i < n; i++) {
        if (labels[i] != 0 && labels[i] != 1)
            return lethe_fail(LETHE_ERR_INVALID, "guard classifier: label %d of prompt %zu (0 or 1)",
                              labels[i], i);
        count[labels[i]]++;
    }
    if (!count[0] || !count[1])
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard classifier: %zu flagged and %zu kept prompts; both are needed",
                          count[1], count[0]);
    lethe_guard_clf *c = clf_alloc(d);
    double *theta = malloc(((size_t)d + 1) * sizeof *theta);
    double *scratch = calloc(2 * (size_t)d, sizeof *scratch);
    lethe_status st = LETHE_OK;
    if (!c || !theta || !scratch) {
        st = lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory for %d features", d);
        goto done;
    }
    c->kind = f->kind;
    c->layer = f->kind == LETHE_GUARD_FEAT_HASH ? -1 : f->layer;
    c->C = cfg->C;
    memcpy(c->model_hash, hash, strlen(hash) + 1);
    st = standardise(x, c->mean, c->std);
    if (st != LETHE_OK)
        goto done;
    struct problem p = {x, labels, n, d, cfg->C, {0, 0}, c->mean, c->std, scratch, scratch + d};
    p.cw[0] = (double)n / (2.0 * (double)count[0]); /* class_weight="balanced" */
    p.cw[1] = (double)n / (2.0 * (double)count[1]);
    st = lbfgs(&p, cfg->tol, cfg->max_iter, theta, rep);
    if (st != LETHE_OK)
        goto done;
    memcpy(c->w, theta, (size_t)d * sizeof *theta);
    c->bias = theta[d];
    *out = c;
    c = NULL;
done:
    lethe_guard_clf_free(c);
    free(theta);
    free(scratch);
    return st;
}

/* ---- scoring ------------------------------------------------------------------ */

double lethe_guard_clf_score(const lethe_guard_clf *c, const float *x)
{
    double m = c->bias;
    for (int j = 0; j < c->dim; j++)
        m += c->w[j] * ((x[j] - c->mean[j]) / c->std[j]);
    return isnan(m) ? 1.0 : sigmoid(m); /* overflowing values fail closed */
}

int lethe_guard_clf_flags(const lethe_guard_clf *c, double score)
{
    return score > c->tau;
}

lethe_status lethe_guard_clf_score_text(const lethe_guard_clf *c, const lethe_guard_feat *f,
                                        const void *text, size_t len, double *score,
                                        int *flagged)
{
    if (f->kind != c->kind || f->dim != c->dim || f->layer != c->layer)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard classifier: extractor (kind %d, dim %d, layer %d) is not the "
                          "classifier's (kind %d, dim %d, layer %d)",
                          (int)f->kind, f->dim, f->layer, (int)c->kind, c->dim, c->layer);
    float *x = malloc((size_t)c->dim * sizeof *x);
    if (!x)
        return lethe_fail(LETHE_ERR_NOMEM, "guard classifier: out of memory");
    lethe_status st = lethe_guard_features(f, text, len, x);
    if (st == LETHE_OK) {
        *score = lethe_guard_clf_score(c, x);
        if (flagged)
            *flagged = lethe_guard_clf_flags(c, *score);
    }
    free(x);
    return st;
}

lethe_status lethe_guard_clf_bind(const lethe_guard_clf *c, const lethe_gpt *g,
                                  const lethe_tokenizer_t *tok, const char *model_hash,
                                  lethe_guard_feat *out)
{
    if (c->kind == LETHE_GUARD_FEAT_HASH)
        return lethe_guard_feat_hash(c->dim, out);
    if (c->model_hash[0] && (!model_hash || strcmp(model_hash, c->model_hash)))
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard classifier: fitted on model %s, not on model %s",
                          c->model_hash, model_hash ? model_hash : "(no hash given)");
    if (!g)
        return lethe_fail(LETHE_ERR_INVALID, "guard classifier: model features need the model");
    if (g->cfg.n_embd != c->dim || c->layer > g->cfg.n_layer + 1)
        return lethe_fail(LETHE_ERR_INVALID,
                          "guard classifier: fitted on hidden state %d of width %d; the model has "
                          "states 0 to %d of width %d",
                          c->layer, c->dim, g->cfg.n_layer + 1, g->cfg.n_embd);
    return lethe_guard_feat_model(g, tok, c->layer, out);
}
