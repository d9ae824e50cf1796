#!/usr/bin/env python3
"""Offline study of `asr::hybrid::HybridRule` from a benchmark dump.

Run the benchmark with the hybrid engine in the turns to study and dump it:
  SPEECH_DUMP=/tmp/h SPEECH_SET=dev SPEECH_ENGINES=hybrid SPEECH_ENGINE_TURNS=reminder \
  SPEECH_TURNS=reminder scripts/eval-speech
then `hybrid_rule.py /tmp/h.hybrid.jsonl` prints, from the same clips, what the
grammar engine alone and Whisper alone would have understood, and replays the
rule at a grid of thresholds: reply intents right, off-topic replies heard as
nothing, replies heard as a consequential intent not meant. `--rule
LOGPROB,CONF,STAKES,KNOWN_GAP,UNKNOWN_GAP` replays one rule, fits the
calibration (the 15 features of `Calibration::features`, in sample and out of
fold by reply text) and prints its reliability table and the weights to paste.
Only clips whose `engine` is hybrid are used. Fit on the development split only.
"""
import json, random, sys, os

sys.path.insert(0, os.path.dirname(__file__))
from second_pass_rule import fit, prob, CONSEQUENTIAL, words  # noqa: E402
import reliability  # noqa: E402

NEG = -1e9


def sides(c):
    e = c.get("evidence") or {}
    g = e.get("grammar")
    w = e.get("whisper")
    if g is not None and not words(g.get("text")):
        g = None
    if w is not None and (not words(w.get("text")) or w.get("no_speech", 0) > 0.6):
        w = None
    return g, w


def decide(c, r):
    """(source, intent) as `HybridRule::choose` would; r = (logprob, conf,
    stakes, known_gap, unknown_gap)."""
    min_lp, min_conf, stakes, known_gap, unknown_gap = r
    g, w = sides(c)
    if g is None and w is None:
        return "nothing", "unknown"
    if g is None:
        return "whisper", w.get("intent") or "unknown"
    if w is None:
        return "grammar", g.get("intent") or "unknown"
    sound = not w.get("looped") and w.get("mean_logprob", 0) >= min_lp
    if not sound:
        return "grammar", g.get("intent") or "unknown"
    wi, gi = w.get("intent") or "unknown", g.get("intent") or "unknown"
    if wi == gi:
        return "whisper", wi
    own = w.get("own_score")
    gs = g.get("whisper_score")
    gap = (own - gs) if (own is not None and gs is not None) else None
    if wi == "unknown":
        take = gap is not None and gap >= unknown_gap
    else:
        least = max(min_conf, stakes) if (wi in CONSEQUENTIAL or gi in CONSEQUENTIAL) else min_conf
        take = (c.get("whisper_intent_conf") or 0.0) >= least and (gap is None or gap >= known_gap)
    return ("whisper", wi) if take else ("grammar", gi)


def features(c, source, intent):
    """`Calibration::features` for a hybrid verdict (no second pass)."""
    e = c.get("evidence") or {}
    g, w = e.get("grammar"), e.get("whisper")
    agree = None
    if g is not None and w is not None:
        agree = g.get("intent") is not None and g.get("intent") == w.get("intent")
    g_score = g.get("whisper_score") if g else None
    w_score = None
    if w is not None:
        w_score = w.get("own_score") if w.get("own_score") is not None else w.get("mean_logprob")
    taken, other = (w_score, g_score) if source == "whisper" else (g_score, w_score)
    gap = max(-3.0, min(3.0, taken - other)) if (taken is not None and other is not None) else 0.0
    gc = g.get("conf", 0.0) if (g and source == "grammar") else 0.0
    text = (w.get("text") if source == "whisper" else g.get("text")) if source != "nothing" else ""
    return [
        float(agree is True), float(agree is False),
        max(taken if taken is not None else 0.0, -5.0), gap,
        w.get("no_speech", 0.0) if w else 0.0, gc,
        float(intent == "unknown"), min(len(words(text)), 8) / 8.0,
        float(bool(w and w.get("looped"))), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ]


def score(clips, got):
    on = on_right = off = off_rej = wrong_stakes = 0
    for c, g in zip(clips, got):
        if c["text"] == "<silence>":
            continue
        if c["expected"] == "unknown":
            off += 1
            off_rej += g == "unknown"
        else:
            on += 1
            on_right += g == c["expected"]
        wrong_stakes += g in CONSEQUENTIAL and g != c["expected"]
    return on_right, on, off_rej, off, wrong_stakes


def line(name, s):
    r, n, o, no, ws = s
    return (f"{name}: replies right {r}/{n} = {100*r/max(n,1):.1f} %, off-topic as nothing {o}/{no} = "
            f"{100*o/max(no,1):.1f} %, consequential not meant {ws}")


def ece(clips, got, conf, table=False):
    return reliability.ece(
        [(p, g == c["expected"]) for c, g, p in zip(clips, got, conf)
         if c["text"] != "<silence>" and p is not None], table)


def main():
    clips = [json.loads(l) for l in open(sys.argv[1])]
    clips = [c for c in clips if c.get("engine") in ("hybrid", None)]
    print(f"{len(clips)} clips")
    gram = [(sides(c)[0] or {}).get("intent") or "unknown" for c in clips]
    whis = [(sides(c)[1] or {}).get("intent") or "unknown" for c in clips]
    print(line("grammar alone", score(clips, gram)))
    print(line("whisper alone", score(clips, whis)))
    print(line("as run (confidence.rs rule)", score(clips, [c["got"] for c in clips])))
    unsound = sum(1 for c in clips if c.get("whisper_unsound"))
    print(f"whisper unsound: {unsound} clips")
    if "--rule" in sys.argv:
        v = [float(x) for x in sys.argv[sys.argv.index("--rule") + 1].split(",")]
        grid = [tuple(v)]
    else:
        grid = [(lp, mc, st, kg, ug)
                for lp in (NEG, -1.0, -0.7, -0.5)
                for mc in (0.5, 0.6, 0.7, 0.8)
                for st in (0.0, 0.8, 0.9)
                for kg in (-9.0, -0.35, 0.0)
                for ug in (0.5, 1.0, 2.0, 99.0)]
    best = []
    for r in grid:
        dec = [decide(c, r) for c in clips]
        s = score(clips, [d[1] for d in dec])
        best.append((s[0] + 0.5 * s[2] - 0.5 * s[4], r, s))
    best.sort(reverse=True)
    for _, r, s in best[:25]:
        print(line(f"rule {r}", s))
    if len(grid) == 1:
        r = grid[0]
        dec = [decide(c, r) for c in clips]
        got = [d[1] for d in dec]
        data = [(features(c, *d), float(d[1] == c["expected"])) for c, d in zip(clips, dec)
                if d[0] != "nothing" and c["text"] != "<silence>"]
        m = fit(data)
        conf = [prob(m, features(c, *d)) if d[0] != "nothing" else None for c, d in zip(clips, dec)]
        texts = sorted({c["text"] for c in clips})
        random.Random(7).shuffle(texts)
        fold = {t: i % 5 for i, t in enumerate(texts)}
        oof = list(conf)
        for k in range(5):
            mk = fit([(features(c, *d), float(d[1] == c["expected"])) for c, d in zip(clips, dec)
                      if d[0] != "nothing" and c["text"] != "<silence>" and fold[c["text"]] != k])
            for i, (c, d) in enumerate(zip(clips, dec)):
                if fold[c["text"]] == k and d[0] != "nothing":
                    oof[i] = prob(mk, features(c, *d))
        print(f"taken from whisper: {sum(d[0] == 'whisper' for d in dec)}, grammar: "
              f"{sum(d[0] == 'grammar' for d in dec)}, nothing: {sum(d[0] == 'nothing' for d in dec)}")
        print(f"ECE in sample {ece(clips, got, conf):.3f}, out of fold {ece(clips, got, oof):.3f}")
        print("reliability (in sample):")
        ece(clips, got, conf, table=True)
        for t in (0.0, 0.3, 0.4, 0.5):
            g2 = [g if (p is None or p >= t) else "unknown" for g, p in zip(got, conf)]
            g3 = [g if (p is None or p >= t) else "unknown" for g, p in zip(got, oof)]
            print(line(f"reject<{t}", score(clips, g2)) + "  | out of fold: " + line("", score(clips, g3)))
        print("bias %.4f weights %s" % (m[0], ", ".join(f"{w:.4f}" for w in m[1])))


if __name__ == "__main__":
    main()
