#!/bin/sh
# Example handler for jobs of type flaky_upload: fails its first two attempts (a non-zero exit; the end of standard
# error becomes the job's error), then succeeds, to show retries with backoff.
cat >/dev/null
if [ "$CONVEYOR_ATTEMPT" -lt 3 ]; then
    echo "upload timed out (attempt $CONVEYOR_ATTEMPT), will be retried" >&2
    exit 1
fi
printf '{"uploaded":true,"attempts":%s}\n' "$CONVEYOR_ATTEMPT"
