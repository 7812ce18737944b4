"""What the generation benchmarks share with `lantern bench --generate` (crates/lantern-engine/src/bench.rs):
the prompt passage (repeated and cut to the prompt length) and the decode-rate formula."""
from __future__ import annotations

import statistics

# The same text as `PASSAGE` in crates/lantern-engine/src/bench.rs.
PASSAGE = (
    "The capital of France is Paris. The river that runs through the city is "
    "the Seine, and the tower built for the fair of 1889 still stands near its bank. "
)


def prompt_ids(one_pass_ids: list[int], length: int) -> list[int]:
    """The passage's ids repeated and cut to `length` (as Lantern's `prompt_ids`)."""
    return [one_pass_ids[i % len(one_pass_ids)] for i in range(length)]


def timing(ms: list[float]) -> dict:
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def decode_rate(total_median_ms: float, prefill_median_ms: float, new_tokens: int) -> float:
    """Tokens/s after the first new token (which comes from the prefill), as Lantern reports it."""
    return (new_tokens - 1) / max(total_median_ms - prefill_median_ms, 1e-9) * 1e3
