/* What the evaluations of language models (eval tofu, muse, mia) and the
 * pipelines (tofu run, muse run) share on the command line: the end of an
 * evaluation, the stages' progress, the end of a pipeline (the summary or its
 * table, the stages' times) and the run subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lethe/progress.h"

int cli_eval_done(const char *verb, lethe_status st, cJSON *sum, int json, const char *dir,
                  const char *suite, int strings)
{
    if (st == LETHE_OK && json) {
        char *text = cJSON_Print(sum);
        if (text)
            puts(text);
        free(text);
    } else if (st == LETHE_OK) {
        for (cJSON *e = sum->child; e; e = e->next)
            if (cJSON_IsNumber(e))
                printf("%-34s %.6g\n", e->string, e->valuedouble);
            else if (cJSON_IsNull(e))
                printf("%-34s -\n", e->string);
            else if (strings && cJSON_IsString(e))
                printf("%-34s %s\n", e->string, e->valuestring);
        printf("wrote %s/%s_EVAL.json and %s/%s_SUMMARY.json\n", dir, suite, dir, suite);
    }
    cJSON_Delete(sum);
    return st ? cli_report(verb, st) : CLI_EXIT_OK;
}

void cli_stage_event(void *ctx, const lethe_pipeline_stage_info *s)
{
    (void)ctx;
    if (s->done)
        fprintf(stderr, "%s: done in %.1f s\n", s->name, s->seconds);
    else
        fprintf(stderr, "%s: running%s (log: %s)\n", s->name, s->together ? " side by side" : "",
                s->log);
}

int cli_pipeline_done(const char *verb, lethe_status st, cJSON *summary, const char *path,
                      const lethe_pipeline_stage *stages, int n, double t0, int json,
                      void (*table)(const cJSON *summary))
{
    if (st != LETHE_OK)
        return cli_report(verb, st);
    if (json) {
        char *t = cJSON_Print(summary);
        printf("%s\n", t ? t : "{}");
        free(t);
    } else {
        table(summary);
        printf("stages:");
        for (int i = 0; i < n; i++)
            printf(" %s %.1f s%s%s", stages[i].name, stages[i].seconds,
                   stages[i].kept ? " (kept)" : "", i + 1 < n ? "," : "\n");
        printf("this run: %.1f s\n", lethe_now() - t0);
        printf("wrote %s\n", path);
    }
    cJSON_Delete(summary);
    return CLI_EXIT_OK;
}

int cli_run_subcommand(const char *verb, int argc, char **argv, void (*usage)(FILE *),
                       int (*run)(int argc, char **argv))
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc < 2)
            return cli_usage(verb, "missing a subcommand: run");
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "run"))
        return run(argc - 1, argv + 1);
    return cli_usage(verb, "unknown subcommand '%s' (expected run)", argv[1]);
}
