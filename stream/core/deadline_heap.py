"""A min-heap of deadlines with one live entry per key, so advancing time is cheap.

Each in-flight SKU has at most one pending wake-up (its next deadline or at-risk moment).
Rescheduling pushes a new entry and leaves the old one in the heap; :meth:`pop_due`
skips entries that no longer match the key's current deadline (lazy deletion), and the
heap is rebuilt when stale entries outnumber live ones. Advancing the watermark costs
O(k log n) for k due timers, independent of how many SKUs are in flight. Ties are broken
by key, so the firing order is a pure function of the schedule.
"""

from __future__ import annotations

import heapq


class DeadlineHeap:
    __slots__ = ("_heap", "_due")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def due_of(self, key: str) -> float | None:
        return self._due.get(key)

    def schedule(self, key: str, due: float) -> None:
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(d, k) for k, d in self._due.items()]
            heapq.heapify(self._heap)

    def cancel(self, key: str) -> None:
        self._due.pop(key, None)

    def peek(self) -> float | None:
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, until: float) -> list[str]:
        """Keys whose deadline is at or before ``until``, in (deadline, key) order."""
        heap, due = self._heap, self._due
        out: list[str] = []
        while heap and heap[0][0] <= until:
            at, key = heapq.heappop(heap)
            if due.get(key) == at:
                del due[key]
                out.append(key)
        return out
