#!/usr/bin/env bash
# Hugging Face GPT-2 directories: lethe score and generate load the tiny HF
# fixture (tests/ref/fixtures/gpt_hf_tiny, made by make_gpt_hf_fixture.py)
# and match its PyTorch twin; a lethe run written with --format hf gives the
# same scores as the same run in lethe's layout (and, with torch, as the twin
# reading the written file); train --init fine-tunes from the fixture; and
# every bad checkpoint or input exits 3 with a one-line message.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
FIX=tests/ref/fixtures/gpt_hf_tiny
REF=$FIX/reference.json
# Tolerance on log-probabilities (float32 forward in both): 1e-4 + 1e-5 |ref|.
TOL_ABS=1e-4 TOL_REL=1e-5

# ids of reference.json's key $1, one sequence per line
ref_lines() { $PY -c 'import json,sys; r=json.load(open(sys.argv[1]))
for s in r[sys.argv[2]]: print(" ".join(map(str, s)) if isinstance(s, list) else s)' "$REF" "$1"; }
# close_to JSONL KEY: score --json output $1 matches reference.json's $2
close_to() {
    if $PY - "$1" "$REF" "$2" "$TOL_ABS" "$TOL_REL" <<'EOF'; then pass; else fail "$1 differs from $2"; fi
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))[sys.argv[3]]
ta, tr = float(sys.argv[4]), float(sys.argv[5])
assert len(got) == len(want), (len(got), len(want))
worst = 0.0
for g, w in zip(got, want):
    assert g["n"] == len(w) == len(g["logprobs"]), (g["n"], len(w))
    for a, b in zip(g["logprobs"], w):
        assert abs(a - b) <= ta + tr * abs(b), (a, b)
        worst = max(worst, abs(a - b))
print("  max |lethe - torch| = %.3g" % worst)
EOF
}
# st_edit SRC DST PYTHON: rewrite safetensors SRC to DST after running PYTHON
# on `t` (name -> [dtype, shape, bytes]) and `meta`.
st_edit() {
    $PY - "$1" "$2" "$3" <<'EOF'
import json, struct, sys
src, dst, code = sys.argv[1:4]
buf = open(src, "rb").read()
n = struct.unpack("<Q", buf[:8])[0]
head = json.loads(buf[8:8 + n])
meta = head.pop("__metadata__", {})
t = {k: [v["dtype"], v["shape"], buf[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]]
     for k, v in head.items()}
exec(code)
out, blobs, off = {"__metadata__": meta}, [], 0
for k in sorted(t):
    d, shape, raw = t[k]
    out[k] = {"dtype": d, "shape": shape, "data_offsets": [off, off + len(raw)]}
    blobs.append(raw)
    off += len(raw)
text = json.dumps(out).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
EOF
}
# bad_dir NAME: a copy of the fixture to spoil
bad_dir() { rm -rf "$TMP/$1"; cp -r "$FIX" "$TMP/$1"; echo "$TMP/$1"; }
# bad3 MESSAGE CMD...: exit 3, one line on stderr holding MESSAGE
bad3() { local msg=$1; shift; expect 3 "$@"; one_line "$ERR"; contains "$ERR" "$msg"; }

for f in model.safetensors config.json vocab.json merges.txt reference.json; do
    if [ -s "$FIX/$f" ]; then pass; else fail "fixture $FIX/$f missing"; fi
done

# ---- the fixture against its PyTorch twin -----------------------------------
ref_lines sequences >"$TMP/seqs.txt"
expect 0 "$LETHE" score --run "$FIX" --tokens "$TMP/seqs.txt" --json
cp "$OUT" "$TMP/score_ids.jsonl"
close_to "$TMP/score_ids.jsonl" logprobs
# texts through vocab.json + merges.txt: the same ids as GPT-2's algorithm
ref_lines texts >"$TMP/texts.txt"
expect 0 "$LETHE" score --run "$FIX" --text "$TMP/texts.txt" --json
cp "$OUT" "$TMP/score_text.jsonl"
close_to "$TMP/score_text.jsonl" text_logprobs
ref_lines text_ids >"$TMP/text_ids.txt"
expect 0 "$LETHE" score --run "$FIX" --tokens "$TMP/text_ids.txt" --json
if cmp -s "$OUT" "$TMP/score_text.jsonl"; then pass; else fail "--text and its ids score differently"; fi
# greedy generation: the twin's tokens
PROMPT=$(ref_lines greedy_prompt | tr '\n' ' ')
WANT=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["greedy_tokens"])' "$REF" | tr -d ' ')
expect 0 "$LETHE" generate --run "$FIX" --tokens "$PROMPT" --max-new 10 --temperature 0 --json
contains "$OUT" "\"tokens\":$WANT"
expect 0 "$LETHE" generate --run "$FIX" --prompt "the winter" --max-new 5 --temperature 0 --json
contains "$OUT" '"text":'

# ---- a lethe run in both layouts ---------------------------------------------
TXT="$TMP/small.txt"
for i in $(seq 1 60); do
    echo "the winter in the north is long and the nights are dark; line $i."
    echo "Another line: on and on, there the river ran into the sea."
done >"$TXT"
TRAIN=(train --model gpt --preset tiny --vocab 300 --seq 32 --batch 2 --steps 4 --quiet)
expect 0 "$LETHE" "${TRAIN[@]}" --data "$TXT" --out "$TMP/rl"
expect 0 "$LETHE" "${TRAIN[@]}" --data "$TXT" --out "$TMP/rh" --format hf
expect 0 "$LETHE" "${TRAIN[@]}" --data "$TXT" --out "$TMP/rh-again" --format hf
for f in model.safetensors config.json vocab.json merges.txt tokenizer.json log.jsonl; do
    if [ -s "$TMP/rh/$f" ]; then pass; else fail "--format hf: $f missing"; fi
    if cmp -s "$TMP/rh/$f" "$TMP/rh-again/$f"; then pass; else fail "--format hf rerun differs in $f"; fi
done
contains "$TMP/rh/config.json" '"model_type":	"gpt2"'
contains "$TMP/rh/config.json" '"architectures":	["GPT2LMHeadModel"]'
contains "$TMP/rh/config.json" '"tie_word_embeddings":	true'
contains "$TMP/rh/config.json" '"lethe":'
if $PY - "$TMP/rh/model.safetensors" <<'EOF'; then pass; else fail "--format hf tensor names or metadata"; fi
import json, struct, sys
buf = open(sys.argv[1], "rb").read()
head = json.loads(buf[8:8 + struct.unpack("<Q", buf[:8])[0]])
meta = head.pop("__metadata__")
assert meta["format"] == "pt", meta
assert all(k.startswith("transformer.") for k in head), sorted(head)[:3]
assert "transformer.h.3.mlp.c_proj.weight" in head and "lm_head.weight" not in head
EOF
expect 0 "$LETHE" score --run "$TMP/rl" --text "$TXT" --json
cp "$OUT" "$TMP/rl.jsonl"
expect 0 "$LETHE" score --run "$TMP/rh" --text "$TXT" --json
if cmp -s "$OUT" "$TMP/rl.jsonl"; then pass; else fail "--format hf scores differ from lethe's layout"; fi
# the HF copy read through vocab.json + merges.txt alone
mkdir -p "$TMP/rh2" && cp "$TMP/rh"/{model.safetensors,config.json,vocab.json,merges.txt} "$TMP/rh2/"
expect 0 "$LETHE" score --run "$TMP/rh2" --text "$TXT" --json
if cmp -s "$OUT" "$TMP/rl.jsonl"; then pass; else fail "vocab.json + merges.txt score differently"; fi
expect 0 "$LETHE" generate --run "$TMP/rl" --prompt "the winter" --max-new 8 --temperature 0 --json
cp "$OUT" "$TMP/gl.json"
expect 0 "$LETHE" generate --run "$TMP/rh2" --prompt "the winter" --max-new 8 --temperature 0 --json
if cmp -s "$OUT" "$TMP/gl.json"; then pass; else fail "generation differs between the layouts"; fi
# the twin reading the written file (when torch is there)
if $PY -c 'import torch' 2>/dev/null; then
    ref_lines text_ids >"$TMP/ids3.txt"
    expect 0 "$LETHE" score --run "$TMP/rh" --tokens "$TMP/ids3.txt" --json
    if $PY - "$TMP/rh" "$TMP/ids3.txt" "$OUT" "$TOL_ABS" "$TOL_REL" <<'EOF'; then pass; else fail "the twin disagrees on the --format hf file"; fi
import json, struct, sys
import numpy as np, torch
sys.path.insert(0, "tests/ref")
import make_gpt_hf_fixture as m
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
m.CFG = {k: cfg[k] for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")}
buf = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", buf[:8])[0]
head = json.loads(buf[8:8 + n]); head.pop("__metadata__")
p = {k[len("transformer."):]: torch.from_numpy(np.frombuffer(
         buf[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"]).copy())
     for k, v in head.items()}
seqs = [list(map(int, l.split())) for l in open(sys.argv[2]) if l.strip()]
got = [json.loads(l) for l in open(sys.argv[3])]
ta, tr = float(sys.argv[4]), float(sys.argv[5])
for s, g in zip(seqs, got):
    for a, b in zip(g["logprobs"], m.token_logprobs(p, s)):
        assert abs(a - b) <= ta + tr * abs(b), (a, b)
EOF
else
    echo "  (no torch: the twin's check of the --format hf file skipped)"
fi

# ---- fine-tuning with --init ------------------------------------------------
FT=(train --model gpt --data "$TXT" --seq 16 --batch 2 --steps 3 --quiet --json)
expect 0 "$LETHE" "${FT[@]}" --init "$FIX" --out "$TMP/ft"
contains "$OUT" '"preset":"custom"'
contains "$OUT" '"vocab_size":264'
contains "$TMP/ft/config.json" "\"init\":	\"$FIX\""
expect 0 "$LETHE" score --run "$TMP/ft" --tokens "$TMP/seqs.txt" --json
if cmp -s "$OUT" "$TMP/score_ids.jsonl"; then fail "--init: the model did not change"; else pass; fi
# the fine-tuned model keeps the fixture's tokenizer: the same ids for the texts
expect 0 "$LETHE" score --run "$TMP/ft" --text "$TMP/texts.txt" --json
if $PY -c 'import json,sys; a=[json.loads(l)["n"] for l in open(sys.argv[1])]; b=[json.loads(l)["n"] for l in open(sys.argv[2])]; assert a == b' "$OUT" "$TMP/score_text.jsonl"; then
    pass; else fail "--init: the tokenizer changed"; fi
# from a run and from an HF copy written by lethe; --format hf output
expect 0 "$LETHE" "${FT[@]}" --init "$TMP/rl" --out "$TMP/ft2" --format hf
contains "$OUT" '"preset":"custom"'
expect 0 "$LETHE" "${FT[@]}" --init "$TMP/ft2" --out "$TMP/ft3"
expect 0 "$LETHE" generate --run "$TMP/ft3" --prompt "the winter" --max-new 4 --json
# usage errors
expect 2 "$LETHE" "${FT[@]}" --init "$FIX" --tokenizer "$TMP/rl/tokenizer.json" --out "$TMP/x"
expect 2 "$LETHE" "${FT[@]}" --init "$FIX" --format safetensors --out "$TMP/x"
expect 2 "$LETHE" "${FT[@]}" --init "$FIX" --vocab 300 --out "$TMP/x"
contains "$ERR" "drop --vocab"
expect 2 "$LETHE" train --model gpt --data "$TXT" --out "$TMP/x"
contains "$ERR" "--init DIR"

# ---- bad inputs: exit 3, one line ---------------------------------------------
# a missing tensor
B=$(bad_dir missing)
st_edit "$FIX/model.safetensors" "$B/model.safetensors" 'del t["transformer.h.1.mlp.c_fc.bias"]'
bad3 "no tensor 'h.1.mlp.c_fc.bias'" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
bad3 "no tensor 'h.1.mlp.c_fc.bias'" "$LETHE" generate --run "$B" --tokens "1 2"
bad3 "no tensor 'h.1.mlp.c_fc.bias'" "$LETHE" "${FT[@]}" --init "$B" --out "$TMP/x"
# a tensor of the wrong shape
B=$(bad_dir shape)
st_edit "$FIX/model.safetensors" "$B/model.safetensors" '
d, s, raw = t["transformer.h.0.attn.c_proj.weight"]
t["transformer.h.0.attn.c_proj.weight"] = [d, [s[0], s[1] // 2], raw[:len(raw) // 2]]'
bad3 "tensor 'transformer.h.0.attn.c_proj.weight' has shape [32, 16], expected [32, 32]" \
    "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
# an untied lm_head
B=$(bad_dir untied)
st_edit "$FIX/model.safetensors" "$B/model.safetensors" '
d, s, raw = t["lm_head.weight"]; t["lm_head.weight"] = [d, s, bytes(len(raw))]'
bad3 "lm_head.weight differs from wte.weight" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
# config.json against the tensors
cfg_edit() { $PY -c 'import json,sys; c=json.load(open(sys.argv[1])); c.update(json.loads(sys.argv[2])); json.dump(c, open(sys.argv[1], "w"))' "$1" "$2"; }
B=$(bad_dir layers); cfg_edit "$B/config.json" '{"n_layer": 12}'
bad3 "n_layer is 12 but $B/model.safetensors has 2 blocks" \
    "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
bad3 "n_layer is 12" "$LETHE" generate --run "$B" --prompt "the"
B=$(bad_dir embd); cfg_edit "$B/config.json" '{"n_embd": 64}'
bad3 "n_embd is 64 but wte.weight" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
B=$(bad_dir head); cfg_edit "$B/config.json" '{"n_head": 5}'
bad3 "n_head 5 does not divide n_embd 32" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
B=$(bad_dir vocab); cfg_edit "$B/config.json" '{"vocab_size": 50257}'
bad3 "vocab_size is 50257 but wte.weight" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
B=$(bad_dir ctx); cfg_edit "$B/config.json" '{"n_positions": 1024, "n_ctx": 1024}'
bad3 "n_positions is 1024 but wpe.weight" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
B=$(bad_dir llama); cfg_edit "$B/config.json" '{"model_type": "llama"}'
bad3 "model_type 'llama' is not GPT-2" "$LETHE" score --run "$B" --tokens "$TMP/seqs.txt"
# a lethe run whose config.json disagrees with the metadata
rm -rf "$TMP/rlbad"; cp -r "$TMP/rl" "$TMP/rlbad"; cfg_edit "$TMP/rlbad/config.json" '{"n_layer": 3}'
bad3 "n_layer is 3 but the metadata of" "$LETHE" score --run "$TMP/rlbad" --text "$TXT"
# GPT-2's tokenizer needs both files
B=$(bad_dir nomerges); rm "$B/merges.txt"
bad3 "vocab.json without merges.txt" "$LETHE" generate --run "$B" --prompt "the"
# a token id beyond the vocabulary
echo "1 2 264" >"$TMP/big.txt"
bad3 "token 264 is outside the model's vocabulary of 264" \
    "$LETHE" score --run "$FIX" --tokens "$TMP/big.txt"
bad3 "outside the vocabulary" "$LETHE" generate --run "$FIX" --tokens "1 264"
# directories with neither kind of checkpoint
mkdir -p "$TMP/empty"
bad3 "no model.safetensors: neither a lethe run nor a Hugging Face GPT-2 directory" \
    "$LETHE" score --run "$TMP/empty" --tokens "$TMP/seqs.txt"
bad3 "no model.safetensors" "$LETHE" generate --run "$TMP/empty" --tokens "1 2"
bad3 "no model.safetensors" "$LETHE" "${FT[@]}" --init "$TMP/empty" --out "$TMP/x"
touch "$TMP/empty/pytorch_model.bin"
bad3 "pytorch_model.bin is not read" "$LETHE" score --run "$TMP/empty" --tokens "$TMP/seqs.txt"
bad3 "no such directory" "$LETHE" score --run "$TMP/nowhere" --tokens "$TMP/seqs.txt"
# --preset that does not match the checkpoint
bad3 "preset tiny (vocab_size 2048" "$LETHE" "${FT[@]}" --init "$FIX" --preset tiny --out "$TMP/x"
# empty corpora
: >"$TMP/empty.txt"
printf '\n\n' >"$TMP/empty.jsonl"
printf '"" \n{"text": ""}\n' >"$TMP/blank.jsonl"
bad3 "the corpus is empty" "$LETHE" train --model gpt --preset tiny --data "$TMP/empty.txt" \
    --out "$TMP/x" --quiet
bad3 "the corpus is empty" "$LETHE" train --model gpt --preset tiny --data "$TMP/empty.jsonl" \
    --out "$TMP/x" --quiet
bad3 "the corpus is empty" "$LETHE" train --model gpt --preset tiny --data "$TMP/blank.jsonl" \
    --out "$TMP/x" --quiet
bad3 "the corpus is empty" "$LETHE" train --model gpt --init "$FIX" --data "$TMP/empty.txt" \
    --out "$TMP/x" --quiet
if [ -e "$TMP/x" ]; then fail "a failed run left $TMP/x"; else pass; fi

finish
