"""Outcome stage: keeps each order's durable ``order_outcomes`` point (see :mod:`stream.core.outcomes`).

Per batch, for every order that accepted an event: compute its outcome against its promise,
write its point (retiring the previous one when the point's time or tags moved) and keep
the outcome in the order's ``extensions.outcome`` (shown in the order snapshot; it also
remembers the point written and the offset of the order's first record, the point's
identity). Writes are idempotent: the same events give the same lines, so a crash replay
or a redelivery rewrites the same points.
"""

from __future__ import annotations

from typing import Any

from stream.core.order_state import OrderState
from stream.core.outcomes import (
    OUTCOME_EXTENSION,
    PointKey,
    extension_value,
    order_outcome,
    outcome_point,
    point_key,
    retired_point,
)
from stream.core.sla import SlaPolicy, SlaRules
from stream.sinks.line_protocol import point_line
from stream.stage_api import BatchContext


class OutcomeStage:
    """See the module doc."""

    name = OUTCOME_EXTENSION

    def __init__(self, rules: SlaRules) -> None:
        self.policy = SlaPolicy(rules)

    async def process(self, ctx: BatchContext) -> None:
        first_offsets: dict[str, int] = {}
        for item in ctx.accepted:
            order_id, offset = item.event.order_id, item.record.offset
            if offset < first_offsets.get(order_id, offset + 1):
                first_offsets[order_id] = offset
        for order_id, offset in first_offsets.items():
            order = ctx.order(order_id)
            if order is not None:
                self._update(ctx, order, offset)

    def _update(self, ctx: BatchContext, order: OrderState, offset: int) -> None:
        previous: dict[str, Any] = order.extensions.get(OUTCOME_EXTENSION) or {}
        first_offset = previous.get("first_offset")
        if not isinstance(first_offset, int):
            first_offset = offset
        outcome = order_outcome(order, self.policy)
        key = point_key(order, outcome, first_offset)
        old = PointKey.from_list(previous.get("point"))
        if old is not None and old != key:
            ctx.lines.append(point_line(retired_point(old, order.order_id)))
        if key is not None:
            ctx.lines.append(point_line(outcome_point(key, outcome, order.order_id)))
        value = extension_value(outcome, key, first_offset)
        if value != previous:
            ctx.update_order(order.with_extension(OUTCOME_EXTENSION, value))


__all__ = ["OutcomeStage"]
