"""Every setting and every command is documented in the README."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from runbase.cli import app
from runbase.settings import ENV_PREFIX, Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_every_setting_is_in_the_readme(name):
    assert f"`{ENV_PREFIX}{name.upper()}`" in README


COMMANDS = [
    command.name or getattr(command.callback, "__name__", "") for command in app.registered_commands
] + [
    f"{group.name} {command.name}"
    for group in app.registered_groups
    if group.typer_instance is not None
    for command in group.typer_instance.registered_commands
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command):
    assert f"runbase {command}" in README


def test_the_readme_gives_exactly_two_setup_commands():
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    commands = [line for line in setup.splitlines() if line.startswith("make ")]
    assert [c.split()[1] for c in commands] == ["demo", "test"]
