"""ResourceType for AWS rows that carry a resource id but no type (CUR legacy and 2.0).

FOCUS 1.2: ResourceType MUST NOT be NULL when ResourceId is not. CUR has no resource-type column, so the
type is read from the id itself, in AWS Resource Explorer's `service:resource-type` form (`ec2:instance`,
`s3:bucket`, `lambda:function`): from an ARN (`arn:<partition>:<service>:<region>:<account>:<type>/<id>`
or `<type>:<id>`), from the EC2-style id prefixes (`i-`, `vol-`, ...), or from the service of a product
whose bare ids name one kind of resource (an S3 bucket name, a CloudFront distribution id). An id none of
these explains keeps ResourceType NULL rather than a guess (docs/aws_cur.md says which).
"""

from __future__ import annotations

from finops_pipeline.schema import sql_literal

# Bare EC2-family ids (the prefix, then 8 or 17 hex digits) -> Resource Explorer type; longer prefixes first.
ID_PREFIXES: dict[str, str] = {
    "tgw-attach-": "ec2:transit-gateway-attachment",
    "eipalloc-": "ec2:elastic-ip",
    "vpce-": "ec2:vpc-endpoint",
    "subnet-": "ec2:subnet",
    "snap-": "ec2:snapshot",
    "nat-": "ec2:natgateway",
    "eni-": "ec2:network-interface",
    "vol-": "ec2:volume",
    "ami-": "ec2:image",
    "vpc-": "ec2:vpc",
    "tgw-": "ec2:transit-gateway",
    "cr-": "ec2:capacity-reservation",
    "fs-": "elasticfilesystem:file-system",
    "i-": "ec2:instance",
    "h-": "ec2:dedicated-host",
}

# Products whose bare (non-ARN, unprefixed) resource ids are always one kind of resource.
PRODUCT_TYPES: dict[str, str] = {
    "AmazonS3": "s3:bucket",
    "AmazonCloudFront": "cloudfront:distribution",
    "AmazonRoute53": "route53:hostedzone",
}


def resource_type_sql(resource_id: str, product_code: str) -> str:
    """A DuckDB expression: the Resource Explorer type of `resource_id`, NULL when there is no id or no evidence."""
    arn_type = (f"lower(regexp_extract({resource_id}, '^arn:[^:]+:([^:]+):', 1)) || ':' || "
                f"lower(regexp_extract({resource_id}, '^arn:[^:]+:[^:]+:[^:]*:[^:]*:([^/:]+)[/:]', 1))")
    prefixes = " ".join(f"WHEN regexp_matches({resource_id}, {sql_literal('^' + prefix + '[0-9a-f]{8,17}$')}) THEN {sql_literal(kind)}"
                        for prefix, kind in ID_PREFIXES.items())
    products = " ".join(f"WHEN {product_code} = {sql_literal(code)} THEN {sql_literal(kind)}" for code, kind in PRODUCT_TYPES.items())
    # An S3 ARN has no type segment (arn:aws:s3:::bucket): its service's one kind of resource.
    arn_without_type = f"CASE lower(regexp_extract({resource_id}, '^arn:[^:]+:([^:]+):', 1)) WHEN 's3' THEN 's3:bucket' END"
    return (f"CASE WHEN {resource_id} IS NULL OR {resource_id} = '' THEN NULL "
            f"WHEN starts_with({resource_id}, 'arn:') THEN CASE "
            f"WHEN regexp_matches({resource_id}, '^arn:[^:]+:[^:]+:[^:]*:[^:]*:[^/:]+[/:]') THEN {arn_type} "
            f"ELSE {arn_without_type} END "
            f"{prefixes} {products} END")
