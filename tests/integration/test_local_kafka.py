"""The local broker's storage formatting, on the real Kafka tools."""

from __future__ import annotations

from pathlib import Path

from docflow_local.kafka import LocalKafka, ensure_jars
from docflow_local.processes import free_port


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # One random cluster id in 64 starts with "-"; a CI run once failed on it.
    kafka = LocalKafka(
        home=tmp_path, port=free_port(), controller_port=free_port(), libs=ensure_jars()
    )
    tmp_path.mkdir(exist_ok=True)

    kafka._format(kafka._write_config(), "-HuL72l1SE-_gAZgo_tKxw")

    meta = (tmp_path / "data" / "meta.properties").read_text()
    assert "cluster.id=-HuL72l1SE-_gAZgo_tKxw" in meta
