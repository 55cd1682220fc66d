/* lethe eval tofu: TOFU's metrics on a GPT run (lethe/tofu.h, docs/tofu.md):
 * the forget split, the retain evaluation set and the two general-knowledge
 * sets; Forget Quality against an oracle; Model Utility. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/gpt_hf.h"
#include "lethe/lm_unlearn.h"
#include "lethe/tofu.h"

#define VERB "eval tofu"

struct opts {
    const char *run, *oracle, *data, *split, *out, *whp, *mia_ref, *guard, *mode;
    double whp_alpha, mia_k;
    int json, quiet, mia;
    lethe_tofu_opts t;
    lethe_eco_cfg eco;
    lethe_alu_endpoint ep; /* --mode alu */
};

/* WHP's alpha unless given: the unlearning method's. */
static double whp_alpha_default(void)
{
    lethe_lm_cfg c;
    lethe_lm_defaults(LETHE_LM_WHP, &c);
    return c.alpha;
}

static void usage(FILE *out)
{
    lethe_tofu_opts d;
    lethe_tofu_defaults(&d);
    lethe_tofu_run_cfg rd;
    lethe_tofu_run_defaults(&rd);
    fprintf(out,
            "Usage: lethe eval tofu --run RUN --data DIR --split forgetXX [--oracle RUN]\n"
            "                       [--out DIR] [--json] [options]\n\n"
            "TOFU's metrics on a GPT run (a lethe run or a Hugging Face GPT-2 directory):\n"
            "on the forget split (DIR/forgetXX_perturbed.json), the retain evaluation set\n"
            "(retain_perturbed.json) and the general-knowledge sets\n"
            "(real_authors_perturbed.json, world_facts_perturbed.json): length-normalised\n"
            "answer probability, ROUGE-L recall of the greedy answer, truth ratio, exact\n"
            "memorisation and extraction strength; Model Utility (harmonic mean of the\n"
            "three measures on the three non-forget sets); with --oracle, Forget Quality\n"
            "(KS-test p-value between the model's and the oracle's truth ratios on the\n"
            "forget split). Questions are laid out \"Question: Q\\nAnswer:\" as in training.\n"
            "Writes TOFU_EVAL.json (per question) and TOFU_SUMMARY.json. Definitions:\n"
            "docs/tofu.md.\n\n"
            "  --run RUN        the model to evaluate\n"
            "  --data DIR       the benchmark (lethe data make authors, or TOFU's files)\n"
            "  --split NAME     forget01, forget05 or forget10 (any NAME with a\n"
            "                   DIR/NAME_perturbed.json)\n"
            "  --oracle RUN     the model fine-tuned on the retain split only\n"
            "  --out DIR        where to write the files, created if needed (default: RUN)\n"
            "  --json           print the summary as JSON\n"
            "  --max-new N      greedy answer length for ROUGE-L (%d)\n"
            "  --batch N        question-answer pairs per forward (%d)\n"
            "  --arithmetic     truth ratio from the arithmetic mean of the perturbed\n"
            "                   answers' probabilities (TOFU's paper) instead of the\n"
            "                   geometric mean (TOFU's and OpenUnlearning's code)\n"
            "  --no-generate    skip the greedy answers (no ROUGE-L, no Model Utility)\n"
            "  --memorization C exact memorisation and extraction strength: paper (every\n"
            "                   answer token; the default) or openunlearning (without the\n"
            "                   end-of-text token; ES 1/n when no suffix is right)\n"
            "  --whp RUN        evaluate WHP (Who's Harry Potter): RUN is the model of\n"
            "                   --run fine-tuned further on the forget set (lethe unlearn\n"
            "                   --method sft); every logit row z of --run becomes\n"
            "                   z - alpha relu(z_RUN - z), in scoring and in generation\n"
            "  --whp-alpha A    WHP's alpha (%g)\n"
            "  --mia            membership inference on the forget split against its\n"
            "                   holdout set (DIR/holdoutXX.json): the AUC of LOSS, zlib,\n"
            "                   Min-K%%, Min-K%%++ and gradient norm on the answer tokens\n"
            "                   (1: the forget answers are told apart, memorised); not\n"
            "                   with --whp\n"            "  --mia-ref RUN    a reference model with the run's tokenizer (say, the\n"
            "                   retain-only model): the reference attack too (implies --mia)\n"
            "  --mia-k K        the fraction of tokens Min-K%% and Min-K%%++ average (%g)\n",
            d.max_new, d.batch, whp_alpha_default(), rd.mia_k);
    fputs("  --guard GUARD    answer through the guard file GUARD made for RUN (lethe\n"
            "                   guard fit): flagged prompts are decoded by --mode, the\n"
            "                   rest greedily; probabilities stay the model's own. The\n"
            "                   summary adds each set's share of flagged and refused\n"
            "                   questions\n"
            "  --mode M         with --guard: guard (GUARD's constrained beam search),\n"
            "                   eco (greedy with the prompt's entity embeddings corrupted)\n"
            "                   or alu (ALU's agents answer every question, over --endpoint\n"
            "                   or, without it, with RUN's model in this process as the\n"
            "                   chat model; the guard's automaton is their gate and\n"
            "                   audit; the summary counts their calls and tokens)\n"
            "  --endpoint URL   alu: an OpenAI-compatible chat server (say, lethe serve on\n"
            "                   RUN); LETHE_API_KEY, when set, is sent as a bearer token\n"
            "  --endpoint-model M  alu: the requests' \"model\" (default \"default\")\n"
            "  --timeout S      alu: seconds per request (default 60)\n"
            "  --eco-fn F       eco's corruption: noise_first (default), noise_random,\n"
            "                   noise_top, zero_top, flip_first, flip_top\n"
            "  --eco-k K        dimensions corrupted per position (0: all; default 0)\n"
            "  --eco-sigma X    noise strength (default 1)\n"
            "  --paraphrased    answer each forget question's paraphrase instead (TOFU's\n"
            "                   paraphrased_question): leakage under paraphrase\n"
            "  --quiet          no progress lines on stderr (a long evaluation shows them\n"
            "                   every few seconds, per set)\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n", out);

}

enum {
    O_RUN = 256, O_ORACLE, O_DATA, O_SPLIT, O_OUT, O_JSON, O_MAXNEW, O_BATCH, O_ARITH, O_NOGEN,
    O_WHP, O_WHP_ALPHA, O_MEMO, O_QUIET, O_MIA, O_MIA_REF, O_MIA_K, O_GUARD, O_MODE, O_PARA,
    O_ECO_FN, O_ECO_K, O_ECO_SIGMA, O_ENDPOINT, O_EP_MODEL, O_TIMEOUT
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},       {"oracle", 1, 0, O_ORACLE}, {"data", 1, 0, O_DATA},
        {"split", 1, 0, O_SPLIT},   {"out", 1, 0, O_OUT},       {"json", 0, 0, O_JSON},
        {"max-new", 1, 0, O_MAXNEW}, {"batch", 1, 0, O_BATCH}, {"arithmetic", 0, 0, O_ARITH},
        {"no-generate", 0, 0, O_NOGEN}, {"whp", 1, 0, O_WHP}, {"whp-alpha", 1, 0, O_WHP_ALPHA},
        {"memorization", 1, 0, O_MEMO}, {"quiet", 0, 0, O_QUIET}, {"mia", 0, 0, O_MIA},
        {"mia-ref", 1, 0, O_MIA_REF}, {"mia-k", 1, 0, O_MIA_K}, {"guard", 1, 0, O_GUARD},
        {"mode", 1, 0, O_MODE}, {"paraphrased", 0, 0, O_PARA}, {"eco-fn", 1, 0, O_ECO_FN},
        {"eco-k", 1, 0, O_ECO_K}, {"eco-sigma", 1, 0, O_ECO_SIGMA},
        {"endpoint", 1, 0, O_ENDPOINT}, {"endpoint-model", 1, 0, O_EP_MODEL},
        {"timeout", 1, 0, O_TIMEOUT}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    lethe_tofu_defaults(&o->t);
    o->whp_alpha = whp_alpha_default();
    lethe_tofu_run_cfg d;
    lethe_tofu_run_defaults(&d);
    o->mia_k = d.mia_k;
    long max_new = o->t.max_new, batch = o->t.batch, eco_k = 0;
    lethe_eco_defaults(&o->eco);
    lethe_alu_endpoint_defaults(&o->ep);
    o->ep.api_key = getenv("LETHE_API_KEY");
    const cli_long_opt ints[] = {{O_MAXNEW, &max_new, 1, 100000}, {O_BATCH, &batch, 1, 100000},
                                 {O_ECO_K, &eco_k, 0, 1 << 20}};
    const cli_real_opt reals[] = {{O_WHP_ALPHA, &o->whp_alpha, 0, 1e6},
                                  {O_MIA_K, &o->mia_k, 1e-9, 1},
                                  {O_ECO_SIGMA, &o->eco.sigma, 0, 1e12},
                                  {O_TIMEOUT, &o->ep.timeout_s, 0.001, 86400}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, c, optarg, ints, 3, reals, 4);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: o->run = optarg; break;
        case O_ORACLE: o->oracle = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_SPLIT: o->split = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_ARITH: o->t.arithmetic = 1; break;
        case O_NOGEN: o->t.no_generate = 1; break;
        case O_WHP: o->whp = optarg; break;
        case O_MEMO:
            if (!strcmp(optarg, "paper") || !strcmp(optarg, "openunlearning"))
                o->t.memo = *optarg == 'p' ? LETHE_TOFU_MEMO_PAPER : LETHE_TOFU_MEMO_OU;
            else
                return cli_usage(VERB, "--memorization is paper or openunlearning");
            break;
        case O_QUIET: o->quiet = 1; break;
        case O_MIA: o->mia = 1; break;
        case O_MIA_REF: o->mia_ref = optarg; break;
        case O_GUARD: o->guard = optarg; break;
        case O_MODE: o->mode = optarg; break;
        case O_PARA: o->t.paraphrased = 1; break;
        case O_ENDPOINT: o->ep.url = optarg; break;
        case O_EP_MODEL: o->ep.model = optarg; break;
        case O_ECO_FN:
            if (lethe_eco_fn_parse(optarg, &o->eco.fn))
                return cli_usage(VERB, "%s", lethe_error_detail());
            break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    o->t.max_new = (int)max_new, o->t.batch = (int)batch, o->eco.k = (int)eco_k;
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!o->run || !o->data || !o->split)
        return cli_usage(VERB, "--run, --data and --split are required");
    if (strchr(o->split, '/'))
        return cli_usage(VERB, "--split is a name such as forget10, not a path");
    if (!o->guard != !o->mode)
        return cli_usage(VERB, "--guard and --mode go together");
    if (o->guard && o->whp)
        return cli_usage(VERB, "--guard does not combine with --whp");
    if (o->ep.url && !(o->mode && !strcmp(o->mode, "alu")))
        return cli_usage(VERB, "--endpoint goes with --mode alu");
    return 0;
}

int cmd_eval_tofu(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_tofu_run_cfg c;
    lethe_tofu_run_defaults(&c);
    c.run = o.run, c.data = o.data, c.split = o.split, c.oracle = o.oracle, c.out = o.out;
    c.t = o.t;
    c.mia = o.mia, c.mia_ref = o.mia_ref, c.mia_k = o.mia_k;
    c.guard = o.guard, c.guard_mode = o.mode, c.guard_eco = o.eco;
    c.alu_endpoint = o.ep.url ? &o.ep : NULL;
    c.progress = o.quiet ? NULL : stderr;
    /* WHP: the reinforced model's adjustment as the evaluation's logits hook */
    lethe_lm_whp_run whp = {0};
    cJSON *sum = NULL;
    lethe_status st = o.whp ? lethe_lm_whp_open(o.whp, o.whp_alpha, &whp) : LETHE_OK;
    if (o.whp)
        c.logits = &whp.proc, c.note = whp.note;
    if (st == LETHE_OK)
        st = lethe_tofu_run(&c, &sum);
    lethe_lm_whp_close(&whp);
    return cli_eval_done(VERB, st, sum, o.json, o.out ? o.out : o.run, "TOFU", 0);
}
