#!/usr/bin/env python3
"""Prints the markdown table of a `gradpath converge --json` file (one text, or the summary of a
--data run), as docs/QUADRATURE.md shows it. Standard library only.
Usage: python3 scripts/converge_table.py converge.json"""
import json, sys

d = json.load(open(sys.argv[1]))
def e(x):
    return "–" if x is None else f"{x:.1e}"
if "summary" in d:
    s = d["summary"]
    print(f"medians over {s['texts']} texts\n")
    print("| rule | points | median rel. delta | median attr. error | worst attr. error | median order |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in s["rules"]:
        for k, x in enumerate(r["runs"]):
            o = r["median_order"] if k == 0 else None
            print(f"| {r['rule'] if k == 0 else ''} | {x['points']} | {e(x['median_relative_delta'])} | "
                  f"{e(x['median_attribution_error'])} | {e(x['worst_attribution_error'])} | "
                  f"{'' if k else ('–' if o is None else f'{o:.2f}')} |")
    sys.exit(0)
ref = d["reference"]
print(f"reference: {ref['panels']} Kronrod panels, {ref['points']} points, error estimate "
      f"{ref['error_estimate']:.1e}{'' if ref['converged'] else ' (NOT converged)'}, relative delta "
      f"{ref['relative_delta']:.1e}; {d['total_passes']} distinct passes, {d['seconds_per_pass']*1e3:.2f} ms per pass\n")
print("| rule | points | passes refining | rel. delta | attr. error | successive estimate | seconds | order |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in d["rules"]:
    for k, x in enumerate(r["runs"]):
        o = r["order"]
        print(f"| {r['rule'] if k == 0 else ''} | {x['points']} | {x['passes_refining']} | {e(x['relative_delta'])} | "
              f"{e(x['attribution_error'])} | {e(x['successive_estimate'])} | {x['seconds']:.2f} | "
              f"{'' if k else ('–' if o is None else f'{o:.2f}')} |")
