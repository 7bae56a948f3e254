"""Embeddings from OpenAI, or any OpenAI-compatible endpoint (a base URL), through
the ``openai`` package.

Requests are sized to the API's limits: at most ``max_inputs`` texts and
``max_request_tokens`` tokens each (OpenAI: 2,048 inputs, 300,000 tokens).
Tokens are counted as UTF-8 bytes, an upper bound for the BPE encodings
these models use (every token is at least one byte), so no tokenizer has to
be downloaded. Retries are the ``openai`` client's own: 408, 409, 429 and
5xx answers, timeouts and dropped connections are retried ``max_retries``
times with exponential backoff (0.5 s doubling, at most 8 s, with jitter),
waiting what ``Retry-After`` asks when the server says (up to 2 minutes).
What still fails becomes a ``DocumentError`` a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import openai
from openai.types import CreateEmbeddingResponse

from docflow_shared.errors import DocumentError, TransientError
from docflow_shared.events import ErrorCode

# Output sizes of OpenAI's embedding models; others need DOCFLOW_OPENAI_DIMENSIONS.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300_000


class OpenAIEmbedder:
    """The ``Embedder`` port on an OpenAI-compatible embeddings API."""

    def __init__(
        self,
        client: openai.OpenAI | None,
        model: str,
        *,
        dimension: int | None = None,
        max_inputs: int = MAX_INPUTS,
        max_request_tokens: int = MAX_REQUEST_TOKENS,
    ) -> None:
        """``client`` None: no API key is configured; every batch fails saying so."""
        found = dimension or KNOWN_DIMENSIONS.get(model)
        if found is None:
            raise ValueError(
                f"the output size of {model!r} is not known: set DOCFLOW_OPENAI_DIMENSIONS"
            )
        self._client = client
        self.model = model
        self.dimension = found
        # Only models that can shorten their output are told the size.
        self._ask_dimensions = dimension is not None and model not in ("text-embedding-ada-002",)
        self._max_inputs = max_inputs
        self._max_tokens = max_request_tokens

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit vectors for ``texts``, in order, in as few requests as the limits allow."""
        if self._client is None:
            raise DocumentError(
                ErrorCode.INTERNAL,
                "no OpenAI API key is configured for the embedder: set DOCFLOW_OPENAI_API_KEY "
                "(or OPENAI_API_KEY), then retry the document",
                retryable=True,
            )
        vectors = [self._request(self._client, batch) for batch in self.requests(texts)]
        if not vectors:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.concatenate(vectors)

    def requests(self, texts: Sequence[str]) -> Iterator[list[str]]:
        """``texts`` cut into consecutive requests within the input and token limits."""
        batch: list[str] = []
        tokens = 0
        for text in texts:
            size = max(1, len(text.encode()))
            if size > self._max_tokens:
                raise DocumentError(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"a chunk of {size} bytes is larger than one embeddings request may be "
                    f"({self._max_tokens} tokens); lower DOCFLOW_CHUNK_TOKENS",
                    retryable=False,
                )
            if batch and (len(batch) == self._max_inputs or tokens + size > self._max_tokens):
                yield batch
                batch, tokens = [], 0
            batch.append(text)
            tokens += size
        if batch:
            yield batch

    def _request(self, client: openai.OpenAI, texts: list[str]) -> npt.NDArray[np.float32]:
        try:
            answer = client.embeddings.create(
                model=self.model,
                input=texts,
                encoding_format="float",
                dimensions=self.dimension if self._ask_dimensions else openai.omit,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise DocumentError(
                ErrorCode.INTERNAL,
                f"the embeddings API refused the embedder's key ({exc.status_code}): check "
                "DOCFLOW_OPENAI_API_KEY, then retry the document",
                retryable=True,
            ) from exc
        except openai.APITimeoutError as exc:
            raise TransientError(
                ErrorCode.TIMEOUT,
                "the embeddings API did not answer in time, even after retries; "
                "retry the document later",
            ) from exc
        except openai.APIStatusError as exc:
            message = (
                f"the embeddings API answered {exc.status_code} even after retries "
                f"({_short(exc.message)}); retry the document later"
            )
            if exc.status_code == 429 or exc.status_code >= 500:
                raise TransientError(ErrorCode.INTERNAL, message) from exc
            raise DocumentError(ErrorCode.INTERNAL, message, retryable=False) from exc
        except openai.APIConnectionError as exc:
            raise TransientError(
                ErrorCode.INTERNAL,
                f"the embeddings API could not be reached ({_short(str(exc))}); "
                "retry the document later",
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            raise _malformed(str(exc)) from exc
        # The client builds its answer without validating it: a body that is
        # not JSON comes back as text, and fields may be of any type.
        if not isinstance(answer, CreateEmbeddingResponse):
            raise _malformed(f"a {type(answer).__name__} body: {answer!r}")
        try:
            data = sorted(answer.data, key=lambda item: item.index)
            indexes = [item.index for item in data]
            vectors = np.asarray([item.embedding for item in data], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as exc:
            raise _malformed(str(exc)) from exc
        if indexes != list(range(len(texts))):
            raise _malformed(f"{len(data)} embeddings for {len(texts)} texts")
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise _malformed(f"vectors of shape {vectors.shape}, expected {self.dimension} values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(np.isfinite(vectors)) or np.any(norms == 0):
            raise _malformed("vectors that are zero or not finite")
        # OpenAI's are unit vectors already; other endpoints' may not be.
        normalized: npt.NDArray[np.float32] = vectors / norms
        return normalized


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _malformed(what: str) -> DocumentError:
    return DocumentError(
        ErrorCode.INTERNAL,
        f"the embeddings API answered something that is not the embeddings asked for "
        f"({_short(what)}); retry the document later",
        retryable=True,
    )
