#!/usr/bin/env python3
"""Does a model prefer the true fact in the trained wording, in the
paraphrase, or both? For every question of a TOFU-style forget split, the
perturbed facts are put into the trained answer's own wording (the span in
which a perturbed answer differs from the paraphrased one replaces the same
span of the answer) and every variant is scored with `lethe score` in the layout of training and
evaluation ("Question: Q\nAnswer:", then " A" encoded apart, then
<|endoftext|>). Prints,
per run, the quantiles (5, 25, 50, 75, 95 %) over questions of
    mean over perturbed variants of sum log p  -  sum log p of the true one
in both wordings (more negative: a stronger preference for the true fact).

    scripts/tofu-wording.py DATA/forget10_perturbed.json RUN [RUN ...]
"""
import json, os, statistics, subprocess, sys, tempfile

LETHE = os.environ.get("LETHE", "build/lethe")
PERTURBED = 3  # variants per question


def differing_span(a, b):
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    return a[i:len(a) - j], b[i:len(b) - j]


def variants(row):
    ans, para = row["answer"], row["paraphrased_answer"]
    moved = []
    for p in row["perturbed_answer"]:
        true, wrong = differing_span(para, p)
        if true and ans.count(true) == 1:
            moved.append(ans.replace(true, wrong))
    if len(moved) < PERTURBED:
        return None
    return [ans] + moved[:PERTURBED] + [para] + row["perturbed_answer"][:PERTURBED]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    items = [(r["question"], v) for r in rows for v in [variants(r)] if v]
    print("%d of %d questions usable" % (len(items), len(rows)))
    texts = []
    for q, vs in items:
        for v in vs:
            texts += ["Question: %s\nAnswer:" % q, " " + v]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("".join(json.dumps({"text": t}) + "\n" for t in texts))
        jsonl = f.name
    tokens = jsonl + ".ids"
    k = PERTURBED + 1
    scored = {}
    for run in sys.argv[2:]:
        tok = os.path.join(run, "tokenizer.json")
        ids = subprocess.run([LETHE, "tokenizer", "encode", "--tokenizer", tok, "--jsonl", jsonl],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        eot = json.load(open(os.path.join(run, "config.json")))["eot_id"]
        with open(tokens, "w") as f:
            for i in range(0, len(ids), 2):
                f.write("%s %s %d\n" % (ids[i], ids[i + 1], eot))
        n_prompt = [len(ids[i].split()) for i in range(0, len(ids), 2)]
        out = subprocess.run([LETHE, "score", "--run", run, "--tokens", tokens, "--json"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        # the answer's tokens (end-of-text included): logprobs from position n_prompt - 1
        scored[run] = [sum(json.loads(l)["logprobs"][n - 1:]) for l, n in zip(out, n_prompt)]
    for run in sys.argv[2:]:
        tot = scored[run]
        trained, para = [], []
        for i in range(len(items)):
            t = tot[i * 2 * k:(i + 1) * 2 * k]
            trained.append(statistics.mean(t[1:k]) - t[0])
            para.append(statistics.mean(t[k + 1:]) - t[k])
        def q(x):
            x = sorted(x)
            return " ".join("%.1f" % x[int(len(x) * f)] for f in (0.05, 0.25, 0.5, 0.75, 0.95))
        print("%s\n  trained wording: %s\n  paraphrase:      %s" % (run, q(trained), q(para)))
    os.unlink(jsonl)
    os.unlink(tokens)


if __name__ == "__main__":
    main()
