#!/usr/bin/env python3
"""Baseline: full resid_pre activation-patching sweep (every layer x every position) on
SmolLM2-135M-Instruct, the TransformerLens way: one batch-1 forward of the corrupted prompt per
patch, with a forward_pre_hook on decoder layer L overwriting hidden_states[:, p] by the clean
run's resid_pre[L][p]. Metric: logit(a) - logit(b) at the last position.

    LANTERN_THREADS=2 python scripts/bench/torch_patching.py [--max-patches N]
    LANTERN_THREADS=2 python scripts/bench/torch_patching.py --mode resume [--check N]

With --max-patches N only the first N (layer-major) patches run and the total is extrapolated:
the JSON says so ("extrapolated": true, "patches_run": N).

--mode resume is the best PyTorch way we know: the corrupted run's residual stream is computed
once (the shared prefix of every patched run), and for each layer L the T patches run as ONE
batch through decoder layers L.. only (explicit rotary embeddings and causal mask), with only the
last position normed and unembedded. --check N then reruns N patches (spread over the grid) the
naive way above and reports the largest difference (`max_abs_diff_vs_naive`).
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
    ap.add_argument("--mode", choices=["naive", "resume"], default="naive")
    ap.add_argument("--check", type=int, default=24, help="resume mode: naive reruns to compare")
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

    if args.mode == "resume":
        return resume_sweep(args, model, tok, c, r, a, b, clean_pre, clean_ld, corr_ld, threads, t_start)

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


def naive_patch(model, r, l, p, value, a, b):
    """One batch-1 forward of the corrupted prompt with resid_pre[l][p] replaced by `value`."""
    layer = model.model.layers[l]
    h = layer.register_forward_pre_hook(layer_pre_hook_patch(p, value), with_kwargs=True)
    try:
        with torch.inference_mode():
            lg = model(input_ids=r, use_cache=False).logits
        return float(lg[0, -1, a] - lg[0, -1, b])
    finally:
        h.remove()


def resume_sweep(args, model, tok, c, r, a, b, clean_pre, clean_ld, corr_ld, threads, t_start):
    """Batched per layer, resuming from the patched layer (see the module docs)."""
    layers = model.model.layers
    L, T = len(layers), c.shape[1]
    t0 = time.perf_counter()
    with torch.inference_mode():
        # The corrupted run's resid_pre of every layer: computed once, shared by all patches.
        corr_pre = model(input_ids=r, output_hidden_states=True, use_cache=False).hidden_states
        pos = torch.arange(T)[None].expand(T, T)  # [B=T, T]
        causal = torch.full((T, T), float("-inf")).triu(1)[None, None].expand(T, 1, T, T)
        rows = torch.arange(T)
        result = torch.empty(L, T)
        for l in range(L):
            hs = corr_pre[l].expand(T, T, -1).clone()  # [T patches, T positions, M]
            hs[rows, rows] = clean_pre[l]  # patch i puts the clean resid_pre at position i
            pe = model.model.rotary_emb(hs, pos)
            for layer in layers[l:]:
                out = layer(hs, attention_mask=causal, position_ids=pos, position_embeddings=pe)
                hs = out[0] if isinstance(out, tuple) else out
            logits = model.lm_head(model.model.norm(hs[:, -1]))  # [T, V], last position only
            result[l] = logits[:, a] - logits[:, b]
    sweep_s = time.perf_counter() - t0
    res = {
        "mode": "resume",
        "threads": threads,
        "attn": args.attn,
        "tokens": T,
        "layers": L,
        "tokens_ab": [a, b],
        "strings_ab": [tok.decode([a]), tok.decode([b])],
        "clean_logit_diff": round(clean_ld, 5),
        "corrupted_logit_diff": round(corr_ld, 5),
        "patches": L * T,
        "batched_forwards": L,
        "sweep_seconds": round(sweep_s, 3),
        "total_seconds_incl_clean_runs": round(sweep_s + (t0 - t_start), 3),
        "last_layer_last_pos": round(float(result[L - 1, T - 1]), 5),
    }
    if args.check:
        n = L * T
        picks = sorted({round(i * (n - 1) / max(1, args.check - 1)) for i in range(args.check)})
        diffs = [abs(naive_patch(model, r, k // T, k % T, clean_pre[k // T][k % T], a, b)
                     - float(result[k // T, k % T])) for k in picks]
        res["naive_checked"] = len(picks)
        # So the check is not vacuous: how far the checked patches move the metric.
        res["max_abs_effect_checked"] = round(max(abs(float(result[k // T, k % T]) - corr_ld) for k in picks), 4)
        res["max_abs_diff_vs_naive"] = float(f"{max(diffs):.3g}")
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
