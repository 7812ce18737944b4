#!/usr/bin/env python3
"""Reference: greedy generation with llama.cpp (llama-cpp-python) on the same GGUF, its own weights.

    LANTERN_THREADS=2 python scripts/bench/llamacpp_generate.py [--model FILE.gguf] [--seq 8] [--new 128] [--reps 3] [--prefill 512]

Same measurements as torch_generate.py and `lantern bench --generate N`: prefill (evaluating the
prompt after a cache reset), whole generations of exactly N greedy tokens (top-k 1; EOS does not
stop them), decode tokens/s = (N - 1) / (total - prefill). Build llama-cpp-python with
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" (see the shared notes).
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_common import PASSAGE, decode_rate, prompt_ids, timing  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def timed(fn, reps):
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--seq", type=int, default=8)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=512)
    a = ap.parse_args()
    import llama_cpp

    model = a.model or subprocess.run(
        ["bash", str(REPO / "scripts" / "fetch-model.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    threads = int(os.environ.get("LANTERN_THREADS", "2"))
    n_ctx = max(a.seq + a.new, a.prefill) + 16
    llm = llama_cpp.Llama(
        model_path=model, n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx,
        n_batch=max(512, a.prefill), verbose=False,
    )
    one = llm.tokenize(PASSAGE.encode(), add_bos=False, special=False)

    def prefill_ms(length):
        ids = prompt_ids(one, length)

        def run():
            llm.reset()
            llm.eval(ids)

        return timing(timed(run, a.reps))

    ids = prompt_ids(one, a.seq)

    def gen():
        llm.reset()
        n = 0
        for _ in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            n += 1
            if n == a.new:
                break

    prefill = prefill_ms(a.seq)
    total = timing(timed(gen, a.reps))
    result = {
        "engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})",
        "weights": "the GGUF's own (" + Path(model).name + ")",
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
