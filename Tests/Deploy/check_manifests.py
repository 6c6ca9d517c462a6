#!/usr/bin/python3
"""Checks Conveyor's deployment files: deploy/kubernetes/*.yaml and deploy/compose/compose.yaml.

Usage: check_manifests.py [--kubernetes-version V]... [--compose-schema FILE] [PATH]...

Each PATH is a folder (every *.yaml / *.yml in it, not recursive) or a file; without one, the repository's
deploy/kubernetes and deploy/compose. A document with `services` and no `apiVersion` is a Compose file; every
other document is a Kubernetes object.

- Kubernetes objects: validated with kubernetes-validate, strict (unknown fields are errors), for every version
  given (default 1.29 and 1.37). Kustomization is checked by hand (its resources exist); KEDA's objects
  (keda.sh/v1alpha1), whose CRD schema is not among the core schemas, are checked structurally: a ScaledObject
  must target a worker Deployment of the same files, with a `redis` trigger on the pending list of a queue that
  worker serves (`<namespace>:{<queue>}:pending`), a positive listLength and an address.
- The Compose file: validated against the Compose Specification JSON schema (compose/config/compose_spec.json of
  the docker-compose 1.29.2 wheel; deploy/setup.sh puts it in /var/cache/conveyor-test).
- Cross-checks on every container running `conveyor`: no Redis URL and no --redis on its command line, REDIS_URL
  and CONVEYOR_SERVE_TOKEN from a Secret; a worker's terminationGracePeriodSeconds (Compose: stop_grace_period)
  longer than its --grace + --kill-grace; its probes (Compose: health check) on /health/live and /health/ready at
  its --metrics-port, served on all addresses; serve's probes at its --port; the security context and resources.

Prints one line per problem and exits 1 when there is any; prints a summary and exits 0 otherwise.
"""

import argparse
import json
import os
import re
import sys

import jsonschema
import yaml

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VERSIONS = ["1.29", "1.37"]
DEFAULT_COMPOSE_SCHEMA = "/var/cache/conveyor-test/compose_spec.json"
# The worker's defaults (Sources/conveyor/WorkerOptions.swift).
DEFAULT_GRACE = 25.0
DEFAULT_KILL_GRACE = 5.0
DEFAULT_SERVE_PORT = 8080
# Kubernetes' and Compose's defaults.
DEFAULT_TERMINATION_GRACE = 30.0
DEFAULT_STOP_GRACE = 10.0

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


# Durations ------------------------------------------------------------------------------------------------------

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "us": 1e-6}


def conveyor_duration(text):
    """A duration as conveyor's flags take it (500ms, 30s, 5m, 2h, 7d), in seconds, or None."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", str(text).strip())
    return float(match.group(1)) * UNITS[match.group(2)] if match else None


def compose_duration(text):
    """A Compose duration (1m30s, 40s, 1.5s, 100ms), in seconds, or None."""
    text = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * UNITS[u] for n, u in parts)


# Command lines ----------------------------------------------------------------------------------------------------


def conveyor_argv(argv):
    """The arguments after `conveyor` when argv runs it (directly or as the image's entry point), else None."""
    argv = [str(a) for a in argv]
    for index, word in enumerate(argv):
        if os.path.basename(word) == "conveyor":
            return argv[index + 1 :]
    return None


def flag_values(args, name):
    """Every value of --name in args (`--name V` or `--name=V`)."""
    values = []
    for index, word in enumerate(args):
        if word == name and index + 1 < len(args):
            values.append(args[index + 1])
        elif word.startswith(name + "="):
            values.append(word[len(name) + 1 :])
    return values


def flag_value(args, name, default=None):
    values = flag_values(args, name)
    return values[-1] if values else default


REDIS_URL_PATTERN = re.compile(r"\b(rediss?(\+sentinel|\+cluster)?|unix)://", re.IGNORECASE)


def check_command_line(where, argv):
    for word in argv:
        if REDIS_URL_PATTERN.search(str(word)):
            problem(where, f"a Redis URL on the command line ({word!r}): give it in REDIS_URL from a Secret")
        if str(word) == "--redis" or str(word).startswith("--redis="):
            problem(where, "--redis on the command line: give the URL in REDIS_URL from a Secret")
        if "REDIS_URL" in str(word):
            # Also $(REDIS_URL), which Kubernetes expands into the command line.
            problem(where, f"REDIS_URL on the command line ({word!r}): the worker reads it from its environment")


def check_worker_timing(where, args, period, what):
    grace = conveyor_duration(flag_value(args, "--grace", "25s"))
    kill_grace = conveyor_duration(flag_value(args, "--kill-grace", "5s"))
    if grace is None or kill_grace is None:
        problem(where, "--grace or --kill-grace is not a duration conveyor takes (500ms, 30s, 5m, 2h, 7d)")
        return
    if period is None:
        return
    if not period > grace + kill_grace:
        problem(
            where,
            f"{what} ({period:g}s) must be more than the worker's --grace + --kill-grace "
            f"({grace:g}s + {kill_grace:g}s): otherwise the SIGKILL cuts the graceful stop short",
        )


# Kubernetes -----------------------------------------------------------------------------------------------------


def describe(document):
    metadata = document.get("metadata") or {}
    return f"{document.get('kind', '?')}/{metadata.get('name', '?')}"


def validate_kubernetes(where, document, versions):
    import kubernetes_validate

    for version in versions:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError as error:
            problem(where, error.message)
            return
        except kubernetes_validate.utils.VersionNotSupportedError as error:
            problem(where, error.message)
            return
        except jsonschema.ValidationError as error:
            path = ".".join(str(p) for p in error.absolute_path) or "(top)"
            problem(where, f"not valid for Kubernetes {version} (strict): at {path}: {error.message}")


def pod_template(document):
    """The pod spec and its metadata of a workload, or (None, None)."""
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template = spec.get("template") or {}
        return template.get("spec") or {}, template.get("metadata") or {}
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return template.get("spec") or {}, template.get("metadata") or {}
    if kind == "Pod":
        return spec, document.get("metadata") or {}
    return None, None


def probe_port(container, probe):
    """The container port number a probe's httpGet reaches, or None."""
    port = ((probe or {}).get("httpGet") or {}).get("port")
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return declared.get("containerPort")
    return None


def check_probes(where, container, port, expected_port_source):
    for kind, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        probe = container.get(kind)
        if not probe:
            problem(where, f"no {kind} (GET {path} on port {port})")
            continue
        http = probe.get("httpGet")
        if not http:
            problem(where, f"{kind} is not an httpGet of {path}")
            continue
        if http.get("path") != path:
            problem(where, f"{kind} asks {http.get('path')!r}, not {path}")
        reached = probe_port(container, probe)
        if reached != port:
            problem(where, f"{kind} reaches port {http.get('port')!r} ({reached}), not {expected_port_source} {port}")


def check_secret_env(where, container, name, required):
    entries = [e for e in container.get("env") or [] if e.get("name") == name]
    if not entries:
        if required:
            problem(where, f"no {name} in the environment (from a Secret)")
        return
    for entry in entries:
        if "value" in entry:
            problem(where, f"{name} is a literal value in the manifest: take it from a Secret (valueFrom.secretKeyRef)")
        elif not (entry.get("valueFrom") or {}).get("secretKeyRef"):
            problem(where, f"{name} does not come from a Secret (valueFrom.secretKeyRef)")


def check_hardening(where, pod, container):
    pod_context = pod.get("securityContext") or {}
    context = container.get("securityContext") or {}
    if not (context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True):
        problem(where, "securityContext.runAsNonRoot is not true")
    if context.get("readOnlyRootFilesystem") is not True:
        problem(where, "securityContext.readOnlyRootFilesystem is not true")
    if context.get("allowPrivilegeEscalation") is not False:
        problem(where, "securityContext.allowPrivilegeEscalation is not false")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        problem(where, "securityContext.capabilities.drop does not hold ALL")
    resources = container.get("resources") or {}
    if not resources.get("requests") or not resources.get("limits"):
        problem(where, "no resource requests and limits")


def check_workload(where, document, workers):
    pod, template_metadata = pod_template(document)
    if pod is None:
        return
    for container in pod.get("containers") or []:
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        args = conveyor_argv(argv)
        if args is None:
            continue
        at = f"{where}: container {container.get('name')}"
        check_command_line(at, argv)
        check_hardening(at, pod, container)
        check_secret_env(at, container, "REDIS_URL", required=True)
        command = args[0] if args else ""
        if command == "worker":
            period = float(pod.get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE))
            check_worker_timing(at, args, period, "terminationGracePeriodSeconds")
            port = flag_value(args, "--metrics-port")
            if port is None or not port.isdigit() or int(port) == 0:
                problem(at, "no fixed --metrics-port: the probes need /health/live and /health/ready on a known port")
            else:
                port = int(port)
                host = flag_value(args, "--metrics-host", "127.0.0.1")
                if host not in ("0.0.0.0", "::", "[::]"):
                    problem(at, f"--metrics-host is {host}: the kubelet's probes need 0.0.0.0 (or ::)")
                check_probes(at, container, port, "--metrics-port")
                annotations = template_metadata.get("annotations") or {}
                scraped = annotations.get("prometheus.io/port")
                if scraped is not None and str(scraped) != str(port):
                    problem(at, f"the prometheus.io/port annotation is {scraped}, not --metrics-port {port}")
            if document.get("kind") == "Deployment":
                workers.append(
                    {
                        "name": (document.get("metadata") or {}).get("name"),
                        "labels": template_metadata.get("labels") or {},
                        "queues": flag_values(args, "--queue") or ["default"],
                        "namespace": flag_value(args, "--namespace", "conveyor"),
                    }
                )
        elif command == "serve":
            port = int(flag_value(args, "--port", str(DEFAULT_SERVE_PORT)))
            host = flag_value(args, "--host", "127.0.0.1")
            if host not in ("0.0.0.0", "::", "[::]"):
                problem(at, f"serve --host is {host}: the Service and the probes need 0.0.0.0 (or ::)")
            check_probes(at, container, port, "serve --port")
            if "--token-file" not in " ".join(args) and "--password-file" not in " ".join(args):
                check_secret_env(at, container, "CONVEYOR_SERVE_TOKEN", required=True)
            if "--allow-unauthenticated" in args:
                problem(at, "serve --allow-unauthenticated in a deployment")
        check_secret_env(at, container, "CONVEYOR_SERVE_TOKEN", required=False)


def check_keda(where, document, workers):
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if document.get("apiVersion") != "keda.sh/v1alpha1":
        problem(where, f"apiVersion is {document.get('apiVersion')!r}, not keda.sh/v1alpha1")
    if kind == "TriggerAuthentication":
        for index, ref in enumerate(spec.get("secretTargetRef") or []):
            for field in ("parameter", "name", "key"):
                if not ref.get(field):
                    problem(where, f"spec.secretTargetRef[{index}] has no {field}")
        return
    if kind != "ScaledObject":
        problem(where, f"kind {kind!r} of keda.sh is not checked here (ScaledObject, TriggerAuthentication)")
        return
    unknown = set(spec) - {
        "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
        "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
    }  # fmt: skip
    for field in sorted(unknown):
        problem(where, f"spec.{field} is not a field of a ScaledObject")
    target = spec.get("scaleTargetRef") or {}
    worker = next((w for w in workers if w["name"] == target.get("name")), None)
    if worker is None:
        names = ", ".join(str(w["name"]) for w in workers) or "none"
        problem(where, f"spec.scaleTargetRef.name {target.get('name')!r} is no worker Deployment here ({names})")
    if target.get("kind", "Deployment") != "Deployment":
        problem(where, f"spec.scaleTargetRef.kind is {target.get('kind')!r}, not Deployment")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and high >= 1):
        problem(where, f"minReplicaCount {low!r} and maxReplicaCount {high!r} are not 0 <= min <= max, max >= 1")
    elif low < 1:
        problem(where, "minReplicaCount is 0: with no worker, scheduled and retrying jobs are never promoted to pending")
    triggers = spec.get("triggers") or []
    redis = [t for t in triggers if t.get("type") == "redis"]
    if not redis:
        problem(where, "no trigger of type redis (on the queue's pending list)")
    expected = {f"{w['namespace']}:{{{q}}}:pending" for w in ([worker] if worker else []) for q in w["queues"]}
    for index, trigger in enumerate(redis):
        at = f"{where}: triggers[{index}]"
        metadata = trigger.get("metadata") or {}
        list_name = metadata.get("listName")
        if not list_name:
            problem(at, "no metadata.listName")
        elif worker and list_name not in expected:
            problem(at, f"listName {list_name!r} is not the pending list of a queue the worker serves "
                    f"({', '.join(sorted(expected))})")  # fmt: skip
        length = metadata.get("listLength")
        if not (isinstance(length, str) and length.isdigit() and int(length) > 0):
            problem(at, f"listLength {length!r} is not a positive integer in a string")
        if not (
            metadata.get("address")
            or metadata.get("addressFromEnv")
            or (metadata.get("host") or metadata.get("hostFromEnv"))
            and (metadata.get("port") or metadata.get("portFromEnv"))
        ):
            problem(at, "no address (metadata.address, addressFromEnv, or host and port)")
        address = metadata.get("address")
        if address and "://" in str(address):
            problem(at, f"address {address!r} is a URL: KEDA wants host:port")
        for field in ("password", "username"):
            if field in metadata:
                problem(at, f"metadata.{field} in the manifest: use a TriggerAuthentication with a Secret")


def check_kustomization(where, document, folder):
    for resource in document.get("resources") or []:
        if "://" in resource:
            continue
        if not os.path.exists(os.path.join(folder, resource)):
            problem(where, f"resource {resource!r} does not exist")


def check_kubernetes(documents, versions):
    """documents: (file, document) pairs."""
    workers = []
    later = []
    for path, document in documents:
        where = f"{path}: {describe(document)}"
        kind = document.get("kind")
        api = str(document.get("apiVersion", ""))
        if kind == "Kustomization":
            check_kustomization(where, document, os.path.dirname(path))
            continue
        if api.startswith("keda.sh/"):
            later.append((where, document))
            continue
        validate_kubernetes(where, document, versions)
        check_workload(where, document, workers)
        if kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
            later.append((where, document))
    for where, document in later:
        kind = document.get("kind")
        spec = document.get("spec") or {}
        if kind == "PodDisruptionBudget":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            covers = any(selector.items() <= w["labels"].items() for w in workers)
            if workers and "worker" in json.dumps(selector) and not covers:
                problem(where, f"the selector {selector} matches no worker Deployment's pods")
        elif kind == "HorizontalPodAutoscaler":
            target = (spec.get("scaleTargetRef") or {}).get("name")
            if workers and target not in [w["name"] for w in workers]:
                problem(where, f"scaleTargetRef.name {target!r} is no worker Deployment here")
        else:
            check_keda(where, document, workers)
    return workers


# Compose --------------------------------------------------------------------------------------------------------


def compose_message(error):
    """The schema's message, naming the unknown fields where it says only which patterns they miss."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        unknown = [k for k in error.instance if k not in known and not any(re.search(p, k) for p in patterns)]
        if unknown:
            return "unknown field(s) " + ", ".join(repr(k) for k in unknown)
    return error.message


def check_compose(path, document, schema_path):
    if not os.path.exists(schema_path):
        problem(
            path,
            f"the Compose Specification schema {schema_path} is missing: run deploy/setup.sh (it extracts it from "
            "the docker-compose 1.29.2 wheel), or give --compose-schema",
        )
    else:
        with open(schema_path) as file:
            schema = json.load(file)
        # Its $schema (draft 2019-09, written with a trailing #) is not one jsonschema looks up by name.
        if "2019-09" in str(schema.get("$schema", "")):
            validator = jsonschema.Draft201909Validator(schema)
        else:
            validator = jsonschema.validators.validator_for(schema)(schema)
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
            at = ".".join(str(p) for p in error.absolute_path) or "(top)"
            problem(path, f"not valid for the Compose Specification: at {at}: {compose_message(error)}")
    folder = os.path.dirname(path)
    for name, service in (document.get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        where = f"{path}: service {name}"
        command = service.get("command") or []
        entrypoint = service.get("entrypoint") or []
        argv = (entrypoint if isinstance(entrypoint, list) else entrypoint.split()) + (
            command if isinstance(command, list) else command.split()
        )
        args = conveyor_argv(argv)
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            env_file = env_file if isinstance(env_file, str) else env_file.get("path", "")
            full = os.path.join(folder, env_file)
            if not os.path.exists(full) and not os.path.exists(full + ".example"):
                problem(where, f"env_file {env_file} has no {env_file}.example beside it to copy from")
        if args is None:
            continue
        check_command_line(where, argv)
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(e.split("=", 1) if "=" in e else (e, None) for e in environment)
        for variable in ("REDIS_URL", "CONVEYOR_SERVE_TOKEN"):
            if environment.get(variable):
                problem(where, f"{variable} is written in the Compose file: put it in the env_file")
        if not env_files and args[:1] != ["install"]:
            problem(where, "no env_file (REDIS_URL, CONVEYOR_SERVE_TOKEN)")
        if args[:1] == ["worker"]:
            signal = service.get("stop_signal", "SIGTERM")
            if signal != "SIGTERM":
                problem(where, f"stop_signal is {signal}: the worker stops gracefully on SIGTERM")
            text = service.get("stop_grace_period")
            period = DEFAULT_STOP_GRACE if text is None else compose_duration(text)
            if period is None:
                problem(where, f"stop_grace_period {text!r} is not a duration")
            check_worker_timing(where, args, period, "stop_grace_period")
            port = flag_value(args, "--metrics-port")
            test = (service.get("healthcheck") or {}).get("test")
            test = " ".join(test) if isinstance(test, list) else str(test or "")
            if port is None:
                problem(where, "no --metrics-port: the health check needs /health/ready")
            elif f":{port}/health/ready" not in test:
                problem(where, f"the health check {test!r} does not ask /health/ready on --metrics-port {port}")


# Main -----------------------------------------------------------------------------------------------------------


def load(path):
    try:
        with open(path) as file:
            return [d for d in yaml.safe_load_all(file) if d is not None]
    except yaml.YAMLError as error:
        problem(path, f"not valid YAML: {error}")
        return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--kubernetes-version", action="append", dest="versions")
    parser.add_argument("--compose-schema", default=os.environ.get("CONVEYOR_COMPOSE_SCHEMA", DEFAULT_COMPOSE_SCHEMA))
    options = parser.parse_args()
    versions = options.versions or DEFAULT_VERSIONS
    paths = options.paths or [os.path.join(REPOSITORY, "deploy/kubernetes"), os.path.join(REPOSITORY, "deploy/compose")]
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(
                os.path.join(path, name) for name in os.listdir(path) if name.endswith((".yaml", ".yml"))
            )
        elif os.path.isfile(path):
            files.append(path)
        else:
            problem(path, "no such file or folder")
    kubernetes, compose = [], []
    for path in files:
        for document in load(path):
            if not isinstance(document, dict):
                problem(path, "a document that is not a mapping")
            elif "services" in document and "apiVersion" not in document:
                compose.append((path, document))
            elif "apiVersion" in document and "kind" in document:
                kubernetes.append((path, document))
            else:
                problem(path, "neither a Kubernetes object (apiVersion, kind) nor a Compose file (services)")
    if not files:
        problem(" ".join(paths), "no YAML file to check")
    workers = check_kubernetes(kubernetes, versions)
    for path, document in compose:
        check_compose(path, document, options.compose_schema)
    if problems:
        for line in problems:
            print(f"check_manifests: {line}", file=sys.stderr)
        print(f"check_manifests: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"check_manifests: ok: {len(kubernetes)} Kubernetes objects in {len({p for p, _ in kubernetes})} files "
        f"(kubernetes-validate strict, Kubernetes {', '.join(versions)}; KEDA structurally; {len(workers)} worker "
        f"Deployment(s)), {len(compose)} Compose file(s) (Compose Specification schema)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
