"""The accounts registry: `finops.yaml`, validated, with secrets given only by environment variable name.

The file says which cloud accounts are connected, when billing access was granted (`connected_at`,
the start of the 48-hour clock) and how to reach each provider. A value that is a secret is never
in the file: the file names the environment variable (`*_env` fields) and the value is read at the
moment of use, so it cannot leak into Dagster config, metadata or the lake.

Each source declares its settings as a Pydantic model (`defs/<provider>/<source>/settings.py`, a
`SourceSettings` subclass); this module knows no provider. One broken account does not stop the
others: it stays in the registry, marked with its problems, and raises `ConfigError` when used, so
its pull is diagnosed as `config.invalid` while the other accounts refresh.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from finops_pipeline.storage import resolve

DEFAULT_CONFIG_FILE = "finops.yaml"
DEFAULT_DATA_DIR = "data"


class ConfigError(ValueError):
    """finops.yaml (or the environment it names) is not usable. The message says where and how to fix it."""


class MissingEnvironmentVariable(ConfigError):
    """An `*_env` field names a variable that is not set in this process."""

    def __init__(self, account_key: str, field_name: str, variable: str):
        self.account_key = account_key
        self.field_name = field_name
        self.variable = variable
        super().__init__(
            f"account '{account_key}': environment variable {variable} (named by {field_name}) is not set. "
            f"Fix: export {variable}=... in the environment that runs the pipeline (the Dagster daemon and webserver too)."
        )


# --- field types shared by the sources' settings models --------------------------------------------


class SettingError(ValueError):
    """A field or combination is wrong; `fix` says what to write instead (shown after 'Fix:')."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def looks_like_secret(value: Any) -> bool:
    """A long unbroken mix of letters and digits (a key, a token): never repeat it in a message."""
    text = str(value)
    return (
        len(text) >= 16
        and not re.search(r"\s", text)
        and "://" not in text
        and not text.startswith("arn:")
        and bool(re.search(r"[A-Za-z]", text))
        and bool(re.search(r"\d", text))
    )


def shown(value: Any) -> str:
    """How a wrong value is quoted in a message: as given, unless it could be a secret."""
    if looks_like_secret(value):
        return "a value that looks like a secret (not repeated here)"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise SettingError("must be a non-empty string")
    return str(value).strip()


def pattern(regex: str, what: str) -> Any:
    """A string field that must match `regex` (`what` names the shape in the message)."""
    compiled = re.compile(regex)

    def check(value: Any) -> str:
        text = _text(value)
        if not compiled.fullmatch(text):
            raise SettingError(f"must be {what}, got {shown(text)}")
        return text

    return Annotated[str, BeforeValidator(check)]


def choice(*options: str) -> Any:
    """A string field with a fixed set of values."""

    def check(value: Any) -> str:
        text = _text(value)
        if text not in options:
            raise SettingError(f"must be one of {', '.join(options)}, got {shown(text)}", fix=f"use one of {', '.join(options)}")
        return text

    return Annotated[str, BeforeValidator(check)]


def _env_name(value: Any) -> str:
    text = _text(value)
    if not _ENV_NAME.fullmatch(text):
        # Never repeat the value: the usual mistake is pasting the secret itself.
        raise SettingError(
            "must be the NAME of an environment variable (letters, digits, _); the value given is not a variable name "
            "and looks like a secret was pasted here (the value is not repeated)",
            fix="put the secret in an environment variable, write that variable's NAME here, and rotate the secret if this "
            "file was shared",
        )
    return text


def _url(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise SettingError(f"must be an http(s) URL, got {shown(text)}")
    return text.rstrip("/")


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingError(f"must be a positive whole number, got {shown(value)}")
    return value


Text = Annotated[str, BeforeValidator(_text)]
EnvName = Annotated[str, BeforeValidator(_env_name)]
Url = Annotated[str, BeforeValidator(_url)]
PositiveInt = Annotated[int, BeforeValidator(_positive_int)]
Guid = pattern(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "a GUID like 00000000-0000-0000-0000-000000000000")


class SourceSettings(BaseModel):
    """An account's settings for one source. Subclasses declare the fields (defaults once, here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    give_up_after_seconds: PositiveInt = Field(
        120, description="Longest a pull of one account and month may wait on a provider that does not answer (connect, read and "
        "retries together) before it fails with 'did not answer'; the other accounts go on.",
    )

    def combination_problems(self) -> list[SettingError]:
        """Rules across fields (e.g. 'both or neither'); subclasses extend the list with super()."""
        return []

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        """What identifies the billing data this account reads, e.g. ("AWS payer account", "123456789012").

        Two accounts sharing one would count the same costs twice. The first item names the kind.
        """
        return ()

    @model_validator(mode="after")
    def _check_combinations(self) -> SourceSettings:
        problems = self.combination_problems()
        if problems:
            raise _Combinations(problems)
        return self


class _Combinations(ValueError):
    """Every broken cross-field rule of one model, so one pass reports them all."""

    def __init__(self, problems: list[SettingError]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


# --- the registry ----------------------------------------------------------------------------------

COMMON_FIELDS = ("key", "provider", "source", "name", "connected_at")
TOP_LEVEL_KEYS = ("accounts", "history_start", "budgets", "reporting_currency", "pull_concurrency")
_UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)  # connected_at of a broken account without a usable one


@dataclass(frozen=True)
class Problem:
    """One mistake in finops.yaml: where (file, account, field), what is wrong and how to fix it."""

    path: Path
    account_key: str | None  # None when the entry has no usable key (then `index` says which) or the file is at fault
    index: int | None  # position in `accounts:`; None for a problem of the whole file
    field: str | None
    message: str
    fix: str
    section: str | None = None  # set for an entry outside `accounts:`, e.g. "budget 'team-data' (budgets[0])"

    @property
    def registry_wide(self) -> bool:
        """True for a problem of the file itself (its shape, top-level keys), not of one account or budget."""
        return self.account_key is None and self.index is None and self.section is None

    def __str__(self) -> str:
        where = self.section or (f"account '{self.account_key}'" if self.account_key else f"accounts[{self.index}]" if self.index is not None else None)
        stop = "" if self.message.endswith(("?", ".")) else "."
        return f"{self.path}: " + (f"{where}: " if where else "") + f"{self.message}{stop} Fix: {self.fix}"


def _joined(problems: tuple[Problem, ...] | list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


class AccountSettings(Mapping[str, Any]):
    """An account's settings (given values and defaults), read-only. A broken account's raise ConfigError when read."""

    def __init__(self, values: Mapping[str, Any], broken: str | None = None):
        self._values = dict(values)
        self._broken = broken

    def _usable(self) -> dict[str, Any]:
        if self._broken is not None:
            raise ConfigError(self._broken)
        return self._values

    def __getitem__(self, name: str) -> Any:
        return self._usable()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._usable())

    def __len__(self) -> int:
        return len(self._usable())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AccountSettings):
            return (self._values, self._broken) == (other._values, other._broken)
        return self._broken is None and isinstance(other, Mapping) and self._values == dict(other)

    def __repr__(self) -> str:
        return "AccountSettings(<broken account>)" if self._broken is not None else f"AccountSettings({self._values!r})"

    def env_fields(self) -> dict[str, str]:
        """`*_env` field -> variable name, broken or not (so secrets are still redacted)."""
        return {k: v for k, v in self._values.items() if k.endswith("_env") and isinstance(v, str) and _ENV_NAME.fullmatch(v)}


@dataclass(frozen=True)
class Account:
    key: str
    provider: str
    source: str
    name: str
    connected_at: datetime
    settings: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()  # non-empty: the account is broken and raises ConfigError when used
    model: SourceSettings | None = field(default=None, repr=False, compare=False)  # the validated settings, typed

    @property
    def broken(self) -> bool:
        return bool(self.problems)

    def env(self, field_name: str) -> str | None:
        """The secret behind an `*_env` field, read now; None when the field is not configured."""
        if self.problems:
            raise ConfigError(_joined(self.problems))
        variable = self.settings.get(field_name)
        if variable is None:
            return None
        value = os.environ.get(variable)
        if value is None or value == "":
            raise MissingEnvironmentVariable(self.key, field_name, variable)
        return value

    def env_fields(self) -> dict[str, str]:
        if isinstance(self.settings, AccountSettings):
            return self.settings.env_fields()
        return {k: v for k, v in self.settings.items() if k.endswith("_env") and v}

    def env_names(self) -> list[str]:
        return list(self.env_fields().values())


@dataclass(frozen=True)
class FinopsConfig:
    path: Path
    accounts: tuple[Account, ...]
    history_start: str | None = None  # YYYY-MM: the oldest billing period to offer (default: 13 months back)
    problems: tuple[Problem, ...] = ()  # every mistake found, broken accounts' included
    budgets: tuple[Budget, ...] = ()  # the valid ones; a broken budget is left out (its problems are in `problems`)
    reporting_currency: str | None = None  # ISO 4217: converted amounts beside the billed ones (currency.py)
    pull_concurrency: Mapping[str, int] = field(default_factory=dict)  # source id -> accounts pulled at once

    def concurrency_for(self, source: Any) -> int:
        """How many of `source`'s accounts a refresh pulls at once: finops.yaml's pull_concurrency, else the source's default."""
        return self.pull_concurrency.get(source.id, source.limits.concurrency)

    def for_source(self, provider: str, source: str) -> list[Account]:
        return [a for a in self.accounts if a.provider == provider and a.source == source]

    def account(self, key: str) -> Account:
        for account in self.accounts:
            if account.key == key:
                return account
        raise ConfigError(f"{self.path}: no account with key {key!r}")

    def secret_values(self) -> list[str]:
        """Values of every secret variable the registry names (for redaction)."""
        values = []
        for account in self.accounts:
            for name in account.env_names():
                value = os.environ.get(name)
                if value and len(value) >= 4:
                    values.append(value)
        return values

    def missing_environment(self) -> list[MissingEnvironmentVariable]:
        problems = []
        for account in self.accounts:
            for field_name, variable in account.env_fields().items():
                if not os.environ.get(variable):
                    problems.append(MissingEnvironmentVariable(account.key, field_name, variable))
        return problems

    def raise_problems(self) -> None:
        """Strict use: any problem at all is a ConfigError listing every one."""
        if self.problems:
            raise ConfigError(_joined(self.problems))


def config_path() -> Path:
    return Path(os.environ.get("FINOPS_CONFIG") or DEFAULT_CONFIG_FILE)


def data_dir() -> Path | str:
    """Where the lake lives: a local directory (absolute Path) or an object-storage URL kept as a string
    (s3://bucket/prefix, az://container/prefix, gs://bucket/prefix; see storage.py)."""
    return resolve(os.environ.get("FINOPS_DATA_DIR") or DEFAULT_DATA_DIR)


def _did_you_mean(word: Any, candidates: Any) -> str:
    close = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6) if isinstance(word, str) else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _parse_connected_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"must be an ISO 8601 time like 2026-11-01T09:30:00Z, got {shown(value)}") from exc
    else:
        raise ValueError(f"must be an ISO 8601 time like 2026-11-01T09:30:00Z, got {shown(value)}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class _DuplicateKey:
    """A mapping key written twice in the file (PyYAML keeps the last silently)."""

    index: int | None  # the account entry it is in; None: the top level (or deeper)
    key: str
    first_line: int
    line: int


class _RegistryLoader(yaml.SafeLoader):
    """SafeLoader that notes every duplicate mapping key with its lines instead of dropping one silently."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[yaml.Node, str, int, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                line = key_node.start_mark.line + 1
                if key_node.value in first_line:
                    self.duplicate_keys.append((node, key_node.value, first_line[key_node.value], line))
                else:
                    first_line[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> tuple[Any, list[_DuplicateKey]]:
    """The file's content and its duplicate keys. Fatal (ConfigError): missing, unreadable, not UTF-8, not YAML."""
    if not path.exists():
        raise ConfigError(
            f"{path}: accounts registry not found. Copy finops.example.yaml to {path} and edit it, "
            f"or point FINOPS_CONFIG at your file."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the accounts registry ({exc.strerror or exc}). Fix: check the path and its permissions.") from None
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8: byte {exc.start} (line {line}) is 0x{data[exc.start]:02x}, which is not valid UTF-8. "
            f"Fix: save the file as UTF-8 (it was probably written as Latin-1 or Windows-1252)."
        ) from None
    loader = _RegistryLoader(text)
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    finally:
        loader.dispose()
    entry_index: dict[int, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:  # the last `accounts:` wins, as in the constructed data
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == "accounts" and isinstance(value_node, yaml.SequenceNode):
                entry_index = {id(item): i for i, item in enumerate(value_node.value)}
    duplicates = [_DuplicateKey(entry_index.get(id(node)), key, first, line) for node, key, first, line in loader.duplicate_keys]
    return raw, duplicates


def read_registry(path: str | Path | None = None, *, now: datetime | None = None) -> FinopsConfig:
    """Every problem of the file in one pass; raises only when the file cannot be read at all (check-config)."""
    path = Path(path) if path is not None else config_path()
    raw, duplicates = _read_yaml(path)
    return _build(raw, path, now=now, duplicates=duplicates)


def load_config(path: str | Path | None = None, *, strict: bool = False, now: datetime | None = None) -> FinopsConfig:
    """Read and validate the registry. A missing file is an error with the fix, not an empty registry.

    Broken accounts are kept (marked, raising ConfigError when used) so the others still refresh;
    a problem of the whole file is a ConfigError. `strict`: any problem is a ConfigError.
    """
    config = read_registry(path, now=now)
    _enforce(config, strict)
    return config


def parse_config(raw: Any, path: Path, *, strict: bool = False, now: datetime | None = None) -> FinopsConfig:
    """The registry from already-parsed YAML (tests, the sandbox), with the same rules as load_config."""
    config = _build(raw, Path(path), now=now, duplicates=[])
    _enforce(config, strict)
    return config


def _enforce(config: FinopsConfig, strict: bool) -> None:
    fatal = config.problems if strict else tuple(p for p in config.problems if p.registry_wide)
    if fatal:
        raise ConfigError(_joined(fatal))


def _build(raw: Any, path: Path, *, now: datetime | None, duplicates: list[_DuplicateKey]) -> FinopsConfig:
    now = now or datetime.now(timezone.utc)
    problems: list[Problem] = []

    def registry_problem(message: str, fix: str, field_name: str | None = None) -> None:
        problems.append(Problem(path, None, None, field_name, message, fix))

    for dup in duplicates:
        if dup.index is None:
            registry_problem(
                f"key '{dup.key}' is given twice (lines {dup.first_line} and {dup.line}); YAML keeps only the last, so line {dup.first_line}'s is ignored",
                f"merge the two into one '{dup.key}:'", dup.key,
            )
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        registry_problem("the top level must be a mapping with an 'accounts' list", "start the file with 'accounts:' followed by a list of accounts")
        return FinopsConfig(path=path, accounts=(), problems=tuple(problems))
    for unknown in sorted(set(map(str, raw)) - set(TOP_LEVEL_KEYS)):
        registry_problem(f"unknown top-level key '{unknown}'{_did_you_mean(unknown, TOP_LEVEL_KEYS)}",
                         f"only {', '.join(repr(k) for k in TOP_LEVEL_KEYS)} are allowed at the top level", unknown)
    history_start = raw.get("history_start")
    if history_start is not None:
        history_start = str(history_start)
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", history_start):
            registry_problem(f"'history_start' must be a billing period like 2025-01, got {shown(history_start)}",
                             "write history_start as YYYY-MM (quoted), or remove it for 13 months back", "history_start")
            history_start = None
    reporting_currency = raw.get("reporting_currency")
    if reporting_currency is not None and not (isinstance(reporting_currency, str) and re.fullmatch(r"[A-Z]{3}", reporting_currency)):
        registry_problem(f"'reporting_currency' must be an ISO 4217 code like EUR, got {shown(reporting_currency)}",
                         "write reporting_currency as three capital letters (EUR, USD, GBP ...), or remove it", "reporting_currency")
        reporting_currency = None
    pull_concurrency = _pull_concurrency(raw.get("pull_concurrency"), registry_problem)
    entries = raw.get("accounts") or []
    if not isinstance(entries, list):
        registry_problem("'accounts' must be a list of accounts", "write each account as a '- key: ...' item under 'accounts:'", "accounts")
        entries = []

    by_provider: dict[str, list[Any]] = {}
    from finops_pipeline.sources import all_sources  # imported here: the sources' settings import this module

    for spec in all_sources():
        by_provider.setdefault(spec.provider.key, []).append(spec)
    accounts: list[Account] = []
    seen_keys: dict[str, int] = {}
    for index, entry in enumerate(entries):
        account, entry_problems = _account(entry, index, path, now, by_provider, seen_keys,
                                           [d for d in duplicates if d.index == index])
        problems.extend(entry_problems)
        if account is not None:
            accounts.append(account)
    accounts = _mark_double_counting(accounts, path, problems)
    budgets = _budgets(raw.get("budgets"), path, accounts, list(by_provider), problems)
    return FinopsConfig(path=path, accounts=tuple(accounts), history_start=history_start, problems=tuple(problems), budgets=budgets,
                        reporting_currency=reporting_currency, pull_concurrency=pull_concurrency)


def _pull_concurrency(raw: Any, registry_problem: Any) -> dict[str, int]:
    """`pull_concurrency: {<source id>: n}`: how many accounts of a source a refresh pulls at once."""
    if raw is None:
        return {}
    from finops_pipeline.sources import all_sources

    known = [s.id for s in all_sources()]
    if not isinstance(raw, dict):
        registry_problem("'pull_concurrency' must be a mapping of source to a number of accounts pulled at once",
                         f"write e.g. pull_concurrency: {{{known[0]}: 2}}", "pull_concurrency")
        return {}
    found = {}
    for name, value in raw.items():
        if name not in known:
            registry_problem(f"'pull_concurrency' names unknown source {shown(name)}{_did_you_mean(name, known)}",
                             f"use one of {', '.join(known)}", "pull_concurrency")
        elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            registry_problem(f"'pull_concurrency.{name}' must be a whole number from 1 to 64, got {shown(value)}",
                             "write how many accounts of that source to pull at once, e.g. 4", "pull_concurrency")
        else:
            found[name] = value
    return found


def _account(entry: Any, index: int, path: Path, now: datetime, by_provider: dict[str, list[Any]],
             seen_keys: dict[str, int], duplicates: list[_DuplicateKey]) -> tuple[Account | None, list[Problem]]:
    """One `accounts:` entry: the account (broken or not) when it can be placed, and its problems."""
    if not isinstance(entry, dict):
        return None, [Problem(path, None, index, None, "each account must be a mapping",
                              "write it as key, provider, source, name, connected_at and the source's fields")]
    key = entry.get("key")
    key_ok = isinstance(key, str) and bool(_KEY.fullmatch(key))
    problems: list[Problem] = []

    def problem(field_name: str | None, message: str, fix: str) -> None:
        problems.append(Problem(path, key if key_ok else None, index, field_name, message, fix))

    placeable = key_ok
    if not key_ok:
        problem("key", f"'key' must be a short slug of lowercase letters, digits, '-' or '_' (got {shown(key)})",
                "give the account a unique key like aws-main")
    elif key in seen_keys:
        placeable = False
        problem("key", f"duplicate key (also accounts[{seen_keys[key]}])", "every account needs its own key")
    else:
        seen_keys[key] = index
    for dup in duplicates:
        problem(dup.key, f"field '{dup.key}' is given twice (lines {dup.first_line} and {dup.line}); YAML keeps only the last, "
                f"so line {dup.first_line}'s is ignored", f"keep one '{dup.key}:' in this account")

    provider, source, spec = entry.get("provider"), None, None
    if provider not in by_provider:
        problem("provider", f"unknown provider {shown(provider)}{_did_you_mean(provider, by_provider)}",
                f"use one of {', '.join(sorted(by_provider))}")
    else:
        names = [s.name for s in by_provider[provider]]
        defaults = [s.name for s in by_provider[provider] if s.default]  # what a registry written before the provider's second source meant
        source = entry.get("source", names[0] if len(names) == 1 else (defaults[0] if defaults else None))
        spec = next((s for s in by_provider[provider] if s.name == source), None)
        if spec is None:
            problem("source", f"'source' must be one of {', '.join(names)} for provider {provider} "
                    f"(got {shown(source)}){_did_you_mean(source, names)}", f"set source to one of {', '.join(names)}")

    connected_at = _UNKNOWN_TIME
    if "connected_at" not in entry:
        problem("connected_at", "'connected_at' is missing: when billing access was granted (it starts the 48-hour clock)",
                "add connected_at: 2026-11-01T09:30:00Z with the time access was granted")
    else:
        try:
            connected_at = _parse_connected_at(entry["connected_at"])
        except ValueError as exc:
            problem("connected_at", f"field 'connected_at' {exc}", "write it as an ISO 8601 time in UTC, e.g. 2026-11-01T09:30:00Z")
        else:
            if connected_at > now:
                problem("connected_at", f"field 'connected_at' is in the future ({connected_at:%Y-%m-%dT%H:%M:%SZ}, now is "
                        f"{now:%Y-%m-%dT%H:%M:%SZ}), so the 48-hour clock would not start",
                        "write when billing access was granted, in UTC (a local time needs its offset, e.g. +02:00)")

    if spec is None:
        return None, problems
    given = {k: v for k, v in entry.items() if k not in COMMON_FIELDS and v is not None}
    model, bad_fields = _validate_settings(spec, given, problem)
    name = str(entry.get("name") or key)
    if not placeable:
        return None, problems
    if problems or model is None:
        kept = {k: v for k, v in given.items() if k not in bad_fields}
        settings = AccountSettings(kept, broken=_joined(problems))
        return Account(key, provider, spec.name, name, connected_at, settings, tuple(problems)), problems
    settings = AccountSettings(model.model_dump(exclude_none=True))
    return Account(key, provider, spec.name, name, connected_at, settings, (), model), problems


def _validate_settings(spec: Any, given: dict[str, Any], problem: Any) -> tuple[SourceSettings | None, set[str]]:
    """The source's model from the given fields; each error becomes a problem. Returns the fields at fault too."""
    model_class: type[SourceSettings] = spec.settings
    where = f"{spec.provider.key}/{spec.name}"
    try:
        return model_class.model_validate(given), set()
    except ValidationError as exc:
        errors = exc.errors()
    bad_fields: set[str] = set()
    known = list(model_class.model_fields)
    for error in errors:
        field_name = str(error["loc"][0]) if error["loc"] else None
        info = model_class.model_fields.get(field_name) if field_name else None
        described = f" ({info.description.rstrip('.')})" if info is not None and info.description else ""
        cause = (error.get("ctx") or {}).get("error")
        if field_name is not None:
            bad_fields.add(field_name)
        if error["type"] == "extra_forbidden":
            problem(field_name, f"unknown field '{field_name}' for {where}{_did_you_mean(field_name, known + list(COMMON_FIELDS))}",
                    f"remove it or correct its name; the fields of {where} are: {', '.join(known)}")
        elif error["type"] == "missing":
            problem(field_name, f"missing required field '{field_name}' for {where}{described}", f"add '{field_name}:' to this account")
        elif isinstance(cause, _Combinations):
            for rule in cause.problems:
                problem(None, rule.message, rule.fix or "correct the fields named")
        elif isinstance(cause, SettingError):
            problem(field_name, f"field '{field_name}' {cause.message}", cause.fix or f"correct '{field_name}'{described}")
        else:  # Pydantic's own message never repeats the value
            problem(field_name, f"field '{field_name}' {error['msg']}", f"correct '{field_name}'{described}")
    return None, bad_fields


def _mark_double_counting(accounts: list[Account], path: Path, problems: list[Problem]) -> list[Account]:
    """Two accounts reading the same billing data would count it twice: the later one is marked broken."""
    first_reader: dict[Hashable, str] = {}
    marked = []
    for account in accounts:
        clashes = []
        for identity in account.model.billing_identities() if account.model is not None else ():
            owner = first_reader.setdefault((account.provider, *identity), account.key)
            if owner != account.key:
                clashes.append(Problem(
                    path, account.key, None, None,
                    f"reads the same billing data as account '{owner}' ({' '.join(identity)}), so its costs would be counted twice",
                    f"remove this account or '{owner}' (which already reads that billing data), or point this one at other billing data",
                ))
        if clashes:
            problems.extend(clashes)
            account = Account(account.key, account.provider, account.source, account.name, account.connected_at,
                              AccountSettings(dict(account.settings), broken=_joined(clashes)), tuple(clashes))
        marked.append(account)
    return marked


def registry_for_definitions() -> FinopsConfig:
    """The registry as the Dagster definitions see it when they load: one asset per account.

    No file yet means no accounts (the definitions still load, e.g. for `dagster definitions
    validate` on a fresh install). Read once per file version, since every step process loads the
    definitions.
    """
    path = config_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return FinopsConfig(path=path, accounts=())
    return _registry_version(str(path.absolute()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _registry_version(path: str, mtime_ns: int, size: int) -> FinopsConfig:
    return load_config(path)


# --- budgets ---------------------------------------------------------------------------------------

BUDGET_EXAMPLE = ("- name: data-platform\n    amount: 5000\n    currency: USD\n"
                  "    scope: {provider: aws, account: aws-main, service: Amazon EC2, tags: {team: data}}")


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise SettingError(f"must be a positive amount like 5000 or 1250.50, got {shown(value)}")
    try:
        amount = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise SettingError(f"must be a positive amount like 5000 or 1250.50, got {shown(value)}") from None
    if not amount.is_finite() or amount <= 0:
        raise SettingError(f"must be a positive amount like 5000 or 1250.50, got {shown(value)}")
    return amount


def _currency(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise SettingError(f"must be an ISO 4217 currency code like USD or EUR, got {shown(text)}",
                           fix="write the billing currency in three capital letters, e.g. USD")
    return text


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise SettingError("must be a mapping of tag key to value, e.g. {team: data}")
    return {_text(k): _text(v) for k, v in value.items()}


class BudgetScope(BaseModel):
    """What a budget counts: every field given must match (none: everything in the budget's currency)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Text | None = Field(None, description="aws, gcp, azure or digitalocean")
    account: Text | None = Field(None, description="an account key of this file")
    service: Text | None = Field(None, description="ServiceName exactly as in cost_daily, e.g. Amazon EC2")
    tags: Annotated[dict[str, str], BeforeValidator(_tags)] | None = Field(
        None, description="tag key -> value; keys compared normalized (case, 'user:' prefix, spaces and '-' as '_')")

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in (("provider", self.provider), ("account", self.account),
                                                        ("service", self.service)) if value is not None]
        parts += [f"tag {k}={v}" for k, v in sorted((self.tags or {}).items())]
        return ", ".join(parts) or "everything"


class Budget(BaseModel):
    """A monthly budget: the EffectiveCost of its scope in its currency, this month, against `amount`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text = Field(description="a unique name")
    amount: Annotated[Decimal, BeforeValidator(_amount)] = Field(description="the monthly amount")
    currency: Annotated[str, BeforeValidator(_currency)] = Field(description="the billing currency it is in; costs in "
                                                                             "other currencies are never converted or counted")
    scope: BudgetScope = Field(default_factory=BudgetScope)


def _budgets(entries: Any, path: Path, accounts: list[Account], providers: list[str], problems: list[Problem]) -> tuple[Budget, ...]:
    """The `budgets:` list; every mistake becomes a problem (the budget is then left out), in one pass."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        problems.append(Problem(path, None, None, "budgets", "'budgets' must be a list of budgets",
                                f"write each budget as an item under 'budgets:', e.g.\n  {BUDGET_EXAMPLE}", "budgets"))
        return ()
    budgets: list[Budget] = []
    seen: dict[str, int] = {}
    keys = [a.key for a in accounts]
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        section = f"budget '{name}' (budgets[{index}])" if isinstance(name, str) and name.strip() else f"budgets[{index}]"
        found: list[Problem] = []

        def problem(field_name: str | None, message: str, fix: str, section: str = section, found: list[Problem] = found) -> None:
            found.append(Problem(path, None, None, field_name, message, fix, section))

        if not isinstance(entry, dict):
            problem(None, "each budget must be a mapping", f"write it as name, amount, currency and an optional scope, e.g.\n  {BUDGET_EXAMPLE}")
            problems.extend(found)
            continue
        budget = None
        try:
            budget = Budget.model_validate(entry)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ".".join(str(part) for part in error["loc"])
                last = str(error["loc"][-1]) if error["loc"] else None
                model = BudgetScope if len(error["loc"]) > 1 and error["loc"][0] == "scope" else Budget
                known = list(model.model_fields)
                cause = (error.get("ctx") or {}).get("error")
                if error["type"] == "extra_forbidden":
                    problem(loc, f"unknown field '{loc}'{_did_you_mean(last, known)}",
                            f"remove it or correct its name; the fields are: {', '.join(known)}")
                elif error["type"] == "missing":
                    info = model.model_fields.get(last or "")
                    described = f" ({info.description})" if info is not None and info.description else ""
                    problem(loc, f"missing required field '{loc}'{described}", f"add '{last}:' to this budget")
                elif isinstance(cause, SettingError):
                    problem(loc, f"field '{loc}' {cause.message}", cause.fix or f"correct '{loc}'")
                else:
                    problem(loc, f"field '{loc}' {error['msg']}", f"correct '{loc}'")
        if budget is not None:
            if budget.scope.provider is not None and budget.scope.provider not in providers:
                problem("scope.provider", f"unknown provider {shown(budget.scope.provider)}{_did_you_mean(budget.scope.provider, providers)}",
                        f"use one of {', '.join(sorted(providers))}")
            if budget.scope.account is not None and budget.scope.account not in keys:
                problem("scope.account", f"no account with key {shown(budget.scope.account)}{_did_you_mean(budget.scope.account, keys)}",
                        "use the key of an account listed under 'accounts:'")
            if budget.name in seen:
                problem("name", f"duplicate budget name (also budgets[{seen[budget.name]}])", "give every budget its own name")
            else:
                seen[budget.name] = index
        problems.extend(found)
        if budget is not None and not found:
            budgets.append(budget)
    return tuple(budgets)
