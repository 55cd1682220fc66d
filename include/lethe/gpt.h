/* GPT-2 language models over one flat parameter arena.
 *
 * The architecture is GPT-2's: learned token and position embeddings,
 * n_layer pre-LayerNorm blocks  x += attn(ln_1(x)); x += mlp(ln_2(x)),  a
 * final ln_f, and an output head tied to the token embedding (logits =
 * ln_f(x) wte^T). Attention is causal multi-head self-attention with one
 * fused projection c_attn (C -> 3C: queries, keys, values) and an output
 * projection c_proj, scores scaled by 1/sqrt(head_dim). The MLP is
 * C -> 4C -> C with GELU in its tanh form. LayerNorm eps is 1e-5. There is
 * no dropout.
 *
 * Parameters, gradients (and, in the caller, optimizer state) are each one
 * contiguous float array (DESIGN §4.1). Every tensor has its Hugging Face
 * GPT-2 name and layout, so a GPT-2 model.safetensors maps onto the arena
 * name by name:
 *
 *   wte.weight (V, C)   wpe.weight (T, C)
 *   h.I.ln_1.weight (C)  h.I.ln_1.bias (C)
 *   h.I.attn.c_attn.weight (C, 3C)  h.I.attn.c_attn.bias (3C)
 *   h.I.attn.c_proj.weight (C, C)   h.I.attn.c_proj.bias (C)
 *   h.I.ln_2.weight (C)  h.I.ln_2.bias (C)
 *   h.I.mlp.c_fc.weight (C, 4C)     h.I.mlp.c_fc.bias (4C)
 *   h.I.mlp.c_proj.weight (4C, C)   h.I.mlp.c_proj.bias (C)
 *   ln_f.weight (C)  ln_f.bias (C)
 *
 * in that order in the arena (block by block, so a block's parameters are
 * one contiguous range). Weights are stored (in, out), as Hugging Face's
 * Conv1D: y = x W + b.
 *
 * Everything is deterministic: the same parameters and tokens give the same
 * bits whatever the thread count. Threads only share out independent
 * outputs (rows, heads); every reduction over rows runs in a fixed order. */
#ifndef LETHE_GPT_H
#define LETHE_GPT_H

#include <stdint.h>

#include "lethe/safetensors.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* ---- configuration -------------------------------------------------- */

typedef struct lethe_gpt_config {
    int vocab_size;  /* V */
    int n_positions; /* the block size: the longest sequence, T <= n_positions */
    int n_embd;      /* C, a multiple of n_head */
    int n_layer;     /* L */
    int n_head;      /* NH; head_dim = C / NH */
} lethe_gpt_config;

/* Presets (parameter counts with tied embeddings):
 *   "tiny"  V 2048,  T 256,  C 128, L 4,  NH 4    1,088,256 parameters
 *   "small" V 8192,  T 512,  C 256, L 10, NH 8   10,126,336 parameters
 *   "gpt2"  V 50257, T 1024, C 768, L 12, NH 12 124,439,808 parameters
 * tiny and small suit a BPE vocabulary trained by lethe's tokenizer with
 * that many tokens; gpt2 is OpenAI's GPT-2 (124M) and its tokenizer.
 * Unknown names give LETHE_ERR_INVALID. */
lethe_status lethe_gpt_preset(const char *name, lethe_gpt_config *cfg);

/* LETHE_OK when every field is positive and n_embd % n_head == 0; otherwise
 * LETHE_ERR_INVALID naming the field. */
lethe_status lethe_gpt_config_check(const lethe_gpt_config *cfg);

/* Parameters of a configuration: V C + T C + L (12 C^2 + 13 C) + 2 C. */
long lethe_gpt_config_params(const lethe_gpt_config *cfg);

/* ---- the model -------------------------------------------------------- */

#define LETHE_GPT_NAME_MAX 48

/* One named tensor of the arena. */
typedef struct lethe_gpt_tensor {
    char name[LETHE_GPT_NAME_MAX]; /* Hugging Face name, without "transformer." */
    long offset;                   /* first float in params / grads */
    long numel;
    int rank;                      /* 1 or 2 */
    long shape[2];                 /* shape[1] is 1 when rank is 1 */
} lethe_gpt_tensor;

/* Views into the arena for one block (pointers into params). Weights
 * (in, out). */
typedef struct lethe_gpt_block {
    float *ln_1_w, *ln_1_b;         /* (C) */
    float *attn_w, *attn_b;         /* c_attn (C, 3C), (3C) */
    float *attn_proj_w, *attn_proj_b; /* c_proj (C, C), (C) */
    float *ln_2_w, *ln_2_b;         /* (C) */
    float *fc_w, *fc_b;             /* c_fc (C, 4C), (4C) */
    float *fc_proj_w, *fc_proj_b;   /* mlp.c_proj (4C, C), (C) */
} lethe_gpt_block;

/* The activations of one forward of B sequences of T tokens (N = B T
 * positions), each (B, T, ...) row-major, and the scratch of its backward.
 * Grown on demand; valid until the next forward into the same place. */
#define LETHE_GPT_ACTIVATIONS                                                          \
    lethe_gpt_config acts_cfg; /* the architecture the buffers are laid out for */      \
    int B, T;            /* shape of the last forward */                               \
    int cap_B, cap_T;    /* capacity of the buffers below */                           \
    int has_work;        /* the backward scratch is allocated */                       \
    float *acts;         /* one block holding every activation, owned */               \
    float *encoded;      /* (N, C) wte[token] + wpe[t]: the input of block 0 */        \
    float *ln1, *ln1_mean, *ln1_rstd;   /* (L, N, C), (L, N), (L, N) */                \
    float *qkv;          /* (L, N, 3C) */                                              \
    float *att;          /* (L, B, NH, T, T) attention probabilities (0 above the diagonal) */ \
    float *atty;         /* (L, N, C) heads' outputs, before c_proj */                 \
    float *res2;         /* (L, N, C) residual after attention */                      \
    float *ln2, *ln2_mean, *ln2_rstd;   /* (L, N, C), (L, N), (L, N) */                \
    float *fch;          /* (L, N, 4C) c_fc output (GELU input) */                     \
    float *fch_gelu;     /* (L, N, 4C) */                                              \
    float *res3;         /* (L, N, C) residual after the MLP: block l's output */      \
    float *lnf, *lnf_mean, *lnf_rstd;   /* (N, C), (N), (N) */                         \
    float *logits;       /* (N, V) */                                                  \
    float *lse;          /* (N) log-sum-exp of each position's logits */               \
    float *logprobs;     /* (N) log p(target) at each position; 0 where the target is -1 */ \
    int32_t *tokens, *targets; /* the last forward's, copied, (N) each */              \
    int n_targets;       /* positions with a target (!= -1) */                         \
    float loss;          /* mean of -logprobs over those positions; 0 when none */     \
    float *work;         /* backward scratch, one block, owned */                      \
    float *dres, *dln, *dqkv, *datty, *datt, *dfch, *dlogits, *dloss;

/* A forward context: the activations of forwards run through it
 * (lethe_gpt_ctx_forward), apart from any model. Inference takes the model
 * read-only and keeps everything it writes in a context, so one model can
 * serve several threads at once, each with its own context. A context may
 * be used with any model; its buffers follow the architecture. */
typedef struct lethe_gpt_ctx {
    LETHE_GPT_ACTIVATIONS
} lethe_gpt_ctx;

typedef struct lethe_gpt {
    lethe_gpt_config cfg;
    long n_params;
    float *params;   /* (n_params), owned */
    float *grads;    /* (n_params), owned; backward accumulates (+=) here */
    int n_tensors;   /* 2 + 12 L + 2 */
    lethe_gpt_tensor *tensors; /* in arena order, owned */
    /* The quantized weights decoding reads, owned; NULL unless the model was
     * loaded from a quantized file (lethe/gpt_quant.h). */
    struct lethe_gpt_quant *quant;

    /* The model's own context, for training: lethe_gpt_forward fills it and
     * the backward functions read it. Its fields are also the model's own
     * (g->logits is g->own.logits). */
    union {
        lethe_gpt_ctx own;
        struct {
            LETHE_GPT_ACTIVATIONS
        };
    };
} lethe_gpt;

/* A model for cfg with parameters zero (see lethe_gpt_init_params) and
 * gradients zero. NULL (detail set) on a bad config or out of memory. Free
 * with lethe_gpt_free. */
lethe_gpt *lethe_gpt_init(const lethe_gpt_config *cfg);
void lethe_gpt_free(lethe_gpt *g); /* NULL is a no-op */

/* GPT-2's initialisation: every weight matrix and both embeddings
 * ~ N(0, 0.02), except the residual projections (attn.c_proj.weight,
 * mlp.c_proj.weight) ~ N(0, 0.02 / sqrt(2 L)); biases 0; LayerNorm weights
 * 1, biases 0. Tensor i of the table draws from lethe's Philox at
 * (seed, stream i): block k gives elements 2k and 2k + 1 (the two halves of
 * one Box-Muller pair on its two 53-bit uniforms), so the values do not
 * depend on the thread count. */
void lethe_gpt_init_params(lethe_gpt *g, uint64_t seed);

/* The tensor called `name` ("h.3.mlp.c_fc.weight"; a leading "transformer."
 * is accepted): a pointer into params, its shape in shape[0..2) (shape[1]
 * is 1 for vectors) and rank in *rank (either may be NULL). NULL when there
 * is no such tensor. The same offset indexes grads. */
float *lethe_gpt_param(const lethe_gpt *g, const char *name, long shape[2], int *rank);
/* The table entry called `name` (same rules), or NULL. */
const lethe_gpt_tensor *lethe_gpt_find(const lethe_gpt *g, const char *name);
/* Block l's parameter views (0 <= l < L). */
lethe_gpt_block lethe_gpt_block_params(const lethe_gpt *g, int l);

/* Forward B sequences tokens (B, T), T <= n_positions, each token in
 * [0, V). targets (B, T) may be NULL; otherwise each is in [0, V) or -1
 * (no target at that position). Fills the activations above: logits,
 * and with targets the per-position logprobs, n_targets and loss.
 * LETHE_ERR_INVALID (detail set) on a bad shape or token; LETHE_ERR_NOMEM.
 *
 * Hidden states: lethe_gpt_hidden(g, i) gives (B, T, C) for
 *   i = 0          the embeddings (wte + wpe),
 *   1 <= i <= L    the output of block i - 1 (the residual stream; no ln_f),
 *   i = L + 1      ln_f of the last block's output (what the head reads;
 *                  Hugging Face's last hidden state).
 * NULL when i is out of range or nothing was forwarded. */
lethe_status lethe_gpt_forward(lethe_gpt *g, const int32_t *tokens, const int32_t *targets,
                               int B, int T);
const float *lethe_gpt_hidden(const lethe_gpt *g, int i);

/* The same forward with g read-only: the activations go to x (its logits,
 * logprobs, n_targets and loss as above), not to g's own context; the bits
 * are those lethe_gpt_forward gives. Threads may share g as long as each
 * has its own x. No backward runs from a context. */
lethe_status lethe_gpt_ctx_forward(lethe_gpt_ctx *x, const lethe_gpt *g, const int32_t *tokens,
                                   const int32_t *targets, int B, int T);
/* lethe_gpt_ctx_forward without targets that stops once hidden state
 * `hidden` (lethe_gpt_hidden's numbering, 0 .. L + 1) is computed: the
 * blocks after it and the head do not run (x's logits, logprobs and loss
 * are not set; hidden states past it are stale). Those states have the
 * bits the full forward gives. LETHE_ERR_INVALID for a bad index. */
lethe_status lethe_gpt_ctx_forward_to(lethe_gpt_ctx *x, const lethe_gpt *g,
                                      const int32_t *tokens, int B, int T, int hidden);
/* Hidden state i of x's last forward, numbered as in lethe_gpt_hidden. */
const float *lethe_gpt_ctx_hidden(const lethe_gpt_ctx *x, int i);
/* An empty context (buffers come with the first forward). NULL (detail set)
 * when out of memory. Free with lethe_gpt_ctx_free (NULL is a no-op). */
lethe_gpt_ctx *lethe_gpt_ctx_new(void);
void lethe_gpt_ctx_free(lethe_gpt_ctx *x);

/* Backpropagate the mean loss of the last forward (which had targets),
 * accumulating (+=) every parameter's gradient into grads. */
void lethe_gpt_backward(lethe_gpt *g);
/* Backpropagate  sum over positions of dloss[n] * (-logprobs[n])  for any
 * per-position weights dloss (B, T) (positions whose target is -1 are
 * skipped): the mean loss is dloss = 1 / n_targets; gradient ascent,
 * per-token weighting and sequence losses are other choices. */
void lethe_gpt_backward_weighted(lethe_gpt *g, const float *dloss);

/* Backpropagate any loss given its gradient with respect to the logits of
 * the last forward, dlogits (B, T, V) (every position, targets or not): for
 * losses over whole distributions (KL to a reference, distillation). */
void lethe_gpt_backward_logits(lethe_gpt *g, const float *dlogits);
/* Backpropagate a loss on hidden state i of the last forward (numbered as in
 * lethe_gpt_hidden) given its gradient dh (B, T, C): only the parameters
 * below that state receive gradient (representation losses such as RMU's). */
void lethe_gpt_backward_hidden(lethe_gpt *g, int i, const float *dh);

void lethe_gpt_zero_grad(lethe_gpt *g);

/* ---- checkpoints ------------------------------------------------------- */

/* Write every tensor under its name (no prefix) as F32 safetensors, with the
 * config in the metadata ("vocab_size", "n_positions", "n_embd", "n_layer",
 * "n_head") besides meta[0..n_meta) (which may be NULL / 0; its keys must
 * differ from those five, or LETHE_ERR_INVALID). Atomic. */
lethe_status lethe_gpt_save(const lethe_gpt *g, const char *path, const lethe_st_meta *meta,
                            size_t n_meta);
/* Read a model: the config from the metadata when present, otherwise from the
 * tensors' shapes (wte, wpe, the number of blocks) with head_dim 64, as every
 * GPT-2 size. Names with or without "transformer." are accepted; other
 * tensors (lm_head.weight, attention-mask buffers) are ignored. On success
 * *out is a new model (free with lethe_gpt_free). LETHE_ERR_IO, _FORMAT,
 * _NOT_FOUND (a missing tensor) with the detail set. */
lethe_status lethe_gpt_load(const char *path, lethe_gpt **out);

/* ---- kernels ----------------------------------------------------------
 * Forward/backward pairs on raw row-major pointers (DESIGN §4.2): no
 * allocation, gradients d... accumulated with +=. N = rows (positions). */

/* LayerNorm over the last dimension, eps 1e-5. */
void lethe_layernorm_forward(float *out,        /* (N, C) */
                             float *mean,       /* (N) out */
                             float *rstd,       /* (N) out: 1 / sqrt(var + eps) */
                             const float *inp,  /* (N, C) */
                             const float *w,    /* (C) */
                             const float *b,    /* (C) */
                             int N, int C);
void lethe_layernorm_backward(float *dinp,       /* (N, C) */
                              float *dw,         /* (C) */
                              float *db,         /* (C) */
                              const float *dout, /* (N, C) */
                              const float *inp,  /* (N, C) */
                              const float *w,    /* (C) */
                              const float *mean, /* (N) */
                              const float *rstd, /* (N) */
                              int N, int C);

/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * The backward writes dinp = dout gelu'(inp) (not +=), and dinp may be dout:
 * the gradient is then formed in place. */
void lethe_gelu_tanh_forward(float *out, const float *inp, long n);
void lethe_gelu_tanh_backward(float *dinp, const float *dout, const float *inp, long n);

/* Conv1D (Hugging Face layout): out = inp w + b. */
void lethe_conv1d_forward(float *out,       /* (N, OC) */
                          const float *inp, /* (N, C) */
                          const float *w,   /* (C, OC) */
                          const float *b,   /* (OC) or NULL */
                          int N, int C, int OC);
void lethe_conv1d_backward(float *dinp,       /* (N, C) or NULL */
                           float *dw,         /* (C, OC) */
                           float *db,         /* (OC) or NULL */
                           const float *dout, /* (N, OC) */
                           const float *inp,  /* (N, C) */
                           const float *w,    /* (C, OC) */
                           int N, int C, int OC);

/* Causal multi-head attention. qkv rows hold q | k | v, each C wide, head h
 * in columns [h hs, (h + 1) hs) of each. */
void lethe_attention_forward(float *out,       /* (B, T, C) */
                             float *att,       /* (B, NH, T, T) probabilities, 0 above the diagonal */
                             const float *qkv, /* (B, T, 3C) */
                             int B, int T, int C, int NH);
void lethe_attention_backward(float *dqkv,       /* (B, T, 3C) */
                              float *datt,       /* scratch (B, NH, T, T), overwritten */
                              const float *dout, /* (B, T, C) */
                              const float *qkv,  /* (B, T, 3C) */
                              const float *att,  /* (B, NH, T, T) from the forward */
                              int B, int T, int C, int NH);

/* Token plus position embedding: out[b, t] = wte[tokens[b, t]] + wpe[t]. */
void lethe_embed_forward(float *out,            /* (B, T, C) */
                         const int32_t *tokens, /* (B, T), each in [0, V) */
                         const float *wte,      /* (V, C) */
                         const float *wpe,      /* (>= T, C) */
                         int B, int T, int C);
void lethe_embed_backward(float *dwte,           /* (V, C) */
                          float *dwpe,           /* (>= T, C) */
                          const float *dout,     /* (B, T, C) */
                          const int32_t *tokens, /* (B, T) */
                          int B, int T, int C);

/* Softmax cross-entropy over V classes per row. Writes lse[n] (log-sum-exp)
 * and logprobs[n] = logits[n, y] - lse[n] (0 where targets[n] == -1).
 * Returns the number of rows with a target. */
int lethe_xent_forward(float *lse,            /* (N) out */
                       float *logprobs,       /* (N) out */
                       const float *logits,   /* (N, V) */
                       const int32_t *targets, /* (N), each in [0, V) or -1 */
                       int N, int V);
/* dlogits[n] = dloss[n] (softmax(logits[n]) - onehot(y_n)), the gradient of
 * sum_n dloss[n] * (-logprobs[n]); rows without a target, or with dloss 0,
 * are set to 0. Written, not accumulated, unlike the other backward kernels. */
void lethe_xent_backward(float *dlogits,        /* (N, V) */
                         const float *dloss,    /* (N) */
                         const float *logits,   /* (N, V) */
                         const float *lse,      /* (N) from the forward */
                         const int32_t *targets, /* (N) */
                         int N, int V);

LETHE_API_END
#endif
