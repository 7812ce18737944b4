"""The Python side of the binding's benchmark (scripts/bench/python_cache.sh): run_with_cache of
every hook point, 16 prompts x 16 tokens (the Rust example's token ids), median of 7 runs; also
with every cached array materialised (cache.to_dict()), and the per-call overhead of a Python
callable hook (identity hook at one point vs none, 1 prompt of 16 tokens)."""

import statistics
import time

import numpy as np

import lantern

REPS = 7
lm = lantern.load(quiet=True)
ids = np.array([[(b * 7919 + t * 104729 + 11) % 49152 for t in range(16)] for b in range(16)], dtype=np.int64)


def median_ms(f, reps=REPS):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


print(f"python_run_with_cache_ms {median_ms(lambda: lm.run_with_cache(ids)):.1f} ({len(lm.hook_names())} points)")
print(f"python_run_with_cache_to_dict_ms {median_ms(lambda: lm.run_with_cache(ids)[1].to_dict()):.1f}")
one = ids[:1]
names = [f"blocks.{l}.hook_resid_post" for l in range(30)]
base = median_ms(lambda: lm.run_with_hooks(one), reps=15)
hooked = median_ms(lambda: lm.run_with_hooks(one, [(n, lambda x, info: x) for n in names]), reps=15)
print(f"callable_hook_overhead_ms_per_call {(hooked - base) / len(names):.3f} (1 x 16 tokens x 576; 30 hooks: {hooked:.1f} vs {base:.1f} ms)")
