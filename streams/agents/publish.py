"""Publishing what the learning core produced: predictions, drift detections, dead letters."""

from __future__ import annotations

import logging
from collections import defaultdict

from streams.learning.records import Prediction, Promotion
from streams.learning.registry import Outcome
from streams.topics import Topics

logger = logging.getLogger(__name__)

#: Largest predictions message written; Kafka's default request limit is 1 MiB.
MESSAGE_LIMIT = 900_000


class Publisher:
    """Collects the predictions of the messages taken together and writes them per model:
    one message (an object, or an array when there are several), because producing a Kafka
    message costs far more than encoding one. Detections and dead letters go out one by one.
    Everything is handed to the producer's buffer without waiting, in order.
    """

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._predictions: defaultdict[str, list[Prediction]] = defaultdict(list)

    def add(self, outcome: Outcome, key: bytes | None) -> None:
        for prediction in outcome.predictions:
            self._predictions[prediction.model].append(prediction)
        for detection in outcome.detections:
            logger.info(
                "drift: %s on %s of %s at n_learned=%d",
                detection.detector, detection.input, detection.model, detection.n_learned,
                extra={"model": detection.model},
            )  # fmt: skip
            self.topics.drift_topic.send_soon(
                key=detection.model.encode(), value=detection.encode()
            )
        for promotion in outcome.promotions:
            self.promotion(promotion)
        for letter in outcome.dead_letters:
            logger.warning(
                "dead letter from %s[%d]@%d: %s",
                letter.topic, letter.partition, letter.offset, letter.error,
                extra={"model": letter.model, "topic": letter.topic,
                       "partition": letter.partition, "offset": letter.offset},
            )  # fmt: skip
            self.topics.dead_letters_topic.send_soon(key=key, value=letter.encode())

    def promotion(self, promotion: Promotion) -> None:
        """Log and publish one promotion (the agents' and the admin route's alike)."""
        logger.info(
            "promotion in %s: %s -> %s (%s)",
            promotion.model, promotion.from_, promotion.to, promotion.reason,
            extra={"model": promotion.model},
        )  # fmt: skip
        self.topics.promotions_topic.send_soon(
            key=promotion.model.encode(), value=promotion.encode()
        )

    def flush(self) -> None:
        """Write the collected predictions, each message under :data:`MESSAGE_LIMIT` bytes."""
        for model, predictions in self._predictions.items():
            key = model.encode()
            chunk: list[bytes] = []
            size = 2
            for prediction in predictions:
                part = prediction.encode()
                if chunk and size + len(part) + 1 > MESSAGE_LIMIT:
                    self._send(key, chunk)
                    chunk, size = [], 2
                chunk.append(part)
                size += len(part) + 1
            self._send(key, chunk)
        self._predictions.clear()

    def _send(self, key: bytes, parts: list[bytes]) -> None:
        value = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
        self.topics.predictions_topic.send_soon(key=key, value=value)
