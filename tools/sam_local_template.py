"""The template `sam local` runs: a copy of a SAM template (the source one or `sam build`'s) with
the local stand-ins' variables added to some functions' environments, and optionally each
function's code pointed at a folder laid out as `sam build` lays it out.

Why a copy: `sam local invoke --env-vars` only overrides variables the template already declares,
and the stand-ins' (AWS_ENDPOINT_URL, a CA bundle's path) must never be in the deployed template.

    .venv/bin/python tools/sam_local_template.py IN OUT [--env FILE.json] [--code-uri ID=DIR]...

FILE.json: {"LogicalId": {"VARIABLE": "value"}}. Runs with the SAM CLI's own YAML reader (the
project's .venv), which keeps the intrinsic functions (!Ref, !If...) as CloudFormation's long form.
"""

import argparse
import json
import sys

from samcli.yamlhelper import parse_yaml_file, yaml_dump


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("out")
    parser.add_argument("--env", help="JSON: {LogicalId: {VARIABLE: value}}")
    parser.add_argument("--code-uri", action="append", default=[], metavar="ID=DIR")
    args = parser.parse_args()

    template = parse_yaml_file(args.template)
    resources = template.get("Resources", {})

    def function(logical_id):
        resource = resources.get(logical_id)
        if not resource or resource.get("Type") != "AWS::Serverless::Function":
            sys.exit(f"{args.template} has no function {logical_id}")
        return resource.setdefault("Properties", {})

    extra = {}
    if args.env:
        with open(args.env, encoding="utf-8") as file:
            extra = json.load(file)
    for logical_id, variables in extra.items():
        environment = function(logical_id).setdefault("Environment", {}).setdefault("Variables", {})
        environment.update({name: str(value) for name, value in variables.items()})
    for pair in args.code_uri:
        logical_id, _, folder = pair.partition("=")
        properties = function(logical_id)
        properties["CodeUri"] = folder
        # Already built: nothing for `sam local` to build (it does not, but the metadata says how).
        resources[logical_id].pop("Metadata", None)

    with open(args.out, "w", encoding="utf-8") as file:
        file.write(yaml_dump(template))
    return 0


if __name__ == "__main__":
    sys.exit(main())
