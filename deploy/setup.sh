#!/usr/bin/env bash
# Installs what Conveyor needs to build and test on Debian (bookworm) as root, skipping what is already there:
# hiredis (the C Redis client Conveyor wraps), OpenSSL 3 (libssl-dev, for rediss://; the openssl command makes the TLS
# tests' certificates), redis-server and redis-tools (redis-cli, redis-benchmark), and python3-redis for the
# cross-language test; for the network-partition tests (PartitionTests): iproute2 (ip netns, veth), nftables (drop
# and loss rules), iptables (its NFQUEUE target: this kernel has no nft queue expression) and libnetfilter-queue-dev
# with a C compiler (the program that delays queued packets; the kernel has no netem); for the dashboard's browser
# test (DashboardBrowserTests): Debian's chromium, its chromium-driver (the same version, from the same source
# package) and python3-selenium (Debian's 4.8 speaks W3C WebDriver to any current chromedriver); and, from PyPI for
# Debian's python3 (python3-pip), schemathesis and openapi-spec-validator for the API's OpenAPI test
# (ServeOpenAPITests), promql-parser for the Grafana dashboard's queries and kubernetes-validate for the Kubernetes
# manifests; python3-prometheus-client parses /metrics; the Compose Specification schema (compose_spec.json of the
# docker-compose 1.29.2 wheel, from PyPI, Apache-2.0) goes to /var/cache/conveyor-test for
# Tests/Deploy/check_manifests.py.
set -euo pipefail

missing=()
dpkg -s libhiredis-dev >/dev/null 2>&1 || missing+=(libhiredis-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# redis-py for Debian's python3, for the cross-language test (a Python producer whose jobs the Swift worker runs).
/usr/bin/python3 -c 'import redis' >/dev/null 2>&1 || missing+=(python3-redis)
# prometheus_client's parser, which checks that /metrics is valid Prometheus text (PrometheusMetricsTests).
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
dpkg -s libnetfilter-queue-dev >/dev/null 2>&1 || missing+=(libnetfilter-queue-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# The pinned versions that ServeOpenAPITests runs with, the PromQL parser that checks the Grafana dashboard
# (PrometheusMetricsTests), and the Kubernetes schemas (1.25-1.37) that DeployManifestTests validate against.
python_tools=(schemathesis==4.32.5 openapi-spec-validator==0.9.0 promql-parser==0.12.0 kubernetes-validate==1.37.0)
python_tools_present() {
    /usr/bin/python3 - "${python_tools[@]}" >/dev/null 2>&1 <<'PYTHON'
import sys
from importlib.metadata import version
sys.exit(0 if all(version(name) == wanted for name, wanted in (t.split("==") for t in sys.argv[1:])) else 1)
PYTHON
}
if ! python_tools_present; then
    /usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
fi
# Headless Chromium driven by Selenium, for the dashboard's browser test. The browser and its driver must be of one
# version: when they differ (one upgraded alone), both are installed again, which brings them to the same one.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] ||
    [ "$(dpkg-query -W -f='${Version}' chromium 2>/dev/null)" != "$(dpkg-query -W -f='${Version}' chromium-driver 2>/dev/null)" ]; then
    missing+=(chromium chromium-driver)
fi
/usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || missing+=(python3-selenium)

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root (or install these yourself): apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python_tools_present; then
    echo "setup: installing ${python_tools[*]} for /usr/bin/python3 (PyPI)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root (or: PIP_BREAK_SYSTEM_PACKAGES=1 /usr/bin/python3 -m pip install ${python_tools[*]})" >&2
        exit 1
    fi
    PIP_BREAK_SYSTEM_PACKAGES=1 /usr/bin/python3 -m pip install -q --root-user-action=ignore "${python_tools[@]}"
fi

# The Compose Specification schema for DeployManifestTests: taken from the docker-compose 1.29.2 wheel (only the wheel
# is downloaded, nothing is installed) and checked against its known hash.
compose_schema=/var/cache/conveyor-test/compose_spec.json
compose_schema_sha256=0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac
if ! echo "$compose_schema_sha256  $compose_schema" | sha256sum --check --status 2>/dev/null; then
    echo "setup: extracting the Compose Specification schema from docker-compose==1.29.2 (PyPI) to $compose_schema"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root to write $compose_schema" >&2
        exit 1
    fi
    wheels=/var/cache/conveyor-test/wheels
    mkdir -p "$wheels"
    /usr/bin/python3 -m pip download -q --no-deps --only-binary=:all: --dest "$wheels" docker-compose==1.29.2
    /usr/bin/python3 - "$wheels/docker_compose-1.29.2-py2.py3-none-any.whl" "$compose_schema" <<'PYTHON'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    data = wheel.read("compose/config/compose_spec.json")
with open(sys.argv[2] + ".new", "wb") as out:
    out.write(data)
PYTHON
    echo "$compose_schema_sha256  $compose_schema.new" | sha256sum --check --status
    mv "$compose_schema.new" "$compose_schema"
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: add /opt/swift/usr/bin to PATH" >&2
    fi
    echo "setup: Swift 6.1 or newer is needed (swift.org/install)" >&2
    exit 1
fi
