"""Shared helpers for the Python baselines: load SmolLM2-135M-Instruct (GGUF) in f32 via transformers."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

# libgomp busy-waits by default; on a shared/oversubscribed machine that makes 2-thread matmuls
# 20-40x slower. PASSIVE must be set before torch is imported (override from the environment).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

REPO = Path(__file__).resolve().parents[2]


def set_threads() -> int:
    n = int(os.environ.get("LANTERN_THREADS", os.environ.get("TORCH_THREADS", "2")))
    torch.set_num_threads(n)
    return n


def gguf_path() -> Path:
    p = subprocess.run(
        ["bash", str(REPO / "scripts" / "fetch-model.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(p)


def load_smollm2(attn: str = "sdpa"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = gguf_path()
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name)
    model = AutoModelForCausalLM.from_pretrained(
        p.parent, gguf_file=p.name, dtype=torch.float32, attn_implementation=attn
    ).eval()
    return tok, model, time.perf_counter() - t0


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def tensors_of(out):
    """Every tensor in a module output (tensor, tuple/list, or dict/ModelOutput), detached."""
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, dict):
        return {k: tensors_of(v) for k, v in out.items() if v is not None}
    if isinstance(out, (tuple, list)):
        return [tensors_of(v) for v in out if v is not None]
    return out


def layer_pre_hook_patch(pos: int, value: torch.Tensor):
    """forward_pre_hook(with_kwargs=True) that overwrites hidden_states[:, pos] (args or kwargs)."""

    def hook(module, args, kwargs):
        if len(args) > 0:
            hs = args[0].clone()
            hs[:, pos] = value
            return (hs,) + tuple(args[1:]), kwargs
        hs = kwargs["hidden_states"].clone()
        hs[:, pos] = value
        return args, dict(kwargs, hidden_states=hs)

    return hook
