#!/usr/bin/python3
"""Ports of the reference metric code that lethe's evaluation suites follow,
run on fixed inputs (src/eval/{mia,regress,classify}.c).

Run with Debian's /usr/bin/python3 (numpy, scikit-learn, torch) from the
repository root:

    /usr/bin/python3 tests/ref/make_metric_fixtures.py

It writes tests/ref/fixtures/eval_metrics.json, one object per case:

  dru_mia    Deep Regression Unlearning's loss attack (metrics.py,
             get_membership_attack_prob): SVC(C=3, gamma='auto') on the L1
             loss of equal numbers of members and non-members, the share of
             the forget set predicted member. The members are drawn from the
             retain set, where the reference's notebook samples the whole
             training split; the draw is lethe's keyed one (the smallest
             Philox hashes of the sample ids, ported below), where the
             reference draws with pandas' sample().
  salun_mia  SalUn's MIA-efficacy (evaluation/SVC_MIA.py with the member
             sampling of main_random.py / main_forget.py): the first |D_test|
             retain rows against all of D_test, SVC on the softmax
             confidence of the true label, 1 - the share of D_f predicted
             member.
  ain_dru    DRU's Anamnesis Index (metrics.py, ain / relearn_time): Adam
             on the whole training set, after every step the L1 on the
             held-out forget rows averaged as evaluate() does (the mean of
             batch means), counting steps until it is at most 1.05 times the
             original model's, for the model and for the oracle; AIN = their
             ratio. A linear net, trained by torch on lethe's keyed batch
             order.
  js         the Jensen-Shannon divergence of the paper (1/2 KL(p||m) +
             1/2 KL(q||m) per sample, averaged) and of the bad-teaching
             code (metrics.py, JSDiv: 0.5 F.kl_div(log p, m) +
             0.5 F.kl_div(log q, m), i.e. KL(m||p) and KL(m||q) averaged over
             every sample and class), on softmax outputs of fixed logits.

The inputs are float32 values, as lethe stores them.
"""
import json
import os

import numpy as np
import torch
from sklearn.svm import SVC

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "eval_metrics.json")
MASK = 0xFFFFFFFF
STREAM_SUBSAMPLE = 0x5AB5A3
STREAM_ORDER = 0x100000000


def philox(ctr, key):
    """Philox4x32-10 (Salmon et al. 2011), as src/core/rng.c."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, \
            ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
        k0 = (k0 + 0x9E3779B9) & MASK
        k1 = (k1 + 0xBB67AE85) & MASK
    return c0, c1, c2, c3


def rng_hash(seed, stream, index):
    o = philox((index & MASK, index >> 32, stream & MASK, stream >> 32),
               (seed & MASK, seed >> 32))
    return (o[0] << 32) | o[1]


def keyed(ids, rows, seed, stream):
    """rows ordered by the keyed hash of their ids (ties by row)."""
    return sorted(rows, key=lambda r: (rng_hash(seed, stream, int(ids[r])), r))


def subsample(ids, rows, n, seed):
    return sorted(keyed(ids, rows, seed, STREAM_SUBSAMPLE)[:n])


def svc_member(x_mem, x_non, x_target):
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(np.concatenate([x_mem, x_non])[:, None],
            np.concatenate([np.ones(len(x_mem)), np.zeros(len(x_non))]))
    return clf.predict(np.asarray(x_target)[:, None])


def f32(a):
    return np.asarray(a, dtype=np.float32)


def dru_mia(rng):
    n_train, n_test, seed = 90, 25, 5
    x = f32(np.round(rng.exponential(0.4, n_train), 4))
    xt = f32(np.round(rng.exponential(0.8, n_test), 4))
    ids = [1000 + 3 * i for i in range(n_train)]
    ids_t = [50000 + i for i in range(n_test)]
    forget = list(range(0, n_train, 6))
    retain = [r for r in range(n_train) if r not in forget]
    n = min(2000, len(retain), n_test)
    mem = subsample(ids, retain, n, seed)
    non = subsample(ids_t, list(range(n_test)), n, seed)
    # the net is the identity and the targets 0: the L1 loss is x itself
    feat = x.astype(np.float64)
    pred = svc_member(feat[mem], xt.astype(np.float64)[non], feat[forget])
    return {"x": x.tolist(), "x_test": xt.tolist(), "ids": ids, "ids_test": ids_t,
            "forget": forget, "seed": seed, "members": mem, "nonmembers": non,
            "member_rate": 100.0 * float(pred.mean()), "predict": [int(v) for v in pred]}


def softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def salun_mia(rng):
    n_train, n_test, K = 80, 30, 3
    y = np.arange(n_train) % K
    yt = np.arange(n_test) % K
    z = f32(np.round(rng.normal(0, 1.0, (n_train, K)) + 2.5 * np.eye(K)[y], 3))
    zt = f32(np.round(rng.normal(0, 1.0, (n_test, K)) + 1.2 * np.eye(K)[yt], 3))
    forget = list(range(1, n_train, 5))
    retain = [r for r in range(n_train) if r not in forget]
    mem = retain[:min(n_test, len(retain))]
    conf = softmax64(z)[np.arange(n_train), y]
    conf_t = softmax64(zt)[np.arange(n_test), yt]
    pred = svc_member(conf[mem], conf_t, conf[forget])
    return {"logits": z.ravel().tolist(), "labels": y.tolist(), "logits_test": zt.ravel().tolist(),
            "labels_test": yt.tolist(), "K": K, "forget": forget, "members": mem,
            "efficacy": 100.0 * (1.0 - float(pred.mean()))}


def l1_batches(net, x, t, batch):
    """DRU's evaluate(): the mean over batches of F.l1_loss (a batch mean)."""
    with torch.no_grad():
        err = (net(torch.from_numpy(x)) - torch.from_numpy(t)).abs().double().numpy().ravel()
    return float(np.mean([err[b:b + batch].mean() for b in range(0, len(err), batch)]))


def relearn_time(w, b, x, t, ids, x_held, t_held, target, lr, batch, epochs, seed):
    net = torch.nn.Linear(x.shape[1], 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(w, dtype=torch.float32).reshape(1, -1))
        net.bias.copy_(torch.tensor([b], dtype=torch.float32))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = 0
    for epoch in range(epochs):
        order = keyed(ids, range(len(x)), seed, STREAM_ORDER + epoch)
        for s in range(0, len(order), batch):
            rows = order[s:s + batch]
            loss = torch.nn.functional.l1_loss(net(torch.from_numpy(x[rows])),
                                               torch.from_numpy(t[rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if l1_batches(net, x_held, t_held, batch) <= target:
                return steps, 1
    return steps, 0


def ain_dru(rng):
    n_train, n_test, d, seed = 150, 70, 2, 3
    lr, batch, epochs, slack = 0.05, 8, 10, 1.2
    coef = np.array([0.8, -0.5])
    x = f32(rng.normal(0, 1, (n_train, d)))
    t = f32((x @ coef + 0.5 * x[:, 0] ** 2 + 0.2 * rng.normal(0, 1, n_train))[:, None])
    xt = f32(rng.normal(0, 1, (n_test, d)))
    tt = f32((xt @ coef + 0.5 * xt[:, 0] ** 2 + 0.2 * rng.normal(0, 1, n_test))[:, None])
    lo, hi = 1.0, 10.0  # the upper tail of the targets is the forget range
    forget = [i for i in range(n_train) if lo <= t[i, 0] < hi]
    held = [i for i in range(n_test) if lo <= tt[i, 0] < hi]
    ids = [7 + 2 * i for i in range(n_train)]
    # original: fitted to everything; oracle: to the rest (least squares);
    # model: past the oracle, away from the original
    def lsq(rows):
        a = np.hstack([x[rows], np.ones((len(rows), 1))]).astype(np.float64)
        sol = np.linalg.lstsq(a, t[rows, 0].astype(np.float64), rcond=None)[0]
        return f32(sol)
    orig = lsq(list(range(n_train)))
    oracle = lsq([i for i in range(n_train) if i not in forget])
    model = f32(oracle - 1.5 * (orig - oracle))
    net0 = torch.nn.Linear(d, 1)
    with torch.no_grad():
        net0.weight.copy_(torch.tensor(orig[:d]).reshape(1, -1))
        net0.bias.copy_(torch.tensor(orig[d:]))
    xh, th = xt[held], tt[held]
    target = slack * l1_batches(net0, xh, th, batch)
    args = (x, t, ids, xh, th, target, lr, batch, epochs, seed)
    rt_model, reached_model = relearn_time(model[:d], model[d], *args)
    rt_oracle, reached_oracle = relearn_time(oracle[:d], oracle[d], *args)
    # the original itself: already within the target, it still counts a step
    rt_original, _ = relearn_time(orig[:d], orig[d], *args)
    return {"x": x.ravel().tolist(), "t": t.ravel().tolist(), "x_test": xt.ravel().tolist(),
            "t_test": tt.ravel().tolist(), "ids": ids, "d": d, "lo": lo, "hi": hi,
            "forget": forget, "heldout": held, "seed": seed, "lr": lr, "batch": batch,
            "epochs": epochs, "slack": slack, "original": orig.tolist(),
            "oracle": oracle.tolist(), "model": model.tolist(),
            "original_heldout_l1": target / slack, "rt_model": rt_model,
            "rt_oracle": rt_oracle, "rt_original": rt_original, "reached_model": reached_model,
            "reached_oracle": reached_oracle, "ain": rt_model / rt_oracle}


def js(rng):
    n, K = 12, 4
    z = f32(np.round(rng.normal(0, 2.0, (n, K)), 3))
    zq = f32(np.round(rng.normal(0, 2.0, (n, K)), 3))
    p, q = softmax64(z), softmax64(zq)
    m = 0.5 * (p + q)
    paper = 0.5 * (p * np.log(p / m)).sum(1) + 0.5 * (q * np.log(q / m)).sum(1)
    pt, qt = torch.from_numpy(p), torch.from_numpy(q)
    mt = (pt + qt) / 2
    bad = 0.5 * torch.nn.functional.kl_div(torch.log(pt), mt) + \
        0.5 * torch.nn.functional.kl_div(torch.log(qt), mt)
    return {"logits_p": z.ravel().tolist(), "logits_q": zq.ravel().tolist(), "K": K,
            "paper": paper.tolist(), "paper_mean": float(paper.mean()),
            "bad_teaching": float(bad)}


def main():
    rng = np.random.default_rng(20261204)
    torch.manual_seed(0)
    out = {"generator": "tests/ref/make_metric_fixtures.py",
           "sklearn": __import__("sklearn").__version__, "torch": torch.__version__,
           "dru_mia": dru_mia(rng), "salun_mia": salun_mia(rng), "ain_dru": ain_dru(rng),
           "js": js(rng)}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    a = out["ain_dru"]
    print("dru_mia rate", out["dru_mia"]["member_rate"], "members", len(out["dru_mia"]["members"]))
    print("salun_mia efficacy", out["salun_mia"]["efficacy"])
    print("ain_dru", a["rt_model"], a["rt_oracle"], a["rt_original"], a["ain"], "forget", len(a["forget"]),
          "held", len(a["heldout"]), a["reached_model"], a["reached_oracle"])
    print("js", out["js"]["paper_mean"], out["js"]["bad_teaching"])


if __name__ == "__main__":
    main()
