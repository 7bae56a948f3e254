"""The local embedding model on each inference engine, side by side in one run.

GeoTopo-komprimiert.pdf's chunks (as the extractor cuts them), batch 16, the
same threads for every engine (``--threads``, default 2), through:

- numpy: the hand-written transformer (``adapters/minilm.py``), the reference
  (OpenBLAS's threads: one per core);
- ONNX Runtime on LangChain4j's ONNX export (the file ``make models`` fetches);
- OpenVINO on the same file, in float32 and, where the CPU has them,
  bfloat16 and float16 (OpenVINO's inference precision hint).

The goal row compares the service's default (``DOCFLOW_EMBEDDER_PRECISION``'s
default, or the variable if set) with numpy in the same run. Keeping single
nodes (attention, the last layer) in float32 while the rest runs in bfloat16
was tried too: OpenVINO 2026.4's CPU plugin drops the per-node "keep precise"
mark when it turns MatMuls into its FullyConnected nodes, so it changed
nothing (see BENCHMARKS.md).

Each engine's tokenizer, pooling and normalisation are the service's own
(``adapters/engine.py``); only the forward pass differs. Chunks/s (median of
``--rounds`` alternating rounds) and each engine's vectors against numpy's
(the lowest and median cosine over all chunks), and the load average while
measuring (the machine is shared). Writes bench/results/engines.json.

    .venv/bin/python bench/engines.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from embedder import DOCUMENT, corpus_batches
from harness import write_report

from docflow_embedder.adapters.engine import (
    MODEL_FILE,
    EngineEmbedder,
    OpenVINORunner,
)
from docflow_embedder.adapters.minilm import MiniLMEmbedder
from docflow_embedder.settings import EmbedderSettings
from docflow_local.models import ensure_model

BATCH = 16


class OnnxRuntimeRunner:
    """The same ONNX graph on ONNX Runtime's CPU provider, all graph optimisations on."""

    def __init__(self, model: Path, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )

    def __call__(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], types: npt.NDArray[np.int64]
    ) -> Any:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return self._session.run(["last_hidden_state"], feed)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model_dir = ensure_model()
    onnx = model_dir / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix="docflow-bench-") as tmp:
        texts = [c.text for b in corpus_batches(Path(tmp)) for c in b.chunks]

    engines: dict[str, Callable[[list[str]], Any]] = {}
    numpy_model = MiniLMEmbedder(batch_size=BATCH)

    engines["numpy"] = numpy_model.embed
    engines["onnxruntime_f32"] = EngineEmbedder(
        model_dir, batch_size=BATCH, runner=OnnxRuntimeRunner(onnx, args.threads)
    ).embed
    engines["openvino_f32"] = EngineEmbedder(
        model_dir, batch_size=BATCH, runner=OpenVINORunner(onnx, threads=args.threads)
    ).embed
    available = []
    for precision in ("bf16", "f16"):
        runner = OpenVINORunner(onnx, threads=args.threads, precision=precision)
        if runner.precision == precision:  # not fallen back to f32
            available.append(precision)
            engines[f"openvino_{precision}"] = EngineEmbedder(
                model_dir, batch_size=BATCH, runner=runner
            ).embed
    # The service's default, as it would run on this CPU (a precision the CPU
    # lacks falls back to f32 there too).
    wanted = EmbedderSettings().embedder_precision
    default = f"openvino_{wanted if wanted == 'f32' or wanted in available else 'f32'}"

    vectors = {name: embed(texts) for name, embed in engines.items()}  # also the warm-up
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, embed in engines.items():
            started = time.perf_counter()
            embed(texts)
            seconds[name].append(time.perf_counter() - started)
            load.append(os.getloadavg()[0])

    reference = vectors["numpy"]
    results: dict[str, Any] = {}
    for name in engines:
        cosines = np.sum(vectors[name] * reference, axis=1)
        median = statistics.median(seconds[name])
        results[name] = {
            "chunks_per_s": round(len(texts) / median, 1),
            "seconds": [round(s, 2) for s in seconds[name]],
            "speedup_vs_numpy": round(statistics.median(seconds["numpy"]) / median, 2),
            "cosine_to_numpy_min": round(float(cosines.min()), 7),
            "cosine_to_numpy_median": round(float(np.median(cosines)), 7),
        }
    write_report(
        "engines",
        {
            "document": DOCUMENT.name,
            "chunks": len(texts),
            "batch_size": BATCH,
            "threads": args.threads,
            "rounds": args.rounds,
            "bf16_available": "bf16" in available,
            "f16_available": "f16" in available,
            "service_default": default,
            "load_average_1min": {"min": round(min(load), 1), "max": round(max(load), 1)},
            "engines": results,
        },
    )


if __name__ == "__main__":
    main()
