"""ResourceType from the resource id (FOCUS 1.2: never NULL where ResourceId is set, when the id says what it is)."""

import duckdb
import pytest

from finops_pipeline.defs.aws.resource_types import resource_type_sql


@pytest.mark.parametrize(
    ("resource_id", "product_code", "expected"),
    [
        ("i-0abc1234def567890", "AmazonEC2", "ec2:instance"),
        ("vol-0123456789abcdef0", "AmazonEC2", "ec2:volume"),
        ("tgw-attach-0123456789abcdef0", "AmazonVPC", "ec2:transit-gateway-attachment"),
        ("arn:aws:lambda:us-east-1:123456789012:function:checkout", "AWSLambda", "lambda:function"),
        ("arn:aws:rds:eu-west-1:123456789012:db:orders", "AmazonRDS", "rds:db"),
        ("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188", "AWSELB",
         "elasticloadbalancing:loadbalancer"),
        ("arn:aws-cn:dynamodb:cn-north-1:123456789012:table/carts", "AmazonDynamoDB", "dynamodb:table"),
        ("arn:aws:s3:::invoices-bucket", "AmazonS3", "s3:bucket"),
        ("invoices-bucket", "AmazonS3", "s3:bucket"),
        ("E2QWRUHAPOMQZL", "AmazonCloudFront", "cloudfront:distribution"),
        # No evidence: NULL rather than a guess.
        ("i-notanid", "AmazonEC2", None),
        ("checkout-queue", "AWSQueueService", None),
        ("", "AmazonEC2", None),
        (None, "AmazonEC2", None),
    ],
)
def test_the_type_is_read_from_the_id(resource_id: str | None, product_code: str, expected: str | None) -> None:
    connection = duckdb.connect()
    found = connection.execute(f"SELECT {resource_type_sql('$1', '$2')}", [resource_id, product_code]).fetchone()[0]
    assert found == expected
