/* The audit's prompt attacks (lethe/audit.h, "prompts"): the forget
 * questions asked other ways, the greedy answers scored against the true
 * ones. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"

enum { ORIGINAL, PARAPHRASED, MANY_SHOT, MASKED, N_VARIANTS, N_MODELS = 3 };
static const char *const variant_names[N_VARIANTS] = {"original", "paraphrased", "many_shot",
                                                      "masked"};
static const char *const model_names[N_MODELS] = {"target", "model", "oracle"};

/* The prompt of row r in variant v (malloc'd; NULL when out of memory). */
static char *prompt(const lethe_tofu_row *r, int v, const lethe_tofu *shots, int k)
{
    char *s = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&s, &len);
    if (!m)
        return NULL;
    if (v == MANY_SHOT)
        for (int j = 0; j < k; j++)
            fprintf(m, "Question: %s\nAnswer: %s\n\n", shots->rows[j].question,
                    shots->rows[j].answer);
    if (v == PARAPHRASED)
        fprintf(m, "Question: %s\nAnswer:", r->paraphrased_question);
    else if (v == MASKED)
        fprintf(m, "Question: Do not mention the name, but %c%s\nAnswer:",
                tolower((unsigned char)r->question[0]), r->question + 1);
    else
        fprintf(m, "Question: %s\nAnswer:", r->question);
    if (fclose(m)) {
        free(s);
        return NULL;
    }
    return s;
}

lethe_status audit_prompts(const audit_ctx *a, cJSON *eval, cJSON *sum)
{
    const lethe_audit_cfg *c = a->c;
    lethe_tofu t = {0}, shots = {0};
    lethe_status st = audit_load_split(c, "_perturbed", &t);
    int have_para = 1;
    for (size_t i = 0; !st && i < t.n; i++)
        have_para &= t.rows[i].paraphrased_question != NULL;
    if (!st) {
        lethe_audit_cfg rc = *c;
        rc.split = "retain";
        st = audit_load_split(&rc, "_perturbed", &shots);
    }
    const int k = c->shots < (int)shots.n ? c->shots : (int)shots.n;
    const lethe_gpt_dir *dirs[N_MODELS] = {&a->target, &a->run, &a->oracle};
    double mean[N_MODELS][N_VARIANTS];
    double *rec[N_MODELS][N_VARIANTS] = {{0}};
    for (int m = 0; m < N_MODELS; m++)
        for (int v = 0; v < N_VARIANTS; v++)
            mean[m][v] = NAN;
    for (int m = 0; !st && m < N_MODELS; m++)
        for (int v = 0; !st && v < N_VARIANTS; v++) {
            if (v == PARAPHRASED && !have_para)
                continue;
            audit_progress(a, "prompts: the %s, %s", model_names[m], variant_names[v]);
            if (!(rec[m][v] = malloc(sizeof(double) * (t.n ? t.n : 1))))
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            double total = 0.0;
            for (size_t i = 0; !st && i < t.n; i++) {
                char *p = prompt(&t.rows[i], v, &shots, k), *text = NULL;
                st = p ? audit_greedy(a, dirs[m]->model, p, c->max_new, &text)
                       : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                if (!st)
                    total += rec[m][v][i] = audit_recall(t.rows[i].answer, text);
                free(text);
                free(p);
            }
            mean[m][v] = total / (double)t.n;
        }
    if (!st) {
        cJSON *e = cJSON_AddObjectToObject(eval, "prompts");
        cJSON *s = cJSON_AddObjectToObject(sum, "prompts");
        cJSON_AddNumberToObject(s, "shots", k);
        cJSON_AddNumberToObject(s, "max_new", c->max_new);
        double share[N_VARIANTS];
        int best = -1;
        for (int v = 0; v < N_VARIANTS; v++) {
            double lead = mean[0][v] - mean[2][v];
            share[v] = lead > 0.02 ? (mean[1][v] - mean[2][v]) / lead : NAN;
            if (v != ORIGINAL && !isnan(share[v]) && (best < 0 || share[v] > share[best]))
                best = v;
        }
        for (int m = 0; m < N_MODELS; m++) {
            cJSON *em = cJSON_AddObjectToObject(e, model_names[m]);
            cJSON *sm = cJSON_AddObjectToObject(s, model_names[m]);
            for (int v = 0; v < N_VARIANTS; v++) {
                audit_num(sm, variant_names[v], mean[m][v]);
                if (rec[m][v])
                    cJSON_AddItemToObject(em, variant_names[v], audit_array(rec[m][v], (int)t.n));
            }
        }
        cJSON *sj = cJSON_AddObjectToObject(s, "share");
        for (int v = 0; v < N_VARIANTS; v++)
            audit_num(sj, variant_names[v], share[v]);
        char ev[512];
        if (best < 0) {
            cJSON_AddNullToObject(s, "verdict");
            snprintf(ev, sizeof ev, "prompts: undecided: under no rephrasing does the target "
                     "answer the forget questions better than the oracle");
        } else {
            cJSON_AddStringToObject(s, "verdict", share[best] >= 0.5 ? "suppression" : "removal");
            snprintf(ev, sizeof ev, "prompts: asked %s, the model recalls %.0f%% of the "
                     "target's lead over the oracle in ROUGE-L (%.3f against %.3f; as asked: "
                     "%.0f%%); suppression from 50%%", variant_names[best] , 100 * share[best],
                     mean[1][best], mean[2][best], isnan(share[ORIGINAL]) ? 0.0
                                                                            : 100 * share[ORIGINAL]);
        }
        cJSON_AddStringToObject(s, "evidence", ev);
    }
    for (int m = 0; m < N_MODELS; m++)
        for (int v = 0; v < N_VARIANTS; v++)
            free(rec[m][v]);
    lethe_tofu_free(&t);
    lethe_tofu_free(&shots);
    return st;
}
