/* A TOFU-style benchmark of fictitious authors, and a loader for TOFU files.
 *
 * lethe_authors_write builds the benchmark deterministically from a seed
 * (DESIGN §5) and writes it in TOFU's layout (JSON Lines despite the ".json"
 * suffix, TOFU's field names): full, forget01/05/10 (+ _perturbed),
 * retain99/95/90, retain_perturbed, holdout01/05/10, real_authors_perturbed,
 * world_facts_perturbed, idontknow.jsonl and manifest.json. See docs/tofu.md.
 *
 * Author ids: full authors are 0 .. n_authors - 1; holdout author k has id
 * LETHE_AUTHORS_MAX + k. Everything about an author (name, facts, question
 * wording, perturbed answers) is a function of (seed, id) alone, so author i
 * is the same whatever n_authors is, and names never repeat across ids.
 *
 * lethe_tofu_load reads any file in that layout: the generated ones and the
 * real TOFU files (locuslab/TOFU on the Hugging Face hub, or the repository's
 * real_authors_perturbed.json and world_facts_perturbed.json). */
#ifndef LETHE_AUTHORS_H
#define LETHE_AUTHORS_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_AUTHORS_MIN 10       /* fewest authors (forget01 then has 1) */
#define LETHE_AUTHORS_MAX 10000    /* most authors */
#define LETHE_AUTHORS_QA_MAX 200   /* most QA pairs per author */
#define LETHE_AUTHORS_PERTURBED 5  /* perturbed answers per forget/retain row */
#define LETHE_AUTHORS_RETAIN_EVAL 20 /* authors in retain_perturbed (at most) */

/* One question-answer row. Optional fields are NULL (perturbed: n_perturbed
 * 0) when the file lacks them. key and perturbed_keys are set only by the
 * generator: the fact the answer states (a substring of answer and of
 * paraphrased_answer) and the wrong fact in each perturbed answer. */
typedef struct lethe_tofu_row {
    char *question;
    char *answer;
    char *paraphrased_answer;   /* or NULL */
    char *paraphrased_question; /* or NULL */
    char **perturbed;           /* n_perturbed answers, or NULL */
    size_t n_perturbed;
    char *key;                  /* generator only, else NULL */
    char **perturbed_keys;      /* generator only: n_perturbed, else NULL */
} lethe_tofu_row;

typedef struct lethe_tofu {
    lethe_tofu_row *rows;
    size_t n;
} lethe_tofu;

/* Frees every row and zeroes *t; NULL or a zeroed table is a no-op. */
void lethe_tofu_free(lethe_tofu *t);

/* Read a TOFU-layout file: JSON Lines (one object per line; TOFU's own
 * files) or one JSON array of objects. Each object needs string members
 * "question" and "answer"; "paraphrased_answer" and "paraphrased_question"
 * (strings) and "perturbed_answer" (an array of strings, or one string) are
 * optional; other members are ignored. gzip is inflated. Errors name the
 * file and line. The caller frees *out with lethe_tofu_free. */
lethe_status lethe_tofu_load(const char *path, lethe_tofu *out);

/* ---- the generator ---------------------------------------------------- */

typedef struct lethe_authors_opts {
    long n_authors;       /* LETHE_AUTHORS_MIN .. LETHE_AUTHORS_MAX (TOFU: 200) */
    int n_qa;             /* 1 .. LETHE_AUTHORS_QA_MAX per author (TOFU: 20) */
    uint64_t seed;        /* 0 .. 2^53 (kept exact in manifest.json) */
    const char *idk_path; /* file to copy as idontknow.jsonl; NULL: built-in list */
    int force;            /* write into a non-empty directory */
    int quiet;            /* no progress lines on stderr */
} lethe_authors_opts;

/* TOFU's size: 200 authors of 20 questions each; seed 0, the built-in
 * refusals, no force, progress shown. */
void lethe_authors_defaults(lethe_authors_opts *opts);

/* LETHE_ERR_INVALID saying which setting is out of range. */
lethe_status lethe_authors_check(const lethe_authors_opts *opts);

/* Authors in forgetPP / holdoutPP for percent PP of n_authors:
 * ceil(PP * n / 100), so 2/10/20 of 200 and at least 1. */
long lethe_authors_split_size(long n_authors, int percent);

/* Authors in retain_perturbed: the first min(20, n - forget10) authors. */
long lethe_authors_retain_eval(long n_authors);

/* The full name of author `id` (see the ids above) into buf. */
void lethe_authors_name(uint64_t seed, uint64_t id, char *buf, size_t cap);

/* The first n_qa rows of author `id`, with every optional field and the
 * keys set (5 perturbed answers). Rows 0..k-1 are the same for any
 * n_qa >= k. The caller frees *out with lethe_tofu_free. */
lethe_status lethe_authors_qa(uint64_t seed, uint64_t id, int n_qa, lethe_tofu *out);

/* The general-knowledge stand-ins, question/answer/3 perturbed answers:
 * which = 0 real_authors (questions on Moby-Dick), 1 world_facts (US states
 * and State of the Union presidents). Caller frees. */
lethe_status lethe_authors_general(uint64_t seed, int which, lethe_tofu *out);

/* Write the benchmark into dir, a run directory (lethe/rundir.h): created if
 * missing, a non-empty dir refused with LETHE_ERR_INVALID unless
 * opts->force, and on failure what was created is removed. Every file is
 * written atomically; manifest.json last, with the seed, the counts and each
 * file's rows, authors, bytes and sha256. */
lethe_status lethe_authors_write(const char *dir, const lethe_authors_opts *opts);

LETHE_API_END
#endif
