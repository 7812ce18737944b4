#!/usr/bin/env python3
"""Baseline: SmolLM2-135M-Instruct forward in PyTorch (transformers, GGUF dequantised to f32, CPU).

    LANTERN_THREADS=2 python scripts/bench/torch_forward.py [--runs 10] [--warmup 2] [--seq 16]

Prints one JSON object: batch1_ms / batch16_ms (plain forward, no hooks, median of --runs after
--warmup), and batch1_cache_ms / batch16_cache_ms (a forward hook on EVERY module storing its
output, an approximation of TransformerLens run_with_cache).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# libgomp busy-waits by default; on a shared/oversubscribed machine that makes 2-thread matmuls
# 20-40x slower. PASSIVE must be set before torch is imported (override from the environment).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_smollm2, set_threads, tensors_of  # noqa: E402


def time_it(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--attn", default="sdpa", help="sdpa or eager")
    args = ap.parse_args()
    threads = set_threads()
    _, model, load_s = load_smollm2(args.attn)
    V = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids1 = torch.randint(0, V, (1, args.seq), generator=g)
    ids16 = torch.randint(0, V, (16, args.seq), generator=g)

    def fwd(ids):
        with torch.inference_mode():
            return model(input_ids=ids, use_cache=False).logits

    res = {"threads": threads, "seq": args.seq, "runs": args.runs, "warmup": args.warmup,
           "attn": args.attn, "torch": torch.__version__, "load_s": round(load_s, 3)}
    res["batch1_ms"], _ = time_it(lambda: fwd(ids1), args.runs, args.warmup)
    res["batch16_ms"], _ = time_it(lambda: fwd(ids16), args.runs, args.warmup)

    # "cache everything": a forward hook on every named module storing its output
    cache = {}
    handles = []
    for name, mod in model.named_modules():
        if name == "":
            continue
        handles.append(mod.register_forward_hook(
            lambda m, a, o, name=name: cache.__setitem__(name, tensors_of(o))))
    res["n_hooked_modules"] = len(handles)

    def fwd_cache(ids):
        cache.clear()
        return fwd(ids)

    res["batch1_cache_ms"], _ = time_it(lambda: fwd_cache(ids1), args.runs, args.warmup)
    res["batch16_cache_ms"], _ = time_it(lambda: fwd_cache(ids16), args.runs, args.warmup)
    res["cache_entries"] = len(cache)
    def nbytes(x):
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        if isinstance(x, dict):
            return sum(nbytes(v) for v in x.values())
        if isinstance(x, list):
            return sum(nbytes(v) for v in x)
        return 0

    res["cache_bytes_batch16"] = int(sum(nbytes(v) for v in cache.values()))
    for h in handles:
        h.remove()
    for k in ("batch1_ms", "batch16_ms", "batch1_cache_ms", "batch16_cache_ms"):
        res[k] = round(res[k], 3)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
