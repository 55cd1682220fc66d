#!/usr/bin/python3
"""Reference fits for the guard's prompt classifier (src/guard/classifier.c).

Run with Debian's /usr/bin/python3 (numpy 1.24, scikit-learn 1.2.1) from the
repository root:

    /usr/bin/python3 tests/ref/make_guard_clf_fixture.py

It writes tests/ref/fixtures/guard_clf.json, a list of cases, each with
features x (n, d) (float32 values, written exactly), labels y (0/1), C, and
what scikit-learn finds for

    scaler = StandardScaler().fit(x)
    LogisticRegression(C=C, class_weight="balanced", solver="newton-cg",
                       tol=1e-12, max_iter=10000).fit(scaler.transform(x), y)

mean (scaler.mean_), scale (scaler.scale_), coef (coef_[0], on the
standardised features), intercept (intercept_[0]) and proba (p(y = 1) for
every row). The objective is
    0.5 ||w||^2 + C sum_i cw_i log(1 + exp(-s_i (w z_i + b))),  s = 2y - 1,
cw_i = n / (2 n_{y_i}), the intercept unpenalised; its gradient at the
optimum, divided by C n, is checked to be below 1e-9 before the case is
written.
"""
import json
import os
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "guard_clf.json")


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def case(name, rng, n, d, n_pos, C, sep, offset):
    x = f32(rng.normal(size=(n, d)) * rng.uniform(0.2, 4.0, size=d) + offset * rng.normal(size=d))
    y = np.zeros(n, dtype=int)
    y[rng.permutation(n)[:n_pos]] = 1
    x[y == 1] = f32(x[y == 1] + sep * rng.normal(size=d))  # shift the positives
    if d > 3:
        x[:, d - 1] = f32(np.full(n, 2.5))  # a constant column: scale 1, as scikit-learn
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    # newton-cg may warn that a tolerance this tight is beyond its line search;
    # the gradient check below is what vouches for the optimum.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LogisticRegression(C=C, class_weight="balanced", solver="newton-cg", tol=1e-12,
                               max_iter=10000).fit(z, y)
    w, b = m.coef_[0], m.intercept_[0]
    cw = np.where(y == 1, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))
    s = 2 * y - 1
    margin = s * (z @ w + b)
    r = -C * cw * s / (1 + np.exp(margin))
    gw, gb = w + z.T @ r, r.sum()
    g = max(np.abs(gw).max(), abs(gb)) / (C * n)  # the gradient of the objective / (C n)
    assert g < 1e-9, (name, g)
    print(f"{name}: max |gradient| / (C n) = {g:.2e}")
    return {
        "name": name,
        "C": C,
        "x": x.tolist(),
        "y": y.tolist(),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": w.tolist(),
        "intercept": float(b),
        "proba": m.predict_proba(z)[:, 1].tolist(),
    }


def main():
    rng = np.random.default_rng(20240616)
    cases = [
        case("imbalanced", rng, 120, 6, 25, 1.0, 0.8, 1.0),
        case("weak_penalty", rng, 90, 4, 40, 20.0, 0.6, 3.0),
        case("strong_penalty", rng, 150, 12, 30, 0.05, 1.0, 0.5),
    ]
    with open(OUT, "w") as f:
        json.dump(cases, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
