"""Settings of an AWS Cost and Usage Report account: where the export is delivered."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import choice
from finops_pipeline.defs.aws.settings import ReportName, S3DeliverySettings

CurVersion = choice("legacy", "cur2")


class CurSettings(S3DeliverySettings):
    """A CUR (legacy) or CUR 2.0 (Data Exports) delivery, read from S3 or from a synced local copy."""

    report_name: ReportName = Field(description="Name of the report (legacy) or export (CUR 2.0).")
    cur_version: CurVersion = Field("cur2", description="legacy CUR or CUR 2.0 (Data Exports).")

    def billing_identities(self) -> tuple[tuple[str, ...], ...]:
        return (*super().billing_identities(), ("AWS CUR report", self.delivery_location(), self.report_name))
