/* bench_train: lethe's side of the training benchmark (bench/run.sh).
 *
 * Loads Fashion-MNIST (inputs scaled to [0, 1]), trains an MLP or the small
 * CNN with lethe_train (AdamW, lr 1e-3, weight decay 0.01), evaluates the
 * test accuracy, and prints one JSON object: the training throughput
 * (samples per second of lethe_train alone, data loading and evaluation
 * excluded), the mean training loss of the last epoch and the test accuracy,
 * so that the two sides of the benchmark can be checked to do equal work.
 *
 * Threads: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, or --threads N, which
 * sets both. The JSON reports the counts in force.
 *
 *   bench_train [--model mlp|cnn] [--batch N] [--epochs N] [--limit N]
 *               [--test-limit N] [--threads N] [--seed N] [--data DIR] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "lethe/dataset.h"
#include "lethe/loaders.h"
#include "lethe/net.h"
#include "lethe/train.h"

#define MLP_WIDTHS "784-256-256-10"
#define CNN_SPEC "in=1x28x28;conv=16;relu;pool;conv=32;relu;pool;linear=128;relu;linear=10"
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

typedef struct opts {
    const char *model;
    int batch, epochs, threads;
    long limit, test_limit;
    unsigned long long seed;
    const char *data;
} opts;

static void usage(FILE *out, const opts *o)
{
    fprintf(out,
            "Usage: bench_train [options]\n\n"
            "Train on Fashion-MNIST with lethe and print throughput and accuracy as JSON.\n\n"
            "  --model mlp|cnn   MLP %s (ReLU) or the CNN %s [%s]\n"
            "  --batch N         batch size [%d]\n"
            "  --epochs N        epochs [%d]\n"
            "  --limit N         train on the first N training samples, 0 for all [%ld]\n"
            "  --test-limit N    evaluate on the first N test samples, 0 for all [%ld]\n"
            "  --threads N       OpenMP and OpenBLAS threads, 0 to keep the environment's [%d]\n"
            "  --seed N          initialisation and data-order seed [%llu]\n"
            "  --data DIR        directory of the IDX files [%s]\n",
            MLP_WIDTHS, CNN_SPEC, o->model, o->batch, o->epochs, o->limit, o->test_limit,
            o->threads, o->seed, o->data);
}

/* Images and labels of one split ("train" or "t10k") as a data set; the
 * first `limit` samples when limit > 0. NULL (message printed) on failure. */
static lethe_dataset *load_split(const char *dir, const char *split, long limit)
{
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    lethe_idx img = {0}, lab = {0};
    lethe_dataset *ds = NULL;
    if (lethe_idx_read(ipath, &img) != LETHE_OK || lethe_idx_read(lpath, &lab) != LETHE_OK) {
        fprintf(stderr, "bench_train: %s\n", lethe_error_detail());
        goto done;
    }
    if (img.type != LETHE_IDX_U8 || img.ndim != 3 || lab.type != LETHE_IDX_U8 ||
        lab.ndim != 1 || lab.dims[0] != img.dims[0]) {
        fprintf(stderr, "bench_train: %s, %s: not a ubyte image/label pair\n", ipath, lpath);
        goto done;
    }
    long n = img.dims[0], d = (long)img.dims[1] * img.dims[2];
    if (limit > 0 && limit < n)
        n = limit;
    ds = lethe_dataset_alloc(split, LETHE_TASK_CLASSIFY, n, (int)d, 0);
    if (!ds) {
        fprintf(stderr, "bench_train: %s\n", lethe_error_detail());
        goto done;
    }
    ds->c = 1, ds->h = (int)img.dims[1], ds->w = (int)img.dims[2];
    ds->n_classes = 10;
    for (long i = 0; i < n * d; i++)
        ds->x[i] = img.data[i] * (1.0f / 255.0f);
    for (long i = 0; i < n; i++) {
        ds->y[i] = lab.data[i];
        ds->ids[i] = (uint64_t)i;
    }
done:
    lethe_idx_free(&img);
    lethe_idx_free(&lab);
    return ds;
}

/* Fraction of ds classified correctly, forwarding in batches of 500. */
static double accuracy(lethe_net *net, const lethe_dataset *ds)
{
    long correct = 0;
    for (long i = 0; i < ds->n; i += 500) {
        int B = (int)(ds->n - i < 500 ? ds->n - i : 500);
        const float *z = lethe_net_forward(net, ds->x + i * ds->d, B, 0, NULL, 0);
        if (!z)
            return -1;
        for (int s = 0; s < B; s++) {
            const float *row = z + (long)s * net->n_out;
            int best = 0;
            for (int v = 1; v < net->n_out; v++)
                best = row[v] > row[best] ? v : best;
            correct += best == ds->y[i + s];
        }
    }
    return (double)correct / (double)ds->n;
}

int main(int argc, char **argv)
{
    opts o = {"mlp", 128, 3, 0, 0, 0, 0, DEFAULT_DATA};
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},  {"batch", required_argument, 0, 'b'},
        {"epochs", required_argument, 0, 'e'}, {"limit", required_argument, 0, 'l'},
        {"test-limit", required_argument, 0, 'L'}, {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},   {"data", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'b': o.batch = atoi(optarg); break;
        case 'e': o.epochs = atoi(optarg); break;
        case 'l': o.limit = atol(optarg); break;
        case 'L': o.test_limit = atol(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 's': o.seed = strtoull(optarg, NULL, 10); break;
        case 'd': o.data = optarg; break;
        case 'h': usage(stdout, &o); return 0;
        default: usage(stderr, &o); return 2;
        }
    }
    int is_cnn = !strcmp(o.model, "cnn");
    if ((!is_cnn && strcmp(o.model, "mlp")) || o.batch <= 0 || o.epochs <= 0 || o.threads < 0 ||
        optind != argc) {
        usage(stderr, &o);
        return 2;
    }
    if (o.threads > 0) {
        openblas_set_num_threads(o.threads);
#ifdef _OPENMP
        omp_set_num_threads(o.threads);
#endif
    }
    int omp_threads = 1;
#ifdef _OPENMP
    omp_threads = omp_get_max_threads();
#endif

    int rc = 1;
    lethe_net *net = NULL;
    lethe_dataset *train = load_split(o.data, "train", o.limit);
    lethe_dataset *test = load_split(o.data, "t10k", o.test_limit);
    lethe_rows rows = {0};
    if (!train || !test)
        goto done;
    char spec[512];
    if (is_cnn)
        snprintf(spec, sizeof spec, "%s", CNN_SPEC);
    else if (lethe_net_mlp_spec(spec, sizeof spec, MLP_WIDTHS, "relu", 0.0) != LETHE_OK)
        goto fail;
    if (!(net = lethe_net_init(spec)) || lethe_rows_all(&rows, train->n) != LETHE_OK)
        goto fail;
    lethe_net_init_params(net, o.seed);

    lethe_train_cfg cfg;
    lethe_train_defaults(&cfg); /* AdamW, lr 1e-3, weight decay 0.01 */
    cfg.batch = o.batch;
    cfg.epochs = o.epochs;
    cfg.seed = o.seed;
    cfg.quiet = 1;
    lethe_train_result res;
    if (lethe_train(net, train, &rows, &cfg, NULL, &res) != LETHE_OK)
        goto fail;
    double acc = accuracy(net, test);
    if (acc < 0)
        goto fail;
    double samples = (double)res.n_train * res.epochs;
    printf("{\"side\":\"lethe\",\"model\":\"%s\",\"batch\":%d,\"epochs\":%d,\"n_train\":%ld,"
           "\"n_test\":%ld,\"threads\":%d,\"blas_threads\":%d,\"steps\":%ld,"
           "\"train_seconds\":%.4f,\"samples_per_s\":%.1f,\"final_loss\":%.5f,"
           "\"test_accuracy\":%.4f}\n",
           o.model, o.batch, res.epochs, res.n_train, test->n, omp_threads,
           openblas_get_num_threads(), res.steps, res.seconds, samples / res.seconds,
           res.last_loss, acc);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "bench_train: %s\n", lethe_error_detail());
done:
    lethe_rows_free(&rows);
    lethe_net_free(net);
    lethe_dataset_free(train);
    lethe_dataset_free(test);
    return rc;
}
