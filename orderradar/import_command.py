"""``orderradar import FILE --mapping M.yaml [--rate N]``: load an export onto the bus.

Reads a CSV or JSON Lines export, maps each row with :mod:`stream.core.importer`, produces the
valid events to ``order-events`` (key = order_id, the canonical JSON of the event) in
batches, as fast as possible or paced at ``--rate`` events per second, and reports
progress, every rejected row (row number and reasons; all of them with ``--rejects
FILE`` as JSON Lines) and a summary. Bad rows never stop the import.

``--dry-run`` produces nothing: it maps and validates every row and runs the valid events
through the worker's state machine (:mod:`stream.core.transition_report`), then reports the
transitions it would apply per ``from -> to`` pair (with the stages each skip leaves *not
scanned*) and the impossible sequences it would refuse, not only the format errors.

``--replay`` marks every record as a replay of history (header ``orderradar-replay``, see
:mod:`stream.core.replay`): the worker judges it in the events' own time, and what it raises
is recorded, marked replay, without paging anyone. Use it without ``--rate`` (full speed).

Exit codes: 0 all rows imported (or skipped by the mapping), 3 some rows were rejected
(the rest imported), 2 the mapping or the file cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from config.client_auth import kafka_auth
from config.rules import RuleFileError
from config.settings import Settings
from stream.contract import OrderEvent, Problem
from stream.core.importer import ImportMapping, RowRejection, Skipped, load_mapping, map_row
from stream.core.replay import replay_header, replay_id
from stream.core.transition_report import TransitionReport
from stream.sinks.outbox import Outbox, OutRecord
from stream.topics import ORDER_EVENTS

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_SOME_REJECTED = 3

#: Events produced per request when not paced.
CHUNK = 5000


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    seconds: float = 0.0
    #: Dry runs: what the state machine makes of the valid events.
    transitions: TransitionReport | None = None

    def line(self, path: Path) -> str:
        rate = self.imported / self.seconds if self.seconds > 0 else 0.0
        return (
            f"imported {self.imported:,} events from {path} ({self.rows:,} rows: {self.skipped:,} skipped "
            f"by the mapping, {self.rejected:,} rejected) in {self.seconds:.1f}s ({rate:,.0f}/s)"
        )


def read_rows(path: Path, mapping: ImportMapping) -> Iterator[tuple[int, Mapping[str, Any] | RowRejection]]:
    """(row number, row) in file order; the number is the file's line number (CSV: of the
    row's last line, the header being line 1)."""
    if mapping.file_format(path) == "csv":
        with path.open(encoding=mapping.encoding, newline="") as handle:
            reader = csv.DictReader(handle, delimiter=mapping.delimiter)
            for row in reader:
                yield reader.line_num, row
        return
    with path.open("rb") as binary:
        for number, raw in enumerate(binary, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield number, RowRejection(number, (Problem("(row)", f"not JSON: {exc}"),))
                continue
            if not isinstance(obj, dict):
                yield number, RowRejection(number, (Problem("(row)", "not a JSON object"),))
                continue
            yield number, obj


class _Pacer:
    """Paces producing at ``rate`` events per second (0: unpaced)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()

    async def after(self, sent: int) -> None:
        if self.rate > 0:
            due = self.start + sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the output, not waiting for a condition


async def import_file(
    settings: Settings,
    path: Path,
    mapping: ImportMapping,
    *,
    rate: float = 0.0,
    dry_run: bool = False,
    rejects: TextIO | None = None,
    err: TextIO | None = None,
    progress_every_s: float = 2.0,
    max_reject_lines: int = 20,
    now: datetime | None = None,
    replay: str | None = None,
) -> ImportReport:
    now = now or datetime.now(UTC)
    err = err or sys.stderr
    topic = settings.topic(ORDER_EVENTS)
    report = ImportReport(transitions=TransitionReport() if dry_run else None)
    outbox = Outbox(settings.kafka_bootstrap, client_id="orderradar-import", security=kafka_auth(settings))
    if not dry_run:
        await outbox.start()
    chunk_size = max(1, min(CHUNK, int(rate / 10) if rate > 0 else CHUNK))
    pacer = _Pacer(rate)
    pending: list[OutRecord] = []
    # a replay of history is marked on every record: judged in its own time, never paging
    headers = (replay_header(replay),) if replay is not None else ()
    started = last_progress = time.monotonic()

    async def flush() -> None:
        if pending and not dry_run:
            await outbox.send(pending)
        report.imported += len(pending)
        pending.clear()
        await pacer.after(report.imported)

    try:
        for number, row in read_rows(path, mapping):
            report.rows += 1
            result = row if isinstance(row, RowRejection) else map_row(row, number, mapping, now)
            if isinstance(result, OrderEvent):
                if report.transitions is not None:
                    report.transitions.add(result)
                pending.append(OutRecord(topic, result.to_json(), result.order_id.encode(), headers=headers))
                if len(pending) >= chunk_size:
                    await flush()
            elif isinstance(result, Skipped):
                report.skipped += 1
            else:
                report.rejected += 1
                if report.rejected <= max_reject_lines:
                    err.write(f"row {result.row}: rejected: {result.summary()}\n")
                elif report.rejected == max_reject_lines + 1:
                    err.write("(more rejected rows not shown" + (": see the rejects file)\n" if rejects else ")\n"))
                if rejects is not None:
                    raw = row if not isinstance(row, RowRejection) else None
                    rejects.write(
                        orjson.dumps(
                            {"row": result.row, "problems": [p.as_dict() for p in result.problems], "values": raw},
                            default=str,
                        ).decode()
                        + "\n"
                    )
            if time.monotonic() - last_progress >= progress_every_s:
                last_progress = time.monotonic()
                elapsed = last_progress - started
                err.write(
                    f"progress: {report.rows:,} rows read, {report.imported + len(pending):,} imported, "
                    f"{report.skipped:,} skipped, {report.rejected:,} rejected "
                    f"({report.imported / elapsed:,.0f} events/s)\n"
                )
        await flush()
    finally:
        if not dry_run:
            await outbox.stop()
    report.seconds = time.monotonic() - started
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV or JSON Lines export")
    parser.add_argument(
        "--mapping", type=Path, required=True, metavar="M.yaml", help="column mapping (see config/import_mappings/)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, metavar="N", help="events per second (default: as fast as possible)"
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        metavar="FILE",
        help="also write every rejected row (number, problems, values) to FILE as JSON Lines",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="map and validate, and report the transitions the state machine would apply or refuse; produce nothing",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="a replay of history: judged in the events' own time (its own clock, never the "
        "wall clock); alerts are recorded, marked replay, and page no one",
    )
    parser.add_argument(
        "--replay-id", metavar="ID", help="name of the replay (default: the file's name without extension)"
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="progress report interval on stderr (default 2)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        mapping = load_mapping(args.mapping)
    except RuleFileError as exc:
        print(f"orderradar import: bad mapping: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if not args.file.is_file():
        print(f"orderradar import: no such file: {args.file}", file=sys.stderr)
        return EXIT_UNUSABLE
    replay = None
    if args.replay or args.replay_id:
        try:
            replay = replay_id(args.replay_id or args.file.stem)
        except ValueError as exc:
            print(f"orderradar import: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE
    rejects = args.rejects.open("w", encoding="utf-8") if args.rejects else None
    try:
        report = asyncio.run(
            import_file(
                settings,
                args.file,
                mapping,
                rate=args.rate,
                dry_run=args.dry_run,
                rejects=rejects,
                progress_every_s=args.progress_every,
                replay=replay,
            )
        )
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        print(f"orderradar import: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    finally:
        if rejects is not None:
            rejects.close()
    summary = report.line(args.file)
    print(("dry run: would have " + summary) if args.dry_run else summary)
    if report.transitions is not None:
        print("\n".join(report.transitions.summary().lines()))
    return EXIT_SOME_REJECTED if report.rejected else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m orderradar.import_command``)."""
    from config.settings import load_settings

    parser = argparse.ArgumentParser(prog="orderradar import")
    add_arguments(parser)
    return run(parser.parse_args(argv), load_settings())


if __name__ == "__main__":
    sys.exit(main())
