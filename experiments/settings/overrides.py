"""The one `key=value` command-line parser of the harness (`run`, `report`, `ui`).

Each command lists the keys it takes; an unknown key, a missing `=` or an option is a
`UsageError` naming it, with the closest known key and the allowed ones.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from experiments.common.errors import UsageError


def closest(word: str, options: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `options`, or ''."""
    match = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def parse(
    args: Iterable[str], keys: Iterable[str], *, flags: Iterable[str] = ("--help",)
) -> dict[str, str]:
    """`key=value` arguments -> {key: value}, in order (a later value of a key wins).

    Args:
        args: the command-line arguments (flags already removed).
        keys: the keys the command takes.
        flags: the options it takes, listed in the error for an unknown one.

    Raises:
        UsageError: an option, an argument without `=`, or an unknown key.
    """
    known = list(keys)
    values: dict[str, str] = {}
    for arg in args:
        if arg.startswith("-"):
            raise UsageError(f"unknown option {arg}; options: {', '.join(flags)}")
        if "=" not in arg:
            raise UsageError(f"expected key=value, got {arg!r} (see --help)")
        key, value = arg.split("=", 1)
        key = key.strip().lstrip("+")
        if key not in known:
            section = key.split(".")[0]
            nearby = [k for k in known if k.startswith(section + ".")] or known
            raise UsageError(
                f"unknown key {key!r}{closest(key, known)}; allowed: {', '.join(nearby)}"
            )
        values[key] = value.strip()
    return values


def take_alias(values: dict[str, str], alias: str, key: str, allowed: Iterable[str]) -> None:
    """Move the value of a deprecated key `alias` to `key`, with a note. Its value is
    checked under the name the user typed.

    Raises:
        UsageError: a value outside `allowed`.
    """
    if alias not in values:
        return
    value = values.pop(alias)
    allowed = tuple(allowed)
    if value not in allowed:
        raise UsageError(f"{alias}={value} is not allowed; allowed: {', '.join(allowed)}")
    print(f"note: {alias}= is deprecated; use {key}={value}")
    values[key] = value
