/* lethe unlearn: apply an approximate unlearning method to a run, writing
 * a new run whose metadata records the method, its settings, the forget
 * set and the parent model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/run.h"
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

int cmd_unlearn(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"run", 1, 0, 'r'},    {"method", 1, 0, 'm'}, {"forget", 1, 0, 'f'},
        {"retain", 1, 0, 'R'}, {"out", 1, 0, 'o'},    {"set", 1, 0, 's'},
        {"seed", 1, 0, 'S'},   {"split-seed", 1, 0, 'P'}, {"list", 0, 0, 'l'},
        {"json", 0, 0, 'j'},   {"quiet", 0, 0, 'q'},  {"force", 0, 0, 'F'},
        {"lr", 1, 0, 'L'},     {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    lethe_unlearn_run_cfg rc;
    const char *sets[MAX_SETS];
    long seed = 0, split_seed = 0;
    lethe_unlearn_run_defaults(&rc);
    rc.sets = sets;
    const cli_long_opt ints[] = {{'S', &seed, 0, 1L << 53}, {'P', &split_seed, 0, 1L << 53}};
    const cli_real_opt reals[] = {{'L', &rc.lr, 1e-12, 100}};
    int json = 0, c;
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
        case 'r': rc.run = optarg; break;
        case 'm': rc.method = optarg; break;
        case 'f': rc.forget = optarg; break;
        case 'R': rc.retain = optarg; break;
        case 'o': rc.out = optarg; break;
        case 's':
            if (rc.n_sets == MAX_SETS)
                return cli_usage("unlearn", "at most %d --set options", MAX_SETS);
            sets[rc.n_sets++] = optarg;
            break;
        case 'l': list_methods(); return CLI_EXIT_OK;
        case 'j': json = 1; break;
        case 'q': rc.quiet = 1; break;
        case 'F': rc.force = 1; break;
        case 'h': print_usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("unlearn", argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage("unlearn", "unexpected argument '%s'", argv[optind]);
    if (!rc.run || !rc.method || !rc.forget || !rc.out)
        return cli_usage("unlearn", "--run, --method, --forget and --out are required");
    rc.seed = (uint64_t)seed;
    rc.split_seed = (uint64_t)split_seed;
    lethe_unlearn_run_result res;
    lethe_status st = lethe_unlearn_run_dir(&rc, &res);
    if (st != LETHE_OK)
        return cli_report_out("unlearn", st);
    int classify = res.kind == LETHE_TASK_CLASSIFY;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "run", rc.out);
        cJSON_AddStringToObject(j, "method", res.method->name);
        cJSON_AddNumberToObject(j, "forget", (double)res.n_forget);
        cJSON_AddNumberToObject(j, "retain", (double)res.n_retain);
        cJSON_AddNumberToObject(j, "steps", (double)res.steps);
        cJSON_AddNumberToObject(j, "seconds", res.seconds);
        const lethe_scores *s[3] = {&res.forget, &res.retain, &res.test};
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
        printf("%s on %s: forgot %ld samples (retain %ld) in %ld steps, %.2f s\n",
               res.method->name, res.task, res.n_forget, res.n_retain, res.steps, res.seconds);
        if (classify)
            printf("  accuracy: forget %.2f%%  retain %.2f%%  test %.2f%%\n",
                   res.forget.accuracy, res.retain.accuracy, res.test.accuracy);
        else
            printf("  L1: forget %.6g  retain %.6g  test %.6g\n", res.forget.l1, res.retain.l1,
                   res.test.l1);
        printf("wrote %s/model.safetensors, config.json, log.jsonl\n", rc.out);
    }
    return CLI_EXIT_OK;
}
