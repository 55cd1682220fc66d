/* lethe tofu run: TOFU's experiment end to end (lethe/tofu_pipeline.h,
 * docs/tofu.md "The pipeline"): the options into the library's pipeline, its
 * stages' progress and the summary printed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cmd_lm.h"
#include "lethe/progress.h"
#include "lethe/tofu_pipeline.h"

#define VERB "tofu run"

typedef struct opts {
    lethe_tofu_pipeline_cfg c;
    lethe_lm_overrides ov;
    long seed, jobs, max_new;
    int json, quiet;
} opts;

static void usage(FILE *out)
{
    lethe_tofu_pipeline_cfg d;
    lethe_tofu_pipeline_defaults(&d);
    fprintf(out,
            "Usage: lethe tofu run [--split %s] [--method %s] [--work DIR]\n"
            "                      [options] [-- UNLEARN-OPTIONS...]\n\n"
            "TOFU's experiment end to end, each stage kept in the work directory and\n"
            "reused by later runs whose stage would be the same (the same settings on the\n"
            "same inputs). Each stage is the library run of a lethe command, in a thread\n"
            "of this process:\n"
            "  data       lethe data make authors into WORK/data (or --data DIR)\n"
            "  base       lethe train --model gpt on the corpora (WORK/base)\n"
            "  knowledge  lethe unlearn --method sft of the base on WORK/knowledge.json, the\n"
            "             general-knowledge questions (real_authors_perturbed.json and\n"
            "             world_facts_perturbed.json): the model that knows them\n"
            "  target     lethe unlearn --method sft on full.json (every author) with the\n"
            "             general-knowledge pairs mixed in (WORK/target.json)\n"
            "  oracle     the same on retainXX.json (WORK/SPLIT/oracle.json; the same\n"
            "             recipe and seed)\n"
            "  unlearn    lethe unlearn --method NAME --lr %g on forgetXX.json from the\n"
            "             target, with retainXX.json (and idontknow.jsonl for idknll and\n"
            "             idkdpo); for whp the reinforced model (--method sft on\n"
            "             forgetXX.json, %ld epochs), evaluated as the target's logits\n"
            "             adjusted by it (eval tofu --whp)\n"
            "  eval       lethe eval tofu of target, oracle and unlearned model against the\n"
            "             oracle\n"
            "then prints Forget Quality, Model Utility and the forget set's ROUGE-L,\n"
            "probability and truth ratio of the three with each stage's time, and writes\n"
            "them to WORK/SPLIT/NAME/TOFU_PIPELINE.json. Each stage's news and summary (or\n"
            "its error) go to WORK/logs/STAGE.log, its settings to pipeline.json in its\n"
            "directory.\n\n",
            d.split, d.method, d.unlearn_lr, d.whp_epochs);
    fprintf(out,
            "Options:\n"
            "  --work DIR          the work directory (default %s)\n"
            "  --split NAME        forget01, forget05 or forget10 (default %s)\n"
            "  --method NAME       an LM method of lethe unlearn (default %s; see\n"
            "                      lethe unlearn --list-lm)\n"
            "  --name NAME         the unlearned run's directory under WORK/SPLIT (default:\n"
            "                      the method's name): one per setting of the method\n"
            "  --preset P          the model (default %s)\n"
            "  --seed N            the seed of the benchmark and of every stage (default %llu)\n"
            "  --data DIR          use this benchmark instead of generating one\n"
            "  --authors N, --qa N the generated benchmark's size (default %ld, %ld)\n"
            "  --corpora LIST      pre-training corpora, as train --data (default %s)\n"
            "  --base-epochs N     passes over them (default %ld)\n"
            "  --base-steps N      or this many steps\n"
            "  --knowledge-epochs N  fine-tuning epochs on the general knowledge (default %ld)\n"
            "  --knowledge-reps N  copies of the general-knowledge pairs mixed into the\n"
            "                      fine-tuning of target and oracle (default %ld)\n"
            "  --sft-epochs N      fine-tuning epochs of target and oracle (default %ld)\n"
            "  --sft-lr X          the peak learning rate of the fine-tuning stages\n"
            "                      (default %g)\n"
            "  --max-new N         eval's greedy answer length for ROUGE-L (default %d)\n"
            "  --jobs N            stages run at once where the order allows (default %d)\n"
            "  --json              print the summary as JSON\n"
            "  --quiet             print the summary only\n"
            "  -- OPTIONS          the unlearn stage's settings, as lethe unlearn takes them\n"
            "                      (--epochs, --lr, --beta, --retain-loss, ...; not its\n"
            "                      files or method), over the pipeline's (e.g. -- --lr 5e-4)\n\n"
            "The unlearn stage runs at --lr %g unless OPTIONS set another: OpenUnlearning's\n"
            "1e-5 is sized for 7B-parameter models fine-tuned at 1e-5.\n\n"
            "Exit codes: 0 ok, 1 a stage failed (its log is named), 2 usage error, 3 bad\n"
            "input.\n",
            d.work, d.split, d.method, d.preset, (unsigned long long)d.seed, d.authors, d.qa,
            d.corpora, d.base_epochs, d.know_epochs, d.reps, d.sft_epochs, d.sft_lr, d.max_new,
            d.jobs, d.unlearn_lr);
}

enum {
    O_WORK = 256, O_SPLIT, O_METHOD, O_NAME, O_PRESET, O_SEED, O_DATA, O_AUTHORS, O_QA,
    O_CORPORA, O_BASE_EPOCHS, O_BASE_STEPS, O_KNOW_EPOCHS, O_REPS, O_SFT_EPOCHS, O_SFT_LR, O_JOBS,
    O_MAX_NEW, O_JSON, O_QUIET
};

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"work", 1, 0, O_WORK},           {"split", 1, 0, O_SPLIT},
        {"method", 1, 0, O_METHOD},       {"name", 1, 0, O_NAME},
        {"preset", 1, 0, O_PRESET},       {"seed", 1, 0, O_SEED},
        {"data", 1, 0, O_DATA},           {"authors", 1, 0, O_AUTHORS},
        {"qa", 1, 0, O_QA},               {"corpora", 1, 0, O_CORPORA},
        {"base-epochs", 1, 0, O_BASE_EPOCHS}, {"base-steps", 1, 0, O_BASE_STEPS},
        {"knowledge-epochs", 1, 0, O_KNOW_EPOCHS}, {"knowledge-reps", 1, 0, O_REPS},
        {"sft-epochs", 1, 0, O_SFT_EPOCHS},
        {"sft-lr", 1, 0, O_SFT_LR},       {"jobs", 1, 0, O_JOBS},
        {"max-new", 1, 0, O_MAX_NEW},
        {"json", 0, 0, O_JSON},           {"quiet", 0, 0, O_QUIET},
        {"help", 0, 0, 'h'},              {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    lethe_tofu_pipeline_cfg *p = &o->c;
    lethe_tofu_pipeline_defaults(p);
    o->jobs = p->jobs, o->max_new = p->max_new;
    const cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},          {O_AUTHORS, &p->authors, 10, 10000},
        {O_QA, &p->qa, 1, 200},                   {O_BASE_EPOCHS, &p->base_epochs, 1, 1000},
        {O_BASE_STEPS, &p->base_steps, 1, 1L << 40}, {O_KNOW_EPOCHS, &p->know_epochs, 1, 10000},
        {O_REPS, &p->reps, 0, 1000},
        {O_SFT_EPOCHS, &p->sft_epochs, 1, 10000}, {O_JOBS, &o->jobs, 1, 64},
        {O_MAX_NEW, &o->max_new, 1, 100000}};
    const cli_real_opt reals[] = {{O_SFT_LR, &p->sft_lr, 1e-12, 1}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int r = cli_numeric_option(VERB, lo, c, optarg, ints, sizeof ints / sizeof *ints, reals,
                                   1);
        if (r < 0)
            return -r;
        if (r)
            continue;
        switch (c) {
        case O_WORK: p->work = optarg; break;
        case O_SPLIT: p->split = optarg; break;
        case O_METHOD: p->method = optarg; break;
        case O_NAME: p->name = optarg; break;
        case O_PRESET: p->preset = optarg; break;
        case O_DATA: p->data = optarg; break;
        case O_CORPORA: p->corpora = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    /* getopt_long stops at "--" and leaves the rest */
    if (optind < argc && strcmp(argv[optind - 1], "--"))
        return cli_usage(VERB, "unexpected argument '%s' (options for the unlearn stage go "
                         "after --)", argv[optind]);
    p->seed = (uint64_t)o->seed;
    p->jobs = (int)o->jobs, p->max_new = (int)o->max_new;
    if (!o->quiet)
        p->event = cli_stage_event;
    const char *name = p->name ? p->name : p->method;
    if (strchr(p->split, '/') || strchr(name, '/') || !*name || name[0] == '.')
        return cli_usage(VERB, "--split and --name are names, not paths");
    int pct = strncmp(p->split, "forget", 6) ? 0 : atoi(p->split + 6);
    if (pct < 1 || pct > 99)
        return cli_usage(VERB, "--split needs forgetXX with XX from 01 to 99 (forget01, "
                         "forget05, forget10), not '%s'", p->split);
    if (!strcmp(p->method, "sft"))
        return cli_usage(VERB, "--method sft is not an unlearning method");
    return cmd_unlearn_lm_after_dashes(VERB, argc, argv, &o->ov, &p->unlearn, &p->unlearn_args,
                                       &p->n_unlearn_args);
}

/* ---- printing -------------------------------------------------------------- */

static void print_table(const cJSON *summary)
{
    static const char *const rows[] = {"target", "oracle", "unlearned"};
    static const char *const metrics[] = {"forget_quality", "model_utility",
                                          "forget_rougeL_recall", "forget_prob",
                                          "forget_truth_ratio"};
    static const int width[] = {14, 13, 15, 12, 12};
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(summary, "models");
    printf("%-10s %14s %13s %15s %12s %12s\n", "model", "forget_quality", "model_utility",
           "forget_rougeL", "forget_prob", "truth_ratio");
    for (int i = 0; i < 3; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(models, rows[i]);
        printf("%-10s", rows[i]);
        for (int k = 0; k < 5; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, metrics[k]);
            if (cJSON_IsNumber(v))
                printf(" %*.*g", width[k], 4, v->valuedouble);
            else
                printf(" %*s", width[k], "-");
        }
        putchar('\n');
    }
}

static int tofu_run(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    double t0 = lethe_now();
    lethe_tofu_pipeline_result r;
    lethe_status st = lethe_tofu_pipeline_run(&o.c, &r);
    return cli_pipeline_done(VERB, st, r.summary, r.path, r.stages, r.n_stages, t0, o.json,
                             print_table);
}

int cmd_tofu(int argc, char **argv)
{
    return cli_run_subcommand("tofu", argc, argv, usage, tofu_run);
}
