"""DigitalOcean: billing insights, invoices and balance through pydo (billing/)."""

from finops_pipeline.sources import Provider

PROVIDER = Provider(key="digitalocean", label="DigitalOcean", focus_name="DigitalOcean", invoice_issuer="DigitalOcean", color="#9b59b6")
