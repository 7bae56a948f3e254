"""`docflow --version` and shell completion, from the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOCFLOW = str(Path(sys.executable).parent / "docflow")


def run(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCFLOW, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


# Typer's switch for naming the shell instead of detecting the parent one (which
# fails where the tests run without a shell, e.g. in the background).
NAMED_SHELL = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
# What each shell's script registers the command with.
REGISTERS = {"bash": "complete -o", "zsh": "compdef", "fish": "complete --command docflow"}


def test_version_names_the_command_and_the_client() -> None:
    answer = run("--version")
    assert answer.returncode == 0, answer.stderr
    expected = f"docflow {version('docflow-cli')} (client {version('docflow-client')})"
    assert answer.stdout.strip() == expected


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_script_completes_the_commands(shell: str) -> None:
    answer = run("--show-completion", shell, env=NAMED_SHELL)
    assert answer.returncode == 0, answer.stderr
    assert "_DOCFLOW_COMPLETE" in answer.stdout
    assert REGISTERS[shell] in answer.stdout
    completed = subprocess.run(
        [DOCFLOW],
        env={"_DOCFLOW_COMPLETE": "complete_bash", "COMP_WORDS": "docflow up", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "upload" in completed.stdout.split()
