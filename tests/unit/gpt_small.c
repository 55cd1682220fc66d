/* Small GPT-2 models and a tokenizer for the generation tests. */
#include <string.h>

#include "gpt_small.h"
#include "lethe/rng.h"

const char *train_text =
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat, "
    "and the cat ran to the log while the dog sat still.";

lethe_tokenizer_t *small_tokenizer(void)
{
    size_t len = strlen(train_text);
    lethe_tokenizer_t *t = NULL;
    if (lethe_tokenizer_train(&train_text, &len, 1, 300, NULL, &t) != LETHE_OK)
        return NULL;
    return t;
}

lethe_gpt *small_model(int V, uint64_t seed)
{
    lethe_gpt_config cfg = {V, NPOS, 32, 2, 4};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    if (!g)
        return NULL;
    lethe_gpt_init_params(g, seed);
    float *wte = lethe_gpt_param(g, "wte.weight", NULL, NULL);
    for (long i = 0; i < (long)V * 32; i++)
        wte[i] *= 20.0f;
    return g;
}

void random_tokens(int32_t *t, int n, int V, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 1);
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)lethe_rng_below(&r, (uint32_t)V);
}
