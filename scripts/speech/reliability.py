"""Expected calibration error and the reliability table (ten bins) of
confidences against whether each answer was right: shared by the rule
replays (hybrid_rule.py, second_pass_rule.py)."""


def ece(scored, table=False, indent="  "):
    """`scored`: (confidence, right) pairs. Prints the table when asked."""
    bins = [[] for _ in range(10)]
    for p, right in scored:
        bins[min(int(p * 10), 9)].append((p, right))
    n = sum(len(b) for b in bins)
    e = 0.0
    for i, b in enumerate(bins):
        if not b:
            continue
        mp = sum(p for p, _ in b) / len(b)
        acc = sum(x for _, x in b) / len(b)
        e += abs(mp - acc) * len(b)
        if table:
            print(f"{indent}| {i/10:.1f}-{(i+1)/10:.1f} | {len(b)} | {100*acc:.1f} % |  (mean {mp:.2f})")
    return e / max(n, 1)
