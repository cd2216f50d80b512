"""The default model in numpy, for the few texts of a search (its query): no onnxruntime.

A new `promptlab logs search --semantic` process embeds one short text. With onnxruntime
that costs its import (~35 ms of CPU) and a session (~25-60 ms) before a ~3 ms run; the
same all-MiniLM-L6-v2 forward pass written in numpy, which the search imports anyway,
costs ~15-30 ms in a new process, weights included (measured on 2 shared cores, a
10-word query). `logs embed` keeps onnxruntime's integer graph (promptlab.semantic.minilm):
for batches of long texts it is several times faster.

The arithmetic is the shipped graph's: its int8 weights turned back into float32 once, at
build time, then float32 throughout, as the shipped file does on every run (its vectors
agree with the shipped graph's to cosine > 0.99999; tests/semantic/test_querymodel.py).
Every text runs alone, so nothing is padded or masked. GELU's erf is Abramowitz and Stegun's
7.1.26 (absolute error < 1.5e-7, below float32's resolution of the values it scales):
numpy has no erf, and scipy.special's import costs more than the whole forward pass.

The weights are cached under `minilm.cache_dir()` as a folder of .npy files (~56 MB),
named for the source file's sha256 and BUILD, built once from the shipped file with the
`onnx` package (in the 'semantic' extra) and renamed into place whole; they are mapped,
not read, so a search touches only the rows of the word table its query uses. Matrices are
stored as (out, in), PyTorch's layout, and multiplied as W @ x.T with the tokens as
columns: ~1.5x faster than x @ W for a handful of tokens (OpenBLAS, measured).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promptlab.semantic.minilm import EPSILON, HEADS, cache_dir, drop_earlier_builds, read_source

BUILD = "numpy-v1"  # change when the files written below change: a new cache folder
NAMES = ("word_q", "word_scale", "position", "type0", "norm_g", "norm_b", "qkv_w", "qkv_b",
         "out_w", "out_b", "ff_in_w", "ff_in_b", "ff_out_w", "ff_out_b")
# Abramowitz and Stegun 7.1.26: erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1/(1 + p x)
_ERF_P = 0.3275911
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def cached_folder(source_sha256: str) -> Path:
    return cache_dir() / f"minilm-{source_sha256[:16]}-{BUILD}"


def query_model(source: Path, source_sha256: str) -> QueryModel | None:
    """The numpy model for `source` (the shipped file whose sha256 is `source_sha256`): from
    its cached folder, else built now (and cached when the folder can be written), or None
    when it cannot be built (no `onnx` package, another graph)."""
    folder = cached_folder(source_sha256)
    for _ in range(2):
        if not (folder / "done").is_file():
            try:
                arrays = weights(source)
            except Exception:  # no `onnx` package, or a file it cannot read: onnxruntime
                return None
            try:
                _publish(folder, arrays)
            except OSError:  # a read-only cache: use the weights built in memory
                return QueryModel(arrays)
            drop_earlier_builds(folder, source_sha256, "numpy")
        try:
            return QueryModel.load(folder)
        except (OSError, ValueError):  # a damaged cache folder: build it again, once
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return None


def weights(source: Path) -> dict[str, Any]:
    """The arrays of NAMES, float32 (but the int8 word table and its scales), from the
    shipped file's int8 weights. Raises ImportError without the `onnx` package."""
    import numpy as np

    src = read_source(source)

    def dense(i: int) -> Any:  # (out, in) float32
        w = src.linears[i]
        return (w.q.astype(np.float32) * w.scale[None, :]).T

    layers = len(src.linears) // 6
    word_q, word_scale = src.word
    pos_q, pos_scale = src.position
    per = range(layers)
    return {
        "word_q": word_q.astype(np.int8),
        "word_scale": word_scale.reshape(-1).astype(np.float32),
        "position": pos_q.astype(np.float32) * pos_scale.reshape(-1, 1).astype(np.float32),
        "type0": src.token_type[0].astype(np.float32),
        "norm_g": np.stack([g for g, _ in src.norms]).astype(np.float32),
        "norm_b": np.stack([b for _, b in src.norms]).astype(np.float32),
        "qkv_w": np.stack([np.concatenate([dense(6 * n + j) for j in range(3)]) for n in per]),
        "qkv_b": np.stack([np.concatenate([src.linears[6 * n + j].bias for j in range(3)])
                           for n in per]),
        "out_w": np.stack([dense(6 * n + 3) for n in per]),
        "out_b": np.stack([src.linears[6 * n + 3].bias for n in per]),
        "ff_in_w": np.stack([dense(6 * n + 4) for n in per]),
        "ff_in_b": np.stack([src.linears[6 * n + 4].bias for n in per]),
        "ff_out_w": np.stack([dense(6 * n + 5) for n in per]),
        "ff_out_b": np.stack([src.linears[6 * n + 5].bias for n in per]),
    }


def _publish(folder: Path, arrays: dict[str, Any]) -> None:
    """Write the arrays into a temporary folder beside `folder`, then rename it into place
    whole: a reader sees a complete folder or none. When another process got there first,
    its folder stays (the same bytes) and this one is removed."""
    import shutil
    import tempfile

    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".tmp", dir=folder.parent))
    try:
        for name in NAMES:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arrays[name]))
        (tmp / "done").write_text(BUILD + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "done").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class QueryModel:
    """all-MiniLM-L6-v2's forward pass in numpy float32 for one text at a time."""

    def __init__(self, arrays: dict[str, Any]):
        missing = [name for name in NAMES if name not in arrays]
        if missing:
            raise ValueError(f"the numpy model lacks {', '.join(missing)}")
        self.a = arrays
        self.layers = len(arrays["qkv_w"])
        self.width = int(arrays["type0"].shape[0])

    @classmethod
    def load(cls, folder: Path) -> QueryModel:
        import numpy as np

        return cls({name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in NAMES})

    def hidden(self, ids: Sequence[int]) -> Any:
        """The last hidden state of one text's word-piece ids: (tokens, width) float32."""
        import numpy as np

        a, width = self.a, self.width
        ids = np.asarray(ids, dtype=np.intp)
        n = len(ids)
        if not 0 < n <= len(a["position"]):
            raise ValueError(f"{n} word pieces: expected 1 to {len(a['position'])}")
        # (width, tokens) throughout: each token a column
        h = (a["word_q"][ids].astype(np.float32) * a["word_scale"][ids, None]
             + a["type0"] + a["position"][:n]).T
        h = _norm(h, a["norm_g"][0], a["norm_b"][0])
        head = width // HEADS
        scale = np.float32(1 / np.sqrt(head))
        for layer in range(self.layers):
            qkv = a["qkv_w"][layer] @ h + a["qkv_b"][layer][:, None]  # (3 width, tokens)
            q, k, v = (qkv[i * width:(i + 1) * width].reshape(HEADS, head, n) for i in range(3))
            scores = (q.transpose(0, 2, 1) @ k) * scale  # (heads, tokens, tokens)
            scores = np.exp(scores - scores.max(axis=2, keepdims=True))
            scores /= scores.sum(axis=2, keepdims=True)
            context = (v @ scores.transpose(0, 2, 1)).reshape(width, n)
            y = a["out_w"][layer] @ context + a["out_b"][layer][:, None]
            h1 = _norm(y + h, a["norm_g"][1 + 2 * layer], a["norm_b"][1 + 2 * layer])
            f = a["ff_in_w"][layer] @ h1 + a["ff_in_b"][layer][:, None]
            f = _gelu(f)
            y = a["ff_out_w"][layer] @ f + a["ff_out_b"][layer][:, None]
            h = _norm(y + h1, a["norm_g"][2 + 2 * layer], a["norm_b"][2 + 2 * layer])
        return np.ascontiguousarray(h.T)


def _norm(h: Any, gamma: Any, beta: Any) -> Any:
    """LayerNorm over each column."""
    import numpy as np

    centred = h - h.mean(axis=0)
    variance = (centred * centred).mean(axis=0)
    return centred / np.sqrt(variance + np.float32(EPSILON)) * gamma[:, None] + beta[:, None]


def _gelu(x: Any) -> Any:
    """0.5 x (1 + erf(x / sqrt 2)), BERT's exact GELU, with erf by A&S 7.1.26."""
    import numpy as np

    z = np.abs(x) * np.float32(1 / np.sqrt(2))
    t = np.float32(1) / (np.float32(1) + np.float32(_ERF_P) * z)
    poly = np.float32(_ERF_A[0])
    for coefficient in _ERF_A[1:]:
        poly = poly * t + np.float32(coefficient)
    erf = np.float32(1) - poly * t * np.exp(-z * z)
    return np.float32(0.5) * x * (np.float32(1) + np.copysign(erf, x))
