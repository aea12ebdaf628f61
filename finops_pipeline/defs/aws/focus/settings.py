"""Settings of an AWS FOCUS export account: where the Data Export delivers (S3 or a synced local copy)."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import SettingError, Text
from finops_pipeline.defs.aws.cur.settings import Prefix, ReportName, S3Bucket
from finops_pipeline.defs.aws.settings import AwsSettings


class FocusExportSettings(AwsSettings):
    """A Data Export of the "FOCUS 1.0/1.2 with AWS columns" table, read from S3 or from a synced local copy."""

    bucket: S3Bucket | None = Field(None, description="Bucket of the export (or use local_dir).")
    local_dir: Text | None = Field(None, description="A directory holding a synced copy of the bucket, instead of S3.")
    prefix: Prefix = Field("", description="Path prefix of the export in the bucket (\"\": the root).")
    export_name: ReportName = Field(description="Name of the Data Export (the folder under the prefix).")

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
        return (*super().billing_identities(), ("AWS FOCUS export", f"{where}/{self.prefix}", self.export_name))
