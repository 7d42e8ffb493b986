"""The operator's command line answers --help and does not pretend to reconcile."""

from __future__ import annotations

import pytest
from lokistack_operator import main


def test_help_describes_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main.main(["--help"])
    assert exited.value.code == 0
    assert "LokiStack" in capsys.readouterr().out


def test_running_says_the_reconciler_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main([]) == 1
    assert "not built yet" in capsys.readouterr().err
