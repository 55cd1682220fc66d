#!/usr/bin/python3
"""Reference solutions for lethe's linear models (src/exact/ridge.c, logistic.c).

Run with Debian's /usr/bin/python3 (numpy 1.24, scikit-learn 1.2.1) from the
repository root:

    /usr/bin/python3 tests/ref/make_linear_fixtures.py

It writes tests/ref/fixtures/lin_ref.json with two lists of cases.

ridge: features x (n, d), targets y (n, k), alpha, and what
sklearn.linear_model.Ridge(alpha=alpha, fit_intercept=True) finds: coef_
(k, d) and intercept_ (k). lethe's ridge adds a constant feature that is not
penalised, which is the same problem.

logistic: features x (n, d), labels y (0/1), lambda, and the weights w (d + 1,
bias last) that sklearn.linear_model.LogisticRegression finds with
C = 1 / (n * lambda) and fit_intercept=False on the features with a constant
1 appended: the minimiser of mean(log(1 + exp(-s w^T x))) + lambda/2 ||w||^2
with s = 2y - 1, lethe's objective without noise. newton-cg with a tight
tolerance is used, and its optimum is checked against the gradient here.

Features are float32 values (as lethe holds them), written exactly.
"""
import json
import os
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "lin_ref.json")


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def ridge_case(name, rng, n, d, k, alpha, collinear=False):
    x = f32(rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d))
    if collinear:  # two nearly equal columns: the penalty keeps the system definite
        x[:, 1] = f32(x[:, 0] + 1e-3 * rng.normal(size=n))
    beta = rng.normal(size=(d, k))
    y = f32(x @ beta + 0.3 * rng.normal(size=(n, k)) + 1.5)
    m = Ridge(alpha=alpha, fit_intercept=True, solver="cholesky").fit(x, y)
    return {
        "name": name,
        "alpha": alpha,
        "x": x.tolist(),
        "y": y.tolist(),
        "coef": np.atleast_2d(m.coef_).tolist(),
        "intercept": np.atleast_1d(m.intercept_).tolist(),
    }


def logistic_case(name, rng, n, d, lam, sep):
    x = f32(rng.normal(size=(n, d)))
    w_true = rng.normal(size=d) * sep
    p = 1 / (1 + np.exp(-(x @ w_true + 0.3)))
    y = (rng.uniform(size=n) < p).astype(int)
    xa = np.hstack([x, np.ones((n, 1))])
    # A tolerance this tight is below what newton-cg's line search can always
    # resolve, so it may warn and stop at its iteration limit; the gradient
    # check below is what vouches for the optimum.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LogisticRegression(C=1.0 / (n * lam), fit_intercept=False, solver="newton-cg",
                               tol=1e-10, max_iter=200).fit(xa, y)
    w = m.coef_.ravel()
    s = 2 * y - 1
    z = s * (xa @ w)
    grad = -(xa * (s / (1 + np.exp(z)))[:, None]).mean(axis=0) + lam * w
    assert np.linalg.norm(grad) < 1e-9, (name, np.linalg.norm(grad))
    print(f"{name}: |grad| = {np.linalg.norm(grad):.2e}")
    return {"name": name, "lambda": lam, "x": x.tolist(), "y": y.tolist(), "w": w.tolist()}


def main():
    rng = np.random.default_rng(20200713)
    ridge = [
        ridge_case("small", rng, 40, 5, 1, 0.5),
        ridge_case("two-targets", rng, 60, 7, 2, 3.0),
        ridge_case("ols", rng, 30, 4, 1, 0.0),
        ridge_case("collinear", rng, 50, 6, 1, 1e-2, collinear=True),
    ]
    logistic = [
        logistic_case("overlapping", rng, 80, 4, 1e-2, 1.0),
        logistic_case("weak-penalty", rng, 120, 6, 1e-3, 2.0),
        logistic_case("strong-penalty", rng, 60, 10, 0.5, 1.5),
    ]
    with open(OUT, "w") as f:
        json.dump({"ridge": ridge, "logistic": logistic}, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
