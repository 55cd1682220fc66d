/* lethe: the command-line entry point and its verb table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lethe/mpi.h"
#include "lethe/gemm.h"
#include "lethe/rundir.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} verbs[] = {
    {"data", cmd_data, "list, describe and install the data sets lethe knows"},
    {"inspect", cmd_inspect, "show a safetensors file's tensors and metadata"},
    {"train", cmd_train, "train a classifier or regressor (or its oracle) into a run directory"},
    {"predict", cmd_predict, "a run's predictions and accuracy or error on a split"},
    {"generate", cmd_generate, "continue a prompt with a GPT run (greedy, sampling, beam search)"},
    {"score", cmd_score, "per-token log-probabilities of sequences under a GPT run"},
    {"eval", cmd_eval, "how well a model forgot a forget set: classify and regress suites"},
    {"fit", cmd_fit, "fit ridge or logistic regression exactly, ready for lethe forget"},
    {"forget", cmd_forget, "remove samples from a ridge (exact) or logistic (certified) run"},
    {"unlearn", cmd_unlearn, "make a trained model forget a split (approximate methods)"},
    {"sisa", cmd_sisa, "sharded training with exact, ledgered deletion (SISA)"},
    {"s3t", cmd_s3t, "sequence-aware sharded training; deletion without retraining (S3T)"},
    {"ledger", cmd_ledger, "show or verify a deletion ledger"},
    {"audit", cmd_audit, "does an unlearned GPT model forget, or only stay quiet? relearning and quantization probes"},
    {"quantize", cmd_quantize, "round a GPT run's weights to 8 or 4 bits (a run every verb loads)"},
    {"guard", cmd_guard, "inference-time unlearning: fit a guard file, add and remove targets"},
    {"serve", cmd_serve, "serve a run over HTTP: OpenAI-compatible completions, predictions, deletions"},
    {"stats", cmd_stats, "KS test, ROC AUC, ROUGE-L, harmonic mean, Wasserstein distance"},
    {"tofu", cmd_tofu, "the TOFU-style pipeline: base, target, oracle, unlearn, evaluate"},
    {"muse", cmd_muse, "the MUSE-style pipeline: target, oracle, unlearn, evaluate, folds"},
    {"tokenizer", cmd_tokenizer, "train, encode and decode byte-level BPE (GPT-2) tokenizers"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help, or a verb's: lethe help VERB"},
};
#define N_VERBS (sizeof verbs / sizeof verbs[0])

static void print_usage(FILE *out)
{
    fprintf(out,
            "lethe %s: a machine-unlearning engine\n\n"
            "Usage: lethe VERB [options]     (lethe VERB --help for a verb's options)\n\n"
            "Verbs:\n",
            LETHE_VERSION);
    for (size_t i = 0; i < N_VERBS; i++)
        fprintf(out, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\nExit codes: 0 ok, 1 failure, 2 usage error, 3 bad input.\n");
}

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: lethe version\n\nPrint lethe's version.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return cli_usage("version", "unexpected argument '%s'", argv[1]);
    printf("lethe %s\n", LETHE_VERSION);
    return CLI_EXIT_OK;
}

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < N_VERBS; i++)
        if (!strcmp(verbs[i].name, name))
            return &verbs[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct verb *v = find_verb(argv[1]);
    if (!v || v->run == cmd_help)
        return cli_usage("help", "unknown verb '%s'", argv[1]);
    char *sub[] = {argv[1], "--help", NULL};
    return v->run(2, sub);
}

int main(int argc, char **argv)
{
    lethe_inflight_handle_signals(); /* Ctrl-C leaves no temporary file or half run */
    lethe_flush_subnormals();        /* before any thread starts, so all inherit it */
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version"))
        return cmd_version(1, argv + 1);
    const struct verb *v = find_verb(name);
    if (!v) {
        fprintf(stderr, "lethe: unknown verb '%s' (see 'lethe --help' for the list of verbs)\n",
                name);
        return CLI_EXIT_USAGE;
    }
    /* several ranks of one other verb would each run the whole command on
       the same files */
    if (v->run != cmd_sisa && lethe_mpi_launched() > 1)
        return cli_usage(name, "only lethe sisa shares its work among the ranks of mpirun; "
                         "run lethe %s as one process (docs/distributed.md)", name);
    return v->run(argc - 1, argv + 1);
}
