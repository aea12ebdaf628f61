"""The demo: the real pipeline, through Dagster, against local stand-ins seeded with synthetic billing.

`finops-pipeline demo` starts the stand-ins on 127.0.0.1, writes a registry pointing at them
(<data>/sandbox/finops.yaml), runs the `refresh_costs` job for every billing period of the last
~75 days and the 48-hour checks on a persistent Dagster instance, and prints what a FinOps
dashboard would show. `finops-pipeline sandbox` starts the same stand-ins and keeps them up so the
Dagster UI can run the pipeline against them.

With FINOPS_DATA_DIR=s3://bucket/prefix and no S3 endpoint of its own (FINOPS_LAKE_S3_ENDPOINT,
AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL), the lake goes to the AWS stand-in's moto server (the bucket is
created there): the whole demo on object storage, gone when the stand-ins stop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import yaml

from finops_pipeline import storage
from finops_pipeline.config import FinopsConfig, load_config
from finops_sandbox.aws import AwsDemo, MotoSandbox
from finops_sandbox.azure import AzureDemo
from finops_sandbox.azure_exports import AzureExportsDemo
from finops_sandbox.cur import AwsCurDemo
from finops_sandbox.digitalocean import DigitalOceanDemo
from finops_sandbox.focus import AwsFocusDemo
from finops_sandbox.gcp import GcpDemo

DEFAULT_BASE_PORT = 47100  # the stand-ins take consecutive ports from here (FINOPS_SANDBOX_PORT)
HISTORY_DAYS = 75


class DemoProvider(Protocol):
    def start(self, port: int) -> None: ...
    def stop(self) -> None: ...
    def accounts(self, now: datetime) -> list[dict]: ...
    def environment(self) -> dict[str, str]: ...
    def seed(self, config: FinopsConfig, periods: list[str], today: date) -> None: ...


def demo_providers() -> list[DemoProvider]:
    return [AwsDemo(), AwsCurDemo(), GcpDemo(), AzureDemo(), DigitalOceanDemo(), AzureExportsDemo(),
            AwsFocusDemo()]


def demo_periods(today: date, days: int = HISTORY_DAYS) -> list[str]:
    """Billing periods covering the last `days` days, oldest first."""
    periods: list[str] = []
    day = today - timedelta(days=days)
    while day <= today:
        period = day.strftime("%Y-%m")
        if period not in periods:
            periods.append(period)
        day += timedelta(days=1)
    return periods


def sandbox_config_path(data_dir: Path | str) -> Path:
    """<data>/sandbox/finops.yaml (for a lake on object storage, in the local work directory)."""
    return storage.work_dir(data_dir) / "sandbox" / "finops.yaml"


LAKE_ENDPOINT_VARIABLES = ("FINOPS_LAKE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def _aws_moto(providers: list[DemoProvider]) -> MotoSandbox:
    """The AWS stand-in's moto server (the demo's first; every moto server in the process shares its state)."""
    return next(p.moto for p in providers if isinstance(p, AwsDemo) and p.moto is not None)


def lake_on_sandbox(data_dir: Path | str, providers: list[DemoProvider]) -> None:
    """An s3:// lake without an endpoint of its own: point it at the AWS stand-in's moto, create the bucket."""
    if not storage.is_remote(data_dir) or not str(data_dir).startswith(("s3://", "s3a://")):
        return
    if any(os.environ.get(name) for name in LAKE_ENDPOINT_VARIABLES):
        return
    import boto3

    moto = _aws_moto(providers)
    os.environ["FINOPS_LAKE_S3_ENDPOINT"] = moto.url
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in (("AWS_ACCESS_KEY_ID", "sandbox-lake"), ("AWS_SECRET_ACCESS_KEY", "sandbox-lake")):
        os.environ.setdefault(name, value)  # moto takes any; a real key in the environment is left as it is
    bucket = str(data_dir).split("://", 1)[1].split("/", 1)[0]
    boto3.client("s3", endpoint_url=moto.url, region_name=os.environ["AWS_DEFAULT_REGION"]).create_bucket(Bucket=bucket)
    storage.reset_clients()


@contextmanager
def running_sandbox(data_dir: Path, now: datetime, base_port: int | None = None) -> Iterator[FinopsConfig]:
    """Start every stand-in, write the sandbox registry, export the secrets it names, and seed data."""
    base_port = base_port if base_port is not None else int(os.environ.get("FINOPS_SANDBOX_PORT", DEFAULT_BASE_PORT))
    providers = demo_providers()
    started: list[DemoProvider] = []
    try:
        for offset, provider in enumerate(providers):
            provider.start(base_port + offset if base_port else 0)
            started.append(provider)
        # moto keeps its state per process, shared by every moto server in it: a demo run earlier in this process
        # left its buckets and its queued Cost Explorer answers, which this run's accounts would be served. The
        # stand-ins create nothing until they seed, so one reset here starts every moto-backed one empty.
        _aws_moto(providers).reset()
        accounts = [entry for provider in providers for entry in provider.accounts(now)]
        for provider in providers:
            os.environ.update(provider.environment())
        lake_on_sandbox(data_dir, providers)
        path = sandbox_config_path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Written by `finops-pipeline demo`: accounts served by the local stand-ins (finops_pipeline/sandbox).\n"
            + yaml.safe_dump({"reporting_currency": "USD", "accounts": accounts}, sort_keys=False),
            encoding="utf-8",
        )
        config = load_config(path)
        periods = demo_periods(now.date())
        for provider in providers:
            provider.seed(config, periods, now.date())
        yield config
    finally:
        for provider in reversed(started):
            provider.stop()


def run_demo(data_dir: Path | str, now: datetime | None = None, then: Callable[[FinopsConfig], None] | None = None) -> FinopsConfig:
    """Run the pipeline through Dagster on the sandbox; returns the registry it used.

    The same runs as `finops-pipeline refresh --last 3`: each source's refresh job for every billing
    period of the last ~75 days, the tables once, then the check job, on the persistent instance.
    `then` runs while the stand-ins are still up (a lake on the sandbox's moto is gone after).
    """
    from dagster import DagsterInstance

    from finops_pipeline.jobs import QUIET, refresh, run_checks
    from finops_pipeline.resources import FinopsResource

    now = now or datetime.now(timezone.utc)
    if not storage.is_remote(data_dir):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    os.environ["FINOPS_DATA_DIR"] = str(data_dir)
    with running_sandbox(data_dir, now) as config:
        os.environ["FINOPS_CONFIG"] = str(config.path)
        finops = FinopsResource(config_file=str(config.path), data_dir=str(data_dir))
        instance = DagsterInstance.get()
        periods = demo_periods(now.date())
        print(f"  refreshing {len(config.accounts)} accounts for {', '.join(periods)} ...", flush=True)
        refreshed = refresh(finops, list(config.accounts), periods, instance=instance, run_config=QUIET)
        failed = sorted({r.account for r in refreshed.results if not r.ok and not r.waiting})
        waiting = sorted({r.account for r in refreshed.results if r.waiting})
        if failed:
            print(f"  failed as planned, their runs red in the Dagster UI: {', '.join(failed)} (causes and fixes below)", flush=True)
        if waiting:
            print(f"  no data yet, as expected inside 48 hours: {', '.join(waiting)}", flush=True)
        print("  check_billing_connections ...", flush=True)
        run_checks(finops, instance=instance, run_config=QUIET)
        if then is not None:
            then(config)
    return config
