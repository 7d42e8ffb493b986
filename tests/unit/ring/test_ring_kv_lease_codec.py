"""The Lease format of docs/ring.md: names, labels, encodings and the round trip."""

from __future__ import annotations

import datetime
import random
import re

import pytest
from lokistack.ring import model, tokens
from lokistack.ring.kv import lease_codec

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("instance_id", "expected"),
    [
        ("ingester-0", "lokistack-ring-ingester-ingester-0"),
        ("lokistack-ingester-2", "lokistack-ring-ingester-lokistack-ingester-2"),
    ],
)
def test_lease_name_keeps_dns_ids(instance_id: str, expected: str) -> None:
    assert lease_codec.lease_name("lokistack-ring", "ingester", instance_id) == expected


@pytest.mark.parametrize("instance_id", ["Ingester_0", "host.example.com", "---", "a" * 300, "é"])
def test_lease_name_sanitizes_and_disambiguates(instance_id: str) -> None:
    name = lease_codec.lease_name("lokistack-ring", "ingester", instance_id)
    assert DNS_1123.match(name), name
    assert len(name) <= 253
    assert name != lease_codec.lease_name("lokistack-ring", "ingester", instance_id + "x")
    assert lease_codec.lease_name("p", "r", "Ingester-0") != lease_codec.lease_name(
        "p", "r", "ingester-0"
    )


def test_label_values() -> None:
    assert lease_codec.label_value("ingester") == "ingester"
    long = lease_codec.label_value("x" * 100)
    assert len(long) <= 63 and long != lease_codec.label_value("x" * 101)
    assert re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", lease_codec.label_value("a b/c"))
    assert lease_codec.label_selector("lokistack-ring", "ingester") == (
        "lokistack.dev/ring=ingester,lokistack.dev/ring-prefix=lokistack-ring"
    )


def test_tokens_encoding() -> None:
    drawn = tuple(tokens.generate_tokens(128, set(), random.Random(5)))
    encoded = lease_codec.encode_tokens(drawn)
    assert len(encoded) == 684
    assert lease_codec.decode_tokens(encoded) == drawn
    assert lease_codec.encode_tokens((1, 2**32 - 1)) == "AAAAAf////8="
    assert lease_codec.decode_tokens("") == ()
    with pytest.raises(ValueError):
        lease_codec.decode_tokens("AAA=")  # 2 bytes
    with pytest.raises(ValueError):
        lease_codec.decode_tokens("not base64!")


def test_micro_time_always_has_six_digits() -> None:
    assert lease_codec.format_micro_time(1_700_000_000.0) == "2023-11-14T22:13:20.000000Z"
    assert lease_codec.format_micro_time(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"
    assert lease_codec.parse_micro_time("2023-11-14T22:13:20.250000Z") == 1_700_000_000.25
    assert lease_codec.parse_micro_time("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert lease_codec.parse_micro_time(None) is None


def test_manifest_round_trip() -> None:
    instance = model.InstanceDesc.create(
        "Ingester_0",
        "10.1.2.3:9095",
        zone="eu-1a",
        state=model.InstanceState.LEAVING,
        tokens=[9, 3, 7],
        heartbeat=1_700_000_100.5,
        registered=1_700_000_000.0,
    )
    lease = lease_codec.lease_manifest(
        instance,
        namespace="loki",
        lease_prefix="lokistack-ring",
        ring_name="ingester",
        lease_duration=datetime.timedelta(minutes=1),
    )
    assert lease["metadata"]["name"] == lease_codec.lease_name(
        "lokistack-ring", "ingester", "Ingester_0"
    )
    assert lease["metadata"]["labels"][lease_codec.LABEL_RING] == "ingester"
    annotations = lease["metadata"]["annotations"]
    assert annotations[lease_codec.ANNOTATION_STATE] == "LEAVING"
    assert annotations[lease_codec.ANNOTATION_FORMAT] == "1"
    assert lease["spec"] == {
        "holderIdentity": "Ingester_0",
        "leaseDurationSeconds": 60,
        "acquireTime": "2023-11-14T22:13:20.000000Z",
        "renewTime": "2023-11-14T22:15:00.500000Z",
    }
    assert lease_codec.instance_from_lease(lease) == instance


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "holderIdentity"), ""),
        (("metadata", "annotations", lease_codec.ANNOTATION_STATE), "GONE"),
        (("metadata", "annotations", lease_codec.ANNOTATION_TOKENS), "AAA="),
    ],
)
def test_invalid_leases_are_rejected(path: tuple[str, ...], value: str) -> None:
    lease = lease_codec.lease_manifest(
        model.InstanceDesc.create("a", "a:1", tokens=[1]),
        namespace="n",
        lease_prefix="p",
        ring_name="r",
        lease_duration=datetime.timedelta(seconds=5),
    )
    target = lease
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError):
        lease_codec.instance_from_lease(lease)


def test_minimal_lease_defaults() -> None:
    lease = {
        "metadata": {"annotations": {lease_codec.ANNOTATION_STATE: "ACTIVE"}},
        "spec": {"holderIdentity": "x", "acquireTime": "2023-11-14T22:13:20.000000Z"},
    }
    desc = lease_codec.instance_from_lease(lease)
    assert (desc.id, desc.addr, desc.tokens, desc.heartbeat) == ("x", "", (), 0.0)
    assert desc.registered == 1_700_000_000.0
