#!/usr/bin/env bash
# Load, speed and soak figures of `lethe serve` (docs/RELIABILITY.md):
#   1. single-stream completion speed through the server against
#      `lethe generate` on the same run (greedy, REPS runs each, medians);
#   2. wrk from loopback: completions (1, 4 and 16 connections) and
#      predictions (8 connections) for LOAD_S seconds each: requests/s,
#      p50/p99 latency, errors;
#   3. a soak: predictions and completions together for SOAK_S seconds,
#      the server's resident memory sampled every 2 s.
# usage: bench/serve_load.sh [GPT_RUN]   (default: a tiny GPT trained here)
# Environment: LETHE (build/lethe), REPS (5), LOAD_S (10), SOAK_S (120; 0:
# no soak), NEW (128: tokens per single-stream generation), SERVE_ARGS
# (more options for the GPT run's server, say "--guard G"), PROMPTS (the
# completion prompts loaded in turn, separated by '|', with \n for a
# newline; default one question),
# PREDICT (1; 0: no prediction server).
set -euo pipefail
cd "$(dirname "$0")/.."
LETHE=${LETHE:-build/lethe}
REPS=${REPS:-5} LOAD_S=${LOAD_S:-10} SOAK_S=${SOAK_S:-120} NEW=${NEW:-128}
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
command -v wrk >/dev/null || { echo "serve_load: wrk is missing (scripts/deps.sh)" >&2; exit 1; }

RUN=${1:-}
if [ -z "$RUN" ]; then
    RUN=$TMP/gpt
    cat README.md docs/*.md >"$TMP/all.txt"
    head -c 200000 "$TMP/all.txt" >"$TMP/corpus.txt"
    "$LETHE" train --model gpt --preset tiny --data "$TMP/corpus.txt" --out "$RUN" --steps 40 \
        --seq 64 --batch 8 --quiet
fi
PREDICT=${PREDICT:-1}
[ "$PREDICT" = 0 ] || "$LETHE" sisa train --data digits --limit 1000 --shards 4 --slices 2 \
    --epochs 3 --out "$TMP/sisa" --quiet

start() { # DIR [OPTIONS]: PORT and PID
    local dir=$1; shift
    # shellcheck disable=SC2086
    "$LETHE" serve --run "$dir" --port 0 --threads "${THREADS:-2}" "$@" >"$TMP/serve.out" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 600); do
        PORT=$(sed -n 's|^lethe serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$TMP/serve.out")
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "serve_load: the server did not start" >&2; exit 1
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }

PROMPT='Question: What is lethe?\nAnswer:'
echo "== single stream: $NEW new tokens, greedy, $REPS runs each (tok/s, medians)"
# lethe generate: the time of NEW tokens less the time of 1 (loading and the prompt)
gen_rate() {
    local t0 t1 t2
    t0=$(now); "$LETHE" generate --run "$RUN" --prompt "$(printf "$PROMPT")" --max-new 1 \
        --temperature 0 --quiet >/dev/null
    t1=$(now); "$LETHE" generate --run "$RUN" --prompt "$(printf "$PROMPT")" --max-new "$NEW" \
        --temperature 0 --stop "@@never@@" --quiet --json >"$TMP/gen.json"
    t2=$(now)
    /usr/bin/python3 -c "import json,sys; n=len(json.load(open('$TMP/gen.json'))['tokens']); print((n - 1) / (($t2 - $t1) - ($t1 - $t0)))"
}
# shellcheck disable=SC2086
start "$RUN" ${SERVE_ARGS:-}
srv_rate() { # the time of NEW tokens less the time of 1, through the server
    local t0 t1 t2
    t0=$(now); curl -s "http://127.0.0.1:$PORT/v1/completions" \
        -d "{\"prompt\": \"$PROMPT\", \"max_tokens\": 1, \"temperature\": 0}" >/dev/null
    t1=$(now); curl -s "http://127.0.0.1:$PORT/v1/completions" \
        -d "{\"prompt\": \"$PROMPT\", \"max_tokens\": $NEW, \"temperature\": 0, \"stop\": \"@@never@@\"}" >"$TMP/srv.json"
    t2=$(now)
    /usr/bin/python3 -c "import json; n=json.load(open('$TMP/srv.json'))['usage']['completion_tokens']; print((n - 1) / (($t2 - $t1) - ($t1 - $t0)))"
}
: >"$TMP/g" ; : >"$TMP/s"
for _ in $(seq "$REPS"); do gen_rate >>"$TMP/g"; srv_rate >>"$TMP/s"; done
g=$(median <"$TMP/g") s=$(median <"$TMP/s")
/usr/bin/python3 -c "print('lethe generate %.1f tok/s, lethe serve %.1f tok/s, ratio %.3f' % ($g, $s, $s / $g))"

load() { # NAME PATH BODY CONNECTIONS
    printf '%s' "$3" >"$TMP/body.json"
    BODY=$TMP/body.json wrk -t"$(( $4 < 2 ? 1 : 2 ))" -c"$4" -d"${LOAD_S}s" --timeout 30s --latency -s bench/serve_post.lua \
        "http://127.0.0.1:$PORT$2" >"$TMP/wrk.txt"
    awk -v n="$1" -v c="$4" '
        /Requests\/sec/ { rps = $2 } / 50% / { p50 = $2 } / 99% / { p99 = $2 }
        /requests in/ { total = $1 } /Non-2xx/ { bad = $5 } /Socket errors/ { sock = $0 }
        END { printf "%-28s c=%-3d %9.1f req/s  p50 %-9s p99 %-9s %d requests, %d non-2xx%s\n",
              n, c, rps, p50, p99, total, bad, sock ? "; " sock : "" }' "$TMP/wrk.txt"
}
echo "== wrk, $LOAD_S s each"
printf '%s\n' "${PROMPTS:-$PROMPT}" | tr '|' '\n' | while IFS= read -r p; do
    [ -n "$p" ] || continue
    COMPLETION=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"prompt": sys.argv[1].replace("\\n", "\n"), "max_tokens": 16, "temperature": 0}))' "$p")
    echo "-- $(printf '%s' "$p" | head -c 60)"
    for c in 1 4 16; do load "completions (16 tokens)" /v1/completions "$COMPLETION" "$c"; done
done
COMPLETION="{\"prompt\": \"$PROMPT\", \"max_tokens\": 16, \"temperature\": 0}"
kill "$PID"; wait "$PID" 2>/dev/null || true
[ "$PREDICT" = 0 ] && [ "$SOAK_S" = 0 ] && exit 0
[ "$PREDICT" = 0 ] && { echo "serve_load: the soak needs the prediction server" >&2; exit 1; }
start "$TMP/sisa"
ROW=$(/usr/bin/python3 -c 'print({"inputs": [[i % 17 for i in range(64)]]})' | tr "'" '"')
load "predictions (1 row)" /v1/predict "$ROW" 8
kill "$PID"; wait "$PID" 2>/dev/null || true

[ "$SOAK_S" = 0 ] && exit 0
echo "== soak: $SOAK_S s of predictions (4 connections) and completions (2), RSS every 2 s"
# shellcheck disable=SC2086
start "$RUN" ${SERVE_ARGS:-}
GPT_PID=$PID GPT_PORT=$PORT
start "$TMP/sisa"
printf '%s' "$ROW" >"$TMP/p.json"; printf '%s' "$COMPLETION" >"$TMP/c.json"
BODY=$TMP/p.json wrk -t1 -c4 -d"${SOAK_S}s" -s bench/serve_post.lua \
    "http://127.0.0.1:$PORT/v1/predict" >"$TMP/soak-p.txt" &
w1=$!
BODY=$TMP/c.json wrk -t1 -c2 -d"${SOAK_S}s" -s bench/serve_post.lua \
    "http://127.0.0.1:$GPT_PORT/v1/completions" >"$TMP/soak-c.txt" &
w2=$!
echo "seconds  predict_rss_kib  completions_rss_kib"
t=0
while kill -0 "$w1" 2>/dev/null; do
    printf '%7d  %15s  %19s\n' "$t" "$(awk '/VmRSS/ { print $2 }' "/proc/$PID/status")" \
        "$(awk '/VmRSS/ { print $2 }' "/proc/$GPT_PID/status")"
    sleep 2; t=$((t + 2))
done
wait "$w1" "$w2"
grep -h -E 'requests in|Non-2xx|Socket errors' "$TMP/soak-p.txt" "$TMP/soak-c.txt"
