"""Lantern from Python: load a transformer, capture and intervene on any activation by its
TransformerLens name, and run Lantern's analyses, with numpy arrays.

>>> import lantern
>>> lm = lantern.load()                      # the cached SmolLM2-135M
>>> logits, cache = lm.run_with_cache("The capital of France is", names_filter="blocks.*.hook_resid_post")
>>> cache["resid_post", 3].shape
(1, 5, 576)

The engine is Rust (candle); this package converts and dispatches. Rust work runs with the GIL
released; errors are Python exceptions (FileNotFoundError, KeyError for unknown hooks,
IndexError for layers/heads/positions/token ids, ValueError otherwise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _lantern
from ._lantern import (
    BuiltinHook,
    Cache,
    Config,
    HookInfo,
    Model,
    add,
    load,
    patch,
    replace,
    scale,
    zero,
)

__all__ = [
    "load",
    "Model",
    "Config",
    "Cache",
    "HookInfo",
    "BuiltinHook",
    "zero",
    "scale",
    "add",
    "replace",
    "patch",
    "shapley",
    "causal_discovery",
    "CausalGraph",
]


def shapley(
    players: Union[int, Sequence[str]],
    value_fn: Callable[[tuple], float],
    method: str = "exact",
    budget: int = 0,
    seed: int = 0,
    batch_size: int = 0,
    quiet: bool = False,
) -> Dict[str, Any]:
    """Shapley values of a cooperative game given by a Python value function.

    ``value_fn(members)`` receives the coalition as a sorted tuple of player indices and
    returns its worth. ``method`` is ``"exact"`` (all 2^n coalitions), ``"permutation"``
    (antithetic permutation sampling) or ``"kernel"`` (KernelSHAP); the sampled ones use
    ``budget`` distinct evaluations (0: the library default) and ``seed``. Returns a dict with
    ``players``, ``values`` and ``std_errors`` (numpy arrays), ``v_empty``, ``v_full``,
    ``evaluations`` and ``method``. For prompt components scored by a model, use
    ``Model.shapley``. Ctrl-C stops it; an exception in ``value_fn`` propagates.
    """
    return _lantern.shapley_game(
        players if isinstance(players, int) else list(players),
        value_fn,
        method=method,
        budget=budget,
        seed=seed,
        batch_size=batch_size,
        quiet=quiet,
    )


@dataclass
class CausalGraph:
    """A time-lagged causal graph (lantern-causal): edges with lags, structural weights and
    bootstrap frequencies; feedback cycles; the spectral radius of the lag-1 weights."""

    nodes: List[str]
    edges: List[Dict[str, Any]]
    cycles: List[Dict[str, Any]]
    sccs: List[List[str]]
    spectral_radius: float
    self_loops: List[Dict[str, Any]]
    report: Dict[str, Any] = field(repr=False)

    def weight_matrix(self, lag: int = 1) -> np.ndarray:
        """``A[to, from]``: the structural weight of each oriented edge at ``lag``."""
        index = {n: i for i, n in enumerate(self.nodes)}
        a = np.zeros((len(self.nodes), len(self.nodes)))
        for e in self.edges:
            if e["lag"] == lag and e["kind"] == "directed":
                a[index[e["to"]], index[e["from"]]] = e["weight"]
        return a

    def to_networkx(self):
        """A ``networkx.MultiDiGraph``: one node per state, one edge per link (attributes
        ``lag``, ``weight``, ``frequency``, ``kind``, ``p_value``)."""
        import networkx as nx

        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes)
        for e in self.edges:
            g.add_edge(
                e["from"],
                e["to"],
                lag=e["lag"],
                weight=e["weight"],
                frequency=e["frequency"],
                kind=e["kind"],
                p_value=e["p_value"],
            )
        return g


def causal_discovery(
    data: Any,
    names: Optional[Sequence[str]] = None,
    session: Optional[str] = None,
    tau_max: int = 1,
    alpha: float = 0.01,
    n_bootstrap: int = 100,
    min_frequency: float = 0.5,
    seed: int = 0,
    quiet: bool = False,
) -> CausalGraph:
    """Time-lagged causal discovery (PCMCI-style, bootstrap-filtered) on state time series.

    ``data``: a ``[steps, n_vars]`` array (one session), a ``[sessions, steps, n_vars]`` array,
    a list of ``[steps, n_vars]`` arrays, or a pandas DataFrame (one column per state; rows in
    time order; ``session`` names a column that splits it into sessions). Returns a
    :class:`CausalGraph`.
    """
    sessions: List[np.ndarray]
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        cols = [c for c in data.columns if c != session]
        names = list(names) if names is not None else [str(c) for c in cols]
        if session is None:
            sessions = [data[cols].to_numpy(dtype=np.float64)]
        else:
            sessions = [
                g[cols].to_numpy(dtype=np.float64)
                for _, g in data.groupby(session, sort=False)
            ]
    else:
        if isinstance(data, (list, tuple)):
            sessions = [np.asarray(s, dtype=np.float64) for s in data]
        else:
            if not isinstance(data, np.ndarray):
                raise TypeError(
                    f"data: expected a numpy array, a list of arrays or a DataFrame, got {type(data).__name__}"
                )
            arr = np.asarray(data, dtype=np.float64)
            if arr.ndim == 2:
                sessions = [arr]
            elif arr.ndim == 3:
                sessions = list(arr)
            else:
                raise ValueError(
                    f"data: expected 2 or 3 dimensions ([steps, vars] or [sessions, steps, vars]), got shape {arr.shape}"
                )
        n_vars = sessions[0].shape[1] if sessions and sessions[0].ndim == 2 else 0
        names = list(names) if names is not None else [f"x{i}" for i in range(n_vars)]
    for s in sessions:
        if s.ndim != 2:
            raise ValueError(f"data: every session must be [steps, n_vars], got shape {s.shape}")
    report = json.loads(
        _lantern.causal_graph(
            [np.ascontiguousarray(s) for s in sessions],
            list(names),
            tau_max=tau_max,
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            min_frequency=min_frequency,
            seed=seed,
            quiet=quiet,
        )
    )
    return CausalGraph(
        nodes=report["nodes"],
        edges=report["edges"],
        cycles=report["cycles"],
        sccs=report["sccs"],
        spectral_radius=report["spectral_radius"],
        self_loops=report.get("self_loops", []),
        report=report,
    )
