"""Real-world latency on the bed, and the record of which AWS calls were in flight together.

Latency: on a real runner every AWS call is a WAN round trip (about 30 ms from a Google Cloud
region in the US to IAM, 100 ms from another continent), so what decides the time is how many
round trips happen one after another. The bed sleeps that long before each answer:

  GCPFED_BED_LATENCY_MS            both kinds of call (default 0)
  GCPFED_BED_AWS_LATENCY_MS        AWS calls through the gate (overrides the above)
  GCPFED_BED_METADATA_LATENCY_MS   metadata server answers (overrides the above)
  POST /_testbed/latency {"aws_ms"?, "metadata_ms"?}   change them at run time; GET reads them;
                                   /_testbed/reset restores the start-up values.

The sleep happens in the request's own thread and outside every lock of the bed (time.sleep
releases Python's interpreter lock too), so N concurrent calls wait N latencies at the same time,
as they would on a network, instead of one after another.

Overlap: each AWS call takes a sequence number when it arrives (`start_seq`) and another just
before its answer is sent (`end_seq`), from one counter. Two calls were in flight together exactly
when each started before the other ended; a call that started after another's `end_seq` was sent
only after that one's answer could be read. Tests count round trips from these numbers, never
from durations.
"""

from __future__ import annotations

import os
import threading
import time

import bed_state


def _env_ms(*names: str) -> int:
    for name in names:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise SystemExit(f"testbed: {name}={raw!r} is not a whole number of milliseconds") from None
            if not 0 <= value <= 60_000:
                raise SystemExit(f"testbed: {name}={value} is outside 0..60000 ms")
            return value
    return 0


class Latency:
    def __init__(self) -> None:
        self.default_aws_ms = _env_ms("GCPFED_BED_AWS_LATENCY_MS", "GCPFED_BED_LATENCY_MS")
        self.default_metadata_ms = _env_ms("GCPFED_BED_METADATA_LATENCY_MS", "GCPFED_BED_LATENCY_MS")
        self._lock = threading.Lock()
        self.aws_ms = self.default_aws_ms
        self.metadata_ms = self.default_metadata_ms
        self._seq = 0
        self._in_flight = 0

    # -- settings -----------------------------------------------------------------------------
    def get(self) -> dict:
        with self._lock:
            return {"aws_ms": self.aws_ms, "metadata_ms": self.metadata_ms}

    def set(self, spec) -> None:
        if not isinstance(spec, dict) or not set(spec) <= {"aws_ms", "metadata_ms"}:
            raise bed_state.BadRequest('latency: expected {"aws_ms"?: int, "metadata_ms"?: int}')
        for key, value in spec.items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 60_000:
                raise bed_state.BadRequest(f"latency: {key} must be a whole number of ms in 0..60000")
        with self._lock:
            self.aws_ms = spec.get("aws_ms", self.aws_ms)
            self.metadata_ms = spec.get("metadata_ms", self.metadata_ms)

    def reset(self) -> None:
        with self._lock:
            self.aws_ms = self.default_aws_ms
            self.metadata_ms = self.default_metadata_ms

    # -- the sleeps (never under a lock) ------------------------------------------------------
    def before_aws_answer(self) -> None:
        ms = self.aws_ms
        if ms:
            time.sleep(ms / 1000.0)

    def before_metadata_answer(self) -> None:
        ms = self.metadata_ms
        if ms:
            time.sleep(ms / 1000.0)

    # -- overlap record -----------------------------------------------------------------------
    def started(self, call: dict) -> None:
        """Marks the arrival of an AWS call: its sequence number and how many were in flight."""
        with self._lock:
            self._seq += 1
            self._in_flight += 1
            call["start_seq"] = self._seq
            call["in_flight_at_start"] = self._in_flight

    def ended(self, call: dict) -> None:
        """Marks the moment just before its answer goes out (after the latency)."""
        with self._lock:
            if "end_seq" in call:
                return
            self._seq += 1
            self._in_flight -= 1
            call["end_seq"] = self._seq
