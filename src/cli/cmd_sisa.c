/* lethe sisa: sharded training with exact deletion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "ensemble.h"
#include "lethe/json.h"
#include "lethe/mpi.h"
#include "lethe/progress.h"
#include "lethe/sisa.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe sisa train --data NAME --shards S --slices R --out DIR [options]\n"
            "       lethe sisa forget DIR --ids SPLIT [--json] [--quiet]\n"
            "       lethe sisa predict DIR [--split SPLIT] [--shard K] [--json] [--quiet]\n"
            "       lethe sisa eval DIR [--json] [--quiet]\n"
            "       lethe sisa status DIR [--json] [--quiet]\n\n"
            "SISA trains S isolated models on disjoint shards of the training set, each\n"
            "slice by slice on cumulative data with a checkpoint per slice, and aggregates\n"
            "their predictions. A deletion is recorded in DIR/ledger.log first, then each\n"
            "affected shard is retrained from its first affected slice; the result is\n"
            "byte-identical to training from scratch with --exclude. Every command first\n"
            "applies requests that a crash left pending.\n\n"
            "Under mpirun -np P (Open MPI), rank 0 runs the command and the shards to\n"
            "train are shared among the P ranks, which send their checkpoints to rank 0:\n"
            "DIR ends up byte-identical to a run of one process, and no shared filesystem\n"
            "is needed (see docs/distributed.md). This lethe was built %s.\n\n"
            "train options:\n"
            "  --data NAME        the task (see lethe train --help)\n"
            "  --model KIND       mlp or cnn (default mlp; the task's recipe)\n"
            "  --shards S         number of shards (default %d)\n"
            "  --slices R         slices per shard (default %d)\n"
            "  --epochs E         epochs of budget per shard (default: the recipe's)\n"
            "  --batch N, --lr X  as lethe train (default: the recipe's; constant rate)\n"
            "  --aggregate A      vote (default) or mean (of probabilities)\n"
            "  --seed N           shard and slice assignment, initialisation, order\n"
            "  --resume           finish an interrupted training of DIR (the same options),\n"
            "                     reusing its checkpoints; creates DIR when it is absent\n"
            ENS_HELP_SHARED
            "  --shard K          one shard's model instead of the aggregate (a shard\n"
            "                     whose every sample is deleted has none)\n\n"
            "Exit codes: 0 ok, 1 failure (every sample deleted: no model), 2 usage error,\n"
            "3 bad input (unknown or already deleted ids, a directory of another kind, a\n"
            "damaged ledger or checkpoint).\n",
            lethe_mpi_built() ? "with MPI" : "without MPI", LETHE_SISA_SHARDS,
            LETHE_SISA_SLICES);
}

static int sisa_train(int argc, char **argv)
{
    ens_train_opts o = {.aggregate = "vote", .shards = LETHE_SISA_SHARDS,
                        .slices = LETHE_SISA_SLICES};
    int rc = ens_train_parse("sisa", argc, argv, &o, print_usage);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (strcmp(o.aggregate, "vote") && strcmp(o.aggregate, "mean"))
        return cli_usage("sisa", "--aggregate is vote or mean");
    lethe_ensemble_recipe r = {0};
    lethe_ensemble_recipe_cfg rcfg = ens_recipe_cfg(&o);
    lethe_sisa *s = NULL;
    lethe_status st = lethe_ensemble_recipe_load(&rcfg, &r);
    lethe_aggregate agg = strcmp(o.aggregate, "mean") ? LETHE_AGG_VOTE : LETHE_AGG_MEAN;
    if (st == LETHE_OK && o.resume)
        st = lethe_sisa_resume(o.out, o.data, &r.opts, r.spec, &r.cfg, (int)o.shards,
                               (int)o.slices, (uint64_t)o.seed, agg,
                               o.exclude ? &r.excl : NULL, o.exclude, &s);
    else if (st == LETHE_OK)
        st = lethe_sisa_create(o.out, o.data, &r.opts, r.spec, &r.cfg, (int)o.shards,
                               (int)o.slices, (uint64_t)o.seed, agg,
                               o.exclude ? &r.excl : NULL, o.exclude, o.force, &s);
    double t0 = lethe_now();
    if (s)
        s->notes = o.quiet ? NULL : stderr;
    if (st == LETHE_OK && (st = lethe_sisa_sync(s)) == LETHE_OK) {
        char what[64];
        snprintf(what, sizeof what, "%ld shards x %ld slices", o.shards, o.slices);
        ens_train_done(&o, &r, ens_train_json(&o), what, lethe_now() - t0);
    }
    lethe_sisa_free(s);
    lethe_ensemble_recipe_free(&r);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report_out("sisa", st);
}

/* status: the configuration, the ledger and state.json's shards. */
static lethe_status status(const lethe_sisa *s, const ens_dir_opts *o, cJSON *j)
{
    const lethe_ensemble *e = &s->e;
    cJSON_AddStringToObject(j, "data", e->task);
    cJSON_AddStringToObject(j, "spec", e->spec);
    cJSON_AddNumberToObject(j, "slices", e->slices);
    cJSON_AddNumberToObject(j, "excluded", (double)e->n_excluded);
    cJSON_AddNumberToObject(j, "requests", (double)e->ledger->n_req);
    cJSON_AddNumberToObject(j, "pending", (double)lethe_ledger_pending(e->ledger));
    cJSON *arr = cJSON_AddArrayToObject(j, "shards"), *state = NULL, *sh;
    char path[4200];
    snprintf(path, sizeof path, "%s/state.json", e->dir);
    lethe_status st = lethe_json_read(path, &state);
    if (st != LETHE_OK)
        return st;
    cJSON_ArrayForEach(sh, cJSON_GetObjectItem(state, "shards"))
    {
        lethe_ensemble_ckpt_path(e, cJSON_GetStringValue(cJSON_GetObjectItem(sh, "checkpoint")),
                                 path, sizeof path);
        cJSON_AddStringToObject(sh, "file", path);
        cJSON_AddItemToArray(arr, cJSON_Duplicate(sh, 1));
    }
    cJSON_Delete(state);
    if (o->json || o->quiet)
        return LETHE_OK;
    printf("%s: SISA over %s, %d shards x %d slices, %s\n", e->dir, e->task, e->shards,
           e->slices, e->spec);
    printf("requests: %ld (%ld pending), %ld ids excluded at training\n", e->ledger->n_req,
           lethe_ledger_pending(e->ledger), e->n_excluded);
    cJSON_ArrayForEach(sh, arr)
    printf("  shard %-3d %6d samples  %s  sha256 %s\n",
           (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "shard")),
           (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sh, "samples")),
           cJSON_GetStringValue(cJSON_GetObjectItem(sh, "file")),
           cJSON_GetStringValue(cJSON_GetObjectItem(sh, "sha256")));
    return LETHE_OK;
}

/* The sub-commands that work on an existing directory. */
static int sisa_dir(const ens_dir_opts *o)
{
    lethe_sisa *s = NULL;
    lethe_rows rows = {0};
    long req = 0;
    cJSON *j = cJSON_CreateObject();
    lethe_status st = lethe_sisa_open(o->dir, &s);
    double t0 = lethe_now();
    if (s)
        s->notes = o->quiet ? NULL : stderr;
    if (st == LETHE_OK)
        st = ens_request(o, &s->e, &rows, &req);
    if (st == LETHE_OK)
        st = lethe_sisa_sync(s);
    double secs = lethe_now() - t0;
    if (st == LETHE_OK && !strcmp(o->sub, "forget")) {
        cJSON_AddNumberToObject(j, "request", (double)req);
        cJSON_AddNumberToObject(j, "ids", (double)rows.n);
        cJSON_AddNumberToObject(j, "retrained_slices", (double)s->trained_slices);
        cJSON_AddNumberToObject(j, "seconds", secs);
        if (!o->json && !o->quiet)
            printf("applied: retrained %ld slices in %.3f s\n", s->trained_slices, secs);
    } else if (st == LETHE_OK && !strcmp(o->sub, "status")) {
        st = status(s, o, j);
    } else if (st == LETHE_OK) {
        st = ens_predict(o, &s->e, "aggregate", j, NULL, NULL);
    }
    lethe_rows_free(&rows);
    lethe_sisa_free(s);
    return ens_dir_done("sisa", o, j, st);
}

/* Under mpirun: rank 0 runs the command; the others train what its syncs
 * hand them, and say nothing unless their messages to rank 0 fail. */
int cmd_sisa(int argc, char **argv)
{
    static const ens_sub subs[] = {
        {"train", sisa_train, NULL}, {"forget", NULL, sisa_dir}, {"predict", NULL, sisa_dir},
        {"eval", NULL, sisa_dir},    {"status", NULL, sisa_dir}};
    lethe_status st = lethe_mpi_init();
    int rc;
    if (st != LETHE_OK)
        rc = cli_report("sisa", st);
    else if (lethe_mpi_rank() > 0)
        rc = (st = lethe_sisa_worker()) == LETHE_OK ? CLI_EXIT_OK : cli_report("sisa", st);
    else {
        rc = ens_dispatch("sisa", argc, argv, print_usage, subs, 5);
        fflush(stdout);
        lethe_sisa_workers_stop();
    }
    lethe_mpi_finalize();
    return rc;
}
