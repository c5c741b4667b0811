"""The README's first run is made of commands that exist, with flags the ``qtopt`` parser takes."""

from __future__ import annotations

import shlex
from pathlib import Path

from qtopt_learner.app.cli import CONFIG_COMMANDS, build_parser
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_policy.config_files import parse_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def first_run_commands() -> list[list[str]]:
    """Each command of the bash blocks in the README's "First run" section, as argv."""
    section = README.split("## First run")[1].split("\n## ")[0]
    blocks = section.split("```bash\n")[1:]
    lines = [line for block in blocks for line in block.split("```")[0].splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def test_the_readme_starts_with_the_two_commands() -> None:
    head = README.split("```bash\n")[1].split("```")[0].splitlines()
    assert [line.split()[0] for line in head] == ["./scripts/run_main.sh",
                                                  "./scripts/run_tests.sh"]


def test_every_first_run_command_parses() -> None:
    commands = first_run_commands()
    programs = [argv[0] for argv in commands]
    assert programs[0] == "./scripts/run_main.sh" and ".venv/bin/qtopt" in programs, programs
    parser = build_parser()
    for argv in commands:
        if argv[0] == "./scripts/run_main.sh":  # README command 1 is `qtopt run "$@"`
            argv = ["qtopt", "run", *argv[1:]]
        assert argv[0].endswith("qtopt"), argv
        if argv[1] == "run":  # its options are MainJobConfig's: a bad one raises UsageError
            parse_config(MainJobConfig, argv[2:], prog="qtopt run")
        else:
            assert argv[1] not in CONFIG_COMMANDS, argv
            parser.parse_args(argv[1:])  # an unknown flag or value exits with status 2
