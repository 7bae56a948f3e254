"""The embedder's image carries its local model, the files `make models` fetches."""

from __future__ import annotations

import re
from pathlib import Path

from docflow_local.models import FILES, MODELS_POM

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedder_image_unpacks_the_checked_model_from_the_same_pom() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stage = dockerfile.split("\nFROM ${MAVEN_IMAGE} AS model\n", 1)[1].split("\nFROM ", 1)[0]
    pom = MODELS_POM.relative_to(ROOT).as_posix()
    assert f"COPY {pom} /build/pom.xml" in stage
    assert "-DexcludeTransitive=true" in stage
    # Each file is checked against the digest the embedder's vectors were tested with.
    checked = {name: digest for digest, name in re.findall(r'echo "([0-9a-f]{64})  (\S+)"', stage)}
    assert checked == FILES
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=model /models /app/models" in final
    assert "DOCFLOW_LOCAL_MODEL_DIR=/app/models/all-minilm-l6-v2" in final
