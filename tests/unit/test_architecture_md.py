"""docs/architecture.md is where a newcomer starts: its links, topics and the
sections code comments cite must hold as the code moves."""

from __future__ import annotations

import re
from pathlib import Path

from docflow_embedder.entrypoints import consumer as embedder_consumer
from docflow_shared import topics
from support.corpus import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"

# The sections code comments and documents cite as (docs/architecture.md, "…").
CITED = (
    "The flow",
    "Services and ports",
    "Gateway",
    "Status service",
    "Status contract (`GET /v1/documents/{id}`)",
    "Event contract",
    "Where is X",
    "Delivery semantics",
    "Trust boundaries",
    "Embedded defaults and production",
)


def _headings(path: Path) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", path.read_text(), re.M)]


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_every_cited_section_is_a_heading() -> None:
    headings = _headings(DOC)
    for section in CITED:
        assert section in headings, section


def test_every_relative_link_leads_somewhere() -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", DOC.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (DOC.parent / path).resolve() if path else DOC
        assert linked.exists(), target
        if anchor:
            assert anchor in {_anchor(h) for h in _headings(linked)}, target


def test_every_topic_and_working_group_is_named() -> None:
    text = DOC.read_text()
    retry = re.compile(r"docflow\.retry\.[a-z]+\.\d\.v1")
    for spec in topics.specs():
        if retry.fullmatch(spec.name):
            continue
        short = spec.name.rsplit(".", 2)[-2:]  # the reindex topics are listed as `.advanced.v1`
        assert f"`{spec.name}`" in text or f"`.{'.'.join(short)}`" in text, spec.name
    assert "`docflow.retry.<service>.<n>.v1`" in text
    for group in (*topics.CONSUMERS, embedder_consumer.REINDEX_GROUP_ID):
        assert f"`{group}`" in text, group
