#!/usr/bin/env python3
"""Baseline: exact Shapley values of prompt components for log p(target | prompt) on
SmolLM2-135M-Instruct with HF transformers (f32, CPU).

    LANTERN_THREADS=2 python scripts/bench/torch_shapley.py scripts/bench/shapley_components.json \
        [--batch 32] [--check 4]

Input JSON: {"components": [str, ...], "target": str, "prefix": str (optional, always present)}.
For n components all 2^n coalitions are evaluated: prompt = prefix + concatenation (in the original
order) of the present components, tokenised as one string (no BOS; the SmolLM2 tokenizer adds none).
If a coalition's prompt tokenises to nothing (empty coalition, empty prefix) the context is the
model's BOS token (its EOS if it has no BOS), as Lantern's EngineScorer reads it. The target is tokenised separately and appended as ids;
v(S) = sum over target tokens of log p(token | everything before it).
Forwards are batched (--batch coalitions per forward, sorted by length to limit padding) with
LEFT padding, an attention mask and explicit position_ids (cumsum(mask) - 1), so padded rows give
the same numbers as unpadded ones (--check K recomputes K coalitions one by one and reports the
max abs difference).
Prints JSON: seconds (forwards only and total), the Shapley values, v(empty), v(full).
"""
from __future__ import annotations

import argparse
import json
import os
import math
import sys
import time
from pathlib import Path

# libgomp busy-waits by default; on a shared/oversubscribed machine that makes 2-thread matmuls
# 20-40x slower. PASSIVE must be set before torch is imported (override from the environment).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_smollm2, set_threads  # noqa: E402


def coalition_prompt(prefix, comps, mask):
    return prefix + "".join(c for i, c in enumerate(comps) if mask >> i & 1)


def logp_batch(model, seqs, n_target, pad_id):
    """seqs: list of id lists (context + target). Returns sum log p of the last n_target ids."""
    T = max(len(s) for s in seqs)
    B = len(seqs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    att = torch.zeros((B, T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, T - len(s):] = torch.tensor(s)
        att[i, T - len(s):] = 1
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=False).logits
    lp = torch.log_softmax(logits[:, T - n_target - 1: T - 1].float(), dim=-1)  # predicts last n_target
    tgt = ids[:, T - n_target:]
    return lp.gather(-1, tgt[..., None])[..., 0].sum(-1).double()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("components_json")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--check", type=int, default=4, help="recompute K coalitions unbatched")
    ap.add_argument("--attn", default="sdpa")
    args = ap.parse_args()
    spec = json.loads(Path(args.components_json).read_text())
    comps, target, prefix = spec["components"], spec["target"], spec.get("prefix", "")
    n = len(comps)
    threads = set_threads()
    tok, model, load_s = load_smollm2(args.attn)
    t_total = time.perf_counter()
    tgt_ids = tok(target, add_special_tokens=False).input_ids
    start = model.config.bos_token_id if model.config.bos_token_id is not None else model.config.eos_token_id
    fallback = [start]
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids("<|endoftext|>")
    seqs = {}
    for m in range(1 << n):
        ctx = tok(coalition_prompt(prefix, comps, m), add_special_tokens=False).input_ids or fallback
        seqs[m] = ctx + tgt_ids
    order = sorted(seqs, key=lambda m: len(seqs[m]))
    v = torch.zeros(1 << n, dtype=torch.float64)
    t0 = time.perf_counter()
    n_forwards = 0
    for i in range(0, len(order), args.batch):
        chunk = order[i: i + args.batch]
        v[chunk] = logp_batch(model, [seqs[m] for m in chunk], len(tgt_ids), pad_id)
        n_forwards += 1
    fwd_s = time.perf_counter() - t0
    # exact Shapley: phi_i = sum_{S not containing i} |S|!(n-|S|-1)!/n! (v(S+i) - v(S))
    w = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    phi = []
    for i in range(n):
        s = 0.0
        for m in range(1 << n):
            if not m >> i & 1:
                s += w[bin(m).count("1")] * float(v[m | 1 << i] - v[m])
        phi.append(s)
    total_s = time.perf_counter() - t_total
    full, empty = (1 << n) - 1, 0
    assert abs(sum(phi) - float(v[full] - v[empty])) < 1e-6  # efficiency
    res = {
        "threads": threads,
        "attn": args.attn,
        "n_components": n,
        "coalitions": 1 << n,
        "batch": args.batch,
        "forward_calls": n_forwards,
        "target_ids": tgt_ids,
        "max_len": max(len(s) for s in seqs.values()),
        "seconds_forwards": round(fwd_s, 3),
        "seconds_total": round(total_s, 3),
        "load_seconds": round(load_s, 3),
        "v_empty": round(float(v[empty]), 6),
        "v_full": round(float(v[full]), 6),
        "shapley": [round(x, 6) for x in phi],
    }
    if args.check:
        checks = [full, empty] + [order[len(order) // 2], order[len(order) // 3]][: max(0, args.check - 2)]
        diffs = [abs(float(logp_batch(model, [seqs[m]], len(tgt_ids), pad_id)[0]) - float(v[m])) for m in checks]
        res["batched_vs_unbatched_max_abs"] = max(diffs)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
