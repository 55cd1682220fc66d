/* TOFU's metrics on a GPT model: answer probability, ROUGE-L recall of
 * greedy answers, truth ratio, exact memorisation, extraction strength, and
 * the aggregates Forget Quality and Model Utility (research: TOFU §2.2,
 * OpenUnlearning's evaluators).
 *
 * A question-answer pair is laid out as TOFU lays it out for phi-1.5:
 *
 *   "Question: " Q "\nAnswer:"   then   " " A   then <|endoftext|>
 *
 * the prompt and the answer tokenized apart (so the answer's tokens do not
 * depend on the question) and the end-of-text token closing the answer.
 * Every answer measure runs over the answer's tokens, the closing token
 * included, with the prompt as context (teacher forcing); nothing is scored
 * on the prompt. Fine-tuning on the same layout (lethe_qa_encode) trains on
 * exactly the tokens the metrics read.
 *
 * Per question, with P(a) = exp(-NLL_sum(a | q) / |a|) the length-normalised
 * probability of an answer:
 *   probability    forget, retain: P(a); real authors, world facts:
 *                  P(a) / (P(a) + sum over perturbed answers P(p))
 *   ROUGE-L        recall of the greedy answer (at most max_new tokens,
 *                  stopping at end-of-text) against a, stemmed
 *   truth ratio    R = P_pert / P(a~), a~ the paraphrased answer (forget,
 *                  retain) or a itself (real authors, world facts); P_pert
 *                  the geometric mean exp(-mean_p NLL_sum(p)/|p|) of the
 *                  perturbed answers (TOFU's and OpenUnlearning's code), or
 *                  their arithmetic mean (TOFU's paper) as an option
 *   exact memorisation   the share of answer tokens that are the argmax
 *   extraction strength  1 - k / |a|, k the smallest prefix after which
 *                  every argmax is the answer's token (k = |a| when the
 *                  last one is wrong: 0)
 * and per set: the means, except the truth ratio: mean(min(R, 1/R)) on a
 * forget set, mean(max(0, 1 - R)) on the others. OpenUnlearning computes
 * the last two otherwise, an option (lethe_tofu_memo): over the answer
 * without its closing end-of-text token (n = |a| - 1 tokens), and, when no
 * suffix is right, with k = n - 1 (its search stops on the last token), so
 * ES = 1 / n rather than 0. */
#ifndef LETHE_TOFU_H
#define LETHE_TOFU_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/guard_alu.h"
#include "lethe/guard_eco.h"
#include "lethe/progress.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* One question and its answers. */
typedef struct lethe_qa {
    const char *question;
    const char *answer;
    const char *paraphrased_answer;  /* NULL when the set has none */
    const char *const *perturbed;    /* n_perturbed wrong answers (may be 0) */
    int n_perturbed;
    const char *paraphrased_question; /* NULL when the set has none */
} lethe_qa;

/* The tokens of a pair: *ids (free with free()) holds the prompt's *n_prompt
 * tokens, then the answer's, then eot when eot >= 0; *n in all.
 * LETHE_ERR_UNSUPPORTED (a byte the tokenizer lacks), LETHE_ERR_NOMEM. */
lethe_status lethe_qa_encode(const lethe_tokenizer_t *tok, const char *question,
                             const char *answer, int32_t eot, int32_t **ids, int *n_prompt,
                             int *n);

/* Teacher-forced measures of one answer given its question. */
typedef struct lethe_qa_score {
    double nll_sum; /* summed negative log-likelihood of the answer's tokens */
    int n;          /* answer tokens (the closing end-of-text included) */
    int n_match;    /* of them, the argmax of the model */
    int k_star;     /* smallest k with every argmax from token k on right */
    /* the same three over the answer without its closing end-of-text token
     * (n - 1 tokens; all n when the pair has none) */
    int n_body, n_match_body, k_star_body;
} lethe_qa_score;

/* The measures of one pair from the logits of its teacher-forced forward:
 * the pair is ids[0..n), its answer ids[n_prompt..n) (1 <= n_prompt < n),
 * closed by the end-of-text token when `closed`; row t of logits (n - 1, V)
 * is the distribution of ids[t + 1]. logprobs (n - 1), when not NULL, holds
 * log p(ids[t + 1]) of each row as the forward computed it; otherwise it is
 * formed from the logits in double (for rows a logits processor changed). */
void lethe_qa_score_rows(const float *logits, const float *logprobs, int V, const int32_t *ids,
                         int n_prompt, int n, int closed, lethe_qa_score *s);

/* Conventions for exact memorisation and extraction strength. */
enum lethe_tofu_memo {
    LETHE_TOFU_MEMO_PAPER = 0, /* every answer token; ES 0 when the last is wrong */
    LETHE_TOFU_MEMO_OU = 1     /* OpenUnlearning's: without the end-of-text token,
                                  ES 1 / n when no suffix is right */
};
/* EM and ES of one answer in a convention. OpenUnlearning's on an answer with
 * no token left gives EM NaN (it has no score) and ES 0. */
void lethe_tofu_memo(const lethe_qa_score *s, int convention, double *em, double *es);

/* Score answers[i] after questions[i] for i < n, `batch` pairs per forward
 * (padded; padding never changes a score). g is read-only (the activations
 * belong to the call), so threads may score on one model at once.
 * LETHE_ERR_INVALID when a pair
 * is longer than the model's context (naming it), and as lethe_qa_encode. */
lethe_status lethe_qa_score_answers(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                    int32_t eot, const char *const *questions,
                                    const char *const *answers, size_t n, int batch,
                                    lethe_qa_score *out);

enum lethe_tofu_kind {
    LETHE_TOFU_FORGET = 0, /* a forget split (or its holdout) */
    LETHE_TOFU_RETAIN = 1, /* the retain evaluation set */
    LETHE_TOFU_FACTS = 2   /* real authors, world facts */
};

/* What answers the questions for ROUGE-L in place of greedy decoding (a
 * guarded model, lethe/guard_serve.h): the answer to `question` (TOFU's
 * prompt is the answerer's to build), at most max_new tokens ending at
 * eot, into *text (malloc'd, the end-of-text token left out); *flagged and
 * *refused say whether the guard took the prompt and refused it. */
typedef struct lethe_tofu_answerer {
    lethe_status (*answer)(void *ctx, const char *question, int max_new, int32_t eot,
                           char **text, int *flagged, int *refused);
    void *ctx;
} lethe_tofu_answerer;

typedef struct lethe_tofu_opts {
    int max_new;      /* greedy answer length for ROUGE-L (200) */
    int arithmetic;   /* truth ratio: 1 for the arithmetic mean of the
                         perturbed probabilities (0: geometric) */
    int batch;        /* pairs per forward (16) */
    int no_generate;  /* 1: skip the greedy answers (ROUGE-L reported as NaN) */
    int memo;         /* exact memorisation and extraction strength: enum
                         lethe_tofu_memo (LETHE_TOFU_MEMO_PAPER) */
    const lethe_gpt_logits_proc *logits; /* when not NULL, edits every logit row of
                         the model evaluated: its rows hook in scoring, its step
                         hook in the greedy answers (WHP's adjustment, from
                         lethe_lm_whp_proc, is one) (NULL) */
    lethe_progress *progress; /* when not NULL, advanced to the number of questions
                         done as each one is finished (NULL) */
    const lethe_tofu_answerer *answerer; /* when not NULL, answers in place of
                         greedy decoding (scoring is the model's own) (NULL) */
    int paraphrased;  /* 1: on a forget set, generate from each row's paraphrased
                         question where it has one (leakage under paraphrase) (0) */
} lethe_tofu_opts;

void lethe_tofu_defaults(lethe_tofu_opts *o);

typedef struct lethe_tofu_sample {
    double prob, rouge_l, truth_ratio, em, es;
    char *generated; /* the greedy answer (owned; NULL with no_generate) */
    int flagged, refused; /* the answerer's verdicts (0 without one) */
} lethe_tofu_sample;

typedef struct lethe_tofu_set {
    int kind;
    size_t n;
    lethe_tofu_sample *samples; /* (n), owned */
    /* aggregates as TOFU reports them (truth_ratio as described above; em the
     * mean of the answers that have one) */
    double prob, rouge_l, truth_ratio, em, es;
    double flagged, refused; /* shares of the questions (NaN without an answerer) */
} lethe_tofu_set;

/* Evaluate g on items[0..n) of the given kind. The truth ratio needs the
 * perturbed answers (and, for forget and retain sets, the paraphrased one);
 * without them it is NaN. g is read-only, as in lethe_qa_score_answers.
 * LETHE_ERR_INVALID for n == 0 or a pair too long,
 * LETHE_ERR_NOMEM. Free with lethe_tofu_set_free. */
lethe_status lethe_tofu_eval_set(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                                 int32_t eot, const lethe_qa *items, size_t n, int kind,
                                 const lethe_tofu_opts *o, lethe_tofu_set *out);
void lethe_tofu_set_free(lethe_tofu_set *s);

/* Forget Quality: the p-value of the two-sample Kolmogorov-Smirnov test
 * between the per-question truth ratios of a model and of the retain-only
 * model on the same forget set (scipy.stats.ks_2samp). NaN values are
 * skipped; LETHE_ERR_INVALID when either side has none left. */
lethe_status lethe_tofu_forget_quality(const lethe_tofu_set *model, const lethe_tofu_set *oracle,
                                       double *p_value);

/* Model Utility: the harmonic mean of probability, ROUGE-L recall and truth
 * ratio on each of the sets given (TOFU: retain, real authors, world facts:
 * nine numbers). LETHE_ERR_INVALID when a number is missing (NaN) or
 * negative. */
lethe_status lethe_tofu_model_utility(const lethe_tofu_set *const *sets, size_t n_sets,
                                      double *mu);

/* ---- an evaluation run (src/eval/tofu_run.c) ---------------------------- */

typedef struct lethe_tofu_run_cfg {
    const char *run;    /* the GPT run to evaluate (lethe's or a Hugging Face GPT-2
                           directory), with a tokenizer holding <|endoftext|> */
    const char *data;   /* the benchmark directory (TOFU's layout) */
    const char *split;  /* a name with DATA/NAME_perturbed.json (forget10) */
    const char *oracle; /* the retain-only run, for Forget Quality; NULL: none */
    const char *out;    /* where the files go (created if needed); NULL: run */
    lethe_tofu_opts t;  /* the metrics' settings; its logits and progress are the
                           run's own (below) */
    const lethe_gpt_logits_proc *logits; /* edits the logits of the run's model
                           (not the oracle's) in scoring and generation; its check
                           is asked first (NULL: none) */
    const cJSON *note;  /* fields copied into the summary after the settings (say,
                           the logits processor's); NULL: none */
    FILE *progress;     /* progress lines per set (lethe/progress.h); NULL: none */
    int mia;            /* 1: membership inference (lethe/lm_mia.h) on the forget
                           split against its holdout set (DATA/holdoutXX.json for a
                           split forgetXX; not with a logits processor); 0 (the
                           default): none */
    const char *mia_ref; /* a reference model with the run's tokenizer for the
                           reference attack (implies mia); NULL: none */
    double mia_k;       /* Min-K% and Min-K%++'s fraction (0.4) */
    const char *guard;  /* a guard file (lethe/guard_serve.h) made for the run's
                           model: its answers replace greedy decoding (the scores
                           stay the model's); NULL: none */
    const char *guard_mode; /* how a flagged prompt is answered: "guard", "eco", or
                               "alu": ALU's agents (lethe/guard_alu.h) answer every
                               question over alu_endpoint, or with the run's own
                               model as the chat model (lethe_alu_local_chat)
                               when it is NULL; the guard's automaton is their
                               gate and audit, and the summary's "alu" counts
                               each set's calls, tokens and stages */
    lethe_eco_cfg guard_eco; /* eco's corruption (lethe_eco_defaults) */
    const lethe_alu_endpoint *alu_endpoint; /* "alu": the chat endpoint (say, lethe
                                               serve on the run); NULL: the run */
} lethe_tofu_run_cfg;

/* lethe_tofu_defaults' metrics, no files, no hook, no progress, the
 * membership-inference attacks when the benchmark has the holdout set. */
void lethe_tofu_run_defaults(lethe_tofu_run_cfg *c);

/* TOFU's metrics of c->run on the forget split (SPLIT_perturbed.json), the
 * retain evaluation set (retain_perturbed.json) and the general-knowledge
 * sets (real_authors_perturbed.json, world_facts_perturbed.json); with an
 * oracle, Forget Quality (the oracle scored on the forget split, without
 * generation); Model Utility unless t.no_generate. Writes OUT/TOFU_EVAL.json
 * (per question) and OUT/TOFU_SUMMARY.json (the settings, then
 * SET_prob, SET_rougeL_recall, SET_truth_ratio, SET_exact_memorization,
 * SET_extraction_strength per set, forget_quality, model_utility; null where
 * undefined), each atomically. With the membership-inference attacks, the
 * summary goes on with mia_holdout (the holdout set's name), mia_ref, mia_k
 * and lethe_lm_mia_report's keys per attack (LOSS, zlib, Min-K%, Min-K%++,
 * the reference attack with mia_ref, gradient norm: AUC 1 when the forget
 * split's answers are told apart from the holdout's, i.e. memorised), and
 * TOFU_EVAL.json with lethe_lm_mia_report's mia_NAME entries (the scores
 * per question of the forget split and of the holdout set). A
 * question-answer pair is scored as lethe_lm_mia_seq describes: its answer
 * tokens after the prompt. *summary (may be NULL) gets the summary's
 * object (cJSON_Delete it). LETHE_ERR_FORMAT (a run without the tokenizer
 * TOFU needs, a processor that does not suit the run), the loaders' and
 * lethe_tofu_eval_set's errors (naming the file), LETHE_ERR_INVALID (mia 1
 * with a split that has no holdout set or with a logits processor), a
 * reference model that does not suit (lethe_lm_mia_ref_check),
 * LETHE_ERR_IO, NOMEM. */
lethe_status lethe_tofu_run(const lethe_tofu_run_cfg *c, cJSON **summary);

/* ---- ECO's strength, tuned on a forget split (lethe guard tune-eco) ----------- */

typedef struct lethe_eco_tune_cfg {
    const char *run;    /* the guarded model */
    const char *guard;  /* its guard file */
    const char *oracle; /* the retain-only model: its forget ROUGE-L is the target */
    const char *data, *split; /* the benchmark and the forget split (forget10) */
    int questions;      /* the first N forget questions (100); as many retain ones */
    int max_new;        /* answer length (64) */
    lethe_eco_cfg eco;  /* the corruption; its sigma is what is tuned */
    lethe_eco_zo_cfg zo; /* the search (its target comes from the oracle) */
} lethe_eco_tune_cfg;

void lethe_eco_tune_defaults(lethe_eco_tune_cfg *c);

/* Tune ECO's sigma on RUN behind GUARD so that the mean ROUGE-L recall of
 * its greedy answers to the first N questions of SPLIT_perturbed.json
 * matches the oracle's on the same questions (lethe_eco_zo_tune). Then, at
 * the best sigma, answer the first N retain questions (retain_perturbed.json)
 * with and without the guard. *summary: the oracle's and the unguarded
 * model's forget ROUGE-L, each step's probes, the best sigma and its
 * ROUGE-L, the retain ROUGE-L with and without ECO and the share of retain
 * answers that changed, the evaluations run and the seconds taken. */
lethe_status lethe_eco_tune_tofu(const lethe_eco_tune_cfg *c, cJSON **summary);

LETHE_API_END
#endif
