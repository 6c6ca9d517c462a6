"""Parses Prometheus text files with prometheus_client's own parser (the reference implementation of the format).

Usage: parse_prometheus.py FILE...   Prints one JSON object per file: {"samples": [[name, {labels}, value], ...]}.
Exits 1 with the parser's message when a file is not valid Prometheus text.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            if family.type == "unknown":
                raise ValueError(f"metric {family.name} has no TYPE line")
            for sample in family.samples:
                if math.isnan(sample.value):
                    raise ValueError(f"{sample.name} is NaN")
                samples.append([sample.name, sample.labels, sample.value])
    except Exception as error:  # the parser raises ValueError and others; every one is a failure of the format
        print(f"{path}: not valid Prometheus text: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"samples": samples}))
