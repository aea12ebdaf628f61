"""Settings every AWS source shares: the payer account and how to get credentials for it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from finops_pipeline.config import EnvName, SettingError, SourceSettings, Text, Url, pattern

AwsAccountId = pattern(r"\d{12}", "a 12-digit AWS account id")
RoleArn = pattern(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", "an IAM role ARN like arn:aws:iam::123456789012:role/finops")
AwsRegion = pattern(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region like us-east-1")
S3Bucket = pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name")
ReportName = pattern(r"[A-Za-z0-9_.-]+", "a report / export name")


def _prefix(value: Any) -> str:
    # "" is a real prefix: the export at the root of the bucket (docs/aws_cur.md).
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SettingError("must be a path prefix like cur/exports (or \"\" for the root of the bucket)")
    return str(value).strip().strip("/")


Prefix = Annotated[str, BeforeValidator(_prefix)]


class AwsSettings(SourceSettings):
    """An AWS payer account and its credentials (a role to assume, an access key, or the default chain)."""

    account_id: AwsAccountId = Field(description="The payer (management) account: its billing covers the whole organization.")
    role_arn: RoleArn | None = Field(None, description="Role to assume (cross-account access).")
    external_id_env: EnvName | None = Field(None, description="Variable holding the role's external id.")
    access_key_id_env: EnvName | None = Field(None, description="Variable holding an access key id (else the default credential chain).")
    secret_access_key_env: EnvName | None = Field(None, description="Variable holding the matching secret access key.")
    region: AwsRegion = Field("us-east-1", description="Region of the API calls.")
    endpoint_url: Url | None = Field(None, description="Only for S3-compatible storage or the local sandbox.")

    def combination_problems(self) -> list[SettingError]:
        problems = super().combination_problems()
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            problems.append(SettingError(
                "give both access_key_id_env and secret_access_key_env, or neither (default credential chain)",
                "add the missing one, or remove both to use the default credential chain or role_arn",
            ))
        if self.external_id_env is not None and self.role_arn is None:
            problems.append(SettingError(
                "external_id_env is set but role_arn is not; the external id belongs to the role to assume",
                "add role_arn (the role the external id belongs to), or remove external_id_env",
            ))
        return problems

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        # A payer's billing covers every member account: two sources on one payer count it twice.
        return (("AWS payer account", self.account_id),)


class S3DeliverySettings(AwsSettings):
    """Where an AWS export is delivered (CUR, FOCUS): a bucket and prefix on S3, or a synced local copy."""

    bucket: S3Bucket | None = Field(None, description="Bucket of the export (or use local_dir).")
    local_dir: Text | None = Field(None, description="A directory holding a synced copy of the bucket, instead of S3.")
    prefix: Prefix = Field("", description="Path prefix of the export in the bucket (\"\": the root).")

    def combination_problems(self) -> list[SettingError]:
        problems = super().combination_problems()
        if (self.bucket is None) == (self.local_dir is None):
            problems.append(SettingError(
                "give exactly one of 'bucket' (read from S3) or 'local_dir' (a synced copy)",
                "keep bucket to read from S3, or local_dir to read a synced copy, not both or neither",
            ))
        return problems

    def delivery_location(self) -> str:
        """Where the export lands, as one comparable string (two accounts on one location count it twice)."""
        where = f"s3://{self.bucket}" if self.bucket is not None else self.local_dir
        return f"{where}/{self.prefix}"
