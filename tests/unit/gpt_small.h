/* Small GPT-2 models and a tokenizer for the generation tests
 * (test_gpt_generate.c, test_gpt_batch.c). */
#ifndef LETHE_TEST_GPT_SMALL_H
#define LETHE_TEST_GPT_SMALL_H

#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/tokenizer.h"

#define NPOS 40 /* the small models' positions */

/* The text small_tokenizer is trained on. */
extern const char *train_text;
/* A tokenizer of 300 ids trained on train_text (NULL on failure). */
lethe_tokenizer_t *small_tokenizer(void);
/* A model of V ids, NPOS positions, C 32, 2 layers, 4 heads, from seed;
 * wte is scaled up so the next-token distributions are not flat. */
lethe_gpt *small_model(int V, uint64_t seed);
/* n ids below V from seed. */
void random_tokens(int32_t *t, int n, int V, uint64_t seed);

#endif
