"""boto3 sessions for a configured AWS account: base credentials, then AssumeRole when a role is set."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from finops_pipeline.config import Account

if TYPE_CHECKING:  # boto3 is imported where a session is made: loading the definitions stays cheap
    import boto3
    from botocore.config import Config

# Standard retry mode backs off exponentially with jitter on throttling, LimitExceededException
# (Cost Explorer's) included; a refresh gives up after this many attempts (AWS_MAX_ATTEMPTS, the
# SDK's own variable, overrides it) and the failure is diagnosed as throttling.
def retry_config() -> Config:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or 6)},
        user_agent_extra="finops-pipeline",
    )


def aws_session(account: Account) -> boto3.Session:
    """Credentials from the named environment variables, else the default chain; then the role, if any."""
    import boto3

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
    sts = base.client("sts", endpoint_url=settings.get("endpoint_url"), config=retry_config())
    credentials = sts.assume_role(**assume)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def aws_client(account: Account, service: str, session: boto3.Session | None = None, region: str | None = None) -> Any:
    session = session or aws_session(account)
    return session.client(
        service, region_name=region or session.region_name, endpoint_url=account.settings.get("endpoint_url"), config=retry_config()
    )
