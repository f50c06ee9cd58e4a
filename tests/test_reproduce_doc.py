"""docs/reproduce.md stays true: every ``medsift ...`` command in it parses against the real CLI, and the
configs it names are shipped (and validate with the ``--set`` overrides it gives)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from medsift.cli import app
from medsift.config import load_config, read_yaml, shipped_configs
from medsift.errors import MedsiftError

DOC = Path(__file__).resolve().parents[1] / "docs" / "reproduce.md"


def doc_commands(text: str) -> list[str]:
    """Inline ``medsift ...`` code spans, and ``medsift`` lines of fenced blocks (``\\`` continuations joined)."""
    commands: list[str] = []
    fenced = False
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            block.append(line)
            continue
        commands += re.findall(r"`(medsift [^`]+)`", line)
    joined = "\n".join(block).replace("\\\n", " ")
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("medsift "):
            commands.append(line)
    return commands


COMMANDS = doc_commands(DOC.read_text(encoding="utf-8"))
CLI = typer.main.get_command(app)


def test_the_doc_has_commands_for_both_tasks():
    subcommands = {shlex.split(c)[1] for c in COMMANDS}
    assert {"train", "ensemble", "thresholds", "report", "compare", "predict"} <= subcommands
    assert sum(c.startswith("medsift train ") for c in COMMANDS) >= 12


@pytest.mark.parametrize("command", COMMANDS)
def test_doc_command_parses_against_the_cli(command: str):
    words = shlex.split(command)
    name, args = words[1], words[2:]
    assert name in CLI.commands, f"no subcommand {name!r}: {command}"
    if not args:
        return  # a mention in prose ("`medsift ensemble` command over such runs")
    sub = CLI.commands[name]
    try:
        ctx = sub.make_context(f"medsift {name}", list(args), parent=sub.context_class(CLI))
    except Exception as exc:  # typer's (vendored) click: unknown option, bad value, missing argument
        pytest.fail(f"{command}: {getattr(exc, 'format_message', exc.__str__)()}")
    if name == "train":
        config = ctx.params["config"]
        assert config in shipped_configs(), f"{config} is not a shipped config: {command}"
        try:
            load_config(config, ctx.params.get("set_") or [])
        except MedsiftError as exc:
            if "unknown task/method" not in str(exc):
                raise
            raw = read_yaml(shipped_configs()[config])
            pytest.skip(f"schema task={raw.get('task')} method={raw.get('method')} not registered yet")


def test_crf_config_is_the_bio_recipe_with_a_crf():
    bio = read_yaml(shipped_configs()["impacts-deberta-v3-large-bio"])
    crf = read_yaml(shipped_configs()["impacts-deberta-v3-large-crf"])
    assert crf["model"].pop("crf") is True and bio["model"].pop("crf") is False
    assert crf.pop("output_dir") == "runs/impacts-deberta-v3-large-crf"
    bio.pop("output_dir")
    assert crf == bio
    assert load_config("impacts-deberta-v3-large-crf").model.crf is True
