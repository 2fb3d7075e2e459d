"""The core's murmur2 is Kafka's: the partition every Kafka client picks for a model."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.learning.partitioning import murmur2, partition_for


@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(st.binary(max_size=64))
def test_murmur2_agrees_with_aiokafka(data: bytes) -> None:
    assert murmur2(data) & 0x7FFFFFFF == aiokafka_murmur2(data) & 0x7FFFFFFF


def test_a_model_name_lands_where_the_java_client_puts_it() -> None:
    # Kafka's own test vector (Utils.murmur2 of "21" is -973932308), and the demo's models
    # on 12 partitions as the Java client and aiokafka place them.
    assert murmur2(b"21") == -973932308 & 0xFFFFFFFF
    assert [partition_for(name, 12) for name in ("phishing", "segments", "trump")] == [5, 10, 7]
