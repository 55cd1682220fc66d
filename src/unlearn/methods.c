/* The method table, hyperparameters, and the checks every run passes. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const lethe_method ul_ft, ul_ga, ul_rl, ul_l1sparse, ul_gaussian, ul_salun, ul_scrub,
    ul_badteacher, ul_boundary, ul_fisher, ul_iau, ul_laf, ul_laf_r, ul_blindspot;

static const lethe_method *const table[] = {
    &ul_ft,       &ul_ga,       &ul_rl,     &ul_l1sparse, &ul_gaussian, &ul_salun,  &ul_scrub,
    &ul_badteacher, &ul_boundary, &ul_fisher, &ul_iau,      &ul_laf,      &ul_laf_r, &ul_blindspot};
#define N_METHODS (sizeof table / sizeof table[0])

size_t lethe_methods_count(void) { return N_METHODS; }

const lethe_method *lethe_methods_at(size_t i) { return i < N_METHODS ? table[i] : NULL; }

lethe_status lethe_method_find(const char *name, const lethe_method **out)
{
    char names[512] = "";
    for (size_t i = 0; i < N_METHODS; i++) {
        if (!strcmp(table[i]->name, name)) {
            *out = table[i];
            return LETHE_OK;
        }
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", table[i]->name);
    }
    return lethe_fail(LETHE_ERR_NOT_FOUND, "unknown method '%s'; the methods are: %s", name,
                      names);
}

lethe_status lethe_unlearn_hparams(lethe_unlearn_ctx *ctx, const lethe_method *m,
                                   const char *const *sets, size_t n_sets)
{
    ctx->method = m;
    int n = 0;
    for (; m->params[n].name; n++) {
        LETHE_ASSERT(n < LETHE_MAX_HPARAMS);
        ctx->hp[n] = m->params[n].dflt;
    }
    for (size_t s = 0; s < n_sets; s++) {
        const char *eq = strchr(sets[s], '=');
        int k = 0;
        while (k < n && (!eq || strncmp(m->params[k].name, sets[s], (size_t)(eq - sets[s])) ||
                         m->params[k].name[eq - sets[s]]))
            k++;
        if (!eq || k == n) {
            char names[512] = "";
            for (int i = 0; i < n; i++) {
                size_t len = strlen(names);
                snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                         m->params[i].name);
            }
            return lethe_fail(LETHE_ERR_INVALID, "'%s': %s takes key=value with keys: %s",
                              sets[s], m->name, n ? names : "(none)");
        }
        char *end;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || errno || !isfinite(v))
            return lethe_fail(LETHE_ERR_INVALID, "'%s': '%s' is not a number", sets[s],
                              eq + 1);
        ctx->hp[k] = v;
    }
    return LETHE_OK;
}

double lethe_hp(const lethe_unlearn_ctx *ctx, const char *name)
{
    for (int i = 0; ctx->method->params[i].name; i++)
        if (!strcmp(ctx->method->params[i].name, name))
            return ctx->hp[i];
    lethe_abort(__FILE__, __LINE__, name);
}

lethe_status lethe_unlearn_run(lethe_unlearn_ctx *ctx)
{
    const lethe_method *m = ctx->method;
    const lethe_dataset *ds = ctx->data;
    int classify = ds->task == LETHE_TASK_CLASSIFY;
    if (!(m->tasks & (classify ? LETHE_FOR_CLASSIFY : LETHE_FOR_REGRESS)))
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s is for %s only; %s is a %s task", m->name,
                          classify ? "regressors" : "classifiers", ds->name,
                          classify ? "classification" : "regression");
    if (ctx->forget->n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the forget set is empty", m->name);
    if (m->needs_retain && ctx->retain->n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s needs retain data; the retain set is empty",
                          m->name);
    for (int i = 0; m->params[i].name; i++) {
        const char *p = m->params[i].name;
        double v = ctx->hp[i];
        if ((!strcmp(p, "epochs") || !strcmp(p, "batch")) && (v < 1 || v != floor(v) || v > 1e6))
            return lethe_fail(LETHE_ERR_INVALID, "%s: %s = %g must be a whole number >= 1",
                              m->name, p, v);
        if (!strcmp(p, "lr") && !(v > 0))
            return lethe_fail(LETHE_ERR_INVALID, "%s: lr = %g must be positive", m->name, v);
    }
    ctx->steps = 0;
    return m->run(ctx);
}
