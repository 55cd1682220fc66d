#!/usr/bin/python3
"""Exact memorisation (EM) and extraction strength (ES) of TOFU answers, in
OpenUnlearning's convention and in the one lethe keeps by default, on planted
logits.

OpenUnlearning (src/evals/metrics/memorization.py with tokenwise_vocab_logprobs
of src/evals/metrics/utils.py) reads a teacher-forced batch as input_ids and
labels (-100 on the prompt, the answer's tokens and the closing end-of-text
token labelled). It takes log_softmax of the logits without the last position
(position j predicts token j + 1), keeps the labelled positions but the last
one (the end-of-text token is not scored), and over those n tokens with
predictions p = argmax:
  EM = (number of p_k == y_k) / n            (no score when n == 0)
  ES = 1 - k / n, k the first index whose suffix p[k:] equals y[k:]; when no
       suffix does, its loop ends on k = n - 1, so ES = 1 / n  (0 when n == 0)
The default convention (TOFU's layout as lethe scores it) counts every
labelled token, the end-of-text one included, and takes k = n when no suffix
is right (ES 0): the empty suffix is the only one that matches.

This file reimplements both from those definitions, in numpy, and writes
tests/ref/fixtures/tofu_memo.json: a list of cases
  {"V", "ids" (the pair's tokens, the last the end-of-text token),
   "n_prompt", "logits" (len(ids) - 1 rows of V: row t predicts ids[t + 1]),
   "paper": {"em", "es"}, "openunlearning": {"em", "es"}}
Each case plants which answer tokens are the argmax, covering: all right,
none right, only the end-of-text token wrong, only it right, a right suffix
after a wrong token, only the last body token right, and random patterns.

Run with Debian's python3: /usr/bin/python3 tests/ref/make_tofu_memo_fixture.py
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "tofu_memo.json")
IGNORE = -100
V = 11
EOT = 10


def ou_tokenwise(logits, labels):
    """Per-position log-probabilities and labels OpenUnlearning scores."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True)))[:-1]
    idx = np.nonzero(labels != IGNORE)[0][:-1]  # the end-of-text token left out
    if len(idx) == 0:
        return np.zeros((0, logits.shape[1])), np.zeros(0, dtype=np.int64)
    start, end = idx[0], idx[-1]
    return logp[start - 1:end], labels[idx]


def ou_em_es(logits, labels):
    logp, y = ou_tokenwise(logits, labels)
    n = len(y)
    if n == 0:
        return None, 0.0
    pred = logp.argmax(axis=-1)
    em = float((pred == y).sum()) / n
    k = 0
    for k in range(n):
        if np.array_equal(pred[k:], y[k:]):
            break
    return em, 1.0 - k / n


def paper_em_es(logits, labels):
    idx = np.nonzero(labels != IGNORE)[0]  # every answer token, end-of-text included
    pred = logits[idx - 1].argmax(axis=-1)
    y = labels[idx]
    n = len(y)
    hit = pred == y
    k = n
    while k > 0 and hit[k - 1]:
        k -= 1
    return float(hit.sum()) / n, 1.0 - k / n


def make_case(rng, n_prompt, body, hits):
    """A pair of n_prompt prompt tokens, `body` answer tokens and the
    end-of-text token; hits[i] says whether answer token i is the argmax."""
    ids = np.concatenate([rng.integers(0, EOT, n_prompt + body), [EOT]]).astype(np.int64)
    n = len(ids)
    logits = rng.normal(0.0, 1.0, (n, V)).astype(np.float32)
    for i, hit in enumerate(hits):
        t = n_prompt + i  # the answer token at t, predicted by row t - 1
        row = logits[t - 1]
        want = ids[t] if hit else (ids[t] + 1 + rng.integers(0, V - 1)) % V
        row[want] = row.max() + 0.5 + rng.random()
    labels = ids.copy()
    labels[:n_prompt] = IGNORE
    return ids, logits, labels


def main():
    rng = np.random.default_rng(20240519)
    plans = []
    for body in (1, 2, 5):
        plans += [
            [1] * body + [1],                 # all right
            [0] * body + [0],                 # none right
            [1] * body + [0],                 # only the end-of-text token wrong
            [0] * body + [1],                 # only it right
            [0] * (body - 1) + [1] + [0],     # only the last body token right
        ]
    plans += [[0, 1, 1, 1, 1], [1, 0, 1, 1, 0], [1, 1, 0, 1, 1, 1, 1]]
    for _ in range(12):
        body = int(rng.integers(1, 8))
        plans.append([int(h) for h in rng.integers(0, 2, body + 1)])
    cases = []
    for plan in plans:
        n_prompt = int(rng.integers(1, 5))
        ids, logits, labels = make_case(rng, n_prompt, len(plan) - 1, plan)
        ou_em, ou_es = ou_em_es(logits, labels)
        em, es = paper_em_es(logits, labels)
        cases.append({
            "V": V, "ids": ids.tolist(), "n_prompt": n_prompt,
            "logits": [[float(x) for x in row] for row in logits[:-1]],
            "paper": {"em": em, "es": es},
            "openunlearning": {"em": ou_em, "es": ou_es},
        })
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
