"""A local OpenAI-compatible embeddings server for tests: a real HTTP server (uvicorn)
that the real ``openai`` client talks to, with scripted misbehaviour.

Embeddings are deterministic (from each text's hash) and deliberately not of
unit length. ``script`` lists what the next requests get before normal
answers resume: ``"429"`` (with ``Retry-After``), ``"500"``, ``"slow"``
(answers after ``slow_s``), ``"malformed"`` (not JSON), ``"short"`` (one
embedding too few), ``"wrong_size"`` (vectors of another length).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from support.threaded import serving

KEY = "sk-test-key"


def vector_of(text: str, dimension: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return (np.random.default_rng(seed).normal(size=dimension) * 3.0).tolist()


@dataclass
class EmbeddingsServer:
    dimension: int = 8
    script: list[str] = field(default_factory=list)
    retry_after_s: str = "1"
    slow_s: float = 5.0
    # What each request asked: (number of inputs, model, dimensions or None).
    requests: list[tuple[int, str, int | None]] = field(default_factory=list)
    # When each request arrived (time.monotonic()).
    arrivals: list[float] = field(default_factory=list)
    url: str = ""

    def embedder_env(self, model: str = "test-embedder") -> dict[str, str]:
        """The environment that points an embedder process at this server."""
        return {
            "DOCFLOW_EMBEDDING_BACKEND": "openai",
            "DOCFLOW_OPENAI_API_KEY": KEY,
            "DOCFLOW_OPENAI_BASE_URL": self.url,
            "DOCFLOW_OPENAI_MODEL": model,
            "DOCFLOW_OPENAI_DIMENSIONS": str(self.dimension),
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> Response:
            self.arrivals.append(time.monotonic())
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse(
                    {
                        "error": {
                            "message": "Incorrect API key provided",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                    status_code=401,
                )
            body: dict[str, Any] = await request.json()
            inputs = body["input"]
            self.requests.append((len(inputs), body["model"], body.get("dimensions")))
            step = self.script.pop(0) if self.script else "ok"
            if step == "429":
                return JSONResponse(
                    {"error": {"message": "Rate limit reached", "type": "requests"}},
                    status_code=429,
                    headers={"Retry-After": self.retry_after_s},
                )
            if step == "500":
                return JSONResponse({"error": {"message": "boom"}}, status_code=500)
            if step == "malformed":
                return PlainTextResponse("<html>gateway error</html>", status_code=200)
            if step == "slow":
                await asyncio.sleep(self.slow_s)
            size = self.dimension + (1 if step == "wrong_size" else 0)
            texts = inputs[:-1] if step == "short" else inputs
            return JSONResponse(
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": vector_of(t, size)}
                        for i, t in enumerate(texts)
                    ],
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
            )

        return app


@contextmanager
def embeddings_server(**options: Any) -> Iterator[EmbeddingsServer]:
    """An ``EmbeddingsServer`` listening on 127.0.0.1 for the duration."""
    server = EmbeddingsServer(**options)
    with serving(server.app(), "the test embeddings server") as port:
        server.url = f"http://127.0.0.1:{port}/v1"
        yield server
