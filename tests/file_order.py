"""Test files run longest first. Each worker takes whole files (`--dist loadfile`), so a long
file taken last keeps one worker busy while the other has nothing left; longest first, the two
end within a short file of each other. The seconds are a full run's, kept in
`tests/file_seconds.json` and written again by `python -m pytest --file-seconds=PATH`; a file
missing there runs after the rest, in collection order."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

FILE_SECONDS = Path(__file__).with_name("file_seconds.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--file-seconds",
        metavar="PATH",
        help="write each test file's seconds (its tests' setup, call and teardown) to PATH as "
        "JSON, the order files run in (tests/file_seconds.json)",
    )


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    """Sort `items` by their file's seconds, longest first; a file's tests keep their order."""
    items.sort(key=lambda item: -seconds.get(file_of(item.nodeid), 0.0))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    seconds = json.loads(FILE_SECONDS.read_text()) if FILE_SECONDS.exists() else {}
    longest_first(items, seconds)


class FileSeconds:
    """Sums each file's test seconds as the reports come in (from the workers, under xdist)
    and writes them when the session ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[file_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        rounded = {name: round(value, 1) for name, value in sorted(self.seconds.items())}
        self.path.write_text(json.dumps(rounded, indent=1) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--file-seconds")
    if path and not hasattr(config, "workerinput"):  # once: where the reports all arrive
        config.pluginmanager.register(FileSeconds(Path(path)), "file-seconds")
