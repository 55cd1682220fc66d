/* Membership inference on GPT language models: the attacks of
 * OpenUnlearning's src/evals/metrics/mia/ (LOSS, zlib, Min-K%, Min-K%++,
 * reference model, gradient norm), their ROC AUC and TPR at low FPR between
 * members and non-members, and exact memorisation and extraction strength
 * per text (docs/mia.md).
 *
 * A text is laid out as OpenUnlearning lays out pretraining text: its tokens
 * after one token that is never scored, here the end-of-text token when the
 * tokenizer has one (GPT-2's BOS; then every token of the text is scored),
 * otherwise the text's own first token. With l_1 .. l_n the log-probabilities
 * of the n scored tokens under teacher forcing (n >= 2):
 *
 *   loss        NLL = -(1/n) sum_t l_t
 *   zlib        NLL / (bytes of zlib.compress(text), default level)
 *   min_k       -mean of the floor(k (n - 1)) (at least 1) smallest l_t among
 *               l_1 .. l_{n-1} (OpenUnlearning leaves the last token out)
 *   min_k++     the same over z_t = (l_t - mu_t) / sigma_t, mu_t and sigma_t^2
 *               the mean and variance of log p under the position's
 *               next-token distribution (sigma_t^2 clamped at >= 1e-6)
 *   reference   NLL(model) - NLL(reference model)
 *   gradnorm    the mean over the model's parameter tensors (tied head
 *               counted once) of the L2 norm of the gradient of
 *               -(1/(n-1)) sum_{t < n} l_t; OpenUnlearning returns its
 *               negation, lethe keeps the sign of the others
 *
 * Every score is signed like a loss: higher means "less likely a member".
 * The ROC puts members as positives ranked by -score, so AUC -> 1 when the
 * members are told apart (OpenUnlearning's roc_auc_score(labels, scores)
 * with holdout = 1 gives the same AUC). */
#ifndef LETHE_LM_MIA_H
#define LETHE_LM_MIA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt.h"
#include "lethe/gpt_hf.h"
#include "lethe/stats.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

enum lethe_lm_mia_attack {
    LETHE_MIA_LOSS = 0,
    LETHE_MIA_ZLIB,
    LETHE_MIA_MIN_K,
    LETHE_MIA_MIN_K_PP,
    LETHE_MIA_REFERENCE,
    LETHE_MIA_GRADNORM,
    LETHE_MIA_N_ATTACKS
};

/* "loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"
 * (OpenUnlearning's metric names without "mia_"). */
const char *lethe_lm_mia_name(int attack);

/* The scores of one text. */
typedef struct lethe_lm_mia_score {
    double score[LETHE_MIA_N_ATTACKS]; /* NaN for an attack not computed */
    double em, es; /* exact memorisation and extraction strength over the n
                      scored tokens (lethe_tofu_memo's paper convention) */
    int n;         /* scored tokens */
} lethe_lm_mia_score;

/* A text's tokens: the end-of-text token eot first when eot >= 0, then the
 * text's. *ids (free with free()) holds *len ids. LETHE_ERR_INVALID when the
 * forward (*len - 1 positions) would not fit n_positions, or when fewer than
 * 2 tokens would be scored; LETHE_ERR_UNSUPPORTED (a byte the tokenizer
 * lacks), LETHE_ERR_NOMEM. Messages do not name the text. */
lethe_status lethe_lm_mia_encode(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                 const char *text, int32_t **ids, int *len);

/* LOSS, zlib, Min-K% and Min-K%++ with fraction k (0 < k <= 1), and the
 * reference attack when ref is not NULL (a model of g's vocabulary; the
 * caller checks it shares the tokenizer), of texts[0..n) on g, `batch` texts
 * per forward; the gradient-norm score is left NaN. g and ref are read-only
 * (the activations belong to the call), so threads may share them.
 * LETHE_ERR_INVALID as lethe_lm_mia_encode, naming the text ("text 3: ..."). */
lethe_status lethe_lm_mia_scores(const lethe_gpt *g, const lethe_gpt *ref,
                                 const lethe_tokenizer_t *tok, int32_t eot,
                                 const char *const *texts, size_t n, double k, int batch,
                                 lethe_lm_mia_score *out);

/* The gradient-norm score of texts[0..n) into out[i].score[LETHE_MIA_GRADNORM],
 * one text per backward. Uses g's own activations and overwrites its
 * gradients (left zero at the end), so g serves one call at a time. Errors as
 * lethe_lm_mia_scores. */
lethe_status lethe_lm_mia_gradnorm(lethe_gpt *g, const lethe_tokenizer_t *tok, int32_t eot,
                                   const char *const *texts, size_t n, lethe_lm_mia_score *out);

/* A pre-encoded sequence: ids[0..len), of which ids[start..len) are scored
 * (1 <= start; at least 2 scored tokens; len - 1 positions within the
 * context); text is what the zlib attack compresses. A text of
 * lethe_lm_mia_encode is {ids, len, 1, text}; a question-answer pair of
 * lethe_qa_encode is {ids, n, n_prompt, " " answer}: its answer tokens, the
 * closing end-of-text token the last (left out by Min-K%, Min-K%++ and the
 * gradient norm, as the last token of a text is), scored after the prompt. */
typedef struct lethe_lm_mia_seq {
    const int32_t *ids;
    int len, start;
    const char *text;
} lethe_lm_mia_seq;

/* lethe_lm_mia_scores and lethe_lm_mia_gradnorm on pre-encoded sequences:
 * the same attacks over each sequence's scored tokens (exact memorisation
 * and extraction strength over them too). LETHE_ERR_INVALID naming the
 * sequence ("sequence 3: ...") when one does not fit or has fewer than 2
 * scored tokens; as those otherwise. */
lethe_status lethe_lm_mia_seq_scores(const lethe_gpt *g, const lethe_gpt *ref,
                                     const lethe_lm_mia_seq *seqs, size_t n, double k,
                                     int batch, lethe_lm_mia_score *out);
lethe_status lethe_lm_mia_seq_gradnorm(lethe_gpt *g, const lethe_lm_mia_seq *seqs, size_t n,
                                       lethe_lm_mia_score *out);

/* ROC AUC and TPR at 1% and 5% FPR of one attack's scores: members against
 * non-members, members the positives ranked by -score (lethe_stats_roc).
 * Errors as lethe_stats_roc (an empty side, a score that is not finite). */
lethe_status lethe_lm_mia_roc(const double *members, size_t n_members,
                              const double *nonmembers, size_t n_nonmembers,
                              lethe_roc_result *out);

/* One attack's result: adds to eval "mia_NAME": {"agg_value": AUC, "auc":
 * AUC, "tpr_at_1fpr", "tpr_at_5fpr", "forget": {"agg_value": the mean
 * score, "value_by_index": {"I": {"score": S}}}, "holdout": {...}} (members
 * under forget) and to sum mia_NAME (the AUC), mia_NAME_tpr_at_1fpr,
 * mia_NAME_tpr_at_5fpr. Errors as lethe_lm_mia_roc, naming the attack. */
lethe_status lethe_lm_mia_report(const lethe_lm_mia_score *members, size_t n_members,
                                 const lethe_lm_mia_score *nonmembers, size_t n_nonmembers,
                                 int attack, cJSON *eval, cJSON *sum);

/* A reference model r (loaded from ref) suits the model m (from run): the
 * same vocabulary, tokenizer and end-of-text token. LETHE_ERR_FORMAT naming
 * ref, LETHE_ERR_NOMEM. */
lethe_status lethe_lm_mia_ref_check(const lethe_gpt_dir *m, const char *run,
                                    const lethe_gpt_dir *r, const char *ref);

/* text cut to the bytes of its first tokens, as many as lethe_lm_mia_encode
 * takes under n_positions (fewer while the cut text re-encodes to more);
 * *out (free()) is a copy of text when it fits, *cut 1 when it was cut.
 * The tokenizer's errors, LETHE_ERR_NOMEM. */
lethe_status lethe_lm_mia_fit(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                              const char *text, char **out, int *cut);

/* Read texts from a file: a name ending ".jsonl" holds JSON Lines (each line
 * an object with a string "text", or a JSON string); ".json" a JSON array of
 * such items (MUSE's privleak files; item numbers stand for lines); any
 * other file one text per line. Blank lines and texts are skipped. *texts (one allocation: free(*texts))
 * holds *n texts and *lines (free with free()) their line numbers.
 * LETHE_ERR_IO, LETHE_ERR_FORMAT ("FILE:LINE: ..."; "FILE: no texts"). */
lethe_status lethe_lm_mia_texts_read(const char *path, char ***texts, size_t **lines,
                                     size_t *n);

/* ---- an evaluation run (src/eval/lm_mia.c) ------------------------------ */

typedef struct lethe_lm_mia_run_cfg {
    const char *run;        /* the GPT run (lethe's or a Hugging Face GPT-2 directory),
                               with its tokenizer */
    const char *members;    /* texts the model was trained on (a forget set) */
    const char *nonmembers; /* texts it was not (a holdout set) */
    const char *ref;        /* a reference model with the same tokenizer; NULL: no
                               reference attack */
    const char *out;        /* where the files go (created if needed); NULL: run */
    double k;               /* Min-K% and Min-K%++'s fraction (0.4) */
    int batch;              /* texts per forward (8) */
    int no_gradnorm;        /* 1: skip the gradient-norm attack (0) */
    int fit;                /* 1: cut a text longer than the context to the tokens it
                               holds (lethe_lm_mia_fit), as eval muse does; 0: refuse it */
} lethe_lm_mia_run_cfg;

void lethe_lm_mia_run_defaults(lethe_lm_mia_run_cfg *c);

/* Every attack of c->run on the members and non-members files; writes
 * OUT/MIA_EVAL.json (per attack: agg_value and auc (the AUC), tpr_at_1fpr,
 * tpr_at_5fpr, and under "forget" (members) and "holdout" (non-members)
 * agg_value (the mean score) and value_by_index {"I": {"score": S}}; the same
 * per-text layout for exact_memorization and extraction_strength) and
 * OUT/MIA_SUMMARY.json (the settings, then mia_NAME (the AUC),
 * mia_NAME_tpr_at_1fpr, mia_NAME_tpr_at_5fpr per attack, and the members'
 * mean exact_memorization and extraction_strength; fit and texts_cut, the
 * texts cut to the context), each atomically. Every
 * input is checked before anything is written: nothing is left behind on
 * failure. *summary (may be NULL) gets the summary's object (cJSON_Delete
 * it). LETHE_ERR_FORMAT (a run without a tokenizer, a reference with another
 * tokenizer or vocabulary), LETHE_ERR_INVALID (a text too long or too short,
 * naming file and line), the loaders' errors, LETHE_ERR_IO, NOMEM. */
lethe_status lethe_lm_mia_run(const lethe_lm_mia_run_cfg *c, cJSON **summary);

LETHE_API_END
#endif
