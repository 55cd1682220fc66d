#!/usr/bin/env bash
# lethe unlearn on a GPT run with raw text (MUSE's layout): a tiny GPT
# trained a few steps on forget and retain documents, then unlearned with
# every stored method that takes raw text; the windows' NLL rises (falls for
# sft); config.json records the format and the windows; reruns are
# byte-identical; idknll and idkdpo refuse raw text in one line (exit 3), as
# do an empty forget file and raw text under another name, leaving nothing.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
$PY - "$TMP" <<'EOF'
import json, sys
d = sys.argv[1]
names = ["Mara Lind", "Tomas Vey", "Ines Okafor", "Raul Brandt", "Sofia Marsh", "Ken Ito",
         "Lea Novak", "Omar Haddad", "Eva Stone", "Ivan Petrov"]
def doc(i, n):
    return " ".join("%s wrote book %d of %d in the year %d at the house by the river." %
                    (n, k, i, 1900 + 7 * i + k) for k in range(8))
with open(d + "/forget.jsonl", "w") as f:
    for i, n in enumerate(names[:3]):
        f.write(json.dumps({"text": doc(i, n)}) + "\n")
with open(d + "/retain.jsonl", "w") as f:
    for i, n in enumerate(names[3:]):
        f.write(json.dumps(doc(i + 3, n)) + "\n") # documents as JSON strings
with open(d + "/forget.txt", "w") as f:
    f.write(doc(0, names[0]))
EOF
B=$TMP/base
expect 0 "$LETHE" train --model gpt --preset tiny --data "$TMP/forget.jsonl,$TMP/retain.jsonl" \
    --vocab 300 --seq 64 --batch 8 --steps 40 --lr 3e-3 --val 0 --seed 1 --out "$B" --quiet

get() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1"; }
gt() { $PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }

expect 0 "$LETHE" unlearn --run "$B" --help
contains "$OUT" "Raw text"
contains "$OUT" "--format"

U="$LETHE unlearn --quiet --json --run $B --batch 2 --lr 2e-3 --epochs 2"
F=(--forget "$TMP/forget.jsonl")
R=(--retain "$TMP/retain.jsonl")
for spec in "ga" "graddiff R" "npo R" "npo_klr R" "simnpo R" "rmu R" "undial" "wga R" \
    "satimp R" "ceu" "taskvector" "sft"; do
    m=${spec%% *}
    args=("${F[@]}")
    [ "$spec" != "$m" ] && args+=("${R[@]}")
    expect 0 $U --method "$m" "${args[@]}" --out "$TMP/$m"
    contains "$OUT" '"format":"text","documents":3'
    before=$(get forget_nll_before) after=$(get forget_nll_after)
    if [ "$m" = sft ]; then
        if gt "$before" "$after"; then pass; else fail "sft did not lower the NLL: $(cat "$OUT")"; fi
    elif gt "$after" "$before"; then pass; else
        fail "$m did not raise the forget NLL: $(cat "$OUT")"; fi
done
# config.json: the format and the windows of each raw-text file (rows: documents)
$PY - "$TMP/graddiff/config.json" <<'EOF' && pass || fail "graddiff config.json lacks the windows"
import json, sys
u = json.load(open(sys.argv[1]))["unlearn"]
f, r = u["forget"], u["retain"]
assert f["format"] == "text" and f["rows"] == 3 and f["windows"] >= 3, f
assert r["format"] == "text" and r["rows"] == 7 and r["windows"] > f["windows"], r
EOF
# byte-identical reruns
expect 0 $U --method npo "${F[@]}" "${R[@]}" --out "$TMP/npo2"
for f in model.safetensors config.json log.jsonl; do
    cmp -s "$TMP/npo/$f" "$TMP/npo2/$f" && pass || fail "npo rerun: $f differs"
done
# the result is a GPT run the other verbs read
printf 'Mara Lind wrote book 1\n' >"$TMP/prompt.txt"
expect 0 "$LETHE" score --run "$TMP/ga" --text "$TMP/prompt.txt"

# a .txt file is one document; the text summary speaks of windows
expect 0 "$LETHE" unlearn --quiet --run "$B" --method ga --forget "$TMP/forget.txt" --epochs 1 \
    --out "$TMP/txt"
contains "$OUT" "forget windows of 1 document in"
contains "$OUT" "mean token NLL"
# --format text / qa overrides the detection
expect 3 $U --method ga --forget "$TMP/forget.jsonl" --format qa --out "$TMP/asqa"
one_line "$ERR"; contains "$ERR" "question"
expect 2 $U --method ga "${F[@]}" --format raw --out "$TMP/bad"
one_line "$ERR"

# idknll and idkdpo read a refusal per question: raw text is refused, with
# or without --idk
printf 'I do not know.\n' >"$TMP/idk.txt"
for m in idknll idkdpo; do
    expect 3 $U --method "$m" "${F[@]}" "${R[@]}" --out "$TMP/$m"
    one_line "$ERR"; contains "$ERR" "raw text has no questions"
    expect 3 $U --method "$m" "${F[@]}" "${R[@]}" --idk "$TMP/idk.txt" --out "$TMP/$m"
    one_line "$ERR"; contains "$ERR" "raw text has no questions"
    [ ! -e "$TMP/$m" ] && pass || fail "$m left $TMP/$m"
done
# an empty forget file, raw text under another name: exit 3, one line,
# nothing left behind
: >"$TMP/empty.jsonl"
: >"$TMP/blank.txt"
cp "$TMP/forget.jsonl" "$TMP/forget.json"
for args in "--forget $TMP/empty.jsonl" "--forget $TMP/empty.jsonl --format text" \
    "--forget $TMP/blank.txt" "--forget $TMP/forget.json"; do
    expect 3 $U --method ga $args --out "$TMP/nothing"
    one_line "$ERR"
    [ ! -e "$TMP/nothing" ] && pass || fail "$args left $TMP/nothing"
done
finish
