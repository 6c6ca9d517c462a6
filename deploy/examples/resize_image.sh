#!/bin/sh
# Example handler for jobs of type resize_image: takes a moment, then prints the sizes it "made".
cat >/dev/null
sleep 1
printf '{"sizes":[64,256,1024],"job":"%s"}\n' "$CONVEYOR_JOB_ID"
