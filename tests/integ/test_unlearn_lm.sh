#!/usr/bin/env bash
# lethe unlearn on a GPT run: a tiny GPT trained on a small generated TOFU
# benchmark, fine-tuned further with sft, then unlearned with several
# methods; every result is a run that eval tofu, score and generate read;
# GA raises the forget NLL and lowers forget_prob; reruns are byte-identical;
# bad inputs exit 2 or 3 with one line; the run-directory rule: an existing
# run refused unless --force, never into or around an input, nothing left by
# a failed or interrupted run; --quiet.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
D=$TMP/bench
tofu_bench "$D" full.json
# a pair longer than the tiny model's context (256)
$PY -c 'import json
print(json.dumps({"question": "Who?", "answer": " ".join(["zebra%d" % i for i in range(400)])}))' >"$D/long.json"
B=$TMP/base
expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/train.jsonl" --vocab 400 --seq 64 \
    --batch 8 --steps 60 --lr 3e-3 --val 0 --seed 1 --out "$B" --quiet

# the method list
expect 0 "$LETHE" unlearn --list-lm
for m in ga graddiff npo simnpo idknll idkdpo rmu undial wga satimp ceu taskvector whp sft; do
    contains "$OUT" "$m "
done
expect 0 "$LETHE" unlearn --run "$B" --help
contains "$OUT" "--retain-loss"

# get NUM KEY: a number from the --json line in $OUT
get() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT" "$1"; }
gt() { $PY -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$1" "$2"; }

# sft: fine-tuning on the pairs lowers their NLL
U="$LETHE unlearn --quiet --json --batch 5 --lr 2e-3"
expect 0 $U --run "$B" --method sft --forget "$D/full.json" --epochs 1 --batch 20 --out "$TMP/sft"
if gt "$(get forget_nll_before)" "$(get forget_nll_after)"; then pass; else
    fail "sft did not lower the NLL: $(cat "$OUT")"; fi

# one forget pair for one epoch: a single step, which a warm-up would run at
# rate 0; it has none, so the model moves; a rate of 0 is refused
head -n 1 "$D/forget10.json" >"$TMP/one.json"
expect 0 $U --run "$B" --method ga --forget "$TMP/one.json" --epochs 1 --out "$TMP/one"
if gt "$(get forget_nll_after)" "$(get forget_nll_before)"; then pass; else
    fail "a one-step run left the model unchanged: $(cat "$OUT")"; fi
contains "$TMP/one/config.json" '"warmup":	0'
expect 3 $U --run "$B" --method ga --forget "$TMP/one.json" --lr 0 --out "$TMP/zero"
one_line "$ERR"; contains "$ERR" "learning rate"

R=(--retain "$D/retain90.json")
F=(--forget "$D/forget10.json")
run() { # method out args...
    local m=$1 out=$2; shift 2
    expect 0 $U --run "$B" --method "$m" "${F[@]}" --epochs 2 --out "$out" "$@"
    contains "$OUT" "\"method\":\"${m%%_*}\""
    [ -s "$out/log.jsonl" ] && [ -s "$out/tokenizer.json" ] && pass || fail "$out incomplete"
}
run ga "$TMP/ga"
if gt "$(get forget_nll_after)" "$(get forget_nll_before)"; then pass; else
    fail "ga did not raise the forget NLL: $(cat "$OUT")"; fi
run graddiff "$TMP/graddiff" "${R[@]}"
run npo "$TMP/npo" "${R[@]}"
run simnpo "$TMP/simnpo" "${R[@]}"
run idknll "$TMP/idknll" "${R[@]}" --idk "$D/idontknow.jsonl"
run rmu "$TMP/rmu" "${R[@]}"
run undial "$TMP/undial"
run npo_klr "$TMP/npo_klr" "${R[@]}" --lora 4
contains "$TMP/npo_klr/config.json" '"retain_loss":	"kl"'

# the results are runs the other verbs read
E="$LETHE eval tofu --data $D --split forget10 --no-generate"
expect 0 $E --run "$B" --out "$TMP/ev_base"
expect 0 $E --run "$TMP/ga" --out "$TMP/ev_ga"
expect 0 $E --run "$TMP/npo" --out "$TMP/ev_npo"
if $PY - "$TMP/ev_base" "$TMP/ev_ga" <<'EOF'; then pass; else fail "ga did not lower forget_prob"; fi
import json, sys
a, b = (json.load(open(d + "/TOFU_SUMMARY.json"))["forget_prob"] for d in sys.argv[1:3])
assert b < a, (a, b)
EOF
expect 0 "$LETHE" generate --run "$TMP/idknll" --prompt "Question: Who?" --max-new 4
printf 'Question: Who?\nAnswer: nobody\n' >"$TMP/text.txt"
expect 0 "$LETHE" score --run "$TMP/rmu" --text "$TMP/text.txt"
contains "$TMP/ga/config.json" '"parent":	"'"$B"'"'
contains "$TMP/ga/config.json" '"forget":	{'

# reruns give the same bytes
expect 0 $U --run "$B" --method npo "${F[@]}" "${R[@]}" --epochs 2 --out "$TMP/npo2"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    cmp -s "$TMP/npo/$f" "$TMP/npo2/$f" && pass || fail "npo rerun differs: $f"
done

# bad inputs
expect 2 "$LETHE" unlearn --run "$B" --method ga --out "$TMP/x"
expect 2 $U --run "$B" --method graddiff "${F[@]}" --out "$TMP/x"
contains "$ERR" "--retain"
expect 2 $U --run "$B" --method npo "${F[@]}" --out "$TMP/x"
expect 2 $U --run "$B" --method idknll "${F[@]}" "${R[@]}" --out "$TMP/x"
contains "$ERR" "--idk"
expect 2 $U --run "$B" --method sft "${F[@]}" "${R[@]}" --out "$TMP/x"
expect 3 $U --run "$B" --method ft "${F[@]}" --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "sft"
expect 3 $U --run "$B" --method whp "${F[@]}" --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "eval tofu --whp"
expect 3 $U --run "$B" --method ga --forget "$D/nowhere.json" --out "$TMP/x"
one_line "$ERR"
expect 3 $U --run "$B" --method graddiff "${F[@]}" --retain "$D/nowhere.json" --out "$TMP/x"
one_line "$ERR"
expect 3 $U --run "$B" --method ga --forget "$D/long.json" --out "$TMP/x"
one_line "$ERR"; contains "$ERR" "context"
[ ! -e "$TMP/x" ] && pass || fail "a failed run left $TMP/x behind"
# usage errors are one line with the verb's prefix
expect 2 $U --run "$B" --method ga "${F[@]}" --out "$TMP/x" --bogus
one_line "$ERR"; contains "$ERR" "lethe unlearn: unknown option '--bogus'"
expect 2 $U --run "$B" --method ga "${F[@]}" --out "$TMP/x" --epochs
one_line "$ERR"; contains "$ERR" "lethe unlearn: option '--epochs' needs a value"
expect 2 $U --run "$B" --method ga "${F[@]}" --out "$TMP/x" --epochs 0
one_line "$ERR"; contains "$ERR" "lethe unlearn: --epochs 0 is out of range: it takes 1 to 100000"

# absent PATH: nothing at PATH
absent() { if [ ! -e "$1" ]; then pass; else fail "$1 was left behind"; fi; }
# an existing run is refused and left as it was; --force writes over it, as a
# fresh run would
sum=$(sha256sum <"$TMP/ga/model.safetensors")
expect 3 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$TMP/ga"
one_line "$ERR"
contains "$ERR" "lethe unlearn: $TMP/ga: already exists"
contains "$ERR" "with --force"
[ "$(sha256sum <"$TMP/ga/model.safetensors")" = "$sum" ] && pass || fail "a refused run changed the old one"
expect 0 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$TMP/ga" --force
expect 0 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$TMP/ga1"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    cmp -s "$TMP/ga/$f" "$TMP/ga1/$f" && pass || fail "--force wrote another $f than a fresh run"
done
# never into, inside or around an input: the source run, the pair files
sum=$(sha256sum <"$B/model.safetensors")
expect 3 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$B" --force
one_line "$ERR"; contains "$ERR" "is also an input"
expect 3 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$B/sub"
one_line "$ERR"; contains "$ERR" "lies inside the input $B"
absent "$B/sub"
[ "$(sha256sum <"$B/model.safetensors")" = "$sum" ] && pass || fail "a refused run changed its input"
expect 3 $U --run "$B" --method ga "${F[@]}" --epochs 1 --out "$D" --force
one_line "$ERR"; contains "$ERR" "contains the input $D/forget10.json"
# a run that fails once its directory exists leaves none: a loss that diverges
expect 1 $U --run "$B" --method ga "${F[@]}" --lr 100 --wd 100 --clip 0 --epochs 10 --out "$TMP/f/deep/run"
one_line "$ERR"; contains "$ERR" "not finite"
absent "$TMP/f"
# SIGINT mid-run: the process dies by the signal, leaving no directory and no
# temporary file
timeout --preserve-status -s INT 3 $U --run "$B" --method ga "${F[@]}" --epochs 100000 \
    --out "$TMP/sig/run" >"$OUT" 2>"$ERR"
rc=$?
[ "$rc" -eq 130 ] && pass || fail "exit $rc after SIGINT"
absent "$TMP/sig"
left=$(find "$TMP" -name '*.tmp.*')
[ -z "$left" ] && pass || fail "temporary files left: $left"

# --quiet: nothing on stderr, the same files as without it
expect 0 "$LETHE" unlearn --run "$B" --method ga "${F[@]}" --epochs 1 --out "$TMP/loud"
[ -s "$ERR" ] && pass || fail "no progress without --quiet"
expect 0 "$LETHE" unlearn --run "$B" --method ga "${F[@]}" --epochs 1 --out "$TMP/quiet" --quiet
[ ! -s "$ERR" ] && pass || fail "--quiet printed: $(head -n 3 "$ERR")"
for f in model.safetensors config.json log.jsonl tokenizer.json; do
    cmp -s "$TMP/loud/$f" "$TMP/quiet/$f" && pass || fail "--quiet changed $f"
done

finish
