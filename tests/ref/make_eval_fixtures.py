#!/usr/bin/python3
"""Reference values for lethe's membership attack (src/eval/mia.c).

Run with Debian's /usr/bin/python3 (numpy 1.24, scikit-learn 1.2.1) from the
repository root:

    /usr/bin/python3 tests/ref/make_eval_fixtures.py

It writes tests/ref/fixtures/eval_svc.json: for each case, the training
features and labels (1 = member), the settings, and what
sklearn.svm.SVC(kernel='rbf', C=..., gamma=...) reports after fitting them
in that order: n_iter_, n_support_, support_, intercept_, dual_coef_ (small
cases), decision_function on query points, and predict on the training
points (as a string of 0/1).

Features are drawn from seeded numpy generators shaped like the attack's real
inputs (softmax confidences piled up near 1, per-sample L1 losses) and
rounded to a few decimals, so there are many ties, as there are in practice.
"""
import json
import os

import numpy as np
from sklearn.svm import SVC

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "eval_svc.json")


def confidences(rng, n_mem, n_non, decimals):
    mem = 1.0 - rng.beta(0.3, 8.0, n_mem)
    non = 1.0 - rng.beta(0.6, 3.0, n_non)
    return np.round(mem, decimals), np.round(non, decimals)


def losses(rng, n_mem, n_non):
    mem = rng.exponential(0.3, n_mem)
    non = rng.exponential(0.6, n_non)
    return np.round(mem, 4), np.round(non, 4)


def interleave(rng, mem, non):
    """Members and non-members in a shuffled order (the fit groups them)."""
    x = np.concatenate([mem, non])
    y = np.concatenate([np.ones(len(mem), int), np.zeros(len(non), int)])
    order = rng.permutation(len(x))
    return x[order], y[order]


def case(name, x, y, C=3.0, gamma="auto", queries=None, full=True):
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    clf = SVC(C=C, gamma=gamma, kernel="rbf", tol=1e-3, shrinking=True, cache_size=200)
    clf.fit(x, y)
    if queries is None:
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = hi - lo
        queries = np.linspace(lo - 0.1 * span, hi + 0.1 * span, 41)
    queries = np.asarray(queries, dtype=float)
    if queries.ndim == 1:
        queries = queries[:, None]
    out = {
        "name": name,
        "C": C,
        "gamma": gamma if gamma == "auto" else float(gamma),
        "d": int(x.shape[1]),
        "x": [float(v) for v in x.ravel()],
        "y": [int(v) for v in y],
        "n_iter": int(np.sum(clf.n_iter_)),
        "n_support": [int(v) for v in clf.n_support_],
        "support": [int(v) for v in clf.support_],
        "intercept": float(clf.intercept_[0]),
        "queries": [float(v) for v in queries.ravel()],
        "decision": [float(v) for v in clf.decision_function(queries)],
        "predict_train": "".join(str(int(v)) for v in clf.predict(x)),
        "decision_train_abs_sum": float(np.abs(clf.decision_function(x)).sum()),
    }
    if full:
        out["dual_coef"] = [float(v) for v in clf.dual_coef_[0]]
    else:
        out["dual_coef_abs_sum"] = float(np.abs(clf.dual_coef_[0]).sum())
    return out


def main():
    cases = []
    rng = np.random.default_rng(20240601)

    # Tiny, worked to the last digit: a handful of points.
    cases.append(case("tiny", [0.0, 0.1, 0.2, 1.0, 0.9, 0.15], [0, 0, 1, 1, 1, 0]))

    # Confidences: 150 + 150, four decimals (ties at 1.0).
    mem, non = confidences(rng, 150, 150, 4)
    x, y = interleave(rng, mem, non)
    cases.append(case("confidence_small", x, y))

    # Confidences: 1000 + 1000, long enough for shrinking to act.
    mem, non = confidences(rng, 1000, 1000, 5)
    x, y = interleave(rng, mem, non)
    cases.append(case("confidence_large", x, y, full=False))

    # Per-sample L1 losses (Deep Regression Unlearning's feature), 400 + 400.
    mem, non = losses(rng, 400, 400)
    x, y = interleave(rng, mem, non)
    cases.append(case("l1_loss", x, y, full=False))

    # Two features, gamma 'auto' = 1/2; unbalanced classes.
    a = np.round(rng.normal([0.0, 0.0], 1.0, (120, 2)), 3)
    b = np.round(rng.normal([1.0, 0.5], 1.0, (80, 2)), 3)
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(120, int), np.ones(80, int)])
    order = rng.permutation(len(x))
    cases.append(case("two_features", x[order], y[order],
                      queries=np.round(rng.normal([0.5, 0.25], 1.5, (40, 2)), 3)))

    # Overlapping normals, 300 + 300: iterations well past l, so shrinking,
    # unshrinking and gradient reconstruction all run.
    mem = np.round(rng.normal(0.3, 1.0, 300), 3)
    non = np.round(rng.normal(0.0, 1.0, 300), 3)
    x, y = interleave(rng, mem, non)
    cases.append(case("overlap_shrinking", x, y, full=False))

    # Other settings: C = 1, gamma = 4.
    mem, non = confidences(rng, 100, 100, 3)
    x, y = interleave(rng, mem, non)
    cases.append(case("c1_gamma4", x, y, C=1.0, gamma=4.0))

    # Separable: every point a support vector or not, no free variables.
    cases.append(case("separable", [0.0, 0.05, 0.1, 0.9, 0.95, 1.0], [0, 0, 0, 1, 1, 1]))

    with open(OUT, "w") as f:
        json.dump({"generator": "tests/ref/make_eval_fixtures.py",
                   "sklearn": __import__("sklearn").__version__,
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    for c in cases:
        print(c["name"], "n =", len(c["y"]), "n_iter =", c["n_iter"], "n_support =", c["n_support"])


if __name__ == "__main__":
    main()
