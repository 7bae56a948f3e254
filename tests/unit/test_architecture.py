"""The shape of the code itself: modules a reader can hold in mind, and layers
that import one way (issue 19). Read by grimp, the import-graph library behind
import-linter, so deferred imports inside functions count too."""

from __future__ import annotations

import graphlib

import grimp
import pytest

from support.corpus import REPO_ROOT

pytestmark = pytest.mark.unit

PACKAGES = (
    "docflow_shared",
    "docflow_gateway",
    "docflow_client",
    "docflow_cli",
    "docflow_extractor",
    "docflow_embedder",
    "docflow_status",
    "docflow_local",
)
SOURCES = [
    REPO_ROOT / "shared" / "src",
    *sorted((REPO_ROOT / "services").glob("*/src")),
    REPO_ROOT / "client" / "src",
    REPO_ROOT / "cli" / "src",
]
# A module longer than this has become a room where everything happens.
MAX_LINES = 450


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {
        path.relative_to(REPO_ROOT): len(path.read_text().splitlines())
        for src in SOURCES
        for path in src.rglob("*.py")
    }
    assert sizes, f"no modules found under {SOURCES}"
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


def test_no_import_cycle_among_our_modules() -> None:
    # Imports under `if TYPE_CHECKING:` count too: a cycle hidden from the
    # interpreter is still two modules that cannot be read one before the other.
    graph = grimp.build_graph(*PACKAGES)
    sorter = graphlib.TopologicalSorter(
        {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    )
    try:
        sorter.prepare()
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")
