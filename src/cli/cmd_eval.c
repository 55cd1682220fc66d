/* lethe eval: the classification and regression evaluation suites on run
 * directories (docs/metrics.md). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/eval.h"
#include "lethe/progress.h"

/* ---------------------------------------------------------------- options */

enum {
    O_RUN = 256, O_FORGET, O_ORACLE, O_ORIGINAL, O_OUT, O_JSON, O_SEED, O_SPLIT_SEED, O_FEATURE,
    O_MIA_CAP, O_LR, O_BATCH, O_STEPS, O_CAP, O_TOL, O_EPOCHS, O_SLACK, O_SAMPLING, O_AIN_BATCH,
    O_JS, O_AIN_LR, O_QUIET, O_HELP
};

struct opts {
    const char *run, *forget, *oracle, *original, *out;
    int json, quiet;
    long seed, split_seed, mia_cap, batch, steps, cap, epochs, ain_batch;
    double lr, tol, slack;
    lethe_mia_feature feature;
    lethe_mia_sampling sampling;
    lethe_js_kind js;
};

static void usage_classify(FILE *out)
{
    lethe_classify_cfg c;
    lethe_classify_defaults(&c);
    fprintf(out,
            "Usage: lethe eval classify --run RUN --forget SPLIT [--oracle RUN]\n"
            "                           [--original RUN] [--out DIR] [--json] [options]\n\n"
            "Evaluate a classifier's forgetting of a forget set D_f (rows of its training\n"
            "data; the retain set D_r is the rest): UA = 100 - accuracy on D_f, RA, TA;\n"
            "MIA-efficacy (SalUn: an RBF SVC, C=3, gamma='auto', trained on the confidence of\n"
            "retain members against as many test non-members; %% of D_f judged non-member);\n"
            "activation distance and Jensen-Shannon divergence to the oracle on D_f; ZRF\n"
            "against a randomly initialised net; relearn time (Adam steps on D_f until its\n"
            "accuracy regains the original model's); Avg. Gap to the oracle over UA, MIA,\n"
            "RA and TA; wall time. Writes CLASSIFY_EVAL.json (per forget sample, by id) and\n"
            "CLASSIFY_SUMMARY.json. Definitions: docs/metrics.md.\n\n"
            "  --run RUN           the model to evaluate (a run directory)\n"
            "  --forget SPLIT      random:F, class:K[,K], ids:FILE or a FILE of ids\n"
            "  --split-seed N      the seed of random:F splits, as given to lethe train (0)\n"
            "  --oracle RUN        the model retrained without D_f: gap, JS, distance\n"
            "  --original RUN      the model trained on all data: relearn time\n"
            "  --out DIR           where to write the files, created if needed (default: RUN)\n"
            "  --json              print the summary as JSON\n"
            "  --seed N            attack subsamples, ZRF's random net, relearn order (%llu)\n"
            "  --feature F         attack feature: confidence or entropy (%s)\n"
            "  --mia-cap N         attack samples per class, 0 for no cap (%ld)\n"
            "  --mia-sampling S    balanced: equal keyed subsamples of D_r and D_test;\n"
            "                      salun: the first |D_test| rows of D_r against all of\n"
            "                      D_test, as SalUn's code (%s)\n"
            "  --js KIND           the JS divergence of JS_divergence and ZRF: paper, or\n"
            "                      bad-teaching (that code's KL(m||.) averaged over\n"
            "                      classes) (%s)\n"
            "  --relearn-lr X      Adam learning rate of relearning (%g)\n"
            "  --relearn-batch N   relearning batch (%d)\n"
            "  --relearn-steps N   relearning step cap (%ld)\n"
            "  --relearn-cap N     relearn on a keyed subsample of D_f this big, 0: all (%ld)\n"
            "  --relearn-tol X     regain (1 - X) times the original's accuracy (%g)\n"
            "  --quiet             no progress lines on stderr (only errors)\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n",
            (unsigned long long)c.seed, lethe_mia_feature_name(c.mia.feature), c.mia.cap,
            lethe_mia_sampling_name(c.mia.sampling), lethe_js_kind_name(c.js),
            (double)c.relearn_lr, c.relearn_batch, c.relearn_max_steps, c.relearn_cap,
            c.relearn_tol);
}

static void usage_regress(FILE *out)
{
    lethe_regress_cfg c;
    lethe_regress_defaults(&c);
    fprintf(out,
            "Usage: lethe eval regress --run RUN --forget SPLIT [--oracle RUN]\n"
            "                          [--original RUN] [--out DIR] [--json] [options]\n\n"
            "Evaluate a regressor's forgetting of a forget set D_f, as in Deep Regression\n"
            "Unlearning: L1 and MSE on D_f, D_r and the test set (data units); a loss-based\n"
            "membership attack (RBF SVC, C=3, gamma='auto', on per-sample L1; equal numbers\n"
            "of retain members and test non-members; %% of D_f judged member); the\n"
            "Wasserstein distance between model and oracle predictions on D_f; the Anamnesis\n"
            "Index AIN = rt(model) / rt(oracle), rt = Adam steps on all training data until\n"
            "the L1 on the test rows of a range:LO:HI forget set is at most slack times the\n"
            "original's there (the paper's held-out forget rows, batch and count); and the\n"
            "relearn ratio, the same measured on D_f itself. Writes REGRESS_EVAL.json and\n"
            "REGRESS_SUMMARY.json. Definitions: docs/metrics.md.\n\n"
            "  --run RUN           the model to evaluate (a run directory)\n"
            "  --forget SPLIT      random:F, range:LO:HI, ids:FILE or a FILE of ids\n"
            "  --split-seed N      the seed of random:F splits, as given to lethe train (0)\n"
            "  --oracle RUN        the model retrained without D_f\n"
            "  --original RUN      the model trained on all data (needed for AIN)\n"
            "  --out DIR           where to write the files, created if needed (default: RUN)\n"
            "  --json              print the summary as JSON\n"
            "  --seed N            attack subsamples and relearning order (%llu)\n"
            "  --mia-cap N         attack samples per class, 0 for no cap (%ld)\n"
            "  --mia-sampling S    balanced or salun, as for lethe eval classify (%s)\n"
            "  --ain-lr X          Adam learning rate of relearning (%g)\n"
            "  --ain-batch N       AIN's training and evaluation batch (%d)\n"
            "  --relearn-batch N   the relearn ratio's training batch (%d)\n"
            "  --ain-epochs N      at most this many epochs of relearning (%d)\n"
            "  --ain-slack X       target forget L1 = X times the original's (%g)\n"
            "  --quiet             no progress lines on stderr (only errors)\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n",
            (unsigned long long)c.seed, c.mia.cap, lethe_mia_sampling_name(c.mia.sampling),
            (double)c.ain_lr, c.ain_batch, c.relearn_batch, c.ain_epochs, c.ain_slack);
}

/* Parse the options of `verb`; -1 to go on, else an exit code. */
static int parse(int argc, char **argv, const char *verb, int classify, struct opts *o)
{
    static const struct option table[] = {
        {"run", 1, 0, O_RUN}, {"forget", 1, 0, O_FORGET}, {"oracle", 1, 0, O_ORACLE},
        {"original", 1, 0, O_ORIGINAL}, {"out", 1, 0, O_OUT}, {"json", 0, 0, O_JSON},
        {"seed", 1, 0, O_SEED}, {"split-seed", 1, 0, O_SPLIT_SEED},
        {"feature", 1, 0, O_FEATURE}, {"mia-cap", 1, 0, O_MIA_CAP},
        {"relearn-lr", 1, 0, O_LR}, {"relearn-batch", 1, 0, O_BATCH},
        {"relearn-steps", 1, 0, O_STEPS}, {"relearn-cap", 1, 0, O_CAP},
        {"relearn-tol", 1, 0, O_TOL}, {"ain-lr", 1, 0, O_AIN_LR},
        {"ain-epochs", 1, 0, O_EPOCHS}, {"ain-slack", 1, 0, O_SLACK},
        {"mia-sampling", 1, 0, O_SAMPLING}, {"ain-batch", 1, 0, O_AIN_BATCH},
        {"js", 1, 0, O_JS}, {"quiet", 0, 0, O_QUIET},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0}};
    const cli_long_opt ints[] = {
        {O_SEED, &o->seed, 0, 1L << 53},     {O_SPLIT_SEED, &o->split_seed, 0, 1L << 53},
        {O_MIA_CAP, &o->mia_cap, 0, 1L << 40}, {O_BATCH, &o->batch, 1, 1 << 16},
        {O_STEPS, &o->steps, 1, 1L << 40},   {O_CAP, &o->cap, 0, 1L << 40},
        {O_EPOCHS, &o->epochs, 1, 1000000},  {O_AIN_BATCH, &o->ain_batch, 1, 1 << 16}};
    const cli_real_opt reals[] = {{O_LR, &o->lr, 0, 100}, {O_AIN_LR, &o->lr, 0, 100},
                                  {O_TOL, &o->tol, 0, 1}, {O_SLACK, &o->slack, 1, 1e6}};
    cli_getopt_begin();
    int c, idx;
    while ((c = getopt_long(argc, argv, "h", table, &idx)) != -1) {
        const char *name = c >= 256 && c != O_HELP ? table[idx].name : "";
        /* each suite takes only its own tuning options */
        int relearn = c != O_BATCH && !strncmp(name, "relearn-", 8);
        int foreign = (classify && (c == O_EPOCHS || c == O_SLACK || !strncmp(name, "ain-", 4))) ||
                      (!classify && (c == O_FEATURE || c == O_STEPS || c == O_CAP || c == O_JS ||
                                     c == O_TOL || relearn));
        if (foreign)
            return cli_usage(verb, "--%s belongs to the other suite", name);
        int done = cli_numeric_option(verb, table, c, optarg, ints, sizeof ints / sizeof *ints,
                                      reals, sizeof reals / sizeof *reals);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: o->run = optarg; break;
        case O_FORGET: o->forget = optarg; break;
        case O_ORACLE: o->oracle = optarg; break;
        case O_ORIGINAL: o->original = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_FEATURE:
            if (lethe_mia_feature_parse(optarg, &o->feature) != LETHE_OK ||
                o->feature == LETHE_MIA_L1)
                return cli_usage(verb, "--feature is confidence or entropy, got '%s'", optarg);
            break;
        case O_JS:
            if (lethe_js_kind_parse(optarg, &o->js) != LETHE_OK)
                return cli_usage(verb, "--js is paper or bad-teaching, got '%s'", optarg);
            break;
        case O_SAMPLING:
            if (lethe_mia_sampling_parse(optarg, &o->sampling) != LETHE_OK)
                return cli_usage(verb, "--mia-sampling is balanced or salun, got '%s'", optarg);
            break;
        case 'h':
        case O_HELP:
            (classify ? usage_classify : usage_regress)(stdout);
            return CLI_EXIT_OK;
        default: return cli_bad_option(verb, argv, table);
        }
    }
    if (optind < argc)
        return cli_usage(verb, "unexpected argument '%s'", argv[optind]);
    if (!o->run || !o->forget)
        return cli_usage(verb, "--run and --forget are required");
    return -1;
}

/* ----------------------------------------------------------------- output */

static int report(const struct opts *o, const char *suite, const lethe_eval_run_result *r)
{
    if (o->json) {
        cJSON *j = lethe_eval_summary_json(r->m, r->n);
        char *text = j ? cJSON_Print(j) : NULL;
        cJSON_Delete(j);
        if (!text) {
            fprintf(stderr, "lethe eval: out of memory\n");
            return CLI_EXIT_FAILURE;
        }
        puts(text);
        free(text);
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < r->n; i++) {
        if (isnan(r->m[i].agg))
            printf("%-24s -\n", r->m[i].name);
        else
            printf("%-24s %.6g\n", r->m[i].name, r->m[i].agg);
    }
    const char *dir = o->out ? o->out : o->run;
    printf("wrote %s/%s_EVAL.json and %s/%s_SUMMARY.json\n", dir, suite, dir, suite);
    return CLI_EXIT_OK;
}

/* The final progress line, after a line or bar was shown. */
static void progress_end(lethe_progress *p, lethe_status st)
{
    if (st == LETHE_OK && p->last != p->t0)
        lethe_progress_finish(p);
}

static int eval_classify(int argc, char **argv)
{
    const char *verb = "eval classify";
    lethe_classify_cfg cfg;
    lethe_classify_defaults(&cfg);
    struct opts o = {.seed = (long)cfg.seed, .mia_cap = cfg.mia.cap, .batch = cfg.relearn_batch,
                     .steps = cfg.relearn_max_steps, .cap = cfg.relearn_cap, .epochs = -1,
                     .lr = cfg.relearn_lr, .tol = cfg.relearn_tol, .slack = NAN,
                     .feature = cfg.mia.feature, .sampling = cfg.mia.sampling, .ain_batch = -1,
                     .js = cfg.js};
    int rc = parse(argc, argv, verb, 1, &o);
    if (rc >= 0)
        return rc;
    if (o.tol >= 1)
        return cli_usage(verb, "--relearn-tol %g is out of range: it takes 0 to below 1", o.tol);
    cfg.seed = cfg.mia.seed = (uint64_t)o.seed;
    cfg.mia.cap = o.mia_cap;
    cfg.mia.feature = o.feature;
    cfg.mia.sampling = o.sampling;
    cfg.js = o.js;
    cfg.relearn_lr = (float)o.lr;
    cfg.relearn_batch = (int)o.batch;
    cfg.relearn_max_steps = o.steps;
    cfg.relearn_cap = o.cap;
    cfg.relearn_tol = o.tol;
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, verb, "stages", 0, o.quiet);
    cfg.progress = &prog;
    lethe_eval_runs runs = {o.run, o.forget, (uint64_t)o.split_seed, o.oracle, o.original, o.out};
    lethe_eval_run_result res;
    lethe_status st = lethe_eval_classify_run(&runs, &cfg, &res);
    progress_end(&prog, st);
    return st == LETHE_OK ? report(&o, "CLASSIFY", &res) : cli_report(verb, st);
}

static int eval_regress(int argc, char **argv)
{
    const char *verb = "eval regress";
    lethe_regress_cfg cfg;
    lethe_regress_defaults(&cfg);
    struct opts o = {.seed = (long)cfg.seed, .mia_cap = cfg.mia.cap, .batch = cfg.relearn_batch,
                     .steps = -1, .cap = -1, .epochs = cfg.ain_epochs, .lr = cfg.ain_lr,
                     .tol = NAN, .slack = cfg.ain_slack, .feature = LETHE_MIA_L1,
                     .sampling = cfg.mia.sampling, .ain_batch = cfg.ain_batch};
    int rc = parse(argc, argv, verb, 0, &o);
    if (rc >= 0)
        return rc;
    cfg.seed = cfg.mia.seed = (uint64_t)o.seed;
    cfg.mia.cap = o.mia_cap;
    cfg.mia.sampling = o.sampling;
    cfg.ain_lr = (float)o.lr;
    cfg.relearn_batch = (int)o.batch;
    cfg.ain_batch = (int)o.ain_batch;
    cfg.ain_epochs = (int)o.epochs;
    cfg.ain_slack = o.slack;
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, verb, "stages", 0, o.quiet);
    cfg.progress = &prog;
    lethe_eval_runs runs = {o.run, o.forget, (uint64_t)o.split_seed, o.oracle, o.original, o.out};
    lethe_eval_run_result res;
    lethe_status st = lethe_eval_regress_run(&runs, &cfg, &res);
    progress_end(&prog, st);
    return st == LETHE_OK ? report(&o, "REGRESS", &res) : cli_report(verb, st);
}

int cmd_eval(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("eval", "missing a suite: classify, regress or tofu");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        printf("Usage: lethe eval SUITE --run RUN --forget SPLIT [options]\n\n"
               "How well a model has forgotten a forget set, against the oracle (the model\n"
               "retrained without it) when one is given. Results go to <SUITE>_EVAL.json\n"
               "(per forget sample) and <SUITE>_SUMMARY.json in the OpenUnlearning layout.\n\n"
               "Suites:\n"
               "  classify   UA, RA, TA, MIA-efficacy, JS divergence, activation distance,\n"
               "             ZRF, relearn time, Avg. Gap\n"
               "  regress    L1 / MSE, loss-based MIA, Wasserstein distance, Anamnesis Index\n"
               "  tofu       a GPT run on a TOFU-style benchmark: probability, ROUGE-L, truth\n"
               "             ratio, memorisation, Forget Quality, Model Utility (--split,\n"
               "             --data instead of --forget)\n"
               "  mia        a GPT run's membership-inference attacks (LOSS, zlib, Min-K%%,\n"
               "             Min-K%%++, reference, gradient norm): AUC, TPR at low FPR\n"
               "             (--members, --nonmembers instead of --forget)\n"
               "  muse       a GPT run on a MUSE-layout directory: VerbMem, KnowMem (forget,\n"
               "             retain), PrivLeak against --oracle (--data instead of --forget)\n\n"
               "lethe eval SUITE --help lists a suite's options.\n");
        return CLI_EXIT_OK;
    }
    if (!strcmp(sub, "classify"))
        return eval_classify(argc - 1, argv + 1);
    if (!strcmp(sub, "regress"))
        return eval_regress(argc - 1, argv + 1);
    if (!strcmp(sub, "tofu"))
        return cmd_eval_tofu(argc - 1, argv + 1);
    if (!strcmp(sub, "mia"))
        return cmd_eval_mia(argc - 1, argv + 1);
    if (!strcmp(sub, "muse"))
        return cmd_eval_muse(argc - 1, argv + 1);
    if (sub[0] == '-')
        return cli_usage("eval", "unknown option '%s'", sub);
    return cli_usage("eval", "unknown suite '%s' (classify, regress or tofu)", sub);
}
