"""Escalation policies (GoAlert / PagerDuty style) and the pure step arithmetic.

A policy is ordered steps; each step notifies its targets and waits ``escalate_after``
for an acknowledgement before the next step. After the last step the policy starts over
``repeat`` more times. An ack stops it; a resolution stops it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.durations import Duration


class Target(BaseModel):
    """Exactly one of ``schedule`` (whoever is on call), ``user`` or ``receiver`` (a channel)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str | None = None
    user: str | None = None
    receiver: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [n for n in ("schedule", "user", "receiver") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a target names exactly one of schedule, user, receiver; got {given or 'none'}")
        return self

    def __str__(self) -> str:
        for name in ("schedule", "user", "receiver"):
            value = getattr(self, name)
            if value is not None:
                return f"{name}:{value}"
        raise AssertionError("validated target has no kind")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: tuple[Target, ...] = Field(min_length=1)
    escalate_after: Duration = timedelta(minutes=15)


class EscalationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[Step, ...] = Field(min_length=1)
    #: How many more times to run through all steps after the first pass (GoAlert: 0..5).
    repeat: int = Field(default=0, ge=0, le=5)


class EscalationProgress(BaseModel):
    """Where an alert is in its policy. Serializable: it lives in the engine state.

    ``next_at`` is when step ``step`` (of pass ``round``) fires; ``None`` once the policy
    ran out or stopped. While the alert is muted the timer is frozen in ``paused_for``.
    """

    model_config = ConfigDict(extra="forbid")

    policy: str
    step: int = 0
    round: int = 0
    next_at: datetime | None = None
    paused_for: timedelta | None = None
    stopped: bool = False

    @property
    def running(self) -> bool:
        return not self.stopped and (self.next_at is not None or self.paused_for is not None)

    def advance(self, policy: EscalationPolicy, fired_at: datetime) -> None:
        """Step ``step`` has just notified at ``fired_at``: arm the next one.

        The delay counts from when the step actually fired, so each person paged gets
        the full window to acknowledge even if the worker was down and fired late.
        """
        delay = policy.steps[self.step].escalate_after
        if self.step + 1 < len(policy.steps):
            self.step += 1
        elif self.round < policy.repeat:
            self.step = 0
            self.round += 1
        else:
            self.next_at = None
            return
        self.next_at = fired_at + delay

    def pause(self, now: datetime) -> None:
        if self.next_at is not None and self.paused_for is None:
            self.paused_for = max(self.next_at - now, timedelta(0))
            self.next_at = None

    def resume(self, now: datetime) -> None:
        if self.paused_for is not None:
            self.next_at = now + self.paused_for
            self.paused_for = None

    def stop(self) -> None:
        self.stopped = True
        self.next_at = None
        self.paused_for = None
