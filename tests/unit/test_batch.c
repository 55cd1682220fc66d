/* A sample's outputs do not depend on the batch it is evaluated in: the
 * same logits, bit for bit, alone, in small batches and in large ones. This
 * holds where lethe's own GEMM kernel is built (AVX-512); over a general
 * BLAS the summation order may change with the matrix sizes. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "lethe/net.h"
#include "lethe/rng.h"

#ifdef __AVX512F__
static void check_batch_independent(const char *spec)
{
    enum { N = 300 };
    lethe_net *net = lethe_net_init(spec);
    CHECK(net);
    lethe_net_init_params(net, 11);
    long d = net->n_in, v = net->n_out;
    float *x = malloc(sizeof(float) * (size_t)(N * d));
    float *all = malloc(sizeof(float) * (size_t)(N * v));
    lethe_rng r = lethe_rng_init(5, 0);
    for (long i = 0; i < N * d; i++)
        x[i] = lethe_rng_uniformf(&r);
    const float *out = lethe_net_forward(net, x, N, 0, NULL, 0);
    CHECK(out);
    memcpy(all, out, sizeof(float) * (size_t)(N * v));
    static const int sizes[] = {1, 3, 16, 128, 257};
    int differ = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int i = 0; i + sizes[s] <= N; i += sizes[s]) {
            out = lethe_net_forward(net, x + (long)i * d, sizes[s], 0, NULL, 0);
            differ += memcmp(out, all + (long)i * v, sizeof(float) * (size_t)(sizes[s] * v)) != 0;
        }
    free(x);
    free(all);
    lethe_net_free(net);
    CHECK_MSG(differ == 0, "%s: %d batches differ from the same samples in one batch", spec,
              differ);
}

TEST(batch_mlp_outputs_do_not_depend_on_the_batch)
{
    check_batch_independent("in=784;linear=256;relu;linear=256;relu;linear=10");
}

TEST(batch_cnn_outputs_do_not_depend_on_the_batch)
{
    check_batch_independent("in=1x12x12;conv=4;relu;pool;conv=8;relu;pool;linear=20;relu;linear=3");
}
#endif
