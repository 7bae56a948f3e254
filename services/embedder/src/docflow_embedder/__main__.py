"""``python -m docflow_embedder``: run the embedder consumer."""

import uvicorn

from docflow_embedder.bootstrap import bootstrap
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.logs import configure_logging
from docflow_shared.shutdown import bounded


def main() -> None:
    settings = EmbedderSettings()
    configure_logging("embedder", settings.log_level, settings.log_format)
    app = bounded(bootstrap(settings), settings.shutdown_timeout_s, "embedder")
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
