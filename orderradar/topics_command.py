"""``orderradar topics``: pre-create every topic with its explicit partition count."""

from __future__ import annotations

import argparse

from config.settings import Settings
from stream.kafka.admin import ensure_topics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker")


def run(args: argparse.Namespace, settings: Settings) -> int:
    for spec in ensure_topics(settings, timeout_s=args.timeout):
        print(f"{spec.name}\t{spec.partitions} partitions")
    return 0
