"""The promises of the README kept on a secured Kafka: SASL_SSL with SCRAM-SHA-512, TLS with
the local CA, and ACLs that grant the node's user its own topics and groups only.

Each test here is a test of the plaintext suite, run again as is on the secure broker: a node
learning a replayed stream as River does, a snapshot handed over between two nodes through
the snapshots topic, and kill -9 recovery, alone and with two nodes.
"""

from __future__ import annotations

import pytest

from tests.integration import test_learning, test_recovery, test_scale
from tests.integration.conftest import NodeFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_replay_and_learning_match_river(start_secure_node: NodeFactory) -> None:
    test_learning.test_phishing_replayed_through_kafka_matches_progressive_val_score(
        start_secure_node, batch=100
    )


def test_a_snapshot_is_handed_over_between_two_nodes(start_secure_node: NodeFactory) -> None:
    test_scale.test_a_large_snapshot_travels_whole_through_the_topic_to_another_node(
        start_secure_node
    )


def test_kill_9_one_of_two_nodes(start_secure_node: NodeFactory) -> None:
    test_scale.test_kill_9_one_of_two_nodes_mid_stream_loses_and_doubles_nothing(start_secure_node)


def test_kill_9_anywhere(start_secure_node: NodeFactory) -> None:
    test_recovery.test_kill_9_anywhere_loses_nothing_and_learns_nothing_twice(start_secure_node)
