"""The Dockerfile, .dockerignore and compose.yaml, checked by reading them (these machines
cannot run Docker): a multi-stage build whose runtime has no compiler and no torch, runs as
a non-root user, keeps models and indexes in volumes and checks /readyz; a compose file
whose services, variables, volumes and health checks fit together."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from snaprag.config import Config

ROOT = Path(__file__).resolve().parents[2]
COMPILERS = ("build-essential", "gcc", "g++", "clang", "cmake", "make ")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The build stages, each the instructions from its FROM to the next."""
    found: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(ins)
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def args_of(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [a for i, a in stage if i == name]


def test_two_stages_and_a_runtime_without_compilers_or_torch(dockerfile: str) -> None:
    build, runtime = stages(dockerfile)[-2:]
    assert len(stages(dockerfile)) == 2
    assert build[0][1].endswith("AS build") and runtime[0][1].endswith("AS runtime")
    # wheels are built in the build stage, and installed from there without an index
    assert any("pip wheel" in a for a in args_of(build, "RUN"))
    assert any("--no-index" in a for a in args_of(build, "RUN"))
    # the runtime copies what was built; it installs no packages and compiles nothing
    runtime_runs = " ".join(args_of(runtime, "RUN"))
    assert "pip install" not in runtime_runs and "apt-get install" not in runtime_runs
    assert not any(c in runtime_runs for c in COMPILERS)
    assert any(a.startswith("--from=build") for a in args_of(runtime, "COPY"))
    assert "slim" in dockerfile.split("ARG PYTHON_IMAGE=")[1].split()[0]
    assert "torch" not in " ".join(a for _, a in instructions(dockerfile)).lower()


def test_the_installed_extras_exist_and_pull_no_torch(dockerfile: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    default = re.search(r"ARG EXTRAS=(\S+)", dockerfile)
    assert default is not None
    names = default.group(1).split(",")
    assert "server" in names  # serve needs fastapi and uvicorn
    requirements = list(project["dependencies"])
    for name in names:
        assert name in extras, f"Dockerfile installs extra {name!r} that pyproject lacks"
        requirements += extras[name]
    assert not [r for r in requirements if re.match(r"torch\b", r)]


def test_runtime_runs_as_a_non_root_user(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    users = args_of(runtime, "USER")
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    # the user is created in the image, and owns the directories it writes
    assert any("useradd" in a and users[-1] in a for a in args_of(runtime, "RUN"))
    assert [i for i, _ in runtime].index("USER") < [i for i, _ in runtime].index("CMD")


def test_health_check_asks_readyz_on_the_served_port(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    (check,) = args_of(runtime, "HEALTHCHECK")
    assert "/readyz" in check and "127.0.0.1:8000" in check
    assert "curl" not in check and "wget" not in check  # neither is in a slim image
    cmd = shlex.split(" ".join(re.findall(r'"([^"]*)"', args_of(runtime, "CMD")[-1])))
    assert cmd[0] == "serve" and cmd[cmd.index("--port") + 1] == "8000"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert "8000" in args_of(runtime, "EXPOSE")[-1]
    assert "snaprag" in args_of(runtime, "ENTRYPOINT")[-1]


def test_models_and_indexes_are_volumes(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    volumes = set(re.findall(r'"(/[^"]+)"', " ".join(args_of(runtime, "VOLUME"))))
    assert {"/models", "/data"} <= volumes
    env = " ".join(args_of(runtime, "ENV"))
    settings = dict(re.findall(r"(SNAPRAG_\w+)=(\S+)", env))
    assert settings["SNAPRAG_CACHE_DIR"] == "/models"  # where models are found and converted
    assert settings["SNAPRAG_INDEX"].startswith("/data/")
    # the default model is converted at build time, into what becomes the models volume
    build = stages(dockerfile)[0]
    assert any("resolve_model('minilm'" in a for a in args_of(build, "RUN"))


def dockerignored(rules: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        forms = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        candidates = prefixes + [p.split("/", k)[-1] for p in prefixes for k in range(1, 4)]
        if any(fnmatch.fnmatchcase(c, f) for c in candidates for f in forms):
            ignored = not negate
    return ignored


def test_dockerignore_sends_only_what_the_build_copies(dockerfile: str) -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        word
        for ins, rest in instructions(dockerfile)
        if ins == "COPY" and not rest.startswith("--from")
        for word in rest.split()[:-1]
        if not word.startswith("--")
    ]
    assert copied
    for path in copied:
        assert not dockerignored(rules, path.rstrip("/")), f"{path} is copied but ignored"
    assert not dockerignored(rules, "src/snaprag/engine.py")
    for path in (".git/HEAD", "tests/unit/test_bm25.py", ".snaprag/snaprag.db", "docs/x.md"):
        assert dockerignored(rules, path), f"{path} would be sent to the daemon"
    assert dockerignored(rules, "src/snaprag/__pycache__/engine.cpython-311.pyc")


def test_compose_wires_snaprag_redis_and_milvus_standalone(compose: dict) -> None:
    services = compose["services"]
    assert {"snaprag", "redis", "milvus", "etcd", "minio"} <= set(services)
    app = services["snaprag"]
    assert app["build"]["context"] == "."
    env = app["environment"]
    redis_url = re.fullmatch(r"redis://(\w+):(\d+)/\d+", env["SNAPRAG_REDIS_URL"])
    assert redis_url is not None and redis_url.group(1) == "redis"
    store = re.fullmatch(r"milvus:http://(\w+):(\d+)", env["SNAPRAG_STORE"])
    assert store is not None and store.group(1) == "milvus" and store.group(2) == "19530"
    assert "milvus" in app["build"]["args"]["EXTRAS"].split(",")
    # every variable names a setting (SNAPRAG_STORE: the Milvus backend's)
    known = {f"SNAPRAG_{f.name.upper()}" for f in fields(Config)} | {"SNAPRAG_STORE"}
    assert set(env) <= known
    # Milvus standalone as Milvus documents it: etcd for metadata, MinIO for segments
    milvus = services["milvus"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert milvus["environment"]["ETCD_ENDPOINTS"] == "etcd:2379"
    assert milvus["environment"]["MINIO_ADDRESS"] == "minio:9000"
    assert set(milvus["depends_on"]) == {"etcd", "minio"}
    assert set(app["depends_on"]) == {"redis", "milvus"}


def test_compose_volumes_health_checks_and_ports(compose: dict, dockerfile: str) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        # snaprag's own check (/readyz) is the image's HEALTHCHECK
        assert name == "snaprag" or "healthcheck" in service, f"{name} has no health check"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"{name} mounts undeclared volume {source}"
        for dep, how in (service.get("depends_on") or {}).items():
            assert how["condition"] == "service_healthy"
            assert "healthcheck" in services[dep]
    app_mounts = {m.split(":")[1] for m in services["snaprag"]["volumes"]}
    image_volumes = set(re.findall(r'"(/[^"]+)"', dockerfile.split("VOLUME", 1)[1]))
    assert app_mounts == image_volumes == {"/models", "/data"}
    # published on the host's loopback only; the other services are not published at all
    assert services["snaprag"]["ports"] == ["127.0.0.1:8000:8000"]
    assert not any("ports" in s for n, s in services.items() if n != "snaprag")
