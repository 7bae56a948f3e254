"""``python -m docflow_status``: project events and serve the status API.

``python -m docflow_status rebuild``: rebuild the read model from the topics
(``entrypoints/rebuild.py``), then exit.
"""

import argparse
import asyncio
import dataclasses
import json

import uvicorn

from docflow_shared.logs import configure_logging
from docflow_shared.server import server_options
from docflow_shared.shutdown import bounded
from docflow_status.bootstrap import bootstrap
from docflow_status.entrypoints.rebuild import rebuild
from docflow_status.settings import StatusSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m docflow_status", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "rebuild"],
        help="serve (default): run the service; rebuild: rebuild the read model by replay",
    )
    command = parser.parse_args().command
    settings = StatusSettings()
    configure_logging("status", settings.log_level, settings.log_format)
    if command == "rebuild":
        report = asyncio.run(rebuild(settings))
        print(json.dumps(dataclasses.asdict(report)))
        return
    uvicorn.run(
        bounded(bootstrap(settings), settings.shutdown_timeout_s, "status"),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # HTTP requests in flight (a stream is not waited for); the whole stop
        # is bounded by DOCFLOW_SHUTDOWN_TIMEOUT_S.
        timeout_graceful_shutdown=5,
        **server_options(settings),
    )


if __name__ == "__main__":
    main()
