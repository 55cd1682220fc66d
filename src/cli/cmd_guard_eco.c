/* lethe guard tune-eco: ECO's corruption strength tuned on a TOFU forget
 * split against the oracle (lethe_eco_tune_tofu, lethe/tofu.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lethe/tofu.h"

#define VERB "guard tune-eco"

static void usage(FILE *out)
{
    lethe_eco_tune_cfg d;
    lethe_eco_tune_defaults(&d);
    fprintf(out,
            "Usage: lethe guard tune-eco GUARD --run RUN --oracle ORACLE --data DIR\n"
            "                            [--split forget10] [options]\n\n"
            "Tune ECO's noise strength sigma for RUN behind GUARD: a zeroth-order search on\n"
            "ln sigma (two probes a step) for the sigma at which the mean ROUGE-L recall of\n"
            "RUN's guarded greedy answers to the first N forget questions matches ORACLE's\n"
            "on the same questions; then the first N retain questions are answered with\n"
            "and without ECO at that sigma. Prints each step, the best sigma, and the\n"
            "retain ROUGE-L with the share of retain answers that changed. Use the result\n"
            "as --eco-sigma of lethe generate or lethe eval tofu. Definitions:\n"
            "docs/guard.md.\n\n"
            "  --run RUN        the guarded model (GUARD was fitted for it)\n"
            "  --oracle ORACLE  the retain-only model\n"
            "  --data DIR       the benchmark\n"
            "  --split NAME     the forget split (%s)\n"
            "  --questions N    forget (and retain) questions per evaluation (%d)\n"
            "  --max-new N      answer length (%d)\n"
            "  --eco-fn F       the corruption: noise_first (default), noise_random,\n"
            "                   noise_top, zero_top, flip_first, flip_top\n"
            "  --eco-k K        dimensions per position (0: all; default %d)\n"
            "  --sigma0 X       the starting sigma (%g)\n"
            "  --steps N        search steps, 1 to %d (%d)\n"
            "  --json           print the summary as JSON\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (a guard made for\n"
            "another model, a missing file).\n",
            d.split, d.questions, d.max_new, d.eco.k, d.zo.sigma0, LETHE_ECO_ZO_MAX_STEPS,
            d.zo.steps);
}

enum { O_RUN = 256, O_ORACLE, O_DATA, O_SPLIT, O_QUESTIONS, O_MAXNEW, O_FN, O_K, O_SIGMA0,
       O_STEPS, O_JSON, O_QUIET };

int cmd_guard_tune_eco(int argc, char **argv)
{
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},         {"oracle", 1, 0, O_ORACLE}, {"data", 1, 0, O_DATA},
        {"split", 1, 0, O_SPLIT},     {"questions", 1, 0, O_QUESTIONS},
        {"max-new", 1, 0, O_MAXNEW},  {"eco-fn", 1, 0, O_FN},     {"eco-k", 1, 0, O_K},
        {"sigma0", 1, 0, O_SIGMA0},   {"steps", 1, 0, O_STEPS},   {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET},     {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    lethe_eco_tune_cfg c;
    lethe_eco_tune_defaults(&c);
    long questions = c.questions, max_new = c.max_new, k = c.eco.k, steps = c.zo.steps;
    const cli_long_opt ints[] = {{O_QUESTIONS, &questions, 1, 1000000},
                                 {O_MAXNEW, &max_new, 1, 100000},
                                 {O_K, &k, 0, 1 << 20},
                                 {O_STEPS, &steps, 1, LETHE_ECO_ZO_MAX_STEPS}};
    const cli_real_opt reals[] = {{O_SIGMA0, &c.zo.sigma0, 1e-3, 1e6}};
    int json = 0, ch;
    cli_getopt_begin();
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, ch, optarg, ints, 4, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (ch) {
        case O_RUN: c.run = optarg; break;
        case O_ORACLE: c.oracle = optarg; break;
        case O_DATA: c.data = optarg; break;
        case O_SPLIT: c.split = optarg; break;
        case O_FN:
            if (lethe_eco_fn_parse(optarg, &c.eco.fn))
                return cli_usage(VERB, "%s", lethe_error_detail());
            break;
        case O_JSON: json = 1; break;
        case O_QUIET: break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    c.questions = (int)questions, c.max_new = (int)max_new, c.eco.k = (int)k;
    c.zo.steps = (int)steps;
    if (optind != argc - 1)
        return cli_usage(VERB, "needs one guard file");
    c.guard = argv[optind];
    if (!c.run || !c.oracle || !c.data)
        return cli_usage(VERB, "--run, --oracle and --data are required");
    if (strchr(c.split, '/'))
        return cli_usage(VERB, "--split is a name such as forget10, not a path");
    cJSON *sum = NULL;
    lethe_status st = lethe_eco_tune_tofu(&c, &sum);
    if (st != LETHE_OK)
        return cli_report(VERB, st);
    if (json) {
        char *t = cJSON_Print(sum);
        printf("%s\n", t ? t : "{}");
        free(t);
    } else {
        printf("oracle forget ROUGE-L %.4f, unguarded %.4f (%d questions)\n",
               cJSON_GetObjectItem(sum, "oracle_forget_rougeL")->valuedouble,
               cJSON_GetObjectItem(sum, "model_forget_rougeL")->valuedouble,
               cJSON_GetObjectItem(sum, "questions")->valueint);
        const cJSON *s;
        int i = 0;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(sum, "steps"))
            printf("step %d: sigma %.4g: ROUGE-L %.4f above, %.4f below\n", ++i,
                   cJSON_GetObjectItem(s, "sigma")->valuedouble,
                   cJSON_GetObjectItem(s, "rougeL_at_sigma_up")->valuedouble,
                   cJSON_GetObjectItem(s, "rougeL_at_sigma_down")->valuedouble);
        printf("best sigma %.4g: forget ROUGE-L %.4f\n",
               cJSON_GetObjectItem(sum, "best_sigma")->valuedouble,
               cJSON_GetObjectItem(sum, "best_forget_rougeL")->valuedouble);
        printf("retain ROUGE-L %.4f without ECO, %.4f with; %.1f%% of retain answers changed\n",
               cJSON_GetObjectItem(sum, "retain_rougeL_plain")->valuedouble,
               cJSON_GetObjectItem(sum, "retain_rougeL_eco")->valuedouble,
               100 * cJSON_GetObjectItem(sum, "retain_answers_changed")->valuedouble);
        printf("%d evaluations in %.1f s\n", cJSON_GetObjectItem(sum, "evaluations")->valueint,
               cJSON_GetObjectItem(sum, "seconds")->valuedouble);
    }
    cJSON_Delete(sum);
    return CLI_EXIT_OK;
}
