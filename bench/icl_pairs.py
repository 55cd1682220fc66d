#!/usr/bin/python3
"""Question-answer pairs that teach reading facts from the prompt.

  bench/icl_pairs.py IN.json OUT.json PER_ENTITY [PER_AUTHOR]

OUT holds IN's rows, then PER_AUTHOR (default 10) rows per entity of
PER_ENTITY consecutive rows: two of the entity's pairs written into the
question as lethe audit incontext writes them, then a question that is
either one of the two (the answer is in the prompt: copying) or another of
the entity's (the answer is not). Rows longer than 400 characters are left
out so that every pair fits the tiny preset's 256 positions. Fixed seed.
"""
import json
import random
import sys


def main():
    src, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    per = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    rows = [json.loads(line) for line in open(src)]
    rnd = random.Random(0)
    res = list(rows)
    for e in range(0, len(rows) - k + 1, k):
        a = rows[e:e + k]
        for j in range(per):
            shown = rnd.sample(range(k), 2)
            ask = shown[0] if j % 2 == 0 else rnd.choice([i for i in range(k) if i not in shown])
            q = "".join("%s\nAnswer: %s\n\nQuestion: " % (a[i]["question"], a[i]["answer"])
                        for i in shown) + a[ask]["question"]
            if len(q) + len(a[ask]["answer"]) < 400:
                res.append({"question": q, "answer": a[ask]["answer"]})
    with open(out, "w") as f:
        for r in res:
            f.write(json.dumps(r) + "\n")
    print("%d rows" % len(res))


if __name__ == "__main__":
    main()
