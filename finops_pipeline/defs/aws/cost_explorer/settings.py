"""Settings of an AWS Cost Explorer account: the shared AWS ones, nothing more."""

from __future__ import annotations

from finops_pipeline.defs.aws.settings import AwsSettings


class CostExplorerSettings(AwsSettings):
    """Cost Explorer needs only the payer account and credentials."""
