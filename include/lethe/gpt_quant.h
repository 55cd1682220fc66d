/* Weight quantization of GPT models: round-to-nearest with per-group scales.
 *
 * Every weight matrix (the token embedding wte, which is also the output
 * head, and each block's c_attn, attn.c_proj, c_fc and mlp.c_proj) is held
 * as a matrix of `rows` outputs by `cols` inputs, and each run of `group`
 * consecutive inputs of a row shares one scale s = max |w| / qmax (qmax 127
 * for 8 bits, 7 for 4 bits); q = round(w / s), clamped to [-qmax - 1,
 * qmax], and w is read back as q s. The position embedding, biases and
 * LayerNorms stay in F32.
 *
 * Layout: 8-bit codes are int8, one per weight. 4-bit codes are packed two
 * to a byte in blocks of 32 inputs: byte b of a block holds input b in its
 * low nibble and input b + 16 in its high nibble, each as q + 8. group is a
 * multiple of 32 and divides n_embd (so also 4 n_embd).
 *
 * File: a quantized model.safetensors holds, for each quantized tensor
 * NAME, NAME.qweight (I8 (rows, cols), or U8 (rows, cols / 2)) and
 * NAME.scales (F32 (rows, cols / group)) instead of NAME, and the metadata
 * "quant_bits" and "quant_group". wte is stored as it is laid out (V, C);
 * the Conv1D weights, (in, out) in F32, are stored transposed (out, in), so
 * each output's inputs are contiguous. Loading such a file
 * (lethe_gpt_load_config, lethe_gpt_dir_load) fills the F32 parameters
 * with the values read back, which every verb uses, and keeps the codes in
 * g->quant: decoding steps (the cached forward's one-row products) then
 * read the codes directly, a quarter (8 bits) or an eighth (4 bits) of the
 * bytes of the F32 weights. */
#ifndef LETHE_GPT_QUANT_H
#define LETHE_GPT_QUANT_H

#include <stdint.h>

#include "lethe/gpt.h"
#include "lethe/safetensors.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* One quantized matrix: rows outputs by cols inputs. */
typedef struct lethe_qmat {
    int rows, cols, bits, group;
    uint8_t *q;     /* rows * cols (8 bits, int8 codes) or rows * cols / 2 bytes (4 bits) */
    float *scales;  /* rows * (cols / group) */
} lethe_qmat;

/* The quantized weights of a model: wte, then per block c_attn,
 * attn.c_proj, c_fc, mlp.c_proj (mats[1 + 4 l + k]). */
typedef struct lethe_gpt_quant {
    int bits, group, n_mats;
    lethe_qmat *mats;
} lethe_gpt_quant;

#define LETHE_QUANT_ATTN 0
#define LETHE_QUANT_ATTN_PROJ 1
#define LETHE_QUANT_FC 2
#define LETHE_QUANT_FC_PROJ 3
/* Block l's matrix k (LETHE_QUANT_*). */
const lethe_qmat *lethe_gpt_quant_block(const lethe_gpt_quant *q, int l, int k);

/* LETHE_OK when bits is 8 or 4 and group a positive multiple of 32 that
 * divides cfg's n_embd; LETHE_ERR_INVALID saying which is wrong otherwise. */
lethe_status lethe_gpt_quant_check(const lethe_gpt_config *cfg, int bits, int group);

/* Quantize g's weights. *out is new (free with lethe_gpt_quant_free). */
lethe_status lethe_gpt_quantize(const lethe_gpt *g, int bits, int group,
                                lethe_gpt_quant **out);
void lethe_gpt_quant_free(lethe_gpt_quant *q); /* NULL is a no-op */

/* Write q's values read back into g's parameters (q made for g's config). */
void lethe_gpt_quant_apply(const lethe_gpt_quant *q, lethe_gpt *g);

/* Attach q to g (g owns it from then on, and frees any it had): decoding
 * reads q from then on. The caller guarantees g's parameters hold q's
 * values (lethe_gpt_quant_apply). */
void lethe_gpt_quant_attach(lethe_gpt *g, lethe_gpt_quant *q);
/* Free and detach g's quantized weights, if any: for code that is about to
 * change g's parameters (training, unlearning), after which they would no
 * longer match. */
void lethe_gpt_quant_drop(lethe_gpt *g);

/* y (rows) = x (cols) m^T, or y += that when accumulate. Rows are shared
 * among threads; each row's sum runs in a fixed order, so the bits do not
 * depend on the thread count. */
void lethe_qgemv(const lethe_qmat *m, const float *x, float *y, int accumulate);

/* Save g with q as a quantized model.safetensors (the layout above; the
 * config in the metadata as lethe_gpt_save writes it, besides meta).
 * Atomic. */
lethe_status lethe_gpt_save_quant(const lethe_gpt *g, const lethe_gpt_quant *q,
                                  const char *path, const lethe_st_meta *meta, size_t n_meta);

/* Read the quantized tensors of st (a file with "quant_bits") into g's
 * parameters and attach them (for the loaders). path labels messages. */
lethe_status lethe_gpt_quant_read(const lethe_safetensors *st, const char *path, lethe_gpt *g);

/* What quantizing a run did. */
typedef struct lethe_quant_result {
    long weights;        /* weights quantized */
    long kept;           /* parameters kept in F32 (wpe, biases, LayerNorms) */
    double rel_error;    /* sqrt(sum (w - read back)^2 / sum w^2) over the weights */
    double max_error;    /* the largest |w - read back| */
    long bytes_before;   /* the F32 weights' bytes: 4 per weight */
    long bytes_after;    /* the codes' and scales' bytes */
} lethe_quant_result;

/* Quantize the GPT run in directory `run` (a lethe run or a Hugging Face
 * GPT-2 directory) into a new run directory `out` (lethe_rundir_begin's
 * rules; force replaces its files): model.safetensors quantized,
 * config.json with a "quantize" object {bits, group, from}, and the
 * tokenizer as tokenizer.json. A run already quantized is refused
 * (LETHE_ERR_INVALID). res (may be NULL) receives the figures above. */
lethe_status lethe_gpt_quantize_run(const char *run, int bits, int group, const char *out,
                                    int force, lethe_quant_result *res);

LETHE_API_END
#endif
