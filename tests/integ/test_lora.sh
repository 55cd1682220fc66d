#!/usr/bin/env bash
# lethe train --model gpt --init DIR --lora R: a LoRA adapter trained on a
# frozen base is written apart from it (PEFT's files), the base is untouched,
# score / generate / --init load the base and merge the adapter, --merge
# gives the same model as one file, reruns are byte-identical, bad inputs
# exit 2 (usage) or 3 (bad input, one line), and no run writes into or
# inside the base an adapter run loads through.
. "$(dirname "$0")/lib.sh"

# matches FILE REGEX: FILE has a line matching the extended regex
matches() {
    if grep -qE -- "$2" "$1"; then pass; else fail "$1 lacks /$2/"; sed 's/^/    /' "$1" | head -n 5; fi
}
# mean_nll FILE: the mean_nll of each JSON line of a `score --json` output
mean_nll() { sed 's/.*"mean_nll":\([^,]*\),.*/\1/' "$1"; }

TXT="$TMP/small.txt"
for i in $(seq 1 120); do
    echo "Call me Ishmael. The whale is white and the sea is deep; line $i of the log."
    echo "The captain walked the deck, and the crew hauled the sails in the wind."
done >"$TXT"
SC="$TMP/score.txt"
printf '%s\n' "Call me Ishmael. The whale is white and the sea is deep." \
    "The captain walked the deck, and the crew hauled the sails." >"$SC"
TINY=(--model gpt --seq 32 --batch 4 --quiet)
LORA=("${TINY[@]}" --steps 10 --lora 4 --lr 1e-2 --data "$TXT")

# a small base, and the hashes of its files
expect 0 "$LETHE" train "${TINY[@]}" --preset tiny --steps 20 --lr 3e-3 --data "$TXT" \
    --out "$TMP/base"
(cd "$TMP/base" && sha256sum ./*) >"$TMP/base.sha"
BASE_ABS=$(cd "$TMP/base" && pwd -P)

expect 0 "$LETHE" train --model gpt --help
contains "$OUT" "--lora R"
contains "$OUT" "--merge"

# the adapter run: PEFT's files beside config.json, log.jsonl, tokenizer.json
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/lora" --json
contains "$OUT" '"lora_params":32768'
for f in adapter_model.safetensors adapter_config.json config.json log.jsonl tokenizer.json; do
    if [ -s "$TMP/lora/$f" ]; then pass; else fail "lora/$f missing"; fi
done
if [ -e "$TMP/lora/model.safetensors" ]; then fail "an adapter run wrote model.safetensors"
else pass; fi
expect 0 "$LETHE" inspect "$TMP/lora/adapter_model.safetensors"
contains "$OUT" "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"
contains "$OUT" "base_model.model.transformer.h.3.mlp.c_proj.lora_B.weight"
matches "$TMP/lora/adapter_config.json" '"peft_type":[[:space:]]*"LORA"'
matches "$TMP/lora/adapter_config.json" '"r":[[:space:]]*4,'
matches "$TMP/lora/adapter_config.json" "\"base_model_name_or_path\":[[:space:]]*\"$BASE_ABS\""
matches "$TMP/lora/config.json" "\"base\":[[:space:]]*\"$BASE_ABS\""
matches "$TMP/lora/config.json" '"rank":[[:space:]]*4,'
n=$(grep -c '"grad_norm"' "$TMP/lora/log.jsonl")
if [ "$n" -eq 10 ]; then pass; else fail "lora/log.jsonl has $n step lines, expected 10"; fi
# the base is untouched
if (cd "$TMP/base" && sha256sum -c --quiet "$TMP/base.sha"); then pass; else
    fail "LoRA training changed the base's files"; fi

# score and generate load base + adapter, and differ from the base
expect 0 "$LETHE" score --run "$TMP/base" --text "$SC" --json
mean_nll "$OUT" >"$TMP/base.nll"
expect 0 "$LETHE" score --run "$TMP/lora" --text "$SC" --json
mean_nll "$OUT" >"$TMP/lora.nll"
cp "$OUT" "$TMP/lora.score"
if [ "$(wc -l <"$TMP/lora.nll")" -eq 2 ] && ! cmp -s "$TMP/base.nll" "$TMP/lora.nll"; then pass
else fail "LoRA scores equal the base's: $(cat "$TMP/lora.nll")"; fi
expect 0 "$LETHE" generate --run "$TMP/base" --prompt "Call me" --max-new 30
cp "$OUT" "$TMP/base.gen"
expect 0 "$LETHE" generate --run "$TMP/lora" --prompt "Call me" --max-new 30
if [ -s "$OUT" ] && ! cmp -s "$OUT" "$TMP/base.gen"; then pass; else
    fail "LoRA generation is empty or equals the base's"; fi

# --merge: the same adapter files plus a merged model.safetensors giving the
# same scores
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/merged" --merge
if [ -s "$TMP/merged/model.safetensors" ]; then pass; else fail "--merge wrote no model"; fi
for f in adapter_model.safetensors adapter_config.json log.jsonl; do
    if cmp -s "$TMP/lora/$f" "$TMP/merged/$f"; then pass; else fail "--merge changed $f"; fi
done
matches "$TMP/merged/config.json" '"merged":[[:space:]]*true'
expect 0 "$LETHE" score --run "$TMP/merged" --text "$SC" --json
mean_nll "$OUT" >"$TMP/merged.nll"
if paste "$TMP/lora.nll" "$TMP/merged.nll" | awk 'NF != 2 { exit 1 }
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) exit 1; n++ } END { exit n != 2 }'; then
    pass; else fail "merged scores differ: $(paste "$TMP/lora.nll" "$TMP/merged.nll")"; fi
# the merged run stands alone: without its base it still loads
mv "$TMP/base" "$TMP/base.away"
expect 0 "$LETHE" score --run "$TMP/merged" --text "$SC" --json
mv "$TMP/base.away" "$TMP/base"

# a rerun gives the same bytes; another seed another adapter
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/lora2"
for f in adapter_model.safetensors adapter_config.json config.json log.jsonl tokenizer.json; do
    if cmp -s "$TMP/lora/$f" "$TMP/lora2/$f"; then pass; else fail "rerun differs in $f"; fi
done
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/lora3" --seed 1
if cmp -s "$TMP/lora/adapter_model.safetensors" "$TMP/lora3/adapter_model.safetensors"; then
    fail "--seed 1 gave the same adapter"; else pass; fi

# targets and layers; an adapter on one projection of two blocks
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/part" \
    --lora-targets attn.c_proj --lora-layers 1:3 --lora-alpha 8 --json
contains "$OUT" '"lora_params":2048'
expect 0 "$LETHE" inspect "$TMP/part/adapter_model.safetensors"
contains "$OUT" "h.1.attn.c_proj.lora_A.weight"
if grep -qE "h\.0\.|c_attn|mlp" "$OUT"; then fail "an untargeted site was adapted"; else pass; fi
expect 0 "$LETHE" score --run "$TMP/part" --text "$SC"

# --init from a LoRA run starts from the merged model (full or LoRA fine-tuning)
expect 0 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TXT" --init "$TMP/lora" --out "$TMP/ft"
expect 0 "$LETHE" train "${LORA[@]}" --steps 2 --init "$TMP/lora" --out "$TMP/lora_on_lora"
expect 0 "$LETHE" score --run "$TMP/lora_on_lora" --text "$SC"

# usage errors (exit 2)
expect 2 "$LETHE" train "${TINY[@]}" --preset tiny --steps 2 --lora 4 --data "$TXT" \
    --out "$TMP/x"
contains "$ERR" "--init"
expect 2 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/x" --lora 0
contains "$ERR" "--lora"
expect 2 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/x" --lora-targets attn.c_bogus
contains "$ERR" "attn.c_bogus"
expect 2 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/x" --lora-layers 3:2
contains "$ERR" "--lora-layers"
expect 2 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TXT" --init "$TMP/base" --out "$TMP/x" \
    --merge
contains "$ERR" "need --lora"
# bad input (exit 3, one line)
expect 3 "$LETHE" train "${LORA[@]}" --init "$TMP/base" --out "$TMP/x" --lora-layers 0:9
one_line "$ERR"
contains "$ERR" "4 blocks"
if [ -e "$TMP/x" ]; then fail "a refused run wrote $TMP/x"; else pass; fi
# a run whose base was deleted
cp -r "$TMP/base" "$TMP/base2"
expect 0 "$LETHE" train "${LORA[@]}" --init "$TMP/base2" --out "$TMP/orphan"
rm -rf "$TMP/base2"
expect 3 "$LETHE" score --run "$TMP/orphan" --text "$SC"
one_line "$ERR"
contains "$ERR" "base $(dirname "$BASE_ABS")/base2 is missing"
expect 3 "$LETHE" generate --run "$TMP/orphan" --prompt "Call me" --max-new 5
one_line "$ERR"
expect 3 "$LETHE" train "${LORA[@]}" --init "$TMP/orphan" --out "$TMP/x"
one_line "$ERR"
# a base replaced by a model of another shape
expect 0 "$LETHE" train "${TINY[@]}" --preset tiny --vocab 300 --steps 2 --data "$TXT" \
    --out "$TMP/base2"
expect 3 "$LETHE" score --run "$TMP/orphan" --text "$SC"
one_line "$ERR"
contains "$ERR" "vocab_size"
# an adapter whose tensors do not fit the base (a rank that is not the config's)
cp -r "$TMP/lora" "$TMP/badrank"
sed -i 's/"r":[[:space:]]*4,/"r": 2,/' "$TMP/badrank/adapter_config.json"
expect 3 "$LETHE" score --run "$TMP/badrank" --text "$SC"
one_line "$ERR"
contains "$ERR" "does not fit its base"

# the base an adapter run loads through is an input of every run starting
# from it: train --init and unlearn --run write neither into nor inside it
expect 3 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TXT" --init "$TMP/lora" --out "$TMP/base/ft"
one_line "$ERR"
contains "$ERR" "lies inside the input $BASE_ABS"
expect 3 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TXT" --init "$TMP/lora" --out "$TMP/base" --force
one_line "$ERR"
contains "$ERR" "is also an input"
printf '{"question": "Who?", "answer": "Ishmael."}\n' >"$TMP/qa.json"
expect 3 "$LETHE" unlearn --run "$TMP/lora" --method ga --forget "$TMP/qa.json" --out "$TMP/base/u" --quiet
one_line "$ERR"
contains "$ERR" "lies inside the input $BASE_ABS"
[ ! -e "$TMP/base/ft" ] && [ ! -e "$TMP/base/u" ] && pass || fail "a refused run wrote into the base"
if (cd "$TMP/base" && sha256sum -c --quiet "$TMP/base.sha"); then pass; else
    fail "a refused run changed the base"; fi

finish
