"""Builds and validates the kustomizations under deploy/kubernetes; prints the objects as JSON.

Usage: python check_kubernetes.py KUSTOMIZATION_DIR [KUBERNETES_VERSION]
Exit 0 and `[{"kind":..., ...}, ...]` (the built objects, in order) on stdout when every object
is valid; exit 1 with one line per problem on stderr otherwise. Run by tests/it/deploy_static.rs.

Not kustomize: the subset the manifests use (`resources` files and directories, inline patches
that `$patch: delete` an object). Any other kustomization key is an error, so this check never
quietly builds something different from `kubectl apply -k`.
"""

import json
import os
import sys

import kubernetes_validate
import yaml

KNOWN_KEYS = {"apiVersion", "kind", "resources", "patches"}

# Prometheus Operator objects: kubernetes-validate has no schema for them (CRDs). Their required
# fields, from the operator's CRDs (monitoring.coreos.com/v1), checked by hand.
CRD_REQUIRED = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): [["metadata", "name"], ["spec", "selector"], ["spec", "endpoints"]],
    ("monitoring.coreos.com/v1", "PrometheusRule"): [["metadata", "name"], ["spec", "groups"]],
}


def key(obj):
    return (obj.get("apiVersion"), obj.get("kind"), obj.get("metadata", {}).get("name"))


def build(directory, problems):
    path = os.path.join(directory, "kustomization.yaml")
    with open(path, encoding="utf-8") as f:
        kust = yaml.safe_load(f)
    for k in sorted(set(kust) - KNOWN_KEYS):
        problems.append(f"{path}: kustomization key `{k}` is not supported by this check")
    objects = []
    for res in kust.get("resources", []):
        full = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(full):
            objects.extend(build(full, problems))
            continue
        with open(full, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    doc["__file"] = os.path.relpath(full)
                    objects.append(doc)
    for patch in kust.get("patches", []):
        body = yaml.safe_load(patch.get("patch", ""))
        if set(patch) != {"patch"} or not isinstance(body, dict) or body.get("$patch") != "delete":
            problems.append(f"{path}: only inline `$patch: delete` patches are supported by this check")
            continue
        before = len(objects)
        objects = [o for o in objects if key(o) != key(body)]
        if len(objects) == before:
            problems.append(f"{path}: the delete patch matches no object: {key(body)}")
    seen = set()
    for o in objects:
        if key(o) in seen:
            problems.append(f"{path}: {key(o)} appears twice")
        seen.add(key(o))
    return objects


def validate(obj, version, problems):
    where = f"{obj['__file']}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    clean = {k: v for k, v in obj.items() if k != "__file"}
    required = CRD_REQUIRED.get((obj.get("apiVersion"), obj.get("kind")))
    if required is not None:
        for fields in required:
            node = clean
            for field in fields:
                node = node.get(field) if isinstance(node, dict) else None
            if node in (None, "", [], {}):
                problems.append(f"{where}: required field {'.'.join(fields)} is missing or empty")
        return
    try:
        kubernetes_validate.validate(clean, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "(top level)"
        problems.append(f"{where}: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        problems.append(f"{where}: no schema: {e}")


def main():
    directory = sys.argv[1]
    version = sys.argv[2] if len(sys.argv) > 2 else "1.31"
    problems = []
    objects = build(directory, problems)
    for obj in objects:
        validate(obj, version, problems)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    json.dump(objects, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
