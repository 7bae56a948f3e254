"""The benchmarks' own tools: every script starts, and the load client counts right.

``make bench`` is not part of ``make test`` (it takes most of an hour); these
keep its scripts from rotting between runs.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response

from support.threaded import serving

BENCH = Path(__file__).resolve().parents[3] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name not in ("harness.py", "inprocess.py"))

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_script_starts(script: Path) -> None:
    """Its imports resolve and its options parse (``--help`` exits before measuring)."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_load_client_posts_the_body_and_counts_unexpected_answers() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import clients
    finally:
        sys.path.remove(str(BENCH))
    bodies: list[bytes] = []
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        bodies.append(await request.body())
        # Every third upload is refused: the client must count those.
        return Response(status_code=503 if len(bodies) % 3 == 0 else 202)

    with serving(app, "upload server") as port:
        result = asyncio.run(
            clients.call(
                f"http://127.0.0.1:{port}/upload?dedup=false",
                clients=2,
                qps=0,
                seconds=1.0,
                body=b"x" * 100_000,
                content_type="application/octet-stream",
                expect="202",
            )
        )
    assert result["requests"] == len(bodies) > 10
    assert all(body == b"x" * 100_000 for body in bodies)
    assert result["unexpected_answers"] == len(bodies) // 3
    assert result["arrivals"] == "closed loop (back to back)"
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
