#!/usr/bin/env bash
# lethe serve on a tiny GPT run: usage errors and refused settings; health,
# models, completions and chat (plain and streamed) with curl and with
# OpenAI's npm client; authority (no token, a wrong token, open reads);
# hostile requests (bad JSON, a huge body, wrong types, unknown fields and
# paths, a slow client) each getting its 4xx while the server keeps
# serving; a short load from wrk without an error; metrics; a clean stop on
# SIGTERM; a guarded server flagging forget questions, its targets added and
# removed live and the guard file following.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"

expect 0 "$LETHE" serve --help
contains "$OUT" "Usage: lethe serve --run RUN"
expect 2 "$LETHE" serve
one_line "$ERR"
expect 2 "$LETHE" serve --run x --frobnicate
expect 2 "$LETHE" serve --run x --port 70000
expect 2 "$LETHE" serve --run x --mode guard
expect 2 "$LETHE" serve --run x --guard g --mode frob
expect 3 "$LETHE" serve --run "$TMP/none" --port 0
one_line "$ERR"

cat README.md docs/*.md | head -c 40000 >"$TMP/corpus.txt"
RUN="$TMP/run"
expect 0 "$LETHE" train --model gpt --preset tiny --data "$TMP/corpus.txt" --out "$RUN" \
    --steps 3 --seq 32 --batch 2 --quiet
printf 's3cret-token\n' >"$TMP/token"
: >"$TMP/empty"
expect 3 "$LETHE" serve --run "$RUN" --host 0.0.0.0 --port 0
contains "$ERR" "token file is needed"
expect 3 "$LETHE" serve --run "$RUN" --port 0 --token-file "$TMP/empty"
one_line "$ERR"

# ---- a server with a token ----------------------------------------------------
start tok --run "$RUN" --token-file "$TMP/token" --threads 2 --timeout 2 --max-body 65536 \
    --model-name tiny
AUTH=(-H "Authorization: Bearer s3cret-token")
http 200 GET /health
contains "$OUT" '"status":"ok"'
http 401 GET /v1/models
envelope
http 401 GET /v1/models -H "Authorization: Bearer wrong"
http 401 GET /v1/models -H "Authorization: Bearer s3cret-token-and-more"
http 200 GET /v1/models "${AUTH[@]}"
contains "$OUT" '"id":"tiny"'
contains "$OUT" '"context_length":'
Q='Question: Where was the author born?\nAnswer:'
http 200 POST /v1/completions "${AUTH[@]}" -d "{\"prompt\": \"$Q\", \"max_tokens\": 6, \"temperature\": 0}"
contains "$OUT" '"object":"text_completion"'
contains "$OUT" '"completion_tokens":6'
http 200 POST /v1/chat/completions "${AUTH[@]}" \
    -d '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who?"}], "max_tokens": 4}'
contains "$OUT" '"role":"assistant"'
http 200 POST /v1/completions "${AUTH[@]}" -d "{\"prompt\": \"$Q\", \"max_tokens\": 5, \"stream\": true}"
contains "$OUT" 'data: {"id":"cmpl-'
contains "$OUT" 'data: [DONE]'

NM=${LETHE_DATA_DIR:-${HOME:-/root}/.cache/lethe}/node_modules
if command -v node >/dev/null && [ -f "$NM/openai/package.json" ]; then
    NODE_PATH=$NM LETHE_TOKEN=s3cret-token expect 0 node tests/integ/openai_client.cjs \
        "http://127.0.0.1:$PORT" tiny
    grep '^FAIL' "$OUT" | sed 's/^/    /'
    contains "$OUT" "ok   a streamed chat equals the plain one"
else
    fail "node or the openai npm client is missing (scripts/deps.sh installs them)"
fi

# a short load from wrk: every answer a 200
printf '{"prompt": "Question: Who?\\nAnswer:", "max_tokens": 4, "temperature": 0}' >"$TMP/body.json"
BODY=$TMP/body.json TOKEN=s3cret-token expect 0 wrk -t2 -c4 -d2s -s bench/serve_post.lua \
    "http://127.0.0.1:$PORT/v1/completions"
grep -q 'Non-2xx\|Socket errors' "$OUT" && fail "errors under load: $(grep -E 'Non-2xx|Socket' "$OUT")" || pass
grep -Eq '^ +[1-9][0-9]* requests in' "$OUT" && pass || fail "wrk made no requests"

# ---- hostile requests: each its 4xx, and the server stays up --------------------
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "max_tokens": '
envelope
contains "$OUT" 'invalid JSON'
http 400 POST /v1/completions "${AUTH[@]}" -d '[1, 2]'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": 7}'
contains "$OUT" '"param":"prompt"'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "max_tokens": "many"}'
contains "$OUT" '"param":"max_tokens"'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "temperature": -1}'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "n": 3}'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "bogus": true}'
contains "$OUT" 'unrecognized request argument supplied: bogus'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"max_tokens": 3}'
http 400 POST /v1/chat/completions "${AUTH[@]}" -d '{"messages": [{"role": "user"}]}'
http 400 POST /v1/chat/completions "${AUTH[@]}" -d '{"messages": [{"role": "wizard", "content": "x"}]}'
http 400 POST /v1/chat/completions "${AUTH[@]}" \
    -d '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}'
http 400 POST /v1/completions "${AUTH[@]}" -d '{"prompt": "x", "stop": [1]}'
http 400 POST /v1/completions "${AUTH[@]}" --data-binary $'{"prompt": "x\x00"}'
head -c 200000 /dev/zero | tr '\0' 'a' >"$TMP/big"
http 413 POST /v1/completions "${AUTH[@]}" --data-binary @"$TMP/big"
envelope
http 413 POST /v1/completions "${AUTH[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big"
http 404 GET /v1/nothing "${AUTH[@]}"
http 405 DELETE /v1/completions "${AUTH[@]}"
http 404 POST /v1/predict "${AUTH[@]}" -d '{"inputs": [[1]]}'
http 404 POST /v1/deletions "${AUTH[@]}" -d '{"ids": [1]}'
http 401 POST /v1/deletions -d '{"ids": [1]}'
http 404 POST /v1/guard/targets "${AUTH[@]}" -d '{"name": "x"}'
# a slow client: half a request line, then nothing; it is dropped after
# --timeout 2 s while others are served
exec 7<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\n' >&7
http 200 GET /health
sleep 3.5
if timeout 2 cat <&7 >/dev/null; then pass; else fail "the slow connection was not closed"; fi
exec 7>&-
http 200 GET /health
http 200 GET /metrics "${AUTH[@]}"
contains "$OUT" 'lethe_requests_total{endpoint="completions"}'
contains "$OUT" 'lethe_request_seconds_bucket{endpoint="chat",le="+Inf"}'
contains "$OUT" 'lethe_tokens_total{kind="completion"}'
grep -q 'lethe_request_errors_total{endpoint="completions"} [1-9]' "$OUT" && pass ||
    fail "no completion errors counted"
stop tok

# ---- behind a guard: flagged answers, targets edited live and persisted ----------
# 40 authors (as tests/integ/test_guard.sh): forget10 is 4 of them, and the
# retain authors outside the evaluation set fit the classifier
expect 0 "$LETHE" data make authors --authors 40 --qa 5 --out "$TMP/bench"
/usr/bin/python3 - "$TMP/bench" <<'PYEOF'
import json, sys
d = sys.argv[1]
with open(d + "/train.jsonl", "w") as out:
    for line in open(d + "/full.json"):
        r = json.loads(line)
        out.write(json.dumps({"text": "Question: %s\nAnswer: %s" % (r["question"], r["answer"])}) + "\n")
PYEOF
expect 0 "$LETHE" train --model gpt --preset tiny --data "$TMP/bench/train.jsonl" --vocab 400 \
    --seq 64 --batch 8 --steps 20 --lr 3e-3 --val 0 --seed 1 --out "$TMP/a" --quiet
G=$TMP/g.guard
expect 0 "$LETHE" guard fit --run "$TMP/a" --data "$TMP/bench" --split forget10 --alpha 0.05 --out "$G"
expect 3 "$LETHE" serve --run "$RUN" --guard "$G" --port 0
contains "$ERR" "not this one"
start guard --run "$TMP/a" --guard "$G" --token-file "$TMP/token" --open-reads
http 200 GET /v1/models
contains "$OUT" '"guarded":true'
FQ=$(/usr/bin/python3 -c "import json,sys; print(json.dumps(json.loads(open(sys.argv[1]).readline())['question']))" \
    "$TMP/bench/forget10.json")
http 200 POST /v1/chat/completions -d "{\"messages\": [{\"role\": \"user\", \"content\": $FQ}], \"max_tokens\": 8}"
contains "$OUT" '"guard":{"flagged":true'
http 200 POST /v1/completions -d '{"prompt": "Question: Who is Zyxw Qqqv?\nAnswer:", "max_tokens": 4, "stream": true}'
contains "$OUT" 'data: [DONE]'
# an unflagged prompt is decoded as without the guard, and streamed token by token
http 200 POST /v1/completions -d '{"prompt": "Moby", "max_tokens": 8, "temperature": 0}'
contains "$OUT" '"guard":{"flagged":false'
PLAIN=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['choices'][0]['text'])" "$OUT")
expect 0 "$LETHE" generate --run "$TMP/a" --prompt "Moby" --max-new 8 --temperature 0 --json
/usr/bin/python3 -c "import json,sys; sys.exit(json.load(open(sys.argv[1], errors='replace'))['text'] != sys.argv[2])" \
    "$OUT" "$PLAIN" && pass || fail "the unflagged answer '$PLAIN' is not lethe generate's: $(head -c 300 "$OUT")"
http 200 POST /v1/completions -d '{"prompt": "Moby", "max_tokens": 8, "temperature": 0, "stream": true}'
n=$(grep -c '"text":"[^"]' "$OUT")
[ "$n" -ge 3 ] && pass || fail "an unflagged stream came in $n pieces"
http 200 GET /v1/guard/targets
n0=$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['targets']))" "$OUT")
http 401 POST /v1/guard/targets -d '{"name": "Zyxw Qqqv"}'
http 400 POST /v1/guard/targets "${AUTH[@]}" -d '{"aliases": ["x"]}'
http 400 POST /v1/guard/targets "${AUTH[@]}" -d '{"name": "Zyxw Qqqv", "colour": "red"}'
http 201 POST /v1/guard/targets "${AUTH[@]}" \
    -d '{"name": "Zyxw Qqqv", "aliases": ["Qqqv"], "ngrams": ["zyxw qqqv lives"]}'
TID=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['id'])" "$OUT")
http 400 POST /v1/guard/targets "${AUTH[@]}" -d '{"name": "Zyxw Qqqv"}'
expect 0 "$LETHE" guard list "$G"
contains "$OUT" "Zyxw Qqqv"
http 200 POST /v1/completions -d '{"prompt": "Question: Where does Qqqv live?\nAnswer:", "max_tokens": 4}'
contains "$OUT" '"guard":{"flagged":true'
http 404 DELETE "/v1/guard/targets/99999" "${AUTH[@]}"
http 200 DELETE "/v1/guard/targets/$TID" "${AUTH[@]}"
http 200 GET /v1/guard/targets
/usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['targets']; sys.exit(len(t) != $n0)" "$OUT" &&
    pass || fail "the target list did not return to $n0 targets"
expect 0 "$LETHE" guard list "$G"
grep -q "Zyxw" "$OUT" && fail "the removed target is still in the guard file" || pass
http 200 GET /metrics
grep -q 'lethe_guard_flagged_total [1-9]' "$OUT" && pass || fail "no flagged prompt counted"
stop guard

# ---- ALU: the served model is its agents' chat model ----------------------------
# A 20-step model writes no JSON list of rewrites, so a flagged question ends
# in a refusal at the erase stage after two calls, never in the first answer.
start alu --run "$TMP/a" --guard "$G" --mode alu
http 200 POST /v1/chat/completions -d "{\"messages\": [{\"role\": \"user\", \"content\": $FQ}], \"max_tokens\": 8}"
contains "$OUT" '"guard":{"flagged":true,"refused":true,"alu":{"stage":"refused_erase","calls":2,'
http 200 POST /v1/chat/completions -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}'
contains "$OUT" 'data: [DONE]'
http 400 POST /v1/chat/completions -d '{"messages": [{"role": "assistant", "content": "Hi"}]}'
stop alu
# ALU's agents over lethe serve's chat endpoint, end to end, answer as they do
# with the same model in the process: same stage, calls, tokens and text
# (replies of 8 tokens keep AuditErase's prompt inside the tiny model's 256
# positions: the server refuses a longer prompt, the process would cut it)
Q=$(/usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['question'])" \
    "$TMP/bench/forget10.json")
start plain_a --run "$TMP/a"
expect 0 "$LETHE" generate --guard "$G" --mode alu --endpoint "http://127.0.0.1:$PORT" \
    --endpoint-model a --prompt "$Q" --max-new 8 --json
cp "$OUT" "$TMP/alu_http.json"
expect 0 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode alu --prompt "$Q" --max-new 8 --json
cmp -s "$OUT" "$TMP/alu_http.json" && pass ||
    fail "ALU over HTTP and in process differ: $(cat "$TMP/alu_http.json") / $(cat "$OUT")"
contains "$OUT" '"stage":"refused_erase","targets":1,"calls":2'
stop plain_a

# ---- open reads, no token: reads are open, changes refused ----------------------
start open --run "$RUN" --open-reads
http 200 GET /v1/models
http 200 POST /v1/completions -d '{"prompt": "a", "max_tokens": 2}'
http 403 POST /v1/deletions -d '{"ids": [1]}'
envelope
stop open

finish
