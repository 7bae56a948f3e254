"""``python -m docflow_gateway``: serve the upload API.

``python -m docflow_gateway reindex …`` and ``… redrive …``: the same as
``docflow reindex …`` and ``docflow redrive …`` (``docflow_cli``), kept for
scripts written before the ``docflow`` command existed.

``python -m docflow_gateway webhooks``: the webhook dispatcher
(``entrypoints/dispatcher.py``), a process and Deployment of its own.
"""

import sys

import uvicorn
from fastapi import FastAPI

from docflow_gateway.bootstrap import bootstrap
from docflow_gateway.settings import GatewaySettings
from docflow_shared.logs import configure_logging
from docflow_shared.server import server_options
from docflow_shared.shutdown import bounded


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
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
        **server_options(settings),
    )


def serve() -> FastAPI:
    """The app of one worker process (logging set up in that process)."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_format)
    server_options(settings)  # this worker's protocol gets the configured limits
    return bounded(bootstrap(settings), settings.shutdown_timeout_s, "gateway")


if __name__ == "__main__":
    if sys.argv[1:2] in (["reindex"], ["redrive"]):
        from docflow_cli.main import app

        app(args=sys.argv[1:], prog_name="python -m docflow_gateway")
    elif sys.argv[1:] == ["webhooks"]:
        from docflow_gateway.entrypoints.dispatcher import bootstrap_webhooks
        from docflow_shared.serving import run

        run("webhooks", GatewaySettings(), bootstrap_webhooks, uvicorn.run)
    else:
        main()
