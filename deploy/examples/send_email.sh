#!/bin/sh
# Example handler for jobs of type send_email: reads the job (JSON) on standard input, "sends" the mail, and prints
# the result as JSON. Conveyor sets CONVEYOR_JOB_ID, CONVEYOR_JOB_TYPE, CONVEYOR_QUEUE and CONVEYOR_ATTEMPT.
job=$(cat)
to=$(printf '%s' "$job" | sed -n 's/.*"to" *: *"\([^"]*\)".*/\1/p')
sleep 0.3
printf '{"sent_to":"%s","attempt":%s}\n' "${to:-nobody}" "$CONVEYOR_ATTEMPT"
