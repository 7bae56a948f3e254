"""``python -m docflow_status``: project events and serve the status API."""

import uvicorn

from docflow_shared.logs import configure_logging
from docflow_status.bootstrap import bootstrap
from docflow_status.settings import StatusSettings


def main() -> None:
    settings = StatusSettings()
    configure_logging("status", settings.log_level)
    uvicorn.run(
        bootstrap(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
