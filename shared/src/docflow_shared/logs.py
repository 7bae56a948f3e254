"""Logging set-up shared by the services' entry points.

``text`` (the default, for a terminal: ``make run``): one line per record
naming the service. ``json`` (containers, Kubernetes): one JSON object per
line with ``time``, ``service``, ``level``, ``logger``, ``message`` and, when
known, ``document_id``, ``correlation_id``, ``trace_id`` and ``span_id``
(``telemetry.py`` says where they come from).
"""

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

from docflow_shared import telemetry

LogFormat = Literal["text", "json"]


class _Context(logging.Filter):
    """Adds the service, the document and correlation ids and the trace to each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.document_id = telemetry.document_id.get()
        record.correlation_id = telemetry.correlation_id.get()
        record.trace_id, record.span_id = telemetry.current_ids()
        return True


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Records on stderr naming the service, the same format everywhere."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{service}{levelname}{name}{message}"
                "{document_id}{correlation_id}{trace_id}{span_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # aiokafka reports every reconnect attempt at WARNING/ERROR; the services
    # report what matters (readiness, failed publishes) themselves.
    for noisy in ("aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger().level, logging.WARNING))
