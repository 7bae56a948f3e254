"""``python -m docflow_extractor``: run the extractor consumer."""

import uvicorn

from docflow_extractor.bootstrap import bootstrap
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.logs import configure_logging
from docflow_shared.shutdown import bounded


def main() -> None:
    settings = ExtractorSettings()
    configure_logging("extractor", settings.log_level, settings.log_format)
    app = bounded(bootstrap(settings), settings.shutdown_timeout_s, "extractor")
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
