"""`import lantern`: results equal the Rust engine's (through the CLI), shapes and dtypes,
Python callables, every exception the binding promises, and Ctrl-C during a sweep."""

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lantern

PROMPT = "The capital of France is"
CAPITAL = "The capital of Poland is London. The capital of Poland is"


# ---------------------------------------------------------------- core


def test_config_and_tokens(lm):
    cfg = lm.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head) == (30, 576, 9, 3, 64)
    assert cfg.d_vocab == 49152 and cfg.architecture.lower() == "llama"
    toks = lm.to_tokens(PROMPT)
    # The Hugging Face tokenizer's ids (shared/notes.md).
    assert toks.dtype == np.int64 and toks.tolist() == [[504, 3575, 282, 4649, 314]]
    assert lm.to_str_tokens(PROMPT) == ["The", " capital", " of", " France", " is"]
    assert lm.to_string(toks[0]) == PROMPT
    assert lm.to_single_token(" Paris") == 7042


def test_hook_names(lm):
    names = lm.hook_names()
    assert names[0] == "hook_embed" and names[-1] == "logits"
    assert "blocks.29.attn.hook_z" in names and len(names) == len(set(names))
    assert lm.hook_names("blocks.*.hook_resid_post") == [f"blocks.{l}.hook_resid_post" for l in range(30)]


def test_run_with_cache_equals_the_engine_bit_for_bit(lm, cli, tmp_path):
    hooks = "blocks.*.hook_resid_post,blocks.3.attn.hook_pattern,blocks.7.attn.hook_z,logits"
    logits, cache = lm.run_with_cache(PROMPT, names_filter=hooks)
    out = tmp_path / "npy"
    cli("cache", "--prompt", PROMPT, "--hooks", hooks, "--out", str(out), parse=False)
    files = sorted(out.glob("*.npy"))
    assert len(files) == 33 == len(cache)
    for f in files:
        want = np.load(f)
        got = logits if f.stem == "logits" else cache[f.stem]
        assert got.dtype == np.float32 and got.shape == want.shape, f.stem
        assert np.array_equal(got, want), f"{f.stem} differs from the engine's"
    assert logits.shape == (1, 5, 49152)
    assert np.array_equal(cache["resid_post", 3], cache["blocks.3.hook_resid_post"])
    assert cache["pattern", 3].shape == (1, 9, 5, 5) and cache["z", 7].shape == (1, 5, 9, 64)
    assert ("resid_post", 3) in cache and "blocks.3.hook_resid_pre" not in cache


def test_names_filter_forms_and_padding(lm):
    prompts = [PROMPT, "Hello"]
    _, c_all = lm.run_with_cache(prompts)
    assert len(c_all) == len(lm.hook_names())
    _, c_list = lm.run_with_cache(prompts, names_filter=["blocks.0.hook_resid_pre", "blocks.1.hook_mlp_out"])
    assert c_list.keys() == ["blocks.0.hook_resid_pre", "blocks.1.hook_mlp_out"]
    _, c_fn = lm.run_with_cache(prompts, names_filter=lambda n: n.endswith("hook_attn_out"))
    assert len(c_fn) == 30
    assert c_fn.pad_left == [0, 4]
    assert c_fn.padding_mask.tolist() == [[True] * 5, [False] * 4 + [True]]
    # A padded row computes what it computes alone (the engine masks padding).
    logits, _ = lm.run_with_cache(prompts, names_filter=[])
    alone, _ = lm.run_with_cache("Hello", names_filter=[])
    np.testing.assert_allclose(logits[1, -1], alone[0, -1], atol=1e-4)


# ---------------------------------------------------------------- hooks


def test_builtin_interventions(lm):
    base = lm.run_with_hooks(PROMPT)
    _, cache = lm.run_with_cache(PROMPT, names_filter="blocks.10.hook_resid_pre")
    assert np.array_equal(lm.run_with_hooks(PROMPT, [("blocks.5.hook_mlp_out", lantern.scale(1.0))]), base)
    assert np.array_equal(lm.run_with_hooks(PROMPT, [("blocks.5.hook_mlp_out", lantern.add(np.zeros(576, np.float32)))]), base)
    assert np.array_equal(lm.run_with_hooks(PROMPT, [("blocks.10.hook_resid_pre", lantern.replace(cache["resid_pre", 10]))]), base)
    zeroed = lm.run_with_hooks(PROMPT, [("blocks.23.attn.hook_z", lantern.zero(heads=[0, 4]))])
    assert not np.array_equal(zeroed, base)

    def zero_heads(z, info):
        assert info.name == "blocks.23.attn.hook_z" and info.layer == 23
        z = z.copy()
        z[:, :, [0, 4], :] = 0
        return z

    assert np.array_equal(lm.run_with_hooks(PROMPT, [("blocks.23.attn.hook_z", zero_heads)]), zeroed)

    def in_place(z, info):
        z[:, :, [0, 4], :] = 0  # returns None: the modified array is used

    assert np.array_equal(lm.run_with_hooks(PROMPT, [("blocks.23.attn.hook_z", in_place)]), zeroed)
    # Positions: only the last one changes.
    last = lm.run_with_hooks(PROMPT, [("blocks.23.attn.hook_z", lantern.zero(heads=0, positions=4))])
    assert np.array_equal(last[:, :4], base[:, :4]) and not np.array_equal(last[:, 4], base[:, 4])


def test_patch_from_a_cache(lm):
    clean, corrupted = "The capital of France is", "The capital of Italy is"
    assert lm.to_tokens(clean).shape == lm.to_tokens(corrupted).shape
    want, cache = lm.run_with_cache(corrupted, names_filter="blocks.*.hook_resid_pre")
    got = lm.run_with_hooks(clean, [("blocks.0.hook_resid_pre", lantern.patch(cache))])
    assert np.array_equal(got, want)
    # Positions 0-2 hold the same tokens in both runs: patching them changes nothing; patching
    # the city's position at every layer gives the corrupted run.
    base = lm.run_with_hooks(clean)
    got = lm.run_with_hooks(clean, [("blocks.*.hook_resid_pre", lantern.patch(cache, positions=[0, 1, 2]))])
    assert np.array_equal(got, base) and not np.array_equal(base, want)
    got = lm.run_with_hooks(clean, [("blocks.*.hook_resid_pre", lantern.patch(cache, positions=3))])
    assert np.allclose(got, want, atol=1e-4)


def test_generate_with_hooks_every_step(lm, cli):
    assert lm.generate(PROMPT, max_new_tokens=2).startswith(" Paris")
    spec = "scale blocks.23.attn.hook_z head=0 alpha=6"
    want = cli("generate", "--prompt", CAPITAL, "--max-new-tokens", "6", "--intervene", spec, "--json")
    hook = ("blocks.23.attn.hook_z", lantern.scale(6.0, heads=0))
    assert lm.generate(CAPITAL, max_new_tokens=6, fwd_hooks=[hook], stop_at_eos=True) == want["text"]
    offsets = []

    def record(z, info):
        offsets.append(info.pos_offset)
        z[:, :, 0, :] *= 6

    assert lm.generate(CAPITAL, max_new_tokens=6, fwd_hooks=[("blocks.23.attn.hook_z", record)]) == want["text"]
    n_prompt = lm.to_tokens(CAPITAL).shape[1]
    assert offsets[0] == 0 and offsets[1:] == list(range(n_prompt, n_prompt + len(offsets) - 1))
    many = lm.generate([PROMPT, CAPITAL], max_new_tokens=3)
    assert isinstance(many, list) and len(many) == 2
    a = lm.generate(PROMPT, max_new_tokens=8, temperature=1.0, seed=3)
    assert a == lm.generate(PROMPT, max_new_tokens=8, temperature=1.0, seed=3)


# ---------------------------------------------------------------- errors


def test_exceptions_and_the_model_stays_usable(lm):
    base = lm.run_with_hooks(PROMPT)
    with pytest.raises(FileNotFoundError, match="no/such/model.gguf"):
        lantern.load("no/such/model.gguf")
    with pytest.raises(KeyError, match="hook_resid_psot"):
        lm.run_with_hooks(PROMPT, [("blocks.3.hook_resid_psot", lantern.zero())])
    with pytest.raises(KeyError, match="hook_resid_post"):  # the nearest names are suggested
        lm.run_with_cache(PROMPT, names_filter="blocks.3.hook_resid_psot")
    with pytest.raises(IndexError, match="layer 99"):
        lm.run_with_cache(PROMPT, names_filter="blocks.99.hook_resid_post")
    with pytest.raises(IndexError, match="head 12"):
        lm.run_with_hooks(PROMPT, [("blocks.3.attn.hook_z", lantern.zero(heads=12))])
    with pytest.raises(IndexError, match="position 9"):
        lm.run_with_hooks(PROMPT, [("blocks.3.hook_resid_post", lantern.zero(positions=9))])
    with pytest.raises(IndexError):
        lm.to_string([10**6])
    with pytest.raises(ValueError, match=r"blocks\.3\.hook_resid_post.*\[7\].*\[1, 5, 576\]"):
        lm.run_with_hooks(PROMPT, [("blocks.3.hook_resid_post", lantern.add(np.zeros(7, np.float32)))])
    with pytest.raises(TypeError, match="numpy array"):
        lantern.add([0.0] * 576)
    with pytest.raises(TypeError, match="float array"):
        lantern.add(np.zeros(576, np.int64))
    with pytest.raises(TypeError, match="alpha"):
        lantern.scale("2")
    with pytest.raises(TypeError, match="callable"):
        lm.run_with_hooks(PROMPT, [("blocks.3.hook_resid_post", 42)])
    with pytest.raises(ValueError, match="unknown dtype"):
        lantern.load(dtype="int8")

    class Boom(Exception):
        pass

    def raises(x, info):
        raise Boom("inside the hook")

    with pytest.raises(Boom, match="inside the hook") as e:
        lm.run_with_hooks(PROMPT, [("blocks.4.hook_mlp_out", raises)])
    assert "blocks.4.hook_mlp_out" in "".join(getattr(e.value, "__notes__", [str(e.value.__cause__)]))
    with pytest.raises(ValueError, match=r"blocks\.4\.hook_mlp_out returned.*\(1, 5, 576\)|blocks\.4\.hook_mlp_out.*\[1, 5\].*\[1, 5, 576\]"):
        lm.run_with_hooks(PROMPT, [("blocks.4.hook_mlp_out", lambda x, info: x[..., 0])])
    with pytest.raises(TypeError):
        lm.run_with_hooks(PROMPT, [("blocks.4.hook_mlp_out", lambda x, info: "nope")])
    with pytest.raises(ValueError):
        lm.generate(PROMPT, temperature=-1.0)
    assert np.array_equal(lm.run_with_hooks(PROMPT), base)


# ---------------------------------------------------------------- analyses


def test_dla_equals_the_cli(lm, cli):
    want = cli("heads", "--prompt", CAPITAL, "--target", " London", "--versus", " Warsaw", "--json")
    got = lm.dla(CAPITAL, " London", versus=" Warsaw")
    assert got["heads"].shape == (30, 9) and got["labels"][:2] == ["L0H0", "L0H1"]
    np.testing.assert_allclose(got["heads"], np.array(want["values"]), rtol=0, atol=1e-6)


def test_patching_equals_the_cli(lm, cli):
    clean, corrupted = "The capital of France is", "The capital of Italy is"
    want = cli("patch", "--clean", clean, "--corrupted", corrupted, "--target", " Paris", "--versus", " Rome",
               "--hook", "resid_pre", "--grid", "layer", "--json")
    got = lm.patch(clean, corrupted, " Paris", " Rome", hook="resid_pre", grid="layer", quiet=True)
    r = want.get("result", want)
    np.testing.assert_allclose(got["values"], np.array(r["values"]), rtol=0, atol=1e-6)
    assert got["row_labels"] == r["row_labels"] and abs(got["clean"] - r["clean"]) < 1e-6


def test_shapley_with_the_model_equals_the_cli(lm, cli, tmp_path):
    template = "{{a: The sky is blue.}} {{b: Question: is the sky blue?}} Answer (Yes or No):"
    path = tmp_path / "t.txt"
    path.write_text(template)
    want = cli("shapley", "--template", str(path), "--value", "option_prob", "--option", " Yes",
               "--option", " No", "--method", "exact", "--json")
    got = lm.shapley(template, value="option_prob", options=[" Yes", " No"], method="exact", quiet=True)
    assert got["players"] == want["players"]
    np.testing.assert_allclose(got["values"], want["values"], rtol=0, atol=1e-6)


def test_shapley_with_a_python_value_function():
    # Glove game: player 0 owns a left glove, 1 and 2 right gloves; values 2/3, 1/6, 1/6.
    r = lantern.shapley(["L", "R1", "R2"], lambda s: float(0 in s and (1 in s or 2 in s)), quiet=True)
    np.testing.assert_allclose(r["values"], [2 / 3, 1 / 6, 1 / 6], atol=1e-12)
    w = np.array([1.0, 2.0, -0.5, 3.0])
    for method in ("permutation", "kernel"):
        r = lantern.shapley(4, lambda s: float(w[list(s)].sum()), method=method, budget=14, seed=1, quiet=True)
        np.testing.assert_allclose(r["values"], w, atol=1e-9)

    def bad(s):
        raise ZeroDivisionError("value function")

    with pytest.raises(ZeroDivisionError):
        lantern.shapley(3, bad, quiet=True)


def test_causal_discovery_finds_a_planted_loop():
    import networkx as nx
    import pandas as pd

    rng = np.random.default_rng(0)
    x = np.zeros((400, 3))
    for t in range(1, 400):  # A -> B -> C -> A at lag 1
        a, b, c = x[t - 1]
        x[t] = [0.5 * c, 0.6 * a, 0.6 * b] + rng.normal(size=3)
    g = lantern.causal_discovery(x, names=["A", "B", "C"], n_bootstrap=20, quiet=True)
    directed = {(e["from"], e["to"]) for e in g.edges if e["lag"] == 1}
    assert {("A", "B"), ("B", "C"), ("C", "A")} <= directed
    assert any(set(c["nodes"]) == {"A", "B", "C"} for c in g.cycles)
    assert g.spectral_radius > 0
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph) and nxg.has_edge("A", "B")
    df = pd.DataFrame(x, columns=["A", "B", "C"])
    assert lantern.causal_discovery(df, n_bootstrap=20, quiet=True).edges == g.edges
    with pytest.raises(ValueError):
        lantern.causal_discovery(np.zeros(5))


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_a_sweep_and_the_model_stays_usable():
    script = textwrap.dedent(
        """
        import os, signal, threading, time
        import lantern
        lm = lantern.load(quiet=True)
        prompt = " ".join(["The capital of France is Paris."] * 6)
        other = " ".join(["The capital of Italy is Paris."] * 6)
        threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        start = time.time()
        try:
            lm.patch(prompt, other, " Paris", " Rome", grid="layer_pos", batch_size=8, quiet=True)
            print("finished", time.time() - start)
        except KeyboardInterrupt:
            print("interrupted", round(time.time() - start, 1))
        print("usable", lm.generate("The capital of France is", max_new_tokens=1))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "interrupted" in out.stdout and "usable  Paris" in out.stdout, out.stdout + out.stderr
