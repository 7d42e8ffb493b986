"""The operator's command line: --help, defaults, and flags that reach the reconciler."""

from __future__ import annotations

import pathlib

import pytest
from lokistack_operator import main


def test_help_describes_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "LokiStack" in out
    for flag in ("--namespace", "--kubeconfig", "--image", "--liveness", "--log-level"):
        assert flag in out


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOKISTACK_IMAGE", raising=False)
    monkeypatch.delenv("LOKISTACK_OPERATOR_STATUS_INTERVAL", raising=False)
    args = main.build_parser().parse_args([])
    assert args.namespace == []  # all namespaces
    assert args.kubeconfig is None
    assert args.image == "lokistack:latest"
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert args.log_level == "info"
    assert args.status_interval == 30
    assert args.ingester_shutdown_timeout == 300


def test_image_from_the_environment_and_repeated_namespaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOKISTACK_IMAGE", "registry.example/lokistack:1.2.3")
    monkeypatch.setenv("LOKISTACK_OPERATOR_STATUS_INTERVAL", "2")
    args = main.build_parser().parse_args(["--namespace", "a", "--namespace", "b"])
    assert args.image == "registry.example/lokistack:1.2.3"
    assert args.namespace == ["a", "b"]
    assert args.status_interval == 2


def test_context_carries_image_and_timings(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443', "
        "insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: secret-token}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    args = main.build_parser().parse_args(
        ["--kubeconfig", str(kubeconfig), "--image", "img:1", "--ingester-shutdown-timeout", "7"]
    )
    ctx = main.build_context(args)
    assert ctx.settings.image == "img:1"
    assert ctx.timing.shutdown_timeout == 7
    assert ctx.kube.api.configuration.host == "https://127.0.0.1:6443"


def test_bad_kubeconfig_is_reported(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing-here"
    assert main.main(["--kubeconfig", str(missing), "--log-level", "error"]) == 2
    assert "cannot load the Kubernetes configuration" in capsys.readouterr().err


def test_non_positive_interval_is_rejected() -> None:
    with pytest.raises(SystemExit):
        main.build_parser().parse_args(["--status-interval", "0"])
