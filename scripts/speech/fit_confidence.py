#!/usr/bin/env python3
"""Out-of-fold check of the grammar path's calibration from a benchmark dump.

`SPEECH_DUMP=/tmp/d SPEECH_SET=dev SPEECH_ENGINES=grammar scripts/eval-speech`
writes /tmp/d.grammar.jsonl; this script rebuilds the grammar-path features
of `asr::confidence::Calibration::features` (the second pass's among them),
fits the logistic model on all clips (as SPEECH_FIT=1 does) and, grouped by
reply text, K-fold out of fold, and prints the rejection trade-off at several
thresholds both ways. No numpy: plain gradient descent, as the benchmark's.

Usage: fit_confidence.py DUMP.jsonl [--folds 5] [--features dump|all|base] [--phones]
[--limit N]  (--phones adds the phone-level similarity of the two texts)

`--features dump` (the default when the dump carries them) fits the dump's own
`features`, the 15 of `Calibration::features` in `Calibration::weights` order
(FEATURES below; the weights print under the Rust field names, ready for a
`Calibration` constant); `all` and `base` rebuild the older grammar-only
layouts from the evidence (with and without the second pass's three).
"""
import json, math, random, sys

def words(t):
    return [w for w in t.replace(",", " ").split() if w]

PHONES = {}

def phones(t):
    if not PHONES:
        for l in open("/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"):
            p = l.split()
            if p and not p[0].endswith(")") and p[0] not in PHONES:
                PHONES[p[0]] = p[1:]
    return [x for w in words(t) for x in PHONES.get(w, [])]

def lev(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]

USE_PHONES = "--phones" in sys.argv

# `Calibration::weights` order (src/asr/confidence.rs, FEATURES = 15).
FEATURES = ["agree", "disagree", "taken_score", "gap", "no_speech", "grammar_conf", "unknown",
            "words", "looped", "lm_unknown", "lm_agree", "lm_overlap", "lm_phone_sim",
            "lm_intent_conf", "lm_taken"]

def dump_feats(c):
    x = c.get("features")
    ev = c.get("evidence") or {}
    if x is None or not (ev.get("grammar") or ev.get("whisper")):
        return None
    if len(x) != len(FEATURES):
        sys.exit(f"the dump's features have {len(x)} values, this script knows {len(FEATURES)}")
    return list(x)

def feats(c, use_lm=True):
    ev = c["evidence"] or {}
    g = ev.get("grammar")
    if not g or not words(g["text"]):
        return None
    got = c["got"]
    lm = g.get("lm_text")
    lmf = [0.0, 0.0, 0.0]
    if use_lm and lm is not None:
        lmi = g.get("lm_intent")
        unknown = lmi in (None, "unknown")
        agree = g.get("intent") not in (None, "unknown") and lmi == g.get("intent")
        heard = set(words(lm))
        sw = words(g["text"])
        overlap = sum(1 for w in sw if w in heard) / len(sw)
        lmf = [float(unknown), float(agree), overlap]
        if USE_PHONES:
            a, b = phones(g["text"]), phones(lm)
            lmf.append(1 - lev(a, b) / max(len(a), len(b), 1))
    elif USE_PHONES:
        lmf.append(0.0)
    return [g["conf"], float(got == "unknown"), min(len(words(g["text"])), 8) / 8.0] + lmf

def fit(data, iters=4000, lr=0.5, l2=1e-3):
    k = len(data[0][0])
    b, w = 0.0, [0.0] * k
    n = len(data)
    for _ in range(iters):
        gb, gw = 0.0, [0.0] * k
        for x, y in data:
            z = b + sum(wi * xi for wi, xi in zip(w, x))
            p = 1 / (1 + math.exp(-z))
            e = p - y
            gb += e
            for i in range(k):
                gw[i] += e * x[i]
        b -= lr * gb / n
        w = [wi - lr * (g / n + l2 * wi) for wi, g in zip(w, gw)]
    return b, w

def prob(m, x):
    b, w = m
    return 1 / (1 + math.exp(-(b + sum(wi * xi for wi, xi in zip(w, x)))))

def report(clips, conf, title):
    spoken = [c for c in clips if c["text"] != "<silence>"]
    off = [c for c in spoken if c["expected"] == "unknown"]
    on = [c for c in spoken if c["expected"] != "unknown"]
    print(f"  {title}")
    heard = [c for c in spoken if c["heard"].strip()]
    # reliability + ECE
    ece = 0.0
    rows = []
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        inb = [c for c in heard if lo <= conf[id(c)] < hi or (b == 9 and conf[id(c)] == 1.0)]
        if not inb:
            continue
        acc = sum(c["got"] == c["expected"] for c in inb) / len(inb)
        mc = sum(conf[id(c)] for c in inb) / len(inb)
        ece += abs(acc - mc) * len(inb)
        rows.append(f"    {lo:.1f}-{hi:.1f} {len(inb):>5} clips  mean {mc:.2f}  accuracy {100*acc:5.1f}%")
    print(f"    ECE {ece/max(1,len(heard)):.3f}")
    print("\n".join(rows))
    for t in [0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]:
        rej = sum(1 for c in off if c["got"] == "unknown" or conf.get(id(c), 0.0) < t)
        right = sum(1 for c in on if c["got"] == c["expected"] and conf.get(id(c), 0.0) >= t)
        print(f"    reject below {t:.2f}: off-topic rejected {rej}/{len(off)} {100*rej/len(off):5.1f}%"
              f"  on-topic right {right}/{len(on)} {100*right/len(on):5.1f}%")

def main():
    path = sys.argv[1]
    folds = int(sys.argv[sys.argv.index("--folds") + 1]) if "--folds" in sys.argv else 5
    clips = [json.loads(l) for l in open(path)]
    if "--limit" in sys.argv:
        clips = clips[: int(sys.argv[sys.argv.index("--limit") + 1])]
    layout = sys.argv[sys.argv.index("--features") + 1] if "--features" in sys.argv else None
    if layout is None:
        layout = "dump" if clips and clips[0].get("features") is not None else "all"
    if layout == "dump":
        xs = {id(c): dump_feats(c) for c in clips}
    else:
        xs = {id(c): feats(c, layout != "base") for c in clips}
    lab = lambda c: float(c["got"] == c["expected"])
    data = [(xs[id(c)], lab(c)) for c in clips if xs[id(c)] is not None and c["text"] != "<silence>"]
    m = fit(data)
    if layout == "dump":
        names = FEATURES
    else:
        names = ["grammar_conf", "unknown", "words"] + (["lm_unknown", "lm_agree", "lm_overlap"] if layout != "base" else []) + (["lm_phone_sim"] if USE_PHONES else [])
    print(f"in-sample fit: bias {m[0]:.4f} " + " ".join(f"{n} {w:.4f}" for n, w in zip(names, m[1])))
    conf = {id(c): (prob(m, xs[id(c)]) if xs[id(c)] is not None else 0.0) for c in clips}
    report(clips, conf, "in sample (fitted on these clips)")
    texts = sorted({c["text"] for c in clips})
    random.Random(7).shuffle(texts)
    fold_of = {t: i % folds for i, t in enumerate(texts)}
    oof = {}
    for k in range(folds):
        train = [(xs[id(c)], lab(c)) for c in clips
                 if xs[id(c)] is not None and c["text"] != "<silence>" and fold_of[c["text"]] != k]
        mk = fit(train)
        for c in clips:
            if fold_of[c["text"]] == k:
                oof[id(c)] = prob(mk, xs[id(c)]) if xs[id(c)] is not None else 0.0
    report(clips, oof, f"out of fold ({folds} folds by reply text)")

if __name__ == "__main__":
    main()
