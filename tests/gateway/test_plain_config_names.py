"""Names from configuration follow the event contract's plain-text rule: staff login and
display names in the staff file, source names in ``ORDERRADAR_INGEST_KEYS``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.rules import RuleFileError
from dashboard.gateway.staff import StaffDirectory, hash_password

HASH = hash_password("a-password-0001")


@pytest.mark.parametrize(
    ("entry", "field", "char"),
    [
        ('  "ali\\u200bce":\n    role: viewer\n', "[key]", "U+200B"),
        ('  alice:\n    role: viewer\n    name: "Alice \\u202eecilA"\n', "users.alice.name", "U+202E"),
        ('  alice:\n    role: viewer\n    name: "Alice\\u0007"\n', "users.alice.name", "U+0007"),
    ],
)
def test_staff_file_names_with_control_or_invisible_characters_are_refused(
    tmp_path: Path, entry: str, field: str, char: str
) -> None:
    path = tmp_path / "staff.yaml"
    path.write_text(f'users:\n{entry}    password: "{HASH}"\n')
    with pytest.raises(RuleFileError) as caught:
        StaffDirectory.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and field in message
    assert f"contains a control or invisible character ({char}); use plain text" in message


@pytest.mark.parametrize("source", ["w\u200bms", "wms\u202e", "w\x1bms"])
def test_ingest_source_names_with_control_or_invisible_characters_stop_the_web_tier(
    tmp_path: Path, source: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERRADAR_")}
    env.update(ORDERRADAR_INGEST_KEYS=f"oms=key-0001,{source}=key-0002", ORDERRADAR_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "orderradar.cli", "web"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "ORDERRADAR_INGEST_KEYS" in done.stderr and "contains a control or invisible character" in done.stderr
    assert "key-0002" not in done.stderr + done.stdout  # the error names the source, never the key
