#!/usr/bin/env bash
# Outputs: what is already at an output path (a symlink, a FIFO, a character
# device) is written through or followed, never replaced by a regular file.
# The devices are made inside the test's own directory; the system's are
# never touched. Run directories and output files: an existing output is
# refused (exit 3) unless --force, an output equal to, inside or around an
# input run is refused (exit 3), and a run that fails or is interrupted by
# SIGINT/SIGTERM leaves no directory and no *.tmp.* file.
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

# ---- run directories

# absent PATH: nothing at PATH
absent() { if [ ! -e "$1" ] && [ ! -L "$1" ]; then pass; else fail "$1 was left behind"; fi; }
expect 0 "$LETHE" train --data digits --out "$TMP/r" --epochs 2 --quiet
sum=$(sha256sum "$TMP/r/model.safetensors")
# an existing run is refused, and left as it was; --force writes over it
expect 3 "$LETHE" train --data digits --out "$TMP/r" --epochs 3 --quiet
one_line "$ERR"
contains "$ERR" "lethe train: $TMP/r: already exists"
contains "$ERR" "with --force"
[ "$(sha256sum "$TMP/r/model.safetensors")" = "$sum" ] && pass || fail "a refused run changed the old one"
expect 0 "$LETHE" train --data digits --out "$TMP/r" --epochs 3 --quiet --force
[ "$(sha256sum "$TMP/r/model.safetensors")" != "$sum" ] && pass || fail "--force did not rewrite the run"
# an empty directory is fine
mkdir "$TMP/empty"
expect 0 "$LETHE" train --data digits --out "$TMP/empty" --epochs 1 --quiet
# a task's name is not an input path: ./digits/run is fine for --data digits
mkdir -p "$TMP/cwd/digits"
expect 0 env -C "$TMP/cwd" "$(realpath "$LETHE")" train --data digits --out digits/run --epochs 1 --quiet

# unlearn: never into its input run, nor inside it, nor around it
sum=$(sha256sum "$TMP/r/model.safetensors")
for out in "$TMP/r" "$TMP/r/sub" "$TMP"; do
    expect 3 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$out" --force --quiet
    one_line "$ERR"
done
contains "$ERR" "contains the input"
absent "$TMP/r/sub"
[ "$(sha256sum "$TMP/r/model.safetensors")" = "$sum" ] && pass || fail "unlearn changed its input run"
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$TMP/u" --quiet
expect 3 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$TMP/u" --quiet
contains "$ERR" "already exists"
expect 0 "$LETHE" unlearn --run "$TMP/r" --method ga --forget class:1 --out "$TMP/u" --quiet --force

# a run that fails once its directory exists leaves none behind
expect 3 "$LETHE" unlearn --run "$TMP/r" --method gaussian --forget class:1 --out "$TMP/f1" --quiet
contains "$ERR" "gaussian is for regressors only"
absent "$TMP/f1"
expect 1 "$LETHE" train --data boston --out "$TMP/f2/deep/run" --optim sgd --lr 100 --quiet
contains "$ERR" "diverged"
absent "$TMP/f2"
expect 3 "$LETHE" data make authors --authors 10 --qa 1 --idk "$TMP/no-such-file" --out "$TMP/f3"
absent "$TMP/f3"

# data make: the same rule
expect 0 "$LETHE" data make authors --authors 10 --qa 1 --out "$TMP/dm"
expect 3 "$LETHE" data make authors --authors 10 --qa 1 --out "$TMP/dm"
one_line "$ERR"
contains "$ERR" "already exists"
expect 0 "$LETHE" data make authors --authors 10 --qa 1 --out "$TMP/dm" --force

# output files: tokenizer train and predict --out
printf 'the cat sat on the mat, the cat ate the rat\n' >"$TMP/corpus.txt"
expect 0 "$LETHE" tokenizer train --corpus "$TMP/corpus.txt" --vocab 270 --out "$TMP/tok.json"
expect 3 "$LETHE" tokenizer train --corpus "$TMP/corpus.txt" --vocab 270 --out "$TMP/tok.json"
one_line "$ERR"
contains "$ERR" "already exists"
expect 0 "$LETHE" tokenizer train --corpus "$TMP/corpus.txt" --vocab 270 --out "$TMP/tok.json" --force
expect 3 "$LETHE" tokenizer train --corpus "$TMP/corpus.txt" --vocab 270 --out "$TMP/corpus.txt" --force
contains "$ERR" "is also an input"
[ "$(head -c 7 "$TMP/corpus.txt")" = "the cat" ] && pass || fail "tokenizer train overwrote its corpus"
expect 0 "$LETHE" predict --run "$TMP/r" --out "$TMP/p.csv"
expect 3 "$LETHE" predict --run "$TMP/r" --out "$TMP/p.csv"
contains "$ERR" "already exists"
expect 0 "$LETHE" predict --run "$TMP/r" --out "$TMP/p.csv" --force
expect 3 "$LETHE" predict --run "$TMP/r" --out "$TMP/r/p.csv"
contains "$ERR" "lies inside the input"
absent "$TMP/r/p.csv"

# SIGINT / SIGTERM mid-run: the process dies by the signal (128 + N) and
# leaves no directory and no temporary file
# interrupted SIG CMD...: run CMD for a second, then send SIG
interrupted() {
    local sig=$1 want=$2; shift 2
    timeout --preserve-status -s "$sig" 1 "$@" >"$OUT" 2>"$ERR"; local rc=$?
    if [ "$rc" -eq "$want" ]; then pass; else fail "exit $rc after SIG$sig, expected $want: $*"; fi
}
mkdir "$TMP/sig"
interrupted INT 130 "$LETHE" train --data digits --out "$TMP/sig/t1" --epochs 100000 --quiet
absent "$TMP/sig/t1"
interrupted TERM 143 "$LETHE" train --data digits --out "$TMP/sig/t2/deep" --epochs 100000 --quiet
absent "$TMP/sig/t2"
interrupted INT 130 "$LETHE" data make authors --authors 10000 --qa 50 --out "$TMP/sig/dm"
absent "$TMP/sig/dm"
# signals in a burst (timeout signals the process and its group; a user
# presses Ctrl-C twice): a second one reaching another thread while the
# first is being handled must not cut the clean-up short
left=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    "$LETHE" train --data digits --out "$TMP/sig/b$i/deep" --epochs 100000 --quiet >/dev/null 2>&1 &
    pid=$!
    sleep 0.5
    kill -TERM "$pid"; kill -TERM "$pid"; kill -INT "$pid"
    wait "$pid"
    [ -e "$TMP/sig/b$i" ] && left=$((left + 1))
done
[ "$left" -eq 0 ] && pass || fail "$left of 10 runs signalled in a burst left their directory"
# into an existing run with --force: the run stays, its temporary files go
interrupted TERM 143 "$LETHE" unlearn --run "$TMP/r" --method ft --forget class:1 --set epochs=100000 --out "$TMP/u" --force --quiet
[ -e "$TMP/u/model.safetensors" ] && pass || fail "an interrupted --force run removed the old run"

# fit, sisa train and s3t train: the same rule, applied where the library
# creates the directory
E="--data digits --limit 200 --shards 2 --epochs 1 --quiet"
S3="--widths 32-32 --slices 2"
expect 0 "$LETHE" fit --data boston --out "$TMP/fit" --quiet
sum=$(sha256sum <"$TMP/fit/model.safetensors")
expect 3 "$LETHE" fit --data boston --lambda 3 --out "$TMP/fit" --quiet
one_line "$ERR"; contains "$ERR" "lethe fit: $TMP/fit: already exists"; contains "$ERR" "with --force"
[ "$(sha256sum <"$TMP/fit/model.safetensors")" = "$sum" ] && pass || fail "a refused fit changed the old run"
expect 0 "$LETHE" fit --data boston --lambda 3 --out "$TMP/fit" --quiet --force
[ "$(sha256sum <"$TMP/fit/model.safetensors")" != "$sum" ] && pass || fail "fit --force did not rewrite the run"
mkdir "$TMP/fx"; seq 0 9 >"$TMP/fx/ids.txt"
for verb in fit train; do
    for s in "$TMP/fx/ids.txt" "ids:$TMP/fx/ids.txt"; do
        expect 3 "$LETHE" $verb --data boston --exclude "$s" --out "$TMP/fx" --force --quiet
        one_line "$ERR"; contains "$ERR" "contains the input $TMP/fx/ids.txt"
        [ "$(ls -A "$TMP/fx")" = ids.txt ] && pass || fail "$verb left in $TMP/fx: $(ls -A "$TMP/fx")"
    done
done
expect 3 "$LETHE" fit --data breast-cancer --model ridge --out "$TMP/ff/run" --quiet
absent "$TMP/ff"
for v in sisa s3t; do
    x=""; [ "$v" = s3t ] && x=$S3
    expect 0 "$LETHE" $v train $E $x --out "$TMP/$v"
    expect 3 "$LETHE" $v train $E $x --out "$TMP/$v"
    one_line "$ERR"; contains "$ERR" "lethe $v: $TMP/$v: already exists"; contains "$ERR" "with --force"
    expect 3 "$LETHE" $v train $E $x --out "$TMP/r" # a train run: not empty
    absent "$TMP/r/$v.json"
    # the exclusion file is an input: a directory holding it is refused
    mkdir "$TMP/${v}x"; seq 0 3 >"$TMP/${v}x/ids.txt"
    for s in "$TMP/${v}x/ids.txt" "ids:$TMP/${v}x/ids.txt"; do
        expect 3 "$LETHE" $v train $E $x --exclude "$s" --out "$TMP/${v}x" --force
        one_line "$ERR"; contains "$ERR" "contains the input $TMP/${v}x/ids.txt"
        [ "$(ls -A "$TMP/${v}x")" = ids.txt ] && pass || fail "left in $TMP/${v}x: $(ls -A "$TMP/${v}x")"
    done
    [ "$(cat "$TMP/${v}x/ids.txt")" = "$(seq 0 3)" ] && pass || fail "the exclusion file changed"
    # --force replaces the ensemble: its old ledger does not carry over
    "$LETHE" $v forget "$TMP/$v" --ids random:0.05 --quiet 2>/dev/null # s3t: may kill all
    expect 0 "$LETHE" $v status "$TMP/$v" --json
    contains "$OUT" '"requests":1'
    expect 0 "$LETHE" $v train $E $x --seed 5 --out "$TMP/$v" --force
    expect 0 "$LETHE" $v status "$TMP/$v" --json
    contains "$OUT" '"requests":0'
    # a training that fails leaves no directory
    expect 1 "$LETHE" $v train $E $x --lr 1e6 --out "$TMP/${v}f/deep"
    contains "$ERR" "diverged"
    absent "$TMP/${v}f"
    interrupted INT 130 "$LETHE" $v train $x --data digits --shards 2 --epochs 100000 --out "$TMP/sig/$v"
    absent "$TMP/sig/$v"
done
# one writer at a time: a second, forced writer of a directory being
# written fails at once (exit 1) and leaves the first one's run alone
"$LETHE" sisa train --data digits --shards 2 --epochs 100000 --out "$TMP/sig/busy" --quiet 2>/dev/null &
pid=$!
for _ in $(seq 50); do [ -e "$TMP/sig/busy/sisa.json" ] && break; sleep 0.1; done
expect 1 "$LETHE" train --data digits --epochs 1 --out "$TMP/sig/busy" --force --quiet
one_line "$ERR"; contains "$ERR" "locked by another writer"
absent "$TMP/sig/busy/model.safetensors"
kill -TERM "$pid"; wait "$pid"
absent "$TMP/sig/busy"
no_temp "$TMP"
[ -z "$(ls -A "$TMP/sig")" ] && pass || fail "left in $TMP/sig: $(ls -A "$TMP/sig")"
finish
