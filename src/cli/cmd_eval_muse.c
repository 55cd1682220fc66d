/* lethe eval muse: MUSE's criteria on a GPT run (lethe/muse_eval.h,
 * docs/muse.md): VerbMem, KnowMem on the forget and retain questions,
 * PrivLeak against an oracle. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/gpt_hf.h"
#include "lethe/lm_unlearn.h"
#include "lethe/muse_eval.h"

#define VERB "eval muse"

struct opts {
    const char *run, *oracle, *data, *out, *whp, *mia_ref, *guard, *mode;
    lethe_eco_cfg eco;
    double whp_alpha, k;
    long verbmem_max_new, knowmem_max_new;
    int json, quiet, mia;
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
    lethe_muse_eval_cfg d;
    lethe_muse_eval_defaults(&d);
    fprintf(out,
            "Usage: lethe eval muse --run RUN --data DIR [--oracle RUN] [--out DIR] [--json]\n"
            "                       [options]\n\n"
            "MUSE's criteria on a GPT run (a lethe run or a Hugging Face GPT-2 directory)\n"
            "over a MUSE-layout directory (lethe data make muse-news|muse-books):\n"
            "VerbMem (ROUGE-L F1 x 100 of greedy continuations of verbmem/forget.json's\n"
            "prompts), KnowMem on knowmem/forget_qa.json and retain_qa.json (few-shot\n"
            "\"Question: Q\\nAnswer: \" prompts; the retain score is the utility), VerbMem\n"
            "on the retain passages (privleak/retain.json cut as verbmem's pairs: the\n"
            "utility a small model shows) and, with --oracle, PrivLeak ((AUC - AUC_oracle)\n"
            "/ AUC_oracle x 100, Min-K%% AUCs of privleak/forget.json against holdout.json\n"
            "in MUSE's convention: 0 when the forget set is memorised). Writes\n"
            "MUSE_EVAL.json (per item) and MUSE_SUMMARY.json. Definitions: docs/muse.md.\n\n"
            "  --run RUN           the model to evaluate\n"
            "  --data DIR          the MUSE-layout directory\n"
            "  --oracle RUN        the model retrained without the forget set\n"
            "  --out DIR           where to write the files, created if needed (default: RUN)\n"
            "  --json              print the summary as JSON\n"
            "  --verbmem-max-new N VerbMem's continuation length in tokens (%d)\n"
            "  --knowmem-max-new N KnowMem's answer length in tokens (%d)\n"
            "  --k K               Min-K%%'s fraction for PrivLeak and the attacks (%g)\n"
            "  --mia               every membership attack of lethe eval mia (LOSS, zlib,\n"
            "                      Min-K%%, Min-K%%++, gradient norm) on the PrivLeak\n"
            "                      passages, forget against holdout: mia_NAME keys\n"
            "  --mia-ref RUN       a reference model with the run's tokenizer: the\n"
            "                      reference attack too (implies --mia)\n"
            "  --whp RUN           evaluate WHP (Who's Harry Potter): RUN is --run\n"
            "                      fine-tuned further on the forget set; every logit row z\n"
            "                      of --run becomes z - alpha relu(z_RUN - z) in generation\n"
            "                      (PrivLeak and memorisation are then not measured)\n"
            "  --whp-alpha A       WHP's alpha (%g)\n"
            "  --guard GUARD       answer through the guard file GUARD made for RUN (lethe\n"
            "                      guard fit on this directory): flagged prompts are\n"
            "                      decoded by --mode, the rest greedily; likelihoods\n"
            "                      (PrivLeak, the attacks) stay the model's own. The\n"
            "                      summary adds each set's share of flagged and refused\n"
            "                      prompts\n"
            "  --mode M            with --guard: guard (GUARD's constrained beam search)\n"
            "                      or eco (greedy with the prompt's embeddings corrupted)\n"
            "  --eco-fn F          eco's corruption: noise_first (default), noise_random,\n"
            "                      noise_top, zero_top, flip_first, flip_top\n"
            "  --eco-k K           dimensions corrupted per position (0: all; default 0)\n"
            "  --eco-sigma X       noise strength (default 1)\n"
            "  --quiet             no progress lines on stderr\n"
            "  -h, --help\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n",
            d.verbmem_max_new, d.knowmem_max_new, d.mink, whp_alpha_default());
}

enum { O_RUN = 256, O_ORACLE, O_DATA, O_OUT, O_JSON, O_VMAX, O_KMAX, O_K, O_WHP, O_WHP_ALPHA,
       O_QUIET, O_MIA, O_MIA_REF, O_GUARD, O_MODE, O_ECO_FN, O_ECO_K, O_ECO_SIGMA };

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},     {"oracle", 1, 0, O_ORACLE}, {"data", 1, 0, O_DATA},
        {"out", 1, 0, O_OUT},     {"json", 0, 0, O_JSON},     {"verbmem-max-new", 1, 0, O_VMAX},
        {"knowmem-max-new", 1, 0, O_KMAX}, {"k", 1, 0, O_K},  {"whp", 1, 0, O_WHP},
        {"whp-alpha", 1, 0, O_WHP_ALPHA}, {"quiet", 0, 0, O_QUIET}, {"mia", 0, 0, O_MIA},
        {"mia-ref", 1, 0, O_MIA_REF},     {"guard", 1, 0, O_GUARD},   {"mode", 1, 0, O_MODE},
        {"eco-fn", 1, 0, O_ECO_FN},       {"eco-k", 1, 0, O_ECO_K},
        {"eco-sigma", 1, 0, O_ECO_SIGMA}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    lethe_muse_eval_cfg d;
    lethe_muse_eval_defaults(&d);
    memset(o, 0, sizeof *o);
    o->whp_alpha = whp_alpha_default();
    o->k = d.mink;
    o->verbmem_max_new = d.verbmem_max_new, o->knowmem_max_new = d.knowmem_max_new;
    long eco_k = 0;
    lethe_eco_defaults(&o->eco);
    const cli_long_opt ints[] = {{O_VMAX, &o->verbmem_max_new, 1, 100000},
                                 {O_KMAX, &o->knowmem_max_new, 1, 100000},
                                 {O_ECO_K, &eco_k, 0, 1 << 20}};
    const cli_real_opt reals[] = {{O_WHP_ALPHA, &o->whp_alpha, 0, 1e6}, {O_K, &o->k, 1e-9, 1},
                                  {O_ECO_SIGMA, &o->eco.sigma, 0, 1e12}};
    cli_getopt_begin();
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, c, optarg, ints, 3, reals, 3);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: o->run = optarg; break;
        case O_ORACLE: o->oracle = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_JSON: o->json = 1; break;
        case O_WHP: o->whp = optarg; break;
        case O_QUIET: o->quiet = 1; break;
        case O_MIA: o->mia = 1; break;
        case O_MIA_REF: o->mia_ref = optarg; break;
        case O_GUARD: o->guard = optarg; break;
        case O_MODE: o->mode = optarg; break;
        case O_ECO_FN:
            if (lethe_eco_fn_parse(optarg, &o->eco.fn))
                return cli_usage(VERB, "%s", lethe_error_detail());
            break;
        case 'h': usage(stdout); return -1;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    o->eco.k = (int)eco_k;
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!o->guard != !o->mode)
        return cli_usage(VERB, "--guard and --mode go together");
    if (o->guard && o->whp)
        return cli_usage(VERB, "--guard does not combine with --whp");
    if (!o->run || !o->data)
        return cli_usage(VERB, "--run and --data are required");
    if ((o->mia || o->mia_ref) && o->whp)
        return cli_usage(VERB, "--mia scores the run's own likelihoods; --whp has none");
    return 0;
}

int cmd_eval_muse(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    lethe_muse_eval_cfg c;
    lethe_muse_eval_defaults(&c);
    c.run = o.run, c.data = o.data, c.oracle = o.oracle, c.out = o.out;
    c.verbmem_max_new = (int)o.verbmem_max_new, c.knowmem_max_new = (int)o.knowmem_max_new;
    c.mink = o.k;
    c.mia = o.mia, c.mia_ref = o.mia_ref;
    c.guard = o.guard, c.guard_mode = o.mode, c.guard_eco = o.eco;
    c.progress = o.quiet ? NULL : stderr;
    /* WHP: the reinforced model's adjustment as the evaluation's logits hook */
    lethe_lm_whp_run whp = {0};
    cJSON *sum = NULL;
    lethe_status st = o.whp ? lethe_lm_whp_open(o.whp, o.whp_alpha, &whp) : LETHE_OK;
    if (o.whp)
        c.logits = &whp.proc, c.note = whp.note;
    if (st == LETHE_OK)
        st = lethe_muse_eval_run(&c, &sum);
    lethe_lm_whp_close(&whp);
    return cli_eval_done(VERB, st, sum, o.json, o.out ? o.out : o.run, "MUSE", 0);
}
