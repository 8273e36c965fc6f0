"""Prints the CloudFormation that SAM makes of template.yaml, as JSON, for the template tests.

Run with the project's virtualenv: python sam_translate.py TEMPLATE [PARAMETERS_JSON]
Code and layer content locations are replaced by S3 URIs first, as `sam package` does; no AWS call is made.
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; the template names none by short name."""

    def load(self):
        return {}


os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
for resource in template.get("Resources", {}).values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://artifacts/code.zip"
    if resource.get("Type") == "AWS::Serverless::LayerVersion":
        resource.setdefault("Properties", {})["ContentUri"] = "s3://artifacts/layer.zip"
parameters = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
print(json.dumps(transform(template, parameters, NoManagedPolicies())))
