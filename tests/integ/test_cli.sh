#!/usr/bin/env bash
# The top-level command: help, version, unknown verbs and flags.
. "$(dirname "$0")/lib.sh"

expect 0 "$LETHE" --help
contains "$OUT" "Usage: lethe VERB"
expect 0 "$LETHE" version
contains "$OUT" "lethe "
expect 2 "$LETHE"
expect 2 "$LETHE" frobnicate
contains "$ERR" "unknown verb 'frobnicate'"
contains "$ERR" "lethe --help"
expect 2 "$LETHE" version --bogus
one_line "$ERR"
for verb in data inspect stats version; do
    expect 0 "$LETHE" "$verb" --help
    contains "$OUT" "Usage: lethe $verb"
    expect 0 "$LETHE" help "$verb"
    expect 2 "$LETHE" "$verb" --no-such-flag
    one_line "$ERR"
done

# usage errors: one line, one prefix, naming the option
for verb in train predict unlearn inspect "stats ks" "data make" "tokenizer train"; do
    expect 2 "$LETHE" $verb --no-such-flag
    one_line "$ERR"
    contains "$ERR" "lethe $verb: unknown option '--no-such-flag'"
done
expect 2 "$LETHE" train --data digits --out
one_line "$ERR"
contains "$ERR" "lethe train: option '--out' needs a value"
expect 2 "$LETHE" train --data digits --out "$TMP/x" --json=1
contains "$ERR" "option '--json=1' takes no value"
# numeric limits: the option, the value and the real range
expect 2 "$LETHE" train --data digits --out "$TMP/x" --steps 99999999999999999999
one_line "$ERR"
contains "$ERR" "lethe train: --steps 99999999999999999999 is out of range: it takes 1 to 2^40"
expect 2 "$LETHE" train --data digits --out "$TMP/x" --epochs 1000001
contains "$ERR" "--epochs 1000001 is out of range: it takes 1 to 1000000"
expect 2 "$LETHE" train --data digits --out "$TMP/x" --lr abc
contains "$ERR" "--lr needs a number from 1e-12 to 100, not 'abc'"
expect 2 "$LETHE" unlearn --run r --method ga --forget class:1 --out o --seed -1
contains "$ERR" "lethe unlearn: --seed -1 is out of range: it takes 0 to 2^53"
expect 2 "$LETHE" predict --run r --split-seed 1e3
contains "$ERR" "--split-seed needs a whole number from 0 to 2^53, not '1e3'"
expect 2 "$LETHE" tokenizer train --corpus README.md --out "$TMP/t.json" --vocab 99999999999
contains "$ERR" "--vocab 99999999999 is out of range: it takes 1 to 2^31"
[ ! -e "$TMP/x" ] && pass || fail "a usage error created the output"
# the inference and evaluation verbs: one line, one prefix, the option and its range
for verb in generate score "eval classify" "eval regress" "eval tofu" predict inspect "stats ks" \
    "stats hmean" "tokenizer encode" "tokenizer decode"; do
    expect 2 "$LETHE" $verb --no-such-flag
    one_line "$ERR"
    contains "$ERR" "lethe $verb: unknown option '--no-such-flag'"
done
expect 2 "$LETHE" generate --run r --prompt a --max-new 99999999999
one_line "$ERR"
contains "$ERR" "lethe generate: --max-new 99999999999 is out of range: it takes 0 to 1000000"
expect 2 "$LETHE" generate --run r --prompt a --beam 65
contains "$ERR" "lethe generate: --beam 65 is out of range: it takes 1 to 64"
expect 2 "$LETHE" generate --run r --prompt a --temperature -1
contains "$ERR" "lethe generate: --temperature -1 is out of range: it takes 0 to 1e+06"
expect 2 "$LETHE" generate --run r --prompt a --seed 99999999999999999999
contains "$ERR" "lethe generate: --seed 99999999999999999999 is out of range: it takes 0 to 2^53"
expect 2 "$LETHE" generate --run r --prompt a --top-p 0
contains "$ERR" "lethe generate: --top-p needs a number above 0 and at most 1, not '0'"
expect 2 "$LETHE" generate --run r --prompt a --json=1
one_line "$ERR"
contains "$ERR" "lethe generate: option '--json=1' takes no value"
expect 2 "$LETHE" score --run
one_line "$ERR"
contains "$ERR" "lethe score: option '--run' needs a value"
expect 2 "$LETHE" eval classify --run r --forget class:1 --relearn-steps 99999999999999
one_line "$ERR"
contains "$ERR" "lethe eval classify: --relearn-steps 99999999999999 is out of range: it takes 1 to 2^40"
expect 2 "$LETHE" eval classify --run r --forget class:1 --relearn-batch 0
contains "$ERR" "lethe eval classify: --relearn-batch 0 is out of range: it takes 1 to 65536"
expect 2 "$LETHE" eval classify --run r --forget class:1 --relearn-lr fast
contains "$ERR" "lethe eval classify: --relearn-lr needs a number from 0 to 100, not 'fast'"
expect 2 "$LETHE" eval classify --run r --forget class:1 --relearn-tol 1
contains "$ERR" "lethe eval classify: --relearn-tol 1 is out of range: it takes 0 to below 1"
expect 2 "$LETHE" eval regress --run r --forget range:0:1 --ain-lr 1e9
contains "$ERR" "lethe eval regress: --ain-lr 1e9 is out of range: it takes 0 to 100"
expect 2 "$LETHE" eval regress --run r --forget range:0:1 --ain-epochs 99999999999
contains "$ERR" "lethe eval regress: --ain-epochs 99999999999 is out of range: it takes 1 to 1000000"
expect 2 "$LETHE" eval regress --run r --forget range:0:1 --ain-slack 0.5
contains "$ERR" "lethe eval regress: --ain-slack 0.5 is out of range: it takes 1 to 1e+06"
expect 2 "$LETHE" eval tofu --run r --data d --split forget10 --max-new 99999999999
one_line "$ERR"
contains "$ERR" "lethe eval tofu: --max-new 99999999999 is out of range: it takes 1 to 100000"
expect 2 "$LETHE" eval tofu --run r --data d --split forget10 --whp-alpha x
contains "$ERR" "lethe eval tofu: --whp-alpha needs a number from 0 to 1e+06, not 'x'"
expect 2 "$LETHE" tokenizer train --corpus README.md --out "$TMP/t.json" --vocab 300 --min-frequency -1
contains "$ERR" "lethe tokenizer train: --min-frequency -1 is out of range: it takes 0 to 2^62"

# the same names across verbs: moby (the corpus) in data info; --quiet
expect 0 "$LETHE" data info moby
contains "$OUT" "name:        moby-dick"
expect 0 "$LETHE" data make authors --authors 10 --qa 1 --quiet --out "$TMP/dm"
[ ! -s "$ERR" ] && pass || fail "data make --quiet wrote to stderr"
printf 'ab ab ab\n' >"$TMP/c.txt"
expect 0 "$LETHE" tokenizer train --corpus "$TMP/c.txt" --vocab 300 --out "$TMP/t.json"
contains "$ERR" "stopped at"
expect 0 "$LETHE" tokenizer train --corpus "$TMP/c.txt" --vocab 300 --out "$TMP/t2.json" --quiet
[ ! -s "$ERR" ] && pass || fail "tokenizer train --quiet wrote to stderr"
# --quiet on the inference verbs: nothing on stderr, the same stdout and files
printf '1\n0\n2\n' >"$TMP/h.txt"
expect 0 "$LETHE" stats hmean "$TMP/h.txt"
contains "$ERR" "warning: $TMP/h.txt:2 is 0"
cp "$OUT" "$TMP/h.out"
expect 0 "$LETHE" stats hmean --quiet "$TMP/h.txt"
[ ! -s "$ERR" ] && pass || fail "stats hmean --quiet wrote to stderr"
cmp -s "$OUT" "$TMP/h.out" && pass || fail "stats hmean --quiet changed stdout"
expect 0 "$LETHE" stats ks --quiet "$TMP/h.txt" "$TMP/h.txt"
[ ! -s "$ERR" ] && pass || fail "stats ks --quiet wrote to stderr"
expect 0 "$LETHE" tokenizer encode --tokenizer "$TMP/t.json" --text "ab ab" --quiet
[ ! -s "$ERR" ] && [ -s "$OUT" ] && pass || fail "tokenizer encode --quiet"
expect 0 "$LETHE" tokenizer decode --tokenizer "$TMP/t.json" --ids "$(cat "$OUT")" --quiet
[ ! -s "$ERR" ] && [ "$(cat "$OUT")" = "ab ab" ] && pass || fail "tokenizer decode --quiet"
# unlearn --lr on a classifier run: the method's lr, as --set lr=X
expect 0 "$LETHE" train --data iris --out "$TMP/r" --epochs 2 --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --lr 0.003 --out "$TMP/u1" --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --set lr=0.003 --out "$TMP/u2" --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$TMP/u3" --quiet
cmp -s "$TMP/u1/model.safetensors" "$TMP/u2/model.safetensors" && pass || fail "--lr differs from --set lr"
cmp -s "$TMP/u1/model.safetensors" "$TMP/u3/model.safetensors" && fail "--lr had no effect" || pass
contains "$TMP/u1/config.json" '"lr":	0.003'
expect 0 "$LETHE" inspect "$TMP/r/model.safetensors"
cp "$OUT" "$TMP/i.out"
expect 0 "$LETHE" inspect "$TMP/r/model.safetensors" --quiet
[ ! -s "$ERR" ] && cmp -s "$OUT" "$TMP/i.out" && pass || fail "inspect --quiet"
expect 0 "$LETHE" predict --run "$TMP/r" --out "$TMP/p1.csv"
cp "$OUT" "$TMP/p.out"
expect 0 "$LETHE" predict --run "$TMP/r" --out "$TMP/p2.csv" --quiet
[ ! -s "$ERR" ] && cmp -s "$OUT" "$TMP/p.out" && cmp -s "$TMP/p1.csv" "$TMP/p2.csv" &&
    pass || fail "predict --quiet"
expect 3 "$LETHE" unlearn --run "$TMP/r" --method fisher --forget class:1 --lr 0.1 --out "$TMP/u4"
contains "$ERR" "fisher has no learning rate"
[ ! -e "$TMP/u4" ] && pass || fail "a refused unlearn left its output"
finish
