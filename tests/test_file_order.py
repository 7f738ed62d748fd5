"""The order test files run in: longest first by a full run's seconds, a file's tests as
written; and those seconds written back from the reports."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.file_order import FileSeconds, longest_first

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def items(*nodeids: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_longest_files_first_and_each_files_tests_in_their_order():
    collected = items(
        "tests/test_a.py::one", "tests/test_a.py::two", "tests/test_b.py::one",
        "tests/test_new.py::one", "tests/test_c.py::one", "tests/test_b.py::two",
    )  # fmt: skip
    seconds = {"tests/test_a.py": 5.0, "tests/test_b.py": 60.0, "tests/test_c.py": 20.0}
    longest_first(collected, seconds)
    assert [item.nodeid for item in collected] == [
        "tests/test_b.py::one", "tests/test_b.py::two", "tests/test_c.py::one",
        "tests/test_a.py::one", "tests/test_a.py::two", "tests/test_new.py::one",
    ]  # fmt: skip


def test_each_files_seconds_are_summed_from_its_reports(tmp_path):
    path = tmp_path / "file_seconds.json"
    recorder = FileSeconds(path)
    for nodeid, duration in [
        ("tests/test_a.py::one", 1.25), ("tests/test_a.py::one", 0.5),
        ("tests/test_b.py::one[x]", 3.0), ("tests/test_a.py::two", 2.0),
    ]:  # fmt: skip
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))
    recorder.pytest_sessionfinish()
    assert json.loads(path.read_text()) == {"tests/test_a.py": 3.8, "tests/test_b.py": 3.0}


def test_the_kept_seconds_name_files_that_exist():
    from tests.file_order import FILE_SECONDS

    seconds = json.loads(FILE_SECONDS.read_text())
    root = FILE_SECONDS.parent.parent
    assert seconds and all((root / name).is_file() for name in seconds), [
        name for name in seconds if not (root / name).is_file()
    ]
