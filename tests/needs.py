"""What a test needs from the machine (a binary, a server, photos), and what happens without it:
skipped on a developer's machine, but failed where `CI` is set, since `.ci/run` installs every
one of them (a broken install must not pass CI green). Backends not installed on purpose (torch)
are skipped everywhere and named in the run's summary (`tests/conftest.py`)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
UNTESTED = "backend untested: "  # a skip reason's start, gathered into the run's summary


def missing(what: str) -> NoReturn:
    """Stop the test for want of `what` (e.g. "chromium is not installed"): a failure in CI, a
    skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what}, and CI installs it (.ci/run)", pytrace=False)
    pytest.skip(what)


def needs(what: str, present: bool) -> pytest.MarkDecorator:
    """A mark for a test that needs something: without it (`present` false), `missing(what)` at
    the test's setup (`tests/conftest.py`)."""
    return pytest.mark.needs(what, present)


def untested_backend(backend: str, why: str) -> pytest.MarkDecorator:
    """A skip for a Keras backend that is not installed, named again in the run's summary."""
    return pytest.mark.skip(reason=f"{UNTESTED}{backend} ({why})")
