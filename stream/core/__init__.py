"""The pure core: state machine, SLA rules, delays, incidents, flow and data-quality checks.

Data and time in, decisions out; no I/O.
"""
