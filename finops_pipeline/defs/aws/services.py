"""One AWS service name whatever the source: CUR's product name (`product/ProductName`).

Cost Explorer's SERVICE dimension splits or renames a few services ("Amazon Elastic Compute Cloud -
Compute", "EC2 - Other"); CUR, AWS's FOCUS export (ServiceName = product name) and the price list name
them by product. We keep CUR's names and map Cost Explorer's to them, so one service has one name in
cost_daily whichever AWS source an account uses.
"""

from __future__ import annotations

from finops_pipeline.schema import lookup_sql

# Cost Explorer SERVICE value -> CUR product name.
COST_EXPLORER_TO_CUR: dict[str, str] = {
    "Amazon Elastic Compute Cloud - Compute": "Amazon Elastic Compute Cloud",
    "EC2 - Other": "Amazon Elastic Compute Cloud",
    "Amazon Elastic Load Balancing": "Elastic Load Balancing",
    "Amazon EC2 Container Registry (ECR)": "Amazon EC2 Container Registry (ECR)",
    "Amazon Elastic Container Service for Kubernetes": "Amazon Elastic Container Service for Kubernetes",
    "Amazon OpenSearch Service": "Amazon OpenSearch Service",
    "AmazonCloudWatch": "AmazonCloudWatch",
    "Amazon CloudWatch": "AmazonCloudWatch",
}


def service_name(name: str) -> str:
    return COST_EXPLORER_TO_CUR.get(name, name)


def service_name_sql(expression: str) -> str:
    """`service_name` as a DuckDB CASE (CUR names pass unchanged; used so both AWS paths share one rule)."""
    return lookup_sql(expression, {ce: cur for ce, cur in COST_EXPLORER_TO_CUR.items() if ce != cur}, expression)
