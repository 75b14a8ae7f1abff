"""Tiered alerting: routing, grouping, inhibition, silences, escalation and channels."""
