#!/usr/bin/env bash
# Builds what the container image holds, the steps the Dockerfile's build stage runs (Docker cannot build on the
# test machine, so ImageBuildTests runs this script in a clean copy of the sources instead):
#   deploy/docker/build.sh SOURCE OUTPUT [release|debug]
# SOURCE: the sources (a clean checkout); OUTPUT: a folder laid out like the image's root, which the runtime stage
# copies as it is: usr/local/bin/conveyor, and the example handlers under opt/conveyor/handlers. Needs Swift 6.1 or
# newer, libhiredis-dev, libssl-dev and pkg-config. The binary links the Swift runtime and Foundation statically, so
# the runtime image needs only libhiredis0.14, libssl3 and the C/C++ runtime that Debian's slim image has.
set -euo pipefail
source_folder=$(cd "$1" && pwd)
output=$(mkdir -p "$2" && cd "$2" && pwd)
configuration=${3:-release}
case "$configuration" in release | debug) ;; *) echo "build: the configuration is release or debug, not $configuration" >&2; exit 64 ;; esac

cd "$source_folder"
swift build -c "$configuration" --product conveyor --static-swift-stdlib
binary="$(swift build -c "$configuration" --show-bin-path)/conveyor"
install -D -m 0755 "$binary" "$output/usr/local/bin/conveyor"
install -d "$output/opt/conveyor/handlers"
install -m 0755 deploy/examples/*.sh "$output/opt/conveyor/handlers/"

# The shared libraries the binary needs must all come from the runtime stage's packages (or its base image).
allowed='^(linux-vdso|libc|libm|libdl|libpthread|librt|libutil|libgcc_s|libstdc\+\+|ld-linux-x86-64|ld-linux-aarch64|libhiredis|libssl|libcrypto|libz)\.'
unexpected=$(ldd "$output/usr/local/bin/conveyor" | awk '{print $1}' | sed 's#.*/##' | grep -Ev "$allowed" || true)
if [ -n "$unexpected" ]; then
    echo "build: the binary needs libraries the runtime image lacks: $unexpected" >&2
    exit 1
fi
"$output/usr/local/bin/conveyor" --version
