/* lethe unlearn: apply an approximate unlearning method to a run, writing
 * a new run whose metadata records the method, its settings, the forget
 * set and the parent model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/fileio.h"
#include "lethe/progress.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "lethe/task.h"
#include "lethe/unlearn.h"

#define MAX_SETS 32

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe unlearn --run RUN --method NAME --forget SPLIT --out RUN2\n"
            "                     [--retain SPLIT] [--set KEY=VALUE ...] [--lr X] [--seed N]\n"
            "                     [--force] [--quiet] [--json]\n"
            "       lethe unlearn --list\n"
            "       lethe unlearn --run GPT_RUN ... (GPT runs: see --list-lm, --run GPT_RUN --help)\n\n"
            "Make the model of RUN forget a split of its training data with an approximate\n"
            "method, and write the result as a new run directory. The retain set is the\n"
            "rest of the training data, or --retain SPLIT minus the forget set.\n"
            "Evaluate with 'lethe eval classify|regress --run RUN2 --forget SPLIT'.\n\n"
            "Options:\n"
            "  --run RUN          the trained run to start from\n"
            "  --method NAME      the method (see --list)\n"
            "  --forget SPLIT     random:F, class:K[,K], range:LO:HI, ids:FILE or a FILE\n"
            "  --retain SPLIT     restrict the retain set to a split (default: the rest)\n"
            "  --out RUN2         the run directory to write (created; an existing\n"
            "                     non-empty RUN2, or one inside RUN, is refused)\n"
            "  --force            write into an existing RUN2, replacing its files\n"
            "  --set KEY=VALUE    a hyperparameter of the method (repeatable)\n"
            "  --lr X             the method's learning rate (as --set lr=X; see --list)\n"
            "  --seed N           keys the method's random draws (default 0)\n"
            "  --split-seed N     the seed of random:F splits (default 0)\n"
            "  --list             list the methods, their kind and hyperparameters\n"
            "  --json             print a JSON summary\n"
            "  --quiet            no progress output\n"
            "  -h, --help         show this help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (unknown method, a\n"
            "method that does not apply to the task, a bad split or setting).\n");
}

static void list_methods(void)
{
    printf("%-15s %-9s %-11s %-6s %-6s %s\n", "METHOD", "TASKS", "INTENT", "LABELS", "RETAIN",
           "DESCRIPTION");
    for (size_t i = 0; i < lethe_methods_count(); i++) {
        const lethe_method *m = lethe_methods_at(i);
        const char *tasks = m->tasks == (LETHE_FOR_CLASSIFY | LETHE_FOR_REGRESS) ? "both"
                            : m->tasks == LETHE_FOR_CLASSIFY                   ? "classify"
                                                                               : "regress";
        printf("%-15s %-9s %-11s %-6s %-6s %s\n", m->name, tasks, m->intent,
               m->needs_labels ? "yes" : "no", m->needs_retain ? "yes" : "no", m->description);
        for (int k = 0; m->params[k].name; k++)
            printf("%13s%-10s = %-8g %s\n", "", m->params[k].name, m->params[k].dflt,
                   m->params[k].help);
    }
}

static int has_lr(const lethe_method *m)
{
    for (int k = 0; m->params[k].name; k++)
        if (!strcmp(m->params[k].name, "lr"))
            return 1;
    return 0;
}

int cmd_unlearn(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"run", 1, 0, 'r'},    {"method", 1, 0, 'm'}, {"forget", 1, 0, 'f'},
        {"retain", 1, 0, 'R'}, {"out", 1, 0, 'o'},    {"set", 1, 0, 's'},
        {"seed", 1, 0, 'S'},   {"split-seed", 1, 0, 'P'}, {"list", 0, 0, 'l'},
        {"json", 0, 0, 'j'},   {"quiet", 0, 0, 'q'},  {"force", 0, 0, 'F'},
        {"lr", 1, 0, 'L'},     {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *run_dir = NULL, *method = NULL, *forget = NULL, *retain = NULL, *out = NULL;
    const char *sets[MAX_SETS];
    size_t n_sets = 0;
    long seed = 0, split_seed = 0;
    double lr = 0;
    char lr_set[48];
    const cli_long_opt ints[] = {{'S', &seed, 0, 1L << 53}, {'P', &split_seed, 0, 1L << 53}};
    const cli_real_opt reals[] = {{'L', &lr, 1e-12, 100}};
    int json = 0, quiet = 0, force = 0, c;
    if (cmd_unlearn_lm_wants(argc, argv))
        return cmd_unlearn_lm(argc, argv); /* a GPT run: LM unlearning (cmd_unlearn_lm.c) */
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option("unlearn", longopts, c, optarg, ints, 2, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case 'r': run_dir = optarg; break;
        case 'm': method = optarg; break;
        case 'f': forget = optarg; break;
        case 'R': retain = optarg; break;
        case 'o': out = optarg; break;
        case 's':
            if (n_sets == MAX_SETS)
                return cli_usage("unlearn", "at most %d --set options", MAX_SETS);
            sets[n_sets++] = optarg;
            break;
        case 'l': list_methods(); return CLI_EXIT_OK;
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'F': force = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("unlearn", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("unlearn", "unexpected argument '%s'", argv[optind]);
    if (!run_dir || !method || !forget || !out)
        return cli_usage("unlearn", "--run, --method, --forget and --out are required");
    if (lr > 0) { /* --lr X: the method's lr setting, after any --set */
        if (n_sets == MAX_SETS)
            return cli_usage("unlearn", "at most %d --set options", MAX_SETS);
        snprintf(lr_set, sizeof lr_set, "lr=%.17g", lr);
        sets[n_sets++] = lr_set;
    }

    lethe_run *run = NULL;
    lethe_dataset *train = NULL, *test = NULL, *view = NULL;
    lethe_rows f_rows = {0}, r_sel = {0}, r_rows = {0};
    lethe_net *original = NULL;
    lethe_afile *log = NULL;
    lethe_rundir *rd = NULL;
    cJSON *config = NULL;
    const lethe_method *m;
    lethe_unlearn_ctx ctx = {0};
    char path[4200], parent_hash[17], forget_hash[17];
    const char *inputs[] = {run_dir};
    lethe_status st = lethe_method_find(method, &m);
    if (st == LETHE_OK && lr > 0 && !has_lr(m))
        st = lethe_fail(LETHE_ERR_INVALID, "--lr: %s has no learning rate (see --list)", m->name);
    if (st == LETHE_OK)
        st = lethe_rundir_begin(out, force, inputs, 1, &rd);
    if (st == LETHE_OK)
        st = lethe_unlearn_hparams(&ctx, m, sets, n_sets);
    if (st == LETHE_OK)
        st = lethe_run_load(run_dir, &run);
    snprintf(path, sizeof path, "%s/model.safetensors", run_dir);
    if (st == LETHE_OK)
        st = lethe_file_fnv1a(path, parent_hash);
    if (st == LETHE_OK)
        st = lethe_run_data(run, &train, &test);
    if (st == LETHE_OK)
        st = lethe_split_select(train, forget, (uint64_t)split_seed, &f_rows);
    if (st == LETHE_OK)
        st = retain ? lethe_split_select(train, retain, (uint64_t)split_seed, &r_sel)
                    : lethe_rows_all(&r_sel, train->n);
    if (st == LETHE_OK)
        st = lethe_rows_minus(&r_rows, &r_sel, &f_rows);
    if (st == LETHE_OK && !(original = lethe_net_init(run->net->spec)))
        st = LETHE_ERR_NOMEM;
    if (st == LETHE_OK && !(view = malloc(sizeof *view)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    if (st == LETHE_OK && !(log = lethe_afile_open(path)))
        st = LETHE_ERR_IO;
    if (st != LETHE_OK)
        goto done;
    memcpy(original->params, run->net->params, sizeof(float) * (size_t)original->n_params);
    *view = *train;
    if (!m->needs_labels)
        view->y = NULL, view->t = NULL; /* the method cannot read a label */
    ctx.net = run->net;
    ctx.original = original;
    ctx.data = view;
    ctx.forget = &f_rows;
    ctx.retain = &r_rows;
    ctx.seed = (uint64_t)seed;
    ctx.log = log->fp;
    ctx.quiet = quiet;
    double t0 = lethe_now();
    if ((st = lethe_unlearn_run(&ctx)) != LETHE_OK)
        goto done;
    double seconds = lethe_now() - t0;
    st = lethe_afile_commit(log);
    log = NULL;
    if (st != LETHE_OK)
        goto done;

    lethe_rows_hash(train, &f_rows, forget_hash);
    cJSON *hp = cJSON_CreateObject();
    for (int k = 0; m->params[k].name; k++)
        cJSON_AddNumberToObject(hp, m->params[k].name, ctx.hp[k]);
    char *hp_txt = cJSON_PrintUnformatted(hp);
    config = cJSON_Duplicate(run->config, 1);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "method", m->name);
    cJSON_AddItemToObject(u, "hparams", hp);
    cJSON_AddStringToObject(u, "forget", forget);
    if (retain)
        cJSON_AddStringToObject(u, "retain", retain);
    cJSON_AddNumberToObject(u, "seed", (double)seed);
    cJSON_AddNumberToObject(u, "split_seed", (double)split_seed);
    cJSON_AddStringToObject(u, "forget_hash", forget_hash);
    cJSON_AddStringToObject(u, "parent", run_dir);
    cJSON_AddStringToObject(u, "parent_hash", parent_hash);
    cJSON_DeleteItemFromObject(config, "unlearn");
    cJSON_AddItemToObject(config, "unlearn", u);
    const char *data_hash = cJSON_GetStringValue(cJSON_GetObjectItem(config, "data_hash"));
    const char *meta[] = {"data", run->task, "data_hash", data_hash ? data_hash : "",
                          "method", m->name, "hparams", hp_txt ? hp_txt : "{}",
                          "forget_hash", forget_hash, "parent_hash", parent_hash};
    st = lethe_run_save(out, run->net, config, meta, sizeof meta / sizeof meta[0] / 2);
    free(hp_txt);
    lethe_scores sf, sr, stt;
    if (st == LETHE_OK)
        st = lethe_score(run->net, train, &f_rows, &sf);
    if (st == LETHE_OK)
        st = lethe_score(run->net, train, &r_rows, &sr);
    if (st == LETHE_OK)
        st = lethe_score(run->net, test, NULL, &stt);
    if (st != LETHE_OK)
        goto done;
    int classify = train->task == LETHE_TASK_CLASSIFY;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", out);
        cJSON_AddStringToObject(j, "method", m->name);
        cJSON_AddNumberToObject(j, "forget", (double)f_rows.n);
        cJSON_AddNumberToObject(j, "retain", (double)r_rows.n);
        cJSON_AddNumberToObject(j, "steps", (double)ctx.steps);
        cJSON_AddNumberToObject(j, "seconds", seconds);
        const lethe_scores *s[3] = {&sf, &sr, &stt};
        const char *names[3] = {"forget", "retain", "test"};
        cJSON *sc = cJSON_AddObjectToObject(j, "scores");
        for (int k = 0; k < 3; k++) {
            cJSON *o = cJSON_AddObjectToObject(sc, names[k]);
            if (classify) {
                cJSON_AddNumberToObject(o, "accuracy", s[k]->accuracy);
            } else {
                cJSON_AddNumberToObject(o, "l1", s[k]->l1);
                cJSON_AddNumberToObject(o, "mse", s[k]->mse);
            }
        }
        char *txt = cJSON_PrintUnformatted(j);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
        cJSON_Delete(j);
    } else {
        printf("%s on %s: forgot %ld samples (retain %ld) in %ld steps, %.2f s\n", m->name,
               run->task, f_rows.n, r_rows.n, ctx.steps, seconds);
        if (classify)
            printf("  accuracy: forget %.2f%%  retain %.2f%%  test %.2f%%\n", sf.accuracy,
                   sr.accuracy, stt.accuracy);
        else
            printf("  L1: forget %.6g  retain %.6g  test %.6g\n", sf.l1, sr.l1, stt.l1);
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", out);
    }
done:
    lethe_afile_abort(log);
    lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    free(view);
    lethe_net_free(original);
    lethe_rows_free(&f_rows);
    lethe_rows_free(&r_sel);
    lethe_rows_free(&r_rows);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    lethe_run_free(run);
    return st == LETHE_OK ? CLI_EXIT_OK : cli_report_out("unlearn", st);
}
