"""How hard a source may press its provider: how many accounts at once, and the provider's quota.

Each source declares its `PullLimits` (sources.py): how many of its accounts a refresh pulls at the
same time, the quota its provider enforces (`Rate`s: at most N units per window, a unit being a
request or, for Azure Cost Management, a query processing unit), and what the provider counts the
quota by (a tenant, a token, a payer account). The core knows no provider: it only meters units.

The meter is shared by every thread of a run and by every process of the data directory, because
providers count quota that way (two runs for two months of the same Azure tenant spend one
budget). Its state is a small JSON file per key under `<data>/state/throttle/`, read and written
under a file lock (filelock: fcntl on POSIX, msvcrt on Windows): a sliding log of the units spent
in the longest window, and a "blocked until" moment that a provider's 429 Retry-After sets for
everyone sharing the key. Keys are digests, so a token never lands on disk. Waits are bounded: a
caller passes the time it has left (the account's `give_up_after_seconds`), and a wait that would
run past it fails at once with `<provider>.rate_limited` instead of sleeping in vain.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from finops_pipeline.diagnosis import ERROR, Diagnosis, ProviderError

if TYPE_CHECKING:
    from finops_pipeline.config import Account

DEFAULT_CONCURRENCY = 4
_SLEEP_SLICE = 1.0  # re-read the shared state at least this often while waiting


@dataclass(frozen=True)
class Rate:
    """At most `units` per `seconds` (a sliding window), per throttle key."""

    units: float
    seconds: float

    def __str__(self) -> str:
        return f"{self.units:g} per {self.seconds:g} s"


@dataclass(frozen=True)
class PullLimits:
    """A source's defaults: accounts pulled at once, and the provider's quota per key."""

    concurrency: int = DEFAULT_CONCURRENCY
    rates: tuple[Rate, ...] = ()
    # What the provider counts quota by, from an account's settings (None: no shared quota).
    key: Callable[[Account], str | None] = field(default=lambda account: None, compare=False)
    scope: str = ""  # what the key is, for messages ("tenant", "token", "payer account")


class RateLimited(ProviderError):
    """Waiting for the provider's quota would outlast the account's give_up_after_seconds."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Throttle:
    """One provider quota (one key), shared by threads and processes through a state file.

    Without a directory (a pull run outside a refresh) the state stays in this process.
    """

    def __init__(self, name: str, rates: tuple[Rate, ...], directory: Path | None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.rates = rates
        self._clock = clock
        self._sleep = sleep
        self._path = directory / f"{name}.json" if directory else None
        # One lock object, made once (its making is not free); self._lock keeps this process's threads in line.
        self._file_lock = FileLock(str(self._path) + ".lock", thread_local=False) if self._path else None
        self._lock = threading.Lock()  # threads of this process queue here before the file lock
        self._memory: dict[str, object] = {"log": [], "blocked_until": 0.0}
        self.waited_seconds = 0.0

    @contextmanager
    def _state(self, timeout: float) -> Iterator[dict]:
        with self._lock:
            if self._path is None:
                yield self._memory
                return
            assert self._file_lock is not None
            self._path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with self._file_lock.acquire(timeout=max(0.0, timeout)):
                    try:
                        state = json.loads(self._path.read_text(encoding="utf-8"))
                    except (FileNotFoundError, ValueError):
                        state = {"log": [], "blocked_until": 0.0}
                    yield state
                    temporary = self._path.with_suffix(".json.tmp")
                    temporary.write_text(json.dumps(state), encoding="utf-8")
                    temporary.replace(self._path)
            except Timeout:
                raise TimeoutError(f"the quota state {self._path.name} stayed locked for {timeout:.1f} s") from None

    def _wait_needed(self, state: dict, units: float, now: float) -> float:
        longest = max((r.seconds for r in self.rates), default=0.0)
        log = [(t, u) for t, u in state["log"] if t > now - longest]
        state["log"] = log
        wait = max(0.0, float(state.get("blocked_until", 0.0)) - now)
        for rate in self.rates:
            inside = [(t, u) for t, u in log if t > now - rate.seconds]
            spent = sum(u for _, u in inside)
            if spent + units <= rate.units:
                continue
            # The oldest entries leave the window first: wait until enough of them have.
            freed = spent + units - rate.units
            for t, u in inside:
                freed -= u
                if freed <= 0:
                    wait = max(wait, t + rate.seconds - now)
                    break
            else:
                wait = max(wait, rate.seconds)  # more units than the window allows: one whole window
        return wait

    def acquire(self, units: float = 1.0, give_up_in: float = 120.0) -> float:
        """Spend `units` of the quota, waiting for it when needed; returns the seconds waited.

        Raises TimeoutError when the wait would end later than `give_up_in` seconds from now.
        """
        started = self._clock()
        while True:
            left = give_up_in - (self._clock() - started)
            with self._state(left) as state:
                now = self._clock()
                wait = self._wait_needed(state, units, now)
                if wait <= 0:
                    state["log"].append((now, units))
                    waited = now - started
                    self.waited_seconds += waited
                    return waited
            if wait > left:
                raise TimeoutError(f"the quota {self._describe()} needs {wait:.1f} s more and only {max(0.0, left):.1f} s are left")
            self._sleep(min(wait, _SLEEP_SLICE))

    def back_off(self, seconds: float) -> None:
        """The provider said 'retry after `seconds`': everyone sharing this key waits that long."""
        if seconds <= 0:
            return
        with self._state(30.0) as state:
            state["blocked_until"] = max(float(state.get("blocked_until", 0.0)), self._clock() + seconds)

    def _describe(self) -> str:
        return ", ".join(str(r) for r in self.rates) or "back-off"


# --- the throttles of this process ------------------------------------------------------------------

_directory: ContextVar[Path | None] = ContextVar("finops_throttle_directory", default=None)
_throttles: dict[tuple[Path | None, str], Throttle] = {}
_throttles_lock = threading.Lock()


def state_directory(data_dir: Path | str) -> Path:
    """Local even for a remote lake (storage.work_dir): the quotas are shared through file locks on one host."""
    from finops_pipeline.storage import work_dir

    return work_dir(data_dir) / "state" / "throttle"


@contextmanager
def shared_through(data_dir: Path) -> Iterator[None]:
    """Pulls started inside share their quotas with every process using `data_dir`."""
    token = _directory.set(state_directory(data_dir))
    try:
        yield
    finally:
        _directory.reset(token)


def throttle_for(account: Account) -> Throttle | None:
    """The throttle of the quota `account` spends, or None when its source declares none.

    Quotas are metered inside a refresh (`shared_through`, which refresh_accounts sets): a pull called
    on its own (a test, the sandbox's seeding) is not metered.
    """
    from finops_pipeline.sources import get_source

    directory = _directory.get()
    limits = get_source(account.provider, account.source).limits
    if directory is None or not limits.rates:
        return None
    key = limits.key(account)
    if key is None:
        return None
    name = f"{account.provider}-{_digest(f'{account.provider}:{limits.scope}:{key}')}"
    with _throttles_lock:
        found = _throttles.get((directory, name))
        if found is None:
            found = _throttles[(directory, name)] = Throttle(name, limits.rates, directory)
        return found


def spend(account: Account, units: float = 1.0, give_up_in: float = 120.0) -> float:
    """Wait for `units` of the account's provider quota (no quota declared: no wait).

    A wait longer than `give_up_in` fails now with `<provider>.rate_limited`: the other accounts go on.
    """
    found = throttle_for(account)
    if found is None:
        return 0.0
    try:
        return found.acquire(units, give_up_in)
    except TimeoutError as exc:
        from finops_pipeline.sources import get_source

        source = get_source(account.provider, account.source)
        raise RateLimited(Diagnosis(
            f"{account.provider}.rate_limited", ERROR,
            f"{source.title}'s quota for this {source.limits.scope or 'account'} is spent for now "
            f"({found._describe()}), and waiting for it would outlast give_up_after_seconds.",
            "Nothing to change if it is occasional: the next refresh retries. If it persists, lower the source's "
            "pull_concurrency in finops.yaml, refresh fewer accounts sharing the quota at once, or raise give_up_after_seconds.",
            str(exc), retryable=True,
        )) from None


def back_off(account: Account, seconds: float) -> None:
    """Share a provider's Retry-After with every pull spending the same quota."""
    found = throttle_for(account)
    if found is not None:
        found.back_off(seconds)
