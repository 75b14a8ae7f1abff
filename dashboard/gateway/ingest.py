"""``POST /api/v1/events``: batched ingest from sources, onto ``order-events``.

Order of checks, cheapest first: API key (401) -> rate limit per source (429 +
Retry-After) -> content type (415) -> body size, enforced while the body streams in by
Starlette's ``RequestBodyLimitMiddleware`` on this route (413) -> HMAC signature when
the source must sign or sends one (401) -> per-event validation -> publish with
``acks=all`` -> answer. Responses:

* ``202`` every event accepted and acknowledged by the broker;
* ``207`` some accepted (and acknowledged), some rejected;
* ``422`` none accepted (all rejected);

Rejected events are dead-lettered on ``order-events-dlq`` (the bus's envelope, with the
sending source and the reason; ``orderradar dlq`` lists and re-drives them) before the
answer, in the same acknowledged publish as the accepted ones;
* ``400`` the body is not a JSON array/object or NDJSON, or is empty;
* ``503`` the broker did not acknowledge the events or the dead letters (retry the whole
  batch: events are deduplicated downstream by ``event_id``).

Body of 202/207/422: ``{"accepted": n, "rejected": m, "errors": [{"index", "event_id",
"code", "field", "problem"}, ...]}`` (one entry per problem, at most ``MAX_ERRORS``).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.api_keys import authenticated_source
from dashboard.gateway.batch import BatchError, EventRejection, media_format, parse_batch
from dashboard.gateway.publisher import BusPublisher, PublishError
from dashboard.gateway.responses import error_response, json_response
from dashboard.gateway.sessions import gateway_of
from dashboard.gateway.signatures import SignatureVerdict, verify
from stream.core import dlq
from stream.topics import ORDER_EVENTS_DLQ

MAX_ERRORS = 1000


async def dead_letter(publisher: BusPublisher, rejected: list[EventRejection], sender: str, received: datetime) -> None:
    """Each rejected event on ``order-events-dlq``, keyed by its order; raises ``PublishError``."""
    letters = [
        dlq.dead_letter(
            r.rejection,
            dlq.http_coordinates(r.index, received),
            r.order_id.encode() if r.order_id else None,
            r.value,
            [],
            received,
            sender=sender,
        )
        for r in rejected
    ]
    await asyncio.gather(
        *(publisher.publish_json(ORDER_EVENTS_DLQ, letter.order_id or "", dlq.envelope(letter)) for letter in letters)
    )


async def ingest_events(request: Request) -> Response:
    gateway = gateway_of(request)
    options = gateway.options
    keys = gateway.settings.ingest_keys
    source = authenticated_source(request.headers, keys)

    def answer(response: Response) -> Response:
        gateway.metrics.ingest_requests.inc(source=source or "unauthenticated", status=str(response.status_code))
        return response

    if source is None:
        return answer(
            error_response(
                401,
                "unauthenticated",
                "send X-Source and its API key (Authorization: Bearer)",
                {"WWW-Authenticate": 'Bearer realm="orderradar-ingest"'},
            )
        )
    decision = gateway.ingest_limiter.take(source, gateway.monotonic())
    if not decision.allowed:
        retry_after = str(max(1, math.ceil(decision.retry_after_s)))
        return answer(
            error_response(
                429, "rate_limited", f"source {source} is over its request rate", {"Retry-After": retry_after}
            )
        )
    fmt = media_format(request.headers.get("content-type"))
    if fmt is None:
        return answer(
            error_response(415, "unsupported_media_type", "send application/json (array) or application/x-ndjson")
        )
    try:
        body = await request.body()
    except HTTPException as exc:  # the body limit middleware's 413, raised while streaming
        answer(Response(status_code=exc.status_code))
        raise

    timestamp, signature = request.headers.get("x-signature-timestamp"), request.headers.get("x-signature")
    if source in options.signed_sources or timestamp or signature:
        secret = options.signing_keys.get(source) or keys[source]
        verdict = verify(
            secret.get_secret_value().encode(),
            timestamp,
            signature,
            body,
            gateway.clock().timestamp(),
            options.signature_tolerance_s,
        )
        if verdict is not SignatureVerdict.VALID:
            return answer(error_response(401, f"signature_{verdict.value}", verdict.detail))

    received = gateway.clock()
    try:
        result = parse_batch(body, fmt, source, received, options.max_events_per_batch)
    except BatchError as exc:
        return answer(error_response(400, "bad_batch", str(exc)))
    try:
        await asyncio.gather(
            gateway.publisher.publish_events(result.accepted),
            dead_letter(gateway.publisher, result.rejected, source, received),
        )
    except PublishError as exc:
        return answer(error_response(503, "broker_unavailable", str(exc), {"Retry-After": "5"}))
    gateway.metrics.events_in.inc(len(result.accepted), source=source)
    for rejection in result.rejected:
        gateway.metrics.events_rejected.inc(source=source, code=rejection.rejection.code.value)

    errors = [entry for rejection in result.rejected for entry in rejection.as_dicts()]
    status = 202 if not result.rejected else (207 if result.accepted else 422)
    return answer(
        json_response(
            {
                "accepted": len(result.accepted),
                "rejected": len(result.rejected),
                "errors": errors[:MAX_ERRORS],
                "errors_truncated": len(errors) > MAX_ERRORS,
            },
            status,
        )
    )
