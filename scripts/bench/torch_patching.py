#!/usr/bin/env python3
"""Baseline: full resid_pre activation-patching sweep (every layer x every position) on
SmolLM2-135M-Instruct, the TransformerLens way: one batch-1 forward of the corrupted prompt per
patch, with a forward_pre_hook on decoder layer L overwriting hidden_states[:, p] by the clean
run's resid_pre[L][p]. Metric: logit(a) - logit(b) at the last position.

    LANTERN_THREADS=2 python scripts/bench/torch_patching.py [--max-patches N]

With --max-patches N only the first N (layer-major) patches run and the total is extrapolated:
the JSON says so ("extrapolated": true, "patches_run": N).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# libgomp busy-waits by default; on a shared/oversubscribed machine that makes 2-thread matmuls
# 20-40x slower. PASSIVE must be set before torch is imported (override from the environment).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import layer_pre_hook_patch, load_smollm2, set_threads  # noqa: E402

# Same token length in both (checked below): the IOI-style name swap keeps token counts equal.
CLEAN = "When Mary and John went to the store, John gave a drink to Mary. Afterwards, John said hello to"
CORRUPT = "When Mary and John went to the store, Mary gave a drink to John. Afterwards, Mary said hello to"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-patches", type=int, default=None)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--clean", default=CLEAN)
    ap.add_argument("--corrupt", default=CORRUPT)
    args = ap.parse_args()
    threads = set_threads()
    tok, model, _ = load_smollm2(args.attn)
    c = tok(args.clean, return_tensors="pt").input_ids
    r = tok(args.corrupt, return_tensors="pt").input_ids
    assert c.shape == r.shape, (c.shape, r.shape)
    T = c.shape[1]
    layers = model.model.layers
    L = len(layers)

    t_start = time.perf_counter()
    with torch.inference_mode():
        out = model(input_ids=c, output_hidden_states=True, use_cache=False)
        clean_pre = [h[0].clone() for h in out.hidden_states[:L]]  # hidden_states[l] = input of layer l
        clean_last = out.logits[0, -1]
        corr_last = model(input_ids=r, use_cache=False).logits[0, -1]
    a = int(clean_last.argmax())
    b = int(corr_last.argmax())
    if a == b:
        b = int(clean_last.topk(2).indices[1])
    metric = lambda lg: float(lg[0, -1, a] - lg[0, -1, b])
    clean_ld, corr_ld = float(clean_last[a] - clean_last[b]), float(corr_last[a] - corr_last[b])

    jobs = [(l, p) for l in range(L) for p in range(T)]
    total = len(jobs)
    if args.max_patches is not None:
        jobs = jobs[: args.max_patches]
    result = torch.full((L, T), float("nan"))
    t0 = time.perf_counter()
    for l, p in jobs:
        h = layers[l].register_forward_pre_hook(layer_pre_hook_patch(p, clean_pre[l][p]), with_kwargs=True)
        try:
            with torch.inference_mode():
                result[l, p] = metric(model(input_ids=r, use_cache=False).logits)
        finally:
            h.remove()
    sweep_s = time.perf_counter() - t0
    per = sweep_s / len(jobs)
    res = {
        "threads": threads,
        "attn": args.attn,
        "tokens": T,
        "layers": L,
        "tokens_ab": [a, b],
        "strings_ab": [tok.decode([a]), tok.decode([b])],
        "clean_logit_diff": round(clean_ld, 5),
        "corrupted_logit_diff": round(corr_ld, 5),
        "forwards_total": total,
        "patches_run": len(jobs),
        "extrapolated": len(jobs) < total,
        "sweep_seconds_measured": round(sweep_s, 3),
        "ms_per_forward": round(per * 1e3, 3),
        "total_seconds": round(per * total if len(jobs) < total else sweep_s, 3),
        "total_seconds_incl_clean_runs": round(
            (per * total if len(jobs) < total else sweep_s) + (t0 - t_start), 3),
    }
    if len(jobs) == total:
        res["last_layer_last_pos"] = round(float(result[L - 1, T - 1]), 5)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
