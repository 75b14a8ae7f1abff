"""How long a worker may trust that it still owns its partitions.

A consumer group member keeps its partitions while the coordinator hears its heartbeats:
the broker expires the member ``session_timeout`` after the last heartbeat it *received*.
So a member whose last successful heartbeat was *sent* at ``t`` is certainly still a member
until ``t + session_timeout`` (clocks run at the same rate; the send precedes the receipt).
A worker that was frozen (SIGSTOP, a VM pause, a swap storm) past that point may have been
replaced, and its late writes would land after its successor's: it must confirm its
membership (a new successful heartbeat or a new assignment) before it writes state.

Kafka's own answer is transactional producer fencing, which the embedded broker does not
support reliably; this lease is the client-side half of the same idea. The pipeline's
producer checks it right before each produce request is written to the socket
(:mod:`stream.sinks.outbox`); what it cannot cover is a freeze inside that check-to-write window
(microseconds, see docs/reliability.md).

Pure: times in, decisions out. :mod:`stream.kafka.batch_source` renews it from the source's
consumer (heartbeats, assignments).
"""

from __future__ import annotations


class MembershipLease:
    __slots__ = ("session_s", "margin_s", "_renewed_at")

    def __init__(self, session_s: float, margin_s: float) -> None:
        if not 0 <= margin_s < session_s:
            raise ValueError(f"margin_s must be in [0, session_s): {margin_s} vs {session_s}")
        self.session_s = session_s
        #: Time kept in hand for the write that follows a successful check.
        self.margin_s = margin_s
        self._renewed_at: float | None = None

    def renewed(self, at: float) -> None:
        """Membership confirmed by something sent at ``at`` (a heartbeat, a group sync)."""
        if self._renewed_at is None or at > self._renewed_at:
            self._renewed_at = at

    @property
    def ever_renewed(self) -> bool:
        return self._renewed_at is not None

    def valid(self, now: float) -> bool:
        return self._renewed_at is not None and now < self._renewed_at + self.session_s - self.margin_s
