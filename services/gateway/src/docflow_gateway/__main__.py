"""``python -m docflow_gateway``: serve the upload API.

``python -m docflow_gateway reindex …``: re-embed with another model (``reindex_cli``).
``python -m docflow_gateway redrive …``: start dead-lettered documents again (``redrive_cli``).
"""

import sys

import uvicorn
from fastapi import FastAPI

from docflow_gateway.bootstrap import bootstrap
from docflow_gateway.settings import GatewaySettings
from docflow_shared.logs import configure_logging
from docflow_shared.shutdown import bounded


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    # Several worker processes share the port; each builds its own app from
    # the same environment (``serve``).
    app: FastAPI | str = (
        bounded(bootstrap(settings), settings.shutdown_timeout_s, "gateway")
        if settings.workers == 1
        else "docflow_gateway.__main__:serve"
    )
    uvicorn.run(
        app,
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Finish in-flight uploads on SIGTERM, but not forever (the whole stop
        # is bounded by DOCFLOW_SHUTDOWN_TIMEOUT_S).
        timeout_graceful_shutdown=10,
    )


def serve() -> FastAPI:
    """The app of one worker process (logging set up in that process)."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    return bounded(bootstrap(settings), settings.shutdown_timeout_s, "gateway")


if __name__ == "__main__":
    if sys.argv[1:2] == ["reindex"]:
        from docflow_gateway import reindex_cli

        sys.exit(reindex_cli.main(sys.argv[2:]))
    if sys.argv[1:2] == ["redrive"]:
        from docflow_gateway import redrive_cli

        sys.exit(redrive_cli.main(sys.argv[2:]))
    main()
