"""What a parser taken over by a hostile file could do from inside its worker,
tried by probes run in the worker in place of the reading
(``support.sandbox_probes``), and what the service makes of a worker that
answers with frames no honest worker sends."""

from __future__ import annotations

import io
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from docflow_extractor.adapters.sandbox import SandboxLimits, open_sandboxed
from docflow_extractor.adapters.sandbox_worker import Work
from docflow_extractor.domain.cutting import DocumentLimits
from docflow_shared.errors import DocumentError
from docflow_shared.events import ErrorCode
from support import sandbox_probes

MiB = 1024 * 1024
LIMITS = SandboxLimits(memory_bytes=512 * MiB, wall_clock_s=30)


def run(
    work: Work, document: bytes = b"", limits: SandboxLimits = LIMITS, **options: Any
) -> list[str]:
    opened = open_sandboxed(io.BytesIO(document), "text/plain", None, limits, work=work, **options)
    return [piece.text for page in opened.pieces() for piece in page]


@pytest.fixture(scope="module")
def escape_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    secret = tmp_path_factory.mktemp("secret") / "other-tenant.blob"
    secret.write_bytes(b"another tenant's upload")
    secret.chmod(0o600)
    # Not under pytest's own temporary directory, which only its user may enter.
    with (
        tempfile.TemporaryDirectory(prefix="docflow-probe-") as scratch,
        socket.create_server(("127.0.0.1", 0)) as server,
    ):
        Path(scratch).chmod(0o777)  # writable by the worker, whoever it runs as
        targets = {"port": server.getsockname()[1], "secret": str(secret), "scratch": scratch}
        [text] = run(sandbox_probes.escape, json.dumps(targets).encode())
    return dict(json.loads(text))


def test_the_worker_has_no_environment(escape_report: dict[str, Any]) -> None:
    # Not the service's settings (PATH, KAFKA_BOOTSTRAP_SERVERS, keys), not even
    # as the environment it started with.
    assert "PATH" in os.environ
    # Only what keeps the tokenizer and Tesseract from starting threads.
    assert escape_report["environment"] == {
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_THREAD_LIMIT": "1",
    }
    assert escape_report["proc_environ"].startswith("failed: PermissionError")


def test_the_worker_reaches_no_network(escape_report: dict[str, Any]) -> None:
    assert escape_report["connect"].startswith("failed:"), escape_report["connect"]
    assert "unreachable" in escape_report["connect"]


def test_the_worker_can_start_no_process_nor_thread(escape_report: dict[str, Any]) -> None:
    assert escape_report["fork"].startswith("failed: BlockingIOError"), escape_report["fork"]
    assert escape_report["thread"].startswith("failed: RuntimeError"), escape_report["thread"]


def test_the_worker_writes_no_big_file_and_opens_few(escape_report: dict[str, Any]) -> None:
    assert "File too large" in escape_report["big_file"], escape_report["big_file"]
    assert "Too many open files" in escape_report["open_files"], escape_report["open_files"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker changes user only under root")
def test_under_root_the_worker_is_nobody_and_reads_no_private_file(
    escape_report: dict[str, Any],
) -> None:
    assert escape_report["uid"] == 65534
    assert escape_report["secret"].startswith("failed: PermissionError"), escape_report["secret"]


def test_the_worker_has_a_cpu_limit_and_dumps_no_core(escape_report: dict[str, Any]) -> None:
    assert escape_report["cpu_limit"] == [30, 31]
    assert escape_report["core_limit"] == [0, 0]


def test_a_parse_past_the_cpu_time_limit_is_stopped(corpus: Path) -> None:
    # The long corpus PDF takes seconds of CPU to read: past a 1 s CPU limit,
    # well before its wall-clock limit.
    limits = SandboxLimits(memory_bytes=512 * MiB, wall_clock_s=120, cpu_s=1)
    with (
        (corpus / "pdf" / "GeoTopo-komprimiert.pdf").open("rb") as stream,
        pytest.raises(DocumentError) as failure,
    ):
        for _ in open_sandboxed(stream, "application/pdf", None, limits).pieces():
            pass
    assert failure.value.code is ErrorCode.TIMEOUT
    assert "1 s of CPU time" in failure.value.message


def test_a_frame_over_the_size_cap_is_refused() -> None:
    with pytest.raises(DocumentError) as failure:
        run(sandbox_probes.oversized_frame)
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "more than 8 MiB" in failure.value.message


def test_a_pickle_from_the_worker_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    with pytest.raises(DocumentError) as failure:
        run(sandbox_probes.pickled_frame, str(marker).encode())
    assert failure.value.code is ErrorCode.INTERNAL
    assert "not JSON" in failure.value.message
    assert not marker.exists()


def test_a_chunk_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(DocumentError) as failure:
        run(sandbox_probes.malformed_chunk)
    assert failure.value.code is ErrorCode.INTERNAL
    assert "malformed" in failure.value.message


def test_a_worker_sending_chunks_without_end_is_stopped_at_the_chunk_limit() -> None:
    with pytest.raises(DocumentError) as failure:
        run(sandbox_probes.endless_chunks, document_limits=DocumentLimits(max_chunks=1000))
    assert failure.value.code is ErrorCode.LIMIT_EXCEEDED
    assert "DOCFLOW_MAX_CHUNKS" in failure.value.message


def test_a_worker_that_stops_in_the_middle_of_a_frame_is_stopped_at_the_time_limit() -> None:
    with pytest.raises(DocumentError) as failure:
        run(sandbox_probes.stalls_mid_frame, limits=SandboxLimits(wall_clock_s=2))
    assert failure.value.code is ErrorCode.TIMEOUT
