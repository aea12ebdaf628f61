"""Settings of an AWS Cost and Usage Report account: where the export is delivered."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from finops_pipeline.config import SettingError, Text, choice, pattern
from finops_pipeline.defs.aws.settings import AwsSettings


def _prefix(value: Any) -> str:
    # "" is a real prefix: the export at the root of the bucket (docs/aws_cur.md).
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SettingError("must be a path prefix like cur/exports (or \"\" for the root of the bucket)")
    return str(value).strip().strip("/")


S3Bucket = pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name")
ReportName = pattern(r"[A-Za-z0-9_.-]+", "a report / export name")
CurVersion = choice("legacy", "cur2")
Prefix = Annotated[str, BeforeValidator(_prefix)]


class CurSettings(AwsSettings):
    """A CUR (legacy) or CUR 2.0 (Data Exports) delivery, read from S3 or from a synced local copy."""

    bucket: S3Bucket | None = Field(None, description="Bucket of the export (or use local_dir).")
    local_dir: Text | None = Field(None, description="A directory holding a synced copy of the bucket, instead of S3.")
    prefix: Prefix = Field("", description="Path prefix of the export in the bucket (\"\": the root).")
    report_name: ReportName = Field(description="Name of the report (legacy) or export (CUR 2.0).")
    cur_version: CurVersion = Field("cur2", description="legacy CUR or CUR 2.0 (Data Exports).")

    def combination_problems(self) -> list[SettingError]:
        problems = super().combination_problems()
        if (self.bucket is None) == (self.local_dir is None):
            problems.append(SettingError(
                "give exactly one of 'bucket' (read from S3) or 'local_dir' (a synced copy)",
                "keep bucket to read from S3, or local_dir to read a synced copy, not both or neither",
            ))
        return problems

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        where = f"s3://{self.bucket}" if self.bucket is not None else self.local_dir
        return (*super().billing_identities(), ("AWS CUR report", f"{where}/{self.prefix}", self.report_name))
