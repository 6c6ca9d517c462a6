#!/bin/sh
# Example handler for the recurring job of the demo (type report): prints when it ran.
cat >/dev/null
printf '{"report":"ok","at":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
