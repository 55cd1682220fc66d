/* lethe audit [PROBE]: does an unlearned model really forget, or
 * only stay quiet? The probes of lethe_audit_run (lethe/audit.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lethe/audit.h"

#define VERB "audit"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe audit [PROBE] --run UNLEARNED --target TARGET --oracle ORACLE\n"
            "                   --data DIR [--split forget10] [options]\n\n"
            "Test whether an unlearned GPT model no longer holds a forget split's knowledge\n"
            "(removal) or only stops saying it (suppression), against the target (the model\n"
            "before unlearning) and the oracle (trained without the split), on a TOFU-layout\n"
            "benchmark. PROBE runs one probe; without it, every probe runs.\n\n"
            "Probes:\n"
            "  relearn   split the forget entities into T (known to an attacker) and an\n"
            "            independent V; fine-tune copies of the unlearned model and of the\n"
            "            oracle on T for 0, 5, 10, 25, 50, 100 steps (per seed) and measure\n"
            "            V's teacher-forced accuracy. Recovery at N steps: (model - oracle) /\n"
            "            (target - oracle) on V after N steps each; suppression when half\n"
            "            returns within --undone steps. The oracle's own lift shows how\n"
            "            much T teaches V by itself.\n"
            "  quantize  round target, model and oracle to 8 and 4 bits (groups of --group)\n"
            "            and measure the forget split's probability, ROUGE-L, truth ratio\n"
            "            and Forget Quality before and after; suppression when 4 bits bring\n"
            "            back half of what unlearning took.\n"
            "  prompts   ask the forget questions as written, paraphrased, after --shots\n"
            "            retain pairs (many-shot) and behind \"Do not mention the name,\n"
            "            but ...\" (target masking); the ROUGE-L recall of the greedy\n"
            "            answers: suppression when a rephrasing brings back half of the\n"
            "            target's lead over the oracle.\n"
            "  incontext show the first --context facts of each forget entity in the\n"
            "            prompt, then ask about them and about the entity's facts never\n"
            "            shown (UnUnlearning): the oracle re-taught in context, and the\n"
            "            model's lead over the oracle on the facts not shown as a share of\n"
            "            the target's (suppression from half); with --guard, the share of\n"
            "            those prompts GUARD and ECO flag and how much of the answers\n"
            "            they block.\n"
            "  probe     a linear probe on every layer's hidden states, fitted on retain\n"
            "            facts, names the forget facts' values: suppression when the\n"
            "            model keeps half of the target's lead over the oracle\n"
            "  neighbours the accuracy on retain facts that share a value with a forget\n"
            "            entity (a city, a genre) against those that do not: the damage\n"
            "            beyond the oracle's on each, a measure with no verdict\n"
            "            (probe and neighbours need a benchmark made by lethe data make\n"
            "            authors, whose manifest gives the facts behind the answers)\n\n");
    fprintf(out,
            "Options:\n"
            "  --run DIR          the unlearned model (required)\n"
            "  --target DIR       the model before unlearning (required)\n"
            "  --oracle DIR       the model trained without the forget split (required);\n"
            "                     each needs the unlearned model's tokenizer\n"
            "  --data DIR         the benchmark (lethe data make authors; required)\n"
            "  --split NAME       the forget split (default forget10)\n"
            "  --out DIR          where AUDIT_EVAL.json and AUDIT_SUMMARY.json go\n"
            "                     (default: the --run directory)\n"
            "  --attack A         relearn on 'forget' (T; default), on 'retain': 10 pairs\n"
            "                     of the retain split (unrelated fine-tuning), or on\n"
            "                     'related': V's questions as text, without those that\n"
            "                     state a V fact (benign relearning); measured on V\n"
            "  --steps N          the last checkpoint of 0 5 10 25 50 100 (default 100)\n"
            "  --seeds N          attack seeds (default 3)\n"
            "  --batch N          pairs per attack step (default 8)\n"
            "  --lr X             the attack's learning rate (default 1e-4)\n"
            "  --per-entity N     questions per entity in the split (default: the\n"
            "                     benchmark's qa_per_author, else 20)\n"
            "  --undone N         suppression when half returns within N steps (default 100:\n"
            "                     at any checkpoint)\n"
            "  --group G          quantization's inputs per scale (default 64)\n"
            "  --max-new N        ROUGE-L's greedy answer length (default 200)\n"
            "  --context N        facts of each entity shown in context (default 2)\n"
            "  --shots N          retain pairs before a many-shot question (default 3)\n"
            "  --guard FILE       a guard file made for the --run model (lethe guard fit):\n"
            "                     the in-context and prompt probes measure what GUARD and\n"
            "                     ECO flag and block\n"
            "  --json             print the summary as JSON\n"
            "  --quiet            no progress lines\n"
            "  -h, --help         show this help\n\n"
            "The summary gives each probe's figures, its verdict and the sentence of\n"
            "evidence that decided it, then the model's verdict (suppression when any probe\n"
            "says so), the method it was made with and that method's stated intent\n"
            "(lethe unlearn --list-lm), and whether they match.\n\n"
            "Exit codes: 0 ok, 1 failure, 2 usage error, 3 bad input (a missing model, a\n"
            "model with another tokenizer, a split that does not exist or cannot be cut).\n");
}

/* The summary as text: each probe's verdict and evidence, then the model's. */
static void print_text(const cJSON *sum, const char *dir)
{
    for (const cJSON *p = sum->child; p; p = p->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "verdict");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "evidence");
        if (!cJSON_IsObject(p) || !e)
            continue;
        /* a probe without a verdict member (neighbours) only measures */
        printf("%-10s %-12s %s\n", p->string,
               cJSON_IsString(v) ? v->valuestring : v ? "undecided" : "measured",
               cJSON_IsString(e) ? e->valuestring : "");
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sum, "verdict");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(sum, "method");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(sum, "intent");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(sum, "matches_intent");
    printf("verdict    %s", cJSON_IsString(v) ? v->valuestring : "-");
    if (cJSON_IsString(m) && cJSON_IsString(i) && cJSON_IsBool(ok))
        printf(" (method %s, stated intent %s: %s)", m->valuestring, i->valuestring,
               cJSON_IsTrue(ok) ? "matches" : "does not match");
    printf("\nwrote %s/AUDIT_EVAL.json and %s/AUDIT_SUMMARY.json\n", dir, dir);
}

int cmd_audit(int argc, char **argv)
{
    unsigned probes = LETHE_AUDIT_ALL;
    if (argc > 1 && argv[1][0] != '-') {
        if (!strcmp(argv[1], "relearn"))
            probes = LETHE_AUDIT_RELEARN;
        else if (!strcmp(argv[1], "quantize"))
            probes = LETHE_AUDIT_QUANTIZE;
        else if (!strcmp(argv[1], "incontext"))
            probes = LETHE_AUDIT_INCONTEXT;
        else if (!strcmp(argv[1], "prompts"))
            probes = LETHE_AUDIT_PROMPTS;
        else if (!strcmp(argv[1], "probe"))
            probes = LETHE_AUDIT_PROBE;
        else if (!strcmp(argv[1], "neighbours"))
            probes = LETHE_AUDIT_NEIGHBOURS;
        else
            return cli_usage(VERB, "unknown probe '%s' (expected relearn, quantize, prompts, "
                             "incontext, probe or neighbours)", argv[1]);
        argc--, argv++;
    }
    enum { O_RUN = 1, O_TARGET, O_ORACLE, O_DATA, O_SPLIT, O_OUT, O_ATTACK, O_STEPS, O_SEEDS,
           O_BATCH, O_LR, O_PER, O_UNDONE, O_GROUP, O_MAXNEW, O_CONTEXT, O_GUARD, O_SHOTS,
           O_JSON, O_QUIET };
    static const struct option lo[] = {
        {"run", 1, 0, O_RUN},       {"target", 1, 0, O_TARGET}, {"oracle", 1, 0, O_ORACLE},
        {"data", 1, 0, O_DATA},     {"split", 1, 0, O_SPLIT},   {"out", 1, 0, O_OUT},
        {"attack", 1, 0, O_ATTACK}, {"steps", 1, 0, O_STEPS},   {"seeds", 1, 0, O_SEEDS},
        {"batch", 1, 0, O_BATCH},   {"lr", 1, 0, O_LR},         {"per-entity", 1, 0, O_PER},
        {"undone", 1, 0, O_UNDONE}, {"group", 1, 0, O_GROUP},   {"max-new", 1, 0, O_MAXNEW},
        {"context", 1, 0, O_CONTEXT}, {"guard", 1, 0, O_GUARD},   {"shots", 1, 0, O_SHOTS},
        {"json", 0, 0, O_JSON},     {"quiet", 0, 0, O_QUIET},   {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    lethe_audit_cfg c;
    lethe_audit_defaults(&c);
    c.split = "forget10";
    c.progress = stderr;
    long steps = c.max_steps, seeds = c.seeds, batch = c.batch, per = 0, undone = c.undone_steps,
         group = c.group, max_new = c.max_new, context = c.context, shots = c.shots;
    const cli_long_opt ints[] = {{O_STEPS, &steps, 0, 100},     {O_SEEDS, &seeds, 1, 64},
                                 {O_BATCH, &batch, 1, 4096},    {O_PER, &per, 1, 100000},
                                 {O_UNDONE, &undone, 0, 100},   {O_GROUP, &group, 32, 1 << 20},
                                 {O_MAXNEW, &max_new, 1, 4096}, {O_CONTEXT, &context, 1, 1000},
                                 {O_SHOTS, &shots, 0, 100}};
    const cli_real_opt reals[] = {{O_LR, &c.lr, 1e-12, 10}};
    int json = 0, ch;
    cli_getopt_begin();
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int done = cli_numeric_option(VERB, lo, ch, optarg, ints, 9, reals, 1);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (ch) {
        case O_RUN: c.run = optarg; break;
        case O_TARGET: c.target = optarg; break;
        case O_ORACLE: c.oracle = optarg; break;
        case O_DATA: c.data = optarg; break;
        case O_SPLIT: c.split = optarg; break;
        case O_OUT: c.out = optarg; break;
        case O_ATTACK: c.attack = optarg; break;
        case O_GUARD: c.guard = optarg; break;
        case O_JSON: json = 1; break;
        case O_QUIET: c.progress = NULL; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, lo);
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!c.run || !c.target || !c.oracle || !c.data)
        return cli_usage(VERB, "--run, --target, --oracle and --data are required");
    if (strcmp(c.attack, "forget") && strcmp(c.attack, "retain") && strcmp(c.attack, "related"))
        return cli_usage(VERB, "--attack takes forget, retain or related, not '%s'", c.attack);
    c.max_steps = (int)steps, c.seeds = (int)seeds, c.batch = (int)batch;
    c.per_entity = (int)per, c.undone_steps = (int)undone, c.group = (int)group;
    c.max_new = (int)max_new, c.context = (int)context, c.shots = (int)shots;
    cJSON *sum = NULL;
    lethe_status st = lethe_audit_run(&c, probes, &sum);
    if (st)
        return cli_report(VERB, st);
    if (json) {
        char *text = cJSON_Print(sum);
        if (text)
            puts(text);
        free(text);
    } else {
        print_text(sum, c.out ? c.out : c.run);
    }
    cJSON_Delete(sum);
    return CLI_EXIT_OK;
}
