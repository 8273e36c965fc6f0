"""Seeds moto for the cold-start bench: a generic secret with a pending version, a table, and ten
secrets for the secrets-cache extension to prefetch.

Run with the project's virtualenv (boto3 comes with the SAM CLI): python seed_moto.py ENDPOINT TOKEN
Prints the secret's ARN.
"""
import json
import sys

import boto3

endpoint, token = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
sm = boto3.client("secretsmanager", **kw)
arn = sm.create_secret(Name="bench-generic", SecretString=json.dumps({"api_key": "current-key"}))["ARN"]
try:
    # moto adds the AWSPENDING version, then fails to find the (absent) function: as intended.
    sm.rotate_secret(SecretId=arn, ClientRequestToken=token,
                     RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:absent",
                     RotationRules={"AutomaticallyAfterDays": 30})
except Exception:
    pass
sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps({"api_key": "next-key"}),
                    VersionStages=["AWSPENDING"])
boto3.client("dynamodb", **kw).create_table(
    TableName="bench-mq", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
# The secrets-cache bench's prefetch: ten small secrets.
for i in range(10):
    sm.create_secret(Name=f"bench-cache-{i}", SecretString=json.dumps({"password": f"bench-{i}"}))
print(arn)
