"""``python -m docflow_gateway``: serve the upload API."""

import uvicorn

from docflow_gateway.bootstrap import bootstrap
from docflow_gateway.settings import GatewaySettings
from docflow_shared.logs import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    uvicorn.run(
        bootstrap(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Finish in-flight uploads on SIGTERM, but not forever.
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
