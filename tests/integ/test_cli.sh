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
# unlearn --lr on a classifier run: the method's lr, as --set lr=X
expect 0 "$LETHE" train --data iris --out "$TMP/r" --epochs 2 --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --lr 0.003 --out "$TMP/u1" --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --set lr=0.003 --out "$TMP/u2" --quiet
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$TMP/u3" --quiet
cmp -s "$TMP/u1/model.safetensors" "$TMP/u2/model.safetensors" && pass || fail "--lr differs from --set lr"
cmp -s "$TMP/u1/model.safetensors" "$TMP/u3/model.safetensors" && fail "--lr had no effect" || pass
contains "$TMP/u1/config.json" '"lr":	0.003'
expect 3 "$LETHE" unlearn --run "$TMP/r" --method fisher --forget class:1 --lr 0.1 --out "$TMP/u4"
contains "$ERR" "fisher has no learning rate"
[ ! -e "$TMP/u4" ] && pass || fail "a refused unlearn left its output"
finish
