"""The provider quota meter (throttle.py): sliding windows, bounded waits, shared by processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from finops_pipeline.throttle import Rate, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_every_window_is_respected_and_a_quiet_window_refills() -> None:
    clock = FakeClock()
    meter = Throttle("t", (Rate(12, 10), Rate(60, 60)), None, clock, clock.sleep)  # Azure's first two QPU windows
    grants = []
    for _ in range(70):
        meter.acquire(1, give_up_in=600)
        grants.append(clock.now)
    for rate in meter.rates:  # no window of any rate ever holds more than it allows
        assert max(sum(1 for g in grants if start <= g < start + rate.seconds) for start in grants) <= rate.units
    assert grants[11] == grants[0] and grants[12] >= grants[0] + 10  # a burst of 12, then the 10-second window
    assert grants[60] >= grants[0] + 60  # the minute's 60 spent: the 61st waits for the minute


def test_a_wait_longer_than_the_time_left_fails_at_once() -> None:
    clock = FakeClock()
    meter = Throttle("t", (Rate(2, 3600),), None, clock, clock.sleep)
    meter.acquire(2, give_up_in=10)
    with pytest.raises(TimeoutError, match="needs 3600.0 s more"):
        meter.acquire(1, give_up_in=10)
    assert clock.slept == []  # did not sleep in vain


def test_a_retry_after_holds_back_everyone_sharing_the_key(tmp_path: Path) -> None:
    first = Throttle("tenant", (Rate(100, 1),), tmp_path)
    other = Throttle("tenant", (Rate(100, 1),), tmp_path)  # another process's view: same file
    first.back_off(0.6)
    started = time.monotonic()
    other.acquire(1, give_up_in=5)
    assert time.monotonic() - started >= 0.5


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from finops_pipeline.throttle import Rate, Throttle
    meter = Throttle("shared", (Rate(4, 0.5),), Path(sys.argv[1]))
    for _ in range(8):
        meter.acquire(1, give_up_in=30)
        print(time.time(), flush=True)
""")


def test_two_processes_share_one_quota(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    grants = sorted(float(line) for w in workers for line in w.communicate(timeout=60)[0].split())
    assert all(w.returncode == 0 for w in workers) and len(grants) == 16
    # Any half second holds at most 4 grants of the two processes together (a little slack for clock reads).
    assert max(sum(1 for g in grants if start <= g < start + 0.5 - 0.01) for start in grants) <= 4
    assert grants[-1] - grants[0] >= 1.4  # 16 grants at 4 per half second need at least three more windows
