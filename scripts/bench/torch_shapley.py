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

--prefix-kv: the reference that reuses the shared prefix's KV cache, as Lantern's scorer does.
The longest run of token ids every coalition's sequence starts with is run once (all but its last
token, with use_cache); each batch then runs only the rest of each sequence, RIGHT-padded, on a
copy of that cache expanded to the batch (attention mask = prefix ones + suffix mask, positions
continuing after the prefix). --check K compares K coalitions with unbatched, uncached forwards.
Needs a prefix shared by every coalition to gain anything (shapley_prefix.json has one;
shapley_components.json has an empty prefix, where only a BOS-less empty start is shared).
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


def common_prefix_len(seqs):
    first = seqs[0]
    n = len(first)
    for s in seqs[1:]:
        n = min(n, len(s))
        while n and s[:n] != first[:n]:
            n -= 1
    return n


def prefix_cache(model, prefix_ids):
    """Runs the shared prefix once; returns its per-layer (key, value) tensors [1, G, P, D]."""
    from transformers import DynamicCache  # noqa: F401  (the type model() returns)

    with torch.inference_mode():
        pkv = model(input_ids=torch.tensor([prefix_ids]), use_cache=True).cache
    kv = [(layer.keys, layer.values) for layer in pkv.layers]
    assert all(k.shape[2] == len(prefix_ids) for k, _ in kv), "the prefix run cached nothing"
    return kv


def logp_batch_cached(model, kv, n_prefix, suffixes, n_target, pad_id):
    """suffixes: id lists following the cached n_prefix ids (each ends with the target).
    RIGHT padding: pads come after every real token, so the causal mask keeps them unread."""
    from transformers import DynamicCache

    B, S = len(suffixes), max(len(s) for s in suffixes)
    ids = torch.full((B, S), pad_id, dtype=torch.long)
    att = torch.zeros((B, n_prefix + S), dtype=torch.long)
    att[:, :n_prefix] = 1
    for i, s in enumerate(suffixes):
        ids[i, : len(s)] = torch.tensor(s)
        att[i, n_prefix: n_prefix + len(s)] = 1
    pos = torch.arange(n_prefix, n_prefix + S)[None].expand(B, S)
    cache = DynamicCache(
        ddp_cache_data=[(k.expand(B, -1, -1, -1).contiguous(), v.expand(B, -1, -1, -1).contiguous()) for k, v in kv],
        config=model.config,
    )
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, cache=cache,
                       use_cache=True).logits
    assert cache.get_seq_length() == n_prefix + S, "the cached prefix was not used"
    out = torch.empty(B, dtype=torch.float64)
    for i, s in enumerate(suffixes):
        n = len(s)
        lp = torch.log_softmax(logits[i, n - n_target - 1: n - 1].float(), dim=-1)
        out[i] = lp.gather(-1, torch.tensor(s[n - n_target:])[:, None]).sum().double()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("components_json")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--check", type=int, default=4, help="recompute K coalitions unbatched")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--prefix-kv", action="store_true", help="reuse the shared prefix's KV cache")
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
    n_prefix = 0
    if args.prefix_kv:
        # Cache all but the last shared token, so every suffix has a token to predict from.
        n_prefix = max(0, common_prefix_len(list(seqs.values())) - 1)
        kv = prefix_cache(model, seqs[0][:n_prefix]) if n_prefix else None
        n_forwards += bool(n_prefix)
    for i in range(0, len(order), args.batch):
        chunk = order[i: i + args.batch]
        if n_prefix:
            v[chunk] = logp_batch_cached(model, kv, n_prefix, [seqs[m][n_prefix:] for m in chunk],
                                         len(tgt_ids), pad_id)
        else:
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
        "prefix_kv": args.prefix_kv,
        "shared_prefix_tokens_cached": n_prefix,
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
        checks = [full, empty] + [order[len(order) * j // args.check] for j in range(1, args.check - 1)]
        diffs = [abs(float(logp_batch(model, [seqs[m]], len(tgt_ids), pad_id)[0]) - float(v[m])) for m in checks]
        res["batched_vs_unbatched_max_abs"] = max(diffs)
    res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    res["cpu_count"] = os.cpu_count()
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
