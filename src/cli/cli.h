/* Shared pieces of the command-line front end. */
#ifndef LETHE_CLI_H
#define LETHE_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/pipeline.h"
#include "lethe/status.h"

/* Stable exit codes (DESIGN §4.9). */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_INPUT = 3
};

/* Print "lethe VERB: <detail>" for a failed status and return its exit code:
 * input problems (io, format, invalid, not found, unsupported) give 3. */
int cli_report(const char *verb, lethe_status st);

/* As cli_report, for a verb with --force: an output refused because it
 * exists (lethe/rundir.h) is reported with " with --force" appended. */
int cli_report_out(const char *verb, lethe_status st);

/* Print "lethe VERB: <message> (see 'lethe VERB --help')", one line; return 2. */
int cli_usage(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepare getopt_long for a fresh parse of a subcommand's arguments:
 * reset lets getopt print its own message; begin keeps it quiet, for a
 * loop whose '?' case calls cli_bad_option. */
void cli_getopt_reset(void);
void cli_getopt_begin(void);
/* After getopt_long returned '?': the one-line usage error naming the
 * unknown option, or the option missing its value; returns 2. */
int cli_bad_option(const char *verb, char **argv, const struct option *longopts);

/* Parse a whole decimal / floating value; 0 on success, -1 otherwise (errno
 * ERANGE when the value is a number too large to hold). */
int cli_parse_long(const char *s, long *out);
int cli_parse_double(const char *s, double *out);

/* Numeric options with their ranges, for getopt_long loops. */
typedef struct cli_long_opt { int id; long *v; long lo, hi; } cli_long_opt;
typedef struct cli_real_opt { int id; double *v; double lo, hi; } cli_real_opt;
/* When option c (value arg) is in one of the tables, parse it into its
 * variable: 1 when done, or -(exit code) for a bad value (the message
 * printed, naming the option as `longopts` does, and its range: "--steps
 * 99999999999999999999 is out of range: it takes 1 to 2^40"); 0 when c is
 * in neither. */
int cli_numeric_option(const char *verb, const struct option *longopts, int c, const char *arg,
                       const cli_long_opt *ints, size_t n_ints, const cli_real_opt *reals,
                       size_t n_reals);

/* Subcommands: each returns an exit code; argv[0] is the verb. */
int cmd_data(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_train_gpt(int argc, char **argv);      /* lethe train --model gpt */
int cmd_train_wants_gpt(int argc, char **argv); /* 1 when argv asks for --model gpt */
int cmd_predict(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_eval_tofu(int argc, char **argv); /* lethe eval tofu */
int cmd_eval_mia(int argc, char **argv);  /* lethe eval mia */
int cmd_eval_muse(int argc, char **argv); /* lethe eval muse */
int cmd_unlearn(int argc, char **argv);
int cmd_unlearn_lm(int argc, char **argv);      /* lethe unlearn on a GPT run */
int cmd_unlearn_lm_wants(int argc, char **argv); /* 1 when --run is a GPT run or --list-lm */
int cmd_fit(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_sisa(int argc, char **argv);
int cmd_s3t(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_tofu(int argc, char **argv); /* lethe tofu run */
int cmd_muse(int argc, char **argv); /* lethe muse run */
int cmd_generate(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_guard(int argc, char **argv); /* lethe guard fit|add|remove|list */
int cmd_guard_tune_eco(int argc, char **argv); /* lethe guard tune-eco */
int cmd_quantize(int argc, char **argv);       /* lethe quantize */
int cmd_audit(int argc, char **argv);          /* lethe audit */

/* The end of an evaluation (src/cli/pipeline.c): st reported, or the
 * summary printed (JSON, or a line per number, null and, with strings,
 * string) with the files written to DIR/SUITE_EVAL.json and
 * SUITE_SUMMARY.json; sum freed. The exit code. */
int cli_eval_done(const char *verb, lethe_status st, cJSON *sum, int json, const char *dir,
                  const char *suite, int strings);
/* The pipelines' verbs (src/cli/pipeline.c): stage events on stderr; the
 * end of a run: st reported, or the summary printed (JSON, or table() and
 * the stages' times) and freed; `VERB run ...` dispatched to run(). */
void cli_stage_event(void *ctx, const lethe_pipeline_stage_info *s);
int cli_pipeline_done(const char *verb, lethe_status st, cJSON *summary, const char *path,
                      const lethe_pipeline_stage *stages, int n, double t0, int json,
                      void (*table)(const cJSON *summary));
int cli_run_subcommand(const char *verb, int argc, char **argv, void (*usage)(FILE *),
                       int (*run)(int argc, char **argv));

/* A macro's value as a string literal, for help texts. */
#define CLI_STR_(x) #x
#define CLI_STR(x) CLI_STR_(x)

#endif
