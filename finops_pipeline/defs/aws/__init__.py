"""Amazon Web Services: Cost Explorer (cost_explorer/) and Cost and Usage Reports on S3 (cur/)."""

from finops_pipeline.sources import Provider

PROVIDER = Provider(key="aws", label="AWS", focus_name="AWS", invoice_issuer="Amazon Web Services", color="#ff9900")
