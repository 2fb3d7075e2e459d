"""Publishing what the learning core produced: predictions, drift detections, dead letters."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from streams.learning.registry import Outcome
from streams.topics import Topics

logger = logging.getLogger(__name__)

_OPTIONS = orjson.OPT_NON_STR_KEYS


def publish(topics: Topics, outcome: Outcome, key: bytes | None) -> None:
    """One predictions message per input message (an array for a batch), one per detection
    and one per dead letter; handed to the producer's buffer without waiting (Faust flushes
    it in the background, in order)."""
    predictions = outcome.predictions
    if predictions:
        value: Any = predictions[0] if len(predictions) == 1 else predictions
        topics.predictions_topic.send_soon(
            key=predictions[0]["model"].encode(), value=orjson.dumps(value, option=_OPTIONS)
        )
    for detection in outcome.detections:
        logger.info(
            "drift: %s on %s of %s at n_learned=%d",
            detection["detector"], detection["input"], detection["model"], detection["n_learned"],
        )  # fmt: skip
        topics.drift_topic.send_soon(
            key=detection["model"].encode(), value=orjson.dumps(detection, option=_OPTIONS)
        )
    for letter in outcome.dead_letters:
        logger.warning(
            "dead letter from %s[%d]@%d: %s",
            letter["topic"], letter["partition"], letter["offset"], letter["error"],
        )  # fmt: skip
        topics.dead_letters_topic.send_soon(key=key, value=orjson.dumps(letter))
