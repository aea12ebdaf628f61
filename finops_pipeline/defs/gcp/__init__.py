"""Google Cloud: the BigQuery billing export (bigquery_export/) and the FOCUS export in BigQuery (focus/)."""

from finops_pipeline.sources import Provider

PROVIDER = Provider(key="gcp", label="Google Cloud", focus_name="Google Cloud", invoice_issuer="Google Cloud", color="#34a853")
