/* GPT-2 checkpoints as directories: lethe run directories and Hugging Face
 * GPT-2 directories are loaded the same way, and the Hugging Face layout is
 * written.
 *
 * A lethe run directory (lethe train --model gpt) holds model.safetensors
 * (the config in its metadata, names without a prefix), config.json (the
 * run's settings, the five model fields among them) and tokenizer.json.
 *
 * A Hugging Face GPT-2 directory holds model.safetensors (names with or
 * without "transformer."; Conv1D weights (in, out), lethe's layout; maybe an
 * lm_head.weight tied to wte.weight; any float dtype lethe converts),
 * config.json (n_embd, n_layer, n_head, n_positions or n_ctx, vocab_size)
 * and the tokenizer as tokenizer.json or vocab.json + merges.txt.
 *
 * The config: each of the five fields comes from config.json when it names
 * it, else from model.safetensors's metadata, else from the tensors' shapes
 * (n_head then gives head_dim 64, as every GPT-2 size). The sources must
 * agree with each other and with the tensors (wte.weight (vocab_size,
 * n_embd), wpe.weight (n_positions, n_embd), n_layer blocks h.0 .. h.L-1,
 * n_head dividing n_embd); a disagreement is LETHE_ERR_FORMAT naming the
 * field and both values. A missing tensor is LETHE_ERR_NOT_FOUND, a tensor
 * of another shape LETHE_ERR_FORMAT, each naming the tensor (and shapes).
 * lm_head.weight, when present, must equal wte.weight (lethe's head is tied):
 * otherwise LETHE_ERR_UNSUPPORTED. Settings of config.json lethe cannot
 * reproduce (model_type other than "gpt2", an activation other than GELU's
 * tanh form, n_inner other than 4 n_embd, layer_norm_epsilon other than
 * 1e-5, scale_attn_by_inverse_layer_idx, scale_attn_weights false) are
 * LETHE_ERR_UNSUPPORTED.
 *
 * The tokenizer: tokenizer.json when present, otherwise vocab.json +
 * merges.txt; "<|endoftext|>" is made a special token either way (as Hugging
 * Face's GPT-2 tokenizer treats it). Its ids must fit the model's
 * vocabulary. */
#ifndef LETHE_GPT_HF_H
#define LETHE_GPT_HF_H

#include "lethe/gpt.h"
#include "lethe/safetensors.h"
#include "lethe/status.h"
#include "lethe/tokenizer.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* Bits of lethe_gpt_read_config's *have: which fields the file named. */
#define LETHE_GPT_HAVE_VOCAB 1u
#define LETHE_GPT_HAVE_POSITIONS 2u
#define LETHE_GPT_HAVE_EMBD 4u
#define LETHE_GPT_HAVE_LAYER 8u
#define LETHE_GPT_HAVE_HEAD 16u
#define LETHE_GPT_HAVE_ALL 31u

/* Read the model fields of a config.json (lethe's or Hugging Face's):
 * vocab_size, n_positions (or n_ctx), n_embd, n_layer, n_head, each a
 * positive integer where present; fields absent are left 0 and their bits
 * clear in *have. Also checks the settings listed above. LETHE_ERR_IO,
 * _FORMAT (a field that is not a positive integer), _UNSUPPORTED. */
lethe_status lethe_gpt_read_config(const char *path, lethe_gpt_config *cfg, unsigned *have);

/* Load model.safetensors at path with the config cfg (checked against the
 * tensors as above, messages calling it "the config"), or with cfg NULL as
 * lethe_gpt_load does (metadata, then shapes), with the same checks. On
 * success *out is a new model (free with lethe_gpt_free). */
lethe_status lethe_gpt_load_config(const char *path, const lethe_gpt_config *cfg,
                                   lethe_gpt **out);

/* A model and its tokenizer, loaded from a directory. */
typedef struct lethe_gpt_dir {
    lethe_gpt *model;
    lethe_tokenizer_t *tok;  /* NULL when the directory has no tokenizer */
    int hf;                  /* 1 when it looks like Hugging Face's layout (config.json with
                                model_type, "transformer." names or vocab.json) */
    const char *tok_source;  /* "tokenizer.json", "vocab.json + merges.txt" or NULL */
    long eot;                /* the id of the special "<|endoftext|>", or -1 */
} lethe_gpt_dir;

/* Load dir/model.safetensors with its config (dir/config.json, the
 * metadata, the shapes) and, when want_tok, its tokenizer (none is not an
 * error: d->tok is then NULL). A directory without model.safetensors is
 * LETHE_ERR_NOT_FOUND ("neither a lethe run nor a Hugging Face GPT-2
 * directory"); vocab.json without merges.txt (or the reverse) is
 * LETHE_ERR_NOT_FOUND. On failure *d is empty. Free with lethe_gpt_dir_free. */
lethe_status lethe_gpt_dir_load(const char *dir, int want_tok, lethe_gpt_dir *d);
void lethe_gpt_dir_free(lethe_gpt_dir *d); /* frees and empties; NULL members are fine */

/* The directories lethe_gpt_dir_load(dir) reads: dir, then while the one
 * before holds a LoRA adapter and no model.safetensors, the base it records
 * (at most max in all). out[i] are malloc'd (free each); returns how many.
 * A base that cannot be read ends the list (loading then reports it). */
size_t lethe_gpt_dir_sources(const char *dir, char **out, size_t max);

/* Write tok as GPT-2's vocab.json (token strings in GPT-2's byte alphabet,
 * special tokens spelled as their text, in id order) and merges.txt
 * ("#version: 0.2", then one "a b" per merge, in rank order), atomically.
 * LETHE_ERR_UNSUPPORTED when the files cannot express tok (a special token
 * that is not valid UTF-8 or that spells the same string as another token). */
lethe_status lethe_gpt_save_vocab_merges(const lethe_tokenizer_t *tok, const char *vocab_path,
                                         const char *merges_path);

/* Write dir (which must exist) in Hugging Face's GPT-2 layout, each file
 * atomically:
 *   model.safetensors  every tensor as F32 under "transformer." + its name
 *                      (no lm_head.weight: it is tied), metadata
 *                      {"format": "pt"}, the five config fields and meta[]
 *   config.json        GPT2LMHeadModel's config (model_type "gpt2",
 *                      "gelu_new", layer_norm_epsilon 1e-5,
 *                      tie_word_embeddings, bos/eos_token_id the
 *                      "<|endoftext|>" id when tok has it), and under "lethe"
 *                      the JSON object lethe_json when it is not NULL
 *   tokenizer.json, vocab.json, merges.txt   when tok is not NULL (vocab.json
 *                      and merges.txt only when they can express it)
 * LETHE_ERR_INVALID (lethe_json not an object, a metadata key taken),
 * LETHE_ERR_IO, LETHE_ERR_NOMEM. */
lethe_status lethe_gpt_save_hf(const lethe_gpt *g, const lethe_tokenizer_t *tok, const char *dir,
                               const lethe_st_meta *meta, size_t n_meta, const char *lethe_json);

LETHE_API_END
#endif
