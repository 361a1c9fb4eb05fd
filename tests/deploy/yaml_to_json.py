"""Prints a YAML file (a compose file) as JSON, merge keys resolved, with
PyYAML: an outside parser of what deploy/ ships."""

import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    print(json.dumps(yaml.safe_load(f)))
