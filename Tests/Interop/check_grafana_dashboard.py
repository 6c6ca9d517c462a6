"""Checks a Grafana dashboard's Prometheus queries with a PromQL parser (promql-parser, from PyPI).

Usage: check_grafana_dashboard.py DASHBOARD.json   Prints the metric names the queries read, one per line.
Exits 1 naming the panel and the query when one does not parse, or when a panel has no query.
"""

import json
import re
import sys

import promql_parser

with open(sys.argv[1], encoding="utf-8") as f:
    dashboard = json.load(f)

names = set()
for panel in dashboard["panels"]:
    targets = panel.get("targets") or []
    if not targets:
        print(f"panel '{panel['title']}' has no query", file=sys.stderr)
        sys.exit(1)
    for target in targets:
        # Grafana's template variables, as Grafana fills them in ("All" selected).
        expr = target["expr"].replace("$queue", ".*").replace("$__rate_interval", "5m")
        try:
            promql_parser.parse(expr)
        except Exception as error:  # the parser raises ValueError and others; each one is a broken query
            print(f"panel '{panel['title']}': {error}: {expr}", file=sys.stderr)
            sys.exit(1)
        names.update(re.findall(r"\bconveyor_[a-z_]+\b", expr))

for name in sorted(names):
    print(name)
