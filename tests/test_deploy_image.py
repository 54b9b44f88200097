"""Static checks of deploy/ray-up.yaml and deploy/Dockerfile: no cluster, no Docker, no network."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .deploy_recipes import (
    IMAGE_SRC,
    RAY_UP,
    REPO,
    dockerfile_arg_defaults,
    dockerfile_instructions,
    expand,
    shell_commands,
)


def test_ray_up_config():
    cfg = yaml.safe_load(RAY_UP.read_text())
    assert isinstance(cfg.get("cluster_name"), str) and cfg["cluster_name"]
    assert cfg["provider"]["type"] == "aws" and cfg["provider"].get("region")
    assert cfg["auth"]["ssh_user"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    for name, t in types.items():
        assert isinstance(t.get("node_config"), dict) and t["node_config"], f"{name}: node_config"
        assert isinstance(t.get("resources"), dict), f"{name}: resources"
        assert isinstance(t.get("max_workers"), int), f"{name}: max_workers"
        assert t.get("min_workers", 0) <= t["max_workers"], f"{name}: min_workers > max_workers"
    head = types[cfg["head_node_type"]]
    assert not head["resources"].get("GPU"), "the head node type should have no GPU"
    gpu_types = [n for n, t in types.items() if t["resources"].get("GPU", 0) >= 1 and n != cfg["head_node_type"]]
    assert gpu_types, "no worker node type with resources.GPU >= 1"
    assert any(types[n].get("min_workers", 0) >= 1 for n in gpu_types), "keep >= 1 GPU worker up (scans size at start)"
    assert cfg["max_workers"] >= sum(t.get("min_workers", 0) for n, t in types.items() if n != cfg["head_node_type"])

    docker = cfg.get("docker")
    if docker:  # docker mode: GPUs for the workers only; `--gpus` on a GPU-less head fails
        assert docker.get("image")
        assert not any("--gpus" in o for o in docker.get("run_options", []) + docker.get("head_run_options", []))
        assert any("--gpus" in o for o in docker.get("worker_run_options", [])) or all(
            any("--gpus" in o for o in types[n].get("docker", {}).get("worker_run_options", [])) for n in gpu_types
        ), "GPU workers need `--gpus all` in worker_run_options"


def _ray_start(commands: list[str]) -> list[list[str]]:
    return [c for line in commands for c in shell_commands(line) if c[:2] == ["ray", "start"]]


def test_ray_up_start_commands():
    cfg = yaml.safe_load(RAY_UP.read_text())
    head_cmds = cfg["head_start_ray_commands"]
    assert head_cmds[0].strip() == "ray stop"
    (head,) = _ray_start(head_cmds)
    assert "--head" in head
    flat = " ".join(head)
    assert not re.search(r"--dashboard-host[= ]+['\"]?0\.0\.0\.0", flat), "never bind the dashboard to 0.0.0.0 on a VM"
    assert "--dashboard-host=127.0.0.1" in head, "bind the dashboard to the head's loopback (reach it with `ray dashboard`)"
    assert "--port=6379" in head
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head

    worker_cmds = cfg["worker_start_ray_commands"]
    assert worker_cmds[0].strip() == "ray stop"
    (worker,) = _ray_start(worker_cmds)
    assert "--address=$RAY_HEAD_IP:6379" in worker and "--head" not in worker


def test_ray_up_matches_rays_schema():
    """Against the schema shipped with the installed Ray, when Ray and jsonschema are installed."""
    jsonschema = pytest.importorskip("jsonschema")
    spec = importlib.util.find_spec("ray")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ray is not installed")
    schema_path = Path(list(spec.submodule_search_locations)[0]) / "autoscaler" / "ray-schema.json"
    if not schema_path.is_file():
        pytest.skip("this Ray ships no ray-schema.json")
    jsonschema.validate(yaml.safe_load(RAY_UP.read_text()), json.loads(schema_path.read_text()))


# --- Dockerfile ------------------------------------------------------------------


def test_dockerfile_base_is_cuda():
    froms = [rest for word, rest in dockerfile_instructions() if word == "FROM"]
    assert froms, "no FROM"
    image = expand(froms[-1].split()[0], dockerfile_arg_defaults())
    assert "$" not in image, f"unresolved build argument in FROM {image}"
    assert re.search(r"(-cu\d{3}\b|cuda)", image), f"base image {image} is not a CUDA image"


def test_dockerfile_installs_cuda_torch_and_the_package():
    runs = [rest for word, rest in dockerfile_instructions() if word == "RUN"]
    pip = [r for r in runs if "pip install" in r]
    assert any("download.pytorch.org/whl/" in r and "torch" in r for r in pip), "install torch from a CUDA wheel index"
    torch_at = next(i for i, r in enumerate(pip) if "download.pytorch.org" in r)
    pkg_at = next((i for i, r in enumerate(pip) if str(IMAGE_SRC) in r), None)
    assert pkg_at is not None, f"pip install {IMAGE_SRC} (this package) missing"
    assert torch_at < pkg_at, "install the CUDA torch before the package, or pip takes torch from PyPI"
    assert "s3fs" in pip[pkg_at], "s3fs is needed for s3:// outputs"


def test_dockerfile_copies_what_the_package_needs():
    copies = [rest.split() for word, rest in dockerfile_instructions() if word == "COPY"]
    sources = {s.rstrip("/") for c in copies for s in c[:-1] if not s.startswith("--")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", project["project"]["readme"]}
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        needed |= {p.name for p in REPO.glob(pattern.rstrip("*")) if (p / "__init__.py").is_file()}
    if "." not in sources:
        assert needed <= sources, f"the image misses {sorted(needed - sources)}"
    for s in sources - {"."}:
        assert (REPO / s).exists(), f"COPY {s}: no such path in the repository"


def test_dockerfile_env_and_workdir():
    instr = dockerfile_instructions()
    env = " ".join(rest for word, rest in instr if word == "ENV")
    assert re.search(r"\bRAY_USAGE_STATS_ENABLED[= ]\"?0\b", env), "set RAY_USAGE_STATS_ENABLED=0"
    assert any(word == "WORKDIR" for word, _ in instr), "set a WORKDIR"
