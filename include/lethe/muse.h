/* MUSE-style corpora (Machine Unlearning Six-way Evaluation, Shi et al.
 * 2024) built from real text lethe installs: the State of the Union
 * addresses (news, corpus sotu) and Moby-Dick (books, corpus moby).
 *
 * lethe_muse_write splits the corpus's documents deterministically by a
 * keyed hash of (seed, document id) and writes, under DIR (see docs/muse.md,
 * "The corpora"):
 *
 *   raw/forget.jsonl, raw/retain1.jsonl, raw/retain2.jsonl, raw/holdout.jsonl
 *       one document a line, {"id": corpus id, "text": ...}, ascending id;
 *       lethe_corpus_load reads them, so `lethe train --data
 *       DIR/raw/forget.jsonl,DIR/raw/retain1.jsonl` trains a target
 *   verbmem/forget.json      [{"prompt", "gt"}]: the first PROMPT_WORDS words
 *                            of a forget passage, then its next GT_WORDS words
 *   knowmem/forget_qa.json, retain_qa.json (QA each), forget_qa_icl.json,
 *       retain_qa_icl.json (ICL each): [{"question", "answer"}], cloze
 *       questions from sentences of forget / retain1 (rule below)
 *   privleak/forget.json, retain.json, holdout.json
 *                            [text]: passages of forget / retain1 / holdout
 *   scal/forget_1..4.jsonl   news only: nested, fold k holds k * n_forget docs
 *   sust/forget_1..4.jsonl   news only: disjoint, n_forget docs each
 *   manifest.json            last: options, the corpus hash, and each file's
 *                            rows, words, bytes, sha256 and document ids
 *
 * The split. Documents are ordered by lethe_rng_hash(seed, stream, id) (ties
 * by id). News takes the first 4 * n_forget as the forget pool (sust fold k
 * is pool[(k-1)F, kF), scal fold k is pool[0, kF), and the forget set is
 * fold 1 of both), then n_retain for retain1, n_retain for retain2 and
 * n_holdout for holdout; books takes n_forget, n_retain, n_retain,
 * n_holdout. Books leaves out document 0 (the table of contents). Documents
 * not drawn are not written.
 *
 * Words are runs of bytes other than ASCII whitespace. With max_words > 0 a
 * longer document is cut after the last sentence that ends within its first
 * max_words words (after word max_words itself when none ends in the second
 * half of them). A passage is PROMPT_WORDS + GT_WORDS consecutive words from
 * word 0 of a document in steps of that length; prompt and gt are the bytes
 * of their words as they stand in the text, without the whitespace between
 * them, so prompt, whitespace, gt is a contiguous piece of the document.
 *
 * Cloze questions. Sentences end at '.', '!' or '?' (closing quotes and
 * brackets after it allowed; Mr., Mrs., Dr., St., single letters and words
 * with an inner '.' such as U.S. are not ends) or at a blank line. A sentence
 * of 8 to 60 words gives at most one question; its answer is the first of:
 * a year (a word of four digits, 1500 to 2099, punctuation around it
 * stripped); a name (two or more consecutive capitalised words, [A-Z][a-z]+
 * with inner hyphens, separated by single spaces, not starting at the
 * sentence's first word, ended by a word with trailing punctuation or a
 * possessive 's); a number (digits with inner ',' or '.'). The question is
 * "Fill in the blank: " and the sentence with runs of whitespace made one
 * space and the answer replaced by "____"; a sentence whose question still
 * contains the answer is skipped; so is, when drawing, a question already
 * drawn or an answer drawn three times. The answer is a verbatim substring
 * of the document.
 *
 * Draws of passages and questions are ordered by a keyed hash too and
 * written in document order; the ICL questions are drawn first and are
 * disjoint from the evaluated ones. The same options give byte-identical
 * files. */
#ifndef LETHE_MUSE_H
#define LETHE_MUSE_H

#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_MUSE_PROMPT_WORDS 64 /* verbmem prompt */
#define LETHE_MUSE_GT_WORDS 80     /* verbmem gt: about MUSE's 128 Llama tokens */
#define LETHE_MUSE_PASSAGE_WORDS (LETHE_MUSE_PROMPT_WORDS + LETHE_MUSE_GT_WORDS)
#define LETHE_MUSE_VERBMEM 100     /* verbmem pairs (at most; MUSE: 100) */
#define LETHE_MUSE_QA 100          /* knowmem questions per set (MUSE: 100) */
#define LETHE_MUSE_ICL 10          /* in-context examples per set (MUSE: 10) */
#define LETHE_MUSE_PRIVLEAK 100    /* privleak texts per set (MUSE: 100) */
#define LETHE_MUSE_FOLDS 4         /* scal and sust folds (news) */
#define LETHE_MUSE_DOCS_MAX 100000 /* most documents in a set */

typedef enum lethe_muse_corpus {
    LETHE_MUSE_NEWS = 0,  /* sotu, with scal and sust */
    LETHE_MUSE_BOOKS = 1, /* moby */
} lethe_muse_corpus;

typedef struct lethe_muse_opts {
    lethe_muse_corpus corpus;
    uint64_t seed;   /* 0 .. 2^53 (kept exact in manifest.json) */
    long n_forget;   /* documents in the forget set, >= 1 */
    long n_retain;   /* documents in each of retain1 and retain2, >= 1 */
    long n_holdout;  /* documents in the holdout set, >= 1 */
    long max_words;  /* cut documents to about this many words; 0: whole */
    int force;       /* write into a non-empty directory */
    int quiet;       /* no progress lines on stderr */
} lethe_muse_opts;

/* The defaults for `corpus`, seed 0:
 *   news  forget 10, retain 40, holdout 40, max_words 2000 (of 233 addresses)
 *   books forget 10, retain 32, holdout 16, whole chapters (of 138 documents) */
void lethe_muse_defaults(lethe_muse_corpus corpus, lethe_muse_opts *o);

/* "sotu" or "moby", the lethe_corpus_load name of the corpus. */
const char *lethe_muse_corpus_name(lethe_muse_corpus corpus);

/* LETHE_ERR_INVALID with a message naming the option when o is out of
 * range (max_words must be 0 or at least LETHE_MUSE_PASSAGE_WORDS). */
lethe_status lethe_muse_check(const lethe_muse_opts *o);

/* Write the corpora into dir, a run directory (lethe/rundir.h): created if
 * missing, a non-empty dir refused with LETHE_ERR_INVALID unless o->force,
 * and on failure what was created is removed. The corpus is loaded first
 * (LETHE_ERR_NOT_FOUND when it is not installed, nothing created);
 * LETHE_ERR_INVALID when the sizes need more documents than it has, or a
 * set gives no passage or question. Every file is written atomically,
 * manifest.json last. */
lethe_status lethe_muse_write(const char *dir, const lethe_muse_opts *o);

LETHE_API_END
#endif
