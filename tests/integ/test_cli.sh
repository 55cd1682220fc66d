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
for verb in data inspect stats version; do
    expect 0 "$LETHE" "$verb" --help
    contains "$OUT" "Usage: lethe $verb"
    expect 0 "$LETHE" help "$verb"
    expect 2 "$LETHE" "$verb" --no-such-flag
done
finish
