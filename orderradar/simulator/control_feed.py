"""Sources of control lines: a file followed as it grows, or standard input."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

#: How often a control file is checked for new lines (there is no portable file
#: notification in the standard library; a quarter second is quick enough for an operator).
FILE_POLL_S = 0.25


async def follow_file(path: Path, poll_s: float = FILE_POLL_S) -> AsyncIterator[str]:
    """Every complete line of ``path`` from its beginning, then lines appended later.
    A missing file is waited for, so it can be created after the simulator starts."""
    offset = 0
    pending = b""
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if not chunk:
            await asyncio.sleep(poll_s)
            continue
        offset += len(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace")


async def follow_stdin() -> AsyncIterator[str]:
    """Lines typed or piped on standard input, until it closes."""
    if stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode):
        for line in sys.stdin:  # a redirected file cannot be watched as a pipe
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode("utf-8", errors="replace")
