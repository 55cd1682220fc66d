#!/usr/bin/env bash
# lethe sisa under mpirun: two ranks write exactly the directory one process
# writes, for a training and for a deletion; a rank killed during training
# leaves a directory that --resume completes to the same bytes. Skipped when
# lethe was built without MPI or mpirun is missing.
. "$(dirname "$0")/lib.sh"

if ! "$LETHE" sisa --help | grep -qF "built with MPI"; then
    echo "  ($LETHE was built without MPI: skipped)"; finish; exit
fi
if ! command -v mpirun >/dev/null 2>&1; then
    echo "  (mpirun is not installed: skipped)"; finish; exit
fi
# CI runs as root; one OpenMP thread per rank, and the same in the reference,
# so every process trains with the same thread count.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none # no ptrace-based copies in containers
export TMPDIR="$TMP" # ranks' scratch directories, and what a killed rank leaves there
MPI=(mpirun -np 2 --oversubscribe)

# same DIR_A DIR_B: every file in both, with the same bytes; in ledger.log,
# the same records but for the wall-clock time each carries (and so its
# checksum), which differs between any two runs, one process or several.
same() {
    local rc=0
    diff -r -x ledger.log "$1" "$2" >"$TMP/diff" 2>&1 || rc=1
    if [ -e "$1/ledger.log" ] || [ -e "$2/ledger.log" ]; then
        diff <(sed -E 's/"time":"[^"]*"//; s/ [0-9a-f]{8}$//' "$1/ledger.log") \
             <(sed -E 's/"time":"[^"]*"//; s/ [0-9a-f]{8}$//' "$2/ledger.log") >>"$TMP/diff" 2>&1 \
            || rc=1
    fi
    if [ "$rc" -eq 0 ]; then pass; else
        fail "$1 and $2 differ"; sed 's/^/    /' "$TMP/diff" | head -n 5; fi
}

T="--data digits --shards 8 --slices 2 --epochs 300 --seed 7"
expect 0 "$LETHE" sisa train $T --out "$TMP/one"
expect 0 "${MPI[@]}" "$LETHE" sisa train $T --out "$TMP/two"
same "$TMP/one" "$TMP/two"
# only rank 0 prints the result; the plan names each rank's shards
[ "$(grep -c '^trained 8 shards x 2 slices' "$OUT")" -eq 1 ] && pass || fail "not one result line"
contains "$ERR" "sisa: rank 1 of 2 trains shards"
[ "$(ls "$TMP/two/ckpt" | wc -l)" -eq 16 ] && pass || fail "expected 16 checkpoints"

# A deletion: rank 0 records it, the affected shards retrain on both ranks.
expect 0 "$LETHE" train --data digits --epochs 1 --out "$TMP/run" --quiet
expect 0 "$LETHE" predict --run "$TMP/run" --split train --out "$TMP/tr.csv"
sed -n '2,6p' "$TMP/tr.csv" | cut -d, -f1 >"$TMP/del"
cp -r "$TMP/one" "$TMP/one_f"
cp -r "$TMP/one" "$TMP/two_f"
expect 0 "$LETHE" sisa forget "$TMP/one_f" --ids "$TMP/del"
expect 0 "${MPI[@]}" "$LETHE" sisa forget "$TMP/two_f" --ids "$TMP/del"
contains "$OUT" "request 1 recorded: 5 ids"
same "$TMP/one_f" "$TMP/two_f"
expect 0 "$LETHE" ledger verify "$TMP/two_f"
contains "$OUT" "1 applied, 0 pending"
# ... and equals training from scratch without the ids
expect 0 "${MPI[@]}" "$LETHE" sisa train $T --exclude "$TMP/del" --out "$TMP/ref_f"
diff <(grep -o '"sha256":.*' "$TMP/ref_f/state.json") \
     <(grep -o '"sha256":.*' "$TMP/two_f/state.json") >/dev/null \
    && pass || fail "forget under mpirun differs from the from-scratch retrain"
# commands on a directory run on rank 0 alone; errors are one line from it
expect 0 "${MPI[@]}" "$LETHE" sisa eval "$TMP/two_f" --json
one_line "$OUT"
expect 3 "${MPI[@]}" "$LETHE" sisa status "$TMP/missing"
contains "$ERR" "lethe sisa: $TMP/missing: not a SISA directory"

# Kill rank 1 once the first checkpoints are written.
"${MPI[@]}" "$LETHE" sisa train $T --out "$TMP/killed" >"$TMP/k.out" 2>"$TMP/k.err" &
job=$!
victim=""
for _ in $(seq 1 400); do
    if [ -d "$TMP/killed/ckpt" ] && [ -n "$(ls "$TMP/killed/ckpt")" ]; then
        for p in $(pgrep -P "$job"); do
            tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' \
                && victim=$p
        done
        [ -n "$victim" ] && break
    fi
    sleep 0.01
done
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"
rc=$?
[ -n "$victim" ] && pass || fail "rank 1 was not found to kill"
[ "$rc" -ne 0 ] && pass || fail "mpirun exited 0 with a killed rank"
contains "$TMP/k.err" "sisa: rank 1 of 2 trains shards"
n=$(ls "$TMP/killed/ckpt" | wc -l)
[ "$n" -ge 1 ] && [ "$n" -lt 16 ] && pass || fail "$n checkpoints after the kill (1-15 expected)"
[ ! -e "$TMP/killed/state.json" ] && pass || fail "state.json written by an interrupted training"
# what is kept is finished: each checkpoint equals the uninterrupted run's
bad=0
for f in "$TMP/killed/ckpt"/*; do cmp -s "$f" "$TMP/one/ckpt/$(basename "$f")" || bad=$((bad + 1)); done
[ "$bad" -eq 0 ] && pass || fail "$bad kept checkpoints are not the finished ones"
expect 3 "${MPI[@]}" "$LETHE" sisa train $T --out "$TMP/killed"
contains "$ERR" "already exists"
expect 3 "$LETHE" sisa train $T --epochs 299 --resume --out "$TMP/killed"
contains "$ERR" "created with other settings"
expect 2 "$LETHE" sisa train $T --resume --force --out "$TMP/killed"
expect 0 "${MPI[@]}" "$LETHE" sisa train $T --resume --out "$TMP/killed"
same "$TMP/one" "$TMP/killed"
# A rank whose work fails (here: no scratch directory) is named by rank 0's
# one-line error; the directory keeps what the others finished.
expect 3 mpirun --oversubscribe -np 1 "$LETHE" sisa train $T --out "$TMP/failed" \
    : -np 1 -x TMPDIR="$TMP/none" "$LETHE" sisa train $T --out "$TMP/failed"
contains "$ERR" "lethe sisa: rank 1: $TMP/none/lethe-sisa-"
contains "$ERR" "$TMP/failed/ckpt keeps the checkpoints finished so far"
[ "$(grep -c '^lethe sisa:' "$ERR")" -eq 1 ] && pass || fail "not one error line"
expect 0 "${MPI[@]}" "$LETHE" sisa train $T --resume --out "$TMP/failed"
same "$TMP/one" "$TMP/failed"
# a finished directory resumes to itself; --resume also creates
expect 0 "$LETHE" sisa train $T --resume --out "$TMP/killed"
same "$TMP/one" "$TMP/killed"
expect 0 "$LETHE" sisa train $T --resume --out "$TMP/fresh"
same "$TMP/one" "$TMP/fresh"
# every other verb refuses to run as several ranks (each would run it all)
expect 2 "${MPI[@]}" "$LETHE" s3t train --data digits --out "$TMP/s3t"
contains "$ERR" "only lethe sisa shares its work among the ranks of mpirun"
[ ! -e "$TMP/s3t" ] && pass || fail "s3t under mpirun wrote a directory"
expect 2 "$LETHE" s3t train --data digits --resume --out "$TMP/s3t"
contains "$ERR" "--resume is not an option of s3t train"
finish
