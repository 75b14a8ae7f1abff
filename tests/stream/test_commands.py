"""``orderradar dlq`` and ``orderradar import`` against the real broker."""

from __future__ import annotations

import argparse
import asyncio
import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from stream_eventgen import generate
from stream_harness import read_topic
from test_pipeline import source_records

from config.settings import Settings
from orderradar import dlq_command, import_command
from stream.contract import OrderEvent, validate_record
from stream.pipeline import Pipeline, PipelineConfig
from stream.sinks.influx import InfluxWriter
from stream.sinks.outbox import Outbox
from stream.topics import ORDER_EVENTS
from stream.worker import pipeline_topics

pytestmark = pytest.mark.integration

EXAMPLE_MAPPING = Path(__file__).resolve().parents[2] / "config" / "import_mappings" / "olist.yaml"


def parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def dead_letter_some(settings: Settings) -> list[bytes]:
    records = generate(seed=31, total=1400)

    async def scenario() -> None:
        outbox = Outbox(settings.kafka_bootstrap)
        await outbox.start()
        influx = InfluxWriter(settings.influx_url, settings.influx_db)
        pipeline = Pipeline(PipelineConfig(pipeline_topics(settings)), {}, outbox, influx)
        await pipeline.process(source_records(records, settings.partitions), datetime.now(UTC))
        await outbox.stop()
        await influx.aclose()

    asyncio.run(scenario())
    return [r.value for r in records if r.kind == "invalid"]


def test_dlq_list_show_and_redrive(stack_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    invalid = dead_letter_some(stack_settings)
    assert dlq_command.run(parse(dlq_command, ["list", "--limit", "0", "--json"]), stack_settings) == 0
    listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == len(invalid)
    assert {item["code"] for item in listed} >= {"not_json", "schema", "future_time", "key_mismatch"}

    assert dlq_command.run(parse(dlq_command, ["list", "--code", "future_time"]), stack_settings) == 0
    table = capsys.readouterr().out
    assert "future_time" in table and "schema" not in table.split("\n", 1)[1]

    first = listed[0]["at"]
    assert dlq_command.run(parse(dlq_command, ["show", first]), stack_settings) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["at"] == first and shown["reason"]["code"] == listed[0]["code"]
    assert dlq_command.run(parse(dlq_command, ["show", "9:99999"]), stack_settings) == 1

    assert dlq_command.run(parse(dlq_command, ["redrive"]), stack_settings) == 2  # needs a filter or --all
    capsys.readouterr()
    assert dlq_command.run(parse(dlq_command, ["redrive", "--code", "not_json", "--dry-run"]), stack_settings) == 0
    assert "dry run" in capsys.readouterr().out
    assert dlq_command.run(parse(dlq_command, ["redrive", "--code", "not_json"]), stack_settings) == 0
    not_json = sum(1 for item in listed if item["code"] == "not_json")
    assert f"re-drove {not_json} records" in capsys.readouterr().out
    redriven = [
        r
        for r in asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_EVENTS)))
        if any(k == dlq_command.REDRIVEN_HEADER for k, _ in r.headers)
    ]
    assert len(redriven) == not_json and all(r.value in invalid for r in redriven)


def olist_rows(shared_data: Path, count: int) -> tuple[list[str], list[dict[str, str]]]:
    with (shared_data / "events" / "olist" / "olist_events.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None
        rows = [row for _, row in zip(range(count), reader, strict=False)]
        return list(reader.fieldnames), rows


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def test_import_csv_with_a_mapping_reports_the_bad_row_and_imports_the_rest(
    stack_settings: Settings, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, rows = olist_rows(shared_data, 300)
    bad = dict(rows[10], event_type="teleported", event_time="yesterday")
    rows.insert(41, bad)  # file line 43 (header is line 1)
    export, rejects = tmp_path / "olist.csv", tmp_path / "rejects.jsonl"
    write_csv(export, header, rows)

    args = parse(import_command, [str(export), "--mapping", str(EXAMPLE_MAPPING), "--rejects", str(rejects)])
    assert import_command.run(args, stack_settings) == import_command.EXIT_SOME_REJECTED
    out, err = capsys.readouterr()
    assert (
        "row 43: rejected: status: unknown value 'teleported' (not in the mapping); "
        "event_time: 'yesterday' is not a time in ISO 8601" in err
    )
    purchased = sum(1 for r in rows if r["event_type"] == "order_purchased")
    expected = len(rows) - 1 - purchased
    assert f"imported {expected:,} events" in out and "1 rejected" in out and f"{purchased:,} skipped" in out
    reject = orjson.loads(rejects.read_text().splitlines()[0])
    assert reject["row"] == 43 and {p["field"] for p in reject["problems"]} == {"status", "event_time"}
    assert reject["values"]["event_type"] == "teleported"

    produced = asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_EVENTS)))
    assert len(produced) == expected
    now = datetime.now(UTC)
    events = [validate_record(r.key, r.value, now) for r in produced]
    assert all(isinstance(e, OrderEvent) for e in events)  # keyed by order_id, valid
    assert len({e.event_id for e in events if isinstance(e, OrderEvent)}) == expected


def test_import_json_lines_paced_and_dry_run(
    stack_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [r.event for r in generate(seed=33, total=200) if r.kind == "valid" and r.event is not None][:150]
    export = tmp_path / "events.jsonl"
    lines = [e.to_json() for e in events]
    lines.insert(5, b"{not json")
    export.write_bytes(b"\n".join(lines) + b"\n")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "fields: {event_id: event_id, order_id: order_id, sku: sku, status: status, "
        "event_time: event_time, source: source, region: region, qty: qty}\n"
    )

    run: Callable[[list[str]], int] = lambda extra: import_command.run(  # noqa: E731
        parse(import_command, [str(export), "--mapping", str(mapping), *extra]), stack_settings
    )
    assert run(["--dry-run"]) == import_command.EXIT_SOME_REJECTED
    assert "dry run: would have imported 150 events" in capsys.readouterr().out
    assert not asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_EVENTS)))
    assert run(["--rate", "2000"]) == import_command.EXIT_SOME_REJECTED
    out, err = capsys.readouterr()
    assert "row 6: rejected: (row): not JSON" in err and "imported 150 events" in out
    assert len(asyncio.run(read_topic(stack_settings, stack_settings.topic(ORDER_EVENTS)))) == 150
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: {order_id: x}\n")
    assert import_command.run(parse(import_command, [str(export), "--mapping", str(bad)]), stack_settings) == 2
    assert "must be mapped" in capsys.readouterr().err
