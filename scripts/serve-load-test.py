#!/usr/bin/env python3
"""Bounded loopback load test of `lantern serve` (run by hand; not part of CI).

Starts the server twice on 127.0.0.1 -- batched (--max-batch 32) and one request at a time
(--max-batch 1) -- and drives each with CLIENTS concurrent clients x REQUESTS requests, mixed
completions / chat / streaming completions / streaming chat, every other request steered through
the `lantern` extension field. Reports failures, p50/p95 latency, throughput and the server's RSS
before and after, then the batched/one-at-a-time throughput ratio. Greedy decoding, a fixed
max_tokens and stop_at_eos, so both runs do the same work.

    scripts/serve-load-test.py [--bin target/debug/lantern] [--clients 32] [--requests 20]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEER = "add blocks.10.hook_resid_post value=2"
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "Write a short poem about the moon.",
    "Two plus two equals",
    "The best way to learn a language is",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(bin_, model, max_batch):
    port = free_port()
    proc = subprocess.Popen(
        [bin_, "serve", model, "--quiet", "--port", str(port), "--max-batch", str(max_batch),
         "--queue", "256"],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("the server did not come up")


def request(url, i, max_tokens):
    kind = i % 4  # completion, chat, streamed completion, streamed chat
    chat = kind in (1, 3)
    stream = kind in (2, 3)
    prompt = PROMPTS[i % len(PROMPTS)]
    body = {"max_tokens": max_tokens, "temperature": 0, "stream": stream}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if i % 2:
        body["lantern"] = {"interventions": [STEER]}
    path = "/v1/chat/completions" if chat else "/v1/completions"
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            if stream:
                done = any(line.strip() == b"data: [DONE]" for line in r)
                ok = r.status == 200 and done
            else:
                ok = r.status == 200 and bool(json.load(r)["choices"])
    except Exception as e:  # noqa: BLE001 - every failure is counted and shown
        print(f"request {i} failed: {e}", file=sys.stderr)
        ok = False
    return ok, time.perf_counter() - t0


def run(bin_, model, max_batch, clients, per_client, max_tokens):
    proc, url = start(bin_, model, max_batch)
    try:
        request(url, 0, max_tokens)  # warm-up
        rss_before = rss_mib(proc.pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            def client(c):
                return [request(url, c * per_client + k, max_tokens) for k in range(per_client)]
            results = [r for rs in pool.map(client, range(clients)) for r in rs]
        wall = time.perf_counter() - t0
        rss_after = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    lat = sorted(t for _, t in results)
    q = statistics.quantiles(lat, n=100)
    return {
        "max_batch": max_batch,
        "requests": len(results),
        "failed": sum(not ok for ok, _ in results),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(results) / wall, 3),
        "p50_s": round(q[49], 3),
        "p95_s": round(q[94], 3),
        "rss_before_mib": round(rss_before, 1),
        "rss_after_mib": round(rss_after, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "debug" / "lantern"))
    ap.add_argument("--model", default=str(Path(os.environ.get("LANTERN_MODEL_DIR", ROOT / "models"))
                                         / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20, help="per client")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--single-requests", type=int, default=None,
                    help="per client in the one-at-a-time run (default: --requests); its "
                         "throughput is measured with the queue saturated either way")
    ap.add_argument("--only", choices=["batched", "single"], default=None)
    a = ap.parse_args()
    print(f"load: {os.getloadavg()}; {a.clients} clients x {a.requests} requests, "
          f"max_tokens {a.max_tokens}, binary {a.bin}")
    runs = {}
    if a.only != "single":
        runs["batched"] = run(a.bin, a.model, 32, a.clients, a.requests, a.max_tokens)
        print(json.dumps(runs["batched"]), flush=True)
    if a.only != "batched":
        runs["single"] = run(a.bin, a.model, 1, a.clients, a.single_requests or a.requests,
                             a.max_tokens)
        print(json.dumps(runs["single"]), flush=True)
    if len(runs) < 2:
        sys.exit(1 if any(r["failed"] for r in runs.values()) else 0)
    batched, single = runs["batched"], runs["single"]
    ratio = batched["throughput_rps"] / single["throughput_rps"]
    print(f"throughput batched / one-at-a-time: {ratio:.2f}x")
    failed = batched["failed"] + single["failed"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
