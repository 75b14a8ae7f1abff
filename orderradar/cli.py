"""``orderradar``: one console script, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args, settings) -> int``;
it is imported only when its command runs, so ``orderradar --help`` stays fast and a
command's heavy dependencies (Faust, Dash) load only where they are needed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType

from config.settings import SettingsError, load_settings

#: command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("orderradar.devstack.stack", "start the whole local stack (broker, influxd, worker, web, simulator)"),
    "worker": ("orderradar.worker_command", "run a Faust stream worker"),
    "web": ("dashboard.web_command", "run the web server (API, WebSockets, war-room, tracking pages)"),
    "simulate": ("orderradar.simulator.command", "generate realistic order traffic"),
    "import": ("orderradar.import_command", "import an OMS/WMS export (CSV or JSON Lines) onto the bus"),
    "dlq": ("orderradar.dlq_command", "inspect and re-drive dead-lettered events"),
    "topics": ("orderradar.topics_command", "create every topic with its partition count"),
    "bench": ("orderradar.bench.command", "measure throughput, latency and recovery against a baseline"),
}


def _load(module_name: str) -> ModuleType:
    return importlib.import_module(module_name)


def _chosen_command(argv: list[str]) -> str | None:
    return next((arg for arg in argv if arg in COMMANDS), None)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderradar",
        description="Real-time order tracking. Settings come from ORDERRADAR_* environment variables.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module_name)
        if name == _chosen_command(argv):
            # Only the chosen command's module is imported to add its arguments.
            try:
                _load(module_name).add_arguments(command)
            except ModuleNotFoundError as exc:
                if exc.name and module_name.startswith(exc.name):
                    command.set_defaults(_missing=str(exc))
                else:
                    raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # kafka-python narrates every connection at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger().level))
    if getattr(args, "_missing", None):
        parser.error(f"command {args.command!r} is not available: {args._missing}")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"orderradar: {exc}", file=sys.stderr)
        return 2
    # Every log line and uncaught traceback of this process, children's logs included
    # (imported here: httpx would slow down ``--help``).
    from alerting.redaction import configured_secrets, install_log_redaction

    install_log_redaction(configured_secrets(settings.model_dump(), os.environ))
    module = _load(args._module)
    try:
        return int(module.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
