#!/usr/bin/env python3
"""Attribution patching (AtP*) against exact activation patching on real prompts, with Lantern
on both sides: for each clean/corrupted pair and hook kind, `lantern patch --method exact` (the
batched, resumed sweep) and `lantern patch --method atp`, then per hook kind the Pearson and
Spearman correlation of the two maps (all cells), the recall of the exact top-10 cells (by
|effect|) in AtP's top-20, and the wall time of each (the sweep alone, from stderr).

    python3 scripts/bench/atp_compare.py [--lantern target/debug/lantern] [--model FILE]

Prints one JSON object (per pair and hook, plus medians per hook kind).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAIRS = [
    # clean, corrupted (same token length), target (clean answer), versus (corrupted answer)
    ("The capital of France is", "The capital of Poland is", " Paris", " Warsaw"),
    ("The capital of Japan is", "The capital of Italy is", " Tokyo", " Rome"),
    ("The capital of Poland is London. The capital of Poland is",
     "The capital of Poland is Berlin. The capital of Poland is", " London", " Berlin"),
]
HOOKS = [("resid_pre", "layer_pos"), ("attn_out", "layer_pos"), ("mlp_out", "layer_pos"),
         ("z", "layer_head")]


def run(lantern, model, pair, hook, grid, method):
    clean, corrupted, target, versus = pair
    cmd = [lantern, "patch", model, "--clean", clean, "--corrupted", corrupted, "--target", target,
           "--versus", versus, "--hook", hook, "--grid", grid, "--metric", "logit_diff",
           "--method", method, "--json", "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    key = "atp_seconds" if method == "atp" else "sweep_seconds"
    secs = float(next(line.split()[1] for line in p.stderr.splitlines() if line.startswith(key)))
    out = json.loads(p.stdout)
    res = out["estimate"] if method == "atp" else out["result"]
    return res, secs


def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def pearson(a, b):
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lantern", default=str(REPO / "target" / "debug" / "lantern"))
    ap.add_argument("--model", default=str(REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    rows = []
    for pair in PAIRS:
        for hook, grid in HOOKS:
            exact, t_exact = run(args.lantern, args.model, pair, hook, grid, "exact")
            atp, t_atp = run(args.lantern, args.model, pair, hook, grid, "atp")
            e = [v - exact["corrupted"] for row in exact["values"] for v in row]
            a = [v - atp["corrupted"] for row in atp["values"] for v in row]
            top_e = sorted(range(len(e)), key=lambda i: -abs(e[i]))[:10]
            top_a = set(sorted(range(len(a)), key=lambda i: -abs(a[i]))[:20])
            rows.append({
                "clean": pair[0], "hook": hook, "grid": grid, "cells": len(e),
                "clean_ld": round(exact["clean"], 4), "corrupted_ld": round(exact["corrupted"], 4),
                "pearson": round(pearson(a, e), 4), "spearman": round(pearson(ranks(a), ranks(e)), 4),
                "recall_top10_in_atp_top20": sum(i in top_a for i in top_e) / 10,
                # Ties make the top-10 arbitrary: how many exact cells are within 5% of the top.
                "exact_cells_within_5pct_of_top": sum(abs(x) >= 0.95 * abs(e[top_e[0]]) for x in e),
                "exact_seconds": round(t_exact, 3), "atp_seconds": round(t_atp, 3),
            })
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for hook, _ in HOOKS:
        r = [x for x in rows if x["hook"] == hook]
        summary[hook] = {k: round(statistics.median(x[k] for x in r), 4)
                         for k in ["pearson", "spearman", "recall_top10_in_atp_top20",
                                   "exact_seconds", "atp_seconds"]}
    print(json.dumps({"median_over_pairs": summary, "pairs": len(PAIRS),
                      "loadavg_1m_at_end": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
