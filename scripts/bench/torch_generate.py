#!/usr/bin/env python3
"""Reference: greedy generation with transformers (SmolLM2-135M-Instruct GGUF dequantised to f32, CPU).

    LANTERN_THREADS=2 python scripts/bench/torch_generate.py [--seq 8] [--new 128] [--reps 3] [--prefill 512]

The same measurements as `lantern bench --seq S --generate N`: prefill (one forward over the
prompt with a KV cache, last-position logits only), whole `generate` calls (greedy, exactly N new
tokens: EOS does not stop them), decode tokens/s = (N - 1) / (total - prefill). `--prefill T`
also times the prefill of a T-token prompt. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_smollm2, set_threads  # noqa: E402
from gen_common import PASSAGE, decode_rate, prompt_ids, timing  # noqa: E402


def timed(fn, reps):
    fn()  # warm-up, as Lantern's bench
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=8)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=512)
    a = ap.parse_args()
    threads = set_threads()
    tok, model, _ = load_smollm2()
    one = tok(PASSAGE, add_special_tokens=False)["input_ids"]

    def prefill_ms(length):
        ids = torch.tensor([prompt_ids(one, length)])

        def run():
            with torch.inference_mode():
                model(ids, use_cache=True, logits_to_keep=1)

        return timing(timed(run, a.reps))

    ids = torch.tensor([prompt_ids(one, a.seq)])

    def gen():
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=a.new,
                min_new_tokens=a.new,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        assert out.shape[1] == a.seq + a.new, out.shape

    prefill = prefill_ms(a.seq)
    total = timing(timed(gen, a.reps))
    result = {
        "engine": f"transformers {__import__('transformers').__version__} + torch {torch.__version__}",
        "weights": "f32",
        "threads": threads,
        "prompt_tokens": a.seq,
        "new_tokens": a.new,
        "prefill": prefill,
        "total": total,
        "decode_tokens_per_s": decode_rate(total["median_ms"], prefill["median_ms"], a.new),
    }
    if a.prefill:
        result[f"prefill_{a.prefill}"] = prefill_ms(a.prefill)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
