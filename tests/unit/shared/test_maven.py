"""Fetching from Maven Central: the Kafka jars and the embedder's model share one fetch."""

from __future__ import annotations

from pathlib import Path

import pytest

from docflow_local import kafka, maven, models


def test_without_maven_each_fetch_says_what_it_needed_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maven.shutil, "which", lambda _: None)
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    kept = tmp_path / "libs.partial"
    kept.mkdir()
    with pytest.raises(maven.MavenMissing, match="Maven \\(mvn\\) is needed"):
        maven.copy_dependencies(pom, kept)
    assert kept.is_dir()  # emptied only once Maven is there to fill it
    with pytest.raises(kafka.KafkaStartError, match="mvn"):
        kafka.ensure_jars(tmp_path / "libs", pom)
    with pytest.raises(models.ModelFetchError, match="mvn"):
        models.ensure_model(tmp_path / "models", pom)


def test_a_failing_maven_is_an_error_not_an_empty_folder(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text("this is not a pom")
    with pytest.raises(maven.subprocess.CalledProcessError):
        maven.copy_dependencies(pom, tmp_path / "out")
