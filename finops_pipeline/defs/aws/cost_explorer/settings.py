"""Settings of an AWS Cost Explorer account: the shared AWS ones, and how thrifty a refresh is."""

from __future__ import annotations

from pydantic import Field

from finops_pipeline.config import PositiveInt
from finops_pipeline.defs.aws.settings import AwsSettings


class CostExplorerSettings(AwsSettings):
    """Cost Explorer needs only the payer account and credentials; every API page costs USD 0.01."""

    recent_days: PositiveInt = Field(
        3, description="Days before today that every refresh pulls again, besides the days Cost Explorer marks Estimated.")
    full_refresh: bool = Field(
        False, description="Pull the whole month on every refresh instead of only the days that can still change (costs more pages).")
