"""DigitalOcean billing (billing insights, balance, invoices) through pydo."""
