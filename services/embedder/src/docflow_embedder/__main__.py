"""``python -m docflow_embedder``: run the embedder consumer."""

import uvicorn

from docflow_embedder.bootstrap import bootstrap
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.logs import configure_logging


def main() -> None:
    settings = EmbedderSettings()
    configure_logging("embedder", settings.log_level)
    uvicorn.run(bootstrap(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
