"""Fixtures for the operator's unit tests: a demo stack and a medium stack with every knob set."""

from __future__ import annotations

import pytest
from lokistack_operator import manifests

from tests.support.operator_stacks import DEMO_SPEC, MEDIUM_SPEC, make_stack


@pytest.fixture
def demo_stack() -> manifests.Stack:
    return make_stack(DEMO_SPEC, name="lokistack-demo", namespace="default")


@pytest.fixture
def medium_stack() -> manifests.Stack:
    return make_stack(MEDIUM_SPEC)


@pytest.fixture
def settings() -> manifests.Settings:
    return manifests.Settings(image="registry.example/lokistack:0.1.0")
