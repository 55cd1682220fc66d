/* Fitting a guard from forget and retain question-answer pairs
 * (research/inference_time.md §10.1-10.2): the targets, their forget
 * answers and forbidden n-grams, and the prompt classifier, into one guard
 * (lethe/guard_file.h). `lethe guard fit` is this call over TOFU's files.
 *
 * Words and n-grams. Text is normalised as the target index does
 * (lethe_guard_normalize) and split at its spaces into words; a word n-gram
 * is n consecutive words (n <= max_n). The retain set R is every n-gram of
 * every retain question and answer. An n-gram is DISTINCTIVE when it is not
 * in R and at least one of its words is not a stopword
 * (lethe_guard_stopword; numbers count as content).
 *
 * Targets. Given by the caller (names and aliases), or derived: a candidate
 * is 2 to 4 consecutive capitalised words of a forget question (words whose
 * first byte is an ASCII capital or >= 0x80, joined by one space or one
 * hyphen), written as it first appears. A candidate becomes a target when it
 * occurs in at least max(2, ceil(m / 4)) forget questions, m the count of
 * the most frequent candidate (a name recurs in its entity's questions; an
 * award named in two of them does not), is not in R, and holds no shorter
 * accepted candidate ("Did Emil Zajac" holds "Emil Zajac"); candidates are
 * taken shortest first, then by first appearance. Each word of a derived
 * name that is distinctive on its own and at least 3 bytes long becomes an
 * alias ("Zajac"), so a question naming only the surname is still matched.
 *
 * Forget answers. Each forget pair goes to the target the automaton finds
 * first in its question, else in its answer; a pair naming none is left
 * out and counted. The answer is added to that target (retrieval), and its
 * minimal distinctive n-grams become the target's forbidden n-grams: a
 * distinctive n-gram neither of whose (n-1)-word parts is distinctive, as
 * the text spells it (its bytes from its first word to its last, so case and
 * punctuation are kept for the token trie). Distinctiveness only grows with
 * length, so these are exactly the shortest pieces of the answer that the
 * retain text never says: "Havana, Cuba on 8 July 1963" gives "8 July 1963"
 * when the retain text has other dates in July 1963 but not that one.
 *
 * Classifier (lethe/guard_classifier.h). Positives: the forget prompts.
 * Negatives: the retain prompts, each sent by a keyed hash of (seed, its
 * index) to the fit (share 1 - calib_share) or to calibration; the fit uses
 * the fit negatives, then tau is set by split conformal calibration at rate
 * alpha on the calibration negatives. Features: the model's mean-pooled
 * hidden state (MODEL, the default) or hashed n-grams (HASH, for endpoints
 * that expose no hidden states).
 *
 * Every step is deterministic: the same inputs give the same guard file. */
#ifndef LETHE_GUARD_FIT_H
#define LETHE_GUARD_FIT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lethe/gpt.h"
#include "lethe/guard_classifier.h"
#include "lethe/guard_file.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_GUARD_NGRAM_MAX 5 /* longest forbidden n-gram, in words */

/* The model hash a guard records: "sha256:" and the hex SHA-256 of the
 * config (vocab size, context, width, layers, heads as little-endian int32)
 * followed by the parameters as little-endian float32. Equal weights give
 * equal hashes however they were stored (a LoRA run hashes its merged
 * weights). out needs 72 bytes. */
void lethe_guard_hash_gpt(const lethe_gpt *g, char out[72]);

/* A target the caller names. */
typedef struct lethe_guard_target_spec {
    const char *name;
    const char *const *aliases;
    size_t n_aliases;
} lethe_guard_target_spec;

/* The pairs to fit on. prompt is the text the served model sees for a
 * question (e.g. TOFU's "Question: Q\nAnswer:"), NULL for the question
 * itself. */
typedef struct lethe_guard_fit_data {
    const char *const *forget_q, *const *forget_a, *const *forget_prompt;
    size_t n_forget;
    const char *const *retain_q, *const *retain_a, *const *retain_prompt;
    size_t n_retain;
    const lethe_guard_target_spec *targets; /* NULL: derived from the questions */
    size_t n_targets;
    /* with targets: forget pair i belongs to targets[forget_owner[i]]
     * (SIZE_MAX: to none, left out) instead of the target its text names.
     * The targets' names are then labels (MUSE's forget documents, say):
     * they are not forbidden n-grams and their words keep no n-gram out.
     * NULL: by name */
    const size_t *forget_owner;
    /* more retain text (say, the retain questions held out of the classifier
     * to measure its false positives): in R, nowhere else; may be NULL */
    const char *const *more_retain;
    size_t n_more_retain;
} lethe_guard_fit_data;

typedef struct lethe_guard_fit_cfg {
    int max_n;             /* forbidden n-grams of at most max_n words, 1..5 (5) */
    double alpha;          /* the classifier's false-positive rate, in (0, 1) (0.01) */
    double calib_share;    /* retain prompts held out to calibrate, in (0, 1) (0.5) */
    int hash_features;     /* 1: HASH features (dim 2^14); 0: MODEL (default) */
    int layer;             /* MODEL: hidden state (-1: the penultimate) */
    double C;              /* the classifier's C (1) */
    uint64_t seed;         /* the fit / calibration split (0) */
    const char *model_name; /* recorded in the guard (NULL: "") */
} lethe_guard_fit_cfg;

void lethe_guard_fit_defaults(lethe_guard_fit_cfg *cfg);

typedef struct lethe_guard_fit_summary {
    size_t targets;          /* targets in the guard */
    int derived;             /* 1: derived from the questions */
    size_t answers;          /* forget answers assigned to a target */
    size_t unassigned;       /* forget pairs naming no target (left out) */
    size_t ngrams;           /* forbidden n-grams, all targets */
    size_t retain_ngrams;    /* distinct n-grams of the retain text */
    size_t fit_neg, calib_neg; /* retain prompts in the fit and in calibration */
    lethe_guard_fit_report clf; /* the L-BFGS fit */
    double tau;              /* the calibrated threshold */
    double tpr_forget;       /* forget prompts flagged (training positives) */
    double fpr_fit;          /* fit negatives flagged */
    double fpr_calib;        /* calibration negatives flagged (<= alpha by construction) */
} lethe_guard_fit_summary;

/* Fit a guard for model g (its hash, lethe_guard_hash_gpt, is recorded;
 * g and tok are needed for MODEL features, and g always, for the hash) on d
 * with cfg (NULL: defaults). On success *out is new (lethe_guard_free) and
 * *sum (may be NULL) says what it holds. LETHE_ERR_INVALID (detail set) for
 * no forget or retain pairs, a bad setting, no target found or given, a
 * target name or alias the index refuses, or too few calibration prompts for
 * alpha (the detail says how many are needed); LETHE_ERR_NOMEM. */
lethe_status lethe_guard_fit(const lethe_gpt *g, const lethe_tokenizer_t *tok,
                             const lethe_guard_fit_data *d, const lethe_guard_fit_cfg *cfg,
                             lethe_guard_t **out, lethe_guard_fit_summary *sum);

/* ---- over files: `lethe guard fit` ------------------------------------------ */

/* TOFU's layout (docs/tofu.md): forget pairs from DATA/SPLIT.json (SPLIT
 * is forgetXX), retain pairs from DATA/retainYY.json (YY = 100 - XX) less
 * every question of DATA/retain_perturbed.json (the retain evaluation set,
 * so false refusals are measured on prompts the classifier never saw);
 * prompts in TOFU's layout, "Question: " Q "\nAnswer:". The retain n-grams
 * R come from every retain pair, the evaluation set's included (the guard's
 * maker holds the whole retain split), unless eval_out_of_ngrams. */
typedef struct lethe_guard_fit_files_cfg {
    const char *run;     /* the served model: a lethe run or Hugging Face GPT-2 dir */
    const char *data;    /* the benchmark directory */
    const char *split;   /* forget01, forget05, forget10, ... (default forget10) */
    const char *targets; /* a JSON array of names, or of {"name", "aliases"}; NULL: derived */
    const char *out;     /* the guard file to write */
    int force;           /* replace an existing regular file */
    int eval_out_of_ngrams; /* 1: R leaves the retain evaluation set out too */
    lethe_guard_fit_cfg fit;
} lethe_guard_fit_files_cfg;

void lethe_guard_fit_files_defaults(lethe_guard_fit_files_cfg *c);

/* Load, fit and write the guard atomically (a path that exists must be a
 * regular file, replaced only with force, and neither the run nor the
 * data). *summary (the caller frees with cJSON_Delete) holds the
 * lethe_guard_fit_summary's numbers, the files read and the guard's path
 * and model hash. LETHE_ERR_IO, FORMAT (a file that does not parse, a run
 * without a tokenizer), INVALID (as lethe_guard_fit; an output refused),
 * NOMEM. */
lethe_status lethe_guard_fit_files(const lethe_guard_fit_files_cfg *c, cJSON **summary);

/* ---- editing a guard file: `lethe guard add|remove|list` ----------------------- */

/* One change to a guard file, made under the lock of the file's directory
 * (lethe/runlock.h) and written atomically, so two editors never lose
 * each other's change and a reader sees the old file or the new one. */
typedef struct lethe_guard_edit {
    enum { LETHE_GUARD_EDIT_ADD = 1, LETHE_GUARD_EDIT_REMOVE = 2 } op;
    const char *name;                 /* the target (ADD: new; REMOVE: by name) */
    uint32_t id;                      /* REMOVE when name is NULL: by id */
    const char *const *aliases;       /* ADD: aliases, answers and n-grams */
    size_t n_aliases;
    const char *const *answers;
    size_t n_answers;
    const char *const *ngrams;
    size_t n_ngrams;
} lethe_guard_edit;

/* Apply e to the guard file at path; *id_out (may be NULL) gets the id
 * added or removed. LETHE_ERR_NOT_FOUND (no such target), INVALID (a name
 * taken, an alias or n-gram the index refuses), the loader's errors. */
lethe_status lethe_guard_file_edit(const char *path, const lethe_guard_edit *e, uint32_t *id_out);

/* The guard file at path as JSON: model hash and name, classifier summary
 * (kind, dimension, tau, alpha, calibration prompts) and each target (id,
 * name, aliases, counts of answers and n-grams; with `full`, the answers
 * and n-grams themselves). */
lethe_status lethe_guard_file_describe(const char *path, int full, cJSON **out);

LETHE_API_END
#endif
