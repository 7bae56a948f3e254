"""``python -m docflow_embedder``: run the embedder consumer."""

import uvicorn

from docflow_embedder.bootstrap import bootstrap
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.serving import run


def main() -> None:
    run("embedder", EmbedderSettings(), bootstrap, uvicorn.run)


if __name__ == "__main__":
    main()
