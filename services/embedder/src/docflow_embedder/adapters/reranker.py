"""Reranking through an HTTP ``/rerank`` endpoint (optional, off by default).

Two request shapes, the ones rerank servers speak:

- ``tei`` (Hugging Face Text Embeddings Inference): ``POST {url}`` with
  ``{"query", "texts", "truncate": true}``, answered by ``[{"index", "score"}]``;
- ``cohere`` (the shape of Cohere's, Jina's, vLLM's and other OpenAI-style
  servers' ``/v1/rerank``): ``{"model", "query", "documents", "top_n"}``,
  answered by ``{"results": [{"index", "relevance_score"}]}``.

``url`` is the whole endpoint (``http://tei:8080/rerank``,
``http://vllm:8000/v1/rerank``). Every candidate must get a score back, each
index once; anything else is an error, so a broken answer never reorders
results silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from docflow_embedder.domain import RerankFailed

RerankApi = Literal["tei", "cohere"]


class HttpReranker:
    """Scores (query, text) pairs with a cross-encoder behind an HTTP endpoint."""

    def __init__(
        self,
        url: str,
        *,
        api: RerankApi = "tei",
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.api = api
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers, transport=transport)

    async def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in the order given (higher: more relevant)."""
        if not texts:
            return []
        body: dict[str, Any]
        if self.api == "tei":
            body = {"query": query, "texts": list(texts), "truncate": True}
        else:
            body = {"query": query, "documents": list(texts), "top_n": len(texts)}
            if self.model:
                body["model"] = self.model
        try:
            response = await self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise RerankFailed(f"{self.url} did not answer: {exc}") from exc
        if response.status_code != 200:
            raise RerankFailed(f"{self.url} answered {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
            rows = answer if self.api == "tei" else answer["results"]
            key = "score" if self.api == "tei" else "relevance_score"
            scores = {int(row["index"]): float(row[key]) for row in rows}
        except (ValueError, KeyError, TypeError) as exc:
            raise RerankFailed(f"{self.url} answered in another shape: {exc}") from exc
        if sorted(scores) != list(range(len(texts))) or len(rows) != len(texts):
            raise RerankFailed(
                f"{self.url} scored {len(rows)} texts with indexes {sorted(scores)[:10]}…, "
                f"not each of the {len(texts)} once"
            )
        if not all(math.isfinite(s) for s in scores.values()):
            raise RerankFailed(f"{self.url} answered a score that is not a number")
        return [scores[i] for i in range(len(texts))]

    async def close(self) -> None:
        await self._client.aclose()
