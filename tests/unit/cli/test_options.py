"""`docflow --version` and shell completion, from the installed command."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOCFLOW = str(Path(sys.executable).parent / "docflow")


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCFLOW, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_version_names_the_command_and_the_client() -> None:
    answer = run("--version")
    assert answer.returncode == 0, answer.stderr
    expected = f"docflow {version('docflow-cli')} (client {version('docflow-client')})"
    assert answer.stdout.strip() == expected


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_completes_the_commands(shell: str) -> None:
    answer = run("--show-completion", shell)
    assert answer.returncode == 0, answer.stderr
    assert "_DOCFLOW_COMPLETE" in answer.stdout
    completed = subprocess.run(
        [DOCFLOW],
        env={"_DOCFLOW_COMPLETE": "complete_bash", "COMP_WORDS": "docflow up", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "upload" in completed.stdout.split()
