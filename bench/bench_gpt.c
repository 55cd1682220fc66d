/* bench_gpt: lethe's side of the language-model benchmark (bench/gpt_bench.py).
 *
 *   bench_gpt step  --preset P --batch B --seq T [--steps N] [--threads N]
 *   bench_gpt gen   --preset P [--tokens N] [--threads N] [--quant 8|4] [--group G]
 *   bench_gpt batch --preset P [--tokens N] [--steps N] [--threads N] [--vocab V]
 *                   [--model FILE]
 *
 * step: one training step of a freshly initialised model (GPT-2 init, seed
 * 0) on random tokens: forward, backward of the mean token loss, the global
 * gradient norm, AdamW (lr 1e-4, weight decay 0.1 on every parameter) and
 * zeroed gradients; the first step is a warm-up, the next N are timed one by
 * one. gen: greedy generation of N tokens with the KV cache from a one-token
 * prompt, timed after one untimed warm-up generation; --quant rounds the
 * weights to 8 or 4 bits first (groups of G inputs, default 64) and decodes
 * from the codes (lethe/gpt_quant.h). batch: batched
 * decoding (lethe_gen_step) for B = 1, 2, 4, 8, 16 greedy sequences of N
 * new tokens each from one-token prompts (tokens 0 .. B - 1), stepped
 * together (one forward of B rows per step) and stepped one at a time (B
 * forwards of one row per step, as B independent generations run), each
 * timed N times after a warm-up; --vocab changes the preset's vocabulary,
 * --model reads a model (safetensors) instead of a fresh one.
 *
 * Prints one JSON object: the median and every time, the loss of the first
 * step (both sides start from a uniform-ish distribution: ln V), the peak
 * resident memory of the process (ru_maxrss) and the thread count. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_quant.h"
#include "lethe/optim.h"
#include "lethe/rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *t, int n)
{
    double *s = malloc(sizeof(double) * (size_t)n);
    memcpy(s, t, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static void print_times(const double *t, int n)
{
    printf("\"times\":[");
    for (int i = 0; i < n; i++)
        printf("%s%.6f", i ? "," : "", t[i]);
    printf("]");
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int threads_in_force(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int bench_step(lethe_gpt *g, int B, int T, int steps)
{
    long N = (long)B * T;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(N + 1));
    for (long i = 0; i <= N; i++)
        tok[i] = (int32_t)(lethe_rng_hash(1, 0, (uint64_t)i) % (uint64_t)g->cfg.vocab_size);
    /* targets: the next token of the same random stream */
    int32_t *tgt = tok + 1;
    lethe_optim *opt = lethe_optim_init(LETHE_OPTIM_ADAMW, g->n_params);
    if (!opt)
        return 1;
    opt->weight_decay = 0.1f;
    double *t = malloc(sizeof(double) * (size_t)(steps + 1));
    float first_loss = 0.0f;
    for (int s = 0; s <= steps; s++) {
        double t0 = now();
        if (lethe_gpt_forward(g, tok, tgt, B, T) != LETHE_OK)
            return 1;
        lethe_gpt_backward(g);
        double ss = 0.0;
        for (long i = 0; i < g->n_params; i++)
            ss += (double)g->grads[i] * g->grads[i];
        (void)sqrt(ss);
        lethe_optim_step_zero_grad(opt, g->params, g->grads, 1e-4f);
        t[s] = now() - t0;
        if (s == 0)
            first_loss = g->loss;
    }
    printf("{\"side\":\"lethe\",\"kind\":\"step\",\"batch\":%d,\"seq\":%d,\"threads\":%d,"
           "\"params\":%ld,\"median_s\":%.6f,\"first_loss\":%.5f,\"peak_rss_mb\":%.1f,",
           B, T, threads_in_force(), g->n_params, median(t + 1, steps), first_loss,
           peak_rss_kb() / 1024.0);
    print_times(t + 1, steps);
    printf("}\n");
    free(t);
    free(tok);
    lethe_optim_free(opt);
    return 0;
}

static int bench_gen(lethe_gpt *g, int n_new, int reps)
{
    int32_t prompt[1] = {0};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = n_new;
    double *t = malloc(sizeof(double) * (size_t)(reps + 1));
    int made = 0;
    for (int r = 0; r <= reps; r++) {
        lethe_gen_result res;
        double t0 = now();
        if (lethe_gpt_generate(g, prompt, 1, &o, &res) != LETHE_OK)
            return 1;
        t[r] = now() - t0;
        made = res.n;
        lethe_gen_result_free(&res);
    }
    double med = median(t + 1, reps);
    printf("{\"side\":\"lethe\",\"kind\":\"gen\",\"bits\":%d,\"tokens\":%d,\"threads\":%d,"
           "\"median_s\":%.6f,\"tokens_per_s\":%.1f,\"peak_rss_mb\":%.1f,",
           g->quant ? g->quant->bits : 32, made, threads_in_force(), med, made / med,
           peak_rss_kb() / 1024.0);
    print_times(t + 1, reps);
    printf("}\n");
    free(t);
    return 0;
}

/* Generate n_new greedy tokens for each of B sequences: stepped together
 * (together 1) or one sequence at a time. Returns the seconds of the steps,
 * or a negative number on failure. */
static double decode_batch(const lethe_gpt *g, lethe_gen_batch_t *w, int B, int n_new,
                           int together)
{
    lethe_gen_seq_t *seqs[16] = {0};
    lethe_gen_opts o;
    lethe_gen_defaults(&o);
    o.max_new = n_new;
    double t = -1.0;
    for (int b = 0; b < B; b++) {
        int32_t prompt[1] = {b};
        if (lethe_gen_seq_new(g, prompt, 1, &o, &seqs[b]) != LETHE_OK)
            goto done;
    }
    double t0 = now();
    for (int step = 0; step < n_new; step++) {
        if (together) {
            if (lethe_gen_step(w, seqs, B) != LETHE_OK)
                goto done;
        } else {
            for (int b = 0; b < B; b++)
                if (lethe_gen_step(w, &seqs[b], 1) != LETHE_OK)
                    goto done;
        }
    }
    t = now() - t0;
    for (int b = 0; b < B; b++)
        if (!lethe_gen_seq_done(seqs[b]))
            t = -1.0;
done:
    for (int b = 0; b < B; b++)
        lethe_gen_seq_free(seqs[b]);
    return t;
}

static int bench_batch(const lethe_gpt *g, int n_new, int reps)
{
    static const int sizes[] = {1, 2, 4, 8, 16};
    lethe_gen_batch_t *w = lethe_gen_batch_new(g, 16);
    double *t[2];
    t[0] = malloc(sizeof(double) * (size_t)reps);
    t[1] = malloc(sizeof(double) * (size_t)reps);
    if (!w || !t[0] || !t[1])
        return 1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int B = sizes[i];
        for (int together = 0; together < 2; together++)
            if (decode_batch(g, w, B, n_new, together) < 0) /* warm-up */
                return 1;
        for (int r = 0; r < reps; r++)
            for (int together = 0; together < 2; together++)
                if ((t[together][r] = decode_batch(g, w, B, n_new, together)) < 0)
                    return 1;
        double seq = median(t[0], reps), bat = median(t[1], reps);
        long made = (long)B * n_new;
        printf("{\"side\":\"lethe\",\"kind\":\"batch\",\"batch\":%d,\"tokens\":%ld,"
               "\"vocab\":%d,\"threads\":%d,\"batched_tokens_per_s\":%.1f,"
               "\"sequential_tokens_per_s\":%.1f,\"speedup\":%.3f,\"peak_rss_mb\":%.1f,",
               B, made, g->cfg.vocab_size, threads_in_force(), made / bat, made / seq, seq / bat,
               peak_rss_kb() / 1024.0);
        printf("\"batched\":{");
        print_times(t[1], reps);
        printf("},\"sequential\":{");
        print_times(t[0], reps);
        printf("}}\n");
        fflush(stdout);
    }
    free(t[0]), free(t[1]);
    lethe_gen_batch_free(w);
    return 0;
}

int main(int argc, char **argv)
{
    const char *preset = "tiny";
    const char *model = NULL;
    int B = 16, T = 128, steps = 5, threads = 0, n_new = 200, vocab = 0, bits = 0, group = 64;
    if (argc < 2 || (strcmp(argv[1], "step") && strcmp(argv[1], "gen") &&
                     strcmp(argv[1], "batch"))) {
        fprintf(stderr, "usage: bench_gpt step|gen|batch --preset P [--batch B --seq T "
                        "--steps N] [--tokens N] [--threads N] [--vocab V] [--model FILE]\n");
        return 2;
    }
    const char *kind = argv[1];
    static const struct option lo[] = {{"preset", 1, 0, 'p'}, {"batch", 1, 0, 'b'},
                                       {"seq", 1, 0, 's'},    {"steps", 1, 0, 'n'},
                                       {"threads", 1, 0, 't'}, {"tokens", 1, 0, 'k'},
                                       {"vocab", 1, 0, 'v'},   {"model", 1, 0, 'm'},
                                       {"quant", 1, 0, 'q'},   {"group", 1, 0, 'g'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'p': preset = optarg; break;
        case 'b': B = atoi(optarg); break;
        case 's': T = atoi(optarg); break;
        case 'n': steps = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'k': n_new = atoi(optarg); break;
        case 'v': vocab = atoi(optarg); break;
        case 'm': model = optarg; break;
        case 'q': bits = atoi(optarg); break;
        case 'g': group = atoi(optarg); break;
        default: return 2;
        }
    }
    if (threads > 0) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        openblas_set_num_threads(threads);
    }
    lethe_gpt_config cfg;
    if (lethe_gpt_preset(preset, &cfg) != LETHE_OK || B < 1 || T < 1 || steps < 1 ||
        n_new < 1) {
        fprintf(stderr, "bench_gpt: bad preset or size\n");
        return 2;
    }
    if (vocab > 0)
        cfg.vocab_size = vocab;
    lethe_gpt *g = NULL;
    if (model) {
        if (lethe_gpt_load(model, &g) != LETHE_OK) {
            fprintf(stderr, "bench_gpt: %s\n", lethe_error_detail());
            return 1;
        }
    } else if ((g = lethe_gpt_init(&cfg))) {
        lethe_gpt_init_params(g, 0);
    }
    if (!g)
        return 1;
    if (bits) {
        lethe_gpt_quant *q = NULL;
        if (lethe_gpt_quantize(g, bits, group, &q) != LETHE_OK) {
            fprintf(stderr, "bench_gpt: %s\n", lethe_error_detail());
            lethe_gpt_free(g);
            return 2;
        }
        lethe_gpt_quant_apply(q, g);
        lethe_gpt_quant_attach(g, q);
    }
    if (!strcmp(kind, "batch") && n_new >= g->cfg.n_positions) {
        fprintf(stderr, "bench_gpt: --tokens must be below n_positions %d\n",
                g->cfg.n_positions);
        lethe_gpt_free(g);
        return 2;
    }
    int rc = !strcmp(kind, "step")  ? bench_step(g, B, T, steps)
             : !strcmp(kind, "gen") ? bench_gen(g, n_new, steps)
                                    : bench_batch(g, n_new, steps);
    lethe_gpt_free(g);
    return rc;
}
