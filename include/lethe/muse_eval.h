/* MUSE's evaluation (Machine Unlearning Six-way Evaluation, Shi et al. 2024;
 * swj0419/muse_bench eval.py) of a GPT run on a MUSE-layout directory
 * (lethe/muse.h): VerbMem and KnowMem (forget and retain) by ROUGE-L F1 of
 * greedy generations, and PrivLeak by the Min-K% attack against a retrained
 * oracle (docs/muse.md, "The evaluation: lethe eval muse").
 *
 * VerbMem: greedy continuation of each verbmem prompt, verbmem_max_new
 *   tokens; score 100 x ROUGE-L F1 (no stemmer) against gt cut to its first
 *   verbmem_max_new tokens (decoded); the mean over the pairs.
 * KnowMem (forget_qa with forget_qa_icl, retain_qa with retain_qa_icl): the
 *   prompt is "Question: {q}\nAnswer: {a}\n\n" per in-context pair, then
 *   "Question: {q}\nAnswer: "; greedy, knowmem_max_new tokens, the output cut
 *   at the first "\n\n", "\nQuestion" or "Question:"; 100 x ROUGE-L F1
 *   against the answer, mean.
 * Prompts start with the end-of-text token when the tokenizer has one
 *   (Llama's BOS) and must leave room for max_new tokens in n_positions: a
 *   verbmem prompt keeps its last tokens, a knowmem prompt drops its earliest
 *   in-context pairs until it fits (then, if still too long, keeps its last
 *   tokens).
 * PrivLeak: Min-K% (k = mink) scores (lethe_lm_mia_scores) of privleak
 *   forget (members) and holdout (non-members), each text cut to the tokens
 *   the context holds. lethe_lm_mia_roc's AUC tends to 1 when the forget set
 *   is memorised; MUSE's AUC is 1 minus it (-> 0 when memorised), and
 *   PrivLeak = (AUC_run - AUC_oracle) / AUC_oracle x 100 in MUSE's AUC. */
#ifndef LETHE_MUSE_EVAL_H
#define LETHE_MUSE_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt_generate.h"
#include "lethe/guard_eco.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* The version of what lethe_muse_eval_run measures: raised whenever a
 * criterion is added or computed otherwise, so that a pipeline's kept
 * evaluations made by an earlier version are made again. */
#define LETHE_MUSE_EVAL_VERSION 2

typedef struct lethe_muse_eval_cfg {
    const char *run;      /* the GPT run to evaluate */
    const char *data;     /* a MUSE-layout directory */
    const char *oracle;   /* the retrained run (PrivLeak's reference AUC); NULL: PrivLeak null */
    const char *out;      /* where MUSE_EVAL.json and MUSE_SUMMARY.json go (created); NULL: run */
    int verbmem_max_new;  /* 128 */
    int knowmem_max_new;  /* 32 */
    double mink;          /* Min-K%'s k for PrivLeak (0.4) */
    const lethe_gpt_logits_proc *logits; /* edits the run's logits (WHP) in generation;
                             PrivLeak and the memorisation measures are then null */
    int mia;              /* 1: every membership attack (lethe/lm_mia.h) on the
                             privleak forget passages against the holdout (0) */
    const char *mia_ref;  /* a reference model with the run's tokenizer: the
                             reference attack too (implies mia); NULL: none */
    const char *guard;    /* a guard file made for the run (lethe/guard_serve.h): every
                             generation is answered through it, flagged prompts as
                             guard_mode says; the likelihoods (PrivLeak, the attacks,
                             memorisation) stay the model's own (NULL: none) */
    const char *guard_mode; /* "guard" (NULL) or "eco" */
    lethe_eco_cfg guard_eco; /* eco's corruption (lethe_eco_defaults) */
    const cJSON *note;    /* fields copied into the summary; NULL */
    FILE *progress;       /* progress lines; NULL: none */
} lethe_muse_eval_cfg;

void lethe_muse_eval_defaults(lethe_muse_eval_cfg *c);

/* MUSE's criteria of c->run on c->data; writes OUT/MUSE_EVAL.json (per item)
 * and OUT/MUSE_SUMMARY.json (the settings, c->note's fields, then
 * forget_verbmem_ROUGE, forget_knowmem_ROUGE, retain_knowmem_ROUGE (the
 * utility), retain_verbmem_ROUGE (VerbMem on the privleak/retain.json
 * passages, each cut as verbmem's pairs are: the first
 * LETHE_MUSE_PROMPT_WORDS words the prompt, the rest the gt; null when no
 * passage is longer than the prompt), privleak, privleak_auc, privleak_auc_oracle (MUSE's AUCs),
 * mia_min_k (lethe_lm_mia_roc's AUC), exact_memorization,
 * extraction_strength; null where undefined; with mia, mia_ref and
 * lethe_lm_mia_report's keys per attack: LOSS, zlib, Min-K%, Min-K%++, the
 * reference attack with mia_ref, gradient norm, on the run's scores of the
 * same passages as PrivLeak), each atomically. Every input
 * is checked and everything computed before anything is written. *summary
 * (may be NULL) gets the summary (cJSON_Delete it). LETHE_ERR_IO (a missing
 * file), LETHE_ERR_FORMAT (a file of another layout, a run without a
 * tokenizer, an oracle with another tokenizer or vocabulary), the loaders'
 * errors, LETHE_ERR_NOMEM. */
lethe_status lethe_muse_eval_run(const lethe_muse_eval_cfg *c, cJSON **summary);

/* ---- the pieces, for tests ------------------------------------------------ */

/* Cut text in place before the first of MUSE's stop strings "\n\n",
 * "\nQuestion", "Question:" (the earliest occurrence of any). */
void lethe_muse_cut(char *text);

/* The KnowMem prompt of question q after the in-context pairs
 * (icl_q[i], icl_a[i]), i < n_icl, as tokens: eot first when eot >= 0, at
 * most `room` tokens (room >= 1). The earliest pairs are dropped until it
 * fits; *n_kept gets the pairs kept; with none kept and still too long, the
 * last tokens are kept (after eot). *ids (free()) holds *n tokens.
 * LETHE_ERR_UNSUPPORTED (a byte without a token), LETHE_ERR_NOMEM. */
lethe_status lethe_muse_knowmem_prompt(const lethe_tokenizer_t *tok, int32_t eot,
                                       const char *const *icl_q, const char *const *icl_a,
                                       int n_icl, const char *q, int room, int32_t **ids,
                                       int *n, int *n_kept);

/* The VerbMem prompt: eot (when >= 0) then the prompt's last tokens, at
 * most `room` tokens in all (room >= 2). Errors as above. */
lethe_status lethe_muse_verbmem_prompt(const lethe_tokenizer_t *tok, int32_t eot,
                                       const char *prompt, int room, int32_t **ids, int *n);

/* MUSE's AUC from lethe_lm_mia_roc's (members positive): 1 - auc. */
double lethe_muse_auc(double lethe_auc);

/* PrivLeak from MUSE's AUCs: (auc_run - auc_oracle) / auc_oracle x 100;
 * NaN when auc_oracle is 0 or either is not finite. */
double lethe_muse_privleak(double auc_run, double auc_oracle);

LETHE_API_END
#endif
