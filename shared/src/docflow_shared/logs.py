"""Logging set-up shared by the services' entry points."""

import logging


def configure_logging(service: str, level: str = "INFO") -> None:
    """One-line records on stderr naming the service, the same format everywhere."""
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # aiokafka reports every reconnect attempt at WARNING/ERROR; the services
    # report what matters (readiness, failed publishes) themselves.
    for noisy in ("aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger().level, logging.WARNING))
