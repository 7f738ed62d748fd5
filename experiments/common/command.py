"""What every command does first, before it reads its arguments."""

from __future__ import annotations

import sys
from collections.abc import Callable

from experiments.common.redact import guard_console


def command_args(argv: list[str] | None, help_text: Callable[[], str]) -> list[str] | None:
    """The command's arguments (`sys.argv[1:]` unless given), or None once `--help` (or `-h`)
    has printed `help_text()`. From here on, the secrets among them are masked in everything the
    process prints (`guard_console`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--help" in args or "-h" in args:
        print(help_text())
        return None
    guard_console(args)
    return args
