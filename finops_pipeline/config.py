"""The accounts registry: `finops.yaml`, validated, with secrets given only by environment variable name.

The file says which cloud accounts are connected, when billing access was granted (`connected_at`,
the start of the 48-hour clock) and how to reach each provider. A value that is a secret is never
in the file: the file names the environment variable (`*_env` fields) and the value is read at the
moment of use, so it cannot leak into Dagster config, metadata or the lake.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

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


# --- field validators: each returns the clean value or raises ValueError with the reason ----------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _string(value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value).strip() == "":
        raise ValueError("must be a non-empty string")
    return str(value).strip()


def _pattern(regex: str, what: str) -> Callable[[Any], str]:
    compiled = re.compile(regex)

    def check(value: Any) -> str:
        text = _string(value)
        if not compiled.fullmatch(text):
            raise ValueError(f"must be {what}, got {text!r}")
        return text

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {text!r}")
        return text

    return check


def _env_name(value: Any) -> str:
    text = _string(value)
    if not _ENV_NAME.fullmatch(text):
        raise ValueError(f"must be the NAME of an environment variable (letters, digits, _), got {text!r}; put the secret itself in that variable, never in this file")
    return text


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a positive whole number, got {value!r}")
    return value


def _url(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise ValueError(f"must be an http(s) URL, got {text!r}")
    return text.rstrip("/")


_aws_account_id = _pattern(r"\d{12}", "a 12-digit AWS account id")
_uuid = _pattern(_UUID.pattern, "a GUID like 00000000-0000-0000-0000-000000000000")
# BigQuery dataset names: letters, digits and underscores only; this is what keeps them out of SQL injection.
_bq_dataset = _pattern(r"[A-Za-z0-9_]{1,1024}", "a BigQuery dataset name (letters, digits, underscores)")
_gcp_project = _pattern(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", "a GCP project id (6-30 lowercase letters, digits, hyphens)")


@dataclass(frozen=True)
class FieldSpec:
    check: Callable[[Any], Any]
    required: bool = False
    default: Any = None
    doc: str = ""


_AWS_CREDENTIALS = {
    "role_arn": FieldSpec(_pattern(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", "an IAM role ARN"), doc="Role to assume (cross-account access)."),
    "external_id_env": FieldSpec(_env_name, doc="Variable holding the role's external id."),
    "access_key_id_env": FieldSpec(_env_name, doc="Variable holding an access key id (else the default credential chain)."),
    "secret_access_key_env": FieldSpec(_env_name, doc="Variable holding the matching secret access key."),
    "region": FieldSpec(_pattern(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region like us-east-1"), default="us-east-1"),
    "endpoint_url": FieldSpec(_url, doc="Only for S3-compatible storage or the local sandbox."),
}

# (provider, source) -> its settings. The provider packages read these names; nothing else does.
SOURCES: dict[tuple[str, str], dict[str, FieldSpec]] = {
    ("aws", "cost_explorer"): {
        "account_id": FieldSpec(_aws_account_id, required=True, doc="The payer (management) account."),
        **_AWS_CREDENTIALS,
    },
    ("aws", "cur"): {
        "account_id": FieldSpec(_aws_account_id, required=True, doc="The payer account whose report this is."),
        "bucket": FieldSpec(_pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"), doc="Bucket of the export (or use local_dir)."),
        "prefix": FieldSpec(lambda v: _string(v).strip("/"), default="", doc="Path prefix of the export in the bucket."),
        "report_name": FieldSpec(_pattern(r"[A-Za-z0-9_.-]+", "a report / export name"), required=True),
        "cur_version": FieldSpec(_choice("legacy", "cur2"), default="cur2", doc="legacy CUR or CUR 2.0 (Data Exports)."),
        "local_dir": FieldSpec(_string, doc="A directory holding a synced copy of the bucket, instead of S3."),
        **_AWS_CREDENTIALS,
    },
    ("gcp", "bigquery_export"): {
        "billing_account_id": FieldSpec(_pattern(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", "a billing account id like 012345-6789AB-CDEF01"), required=True),
        "project_id": FieldSpec(_gcp_project, required=True, doc="Project that runs (and pays for) the queries."),
        "dataset": FieldSpec(_bq_dataset, required=True, doc="Dataset holding the billing export, as entered in the account settings."),
        "dataset_project_id": FieldSpec(_gcp_project, doc="Project of the dataset when it differs from project_id."),
        "location": FieldSpec(_string, default="US"),
        "credentials_env": FieldSpec(_env_name, doc="Variable holding a service account key file path or its JSON (else application default credentials)."),
        "recent_days": FieldSpec(_positive_int, default=10, doc="Partition days re-read on each refresh (late rows)."),
        "api_endpoint": FieldSpec(_url, doc="Only for the local sandbox."),
    },
    ("azure", "cost_management"): {
        "subscription_id": FieldSpec(_uuid, required=True),
        "tenant_id": FieldSpec(_uuid, required=True),
        "client_id": FieldSpec(_uuid, required=True, doc="The app registration's application (client) id."),
        "client_secret_env": FieldSpec(_env_name, required=True),
        "cloud": FieldSpec(_choice("public", "china", "usgovernment"), default="public"),
        "endpoint": FieldSpec(_url, doc="Management endpoint override (sovereign clouds, the local sandbox)."),
        "authority_host": FieldSpec(_url, doc="Entra ID authority override (sovereign clouds, the local sandbox)."),
        "max_throttle_wait_seconds": FieldSpec(_positive_int, default=60, doc="Longest wait a Cost Management 429 may ask for before the refresh gives up."),
        "ca_bundle": FieldSpec(_string, doc="PEM file of the certificate authorities to trust instead of the system's (a TLS-inspecting proxy, the local sandbox)."),
    },
    ("digitalocean", "billing"): {
        "token_env": FieldSpec(_env_name, required=True, doc="Variable holding the API token (scope billing:read)."),
        "endpoint": FieldSpec(_url, doc="API endpoint override (the local sandbox). Must be https: the token is a bearer token."),
        "ca_bundle": FieldSpec(_string, doc="PEM file of the certificate authorities to trust instead of the system's (a TLS-inspecting proxy, the local sandbox)."),
    },
}
PROVIDERS = tuple(sorted({provider for provider, _ in SOURCES}))


@dataclass(frozen=True)
class Account:
    key: str
    provider: str
    source: str
    name: str
    connected_at: datetime
    settings: Mapping[str, Any] = field(default_factory=dict)

    def env(self, field_name: str) -> str | None:
        """The secret behind an `*_env` field, read now; None when the field is not configured."""
        variable = self.settings.get(field_name)
        if variable is None:
            return None
        value = os.environ.get(variable)
        if value is None or value == "":
            raise MissingEnvironmentVariable(self.key, field_name, variable)
        return value

    def env_names(self) -> list[str]:
        return [v for k, v in self.settings.items() if k.endswith("_env") and v]


@dataclass(frozen=True)
class FinopsConfig:
    path: Path
    accounts: tuple[Account, ...]
    history_start: str | None = None  # YYYY-MM: the oldest billing period to offer (default: 13 months back)

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
            for field_name, variable in account.settings.items():
                if field_name.endswith("_env") and not os.environ.get(variable):
                    problems.append(MissingEnvironmentVariable(account.key, field_name, variable))
        return problems


def config_path() -> Path:
    return Path(os.environ.get("FINOPS_CONFIG") or DEFAULT_CONFIG_FILE)


def data_dir() -> Path:
    return Path(os.environ.get("FINOPS_DATA_DIR") or DEFAULT_DATA_DIR).absolute()


def _parse_connected_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"must be an ISO 8601 time like 2026-11-01T09:30:00Z, got {value!r}") from exc
    else:
        raise ValueError(f"must be an ISO 8601 time like 2026-11-01T09:30:00Z, got {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_config(raw: Any, path: Path) -> FinopsConfig:
    where = str(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping with an 'accounts' list")
    unknown_top = set(raw) - {"accounts", "history_start"}
    if unknown_top:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown_top)}; only 'accounts' and 'history_start' are allowed")
    history_start = raw.get("history_start")
    if history_start is not None:
        history_start = str(history_start)
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", history_start):
            raise ConfigError(f"{where}: 'history_start' must be a billing period like 2025-01, got {history_start!r}")
    entries = raw.get("accounts") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: 'accounts' must be a list of accounts")

    accounts: list[Account] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"{where}: accounts[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label}: each account must be a mapping (key, provider, source, name, connected_at, ...)")
        key = entry.get("key")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigError(f"{label}: 'key' must be a short slug of lowercase letters, digits, '-' or '_' (got {key!r})")
        label = f"{where}: account '{key}'"
        if key in seen:
            raise ConfigError(f"{label}: duplicate key (also accounts[{seen[key]}]); every account needs its own key")
        seen[key] = index

        provider = entry.get("provider")
        if provider not in PROVIDERS:
            raise ConfigError(f"{label}: unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
        sources = [s for p, s in SOURCES if p == provider]
        source = entry.get("source", sources[0] if len(sources) == 1 else None)
        if (provider, source) not in SOURCES:
            raise ConfigError(f"{label}: 'source' must be one of {', '.join(sources)} for provider {provider} (got {source!r})")

        name = entry.get("name") or key
        if "connected_at" not in entry:
            raise ConfigError(f"{label}: 'connected_at' is missing: when billing access was granted, e.g. 2026-11-01T09:30:00Z (it starts the 48-hour clock)")
        try:
            connected_at = _parse_connected_at(entry["connected_at"])
        except ValueError as exc:
            raise ConfigError(f"{label}: field 'connected_at' {exc}") from None

        specs = SOURCES[(provider, source)]
        given = {k: v for k, v in entry.items() if k not in {"key", "provider", "source", "name", "connected_at"}}
        unknown = set(given) - set(specs)
        if unknown:
            raise ConfigError(f"{label}: unknown field(s) {sorted(unknown)} for {provider}/{source}; known: {', '.join(sorted(specs))}")
        settings: dict[str, Any] = {}
        for field_name, spec in specs.items():
            if field_name not in given or given[field_name] is None:
                if spec.required:
                    raise ConfigError(f"{label}: missing required field '{field_name}' for {provider}/{source}" + (f" ({spec.doc})" if spec.doc else ""))
                if spec.default is not None:
                    settings[field_name] = spec.default
                continue
            try:
                settings[field_name] = spec.check(given[field_name])
            except ValueError as exc:
                raise ConfigError(f"{label}: field '{field_name}' {exc}") from None
        _check_combinations(label, provider, source, settings)
        accounts.append(Account(key=key, provider=provider, source=source, name=str(name), connected_at=connected_at, settings=settings))
    return FinopsConfig(path=path, accounts=tuple(accounts), history_start=history_start)


def _check_combinations(label: str, provider: str, source: str, settings: Mapping[str, Any]) -> None:
    if provider == "aws":
        if ("access_key_id_env" in settings) != ("secret_access_key_env" in settings):
            raise ConfigError(f"{label}: give both access_key_id_env and secret_access_key_env, or neither (default credential chain)")
        if "external_id_env" in settings and "role_arn" not in settings:
            raise ConfigError(f"{label}: external_id_env is set but role_arn is not; the external id belongs to the role to assume")
    if (provider, source) == ("aws", "cur") and ("bucket" in settings) == ("local_dir" in settings):
        raise ConfigError(f"{label}: give exactly one of 'bucket' (read from S3) or 'local_dir' (a synced copy)")


def load_config(path: str | Path | None = None) -> FinopsConfig:
    """Read and validate the registry. A missing file is an error with the fix, not an empty registry."""
    path = Path(path) if path is not None else config_path()
    if not path.exists():
        raise ConfigError(
            f"{path}: accounts registry not found. Copy finops.example.yaml to {path} and edit it, "
            f"or point FINOPS_CONFIG at your file."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_config(raw, path)


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
