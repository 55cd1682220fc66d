/* lethe muse run: MUSE's experiment end to end (lethe/muse_pipeline.h,
 * docs/muse.md "The pipeline"): the options into the library's pipeline, its
 * stages' progress and the summary printed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cmd_lm.h"
#include "lethe/muse_pipeline.h"
#include "lethe/progress.h"

#define VERB "muse run"

typedef struct opts {
    lethe_muse_pipeline_cfg c;
    lethe_lm_overrides ov;
    long seed, jobs, verbmem_max_new, knowmem_max_new;
    int json, quiet;
} opts;

static void usage(FILE *out)
{
    lethe_muse_pipeline_cfg d;
    lethe_muse_pipeline_defaults(&d);
    fprintf(out,
            "Usage: lethe muse run [--corpus news|books] [--method %s] [--work DIR]\n"
            "                      [options] [-- UNLEARN-OPTIONS...]\n\n"
            "MUSE's experiment end to end, each stage kept in the work directory and\n"
            "reused by later runs whose stage would be the same (the same settings on the\n"
            "same inputs). Each stage is the library run of a lethe command, in a thread\n"
            "of this process, under WORK/CORPUS:\n"
            "  data     lethe data make muse-news or muse-books into data (or --data DIR)\n"
            "  target   lethe train --model gpt on raw/forget.jsonl and raw/retain1.jsonl,\n"
            "           every document trained on (--val 0), the windows shifted each\n"
            "           epoch (--shift), %ld epochs at --lr %g\n"
            "  oracle   the same on raw/retain1.jsonl alone (the same recipe and seed)\n"
            "  unlearn  lethe unlearn --method NAME on raw/forget.jsonl from the target,\n"
            "           raw/retain1.jsonl the retain set of GDR and KLR, at a constant\n"
            "           rate %g (no warm-up), %ld epochs; for whp the reinforced model\n"
            "           (--method sft on the forget text, %ld epochs), evaluated as the\n"
            "           target's logits adjusted by it\n"
            "  eval     MUSE's evaluation of target, oracle and unlearned model against\n"
            "           the oracle: VerbMem, KnowMem on forget and retain, PrivLeak\n"
            "  scal     news: the target unlearned on scal/forget_2..4.jsonl (nested\n"
            "           folds), each evaluated\n"
            "  sust     news: sust/forget_2..4.jsonl unlearned in sequence from the\n"
            "           unlearned model, each evaluated\n"
            "Fold 1 of scal and sust is the forget set: its row is the unlearned model's.\n"
            "Prints the criteria of each model with each stage's time and writes them to\n"
            "WORK/CORPUS/NAME/MUSE_PIPELINE.json. Each stage's news and summary (or its\n"
            "error) go to WORK/logs/STAGE.log, its settings to pipeline.json in its\n"
            "directory.\n\n",
            d.method, d.target_epochs, d.target_lr, d.unlearn_lr, d.unlearn_epochs, d.whp_epochs);
    fprintf(out,
            "Options:\n"
            "  --corpus C          news or books (default news)\n"
            "  --work DIR          the work directory (default %s)\n"
            "  --method NAME       an LM method of lethe unlearn that reads raw text (default\n"
            "                      %s, MUSE's NPO with the GDR regulariser; see\n"
            "                      lethe unlearn --list-lm; not idknll, idkdpo)\n"
            "  --name NAME         the unlearned run's directory under WORK/CORPUS (default:\n"
            "                      the method's name): one per setting of the method\n"
            "  --preset P          the model (default %s)\n"
            "  --seed N            the seed of the corpus and of every stage (default %llu)\n"
            "  --data DIR          use this corpus (lethe data make muse-news or muse-books)\n"
            "                      instead of generating one\n"
            "  --forget N, --retain N, --holdout N, --max-words N  the generated corpus, as\n"
            "                      data make takes them (default %ld, %ld, %ld, and 400\n"
            "                      words for news, 800 for books: smaller than its\n"
            "                      defaults, so that the target memorises its forget text\n"
            "                      in minutes)\n"
            "  --target-epochs N   passes of target and oracle over their text (default %ld)\n"
            "  --target-steps N    or this many steps\n"
            "  --target-lr X       their peak learning rate (default %g)\n"
            "  --verbmem-max-new N, --knowmem-max-new N  the evaluation's greedy lengths\n"
            "                      (default: lethe eval muse's)\n"
            "  --no-folds          news: no scal and sust stages\n"
            "  --jobs N            stages run at once where the order allows (default %d)\n"
            "  --json              print the summary as JSON\n"
            "  --quiet             print the summary only\n"
            "  -- OPTIONS          the unlearn stages' settings, as lethe unlearn takes them\n"
            "                      (--epochs, --lr, --beta, --retain-loss, ...; not its\n"
            "                      files or method), over the pipeline's (e.g. -- --lr 5e-4)\n\n"
            "The unlearn stages run at --lr %g unless OPTIONS set another: MUSE's constant\n"
            "1e-5 is sized for 7B-parameter models.\n\n"
            "Exit codes: 0 ok, 1 a stage failed (its log is named), 2 usage error, 3 bad\n"
            "input.\n",
            d.work, d.method, d.preset, (unsigned long long)d.seed, d.forget, d.retain,
            d.holdout, d.target_epochs, d.target_lr, d.jobs,
            d.unlearn_lr);
}

enum {
    O_WORK = 256, O_CORPUS, O_METHOD, O_NAME, O_PRESET, O_SEED, O_DATA, O_TARGET_EPOCHS,
    O_TARGET_STEPS, O_VERBMEM, O_KNOWMEM, O_NO_FOLDS, O_JOBS, O_JSON, O_QUIET, O_FORGET,
    O_RETAIN, O_HOLDOUT, O_MAX_WORDS, O_TARGET_LR
};

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"work", 1, 0, O_WORK},           {"corpus", 1, 0, O_CORPUS},
        {"method", 1, 0, O_METHOD},       {"name", 1, 0, O_NAME},
        {"preset", 1, 0, O_PRESET},       {"seed", 1, 0, O_SEED},
        {"data", 1, 0, O_DATA},           {"target-epochs", 1, 0, O_TARGET_EPOCHS},
        {"target-steps", 1, 0, O_TARGET_STEPS}, {"verbmem-max-new", 1, 0, O_VERBMEM},
        {"knowmem-max-new", 1, 0, O_KNOWMEM}, {"no-folds", 0, 0, O_NO_FOLDS},
        {"jobs", 1, 0, O_JOBS},           {"json", 0, 0, O_JSON},
        {"quiet", 0, 0, O_QUIET},         {"help", 0, 0, 'h'},
        {"forget", 1, 0, O_FORGET},       {"retain", 1, 0, O_RETAIN},
        {"holdout", 1, 0, O_HOLDOUT},     {"max-words", 1, 0, O_MAX_WORDS},
        {"target-lr", 1, 0, O_TARGET_LR},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    lethe_muse_pipeline_cfg *p = &o->c;
    lethe_muse_pipeline_defaults(p);
    o->jobs = p->jobs;
    const cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},
        {O_TARGET_EPOCHS, &p->target_epochs, 1, 100000},
        {O_TARGET_STEPS, &p->target_steps, 1, 1L << 40},
        {O_VERBMEM, &o->verbmem_max_new, 1, 100000},
        {O_KNOWMEM, &o->knowmem_max_new, 1, 100000},
        {O_JOBS, &o->jobs, 1, 64},
        {O_FORGET, &p->forget, 1, LETHE_MUSE_DOCS_MAX},
        {O_RETAIN, &p->retain, 1, LETHE_MUSE_DOCS_MAX},
        {O_HOLDOUT, &p->holdout, 1, LETHE_MUSE_DOCS_MAX},
        {O_MAX_WORDS, &p->max_words, 0, 1L << 30}};
    const cli_real_opt reals[] = {{O_TARGET_LR, &p->target_lr, 1e-12, 1}};
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
        case O_CORPUS:
            if (!strcmp(optarg, "news"))
                p->corpus = LETHE_MUSE_NEWS;
            else if (!strcmp(optarg, "books"))
                p->corpus = LETHE_MUSE_BOOKS;
            else
                return cli_usage(VERB, "--corpus is news or books, not '%s'", optarg);
            break;
        case O_METHOD: p->method = optarg; break;
        case O_NAME: p->name = optarg; break;
        case O_PRESET: p->preset = optarg; break;
        case O_DATA: p->data = optarg; break;
        case O_NO_FOLDS: p->folds = 0; break;
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
    p->jobs = (int)o->jobs;
    p->verbmem_max_new = (int)o->verbmem_max_new, p->knowmem_max_new = (int)o->knowmem_max_new;
    if (!o->quiet)
        p->event = cli_stage_event;
    const char *name = p->name ? p->name : p->method;
    if (strchr(name, '/') || !*name || name[0] == '.')
        return cli_usage(VERB, "--name is a name, not a path");
    if (!strcmp(p->method, "sft"))
        return cli_usage(VERB, "--method sft is not an unlearning method");
    return cmd_unlearn_lm_after_dashes(VERB, argc, argv, &o->ov, &p->unlearn, &p->unlearn_args,
                                       &p->n_unlearn_args);
}

/* ---- printing -------------------------------------------------------------- */

static void print_rows(const cJSON *rows)
{
    static const char *const metrics[] = {"forget_verbmem_ROUGE", "forget_knowmem_ROUGE",
                                          "retain_knowmem_ROUGE", "retain_verbmem_ROUGE",
                                          "privleak"};
    const cJSON *m;
    cJSON_ArrayForEach(m, rows) {
        printf("%-12s", m->string);
        for (int k = 0; k < 5; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, metrics[k]);
            if (cJSON_IsNumber(v))
                printf(" %14.4g", v->valuedouble);
            else
                printf(" %14s", "-");
        }
        putchar('\n');
    }
}

static void print_table(const cJSON *summary)
{
    static const char *const folds[] = {"scal", "sust"};
    printf("%-12s %14s %14s %14s %14s %14s\n", "model", "verbmem_f", "knowmem_f", "knowmem_r",
           "verbmem_r", "privleak");
    print_rows(cJSON_GetObjectItemCaseSensitive(summary, "models"));
    for (int k = 0; k < 2; k++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(summary, folds[k]);
        if (f) {
            printf("%s:\n", folds[k]);
            print_rows(f);
        }
    }
}

static int muse_run(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    double t0 = lethe_now();
    lethe_muse_pipeline_result r;
    lethe_status st = lethe_muse_pipeline_run(&o.c, &r);
    return cli_pipeline_done(VERB, st, r.summary, r.path, r.stages, r.n_stages, t0, o.json,
                             print_table);
}

int cmd_muse(int argc, char **argv)
{
    return cli_run_subcommand("muse", argc, argv, usage, muse_run);
}
