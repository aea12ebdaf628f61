"""Settings of an AWS FOCUS export account: where the Data Export delivers (S3 or a synced local copy)."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.defs.aws.settings import ReportName, S3DeliverySettings


class FocusExportSettings(S3DeliverySettings):
    """A Data Export of the "FOCUS 1.0/1.2 with AWS columns" table, read from S3 or from a synced local copy."""

    export_name: ReportName = Field(description="Name of the Data Export (the folder under the prefix).")

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        return (*super().billing_identities(), ("AWS FOCUS export", self.delivery_location(), self.export_name))
