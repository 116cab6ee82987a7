"""Validates a Compose file against the vendored Compose Specification schema; prints it as JSON.

Usage: python check_compose.py COMPOSE_FILE SCHEMA_FILE
Exit 0 and the parsed file (YAML merge keys resolved) as JSON on stdout when it is valid;
exit 1 and every schema error (path and message) on stderr when it is not.
Run by tests/it/deploy_static.rs, which checks ports, environment and mounts on the JSON.
"""

import json
import sys

import jsonschema
import yaml


def main() -> int:
    compose_path, schema_path = sys.argv[1], sys.argv[2]
    with open(compose_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    # The schema says draft 2019-09 with a trailing `#` in its `$schema`, which jsonschema does
    # not look up: name the draft.
    cls = jsonschema.Draft201909Validator
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        print(f"{compose_path}: {path}: {e.message}", file=sys.stderr)
    if errors:
        return 1
    json.dump(doc, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
