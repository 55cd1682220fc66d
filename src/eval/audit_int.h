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
lethe_status audit_latent(const audit_ctx *a, cJSON *eval, cJSON *sum);
lethe_status audit_neighbours(const audit_ctx *a, cJSON *eval, cJSON *sum);

/* The generator's fact keys (audit_keys.c): every row of a benchmark made by
 * lethe data make authors, looked up by question. */
typedef struct audit_keys {
    lethe_tofu *tables; /* the regenerated authors, full then holdout */
    size_t n_tables;
    void *map;          /* (question, key), sorted by question */
    size_t n;           /* 0: DATA has no manifest of lethe's generator */
} audit_keys;
/* Regenerate DATA's rows from its manifest.json; k->n stays 0 (LETHE_OK)
 * when DATA was not made by lethe. */
lethe_status audit_keys_load(const char *data, audit_keys *k);
/* keys[i] = the key of t's row i; LETHE_ERR_INVALID naming `name` and the row
 * when a question is not in k or its answer does not state the key. */
lethe_status audit_keys_of(const audit_keys *k, const char *name, const lethe_tofu *t,
                           const char **keys);
void audit_keys_free(audit_keys *k);
#define NO_KEYS                                                                      \
    "it needs the facts behind the answers, which only a benchmark made by lethe data " \
    "make authors records (its manifest.json)"
/* DATA/PREFIX + the split's percentage (forget10 -> retain90 or holdout10)
 * into t: LETHE_ERR_INVALID when the split is not forgetNN or the file does
 * not exist. complement: 100 - NN (retain). */
lethe_status audit_load_sibling(const lethe_audit_cfg *c, const char *prefix, int complement,
                                lethe_tofu *t);

/* DATA/SPLIT + suffix + ".json" into t; LETHE_ERR_INVALID when it does not exist. */
lethe_status audit_load_split(const lethe_audit_cfg *c, const char *suffix, lethe_tofu *t);

/* The greedy answer of g to prompt, at most max_new tokens (fewer where the
 * context ends), stopped at and without the end-of-text token, into *text
 * (malloc'd). LETHE_ERR_INVALID for a prompt that does not fit. */
lethe_status audit_greedy(const audit_ctx *a, const lethe_gpt *g, const char *prompt,
                          int max_new, char **text);
/* The answer of a guard session (lethe/guard_serve.h) on the unlearned model
 * to prompt, at most max_new tokens: whether the guard flagged the prompt,
 * and the ROUGE-L recall of gold in the answer (0 for a refusal). */
struct lethe_guard_serve;
lethe_status audit_guarded(const audit_ctx *a, const struct lethe_guard_serve *gs,
                           const char *prompt, int max_new, const char *gold, int *flagged,
                           double *recall);
/* ROUGE-L recall of gold in text (NaN when it cannot be computed). */
double audit_recall(const char *gold, const char *text);

void audit_progress(const audit_ctx *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
double audit_mean(const double *x, int n);
double audit_sd(const double *x, int n); /* sample standard deviation; 0 for n < 2 */
/* sum.name = {"verdict": null (when verdict), "evidence": "NAME: not run: WHY"}. */
void audit_not_run(cJSON *sum, const char *name, int verdict, const char *why);
void audit_num(cJSON *o, const char *key, double v); /* null when not finite */
cJSON *audit_array(const double *x, int n);           /* null entries when not finite */

#endif
