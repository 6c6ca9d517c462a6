#!/bin/sh
# Example handler for jobs of type charge_card: always fails, so the job uses up its retries and ends failed (see it
# with `conveyor list --status failed`). Exiting 65 instead would fail it at once, without retries.
cat >/dev/null
echo "card declined (attempt $CONVEYOR_ATTEMPT)" >&2
exit 1
