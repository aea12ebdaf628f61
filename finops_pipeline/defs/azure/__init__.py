"""Microsoft Azure: the Cost Management Query API (cost_management/)."""

from finops_pipeline.sources import Provider

PROVIDER = Provider(key="azure", label="Azure", focus_name="Microsoft", invoice_issuer="Microsoft", color="#0078d4")
