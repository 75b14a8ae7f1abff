"""Tiered alerting: routing, grouping, inhibition, silences, escalation and channels.

Pure core (no clock, no I/O; everything takes ``now``):
``engine.AlertEngine`` drives ``grouping`` (route, group, flush), ``muting`` (silences,
inhibition), ``paging`` (escalation, on-call) and ``tier``, and returns through ``emitter``
the ``decisions`` (``Notification`` to send, ``AlertEvent`` to record).
``outbox.NotificationOutbox`` holds what is still to be delivered.

I/O shell: ``delivery.DeliveryStage`` sends through ``channels`` (webhook, Slack,
DingTalk, WeCom, email, log) with timeouts and retries. ``policy.load_policy`` reads
``config/alerting.yaml``; ``links`` signs one-click ack/resolve links.
"""
