"""boto3 sessions for a configured AWS account: base credentials, then AssumeRole when a role is set.

Every client of one pull shares the core's `Deadline` (finops_pipeline.http_budget), built from the
account's `give_up_after_seconds`: each attempt's read timeout is cut to what is left of it, and no
attempt (retry, next page, next object) starts once it is spent, so an endpoint that never answers
costs at most that long, not botocore's default 60 s read timeout times its retries times the pages.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from finops_pipeline.config import Account
from finops_pipeline.http_budget import DEFAULT_GIVE_UP_AFTER_SECONDS, Deadline

if TYPE_CHECKING:  # boto3 is imported where a session is made: loading the definitions stays cheap
    import boto3
    from botocore.config import Config

MAX_CONNECT_TIMEOUT = 10.0
MAX_READ_TIMEOUT = 60.0


def max_attempts() -> int:
    """botocore attempts per request (AWS_MAX_ATTEMPTS, the SDK's own variable, overrides the 6)."""
    return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS") or 6))


# Standard retry mode backs off exponentially with jitter on throttling, LimitExceededException
# (Cost Explorer's) included, and on 5xx answers and timeouts; a request gives up after
# `max_attempts()` attempts, and the whole pull after its deadline, whichever comes first.
def retry_config(deadline: Deadline | None = None) -> Config:
    from botocore.config import Config

    budget = deadline.seconds if deadline else DEFAULT_GIVE_UP_AFTER_SECONDS
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts()},  # AWS_MAX_ATTEMPTS counts the first try
        connect_timeout=min(MAX_CONNECT_TIMEOUT, max(0.5, budget / 4)),
        read_timeout=min(MAX_READ_TIMEOUT, max(1.0, budget / 2)),
        user_agent_extra="finops-pipeline",
    )


def _bound_by(client: Any, deadline: Deadline, what: str) -> Any:
    """No attempt starts after the deadline; each attempt may wait at most what is left of it."""
    read_timeout = client.meta.config.read_timeout

    def before_send(request: Any, **_: Any) -> None:
        left = deadline.check(what)
        context = getattr(request, "context", None)
        if context is not None:  # botocore's per-request read timeout override
            context["read_timeout"] = max(0.05, min(read_timeout, left))

    client.meta.events.register("before-send", before_send, unique_id="finops-deadline")
    return client


def aws_session(account: Account, deadline: Deadline | None = None) -> boto3.Session:
    """Credentials from the named environment variables, else the default chain; then the role, if any."""
    import boto3

    deadline = deadline or Deadline.for_account(account)
    settings = account.settings
    region = settings.get("region", "us-east-1")
    base = boto3.Session(
        aws_access_key_id=account.env("access_key_id_env"),
        aws_secret_access_key=account.env("secret_access_key_env"),
        region_name=region,
    )
    role_arn = settings.get("role_arn")
    if not role_arn:
        return base
    assume: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": f"finops-pipeline-{account.key}"[:64]}
    external_id = account.env("external_id_env")
    if external_id:
        assume["ExternalId"] = external_id
    sts = _bound_by(base.client("sts", endpoint_url=settings.get("endpoint_url"), config=retry_config(deadline)), deadline, "AWS STS")
    credentials = sts.assume_role(**assume)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def aws_client(account: Account, service: str, session: boto3.Session | None = None, region: str | None = None,
               deadline: Deadline | None = None) -> Any:
    """A client whose requests, together with the session's, stay within `deadline` (else a fresh one)."""
    deadline = deadline or Deadline.for_account(account)
    session = session or aws_session(account, deadline)
    client = session.client(
        service, region_name=region or session.region_name, endpoint_url=account.settings.get("endpoint_url"),
        config=retry_config(deadline),
    )
    return _bound_by(client, deadline, {"ce": "AWS Cost Explorer", "s3": "Amazon S3"}.get(service, f"AWS {service}"))
