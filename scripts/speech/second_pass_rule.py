#!/usr/bin/env python3
"""Offline study of `asr::confidence::SecondPassRule` from a benchmark dump.

Run the benchmark with the second pass on and its text never taken:
  DUECALL_SPHINX_SECOND_PASS=lm DUECALL_SECOND_PASS_TAKE=never SPEECH_DUMP=/tmp/d \
  SPEECH_SET=dev SPEECH_ENGINES=grammar scripts/eval-speech
then `second_pass_rule.py /tmp/d.grammar.jsonl` replays the rule at a grid of
thresholds (min classifier confidence of the second pass's intent, max
calibrated confidence of the grammar sentence, the latter under the
calibration the run used), refits the 15-feature calibration on the replayed
verdicts (in sample, and out of fold by reply text) and prints reply-intent
accuracy, off-topic rejection at several reject thresholds, and ECE.
`--rule MIN,MAX[,STAKES[,INTO]]` prints the reliability table of one rule (STAKES: the
least classifier confidence when either intent is consequential, as
`SecondPassRule::min_stakes_conf`; default none; INTO: the most calibrated
confidence of an ordinary-intent sentence the rule leaves for a consequential
intent, as `SecondPassRule::max_grammar_conf_into_stakes`); `--folds K`.
Features follow `Calibration::features` (the dump's `features`): index 6
the taken text means nothing, 7 its words/8, 14 the second pass's text was taken.
"""
import json, math, random, sys

import reliability

def words(t):
    return [w for w in (t or "").replace(",", " ").split() if w]

def solve(a, b):
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c and m[c][c]:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if m[i][i] else 0.0 for i in range(n)]

def fit(data, iters=25, l2=1e-3):
    """Logistic regression by Newton's method with a little L2 (as the
    benchmark's gradient descent converges to)."""
    k = len(data[0][0]) + 1
    w = [0.0] * k
    n = len(data)
    rows = [([1.0] + list(x), y) for x, y in data]
    for _ in range(iters):
        g = [0.0] * k
        h = [[0.0] * k for _ in range(k)]
        for x, y in rows:
            z = sum(wi * xi for wi, xi in zip(w, x))
            p = 1 / (1 + math.exp(-max(-30, min(30, z))))
            e, v = p - y, p * (1 - p)
            nz = [i for i in range(k) if x[i]]
            for i in nz:
                g[i] += e * x[i]
                for j in nz:
                    h[i][j] += v * x[i] * x[j]
        for i in range(k):
            g[i] = g[i] / n + (l2 * w[i] if i else 0.0)
            for j in range(k):
                h[i][j] /= n
            h[i][i] += l2 if i else 1e-9
            h[i][i] += 1e-9
        step = solve(h, g)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return w[0], w[1:]

def prob(m, x):
    b, w = m
    z = b + sum(wi * xi for wi, xi in zip(w, x))
    return 1 / (1 + math.exp(-max(-30, min(30, z))))

# `asr::confidence::consequential`.
CONSEQUENTIAL = {"stop_calling", "wrong_number", "dispute", "hardship", "already_paid",
                 "request_agent", "not_available"}

def replay(clips, mn, mx, st=None, mxs=None):
    """Each clip as the rule would leave it: (got, features or None).
    `mxs`: a switch from a sentence of an ordinary intent to a consequential
    one is taken only when the sentence's calibrated confidence is below this
    (`SecondPassRule::max_grammar_conf_into_stakes`; default: `mx`)."""
    out = []
    for c in clips:
        x = c.get("features")
        g = (c.get("evidence") or {}).get("grammar")
        got = c["got"]
        if x is not None and g and c.get("source") == "grammar":
            lmi, lmc = g.get("lm_intent"), g.get("lm_intent_conf") or 0.0
            least = mn
            if st is not None and (lmi in CONSEQUENTIAL or g.get("intent") in CONSEQUENTIAL):
                least = max(mn, st)
            most = mx
            if mxs is not None and lmi in CONSEQUENTIAL and g.get("intent") not in CONSEQUENTIAL:
                most = min(mx, mxs)
            take = (words(g.get("lm_text")) and lmi not in (None, "unknown")
                    and lmi != g.get("intent") and lmc >= least and c["confidence"] < most)
            if take:
                x = list(x)
                x[6] = 0.0
                x[7] = min(len(words(g["lm_text"])), 8) / 8.0
                x[14] = 1.0
                got = lmi
        out.append((got, x))
    return out

def summary(clips, rep, conf, ts=(0.0, 0.3, 0.35, 0.4, 0.45, 0.5)):
    rows = []
    for t in ts:
        on_right = off_rej = n_on = n_off = 0
        for c, (got, x), p in zip(clips, rep, conf):
            if c["text"] == "<silence>":
                continue
            g = got if (x is None or p >= t) else "unknown"
            if c["expected"] == "unknown":
                n_off += 1
                off_rej += g == "unknown"
            else:
                n_on += 1
                on_right += g == c["expected"]
        rows.append((t, on_right, n_on, off_rej, n_off))
    return rows

def ece(clips, rep, conf, table=False):
    return reliability.ece(
        [(p, got == c["expected"]) for c, (got, x), p in zip(clips, rep, conf)
         if c["text"] != "<silence>" and x is not None], table, indent="    ")

def evaluate(clips, mn, mx, folds, table=False, st=None, mxs=None):
    rep = replay(clips, mn, mx, st, mxs)
    data = [(x, float(got == c["expected"])) for c, (got, x) in zip(clips, rep)
            if x is not None and c["text"] != "<silence>"]
    m = fit(data)
    conf_in = [prob(m, x) if x is not None else 0.0 for _, x in rep]
    texts = sorted({c["text"] for c in clips})
    random.Random(7).shuffle(texts)
    fold_of = {t: i % folds for i, t in enumerate(texts)}
    conf_oof = [0.0] * len(clips)
    for k in range(folds):
        tr = [(x, float(got == c["expected"])) for c, (got, x) in zip(clips, rep)
              if x is not None and c["text"] != "<silence>" and fold_of[c["text"]] != k]
        mk = fit(tr)
        for i, (c, (got, x)) in enumerate(zip(clips, rep)):
            if fold_of[c["text"]] == k and x is not None:
                conf_oof[i] = prob(mk, x)
    taken = sum(1 for _, x in rep if x is not None and x[14] == 1.0)
    return m, rep, conf_in, conf_oof, taken

def main():
    path = sys.argv[1]
    folds = int(sys.argv[sys.argv.index("--folds") + 1]) if "--folds" in sys.argv else 5
    clips = [json.loads(l) for l in open(path)]
    if "--rule" in sys.argv:
        v = [float(x) for x in sys.argv[sys.argv.index("--rule") + 1].split(",")]
        grid = [(v[0], v[1], v[2] if len(v) > 2 else None, v[3] if len(v) > 3 else None)]
    else:
        grid = [(2.0, -1.0, None, None)] + [(mn, mx, st, mxs) for st in (None, 0.8)
                                            for mn in (0.6, 0.7, 0.8, 0.9)
                                            for mx in (0.5, 0.7, 0.9, 1.01)
                                            for mxs in (None, 0.4, 0.3, 0.2, 0.1)]
    if len(grid) > 1:
        for mn, mx, st, mxs in grid:
            rep = replay(clips, mn, mx, st, mxs)
            taken = sum(1 for _, x in rep if x is not None and x[14] == 1.0)
            (t, r, n, o, no), = summary(clips, rep, [1.0] * len(rep), ts=(0.0,))
            into = sum(1 for c, (got, x) in zip(clips, rep)
                       if got in CONSEQUENTIAL and got != c["expected"])
            print(f"rule {mn},{mx},{st},{mxs}: taken {taken:4d}  on-topic right {r}/{n} {100*r/n:.1f}%"
                  f"  off-topic heard as nothing {o}/{no} {100*o/no:.1f}%"
                  f"  consequential not meant {into}")
        return
    for mn, mx, st, mxs in grid:
        m, rep, ci, co, taken = evaluate(clips, mn, mx, folds, table=len(grid) == 1, st=st, mxs=mxs)
        print(f"rule min_intent_conf {mn} max_grammar_conf {mx} min_stakes_conf {st}: second pass taken on {taken} clips;"
              f" ECE in sample {ece(clips, rep, ci):.3f}, out of fold {ece(clips, rep, co):.3f}")
        for (t, r, n, o, no), (_, r2, _, o2, _) in zip(summary(clips, rep, ci), summary(clips, rep, co)):
            print(f"  reject<{t:.2f}: on-topic right {r}/{n} {100*r/n:.1f}% off-topic rejected {o}/{no}"
                  f" {100*o/no:.1f}%  | out of fold: {r2} {100*r2/n:.1f}%, {o2} {100*o2/no:.1f}%")
        if len(grid) == 1:
            print("  fitted: bias %.4f weights %s" % (m[0], " ".join(f"{w:.4f}" for w in m[1])))
            print("  reliability (in sample):")
            ece(clips, rep, ci, table=True)

if __name__ == "__main__":
    main()
