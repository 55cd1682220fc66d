/* Shared by the audit's files (src/eval/audit*.c); not installed. */
#ifndef LETHE_AUDIT_INT_H
#define LETHE_AUDIT_INT_H

#include <stdarg.h>

#include <cjson/cJSON.h>

#include "lethe/audit.h"
#include "lethe/authors.h"
#include "lethe/gpt_hf.h"

typedef struct audit_ctx {
    const lethe_audit_cfg *c;
    int per_entity;                   /* questions per entity in the split */
    lethe_gpt_dir run, target, oracle; /* every one with the run's tokenizer */
    lethe_tofu forget;                /* DATA/SPLIT.json */
} audit_ctx;

/* The probes: each adds its object to eval and to sum (with "verdict" and
 * "evidence"). */
lethe_status audit_relearn(const audit_ctx *a, cJSON *eval, cJSON *sum);
lethe_status audit_quantize(const audit_ctx *a, cJSON *eval, cJSON *sum);
lethe_status audit_incontext(const audit_ctx *a, cJSON *eval, cJSON *sum);
lethe_status audit_prompts(const audit_ctx *a, cJSON *eval, cJSON *sum);

/* DATA/SPLIT + suffix + ".json" into t; LETHE_ERR_INVALID when it does not exist. */
lethe_status audit_load_split(const lethe_audit_cfg *c, const char *suffix, lethe_tofu *t);

/* The greedy answer of g to prompt, at most max_new tokens (fewer where the
 * context ends), stopped at and without the end-of-text token, into *text
 * (malloc'd). LETHE_ERR_INVALID for a prompt that does not fit. */
lethe_status audit_greedy(const audit_ctx *a, const lethe_gpt *g, const char *prompt,
                          int max_new, char **text);
/* ROUGE-L recall of gold in text (NaN when it cannot be computed). */
double audit_recall(const char *gold, const char *text);

void audit_progress(const audit_ctx *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
double audit_mean(const double *x, int n);
double audit_sd(const double *x, int n); /* sample standard deviation; 0 for n < 2 */
void audit_num(cJSON *o, const char *key, double v); /* null when not finite */
cJSON *audit_array(const double *x, int n);           /* null entries when not finite */

#endif
