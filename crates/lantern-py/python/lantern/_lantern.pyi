"""Type stubs of the compiled extension (see lantern/__init__.py for the package's docs)."""

from os import PathLike
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

Prompts = Union[str, Sequence[str], npt.NDArray[np.int64]]
Indices = Union[int, Sequence[int], None]
Token = Union[str, int]
HookFn = Callable[[npt.NDArray[np.float32], "HookInfo"], Optional[npt.NDArray[np.floating]]]
Hook = Union["BuiltinHook", HookFn]

class Config:
    """A model's shape (TransformerLens names)."""
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    architecture: str

class HookInfo:
    """The second argument of a hook callable."""
    name: str
    layer: Optional[int]
    pos_offset: int

class BuiltinHook:
    """A built-in intervention (lantern.zero, scale, add, replace, patch)."""

class Cache:
    """Activations of one run, by name (``cache["blocks.3.hook_z"]``) or by kind and layer
    (``cache["z", 3]``); each access returns a new float32 array."""
    def __getitem__(self, key: Union[str, Tuple[str, int]]) -> npt.NDArray[np.float32]: ...
    def __contains__(self, key: Union[str, Tuple[str, int]]) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> List[str]:
        """Hook names held, in forward order."""
    def shape(self, key: Union[str, Tuple[str, int]]) -> List[int]:
        """Shape of a held activation, without copying it."""
    def to_dict(self) -> Dict[str, npt.NDArray[np.float32]]:
        """Every activation as a numpy array."""
    @property
    def pad_left(self) -> List[int]:
        """Padding positions at the start of each row."""
    @property
    def padding_mask(self) -> npt.NDArray[np.bool_]:
        """``[batch, seq]``: True at real tokens."""
    @property
    def nbytes(self) -> int: ...

class Model:
    """A loaded model and its tokenizer."""
    @property
    def cfg(self) -> Config: ...
    @property
    def source(self) -> str: ...
    def to_tokens(self, prompts: Prompts) -> npt.NDArray[np.int64]:
        """Token ids ``[batch, seq]``, left-padded."""
    def to_str_tokens(self, prompt: str) -> List[str]: ...
    def to_string(self, tokens: Union[int, Sequence[int], npt.NDArray[np.int64]]) -> str: ...
    def to_single_token(self, text: str) -> int: ...
    def hook_names(self, pattern: Optional[str] = None) -> List[str]:
        """Every hook point in forward order, or those a glob pattern matches."""
    def run_with_cache(
        self,
        prompts: Prompts,
        names_filter: Union[None, str, Sequence[str], Callable[[str], bool]] = None,
        fwd_hooks: Optional[Sequence[Tuple[str, Hook]]] = None,
    ) -> Tuple[npt.NDArray[np.float32], Cache]:
        """``(logits [batch, seq, vocab], cache)``."""
    def run_with_hooks(
        self, prompts: Prompts, fwd_hooks: Optional[Sequence[Tuple[str, Hook]]] = None
    ) -> npt.NDArray[np.float32]:
        """Logits ``[batch, seq, vocab]`` with the hooks applied."""
    def generate(
        self,
        prompt: Union[str, Sequence[str]],
        max_new_tokens: int = 32,
        fwd_hooks: Optional[Sequence[Tuple[str, Hook]]] = None,
        temperature: float = 0.0,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: int = 0,
        stop: Optional[Sequence[str]] = None,
        stop_at_eos: bool = True,
    ) -> Any:
        """The new text (a str for a str prompt, a list for a list)."""
    def dla(
        self, prompt: str, target: Token, versus: Optional[Token] = None, position: Optional[int] = None
    ) -> Dict[str, Any]:
        """Per-head direct logit attribution: ``heads [n_layers, n_heads]``, ``mlps``, ``labels``, ..."""
    def logit_lens(
        self, prompt: str, track: Optional[Sequence[Token]] = None, position: Optional[int] = None, top_k: int = 5
    ) -> Dict[str, Any]:
        """Logit lens per layer: ``layers``, ``top``, ``tracked``, ``prob``, ``rank``."""
    def patch(
        self,
        clean: Prompts,
        corrupted: Prompts,
        target: Token,
        versus: Token,
        hook: str = "resid_pre",
        grid: str = "layer_pos",
        metric: str = "normalized",
        layer: Optional[int] = None,
        batch_size: int = 32,
        quiet: bool = False,
    ) -> Dict[str, Any]:
        """Activation patching sweep: ``values [rows, cols]``, ``row_labels``, ``col_labels``, ``clean``, ``corrupted``."""
    def shapley(
        self,
        template: str,
        value: str = "option_prob",
        target: Optional[str] = None,
        options: Optional[Sequence[str]] = None,
        chosen: int = 0,
        method: str = "exact",
        absent: str = "remove",
        budget: int = 0,
        seed: int = 0,
        batch_size: int = 16,
        quiet: bool = False,
    ) -> Dict[str, Any]:
        """Shapley values of a prompt template's components with this model as the scorer."""

def load(
    model: Union[None, str, "PathLike[str]"] = None,
    dtype: str = "float32",
    device: str = "cpu",
    quiet: bool = False,
) -> Model:
    """Loads a folder, a .gguf file, a hub id or a known model name (default: cached SmolLM2)."""

def zero(*, heads: Indices = None, positions: Indices = None, rows: Indices = None) -> BuiltinHook: ...
def scale(alpha: float, *, heads: Indices = None, positions: Indices = None, rows: Indices = None) -> BuiltinHook: ...
def add(vector: npt.NDArray[np.floating], *, heads: Indices = None, positions: Indices = None, rows: Indices = None) -> BuiltinHook: ...
def replace(array: npt.NDArray[np.floating], *, heads: Indices = None, positions: Indices = None, rows: Indices = None) -> BuiltinHook: ...
def patch(source: Union[Cache, npt.NDArray[np.floating]], *, heads: Indices = None, positions: Indices = None, rows: Indices = None) -> BuiltinHook: ...
def shapley_game(
    players: Union[int, List[str]],
    value_fn: Callable[[tuple], float],
    method: str = "exact",
    budget: int = 0,
    seed: int = 0,
    batch_size: int = 0,
    quiet: bool = False,
) -> Dict[str, Any]: ...
def causal_graph(
    sessions: List[npt.NDArray[np.float64]],
    names: List[str],
    tau_max: int = 1,
    alpha: float = 0.01,
    n_bootstrap: int = 100,
    min_frequency: float = 0.5,
    seed: int = 0,
    quiet: bool = False,
) -> str: ...
