#!/usr/bin/env bash
# lethe tokenizer: training (deterministic), encode/decode round trips of any
# bytes, GPT-2's ids for every text of tests/ref/fixtures/gpt2-texts.jsonl
# (written with npm's gpt-tokenizer by tests/ref/make_tokenizer_fixtures.js),
# and bad inputs (exit 3, one line on stderr naming the file).
. "$(dirname "$0")/lib.sh"

FX=tests/ref/fixtures
GPT2=(--vocab "$FX/gpt2-vocab.json.gz" --merges "$FX/gpt2-merges.txt.gz")

# help and usage errors
expect 0 "$LETHE" tokenizer --help
contains "$OUT" "train --corpus FILE... --vocab N --out tokenizer.json"
for sub in train encode decode; do
    expect 0 "$LETHE" tokenizer "$sub" --help
    contains "$OUT" "Usage: lethe tokenizer $sub"
done
expect 0 "$LETHE" help tokenizer
expect 2 "$LETHE" tokenizer
expect 2 "$LETHE" tokenizer frobnicate
expect 2 "$LETHE" tokenizer train --corpus README.md --out "$TMP/t.json"
contains "$ERR" "missing --vocab N"
expect 2 "$LETHE" tokenizer train --corpus README.md --vocab many --out "$TMP/t.json"
expect 2 "$LETHE" tokenizer encode --text hi
contains "$ERR" "missing the tokenizer"
expect 2 "$LETHE" tokenizer encode --tokenizer x.json "${GPT2[@]}" --text hi
expect 2 "$LETHE" tokenizer encode "${GPT2[@]}" --text hi --file README.md
expect 2 "$LETHE" tokenizer decode "${GPT2[@]}" --bogus

# GPT-2: a known text, JSON output, stdin, --jsonl
expect 0 "$LETHE" tokenizer encode "${GPT2[@]}" --text "Hello world, it's a test"
contains "$OUT" "15496 995 11 340 338 257 1332"
expect 0 "$LETHE" tokenizer encode "${GPT2[@]}" --json --text "Hello world"
contains "$OUT" "[15496, 995]"
printf 'Hello world' | "$LETHE" tokenizer encode "${GPT2[@]}" >"$OUT" 2>"$ERR" && pass || fail "encode from stdin"
contains "$OUT" "15496 995"
printf '{"text": "Hello world"}\n{"text": ""}\n{"text": " the"}\n' >"$TMP/t.jsonl"
expect 0 "$LETHE" tokenizer encode "${GPT2[@]}" --jsonl "$TMP/t.jsonl"
if [ "$(cat "$OUT")" = "$(printf '15496 995\n\n262')" ]; then pass; else fail "--jsonl output"; cat "$OUT"; fi
expect 0 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496 995 50256"
if [ "$(cat "$OUT")" = "Hello world<|endoftext|>" ]; then pass; else fail "decode: $(cat "$OUT")"; fi
echo "[15496, 995]" | "$LETHE" tokenizer decode "${GPT2[@]}" >"$OUT" 2>"$ERR" && pass || fail "decode from stdin"
contains "$OUT" "Hello world"

# Every fixture text, as its exact bytes (some hold NUL), in one call.
mkdir -p "$TMP/fx"
python3 - "$FX/gpt2-texts.jsonl" "$TMP/fx" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
with open(sys.argv[2] + "/want.txt", "w") as want, open(sys.argv[2] + "/list.txt", "w") as lst:
    for i, r in enumerate(rows):
        path = "%s/t%04d.txt" % (sys.argv[2], i)
        open(path, "wb").write(r["text"].encode("utf-8"))
        want.write(" ".join(map(str, r["ids"])) + "\n")
        lst.write(path + "\n")
PY
args=()
while read -r f; do args+=(--file "$f"); done <"$TMP/fx/list.txt"
expect 0 "$LETHE" tokenizer encode "${GPT2[@]}" "${args[@]}"
total=$(wc -l <"$TMP/fx/want.txt")
same=$(paste -d '\t' "$TMP/fx/want.txt" "$OUT" | awk -F '\t' '$1 == $2' | wc -l)
echo "gpt2 ids: $same/$total texts identical"
if [ "$total" -gt 0 ] && [ "$same" -eq "$total" ]; then pass; else
    fail "gpt2 ids: $same/$total texts identical"
    paste -d '\t' "$TMP/fx/want.txt" "$OUT" | awk -F '\t' '$1 != $2 { print "    line " NR; exit }'
fi

# Training: twice gives the same file; encode/decode round-trips any bytes.
corpus=("$FX/gpt2-texts.jsonl" README.md)
expect 0 "$LETHE" tokenizer train --corpus "${corpus[@]}" --vocab 1000 --special '<|endoftext|>' \
    --out "$TMP/tok.json"
contains "$OUT" "vocab_size  1000"
expect 0 "$LETHE" tokenizer train --json --corpus "${corpus[0]}" --corpus "${corpus[1]}" --vocab 1000 \
    --special '<|endoftext|>' --out "$TMP/tok2.json"
contains "$OUT" '"vocab_size": 1000'
if cmp -s "$TMP/tok.json" "$TMP/tok2.json"; then pass; else fail "training is not deterministic"; fi
# Progress, forced to a line at every update: on stderr only, both phases and
# their final lines; --quiet prints none; stdout and the file unchanged.
train1k() { expect 0 "$LETHE" tokenizer train --corpus "${corpus[@]}" --vocab 1000 \
    --special '<|endoftext|>' --force "$@"; }
LETHE_PROGRESS_INTERVAL=0 train1k --out "$TMP/tok3.json"
contains "$ERR" "tokenizer train: 1/743 new tokens (0%)"
contains "$ERR" "tokenizer train: 743 new tokens in"
contains "$ERR" "tokenizer train: $(cat "${corpus[@]}" | wc -c) bytes in"
cmp -s "$TMP/tok.json" "$TMP/tok3.json" && pass || fail "progress changed the tokenizer"
grep -v '^seconds\|^MB/s\|^wrote' "$OUT" >"$TMP/loud.out"
LETHE_PROGRESS_INTERVAL=0 train1k --out "$TMP/tok3.json" --quiet
[ ! -s "$ERR" ] && pass || fail "--quiet printed: $(head -n 3 "$ERR")"
grep -v '^seconds\|^MB/s\|^wrote' "$OUT" | cmp -s - "$TMP/loud.out" && pass ||
    fail "progress changed stdout"
train1k --out "$TMP/tok3.json" # a short run: no line at the default interval
[ ! -s "$ERR" ] && pass || fail "a short run printed: $(head -n 3 "$ERR")"
contains "$TMP/tok.json" '"type": "BPE"'
contains "$TMP/tok.json" '"content": "<|endoftext|>"'
expect 0 "$LETHE" tokenizer decode --tokenizer "$TMP/tok.json" --ids 999
if [ "$(cat "$OUT")" = "<|endoftext|>" ]; then pass; else fail "special token decodes to $(cat "$OUT")"; fi
{ printf 'The whale\0 and \xff\xfe broken \xe2\x82 UTF-8, caf\xc3\xa9, \xf0\x9f\x98\x80\n\t  end  '
  head -c 6000 /dev/urandom; cat README.md; } >"$TMP/bytes.bin"
for tok in "--tokenizer $TMP/tok.json" "${GPT2[*]}"; do
    # shellcheck disable=SC2086
    "$LETHE" tokenizer encode $tok --file "$TMP/bytes.bin" >"$TMP/ids.txt" 2>"$ERR" &&
        "$LETHE" tokenizer decode $tok --ids "$(cat "$TMP/ids.txt")" --out "$TMP/back.bin" 2>>"$ERR" &&
        cmp -s "$TMP/bytes.bin" "$TMP/back.bin" && pass || fail "round trip with $tok"
    # shellcheck disable=SC2086
    "$LETHE" tokenizer decode $tok <"$TMP/ids.txt" >"$TMP/back2.bin" 2>>"$ERR" &&
        cmp -s "$TMP/bytes.bin" "$TMP/back2.bin" && pass || fail "round trip (stdin) with $tok"
done

# Bad inputs: exit 3 with one line naming the file and the problem.
expect 3 "$LETHE" tokenizer encode --tokenizer "$TMP/none.json" --text hi
one_line "$ERR"
contains "$ERR" "none.json"
printf '{"model": {"vocab": ' >"$TMP/trunc.json"
expect 3 "$LETHE" tokenizer encode --tokenizer "$TMP/trunc.json" --text hi
one_line "$ERR"
contains "$ERR" "trunc.json:1:"
printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$TMP/wp.json"
expect 3 "$LETHE" tokenizer encode --tokenizer "$TMP/wp.json" --text hi
one_line "$ERR"
contains "$ERR" "WordPiece"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}' >"$TMP/few.json"
expect 3 "$LETHE" tokenizer encode --tokenizer "$TMP/few.json" --text hi
one_line "$ERR"
contains "$ERR" "no token for byte 0x00"
{ echo '#version: 0.2'; echo 'Ġ t'; echo 'h e e'; } >"$TMP/merges.txt"
expect 3 "$LETHE" tokenizer encode --vocab "$FX/gpt2-vocab.json.gz" --merges "$TMP/merges.txt" --text hi
one_line "$ERR"
contains "$ERR" "merges.txt:3: expected two tokens separated by one space"
expect 3 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "1 x 3"
one_line "$ERR"
contains "$ERR" "'x' is not a token id"
expect 3 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "1 60000"
one_line "$ERR"
contains "$ERR" "id 60000"
expect 3 "$LETHE" tokenizer train --corpus "$TMP/missing.txt" --vocab 300 --out "$TMP/t.json"
one_line "$ERR"
contains "$ERR" "missing.txt"
expect 3 "$LETHE" tokenizer train --corpus README.md --vocab 100 --out "$TMP/t.json"
one_line "$ERR"
[ ! -e "$TMP/t.json" ] && pass || fail "a failed training wrote its output"

finish
