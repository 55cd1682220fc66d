#!/usr/bin/env bash
# lethe train --model gpt: a tiny model on a small text learns (the loss
# falls), reruns are byte-identical, the run directory holds a loadable
# tokenizer.json; JSON Lines corpora with validation; moby when installed;
# bad inputs exit 2 (usage) or 3 (bad input, one line); the run-directory
# rule: an existing run refused unless --force, never into or around an
# input, nothing left by a failed or interrupted run; --quiet.
. "$(dirname "$0")/lib.sh"

# A small text of repeated sentences, written here.
TXT="$TMP/small.txt"
for i in $(seq 1 120); do
    echo "Call me Ishmael. The whale is white and the sea is deep; line $i of the log."
    echo "The captain walked the deck, and the crew hauled the sails in the wind."
done >"$TXT"
TINY=(--model gpt --preset tiny --seq 32 --batch 4 --steps 40 --lr 3e-3 --quiet)

expect 0 "$LETHE" train --model gpt --help
contains "$OUT" "--preset NAME"

expect 0 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/r1" --json
contains "$OUT" '"steps":40'
contains "$OUT" '"tokens":5120'
contains "$OUT" '"tokens_per_second":'
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    if [ -s "$TMP/r1/$f" ]; then pass; else fail "r1/$f missing"; fi
done
# one line per step with step, lr, loss and grad_norm
n=$(grep -c '"grad_norm"' "$TMP/r1/log.jsonl")
if [ "$n" -eq 40 ]; then pass; else fail "log.jsonl has $n step lines, expected 40"; fi
loss_at() { grep '"grad_norm"' "$1" | sed -n "$2p" | sed 's/.*"loss":\([^,]*\),.*/\1/'; }
first=$(loss_at "$TMP/r1/log.jsonl" 1)
last=$(loss_at "$TMP/r1/log.jsonl" 40)
if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 1.0) }'; then pass; else
    fail "loss did not fall: $first -> $last"; fi
contains "$TMP/r1/config.json" '"preset":	"tiny"'
contains "$TMP/r1/config.json" '"data_hash":'
expect 0 "$LETHE" inspect "$TMP/r1/model.safetensors"
contains "$OUT" "h.3.mlp.c_proj.weight"
contains "$OUT" "data_hash"

# byte-identical rerun; another seed differs
expect 0 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/r2"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    if cmp -s "$TMP/r1/$f" "$TMP/r2/$f"; then pass; else fail "rerun differs in $f"; fi
done
expect 0 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/r3" --seed 1
if cmp -s "$TMP/r1/model.safetensors" "$TMP/r3/model.safetensors"; then
    fail "--seed 1 gave the same model"; else pass; fi

# the tokenizer loads; training with it again (its own vocabulary size)
expect 0 "$LETHE" tokenizer encode --tokenizer "$TMP/r1/tokenizer.json" --text hi
V=$(sed -n 's/.*"vocab_size":[^0-9]*\([0-9]*\).*/\1/p' "$TMP/r1/config.json")
expect 0 "$LETHE" train "${TINY[@]}" --steps 5 --data "$TXT" --out "$TMP/r4" \
    --tokenizer "$TMP/r1/tokenizer.json" --vocab "$V"
if cmp -s "$TMP/r1/tokenizer.json" "$TMP/r4/tokenizer.json"; then pass; else
    fail "the given tokenizer was not kept"; fi

# JSON Lines (objects and strings), held-out documents, accumulation
JL="$TMP/docs.jsonl"
for i in $(seq 0 59); do
    if [ $((i % 2)) -eq 0 ]; then
        echo "{\"text\": \"Document $i: the ship sailed on the sea. The whale swam deep.\"}"
    else
        echo "\"Plain document $i, about sails and the wind over the water.\""
    fi
done >"$JL"
expect 0 "$LETHE" train "${TINY[@]}" --steps 10 --accum 2 --data "$JL" --out "$TMP/j" --json
contains "$OUT" '"val_loss":'
contains "$TMP/j/log.jsonl" '"val_loss"'
contains "$TMP/j/config.json" '"n_docs":	60'

# a corpus list: the documents of both parts (1 + 60), the second's ids
# offset, so their validation draws differ from the file alone
expect 0 "$LETHE" train "${TINY[@]}" --steps 2 --data "$TXT,$JL" --out "$TMP/both" --json
contains "$TMP/both/config.json" '"n_docs":	61'
contains "$TMP/both/config.json" "\"data\":	\"$TXT,$JL\""
expect 3 "$LETHE" train "${TINY[@]}" --data "$TXT,,$JL" --out "$TMP/x"
one_line "$ERR"
contains "$ERR" "corpus list"
expect 3 "$LETHE" train "${TINY[@]}" --data "$TXT,$TMP/missing.txt" --out "$TMP/x"
one_line "$ERR"

# moby, a few chapters, when the corpus is installed
if "$LETHE" data info moby-dick 2>/dev/null | grep -q "installed: *yes"; then
    expect 0 "$LETHE" train --model gpt --preset tiny --data moby --limit 6 --vocab 512 \
        --seq 64 --batch 4 --steps 10 --quiet --out "$TMP/moby" --json
    contains "$OUT" '"vocab_size":512'
else
    pass
fi

# usage errors (exit 2)
expect 2 "$LETHE" train --model gpt --data "$TXT" --out "$TMP/x"
contains "$ERR" "--preset"
expect 2 "$LETHE" train --model gpt --preset tiny --out "$TMP/x"
expect 2 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" --batch 0
expect 2 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" --epochs 1
# bad input (exit 3, one line)
expect 3 "$LETHE" train "${TINY[@]}" --data no-such-corpus --out "$TMP/x"
one_line "$ERR"
contains "$ERR" "unknown corpus 'no-such-corpus'"
expect 3 "$LETHE" train --model gpt --preset huge --data "$TXT" --out "$TMP/x"
one_line "$ERR"
expect 3 "$LETHE" train "${TINY[@]}" --data "$TMP/missing.txt" --out "$TMP/x"
one_line "$ERR"
expect 3 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" \
    --tokenizer "$TMP/r1/tokenizer.json"
one_line "$ERR"
contains "$ERR" "vocabulary"
echo 'not json' >"$TMP/bad.jsonl"
expect 3 "$LETHE" train "${TINY[@]}" --data "$TMP/bad.jsonl" --out "$TMP/x"
one_line "$ERR"
contains "$ERR" "bad.jsonl:1"
echo "hi" >"$TMP/short.txt"
expect 3 "$LETHE" train "${TINY[@]}" --data "$TMP/short.txt" --out "$TMP/x"
one_line "$ERR"
if [ -e "$TMP/x/model.safetensors" ]; then fail "a failed run wrote a model"; else pass; fi

# usage errors are one line with the verb's prefix
expect 2 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" --bogus
one_line "$ERR"
contains "$ERR" "lethe train: unknown option '--bogus'"
expect 2 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" --steps
one_line "$ERR"
contains "$ERR" "lethe train: option '--steps' needs a value"
expect 2 "$LETHE" train "${TINY[@]}" --data "$TXT" --out "$TMP/x" --steps 99999999999999999999
one_line "$ERR"
contains "$ERR" "lethe train: --steps 99999999999999999999 is out of range: it takes 1 to 2^40"

# absent PATH: nothing at PATH
absent() { if [ ! -e "$1" ]; then pass; else fail "$1 was left behind"; fi; }
# an existing run is refused and left as it was; --force writes over it, as a
# fresh run would
sum=$(sha256sum <"$TMP/r1/model.safetensors")
expect 3 "$LETHE" train "${TINY[@]}" --steps 5 --data "$TXT" --out "$TMP/r1"
one_line "$ERR"
contains "$ERR" "lethe train: $TMP/r1: already exists"
contains "$ERR" "with --force"
[ "$(sha256sum <"$TMP/r1/model.safetensors")" = "$sum" ] && pass || fail "a refused run changed the old one"
expect 0 "$LETHE" train "${TINY[@]}" --steps 5 --data "$TXT" --out "$TMP/r1" --force
expect 0 "$LETHE" train "${TINY[@]}" --steps 5 --data "$TXT" --out "$TMP/r5"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    cmp -s "$TMP/r1/$f" "$TMP/r5/$f" && pass || fail "--force wrote another $f than a fresh run"
done
# never into, inside or around an input: the init run, the tokenizer, the corpus
sum=$(sha256sum <"$TMP/r1/model.safetensors")
FT=(--model gpt --seq 32 --batch 4 --steps 2 --quiet)
expect 3 "$LETHE" train "${FT[@]}" --init "$TMP/r1" --data "$TXT" --out "$TMP/r1" --force
one_line "$ERR"
contains "$ERR" "is also an input"
expect 3 "$LETHE" train "${FT[@]}" --init "$TMP/r1" --data "$TXT" --out "$TMP/r1/ft"
one_line "$ERR"
contains "$ERR" "lies inside the input $TMP/r1"
absent "$TMP/r1/ft"
[ "$(sha256sum <"$TMP/r1/model.safetensors")" = "$sum" ] && pass || fail "a refused run changed its input"
mkdir "$TMP/tk" && cp "$TMP/r1/tokenizer.json" "$TMP/tk/"
expect 3 "$LETHE" train "${TINY[@]}" --steps 2 --tokenizer "$TMP/tk/tokenizer.json" --vocab "$V" \
    --data "$TXT" --out "$TMP/tk" --force
contains "$ERR" "contains the input $TMP/tk/tokenizer.json"
mkdir -p "$TMP/c/sub" && cp "$TXT" "$TMP/c/sub/text.txt"
expect 3 "$LETHE" train "${TINY[@]}" --steps 2 --data "moby,$TMP/c/sub/text.txt" --out "$TMP/c" --force
contains "$ERR" "contains the input"
# a run that fails once its directory exists leaves none: a loss that diverges
expect 1 "$LETHE" train "${TINY[@]}" --lr 100 --clip 0 --data "$TXT" --out "$TMP/f/deep/run"
one_line "$ERR"
contains "$ERR" "diverged"
absent "$TMP/f"
# SIGINT / SIGTERM mid-training: the process dies by the signal and leaves no
# directory and no temporary file
mkdir "$TMP/sig"
for sig in INT:130 TERM:143; do
    timeout --preserve-status -s "${sig%:*}" 2 "$LETHE" train "${TINY[@]}" --steps 1000000 \
        --data "$TXT" --out "$TMP/sig/run/deep" >"$OUT" 2>"$ERR"
    rc=$?
    [ "$rc" -eq "${sig#*:}" ] && pass || fail "exit $rc after SIG${sig%:*}"
done
[ -z "$(ls -A "$TMP/sig")" ] && pass || fail "left in $TMP/sig: $(ls -AR "$TMP/sig")"
left=$(find "$TMP" -name '*.tmp.*')
[ -z "$left" ] && pass || fail "temporary files left: $left"

# --quiet: nothing on stderr, the same files as without it
Q=(--model gpt --preset tiny --seq 32 --batch 4 --steps 5 --data "$TXT")
expect 0 "$LETHE" train "${Q[@]}" --out "$TMP/loud"
[ -s "$ERR" ] && pass || fail "no notes without --quiet"
expect 0 "$LETHE" train "${Q[@]}" --out "$TMP/quiet" --quiet
[ ! -s "$ERR" ] && pass || fail "--quiet printed: $(head -n 3 "$ERR")"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    cmp -s "$TMP/loud/$f" "$TMP/quiet/$f" && pass || fail "--quiet changed $f"
done

finish
