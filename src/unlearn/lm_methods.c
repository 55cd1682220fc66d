/* The language-model unlearning methods' table (lethe/lm_unlearn.h): one
 * row per method, each defined in its own file src/unlearn/lm_<name>.c,
 * listed here in the order of lethe_lm_method; names, defaults and parsing
 * read it. */
#include "lm_common.h"

#include <stdio.h>
#include <string.h>

extern const lethe_lm_method_def lm_ga, lm_graddiff, lm_npo, lm_simnpo, lm_idknll, lm_idkdpo,
    lm_rmu, lm_undial, lm_wga, lm_satimp, lm_ceu, lm_taskvector, lm_whp, lm_sft;

static const lethe_lm_method_def *const table[] = {
    &lm_ga,     &lm_graddiff, &lm_npo, &lm_simnpo,     &lm_idknll, &lm_idkdpo, &lm_rmu,
    &lm_undial, &lm_wga,      &lm_satimp, &lm_ceu, &lm_taskvector, &lm_whp,    &lm_sft};
#define N_ROWS (sizeof table / sizeof table[0])

/* MUSE's names for a method with a given retain term. */
static const struct {
    const char *name;
    lethe_lm_method m;
    lethe_lm_retain r;
} variants[] = {{"ga_gdr", LETHE_LM_GRADDIFF, LETHE_LM_RETAIN_NLL},
                {"ga_klr", LETHE_LM_GRADDIFF, LETHE_LM_RETAIN_KL},
                {"npo_gdr", LETHE_LM_NPO, LETHE_LM_RETAIN_NLL},
                {"npo_klr", LETHE_LM_NPO, LETHE_LM_RETAIN_KL}};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static const char *const retain_names[4] = {"none", "nll", "kl", "embed"};

size_t lethe_lm_methods_count(void) { return N_ROWS; }

const lethe_lm_method_def *lethe_lm_methods_at(size_t i) { return i < N_ROWS ? table[i] : NULL; }

const lethe_lm_method_def *lethe_lm_method_def_of(lethe_lm_method m)
{
    if ((unsigned)m >= N_ROWS)
        return NULL;
    LETHE_ASSERT(table[m]->id == m);
    return table[m];
}

const char *lethe_lm_method_name(lethe_lm_method m)
{
    const lethe_lm_method_def *d = lethe_lm_method_def_of(m);
    return d ? d->name : NULL;
}

const char *lethe_lm_retain_name(lethe_lm_retain r)
{
    return (unsigned)r < 4 ? retain_names[r] : NULL;
}

void lethe_lm_defaults(lethe_lm_method m, lethe_lm_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->method = m;
    c->retain = LETHE_LM_RETAIN_NLL;
    c->gamma = 1;
    c->alpha = 1;
    c->rmu_layer = -1;
    c->rmu_blocks = 3;
    c->steering = 2;
    c->ceu_ignore = 1;
    const lethe_lm_method_def *d = lethe_lm_method_def_of(m);
    if (d && d->defaults)
        d->defaults(c);
}

lethe_status lethe_lm_parse(const char *name, lethe_lm_cfg *cfg)
{
    char names[512] = "";
    for (size_t i = 0; i < N_ROWS; i++) {
        if (!strcmp(name, table[i]->name)) {
            lethe_lm_defaults(table[i]->id, cfg);
            return LETHE_OK;
        }
        size_t n = strlen(names);
        snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", table[i]->name);
        for (size_t v = 0; v < N_VARIANTS; v++)
            if (variants[v].m == table[i]->id) {
                n = strlen(names);
                snprintf(names + n, sizeof names - n, ", %s", variants[v].name);
            }
    }
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (!strcmp(name, variants[i].name)) {
            lethe_lm_defaults(variants[i].m, cfg);
            cfg->retain = variants[i].r;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_NOT_FOUND,
                      "unknown LM unlearning method '%s'; the methods are: %s", name, names);
}

lethe_status lethe_lm_retain_parse(const char *name, lethe_lm_retain *r)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, retain_names[i])) {
            *r = (lethe_lm_retain)i;
            return LETHE_OK;
        }
    return lethe_fail(LETHE_ERR_INVALID,
                      "unknown retain loss '%s' (expected none, nll, kl or embed)", name);
}

void lethe_lm_settings_text(const lethe_lm_cfg *c, char *buf, size_t cap)
{
    const lethe_lm_method_def *d = lethe_lm_method_def_of(c->method);
    unsigned r = d ? d->reads : 0;
    char a[64] = "", b[32] = "";
    if (r & LETHE_LM_READS_BETA)
        snprintf(a, sizeof a, "beta %g", c->beta);
    if (r & LETHE_LM_READS_DELTA)
        snprintf(b, sizeof b, " delta %g", c->delta);
    if (r & LETHE_LM_READS_BETA2)
        snprintf(b, sizeof b, " beta2 %g", c->beta2);
    if (r & LETHE_LM_READS_IGNORE)
        snprintf(a, sizeof a, "ignore %d", c->ceu_ignore);
    if ((r & LETHE_LM_READS_RMU) && c->rmu_layer < 0)
        snprintf(a, sizeof a, "steering %g layer auto %d blocks", c->steering, c->rmu_blocks);
    else if (r & LETHE_LM_READS_RMU)
        snprintf(a, sizeof a, "steering %g layer %d %d blocks", c->steering, c->rmu_layer,
                 c->rmu_blocks);
    snprintf(buf, cap, "%s%s", a, b);
}
