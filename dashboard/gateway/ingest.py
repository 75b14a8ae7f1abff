"""``POST /api/v1/events``: batched ingest from sources, onto ``order-events``.

Order of checks, cheapest first: API key (401) -> rate limit per source (429 +
Retry-After) -> content type (415) -> body size, enforced while the body streams in by
Starlette's ``RequestBodyLimitMiddleware`` on this route (413) -> HMAC signature when
the source must sign or sends one (401) -> per-event validation -> publish with
``acks=all`` -> answer. Responses:

* ``202`` every event accepted and acknowledged by the broker;
* ``207`` some accepted (and acknowledged), some rejected;
* ``422`` none accepted (all rejected);
* ``400`` the body is not a JSON array/object or NDJSON, or is empty;
* ``503`` the broker did not acknowledge (retry the whole batch: events are deduplicated
  downstream by ``event_id``).

Body of 202/207/422: ``{"accepted": n, "rejected": m, "errors": [{"index", "event_id",
"code", "field", "problem"}, ...]}`` (one entry per problem, at most ``MAX_ERRORS``).
"""

from __future__ import annotations

import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dashboard.gateway.api_keys import authenticated_source
from dashboard.gateway.batch import BatchError, media_format, parse_batch
from dashboard.gateway.publisher import PublishError
from dashboard.gateway.responses import error_response, json_response
from dashboard.gateway.sessions import gateway_of
from dashboard.gateway.signatures import SignatureVerdict, verify

MAX_ERRORS = 1000


async def ingest_events(request: Request) -> Response:
    gateway = gateway_of(request)
    options = gateway.options
    keys = gateway.settings.ingest_keys
    source = authenticated_source(request.headers, keys)

    def answer(response: Response) -> Response:
        gateway.metrics.ingest_requests.inc(source=source or "unauthenticated", status=str(response.status_code))
        return response

    if source is None:
        return answer(error_response(401, "unauthenticated", "send X-Source and its API key (Authorization: Bearer)",
                                     {"WWW-Authenticate": 'Bearer realm="orderradar-ingest"'}))
    decision = gateway.ingest_limiter.take(source, gateway.monotonic())
    if not decision.allowed:
        retry_after = str(max(1, math.ceil(decision.retry_after_s)))
        return answer(error_response(429, "rate_limited", f"source {source} is over its request rate",
                                     {"Retry-After": retry_after}))
    fmt = media_format(request.headers.get("content-type"))
    if fmt is None:
        return answer(error_response(415, "unsupported_media_type",
                                     "send application/json (array) or application/x-ndjson"))
    try:
        body = await request.body()
    except HTTPException as exc:  # the body limit middleware's 413, raised while streaming
        answer(Response(status_code=exc.status_code))
        raise

    timestamp, signature = request.headers.get("x-signature-timestamp"), request.headers.get("x-signature")
    if source in options.signed_sources or timestamp or signature:
        secret = options.signing_keys.get(source) or keys[source]
        verdict = verify(secret.get_secret_value().encode(), timestamp, signature, body,
                         gateway.clock().timestamp(), options.signature_tolerance_s)
        if verdict is not SignatureVerdict.VALID:
            return answer(error_response(401, f"signature_{verdict.value}", verdict.detail))

    try:
        result = parse_batch(body, fmt, source, gateway.clock(), options.max_events_per_batch)
    except BatchError as exc:
        return answer(error_response(400, "bad_batch", str(exc)))
    if result.accepted:
        try:
            await gateway.publisher.publish_events(result.accepted)
        except PublishError as exc:
            return answer(error_response(503, "broker_unavailable", str(exc), {"Retry-After": "5"}))
    gateway.metrics.events_in.inc(len(result.accepted), source=source)
    for rejection in result.rejected:
        gateway.metrics.events_rejected.inc(source=source, code=rejection.rejection.code.value)

    errors = [entry for rejection in result.rejected for entry in rejection.as_dicts()]
    status = 202 if not result.rejected else (207 if result.accepted else 422)
    return answer(json_response(
        {"accepted": len(result.accepted), "rejected": len(result.rejected), "errors": errors[:MAX_ERRORS],
         "errors_truncated": len(errors) > MAX_ERRORS},
        status,
    ))
