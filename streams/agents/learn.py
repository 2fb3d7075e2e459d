"""The ``learn`` agent: every ``events`` message through the models, predictions out."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from streams.node import Node

logger = logging.getLogger(__name__)

_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS


def register_learn_agent(node: Node) -> None:
    """Attach the agent to the node's Faust app."""
    registry = node.registry
    topics = node.topics

    @node.app.agent(topics.events_topic, name="learn")  # type: ignore[untyped-decorator]
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            outcome = registry.handle_events(
                event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                now=time.time(),
            )
            predictions = outcome.predictions
            if len(predictions) == 1:
                prediction = predictions[0]
                await topics.predictions_topic.send(
                    key=prediction["model"].encode(),
                    value=orjson.dumps(prediction, option=_DUMPS_OPTIONS),
                )
            elif predictions:
                await topics.predictions_topic.send(
                    key=predictions[0]["model"].encode(),
                    value=orjson.dumps(predictions, option=_DUMPS_OPTIONS),
                )
            for letter in outcome.dead_letters:
                logger.warning(
                    "dead letter from %s[%d]@%d: %s",
                    letter["topic"], letter["partition"], letter["offset"], letter["error"],
                )  # fmt: skip
                await topics.dead_letters_topic.send(key=message.key, value=orjson.dumps(letter))
