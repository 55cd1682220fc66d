#!/usr/bin/env bash
# Outputs: what is already at an output path (a symlink, a FIFO, a character
# device) is written through or followed, never replaced by a regular file.
# The devices are made inside the test's own directory; the system's are
# never touched.
. "$(dirname "$0")/lib.sh"

FX=tests/ref/fixtures
GPT2=(--vocab "$FX/gpt2-vocab.json.gz" --merges "$FX/gpt2-merges.txt.gz")
# kind PATH: the file type of PATH itself (not what a link points at)
kind() { stat -c %F "$1" 2>/dev/null; }
# no_temp DIR: nothing named *.tmp.* anywhere under DIR
no_temp() {
    local left; left=$(find "$1" -name '*.tmp.*' 2>/dev/null)
    if [ -z "$left" ]; then pass; else fail "temporary files left: $left"; fi
}

# --out through a symlink: the file it names is rewritten, the link stays
d="$TMP/links"; mkdir -p "$d"
echo old >"$d/target.txt"
ln -s target.txt "$d/link.txt"
expect 0 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496 995" --out "$d/link.txt"
[ "$(kind "$d/link.txt")" = "symbolic link" ] && pass || fail "the symlink was replaced: $(kind "$d/link.txt")"
[ "$(cat "$d/target.txt")" = "Hello world" ] && pass || fail "the link's target holds '$(cat "$d/target.txt")'"
# a link to nothing, and a directory, are refused
ln -s nowhere "$d/dangling"
expect 3 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496" --out "$d/dangling"
one_line "$ERR"
[ "$(kind "$d/dangling")" = "symbolic link" ] && pass || fail "the dangling link was replaced"
expect 3 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496" --out "$d"
no_temp "$d"

# --out a FIFO: written through to its reader, still a FIFO afterwards
mkfifo "$d/fifo"
timeout 20 cat "$d/fifo" >"$TMP/from-fifo" &
reader=$!
expect 0 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496 995" --out "$d/fifo"
wait "$reader"
[ "$(cat "$TMP/from-fifo")" = "Hello world" ] && pass || fail "the FIFO's reader got '$(cat "$TMP/from-fifo")'"
[ "$(kind "$d/fifo")" = "fifo" ] && pass || fail "the FIFO was replaced: $(kind "$d/fifo")"

# --out a character device (a null device made here; needs root)
if mknod "$d/null" c 1 3 2>/dev/null; then
    expect 0 "$LETHE" tokenizer decode "${GPT2[@]}" --ids "15496 995" --out "$d/null"
    [ "$(kind "$d/null")" = "character special file" ] && pass || fail "tokenizer decode replaced the device: $(kind "$d/null")"
    expect 0 "$LETHE" train --data iris --out "$TMP/iris" --epochs 1 --quiet
    expect 0 "$LETHE" predict --run "$TMP/iris" --out "$d/null"
    [ "$(kind "$d/null")" = "character special file" ] && pass || fail "predict replaced the device: $(kind "$d/null")"
    expect 0 "$LETHE" tokenizer train --corpus README.md --vocab 300 --out "$d/null"
    [ "$(kind "$d/null")" = "character special file" ] && pass || fail "tokenizer train replaced the device: $(kind "$d/null")"
else
    echo "  (not root: the character device checks are skipped)"
fi
no_temp "$d"
finish
