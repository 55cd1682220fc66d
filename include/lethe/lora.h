/* LoRA adapters (Hu et al. 2021) for GPT-2 models (lethe/gpt.h).
 *
 * An adapter of rank r and scale s = alpha / r sits on a chosen subset of
 * the four projections of each block in a layer range. For a weight W of
 * shape (in, out) (Conv1D: y = x W + b) it holds A (in, r) and B (r, out),
 * and the model computes with
 *
 *     W_eff = W0 + s A B
 *
 * where W0 is the base weight, copied into the adapter when it is made.
 * PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming-uniform
 * with a = sqrt(5)), B = 0, so a fresh adapter leaves the model unchanged.
 *
 * The model is not changed in structure: lethe_lora_apply writes W_eff into
 * the model's arena (recomputed from W0 each time, never accumulated), so
 * lethe_gpt_forward / lethe_gpt_backward run as they are. After a backward
 * has accumulated dL/dW_eff into g->grads, lethe_lora_backward gives the
 * exact adapter gradient
 *
 *     dA += s dW_eff B^T,   dB += s A^T dW_eff.
 *
 * The base gradient is therefore still formed in full (the cost of a full
 * fine-tuning backward, plus two small products per adapted weight); only
 * the optimizer state and the trainable set shrink. The adapter also keeps
 * a copy of every adapted base weight (W0).
 *
 * The adapter's parameters and gradients are each one flat array (DESIGN
 * §4.1), laid out site by site (block ascending; within a block c_attn,
 * attn.c_proj, c_fc, mlp.c_proj), A (in, r) then B (r, out) for each, so
 * lethe_optim can train them alone.
 *
 * On disk (lethe_lora_save), PEFT's layout in a run directory:
 *   RUN/adapter_model.safetensors
 *       base_model.model.transformer.h.I.attn.c_attn.lora_A.weight (r, in)
 *       base_model.model.transformer.h.I.attn.c_attn.lora_B.weight (out, r)
 *       ... (PEFT's A and B are the transposes of lethe's)
 *   RUN/adapter_config.json
 *       {"peft_type": "LORA", "r", "lora_alpha", "target_modules",
 *        "fan_in_fan_out": true, "base_model_name_or_path", ...,
 *        "lethe_targets": ["attn.c_attn", ...], "lethe_layers": [BEGIN, END]}
 * See docs/lora.md. */
#ifndef LETHE_LORA_H
#define LETHE_LORA_H

#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* The projections an adapter can sit on (a bitmask). */
enum {
    LETHE_LORA_ATTN_QKV = 1u << 0,  /* attn.c_attn (C, 3C) */
    LETHE_LORA_ATTN_PROJ = 1u << 1, /* attn.c_proj (C, C) */
    LETHE_LORA_MLP_FC = 1u << 2,    /* mlp.c_fc (C, 4C) */
    LETHE_LORA_MLP_PROJ = 1u << 3,  /* mlp.c_proj (4C, C) */
    LETHE_LORA_ALL = 0xfu
};

typedef struct lethe_lora_config {
    int rank;            /* r > 0 */
    float alpha;         /* scale s = alpha / r */
    unsigned targets;    /* LETHE_LORA_* bits; 0 means LETHE_LORA_ALL */
    int layer_begin;     /* blocks [layer_begin, layer_end) */
    int layer_end;       /* <= 0 means n_layer */
} lethe_lora_config;

/* Defaults: rank 8, alpha 16, all four projections, every block. */
void lethe_lora_config_defaults(lethe_lora_config *cfg);

/* The module name of one target bit ("attn.c_attn", "attn.c_proj",
 * "mlp.c_fc", "mlp.c_proj"), or NULL. */
const char *lethe_lora_target_name(unsigned bit);

/* Parse a comma-separated list of module names as above (or "all") into a
 * bitmask. LETHE_ERR_INVALID naming the unknown name. */
lethe_status lethe_lora_parse_targets(const char *list, unsigned *mask);

/* One adapted weight. */
typedef struct lethe_lora_site {
    int layer;
    unsigned target;   /* one LETHE_LORA_* bit */
    int in, out;       /* the weight's shape */
    long w_offset;     /* the weight in the model's params / grads */
    long a_offset;     /* A (in, r) in the adapter's params / grads */
    long b_offset;     /* B (r, out) likewise */
    long w0_offset;    /* W0 (in, out) in w0 */
} lethe_lora_site;

typedef struct lethe_lora {
    lethe_lora_config cfg;  /* as resolved: targets != 0, layer_end > 0 */
    lethe_gpt_config base;  /* the configuration of the model it adapts */
    float scale;            /* alpha / rank */
    int n_sites;
    lethe_lora_site *sites; /* owned */
    long n_params;
    float *params;          /* (n_params) A and B of every site, owned */
    float *grads;           /* (n_params), owned; lethe_lora_backward accumulates here */
    long n_w0;
    float *w0;              /* (n_w0) the base weights, owned */
} lethe_lora;

/* An adapter for g under cfg: W0 is copied from g's current weights (which
 * must be the base weights), A drawn from lethe's Philox under `seed` (site
 * (layer l, target t) reads stream 0x4C6F524100000000 + 4 l + t, in PEFT's
 * element order (r, in)), B and the gradients zero. g is not modified.
 * NULL (detail set) on a bad configuration or out of memory. Free with
 * lethe_lora_free. */
lethe_lora *lethe_lora_init(const lethe_gpt *g, const lethe_lora_config *cfg, uint64_t seed);
void lethe_lora_free(lethe_lora *l); /* NULL is a no-op */

/* LETHE_OK when g has the configuration l was made for; otherwise
 * LETHE_ERR_INVALID saying what differs. The functions below assert it. */
lethe_status lethe_lora_check(const lethe_lora *l, const lethe_gpt *g);

/* Write W_eff = W0 + s A B into each adapted weight of g (from W0, so
 * repeated calls do not accumulate). Call it after every change of A or B,
 * before the forward that should see it. */
void lethe_lora_apply(const lethe_lora *l, lethe_gpt *g);

/* Merge: the same as lethe_lora_apply, named for the end of training: g
 * then holds W0 + s A B as plain weights, so it can be saved with
 * lethe_gpt_save (a merged model) and the adapter dropped. */
void lethe_lora_merge(const lethe_lora *l, lethe_gpt *g);

/* Restore every adapted weight of g to W0, bit for bit. */
void lethe_lora_unmerge(const lethe_lora *l, lethe_gpt *g);

/* Accumulate the adapter gradient from the gradient the model holds for
 * each adapted weight (g->grads, dL/dW_eff, filled by lethe_gpt_backward):
 * dA += s dW B^T, dB += s A^T dW. g->grads is only read; call this once per
 * accumulation of g->grads (backward is linear, so once after several
 * micro-batches is the same as once after each), then zero g->grads. */
void lethe_lora_backward(lethe_lora *l, const lethe_gpt *g);

void lethe_lora_zero_grad(lethe_lora *l);

/* Write dir/adapter_model.safetensors and dir/adapter_config.json into the
 * existing directory dir, each atomically; the same adapter gives the same
 * bytes. base_name (may be NULL) goes to "base_model_name_or_path".
 * LETHE_ERR_IO (dir missing or not writable), LETHE_ERR_NOMEM. */
lethe_status lethe_lora_save(const lethe_lora *l, const char *dir, const char *base_name);

/* Read an adapter saved by lethe_lora_save (or by PEFT for a GPT-2 with
 * fan_in_fan_out, when its targets are a list and its layers contiguous)
 * for the base model g, whose current weights become W0 (load it into the
 * base, not a merged model). g is not modified: call lethe_lora_apply to
 * see the adapter. The rank and every tensor's shape are checked against
 * the configuration and g. On success *out is a new adapter (free with
 * lethe_lora_free). LETHE_ERR_IO (a missing file), LETHE_ERR_NOT_FOUND (a
 * missing key or tensor), LETHE_ERR_FORMAT (a wrong shape, rank, type or
 * an unexpected tensor), LETHE_ERR_UNSUPPORTED (a PEFT option lethe does
 * not implement, such as use_rslora or a regex target), all with the
 * detail set. */
lethe_status lethe_lora_load(const char *dir, const lethe_gpt *g, lethe_lora **out);

LETHE_API_END
#endif
