#!/usr/bin/python3
"""Reference values for lethe's statistics module (src/eval/stats.c, rouge.c, porter.c).

Run with Debian's /usr/bin/python3 (numpy 1.24, scipy 1.10.1, scikit-learn 1.2.1,
nltk 3.8) from the repository root:

    /usr/bin/python3 tests/ref/make_stats_fixtures.py

It writes, into tests/ref/fixtures/:

  stats_ks.json      scipy.stats.ks_2samp (two-sided, method='auto') on many sample pairs
  stats_kstwo.json   scipy.stats.kstwo.sf(x, n) on a grid that visits every branch
  stats_roc.json     sklearn roc_auc_score, and numpy.interp(f, fpr, tpr) on roc_curve
  stats_misc.json    scipy.stats.hmean and scipy.stats.wasserstein_distance
  stats_porter.txt   nltk PorterStemmer() (NLTK_EXTENSIONS): "word stem" per line
  stats_rouge.json   ROUGE-L as Google's rouge-score computes it, with and without stemming

Samples are stored either as explicit lists or, to keep the files small, as a
generator spec {"seed": S, "n": N, "levels": L, "scale": C, "offset": O} that
tests/unit/test_stats.c expands the same way (see `sample` below): a 32-bit
linear congruential sequence s <- 1664525 s + 1013904223 (mod 2^32), u = s >> 8
(24 bits); the value is offset + scale * (u mod L) when L > 0, else
offset + scale * (u / 2^24). Scales are powers of two and offsets short binary
fractions, so every value is exact in double precision.
"""
import json
import math
import os
import random
import re
import warnings

import numpy as np
from nltk.stem.porter import PorterStemmer
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


# ---------------------------------------------------------------- samples

def lcg(seed, n):
    s = seed & 0xFFFFFFFF
    out = []
    for _ in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(s >> 8)
    return out


def sample(spec):
    if isinstance(spec, list):
        return np.array(spec, dtype=float)
    u = lcg(spec["seed"], spec["n"])
    levels, scale, offset = spec.get("levels", 0), spec.get("scale", 1.0), spec.get("offset", 0.0)
    if levels:
        vals = [offset + scale * float(x % levels) for x in u]
    else:
        vals = [offset + scale * (x / 16777216.0) for x in u]
    return np.array(vals, dtype=float)


def spec(seed, n, levels=0, scale=1.0, offset=0.0, explicit_upto=24):
    """A generator spec, or the explicit list when the sample is small."""
    s = {"seed": seed, "n": n}
    if levels:
        s["levels"] = levels
    if scale != 1.0:
        s["scale"] = scale
    if offset != 0.0:
        s["offset"] = offset
    if n <= explicit_upto:
        return [float(v) for v in sample(s)]
    return s


def write_json(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


# ---------------------------------------------------------------- ks_2samp

def ks_method(n1, n2, a, b):
    """Whether scipy used the exact or the asymptotic p-value (it may fall back)."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        stats.ks_2samp(a, b)
    fell_back = any("Exact calculation unsuccessful" in str(x.message) for x in w)
    return "asymptotic" if max(n1, n2) > 10000 or fell_back else "exact"


def make_ks():
    sizes = [(1, 1), (1, 2), (2, 1), (1, 7), (2, 2), (3, 3), (3, 5), (4, 4), (5, 5), (5, 7),
             (6, 4), (8, 8), (10, 10), (10, 3), (13, 20), (24, 24), (24, 17), (50, 50), (64, 48),
             (100, 100), (100, 37), (137, 250), (500, 499), (1000, 1000), (1200, 800),
             (2500, 2500), (3000, 1999), (5000, 10000), (7000, 7000), (10000, 10000),
             (10000, 9999), (10000, 1), (1, 10000), (9973, 2),
             # asymptotic: max(n1, n2) > 10000
             (10001, 1), (1, 10001), (10001, 2), (10001, 3), (10001, 10), (15000, 50),
             (11000, 139), (12000, 141), (20000, 137), (10500, 300), (12000, 3000),
             (16000, 9000), (20000, 20000), (20000, 10001), (10001, 10001), (20000, 1)]
    cases = []
    seed = 1
    for n1, n2 in sizes:
        en = n1 * n2 / (n1 + n2)
        for variant in ("same", "shift", "ties", "ties_shift", "far"):
            seed += 2
            if variant == "far" and n1 != n2 and 5000 <= max(n1, n2) <= 10000:
                continue  # p underflows to 0 and the exact count is the slowest case
            if variant == "same":
                a, b = spec(seed, n1), spec(seed + 1, n2)
            elif variant == "shift":
                off = round(2.2 / math.sqrt(en) * 256) / 256
                a, b = spec(seed, n1), spec(seed + 1, n2, offset=off)
            elif variant == "ties":
                a, b = spec(seed, n1, levels=12), spec(seed + 1, n2, levels=12)
            elif variant == "ties_shift":
                a, b = spec(seed, n1, levels=7), spec(seed + 1, n2, levels=7, offset=1.0)
            else:  # far apart: tiny p-values
                a, b = spec(seed, n1, scale=2.0), spec(seed + 1, n2, scale=0.5, offset=0.75)
            x, y = sample(a), sample(b)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = stats.ks_2samp(x, y)
            cases.append({"a": a, "b": b, "statistic": float(r.statistic),
                          "pvalue": float(r.pvalue), "method": ks_method(n1, n2, x, y)})
    # textbook pairs written out by hand
    hand = [([0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64,
              -0.82, 0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06, -2.47],
             [2.2, 1.66, 1.38, 0.2, 0.36, 0.0, 0.96, 1.56, 0.44, 1.5, -0.3, 0.66, 2.31, 3.29,
              -0.27, -0.37, 0.38, 0.7, 0.52, -0.71]),
            ([1, 2, 3, 4, 5], [1.5, 2.5, 3.5, 4.5, 5.5]),
            ([0, 1, 2, 3, 4], [0.5, 1.5, 2.5, 3.5, 4.5]),
            ([1, 1, 1, 1], [1, 1, 1]),
            ([1, 2, 3], [4, 5, 6, 7]),
            ([-1e300, 0, 1e300], [5e-324, 1, 2])]
    for a, b in hand:
        a, b = [float(v) for v in a], [float(v) for v in b]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = stats.ks_2samp(a, b)
        cases.append({"a": a, "b": b, "statistic": float(r.statistic), "pvalue": float(r.pvalue),
                      "method": ks_method(len(a), len(b), a, b)})
    write_json("stats_ks.json", {"cases": cases})


def make_kstwo():
    ns = [1, 2, 3, 4, 5, 7, 10, 20, 50, 100, 139, 140, 141, 150, 200, 500, 1000, 2000, 5000, 10000,
          200000, 2000000]
    rows = []
    for n in ns:
        xs = [0.5 / n, 0.5 / n * 1.0001, 0.75 / n, 1.0 / n, 1.5 / n, 2.0 / n, 3.5 / n,
              0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.49, 0.5, 0.6, 0.8,
              0.95, (n - 1.0) / n, 1 - 0.5 / n, 1 - 0.1 / n, 1.0]
        xs += [math.sqrt(c / n) for c in (0.05, 0.3, 0.754, 0.76, 1.0, 1.5, 2.19, 2.21, 3.0,
                                          3.99, 4.01, 8.0, 17.9, 18.1, 50.0, 200.0, 353.0,
                                          356.0, 369.0, 371.0)]
        xs += [(1.4 / n) ** (2.0 / 3.0) * f for f in (0.99, 1.01)]
        for x in sorted(set(xs)):
            if 0.0 < x <= 1.0:
                rows.append([n, x, float(stats.kstwo.sf(x, n))])
    write_json("stats_kstwo.json", {"rows": rows})


# ---------------------------------------------------------------- ROC

FPRS = [0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0]


def make_roc():
    cases = []
    seed = 1000
    plan = [(2, 0, 1.0), (3, 4, 0.5), (5, 0, 0.25), (8, 3, 0.0), (10, 2, 1.0), (20, 0, 0.5),
            (24, 5, 0.25), (50, 0, 0.125), (100, 10, 1.0), (100, 0, 0.25), (101, 3, 0.5),
            (200, 0, 0.0), (250, 40, 0.75), (500, 0, 0.5), (1000, 25, 0.25), (1000, 0, 1.0),
            (3000, 100, 0.125), (5000, 0, 0.25), (8000, 7, 0.5)]
    for n, levels, shift in plan:
        seed += 2
        lab = [int(v) for v in sample({"seed": seed, "n": n, "levels": 2})]
        if sum(lab) in (0, n):  # make both classes present
            lab[0], lab[-1] = 0, 1
        scores = spec(seed + 1, n, levels=levels)
        s = sample(scores) + shift * np.array(lab, dtype=float)
        entry = {"labels": "".join(str(v) for v in lab), "scores": scores, "shift": shift}
        fpr, tpr, _ = roc_curve(lab, s)
        entry["auc"] = float(roc_auc_score(lab, s))
        entry["tpr"] = [float(np.interp(f, fpr, tpr)) for f in FPRS]
        cases.append(entry)
    # a hand-made case with every kind of tie
    lab = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1]
    sc = [0.9, 0.9, 0.8, 0.7, 0.7, 0.7, 0.5, 0.4, 0.4, 0.2, 0.1, 0.1]
    fpr, tpr, _ = roc_curve(lab, sc)
    cases.append({"labels": "".join(map(str, lab)), "scores": sc, "shift": 0.0,
                  "auc": float(roc_auc_score(lab, sc)),
                  "tpr": [float(np.interp(f, fpr, tpr)) for f in FPRS]})
    write_json("stats_roc.json", {"fprs": FPRS, "cases": cases})


# ---------------------------------------------------------------- hmean, wasserstein

def make_misc():
    hm = []
    for k, (n, levels, offset) in enumerate([(1, 0, 0.5), (2, 0, 1.0), (7, 5, 1.0), (24, 0, 0.125),
                                              (100, 0, 0.0078125), (1000, 9, 1.0),
                                              (10000, 0, 2.0 ** -20), (5, 0, 1e3)]):
        x = spec(50 + k, n, levels=levels, offset=offset)
        hm.append({"x": x, "value": float(stats.hmean(sample(x)))})
    hm.append({"x": [1.0, 4.0, 4.0], "value": float(stats.hmean([1.0, 4.0, 4.0]))})
    ws = []
    for k, (n1, n2, la, lb, off) in enumerate([(1, 1, 0, 0, 0.5), (1, 5, 0, 0, 0.0), (3, 3, 0, 0, 0.25),
                                               (10, 7, 4, 4, 1.0), (24, 24, 0, 0, 0.0),
                                               (100, 37, 0, 0, 0.5), (500, 1000, 6, 8, 0.0),
                                               (5000, 3000, 0, 0, 0.125), (20000, 20000, 0, 0, 0.0)]):
        a = spec(200 + 2 * k, n1, levels=la)
        b = spec(201 + 2 * k, n2, levels=lb, offset=off)
        ws.append({"a": a, "b": b, "value": float(stats.wasserstein_distance(sample(a), sample(b)))})
    ws.append({"a": [0.0, 1.0, 3.0], "b": [5.0, 6.0, 8.0],
               "value": float(stats.wasserstein_distance([0, 1, 3], [5, 6, 8]))})
    write_json("stats_misc.json", {"hmean": hm, "wasserstein": ws})


# ---------------------------------------------------------------- Porter, ROUGE-L

STRESS = ["generously", "generous", "caresses", "caress", "ponies", "ties", "cats", "feed",
          "agreed", "plastered", "bled", "motoring", "sing", "conflated", "troubled", "sized",
          "hopping", "tanned", "falling", "hissing", "fizzed", "failing", "filing", "happy",
          "sky", "skies", "relational", "conditional", "rational", "valenci", "hesitanci",
          "digitizer", "conformabli", "radicalli", "differentli", "vileli", "analogousli",
          "vietnamization", "predication", "operator", "feudalism", "decisiveness",
          "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti",
          "triplicate", "formative", "formalize", "electriciti", "electrical", "hopeful",
          "hopefully", "goodness", "revival", "allowance", "inference", "airliner",
          "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
          "dependent", "adoption", "homologou", "communism", "activate", "angulariti",
          "homologous", "effective", "bowdlerize", "probate", "rate", "cease", "controll",
          "roll", "dying", "lying", "tying", "news", "innings", "inning", "outings", "outing",
          "cannings", "canning", "howe", "proceed", "exceed", "succeed", "proceeding",
          "exceeded", "enjoy", "enjoyment", "spy", "fly", "try", "spied", "tried", "flies",
          "died", "lied", "tied", "dies", "pies", "ties", "ied", "generalli", "fulli",
          "carefulli", "archaeologi", "analogi", "logi", "toy", "syzygy", "trees", "ivy",
          "troubles", "private", "oaten", "orrery", "by", "tr", "ee", "y", "is", "as", "a",
          "bus", "yes", "was", "this", "abyss", "yellow", "crying", "buying", "saying",
          "playing", "eyes", "yyyy", "aaaa", "running", "runs", "ran", "easily", "studies",
          "studying", "national", "nationally", "organization", "organizational",
          "conditionally", "happiness", "1990s", "mp3s", "covid19", "3rd", "a1b2", "12345",
          "universities", "university", "generalization", "generalizations", "hoping",
          "hoped", "hopes", "computer", "computing", "computation", "computational",
          "meeting", "meetings", "sensational", "feasibility", "responsibility", "abilities"]

ROOTS = ["relat", "condit", "hop", "generous", "agre", "run", "fall", "hiss", "fizz", "fil",
         "fail", "tann", "troubl", "conflat", "siz", "motor", "plaster", "caress", "poni",
         "happ", "formal", "sensit", "electr", "triplic", "allow", "infer", "adjust",
         "defens", "irrit", "replac", "depend", "adopt", "commun", "activ", "angular",
         "homolog", "effect", "control", "prob", "rat", "ceas", "digit", "oper", "feud",
         "decis", "call", "valen", "hesit", "differ", "analog", "radic", "conform", "toy",
         "syzyg", "enjoy", "sp", "tr", "d", "abc", "ab", "ear", "oat", "iv", "privat", "bu",
         "xy", "wi", "ow", "ye", "ay", "by", "qu", "stud", "play"]

SUFFIXES = ["", "s", "es", "ies", "sses", "ss", "ed", "ing", "eed", "ied", "y", "e", "ll",
            "ational", "tional", "enci", "anci", "izer", "bli", "abli", "alli", "entli", "eli",
            "ousli", "ization", "ation", "ator", "alism", "iveness", "fulness", "ousness",
            "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative", "alize", "iciti",
            "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
            "ement", "ment", "ent", "sion", "tion", "ion", "ou", "ism", "ate", "iti", "ous",
            "ive", "ize", "ating", "ated", "izing", "ly", "fully", "ingly", "ations", "ying",
            "eing", "bled", "ling", "ening", "ies", "yed", "ally", "ization", "ousnesses"]


def porter_words():
    words = list(STRESS)
    cross = [r + s for r in ROOTS for s in SUFFIXES]
    words += cross[::2]
    rng = random.Random(7)
    letters = "aeiouyyybcdfghlmnprstvwxz"
    for _ in range(400):
        words.append("".join(rng.choice(letters) for _ in range(rng.randint(1, 11))))
    seen, out = set(), []
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def make_porter():
    st = PorterStemmer()
    path = os.path.join(OUT, "stats_porter.txt")
    with open(path, "w") as f:
        for w in porter_words():
            f.write(f"{w} {st.stem(w)}\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


_STEMMER = PorterStemmer()


def rouge_tokenize(text, stem):
    """rouge_score.tokenize.tokenize, with nltk's PorterStemmer() as rouge-score uses it."""
    text = text.lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    tokens = re.split(r"\s+", text)
    if stem:
        tokens = [_STEMMER.stem(x) if len(x) > 3 else x for x in tokens]
    return [x for x in tokens if re.match(r"^[a-z0-9]+$", x)]


def lcs_len(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(ref, hyp, stem):
    """rouge_score.rouge_scorer._score_lcs(target=ref, prediction=hyp)."""
    t, p = rouge_tokenize(ref, stem), rouge_tokenize(hyp, stem)
    if not t or not p:
        return 0.0, 0.0, 0.0
    lcs = lcs_len(t, p)
    precision = lcs / len(p)
    recall = lcs / len(t)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f


EXTRA_TOKENS = ["café", "naïve", "İstanbul", "\u212aelvin", "Ελληνικά", "日本語", "😀", "ﬁnance",
                "Straße", "１２３", "x²", "e-mail", "U.S.A.", "don't", "3.14159", "$100",
                "50%", "C++", "#hashtag", "@user", "--", "...", "(a)", "[b]", "{c}", "a/b",
                "2024-01-15", "HELLO", "MiXeD", "\t", "1st", "10,000"]


def make_rouge():
    rng = random.Random(11)
    vocab = STRESS + ["the", "a", "of", "and", "to", "in", "is", "was", "that", "he", "she",
                      "it", "they", "on", "for", "with", "as", "his", "her", "book", "author",
                      "wrote", "writes", "writing", "written", "born", "city", "novel",
                      "novels", "award", "awards", "father", "mother", "worked", "works",
                      "2", "17", "1984", "42"]
    inflect = {}
    for w in STRESS:
        inflect.setdefault(w[:4], []).append(w)
    pairs = [("", ""), ("", "the cat"), ("the cat", ""), ("...", "!!!"), ("The Cat", "the cat"),
             ("the cat sat on the mat", "the cat sat on the mat"),
             ("the cat sat on the mat", "dogs run quickly"),
             ("police killed the gunman", "police kill the gunman"),
             ("police killed the gunman", "the gunman kill police"),
             ("The quick brown fox jumps over the lazy dog",
              "The quick brown dog jumps on the log."),
             ("generously caresses ponies", "generous caress pony"),
             ("relational hopefully dying", "relate hopeful die"),
             ("sky news proceed agreed", "skies news proceeding agree"),
             ("İstanbul \u212aelvin café", "istanbul kelvin caf"),
             ("line one\nline two", "line two\tline one"),
             ("a b c d e f g", "g f e d c b a"),
             ("a a a a b", "a b a b a"),
             ("123 456 7,890", "123-456-7890"),
             ("x", "x"), ("ab", "ab ab ab ab ab")]
    while len(pairs) < 300:
        n = rng.choice([1, 2, 3, 5, 8, 12, 20, 35, 60])
        ref = []
        for _ in range(n):
            r = rng.random()
            if r < 0.12:
                ref.append(rng.choice(EXTRA_TOKENS))
            elif r < 0.18:
                ref.append(str(rng.randint(0, 10 ** rng.randint(1, 5))))
            else:
                w = rng.choice(vocab)
                ref.append(w.upper() if rng.random() < 0.05 else
                           w.capitalize() if rng.random() < 0.1 else w)
        hyp = []
        for w in ref:
            r = rng.random()
            if r < 0.15:
                continue
            if r < 0.35:
                forms = inflect.get(w.lower()[:4])
                hyp.append(rng.choice(forms) if forms else rng.choice(vocab))
            elif r < 0.45:
                hyp.append(rng.choice(vocab))
            else:
                hyp.append(w)
            if rng.random() < 0.05:
                hyp.append(rng.choice(vocab))
        if rng.random() < 0.2:
            rng.shuffle(hyp)
        seps = [" ", " ", " ", ", ", ". ", "  ", "-", "; "]
        ref_s = "".join(w + rng.choice(seps) for w in ref).strip()
        hyp_s = "".join(w + rng.choice(seps) for w in hyp).strip()
        pairs.append((ref_s, hyp_s))
    rows = []
    for ref, hyp in pairs:
        rows.append([ref, hyp, *rouge_l(ref, hyp, False), *rouge_l(ref, hyp, True)])
    write_json("stats_rouge.json", {"rows": rows})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_ks()
    make_kstwo()
    make_roc()
    make_misc()
    make_porter()
    make_rouge()
