#!/usr/bin/python3
"""The tables of docs/results-audit.md from lethe audit's summaries.

  bench/audit_results.py NAME=DIR [NAME=DIR ...]

Each DIR holds an AUDIT_SUMMARY.json (lethe audit --out DIR). Prints one
markdown table per probe with a row per model (relearn rows name their
attack when it is not T), the prompt attacks through each guard of a run
audited with --guard, and the verdicts.
"""
import json
import sys


def f(x, fmt="%.3f"):
    return "-" if x is None else fmt % x


def pct(x):
    return "-" if x is None else "%.0f%%" % (100 * x + 0.0 if abs(x) >= 0.005 else 0.0)


def main():
    runs = []
    for arg in sys.argv[1:]:
        name, _, d = arg.partition("=")
        runs.append((name, json.load(open(d + "/AUDIT_SUMMARY.json"))))
    print("| model | V acc. before | after 5 | 10 | 25 | 50 | 100 | recovery at 25 | at 100 "
          "| oracle lift at 100 (sd) | steps to half | relearn |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in runs:
        r = s.get("relearn")
        if not r:
            continue
        acc = (r["model_accuracy"] + [None] * 6)[:6]  # one per checkpoint, 0 .. 100
        k25 = r["steps"].index(25) if 25 in r["steps"] else None
        if r.get("attack", "forget") != "forget":
            name += " (%s)" % r["attack"]
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s |" % (
            name, *(f(a) for a in acc), pct(r["recovery"][k25]) if k25 is not None else "-",
            pct(r["recovery"][-1]), pct(r["oracle_lift"][-1]), pct(r["oracle_lift_sd"][-1]),
            r["steps_to_half"] if r["steps_to_half"] is not None else "never",
            r["verdict"] or "undecided"))
    print()
    print("| model | forget prob F32 / int8 / int4 | forget ROUGE-L F32 / int8 / int4 | Forget "
          "Quality F32 / int4 | int4 return (prob, ROUGE-L) | quantize |")
    print("|---|---|---|---|---|---|")
    for name, s in runs:
        q = s.get("quantize")
        if not q:
            continue
        m = q["model"]
        print("| %s | %s / %s / %s | %s / %s / %s | %s / %s | %s, %s | %s |" % (
            name, f(m["f32"]["forget_prob"]), f(m["int8"]["forget_prob"]),
            f(m["int4"]["forget_prob"]), f(m["f32"]["forget_rougeL_recall"]),
            f(m["int8"]["forget_rougeL_recall"]), f(m["int4"]["forget_rougeL_recall"]),
            f(m["f32"]["forget_quality"], "%.2g"), f(m["int4"]["forget_quality"], "%.2g"),
            pct(q["return_int4_prob"]), pct(q["return_int4_rougeL"]),
            q["verdict"] or "undecided"))
    print()
    print("| model | as asked | paraphrased | many-shot | masked | best share | prompts |")
    print("|---|---|---|---|---|---|---|")
    for name, s in runs:
        p = s.get("prompts")
        if not p:
            continue
        m, sh = p["model"], p["share"]
        ways = ("paraphrased", "many_shot", "masked")
        best = max((sh[w] for w in ways if sh[w] is not None), default=None)
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, *(f(m[w]) for w in ("original",) + ways), pct(best),
            p["verdict"] or "undecided"))
    print()
    print("| model | shown: none / context | not shown: none / context | residual share "
          "| incontext |")
    print("|---|---|---|---|---|")
    for name, s in runs:
        c = s.get("incontext")
        if not c:
            continue
        m = c["model"]
        print("| %s | %s / %s | %s / %s | %s | %s |" % (
            name, f(m["none_C"]), f(m["context_C"]), f(m["none_H"]), f(m["context_H"]),
            pct(c["residual_share"]), c["verdict"] or "undecided"))
    print()
    print("| model | layer | forget facts named: model / target / oracle | holdout (target) "
          "| share | probe |")
    print("|---|---|---|---|---|---|")
    for name, s in runs:
        p = s.get("probe")
        if not p or "share" not in p:
            continue
        lead = [t - o for t, o in zip(p["target_forget"], p["oracle_forget"])]
        l = p["layer"] if p["layer"] is not None else max(range(len(lead)), key=lead.__getitem__)
        print("| %s | %d | %s / %s / %s | %s | %s | %s |" % (
            name, l, pct(p["model_forget"][l]), pct(p["target_forget"][l]),
            pct(p["oracle_forget"][l]), pct(p["target_holdout"][l]), pct(p["share"][l]),
            p["verdict"] or "undecided"))
    print()
    print("| model | neighbours: model / oracle / target | distant: model / oracle / target "
          "| damage: neighbours / distant | side effect |")
    print("|---|---|---|---|---|")
    for name, s in runs:
        n = s.get("neighbours")
        if not n or "side_effect" not in n:
            continue
        print("| %s | %s / %s / %s | %s / %s / %s | %s / %s | %s |" % (
            name, f(n["model_neighbours"]), f(n["oracle_neighbours"]), f(n["target_neighbours"]),
            f(n["model_distant"]), f(n["oracle_distant"]), f(n["target_distant"]),
            f(n["damage_neighbours"], "%+.3f"), f(n["damage_distant"], "%+.3f"),
            f(n["side_effect"], "%+.3f")))
    print()
    for name, s in runs:
        g = s.get("prompts", {}).get("guards")
        if not g:
            continue
        print("| %s through | way | flagged | ROUGE-L let through | blocked | share of the "
              "target's lead |" % name)
        print("|---|---|---|---|---|---|")
        for mode in ("guard", "eco"):
            for w, x in g[mode].items():
                print("| %s | %s | %s | %s | %s | %s |" % (
                    mode.upper(), w.replace("_", "-"), pct(x["flagged"]), f(x["rougeL"]),
                    pct(x["blocked"]), pct(x["share"])))
        print()
    print("| model | method | stated intent | verdict | matches |")
    print("|---|---|---|---|---|")
    for name, s in runs:
        print("| %s | %s | %s | %s | %s |" % (
            name, s.get("method") or "-", s.get("intent") or "-", s["verdict"],
            "-" if s.get("matches_intent") is None else ("yes" if s["matches_intent"] else "no")))


if __name__ == "__main__":
    main()
