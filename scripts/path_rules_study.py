#!/usr/bin/env python3
"""Which quadrature rules reach a completeness tolerance on one IG path, and with how many points.

A study tool for docs/QUADRATURE.md, not a test. It reads the path of a dense, accurate gradpath
run (F(α) at the nodes, `path.alphas` / `path.f` of the JSON), fits F with a Legendre series, and
integrates the fit's derivative (the IG integrand summed over tokens, whose exact integral is
F(x) − F(x′)) with many rules, offline: no model pass per rule. Make the input with, e.g.,

    gradpath ig --text "$(cat t32.txt)" --similar-to "..." --steps 300 --method gauss-legendre \
        --dtype f64 --threads 1 --json path.json
    .refenv/bin/python scripts/path_rules_study.py path.json [--tolerance 1e-4]

It prints the fit's residual (the study is only as good as that), then the relative completeness
error of Gauss–Legendre, Clenshaw–Curtis, composite Gauss–Legendre (m points on p equal panels),
composite K15 and the panel schemes of `--adaptive panels` at several point counts, and for each
family the fewest points that reach the tolerance.
"""
import argparse
import json
import sys

import numpy as np
from numpy.polynomial import legendre as L

# Kronrod 15 (non-negative half, descending; odd entries are the Gauss 7 nodes) and Patterson's 31
# extension: the same constants as src/integrate/kronrod.rs.
XGK = [0.9914553711208126, 0.9491079123427585, 0.8648644233597691, 0.7415311855993944,
       0.5860872354676911, 0.4058451513773972, 0.2077849550078985, 0.0]
WGK = [0.02293532201052922, 0.06309209262997855, 0.1047900103222502, 0.1406532597155259,
       0.1690047266392679, 0.1903505780647854, 0.2044329400752989, 0.2094821410847278]
XP = [0.9986871096784667, 0.9753835882088934, 0.9122048827832629, 0.8076889391724375,
      0.6673480981043002, 0.4986367865528320, 0.3085792479105878, 0.1045282738107807]
WP_NEW = [0.003634931195049884, 0.02103944625872680, 0.04219350058454659, 0.06182198564544986,
          0.07787534711524600, 0.09026180214655860, 0.09919685766743291, 0.1040999554726974]
WP_K = [0.01131946844468344, 0.03157770621704586, 0.05238437082098269, 0.07033204641040065,
        0.08449876530124302, 0.09517802993183068, 0.1022141800057027, 0.1047432135648058]


def sym(x_half, w_half, a, b):
    """Nodes/weights on [a, b] from a symmetric rule's non-negative half (0 last, if present)."""
    c, h = (a + b) / 2, (b - a) / 2
    xs, ws = [], []
    for x, w in zip(x_half, w_half):
        xs += [c - h * x] + ([c + h * x] if x != 0 else [])
        ws += [w * h] + ([w * h] if x != 0 else [])
    return np.array(xs), np.array(ws)


def k15(a, b):
    return sym(XGK, WGK, a, b)


def p31(a, b):
    x1, w1 = sym(XGK, WP_K, a, b)
    x2, w2 = sym(XP, WP_NEW, a, b)
    return np.concatenate([x1, x2]), np.concatenate([w1, w2])


def gl(n, a=0.0, b=1.0):
    t, w = L.leggauss(n)
    return a + (b - a) * (t + 1) / 2, w * (b - a) / 2


def cc(n):
    big_n = n - 1
    x = np.sin(np.arange(n) * np.pi / (2 * big_n)) ** 2
    w = np.zeros(n)
    for j in range(n):
        s = sum((1 if m in (0, big_n / 2) else 2) / (1 - 4 * m * m) * np.cos(2 * m * np.pi * j / big_n)
                for m in range(big_n // 2 + 1))
        w[j] = s / big_n * (1 if j in (0, big_n) else 2)
    return x, w / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="gradpath ig --json of a dense f64 run (e.g. 300 Gauss-Legendre points)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--degree", type=int, default=200, help="Legendre degree of the fit of F(α)")
    a = ap.parse_args()
    with open(a.json) as f:
        j = json.load(f)
    alphas, fs = np.array(j["path"]["alphas"]), np.array(j["path"]["f"])
    if len(alphas) <= a.degree:
        sys.exit(f"error: {len(alphas)} path points cannot fit degree {a.degree}\n"
                 "hint: run gradpath ig with more --steps (300) or pass a smaller --degree")
    c = L.legfit(2 * alphas - 1, fs, a.degree)
    resid = np.abs(L.legval(2 * alphas - 1, c) - fs).max()
    dc = 2 * L.legder(c)
    g = lambda x: L.legval(2 * np.asarray(x) - 1, dc)  # noqa: E731 (the integrand dF/dα)
    exact = j["f_input"] - j["f_baseline"]
    print(f"{len(j['tokens'])} tokens; F(x) − F(x′) = {exact:.6g}; fit residual {resid:.1e} "
          f"(degree {a.degree}, {len(alphas)} points)")

    def err(parts):
        q = sum(np.dot(w, g(x)) for x, w in parts)
        return abs(q - exact) / abs(exact)

    def panels(p):
        return [(i / p, (i + 1) / p) for i in range(p)]

    families = {
        "gauss-legendre": [(n, str(n), [gl(n)]) for n in (10, 15, 20, 25, 30, 40, 50, 60, 80, 100)],
        "clenshaw-curtis": [(n, str(n), [cc(n)]) for n in (9, 17, 33, 65, 129)],
        "composite GL, m points on p panels (m×p)": [
            (m * p, f"{m}×{p}", [gl(m, lo, hi) for lo, hi in panels(p)])
            for p in (2, 3, 4, 5) for m in (5, 6, 7, 8, 10, 12, 15)],
        "composite K15 (15×p)": [(15 * p, f"15×{p}", [k15(lo, hi) for lo, hi in panels(p)])
                                 for p in (1, 2, 3, 4, 6, 8)],
        "Patterson 31 on [0, 1]": [(31, "31", [p31(0, 1)])],
        "P31 on [0, ½] + K15 on [½, 1]": [(46, "46", [p31(0, 0.5), k15(0.5, 1)])],
    }
    for name, runs in families.items():
        cells = sorted(((n, label, err(parts)) for n, label, parts in runs), key=lambda r: r[0])
        ok = [(n, label) for n, label, e in cells if e <= a.tolerance]
        best = (f"fewest points ≤ {a.tolerance:g}: {ok[0][0]} ({ok[0][1]})" if ok
                else f"none ≤ {a.tolerance:g}")
        print(f"{name}: {best}")
        print("   " + "  ".join(f"{label}:{e:.1e}" for _, label, e in cells))


if __name__ == "__main__":
    main()
