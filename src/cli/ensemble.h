/* What lethe sisa and lethe s3t share on the command line: the train
 * options and recipe, the options of the commands on a directory, deletion
 * requests, and predict / eval. */
#ifndef LETHE_CLI_ENSEMBLE_H
#define LETHE_CLI_ENSEMBLE_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "lethe/ensemble.h"

/* The help lines both engines' usages share, from --limit to --split. */
#define ENS_HELP_SHARED                                                                \
    "  --limit N          the first N training samples only\n"                         \
    "  --exclude SPLIT    train without these samples (the from-scratch reference)\n" \
    "  --out DIR          the directory to create\n"                                   \
    "  --force            write into an existing DIR, replacing an ensemble in it\n"  \
    "  --json, --quiet    print a JSON summary, or nothing but errors\n"              \
    "forget options:\n"                                                                \
    "  --ids SPLIT        the samples to delete: ids:FILE, a FILE of ids, class:K, ...\n" \
    "predict options:\n"                                                               \
    "  --split SPLIT      test (default), train, or a training subset\n"

typedef struct ens_train_opts {
    const char *data, *model, *widths, *aggregate, *order, *prior, *exclude, *out;
    long shards, slices, budget, epochs, batch, seed, limit;
    double lr;
    int json, quiet, force, resume;
} ens_train_opts;

/* Parse `lethe VERB train` into o (holding the defaults): every engine's
 * options, the ones VERB does not take refused. 0 when done, -1 when the
 * help was printed, or a usage exit code. */
int ens_train_parse(const char *verb, int argc, char **argv, ens_train_opts *o,
                    void (*usage)(FILE *));

/* The recipe settings of o. */
lethe_ensemble_recipe_cfg ens_recipe_cfg(const ens_train_opts *o);

/* A finished train: with --json, j (made by ens_train_json, then given the
 * engine's keys) and the common summary on one line; otherwise "trained
 * WHAT of SPEC on DATA ...", unless quiet. Frees j. */
cJSON *ens_train_json(const ens_train_opts *o);
void ens_train_done(const ens_train_opts *o, const lethe_ensemble_recipe *r, cJSON *j,
                    const char *what, double seconds);

typedef struct ens_dir_opts {
    const char *sub, *dir, *ids, *split;
    long shard;
    int json, quiet;
} ens_dir_opts;

/* Parse `lethe VERB SUB DIR [options]` (argv[0] is SUB). */
int ens_dir_parse(const char *verb, int argc, char **argv, ens_dir_opts *o,
                  void (*usage)(FILE *));

/* The shard option against e's shards, then (forget) o->ids recorded as a
 * request, acknowledged on stdout unless quiet; *rows and *req receive it. */
lethe_status ens_request(const ens_dir_opts *o, lethe_ensemble *e, lethe_rows *rows, long *req);

/* predict (o->split, o->shard) or eval (the aggregate, labelled `label`,
 * then every shard with a model) into j, printed unless json or quiet;
 * shard_extra adds an engine's keys to a shard's entry. */
lethe_status ens_predict(const ens_dir_opts *o, const lethe_ensemble *e, const char *label,
                         cJSON *j, void (*shard_extra)(cJSON *o, int k, const void *self),
                         const void *self);

/* A subcommand: `lethe VERB NAME ...` runs fn(argc - 1, argv + 1), or for
 * a command on a directory, dir() with the options ens_dir_parse read. */
typedef struct ens_sub {
    const char *name;
    int (*fn)(int argc, char **argv);
    int (*dir)(const ens_dir_opts *o);
} ens_sub;

/* The end of a command on a directory: j printed when --json asked for it
 * and st is LETHE_OK, else freed; the exit code, st reported. */
int ens_dir_done(const char *verb, const ens_dir_opts *o, cJSON *j, lethe_status st);

/* Run the subcommand argv[1] names; usage on none or --help. */
int ens_dispatch(const char *verb, int argc, char **argv, void (*usage)(FILE *),
                 const ens_sub *subs, int n);

/* Print j on one line and free it; CLI_EXIT_OK. */
int ens_print_json(cJSON *j);

#endif
