"""Which log files to attach to a failing test's report, by the fixture that started them.

Fixtures that start processes register their log files here; the root conftest's report hook
attaches the tail of each to any failing test that used the fixture.
"""

from __future__ import annotations

import pathlib

BY_FIXTURE: dict[str, dict[str, pathlib.Path]] = {}


def register(fixture_name: str, logs: dict[str, pathlib.Path]) -> None:
    BY_FIXTURE.setdefault(fixture_name, {}).update(logs)
