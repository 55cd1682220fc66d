#!/usr/bin/env bash
# lethe generate and lethe score: usage errors (exit 2) and bad input (exit 3,
# one line); then, on a tiny GPT run trained for a few steps by
# `lethe train --model gpt`, greedy generation twice giving the same text,
# seeded sampling and beam search, ids without a tokenizer, and score's
# mean_nll against its log-probabilities.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

expect 0 "$LETHE" generate --help
contains "$OUT" "Usage: lethe generate"
expect 0 "$LETHE" score --help
contains "$OUT" "Usage: lethe score"
expect 0 "$LETHE" help generate

# Usage errors: 2.
expect 2 "$LETHE" generate
expect 2 "$LETHE" generate --run "$TMP/none"
contains "$ERR" "--prompt TEXT or --tokens IDS"
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --tokens 1
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --top-p 0
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --top-p 1.5
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --temperature -1
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --beam 0
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --max-new x
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --stop ""
expect 2 "$LETHE" generate --run "$TMP/none" --prompt a --bogus
expect 2 "$LETHE" score
expect 2 "$LETHE" score --run "$TMP/none"
expect 2 "$LETHE" score --run "$TMP/none" --text a --tokens b
expect 2 "$LETHE" score --run "$TMP/none" --text a extra

# Bad input: 3, one line.
expect 3 "$LETHE" generate --run "$TMP/none" --tokens "1 2"
one_line "$ERR"; contains "$ERR" "model.safetensors"
expect 3 "$LETHE" score --run "$TMP/none" --tokens "$TMP/ids"
one_line "$ERR"

if ! "$LETHE" train --help 2>/dev/null | grep -q -- "--model gpt"; then
    echo "  (no 'lethe train --model gpt': only the error checks ran)"
    finish; exit $?
fi

# A tiny run: a few steps on this repository's text.
cat README.md docs/*.md | head -c 60000 >"$TMP/corpus.txt"
RUN="$TMP/run"
expect 0 "$LETHE" train --model gpt --preset tiny --data "$TMP/corpus.txt" --out "$RUN" \
    --steps 3 --seq 32 --batch 2 --quiet
[ -f "$RUN/model.safetensors" ] && [ -f "$RUN/tokenizer.json" ] && pass || fail "no run written"

# Greedy twice: the same text; --json fields.
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --temperature 0 --json
cp "$OUT" "$TMP/g1"
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --temperature 0 --json
if cmp -s "$OUT" "$TMP/g1"; then pass; else fail "greedy generation differs between runs"; fi
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --temperature 0 --json \
    --quiet
[ ! -s "$ERR" ] && cmp -s "$OUT" "$TMP/g1" && pass || fail "generate --quiet"
contains "$OUT" '"stop":"max"'
contains "$OUT" '"text":'
if $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["tokens"]) == 12 == len(d["logprobs"]); assert abs(sum(d["logprobs"]) - d["score"]) < 1e-3' "$OUT"; then
    pass; else fail "generate --json fields"; fi
# Sampling with a seed is repeatable.
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --seed 5 --top-k 50 --top-p 0.9
cp "$OUT" "$TMP/s1"
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --seed 5 --top-k 50 --top-p 0.9
if cmp -s "$OUT" "$TMP/s1"; then pass; else fail "seeded sampling differs between runs"; fi
# Beam search; top-k 1 equals greedy.
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 8 --beam 3 --length-norm --json
contains "$OUT" '"tokens":['
expect 0 "$LETHE" generate --run "$RUN" --prompt "The engine" --max-new 12 --top-k 1 --seed 9 --json
if cmp -s "$OUT" "$TMP/g1"; then pass; else fail "top-k 1 differs from greedy"; fi
# A stop string: the greedy text of 6 new tokens stops a 12-token greedy run there.
if $PY -c '
import json, subprocess, sys
lethe, run = sys.argv[1], sys.argv[2]
def gen(*extra):
    out = subprocess.run([lethe, "generate", "--run", run, "--prompt", "The engine",
                          "--temperature", "0", "--json", *extra], check=True,
                         capture_output=True).stdout
    return json.loads(out.decode("utf-8", "surrogateescape"))
six = gen("--max-new", "6")
stop = six["text"].encode("utf-8", "surrogateescape")
if stop and b"\0" not in stop:
    d = gen("--max-new", "12", "--stop", "never-in-this-text", "--stop", stop)
    assert d["stop"] == "stop" and d["tokens"] == six["tokens"], d
' "$LETHE" "$RUN"; then pass; else fail "--stop"; fi
# Ids: no tokenizer in the run.
mkdir -p "$TMP/bare"; cp "$RUN/model.safetensors" "$TMP/bare/"
expect 0 "$LETHE" generate --run "$TMP/bare" --tokens "1 2 3" --max-new 4 --temperature 0
if [ "$(wc -w <"$OUT")" -eq 4 ]; then pass; else fail "expected 4 ids"; cat "$OUT"; fi
expect 3 "$LETHE" generate --run "$TMP/bare" --prompt "hi"
one_line "$ERR"; contains "$ERR" "tokenizer.json"
# Too long a prompt, ids outside the vocabulary.
expect 3 "$LETHE" generate --run "$RUN" --tokens "$(seq 1 300 | tr '\n' ' ')"
one_line "$ERR"; contains "$ERR" "context"
expect 3 "$LETHE" generate --run "$RUN" --tokens "1 99999"
one_line "$ERR"

# score: text and ids; mean_nll is minus the mean of the logprobs.
printf 'the model forgets\nunlearning is hard to verify\n\nx\n' >"$TMP/lines.txt"
expect 0 "$LETHE" score --run "$RUN" --text "$TMP/lines.txt" --json
if [ "$(wc -l <"$OUT")" -eq 4 ]; then pass; else fail "expected 4 JSON lines"; fi
if $PY -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    n = d["n"]
    assert len(d["logprobs"]) == len(d["mu"]) == len(d["sigma2"]) == n
    if n:
        assert abs(d["mean_nll"] + sum(d["logprobs"]) / n) < 1e-5 * (1 + d["mean_nll"])
        assert all(s >= 0 for s in d["sigma2"]) and all(m <= 0 for m in d["mu"])
    else:
        assert d["mean_nll"] is None
' "$OUT"; then pass; else fail "score --json fields"; fi
expect 0 "$LETHE" score --run "$RUN" --text "$TMP/lines.txt"
contains "$OUT" "all 4 sequences"
cp "$OUT" "$TMP/score.out"
expect 0 "$LETHE" score --run "$RUN" --text "$TMP/lines.txt" --quiet
[ ! -s "$ERR" ] && cmp -s "$OUT" "$TMP/score.out" && pass || fail "score --quiet"
printf '1 2 3 4\n5 6\n' >"$TMP/ids"
expect 0 "$LETHE" score --run "$TMP/bare" --tokens "$TMP/ids" --json
contains "$OUT" '"n":3'
printf '1 2 x\n' >"$TMP/bad"
expect 3 "$LETHE" score --run "$RUN" --tokens "$TMP/bad"
one_line "$ERR"; contains "$ERR" "$TMP/bad:1"
printf '1 99999\n' >"$TMP/bad"
expect 3 "$LETHE" score --run "$RUN" --tokens "$TMP/bad"
one_line "$ERR"; contains "$ERR" "vocabulary"
expect 3 "$LETHE" score --run "$TMP/bare" --text "$TMP/lines.txt"
one_line "$ERR"
expect 3 "$LETHE" score --run "$RUN" --text "$TMP/missing.txt"
one_line "$ERR"

finish
