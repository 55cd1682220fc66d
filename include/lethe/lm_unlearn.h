/* Unlearning for GPT language models (lethe/gpt.h): the losses of
 * OpenUnlearning (locuslab/open-unlearning) and MUSE behind one interface,
 * and a driver that runs them with AdamW. See docs/lm-unlearning.md for each
 * loss as implemented, its defaults and OpenUnlearning's names.
 *
 * Data. A batch is B question-answer sequences of T tokens, tokens (B, T)
 * and targets (B, T), as TOFU fine-tuning lays them out (lethe/tofu.h,
 * lethe_qa_encode): targets[b, t] is the next token where that token belongs
 * to the answer (the closing end-of-text included) and -1 on the prompt and
 * on padding. Every sequence of a batch must carry at least one target.
 * "Answer tokens" below are the positions with a target. Windows of raw
 * text (lethe_lm_data_windows) have the same layout with every position a
 * target but the padding of the last window: their "answer" is the whole
 * window.
 *
 * Every method's step loss has the form
 *
 *     L = gamma * L_forget + alpha * L_retain
 *
 * with L_retain chosen among NLL (the mean token cross-entropy of the retain
 * batch, Hugging Face's model loss), KL (sum over every position, prompt and
 * padding included, of KL(p_ref || p_theta), divided by B T: OpenUnlearning's
 * kl_div(..., "batchmean", log_target=True) on the flattened logits) and,
 * for RMU, EMBED (the activation MSE to the reference). lethe_lm_loss
 * computes L from its forwards and accumulates (+=) dL/dtheta into g->grads
 * through the engine's backward entry points; it never zeroes them.
 *
 * The reference model is a frozen copy of the model at the start (NPO,
 * IdkDPO, UNDIAL, the KL retain term and RMU's EMBED term read it; GA,
 * GradDiff with NLL, SimNPO, IdkNLL, WGA, SatImp, CE-U, Task Vector and WHP
 * do not, and accept NULL). Its parameters are never changed; its
 * activations are overwritten by its forwards. */
#ifndef LETHE_LM_UNLEARN_H
#define LETHE_LM_UNLEARN_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/lora.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_lm_method {
    LETHE_LM_GA,         /* "ga"         GradAscent */
    LETHE_LM_GRADDIFF,   /* "graddiff"   GradDiff (retain NLL; "ga_klr": KL) */
    LETHE_LM_NPO,        /* "npo"        NPO ("npo_gdr" = NLL retain, "npo_klr" = KL) */
    LETHE_LM_SIMNPO,     /* "simnpo"     SimNPO, no reference */
    LETHE_LM_IDKNLL,     /* "idknll"     NLL of the "I don't know" answer (TOFU's idk) */
    LETHE_LM_IDKDPO,     /* "idkdpo"     DPO with the idk answer preferred */
    LETHE_LM_RMU,        /* "rmu"        representation misdirection */
    LETHE_LM_UNDIAL,     /* "undial"     self-distillation with the gold logit lowered */
    LETHE_LM_WGA,        /* "wga"        weighted gradient ascent */
    LETHE_LM_SATIMP,     /* "satimp"     saturation-importance weighted ascent */
    LETHE_LM_CEU,        /* "ceu"        cross-entropy unlearning */
    LETHE_LM_TASKVECTOR, /* "taskvector" theta - alpha (theta_reinforced - theta) */
    LETHE_LM_WHP,        /* "whp"        Who's Harry Potter logit adjustment */
    LETHE_LM_SFT,        /* "sft"        fine-tuning on the pairs (NLL descent) */
    LETHE_LM_N_METHODS
} lethe_lm_method;

typedef enum lethe_lm_retain {
    LETHE_LM_RETAIN_NONE,  /* "none" */
    LETHE_LM_RETAIN_NLL,   /* "nll" */
    LETHE_LM_RETAIN_KL,    /* "kl" */
    LETHE_LM_RETAIN_EMBED  /* "embed" (RMU only) */
} lethe_lm_retain;

typedef struct lethe_lm_cfg {
    lethe_lm_method method;
    lethe_lm_retain retain;
    double gamma;     /* weight of the forget term */
    double alpha;     /* weight of the retain term; for Task Vector and WHP, their alpha */
    double beta;      /* NPO, IdkDPO: beta; SimNPO: beta; UNDIAL: the logit drop;
                         WGA: the exponent; SatImp: beta1 */
    double beta2;     /* SatImp: beta2 */
    double delta;     /* SimNPO: delta (the margin is beta * delta) */
    int ceu_ignore;   /* CE-U: answer tokens ignored at the start of each sequence */
    int rmu_layer;    /* RMU: the block whose output is steered (0-based); < 0:
                         min(7, n_layer - 1), OpenUnlearning's model.layers.7 */
    int rmu_blocks;   /* RMU: train blocks rmu_layer - rmu_blocks + 1 .. rmu_layer
                         only (others frozen); 0: every parameter */
    int rmu_proj_only;/* RMU: 1: within those blocks train mlp.c_proj.weight only
                         (the WMDP recipe's down_proj); 0: the whole blocks */
    double steering;  /* RMU: c, the norm of the control vector */
} lethe_lm_cfg;

/* OpenUnlearning's defaults (configs/trainer/<handler>.yaml) for method m:
 *   ga          gamma 1, no retain term
 *   graddiff    gamma 1, alpha 1, retain NLL
 *   npo         beta 0.1, gamma 1, alpha 1, retain NLL
 *   simnpo      beta 4.5, delta 0, gamma 0.125, alpha 1, retain NLL
 *   idknll      gamma 1, alpha 1, retain NLL
 *   idkdpo      beta 0.1, gamma 1, alpha 1, retain NLL
 *   rmu         steering 2, gamma 1, alpha 1, retain EMBED, layer -1 (auto),
 *               3 blocks (the layer and the two below), whole blocks
 *   undial      beta 10, gamma 1, alpha 0 (retain NLL, so off)
 *   wga         beta 1, gamma 1, alpha 1, retain NLL
 *   satimp      beta 5 (beta1), beta2 1, gamma 0.1, alpha 1, retain NLL
 *   ceu         ignore 1 token, gamma 1, no retain term
 *   taskvector  alpha 5 (MUSE's scripts), gamma 1 (the reinforcement fine-tune)
 *   whp         alpha 5, gamma 1 (likewise)
 *   sft         gamma 1 (the same fine-tune; alpha 5 recorded, unused) */
void lethe_lm_defaults(lethe_lm_method m, lethe_lm_cfg *cfg);

/* "ga", "graddiff", ... as in the enum; NULL out of range. */
const char *lethe_lm_method_name(lethe_lm_method m);
const char *lethe_lm_retain_name(lethe_lm_retain r);

/* Fill cfg with the defaults of the method called `name`: one of the names
 * above, or MUSE's variants "ga_gdr" (graddiff), "ga_klr" (graddiff with KL
 * retain), "npo_gdr" (npo), "npo_klr" (npo with KL retain).
 * LETHE_ERR_NOT_FOUND listing the names. */
lethe_status lethe_lm_parse(const char *name, lethe_lm_cfg *cfg);
/* "none", "nll", "kl", "embed". LETHE_ERR_INVALID. */
lethe_status lethe_lm_retain_parse(const char *name, lethe_lm_retain *r);

/* ---- the method table ----------------------------------------------------- */

/* A method is one file, src/unlearn/lm_<name>.c, defining its row, and one
 * line in the table of src/unlearn/lm_methods.c. */
typedef struct lethe_lm_step lethe_lm_step; /* a step's inputs (internal) */

enum {
    LETHE_LM_NEEDS_REF = 1u << 0,   /* the forget term reads the reference */
    LETHE_LM_NEEDS_IDK = 1u << 1,   /* reads an alternate (refusal) answer per question */
    LETHE_LM_FORGET_ONLY = 1u << 2, /* trains on the forget pairs alone: no retain term */
    LETHE_LM_NOT_STORED = 1u << 3,  /* acts at generation time: a run refuses it */
    LETHE_LM_OWN_ALPHA = 1u << 4    /* alpha is the method's own, not the retain weight */
};
enum { /* the settings a method reads beyond gamma and alpha, for listings */
    LETHE_LM_READS_BETA = 1u << 0,
    LETHE_LM_READS_DELTA = 1u << 1,
    LETHE_LM_READS_BETA2 = 1u << 2,
    LETHE_LM_READS_IGNORE = 1u << 3,
    LETHE_LM_READS_RMU = 1u << 4
};

typedef struct lethe_lm_method_def {
    const char *name;
    lethe_lm_method id;
    const char *description;
    const char *intent; /* what the method means to do, per the SoK on LLM unlearning:
                           "removal" (erase the knowledge from the weights),
                           "suppression" (keep it, block its expression), or
                           "none" (sft: fine-tuning, not unlearning) */
    unsigned needs;  /* LETHE_LM_NEEDS_REF | ... */
    unsigned reads;  /* LETHE_LM_READS_BETA | ... */
    int epochs;      /* its default number of epochs; 0: the schedule's */
    /* the method's defaults over the shared ones (retain NLL, gamma 1,
       alpha 1, RMU's and CE-U's settings); NULL: none */
    void (*defaults)(lethe_lm_cfg *cfg);
    /* its own checks of cfg against g, beyond lethe_lm_check's; NULL: none */
    lethe_status (*check)(const lethe_lm_cfg *cfg, const lethe_gpt *g);
    /* the forget term: its value (unweighted) into *value, gamma times its
       gradient accumulated into the model's */
    lethe_status (*forget)(const lethe_lm_step *s, double *value);
    /* tr[i] = 1 for each tensor i of g that trains; NULL: every tensor */
    void (*trainable)(const lethe_lm_cfg *cfg, const lethe_gpt *g, unsigned char *tr);
    /* a fixed vector c (n_embd) the forget term reads, drawn from the
       schedule's seed; NULL: none */
    void (*control)(const lethe_lm_cfg *cfg, float *c, int C, uint64_t seed);
    /* non-NULL: the loop trains a copy of the model, then g is made from g
       and the trained copy (Task Vector); no adapter then */
    lethe_status (*finish)(const lethe_lm_cfg *cfg, lethe_gpt *g, const lethe_gpt *trained);
} lethe_lm_method_def;

size_t lethe_lm_methods_count(void);
const lethe_lm_method_def *lethe_lm_methods_at(size_t i); /* NULL out of range */
const lethe_lm_method_def *lethe_lm_method_def_of(lethe_lm_method m); /* NULL out of range */

/* Whether cfg's loss reads a reference model, a retain set (a retain term
 * with a non-zero weight), alternate answers. */
int lethe_lm_needs_reference(const lethe_lm_cfg *cfg);
int lethe_lm_needs_retain(const lethe_lm_cfg *cfg);
int lethe_lm_needs_idk(const lethe_lm_cfg *cfg);

/* The settings cfg's method reads beyond gamma, alpha and the retain kind,
 * as text ("beta 0.1", "steering 2 layer auto 3 blocks", "" for none). */
void lethe_lm_settings_text(const lethe_lm_cfg *cfg, char *buf, size_t cap);

/* LETHE_OK when cfg is usable with model g and the reference given (NULL or
 * not): the retain kind suits the method (EMBED only for RMU), a reference
 * is present when the loss reads one, numbers are finite, beta > 0 where it
 * divides, the RMU layer exists. Otherwise LETHE_ERR_INVALID saying what. */
lethe_status lethe_lm_check(const lethe_lm_cfg *cfg, const lethe_gpt *g, const lethe_gpt *ref);

/* One batch of sequences (not owned). */
typedef struct lethe_lm_batch {
    const int32_t *tokens;  /* (B, T) */
    const int32_t *targets; /* (B, T), -1 where no label */
    int B, T;
} lethe_lm_batch;

typedef struct lethe_lm_terms {
    double loss;    /* gamma * forget + alpha * retain */
    double forget;  /* L_forget (unweighted) */
    double retain;  /* L_retain (unweighted; 0 when there is no retain term) */
} lethe_lm_terms;

/* RMU's control vector c = steering * u / |u|, u ~ U[0, 1)^C drawn from
 * lethe's Philox at (seed, stream 0x524D55) (torch.rand then normalised, as
 * RMU's code), written to c (C). */
void lethe_lm_rmu_control(float *c, int C, double steering, uint64_t seed);

/* The step loss of cfg's method on the forget batch, the retain batch (may
 * be NULL when there is no retain term or alpha is 0) and the idk batch
 * (IdkNLL, IdkDPO: the alternate answers of the same B questions, row b for
 * forget row b; NULL otherwise), with reference ref (NULL where unneeded)
 * and, for RMU, its control vector control (C; NULL otherwise). Fills *out
 * and accumulates dL/dtheta into g->grads. Task Vector and WHP train a
 * reinforced model: their step loss is gamma times the forget batch's mean
 * token NLL (descent). LETHE_ERR_INVALID (a bad configuration, a missing
 * batch or reference, a sequence without targets, CE-U with no token left),
 * LETHE_ERR_NOMEM; the forwards' errors. */
lethe_status lethe_lm_loss(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                           const lethe_lm_batch *forget, const lethe_lm_batch *retain,
                           const lethe_lm_batch *idk, const float *control, lethe_lm_terms *out);

/* UNDIAL's target distribution at one position: q = softmax(ref_logits -
 * beta onehot(y)) in double (y < 0: no adjustment). q (V). */
void lethe_lm_undial_target(double *q, const float *ref_logits, int V, int y, double beta);

/* ---- the driver ------------------------------------------------------- */

/* n sequences of T tokens (not owned). */
typedef struct lethe_lm_set {
    const int32_t *tokens;  /* (n, T) */
    const int32_t *targets; /* (n, T) */
    long n;
    int T;
} lethe_lm_set;

typedef struct lethe_lm_sched {
    int epochs;          /* passes over the forget set */
    int batch;           /* forget sequences per step (each with one retain one) */
    float lr;            /* peak learning rate, > 0 */
    float weight_decay;  /* AdamW's decoupled decay, on 2-D tensors only */
    long warmup;         /* linear warm-up steps; < 0: one epoch (warmup_epochs 1) */
    int constant;        /* 1: constant after the warm-up; 0: linear decay to 0 */
    float beta1, beta2, eps;
    float clip;          /* max global gradient norm; 0: none */
    uint64_t seed;       /* batch order, retain pairing, RMU's control vector */
    lethe_lora *lora;    /* train this adapter of the model only; NULL: the model.
                            Not owned. Not with Task Vector. */
    int quiet;           /* 1: no progress on stderr */
    const char *label;   /* the progress line's label; NULL: the method's name */
} lethe_lm_sched;

/* OpenUnlearning's TOFU unlearning run: epochs 10, batch 32 (8 per device x
 * 4 accumulation), lr 1e-5, weight decay 0.01, warm-up one epoch, linear
 * decay (Hugging Face's default scheduler), betas (0.9, 0.999), eps 1e-8,
 * clip 1.0 (Hugging Face's max_grad_norm), seed 0, no adapter. */
void lethe_lm_sched_defaults(lethe_lm_sched *s);

/* The learning rate of step t (0-based) of a run of `total` steps, as
 * Hugging Face's get_linear_schedule_with_warmup (or _constant_): lr t / W
 * while t < W (so the first step of a warm-up runs at 0), then lr (W - ...)
 * decaying linearly to 0 at `total`, or lr when constant. warmup is the
 * resolved number of steps W. */
float lethe_lm_sched_lr(const lethe_lm_sched *s, long warmup, long total, long t);

/* The warm-up W of a run of `total` steps, `per` per epoch: s->warmup, or
 * one epoch (per) when it is < 0; but 0 when the run is a single step, which
 * a warm-up would run at rate 0, leaving the model unchanged (any longer run
 * has a step at a positive rate: lr / W at step 1, or the decay's). */
long lethe_lm_sched_warmup(const lethe_lm_sched *s, long per, long total);

/* Batches per epoch of a forget set of n: ceil(n / batch). */
long lethe_lm_steps_per_epoch(long n, int batch);

/* The forget indices of epoch e in visiting order: 0..n-1 ordered by
 * lethe_rng_hash(seed, 0x4C4D0000 + e, i) (ties by i), so an item's place
 * does not depend on which other items exist (DESIGN §5). out (n). */
lethe_status lethe_lm_order(long n, uint64_t seed, long epoch, long *out);

/* The retain item paired with forget item i in epoch e: uniform over
 * [0, n_retain), keyed by (seed, 0x52540000 + e, i). OpenUnlearning's
 * ForgetRetainDataset draws a uniformly random retain item per forget item. */
long lethe_lm_retain_pick(long i, long n_retain, uint64_t seed, long epoch);

typedef struct lethe_lm_result {
    long steps;
    double first_loss, last_loss;
} lethe_lm_result;

/* Unlearn the forget set from g in place: epochs x ceil(n / batch) AdamW
 * steps, each on the next batch of forget items (lethe_lm_order), each
 * paired with a retain item (lethe_lm_retain_pick; retain may be NULL when
 * the method has no retain term) and, for IdkNLL / IdkDPO, the idk item of
 * the same index (idk->n must equal forget->n). A step: gradients zeroed,
 * lethe_lm_loss, RMU's freezing (the gradient of every parameter outside
 * the trained blocks zeroed), clipping, decay, AdamW (or, with an adapter,
 * its gradient from the model's, as lethe_gpt_train). ref must be a frozen
 * copy of g's starting point where the method reads one (else NULL allowed).
 *
 *   taskvector  a copy of g is fine-tuned on the forget set (NLL descent,
 *               this schedule; the reinforced model), then
 *               g <- g - alpha (reinforced - g) (lethe_lm_task_vector).
 *   whp         g itself is fine-tuned on the forget set into the reinforced
 *               model; generate with the base model (a copy kept by the
 *               caller) and lethe_lm_whp_hook over the result.
 *
 * One JSON line per step to log (may be NULL):
 *   {"step":S,"epoch":E,"lr":X,"loss":X,"forget":X,"retain":X,"grad_norm":X}
 * the norm before clipping. The same inputs and seed give the same bits.
 * res may be NULL. LETHE_ERR_INVALID (configuration, sets of the wrong
 * shape or size, tokens out of range, an adapter for another model or with
 * Task Vector), LETHE_ERR_FAILED (the loss went non-finite), LETHE_ERR_NOMEM. */
lethe_status lethe_lm_unlearn(lethe_gpt *g, lethe_gpt *ref, const lethe_lm_cfg *cfg,
                              const lethe_lm_set *forget, const lethe_lm_set *retain,
                              const lethe_lm_set *idk, const lethe_lm_sched *sched, FILE *log,
                              lethe_lm_result *res);

/* ---- a run (src/unlearn/lm_run.c) ---------------------------------------- */

/* How a run reads its forget and retain files.
 *   qa    question-answer pairs (TOFU's layout, lethe_tofu_load: JSON Lines
 *         or a JSON array of objects with "question" and "answer"), the
 *         answer tokens the targets (lethe_lm_data_build);
 *   text  raw text (MUSE's layout, lethe_corpus_load: FILE.jsonl, one
 *         document a line, an object with "text" or a JSON string; FILE.txt,
 *         one document), cut into windows of the model's context whose
 *         targets are every next token (lethe_lm_data_windows);
 *   auto  each file by its content: FILE.txt is text; otherwise the first
 *         non-blank line decides: a JSON string, or an object with "text"
 *         and no "question", is text; anything else (an object with
 *         "question", a JSON array, an empty file) is qa. */
typedef enum lethe_lm_format {
    LETHE_LM_FORMAT_AUTO, /* "auto" */
    LETHE_LM_FORMAT_QA,   /* "qa" */
    LETHE_LM_FORMAT_TEXT  /* "text" */
} lethe_lm_format;

/* "auto", "qa", "text"; NULL out of range. */
const char *lethe_lm_format_name(lethe_lm_format f);
/* LETHE_ERR_INVALID naming the formats. */
lethe_status lethe_lm_format_parse(const char *name, lethe_lm_format *f);

/* The format of the file at path: `given` unless it is AUTO, else detected
 * as above (the file is read). LETHE_ERR_IO / LETHE_ERR_NOT_FOUND (the
 * file), LETHE_ERR_FORMAT (AUTO and a file with nothing but whitespace),
 * LETHE_ERR_NOMEM. */
lethe_status lethe_lm_format_detect(const char *path, lethe_lm_format given,
                                    lethe_lm_format *out);

/* LETHE_OK when cfg's method runs on a forget set of format f (QA or TEXT);
 * LETHE_ERR_INVALID, one line saying why, for the methods that read an
 * alternate answer per forget question (idknll, idkdpo) on raw text. */
lethe_status lethe_lm_format_check(const lethe_lm_cfg *cfg, lethe_lm_format f);

/* An unlearning (or fine-tuning) run from a GPT run directory and forget
 * and retain files (question-answer pairs or raw text, lethe_lm_format) to
 * a new lethe GPT run directory. */
typedef struct lethe_lm_run_cfg {
    const char *run;      /* the GPT run to start from (lethe's, or a Hugging Face GPT-2
                             directory); it needs a tokenizer with <|endoftext|> */
    const char *out;      /* the run directory to write */
    int force;            /* 1: write into an existing out, replacing its files */
    const char *name;     /* the name the method was asked by (a variant such as
                             "npo_klr" is recorded when it differs from the method's) */
    lethe_lm_cfg cfg;     /* the method and its settings */
    lethe_lm_sched sched; /* the schedule (its lora is set by the run) */
    const char *forget;   /* the pairs or text to forget (sft: to fine-tune on) */
    const char *retain;   /* the retain pairs or text; read only when the loss has a
                             retain term */
    lethe_lm_format format; /* of the forget and retain files; AUTO (0): each
                               file's detected */
    const char *idk;      /* refusals, one a line (text or a JSON string), for the
                             methods that read alternate answers; NULL otherwise */
    int lora_rank;        /* > 0: train a LoRA adapter of this rank (seeded by the
                             schedule's seed) and store the merged model */
} lethe_lm_run_cfg;

/* rc for the method or variant called `name` (lethe_lm_parse): its
 * defaults, OpenUnlearning's schedule with the method's own number of
 * epochs (sft: 5), the progress labelled with the method's name, no files.
 * LETHE_ERR_NOT_FOUND listing the names. */
lethe_status lethe_lm_run_init(lethe_lm_run_cfg *rc, const char *name);

/* Settings given over a run's defaults (a command line's or a request's):
 * each field at its "not given" value leaves the default as it is. */
typedef struct lethe_lm_overrides {
    long epochs, batch;      /* <= 0: not given */
    long warmup;             /* < 0: not given */
    long seed;               /* < 0: not given */
    double lr, wd, clip;     /* NAN: not given */
    double gamma, alpha, beta; /* NAN: not given */
    const char *retain_loss; /* "nll", "kl" or "embed"; NULL: not given */
    int lora_rank;           /* <= 0: not given */
} lethe_lm_overrides;

/* Every field "not given". */
void lethe_lm_overrides_init(lethe_lm_overrides *o);

/* Apply o to rc (after lethe_lm_run_init): the method's weights, the
 * schedule, the seed, the adapter. LETHE_ERR_INVALID (an unknown retain
 * loss; a retain loss for a method that trains on the forget pairs only; an
 * adapter for a method that combines whole models). */
lethe_status lethe_lm_run_apply(lethe_lm_run_cfg *rc, const lethe_lm_overrides *o);

typedef struct lethe_lm_run_result {
    long n_forget, n_retain;   /* sequences: pairs, or windows of raw text
                                  (n_retain 0 without a retain term) */
    long steps;
    double first_loss, last_loss;
    double nll_before, nll_after; /* mean target-token NLL of the forget set
                                     (the answers, or every token of the text) */
    int reference;             /* 1 when a frozen reference copy was used */
    double seconds;            /* the unlearning loop's wall time */
    lethe_lm_format format;    /* the forget set's (QA or TEXT) */
    long forget_docs;          /* TEXT: the documents the windows were cut from */
} lethe_lm_run_result;

/* res of run rc as one JSON object: run, method, forget, retain, steps,
 * first_loss, last_loss, forget_nll_before, forget_nll_after, seconds (a
 * command's --json summary), and for a raw-text forget set also format
 * ("text") and documents. NULL when out of memory. */
cJSON *lethe_lm_run_result_json(const lethe_lm_run_cfg *rc, const lethe_lm_run_result *res);

/* Load rc->run, read the files, unlearn (lethe_lm_unlearn) and write rc->out:
 * model.safetensors (metadata: the config, method, parent and forget-set
 * hashes, seed), config.json (the method, its settings, the schedule, the
 * source run and every file read with its rows and hash, and for a raw-text
 * file "format": "text" and its "windows" (its rows being documents), the
 * steps, losses and NLLs), log.jsonl (one line per step) and tokenizer.json. Each
 * question of the forget set gets the refusal lethe_lm_idk_pick draws at the
 * schedule's seed. The same configuration gives byte-identical files. out
 * is created once the inputs are read, and follows the rule of lethe/rundir.h: an existing, non-empty out is refused
 * unless force, out may not be, contain or lie inside an input (the source
 * run and the LoRA bases it loads through, the pair and refusal files), and
 * a run that fails or is interrupted by SIGINT/SIGTERM leaves no directory
 * it created. LETHE_ERR_UNSUPPORTED (a method not stored as a model: WHP),
 * LETHE_ERR_INVALID (a file the method needs is missing or one it does not
 * read is given, a bad setting, raw text for idknll or idkdpo
 * (lethe_lm_format_check), an output refused), LETHE_ERR_IO /
 * LETHE_ERR_FORMAT / LETHE_ERR_NOT_FOUND (the files, raw text under a name
 * other than FILE.jsonl or FILE.txt), LETHE_ERR_FAILED, LETHE_ERR_NOMEM. res
 * may be NULL. */
lethe_status lethe_lm_run(const lethe_lm_run_cfg *rc, lethe_lm_run_result *res);

/* ---- Task Vector and WHP ---------------------------------------------- */

/* g <- g - alpha (reinforced - g), element by element (in float:
 * p - alpha (r - p)). LETHE_ERR_INVALID when the configurations differ. */
lethe_status lethe_lm_task_vector(lethe_gpt *g, const lethe_gpt *reinforced, double alpha);

/* WHP's logits for N rows of V: out = base - alpha relu(reinforced - base).
 * out may be base. */
void lethe_lm_whp_logits(float *out, const float *base, const float *reinforced, long N, int V,
                         double alpha);

/* A generation logits hook (lethe/gpt_generate.h) applying WHP: the model
 * generating is the base; the hook runs the reinforced model over the same
 * sequence with its own key/value cache (fed incrementally while the
 * sequence only grows, refed from scratch when it changes, as between
 * beams) and rewrites the logits with lethe_lm_whp_logits. */
typedef struct lethe_lm_whp lethe_lm_whp;

/* A hook context for the reinforced model (not owned; must outlive it) and
 * alpha. NULL (detail set) when out of memory. Free with lethe_lm_whp_free. */
lethe_lm_whp *lethe_lm_whp_new(const lethe_gpt *reinforced, double alpha);
void lethe_lm_whp_free(lethe_lm_whp *w); /* NULL is a no-op */
/* The hook; ctx is a lethe_lm_whp. If the reinforced forward fails (out of
 * memory), the logits are left as they are and lethe_lm_whp_status reports
 * the failure. */
void lethe_lm_whp_hook(void *ctx, float *logits, int V, const int32_t *seq, int len, int beam);
lethe_status lethe_lm_whp_status(const lethe_lm_whp *w);
/* The same adjustment for a teacher-forced forward (lethe_gpt_rows_hook; ctx
 * is a lethe_lm_whp): the reinforced model runs over the same (B, T) tokens
 * and every row becomes lethe_lm_whp_logits of the two. LETHE_ERR_INVALID
 * when the vocabularies differ; LETHE_ERR_NOMEM. */
lethe_status lethe_lm_whp_rows(void *ctx, float *logits, int V, const int32_t *tokens, int B,
                               int T);
/* w as a logits processor: lethe_lm_whp_rows in scoring, lethe_lm_whp_hook in
 * generation, lethe_lm_whp_status after each generation; its check refuses a
 * model of another architecture than the reinforced one (LETHE_ERR_FORMAT). */
lethe_gpt_logits_proc lethe_lm_whp_proc(lethe_lm_whp *w);

/* WHP's adjustment read from a reinforced run on disk, ready for an
 * evaluation's logits processor: the run loaded, its hook, the processor
 * (proc) and the note an evaluation records ({"whp": dir, "whp_alpha":
 * alpha}). */
typedef struct lethe_lm_whp_run {
    lethe_gpt_dir dir;
    lethe_lm_whp *w;
    lethe_gpt_logits_proc proc;
    cJSON *note;
} lethe_lm_whp_run;

/* Load dir (lethe_gpt_dir_load, no tokenizer needed) into *r. On failure *r
 * is empty. lethe_gpt_dir_load's errors, LETHE_ERR_NOMEM. */
lethe_status lethe_lm_whp_open(const char *dir, double alpha, lethe_lm_whp_run *r);
void lethe_lm_whp_close(lethe_lm_whp_run *r); /* an empty *r is a no-op */

/* A copy of g's configuration and parameters (gradients zero). NULL (detail
 * set) when out of memory; free with lethe_gpt_free. */
lethe_gpt *lethe_lm_clone(const lethe_gpt *g);

/* ---- sets from question-answer pairs or raw text (src/unlearn/lm_data.c) */

/* A set built from question-answer pairs, owning its arrays; set views
 * them. */
typedef struct lethe_lm_data {
    lethe_lm_set set;
    int32_t *tokens;  /* (n, T) owned */
    int32_t *targets; /* (n, T) owned */
} lethe_lm_data;

/* Encode answers[i] after questions[i] (i < n) with lethe_qa_encode
 * ("Question: Q\nAnswer:" then " A" then eot; eot >= 0) as TOFU fine-tuning
 * lays them out: sequence i holds the pair's tokens but the last as inputs,
 * its targets the next token where that token belongs to the answer (the
 * closing eot included) and -1 on the prompt; every sequence is padded to
 * the longest (T) with eot as input and -1 as target. `name` labels
 * messages (a file name). LETHE_ERR_INVALID (n == 0, eot < 0, a pair whose
 * inputs exceed n_positions, naming the row (1-based) and both lengths, or
 * with no answer token), LETHE_ERR_UNSUPPORTED (as lethe_qa_encode),
 * LETHE_ERR_NOMEM. On failure *out is empty. Free with lethe_lm_data_free. */
lethe_status lethe_lm_data_build(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                 const char *const *questions, const char *const *answers,
                                 size_t n, const char *name, lethe_lm_data *out);
void lethe_lm_data_free(lethe_lm_data *d); /* frees and empties; NULL is a no-op */

/* A set of windows over raw text (MUSE's and OpenUnlearning's pre-training
 * chunks): the n documents texts[i] (lens[i] bytes) are encoded and
 * concatenated, each followed by eot (lethe_gpt_encode_docs, the stream
 * lethe's GPT training reads), so a window may run across a document's end;
 * the stream s of m tokens is cut into consecutive windows of
 * T = min(n_positions, m - 1) inputs: window k holds s[kT .. kT + T) as
 * inputs and s[kT + 1 .. kT + T] as targets, every next token a target, so
 * each token but the first is a target exactly once; the last window is
 * padded with eot as input and -1 as target. ceil((m - 1) / T) windows.
 * `name` labels messages. LETHE_ERR_INVALID (n == 0, eot < 0,
 * n_positions < 1, a document the tokenizer cannot encode, no text: m < 2),
 * LETHE_ERR_NOMEM. On failure *out is empty. Free with lethe_lm_data_free. */
lethe_status lethe_lm_data_windows(const lethe_tokenizer_t *tok, int32_t eot, int n_positions,
                                   const char *const *texts, const size_t *lens, size_t n,
                                   const char *name, lethe_lm_data *out);

/* The refusal paired with question i when there are n_idk refusals:
 * uniform over [0, n_idk), keyed by (seed, stream 0x49444B00, i), so each
 * question's pick does not depend on the other questions (OpenUnlearning's
 * IDK datasets draw one at random per item). */
long lethe_lm_idk_pick(long i, long n_idk, uint64_t seed);

LETHE_API_END
#endif
