"""Checks the template's AWS::ServerlessRepo::Application metadata against the rules the
Serverless Application Repository's API model documents (lengths, patterns, label count), read
from botocore's copy of that model in the project's virtualenv. Prints the problems as a JSON
list (empty when the metadata would be accepted).

Run with the project's virtualenv: python sar_metadata.py TEMPLATE
"""
import gzip
import json
import os
import re
import sys

import botocore
from samtranslator.yaml_helper import yaml_parse

MODEL = os.path.join(os.path.dirname(botocore.__file__), "data", "serverlessrepo", "2017-09-08", "service-2.json.gz")


def documented_rules():
    """Per field: (min, max, pattern) as the model's documentation states them."""
    with gzip.open(MODEL) as f:
        members = json.load(f)["shapes"]["CreateApplicationRequest"]["members"]
    rules = {}
    for name, member in members.items():
        text = member.get("documentation", "")
        low = re.search(r"Minimum length=(\d+)", text)
        high = re.search(r"Maximum length=(\d+)", text)
        pattern = re.search(r'Pattern:? "([^"]+)"', text)
        count = re.search(r"Maximum number of labels: (\d+)", text)
        rules[name] = {
            "min": int(low.group(1)) if low else None,
            "max": int(high.group(1)) if high else None,
            # The documentation escapes each backslash once more than the pattern has.
            "pattern": pattern.group(1).replace("\\\\", "\\") if pattern else None,
            "count": int(count.group(1)) if count else None,
        }
    return rules


def problems(metadata, rules):
    found = []
    for field in ["Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "SemanticVersion", "SourceCodeUrl"]:
        if not metadata.get(field):
            found.append(f"{field} is missing")
    for field, rule in rules.items():
        values = metadata.get(field)
        if values is None:
            continue
        if field == "Labels":
            if rule["count"] is not None and len(values) > rule["count"]:
                found.append(f"Labels: {len(values)} labels, at most {rule['count']}")
        else:
            values = [values]
        for value in values:
            value = str(value)
            if rule["min"] is not None and len(value) < rule["min"]:
                found.append(f"{field} {value!r} is shorter than {rule['min']}")
            if rule["max"] is not None and len(value) > rule["max"]:
                found.append(f"{field} is longer than {rule['max']}")
            if rule["pattern"] is not None and not re.fullmatch(rule["pattern"].strip("^$"), value):
                found.append(f"{field} {value!r} does not match {rule['pattern']}")
    version = str(metadata.get("SemanticVersion", ""))
    if not re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", version):
        found.append(f"SemanticVersion {version!r} is no semantic version")
    if not str(metadata.get("SourceCodeUrl", "")).startswith("https://"):
        found.append("SourceCodeUrl is no https URL")
    return found


with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
metadata = template.get("Metadata", {}).get("AWS::ServerlessRepo::Application", {})
rules = documented_rules()
checked = [name for name in ("Author", "Labels", "Name", "Description") if rules.get(name, {}).get("max")]
print(json.dumps({"problems": problems(metadata, rules), "documented": checked, "metadata": metadata}))
