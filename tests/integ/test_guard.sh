#!/usr/bin/env bash
# lethe guard fit|add|remove|list, generate --guard and eval tofu --guard on
# a tiny GPT run over a small generated benchmark: the derived targets, the
# same file twice, outputs that are not ours refused, edits in place, a
# damaged file and another model's guard refused, guarded answers holding
# no forbidden n-gram the prompt did not hold, the guarded evaluation's
# keys; usage errors exit 2, bad input 3 with one line.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
D=$TMP/bench
# 40 authors: forget10 is 4 of them; the retain evaluation set (20 authors)
# is left out of the fit, which keeps 16 authors' 80 questions
expect 0 "$LETHE" data make authors --authors 40 --qa 5 --out "$D"
for f in real_authors_perturbed.json world_facts_perturbed.json; do
    head -n 8 "$D/$f" >"$TMP/cut" && mv "$TMP/cut" "$D/$f"
done
$PY - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
with open(d + "/train.jsonl", "w") as out:
    for line in open(d + "/full.json"):
        r = json.loads(line)
        out.write(json.dumps({"text": "Question: %s\nAnswer: %s" % (r["question"], r["answer"])}) + "\n")
EOF
train() { # seed steps out
    expect 0 "$LETHE" train --model gpt --preset tiny --data "$D/train.jsonl" --vocab 400 --seq 64 \
        --batch 8 --steps "$2" --lr 3e-3 --val 0 --seed "$1" --out "$3" --quiet
}
train 1 60 "$TMP/a"
train 2 2 "$TMP/b" # another model
G=$TMP/g.guard
E0=("$LETHE" eval tofu --data "$D" --split forget10 --max-new 4 --quiet --run "$TMP/a" --out "$TMP/e0")
FIT=("$LETHE" guard fit --run "$TMP/a" --data "$D" --split forget10 --alpha 0.05)

expect 0 "$LETHE" guard --help
contains "$OUT" "lethe guard fit --run RUN"
expect 0 "$LETHE" help
contains "$OUT" "guard"
expect 2 "$LETHE" guard
expect 2 "$LETHE" guard frobnicate
expect 2 "$LETHE" guard fit --run "$TMP/a" --data "$D"
one_line "$ERR"
expect 2 "$LETHE" guard fit --run "$TMP/a" --data "$D" --out "$G" --max-n 6
expect 2 "$LETHE" guard fit --run "$TMP/a" --data "$D" --out "$G" --name x

expect 0 "${FIT[@]}" --out "$G" --json
cp "$OUT" "$TMP/fit.json"
if $PY - "$TMP/fit.json" <<'EOF'; then pass; else fail "guard fit summary"; fi
import json, sys
s = json.load(open(sys.argv[1]))
assert s["targets_from"] == "derived" and s["targets"] == 4, s
assert s["forget_pairs"] == 20 and s["answers"] == 20 and s["unassigned"] == 0, s
assert s["retain_pairs"] == 80 and s["retain_excluded"] == 100, s
assert s["fit_negatives"] + s["calibration_negatives"] == 80, s
assert s["fpr_calibration"] <= 0.05 and 0 <= s["tpr_forget"] <= 1, s
assert s["model_hash"].startswith("sha256:") and s["ngrams"] > 4, s
EOF
# the same inputs give the same bytes; an existing file needs --force
cp "$G" "$TMP/g1"
expect 3 "${FIT[@]}" --out "$G"
one_line "$ERR"
contains "$ERR" "--force"
expect 0 "${FIT[@]}" --out "$G" --force
cmp -s "$G" "$TMP/g1" && pass || fail "guard fit is not deterministic"
# paths that are not ours to replace
expect 3 "${FIT[@]}" --out /dev/null --force
[ -c /dev/null ] && pass || fail "/dev/null was replaced"
mkdir "$TMP/dir"
expect 3 "${FIT[@]}" --out "$TMP/dir" --force
[ -d "$TMP/dir" ] && pass || fail "a directory was replaced"
expect 3 "${FIT[@]}" --out "$TMP/a/model.safetensors" --force
# given targets, and bad target files
NAME=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['question'])" \
    "$D/forget10.json")
echo '["not a name in the benchmark", {"name": "Nobody Atall", "aliases": ["Atall"]}]' >"$TMP/t.json"
expect 0 "${FIT[@]}" --out "$TMP/given.guard" --targets "$TMP/t.json"
contains "$OUT" "unassigned               20"
echo '{"name": "x"}' >"$TMP/bad.json"
expect 3 "${FIT[@]}" --out "$TMP/bad.guard" --targets "$TMP/bad.json"
one_line "$ERR"
[ ! -e "$TMP/bad.guard" ] && pass || fail "a failed fit left a file"
expect 3 "${FIT[@]}" --out "$TMP/bad.guard" --split forget1x
expect 3 "$LETHE" guard fit --run "$TMP/a" --data "$TMP/nowhere" --out "$TMP/bad.guard"

# list and edits
expect 0 "$LETHE" guard list "$G"
contains "$OUT" "classifier: model features, dim 128"
expect 0 "$LETHE" guard list "$G" --json
contains "$OUT" '"n_targets":	4'
expect 0 "$LETHE" guard add "$G" --name "Ada Quimby" --alias Quimby --ngram "Tallinn harbour" \
    --answer "Ada Quimby was born in Tallinn."
contains "$OUT" "added target 4"
expect 3 "$LETHE" guard add "$G" --name "Ada Quimby"
one_line "$ERR"
expect 0 "$LETHE" guard list "$G" --full
contains "$OUT" "ngram: Tallinn harbour"
expect 0 "$LETHE" guard remove "$G" --name "Ada Quimby" --json
contains "$OUT" '"id": 4'
expect 3 "$LETHE" guard remove "$G" --name "Ada Quimby"
expect 3 "$LETHE" guard remove "$G" --id 77
expect 2 "$LETHE" guard remove "$G" --id 1 --name "Ada Quimby"
expect 2 "$LETHE" guard remove "$G"
expect 2 "$LETHE" guard list "$G" --name x
expect 2 "$LETHE" guard list "$G" --run "$TMP/a"
expect 3 "$LETHE" guard list "$TMP/nowhere.guard"
# a damaged file: the checksum fails
cp "$G" "$TMP/dam.guard"
printf 'X' | dd of="$TMP/dam.guard" bs=1 seek=40 conv=notrunc 2>/dev/null
expect 3 "$LETHE" guard list "$TMP/dam.guard"
one_line "$ERR"

# guarded generation: forget questions are flagged and answered without a
# forbidden n-gram the prompt does not hold
expect 0 "$LETHE" guard list "$G" --full --json
cp "$OUT" "$TMP/list.json"
: >"$TMP/gen.jsonl"
$PY -c "
import json, sys
for line in list(open(sys.argv[1]))[:6]:
    print(json.loads(line)['question'])" "$D/forget10.json" >"$TMP/qs"
while IFS= read -r q; do
    "$LETHE" generate --run "$TMP/a" --guard "$G" --mode guard --max-new 24 --json \
        --prompt "Question: $q
Answer:" >>"$TMP/gen.jsonl" 2>"$ERR" || fail "generate --guard: $(cat "$ERR")"
done <"$TMP/qs"
if $PY - "$TMP/list.json" "$TMP/gen.jsonl" "$TMP/qs" <<'EOF'; then pass; else fail "guarded answers"; fi
import json, re, sys
g = json.load(open(sys.argv[1]))
gens = [json.loads(l) for l in open(sys.argv[2])]
qs = open(sys.argv[3]).read().splitlines()
assert len(gens) == 6
norm = lambda s: " " + " ".join(re.findall(r"[a-z0-9\x80-\uffff]+", s.lower())) + " "
for q, r in zip(qs, gens):
    assert r["flagged"] is True and r["targets"], r
    for t in g["targets"]:
        if t["id"] not in r["targets"]:
            continue
        for ng in t["ngram_texts"]:
            if norm(ng) in norm("Question: " + q + "\nAnswer:"):
                continue
            assert norm(ng) not in norm(r["text"]), (q, r["text"], ng)
EOF
expect 0 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode guard --beam 2 --prompt "Moby"
expect 3 "$LETHE" generate --run "$TMP/b" --guard "$G" --mode guard --prompt "Question: x"
contains "$ERR" "made for model"
one_line "$ERR"
expect 3 "$LETHE" generate --run "$TMP/a" --guard "$TMP/dam.guard" --mode guard --prompt "x"
# ALU with the run's own model as its chat model, in this process
expect 0 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode alu --prompt "x" --max-new 4 --json
contains "$OUT" '"calls":'
expect 0 "${E0[@]}" --guard "$G" --mode alu --json
if $PY -c "
import json, sys
a = json.load(open(sys.argv[1]))['alu']
assert a['agent'] == 'local', a
for s in ('forget', 'retain'):
    n = a[s]
    assert n['calls'] >= n['queries'] > 0 and n['prompt_tokens'] > 0, a
    assert sum(n['stages'].values()) == n['queries'], a
" "$OUT"; then pass; else fail "eval tofu --mode alu, local: $(head -c 300 "$OUT")"; fi
expect 2 "${E0[@]}" --guard "$G" --mode guard --endpoint http://127.0.0.1:1
expect 3 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode gaurd --prompt "x"
expect 2 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode eco --eco-fn loud --prompt "x"
expect 2 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode eco --eco-sigma -1 --prompt "x"
# ECO: the flagged prompt's entity positions corrupted, nothing forbidden
Q1=$(head -n 1 "$TMP/qs")
expect 0 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode eco --eco-sigma 5 --json \
    --max-new 8 --prompt "Question: $Q1
Answer:"
if $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['flagged'] and r['corrupted_positions'] >= 1 and r['forbidden_ngrams'] == 0, r
" "$OUT"; then pass; else fail "generate --mode eco"; fi
expect 2 "$LETHE" generate --run "$TMP/a" --guard "$G" --prompt "x"
expect 2 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode guard --tokens "1 2"
expect 3 "$LETHE" generate --run "$TMP/a" --guard "$G" --mode guard --prompt "x" --temperature 0.5

# the guarded evaluation: the model's scores, the guard's answers
E=("$LETHE" eval tofu --data "$D" --split forget10 --max-new 16 --quiet)
expect 0 "${E[@]}" --run "$TMP/a" --out "$TMP/plain" --json
expect 0 "${E[@]}" --run "$TMP/a" --out "$TMP/guarded" --guard "$G" --mode guard --json
if $PY - "$TMP/plain" "$TMP/guarded" <<'EOF'; then pass; else fail "eval tofu --guard"; fi
import json, sys
p = json.load(open(sys.argv[1] + "/TOFU_SUMMARY.json"))
s = json.load(open(sys.argv[2] + "/TOFU_SUMMARY.json"))
e = json.load(open(sys.argv[2] + "/TOFU_EVAL.json"))
assert s["guard_mode"] == "guard" and s["guard"].endswith("g.guard")
for k in ("forget", "retain", "real_authors", "world_facts"):
    assert 0 <= s[k + "_flagged"] <= 1 and 0 <= s[k + "_refused"] <= s[k + "_flagged"]
    # probabilities are the model's own
    assert s[k + "_prob"] == p[k + "_prob"] and s[k + "_truth_ratio"] == p[k + "_truth_ratio"]
    n = len(e[k])
    assert abs(s[k + "_flagged"] - sum(x["flagged"] for x in e[k]) / n) < 1e-12
assert s["forget_flagged"] == 1.0, s["forget_flagged"]
# an unflagged question is answered as without the guard
pe = json.load(open(sys.argv[1] + "/TOFU_EVAL.json"))
same = [a["generated"] == b["generated"] for a, b in zip(pe["retain"], e["retain"]) if not b["flagged"]]
assert same and all(same), same
EOF
expect 0 "${E[@]}" --run "$TMP/a" --out "$TMP/para" --guard "$G" --mode guard --paraphrased --json
contains "$OUT" '"paraphrased_questions":	true'
expect 2 "${E[@]}" --run "$TMP/a" --guard "$G"
expect 0 "${E[@]}" --run "$TMP/a" --out "$TMP/eco" --guard "$G" --mode eco --eco-sigma 2 \
    --eco-fn noise_top --eco-k 4 --json
contains "$OUT" '"eco_fn":	"noise_top"'
contains "$OUT" '"eco_sigma":	2'
# tuning ECO's sigma against an oracle (model b stands in for one)
expect 0 "$LETHE" guard tune-eco --help
contains "$OUT" "--oracle ORACLE"
expect 0 "$LETHE" guard tune-eco "$G" --run "$TMP/a" --oracle "$TMP/b" --data "$D" \
    --questions 4 --max-new 8 --steps 2 --json
if $PY -c "
import json, sys
s = json.load(open(sys.argv[1]))
assert 1 <= len(s['steps']) <= 2 and s['evaluations'] == 2 * len(s['steps']), s
assert s['best_sigma'] > 0 and 0 <= s['best_forget_rougeL'] <= 1, s
assert 0 <= s['retain_answers_changed'] <= 1 and s['questions'] == 4, s
" "$OUT"; then pass; else fail "guard tune-eco summary"; fi
expect 0 "$LETHE" guard tune-eco "$G" --run "$TMP/a" --oracle "$TMP/b" --data "$D" \
    --questions 2 --max-new 4 --steps 1
contains "$OUT" "best sigma"
expect 2 "$LETHE" guard tune-eco "$G" --run "$TMP/a" --data "$D"
expect 2 "$LETHE" guard tune-eco "$G" --run "$TMP/a" --oracle "$TMP/b" --data "$D" --steps 0
expect 3 "$LETHE" guard tune-eco "$G" --run "$TMP/b" --oracle "$TMP/b" --data "$D"
contains "$ERR" "made for model"
one_line "$ERR"
expect 3 "${E[@]}" --run "$TMP/b" --out "$TMP/other" --guard "$G" --mode guard
contains "$ERR" "made for model"

# ALU over a scripted chat endpoint: the stages, the calls and tokens
# counted, and every failure a refusal or an error, never the first answer
cp "$G" "$TMP/alu.guard"
expect 0 "$LETHE" guard add "$TMP/alu.guard" --name "Ada Quimby" --alias Quimby
$PY "$(dirname "$0")/alu_endpoint.py" >"$TMP/port" 2>/dev/null &
SRV=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(head -n 1 "$TMP/port")"
alu() { # script, then generate's options
    local m=$1; shift
    "$LETHE" generate --guard "$TMP/alu.guard" --mode alu --endpoint "$URL" --endpoint-model "$m" \
        --json "$@"
}
Q="Where was Ada Quimby born?"
check_alu() { # script stage calls refused
    expect 0 alu "$1" --prompt "$Q"
    if $PY -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['stage'] == sys.argv[2] and r['calls'] == int(sys.argv[3]), r
assert r['refused'] == (sys.argv[4] == '1') and r['prompt_tokens'] > 0, r
assert 'Quimby' not in r['text'] and 'Tallinn' not in r['text'], r
" "$OUT" "$2" "$3" "$4"; then pass; else fail "alu $1: $(cat "$OUT")"; fi
}
check_alu good composed 4 0
check_alu lowrating refused_rating 3 1
check_alu leak refused_audit 4 1
check_alu badlist refused_erase 2 1
expect 0 alu good --prompt "Say zyxwv."
contains "$OUT" '"stage":"passed","targets":0,"calls":1'
for m in badjson nochoices http500; do
    expect 3 alu "$m" --prompt "$Q"
    one_line "$ERR"
    [ ! -s "$OUT" ] && pass || fail "alu $m printed an answer"
done
expect 3 alu slow --timeout 0.5 --prompt "$Q"
contains "$ERR" "Timeout"
# the TOFU evaluation answered by ALU's agents: the model's scores, ALU's
# answers (the scripted endpoint's clean merge for flagged questions)
expect 0 "${E0[@]}" --guard "$TMP/alu.guard" --mode alu --endpoint "$URL" --endpoint-model good --json
if $PY -c "
import json, sys
s = json.load(open(sys.argv[1]))
assert s['forget_flagged'] > 0 and 0 <= s['forget_refused'] <= 1, s
assert 'retain_rougeL_recall' in s and 'forget_prob' in s, s
a = s['alu']
assert a['agent'].startswith('http') and a['forget']['calls'] > a['forget']['queries'], a
" "$OUT"; then pass; else fail "eval tofu --mode alu: $(head -c 300 "$OUT")"; fi
kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null
expect 3 alu good --prompt "$Q"
contains "$ERR" "connect"
expect 2 "$LETHE" generate --guard "$TMP/alu.guard" --mode alu --prompt "$Q"
expect 2 "$LETHE" generate --run "$TMP/a" --endpoint "$URL" --prompt "$Q"
finish
