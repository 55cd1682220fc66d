/* lethe predict: a run's predictions on a split, and how good they are. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/task.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe predict --run RUN [--data NAME] [--split SPLIT] [--out FILE [--force]]\n"
            "                     [--json] [--quiet]\n\n"
            "Run a trained model over a split of its task and report accuracy (percent,\n"
            "classifiers) or mean absolute and mean squared error in the data's units\n"
            "(regressors).\n\n"
            "Options:\n"
            "  --run RUN        the run directory (model.safetensors, config.json)\n"
            "  --data NAME      the task (default: the one the run was trained on)\n"
            "  --split SPLIT    test (default), train, or a training subset: random:F,\n"
            "                   class:K[,K], range:LO:HI, ids:FILE or a FILE of ids\n"
            "  --split-seed N   the seed of random:F splits (default 0)\n"
            "  --out FILE       also write one CSV line per sample: id,prediction,truth\n"
            "                   (the predicted class, or the predicted value in data units);\n"
            "                   an existing FILE, or one inside RUN, is refused\n"
            "  --force          replace an existing FILE\n"
            "  --json           print {\"n\", \"accuracy\"} or {\"n\", \"l1\", \"mse\"}\n"
            "  --quiet          accepted as by every verb (only errors go to stderr)\n"
            "  -h, --help       show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (missing run, unknown\n"
            "task, a model of another architecture, unknown ids).\n");
}

/* Per-sample predictions as CSV, atomically. */
static lethe_status write_predictions(const char *path, lethe_net *net, const lethe_dataset *ds,
                                      const lethe_rows *rows)
{
    long n = rows ? rows->n : ds->n;
    float *y = malloc((size_t)(n > 0 ? n : 1) * (size_t)net->n_out * sizeof *y);
    if (!y)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    lethe_status st = lethe_predict(net, ds, rows, y);
    lethe_afile *f = st == LETHE_OK ? lethe_afile_open(path) : NULL;
    if (st == LETHE_OK && !f)
        st = LETHE_ERR_IO;
    if (f)
        fprintf(f->fp, "id,prediction,truth\n");
    for (long i = 0; f && i < n; i++) {
        long r = rows ? rows->row[i] : i;
        const float *p = y + (size_t)i * (size_t)net->n_out;
        if (ds->task == LETHE_TASK_CLASSIFY) {
            int best = 0;
            for (int k = 1; k < net->n_out; k++)
                best = p[k] > p[best] ? k : best;
            fprintf(f->fp, "%llu,%d,%d\n", (unsigned long long)ds->ids[r], best, ds->y[r]);
        } else {
            fprintf(f->fp, "%llu,%.9g,%.9g\n", (unsigned long long)ds->ids[r],
                    p[0] * ds->t_scale + ds->t_shift,
                    ds->t[(size_t)r * (size_t)ds->n_targets] * ds->t_scale + ds->t_shift);
        }
    }
    if (f)
        st = lethe_afile_commit(f);
    free(y);
    return st;
}

int cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"run", 1, 0, 'r'},  {"data", 1, 0, 'd'}, {"split", 1, 0, 's'},
        {"split-seed", 1, 0, 'S'}, {"out", 1, 0, 'o'}, {"json", 0, 0, 'j'},
        {"force", 0, 0, 'F'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *run_dir = NULL, *data = NULL, *split = "test", *out = NULL;
    long split_seed = 0;
    int json = 0, force = 0, c;
    const cli_long_opt ints[] = {{'S', &split_seed, 0, 1L << 53}};
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option("predict", longopts, c, optarg, ints, 1, NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'r': run_dir = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'F': force = 1; break;
        case 'q': break; /* predict writes nothing but errors to stderr */
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("predict", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("predict", "unexpected argument '%s'", argv[optind]);
    if (!run_dir)
        return cli_usage("predict", "--run is required");
    lethe_run *run = NULL;
    lethe_dataset *train = NULL, *test = NULL;
    lethe_rows rows = {0};
    const lethe_dataset *ds = NULL;
    int use_rows = 0;
    int named = !strcmp(split, "test") || !strcmp(split, "train");
    const char *inputs[] = {run_dir, named ? NULL : split};
    lethe_status st = out ? lethe_outfile_check(out, force, inputs, 2) : LETHE_OK;
    if (st == LETHE_OK)
        st = lethe_run_load(run_dir, &run);
    if (st == LETHE_OK && data && strcmp(data, run->task)) {
        const lethe_task_info *info;
        if ((st = lethe_task_find(data, &info)) == LETHE_OK)
            snprintf(run->task, sizeof run->task, "%s", data);
    }
    if (st == LETHE_OK)
        st = lethe_run_data(run, &train, &test);
    if (st == LETHE_OK) {
        if (!strcmp(split, "test")) {
            ds = test;
        } else if (!strcmp(split, "train")) {
            ds = train;
        } else {
            ds = train, use_rows = 1;
            st = lethe_split_select(train, split, (uint64_t)split_seed, &rows);
        }
    }
    lethe_scores s;
    if (st == LETHE_OK)
        st = lethe_score(run->net, ds, use_rows ? &rows : NULL, &s);
    if (st == LETHE_OK && out)
        st = write_predictions(out, run->net, ds, use_rows ? &rows : NULL);
    if (st == LETHE_OK) {
        int classify = ds->task == LETHE_TASK_CLASSIFY;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "n", (double)s.n);
            if (classify) {
                cJSON_AddNumberToObject(j, "accuracy", s.accuracy);
            } else {
                cJSON_AddNumberToObject(j, "l1", s.l1);
                cJSON_AddNumberToObject(j, "mse", s.mse);
            }
            char *txt = cJSON_PrintUnformatted(j);
            printf("%s\n", txt ? txt : "{}");
            free(txt);
            cJSON_Delete(j);
        } else if (classify) {
            printf("%s on %s %s: %ld samples, accuracy %.2f%%\n", run_dir, run->task, split,
                   s.n, s.accuracy);
        } else {
            printf("%s on %s %s: %ld samples, L1 %.6g, MSE %.6g\n", run_dir, run->task, split,
                   s.n, s.l1, s.mse);
        }
    }
    lethe_rows_free(&rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    lethe_run_free(run);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report_out("predict", st);
}
