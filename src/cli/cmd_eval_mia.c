/* lethe eval mia: membership-inference attacks on a GPT run (lethe/lm_mia.h,
 * docs/mia.md): LOSS, zlib, Min-K%, Min-K%++, reference model and gradient
 * norm, with their AUC and TPR at 1% and 5% FPR between members and
 * non-members, and exact memorisation and extraction strength. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/lm_mia.h"

#define VERB "eval mia"

static void usage(FILE *out)
{
    lethe_lm_mia_run_cfg d;
    lethe_lm_mia_run_defaults(&d);
    fprintf(out,
            "Usage: lethe eval mia --run RUN --members FILE --nonmembers FILE [--ref RUN]\n"
            "                      [--out DIR] [--json] [options]\n\n"
            "Membership-inference attacks on a GPT run (a lethe run or a Hugging Face GPT-2\n"
            "directory), as OpenUnlearning computes them: LOSS (mean NLL), zlib (NLL over\n"
            "the zlib-compressed length), Min-K%% and Min-K%%++ (the lowest k of the token\n"
            "log-probabilities, raw or normalised by the next-token distribution),\n"
            "reference (NLL minus the reference model's NLL) and gradient norm; per attack\n"
            "the ROC AUC between members and non-members (1: members told apart, 0.5: not)\n"
            "and the TPR at 1%% and 5%% FPR; exact memorisation and extraction strength per\n"
            "text. A FILE ending .jsonl holds JSON Lines with a \"text\" (or JSON strings),\n"
            "one ending .json a JSON array of them (MUSE's privleak/*.json), any other\n"
            "FILE one text per line; blank lines are skipped. Writes\n"
            "MIA_EVAL.json (per text) and MIA_SUMMARY.json. Definitions: docs/mia.md.\n\n"
            "  --run RUN          the model to attack\n"
            "  --members FILE     texts the model was trained on (the forget set)\n"
            "  --nonmembers FILE  texts it was not trained on (the holdout set)\n"
            "  --ref RUN          a reference model with the same tokenizer (a retain\n"
            "                     model): the reference attack\n"
            "  --out DIR          where to write the files, created if needed (default: RUN)\n"
            "  --json             print the summary as JSON\n"
            "  --k X              Min-K%% and Min-K%%++'s fraction of tokens, in (0, 1] (%g)\n"
            "  --batch N          texts per forward (%d)\n"
            "  --no-gradnorm      skip the gradient-norm attack (one backward per text)\n"
            "  --fit              cut a text longer than the context to the tokens it holds\n"
            "                     (as eval muse does) instead of refusing it\n"
            "  --quiet            accepted as by every verb\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n",
            d.k, d.batch);
}

enum { O_RUN = 256, O_MEMBERS, O_NONMEMBERS, O_REF, O_OUT, O_JSON, O_K, O_BATCH, O_NOGRAD, O_QUIET, O_FIT };

static int parse(int argc, char **argv, lethe_lm_mia_run_cfg *c, int *json)
{
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},   {"members", 1, 0, O_MEMBERS}, {"nonmembers", 1, 0, O_NONMEMBERS},
        {"ref", 1, 0, O_REF},   {"out", 1, 0, O_OUT},         {"json", 0, 0, O_JSON},
        {"k", 1, 0, O_K},       {"batch", 1, 0, O_BATCH},     {"no-gradnorm", 0, 0, O_NOGRAD},
        {"fit", 0, 0, O_FIT},
        {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    lethe_lm_mia_run_defaults(c);
    long batch = c->batch;
    const cli_long_opt ints[] = {{O_BATCH, &batch, 1, 100000}};
    const cli_real_opt reals[] = {{O_K, &c->k, 1e-9, 1}};
    cli_getopt_begin();
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, ch, optarg, ints, 1, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (ch) {
        case O_RUN: c->run = optarg; break;
        case O_MEMBERS: c->members = optarg; break;
        case O_NONMEMBERS: c->nonmembers = optarg; break;
        case O_REF: c->ref = optarg; break;
        case O_OUT: c->out = optarg; break;
        case O_JSON: *json = 1; break;
        case O_NOGRAD: c->no_gradnorm = 1; break;
        case O_FIT: c->fit = 1; break;
        case O_QUIET: break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    c->batch = (int)batch;
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!c->run || !c->members || !c->nonmembers)
        return cli_usage(VERB, "--run, --members and --nonmembers are required");
    return 0;
}

int cmd_eval_mia(int argc, char **argv)
{
    lethe_lm_mia_run_cfg c;
    int json = 0;
    int rc = parse(argc, argv, &c, &json);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cJSON *sum = NULL;
    lethe_status st = lethe_lm_mia_run(&c, &sum);
    return cli_eval_done(VERB, st, sum, json, c.out ? c.out : c.run, "MIA", 1);
}
