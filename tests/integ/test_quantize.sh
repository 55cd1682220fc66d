#!/usr/bin/env bash
# lethe quantize: usage errors (exit 2) and bad input (exit 3, one line);
# then, on a tiny GPT run, 8- and 4-bit runs that generate, score and
# inspect; an existing --out, a quantized run and a group that does not fit
# refused; and a quantized run unlearned into an F32 run.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

expect 0 "$LETHE" quantize --help
contains "$OUT" "Usage: lethe quantize"
expect 0 "$LETHE" help quantize

# Usage errors: 2.
expect 2 "$LETHE" quantize
expect 2 "$LETHE" quantize --run "$TMP/none" --out "$TMP/x"
contains "$ERR" "--bits"
expect 2 "$LETHE" quantize --run "$TMP/none" --bits 3 --out "$TMP/x"
expect 2 "$LETHE" quantize --run "$TMP/none" --bits 6 --out "$TMP/x"
expect 2 "$LETHE" quantize --run "$TMP/none" --bits x --out "$TMP/x"
expect 2 "$LETHE" quantize --run "$TMP/none" --bits 8 --group 0 --out "$TMP/x"
expect 2 "$LETHE" quantize --run "$TMP/none" --bits 8 --out "$TMP/x" extra
expect 2 "$LETHE" quantize --run "$TMP/none" --bits 8 --out "$TMP/x" --bogus

# Bad input: 3, one line, nothing written.
expect 3 "$LETHE" quantize --run "$TMP/none" --bits 8 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "no such directory"
[ ! -e "$TMP/x" ] && pass || fail "a failed quantize left $TMP/x"

cat README.md docs/*.md | head -c 60000 >"$TMP/corpus.txt"
RUN="$TMP/run"
expect 0 "$LETHE" train --model gpt --preset tiny --data "$TMP/corpus.txt" --out "$RUN" \
    --steps 20 --seq 32 --batch 2 --quiet

expect 3 "$LETHE" quantize --run "$RUN" --bits 8 --group 48 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "multiple of 32"
expect 3 "$LETHE" quantize --run "$RUN" --bits 8 --group 256 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "does not divide"
[ ! -e "$TMP/x" ] && pass || fail "a refused group left $TMP/x"
expect 3 "$LETHE" quantize --run "$RUN" --bits 8 --out /dev/null
one_line "$ERR"; contains "$ERR" "not a directory"
[ -c /dev/null ] && pass || fail "/dev/null was replaced"

# 8 and 4 bits: a run with the codes in place of the F32 weights.
expect 0 "$LETHE" quantize --run "$RUN" --bits 8 --out "$TMP/q8" --json
contains "$OUT" '"bits":8'
get() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1"; }
$PY -c 'import sys; e=float(sys.argv[1]); sys.exit(0 if 0 < e < 0.02 else 1)' "$(get rel_error)" \
    && pass || fail "8-bit relative error $(get rel_error)"
expect 0 "$LETHE" quantize --run "$RUN" --bits 4 --group 32 --out "$TMP/q4" --json
$PY -c 'import sys; e=float(sys.argv[1]); sys.exit(0 if 0.02 < e < 0.3 else 1)' "$(get rel_error)" \
    && pass || fail "4-bit relative error $(get rel_error)"
contains "$TMP/q4/config.json" '"quantize":'
[ -f "$TMP/q8/tokenizer.json" ] && pass || fail "no tokenizer in the quantized run"
s_run=$(stat -c %s "$RUN/model.safetensors") s8=$(stat -c %s "$TMP/q8/model.safetensors")
s4=$(stat -c %s "$TMP/q4/model.safetensors")
[ "$((s8 * 3))" -lt "$s_run" ] && [ "$s4" -lt "$s8" ] && pass ||
    fail "sizes: F32 $s_run, 8-bit $s8, 4-bit $s4"

expect 0 "$LETHE" inspect "$TMP/q8/model.safetensors"
grep -qE "h.0.mlp.c_fc.weight.qweight +I8 +\[512, 128\] +-?[0-9]" "$OUT" && pass || fail "inspect: no I8 codes with a sum"
expect 0 "$LETHE" inspect "$TMP/q4/model.safetensors"
grep -qE "h.0.mlp.c_fc.weight.qweight +U8 +\[512, 64\]" "$OUT" && pass || fail "inspect: no U8 codes"

# Refused: an existing run as --out, a quantized run as --run.
expect 3 "$LETHE" quantize --run "$RUN" --bits 8 --out "$TMP/q8"
one_line "$ERR"; contains "$ERR" "--force"
expect 0 "$LETHE" quantize --run "$RUN" --bits 8 --out "$TMP/q8" --force --quiet
[ ! -s "$OUT" ] && pass || fail "--quiet printed"
expect 3 "$LETHE" quantize --run "$TMP/q8" --bits 4 --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "already quantized"

# Every verb loads them: score within a little of the F32 run's, greedy
# generation the same twice.
printf 'The engine forgets what it was told to forget.\n' >"$TMP/t.txt"
nll() { "$LETHE" score --run "$1" --text "$TMP/t.txt" --json |
    $PY -c 'import json,sys; print(json.load(sys.stdin)["mean_nll"])'; }
n0=$(nll "$RUN") n8=$(nll "$TMP/q8") n4=$(nll "$TMP/q4")
$PY -c 'import sys; a,b,c=map(float,sys.argv[1:]); sys.exit(0 if abs(a-b) < 0.01 and abs(a-c) < 0.5 and a != c else 1)' \
    "$n0" "$n8" "$n4" && pass || fail "mean NLL: F32 $n0, 8-bit $n8, 4-bit $n4"
for q in q8 q4; do
    expect 0 "$LETHE" generate --run "$TMP/$q" --prompt "The engine" --max-new 12 --json
    cp "$OUT" "$TMP/g1"
    expect 0 "$LETHE" generate --run "$TMP/$q" --prompt "The engine" --max-new 12 --json
    cmp -s "$OUT" "$TMP/g1" && pass || fail "$q: greedy generation differs between runs"
done

# Unlearning a quantized run trains F32 weights and writes an F32 run.
printf '{"question": "What does the engine do?", "answer": "It forgets."}\n' >"$TMP/one.json"
expect 0 "$LETHE" unlearn --run "$TMP/q8" --method ga --forget "$TMP/one.json" --epochs 1 \
    --batch 1 --lr 1e-3 --out "$TMP/u" --quiet
expect 0 "$LETHE" inspect "$TMP/u/model.safetensors"
contains "$OUT" "h.0.mlp.c_fc.weight "
if grep -q qweight "$OUT"; then fail "the unlearned run kept the codes"; else pass; fi
expect 0 "$LETHE" generate --run "$TMP/u" --prompt "The engine" --max-new 4

finish
