"""Static checks of the deployment recipes in deploy/: no cluster, no Docker, no network.

What KubeRay and `ray up` need to accept the files, what the image must contain,
and that the commands the manifests and deploy/README.md run are real `landscape`
subcommands with valid arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
RAY_UP = DEPLOY / "ray-up.yaml"
IMAGE_SRC = PurePosixPath("/opt/landscape")  # where the Dockerfile copies the repository

# Subcommands being added to jobs/cli.py; the docs may name them before they land.
UPCOMING = {"submit", "status", "logs", "stop", "list", "fetch"}


# --- helpers -----------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def docs_of(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_docs(kind: str) -> list[tuple[Path, dict]]:
    return [
        (p, d)
        for p in yaml_files()
        for d in docs_of(p)
        if isinstance(d, dict) and d.get("kind") == kind and "apiVersion" in d
    ]


def cli_parser() -> argparse.ArgumentParser:
    from jobs.cli import _parser

    return _parser()


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def shell_commands(line: str) -> list[list[str]]:
    """Simple commands of a shell line, split at && || ; | (enough for our entrypoints)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for tok in lexer:
        if tok and set(tok) <= set(";&|"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        commands.append(current)
    return commands


def landscape_commands(line: str) -> list[list[str]]:
    return [c for c in shell_commands(line) if c[0] == "landscape"]


def check_landscape_command(argv: list[str], parser: argparse.ArgumentParser, where: str) -> None:
    assert len(argv) >= 2, f"{where}: bare `landscape`"
    name = argv[1]
    known = subcommands(parser)
    assert name in known | UPCOMING, f"{where}: `landscape {name}` is no subcommand (have {sorted(known)})"
    if name in known:  # the real parser must accept the whole command line
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{where}: jobs/cli.py rejects {shlex.join(argv)!r}")


def containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def cluster_containers(spec: dict) -> list[dict]:
    out = list(containers(spec["headGroupSpec"]["template"]))
    for group in spec["workerGroupSpecs"]:
        out += containers(group["template"])
    return out


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_arg_defaults() -> dict[str, str]:
    defaults = {}
    for word, rest in dockerfile_instructions():
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            defaults.setdefault(k.strip(), v.strip().strip('"'))
    return defaults


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def ray_version_in_image() -> str:
    return dockerfile_arg_defaults()["RAY_VERSION"]


def image_path_to_repo(path: str) -> Path | None:
    """/opt/landscape/x in the image -> REPO/x; None for paths outside the copied tree."""
    p = PurePosixPath(path)
    if IMAGE_SRC in p.parents:
        return REPO / p.relative_to(IMAGE_SRC)
    return None


def head_pods() -> list[tuple[Path, dict]]:
    out = [(p, d["spec"]["headGroupSpec"]["template"]["spec"]) for p, d in k8s_docs("RayCluster")]
    out += [(p, d["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]) for p, d in k8s_docs("RayJob")]
    return out


def raycluster_specs() -> list[tuple[str, dict]]:
    out = [(f"{p.name}:{d['metadata']['name']}", d["spec"]) for p, d in k8s_docs("RayCluster")]
    out += [(f"{p.name}:{d['metadata']['name']}", d["spec"]["rayClusterSpec"]) for p, d in k8s_docs("RayJob")]
    return out


# --- every YAML ----------------------------------------------------------------


def test_the_recipes_exist():
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    assert {"kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "ray-up.yaml"} <= names
    assert DOCKERFILE.is_file() and (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path):
    docs = docs_of(path)
    assert docs, f"{path} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
        if "apiVersion" in doc:  # a Kubernetes object
            assert doc.get("kind"), f"{path}: object without kind"
            assert doc.get("metadata", {}).get("name"), f"{path}: {doc['kind']} without metadata.name"


# --- KubeRay ---------------------------------------------------------------------


@pytest.mark.parametrize("where,spec", raycluster_specs(), ids=[w for w, _ in raycluster_specs()])
def test_kuberay_cluster_spec(where, spec):
    assert spec.get("rayVersion") == ray_version_in_image(), f"{where}: rayVersion != RAY_VERSION in deploy/Dockerfile"

    head = spec["headGroupSpec"]
    params = head["rayStartParams"]
    assert isinstance(params, dict)
    assert all(isinstance(v, str) for v in params.values()), f"{where}: rayStartParams values must be strings"
    assert params.get("num-cpus") == "0", f"{where}: the head should run no tasks (num-cpus: \"0\")"
    assert params.get("dashboard-host") == "0.0.0.0", f"{where}: the Service cannot reach a loopback-bound dashboard"
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{where}: the head Service must stay ClusterIP"
    head_containers = containers(head["template"])
    assert head_containers and head_containers[0].get("image"), f"{where}: head container without image"
    assert not head_containers[0].get("resources", {}).get("limits", {}).get("nvidia.com/gpu"), f"{where}: GPU on head"

    groups = spec["workerGroupSpecs"]
    assert groups, f"{where}: no worker group"
    assert len({g["groupName"] for g in groups}) == len(groups), f"{where}: duplicate groupName"
    for g in groups:
        name = f"{where}/{g.get('groupName')}"
        assert g.get("groupName")
        lo, n, hi = g["minReplicas"], g["replicas"], g["maxReplicas"]
        assert all(isinstance(v, int) for v in (lo, n, hi)), f"{name}: replica counts must be integers"
        assert 0 <= lo <= n <= hi, f"{name}: need minReplicas <= replicas <= maxReplicas, got {lo}, {n}, {hi}"
        assert lo >= 1, f"{name}: scans are sized by the GPUs present at start; keep minReplicas >= 1"
        assert isinstance(g["rayStartParams"], dict), f"{name}: rayStartParams is required (may be {{}})"
        assert all(isinstance(v, str) for v in g["rayStartParams"].values())
        gpu_containers = [c for c in containers(g["template"]) if "nvidia.com/gpu" in c.get("resources", {}).get("limits", {})]
        assert gpu_containers, f"{name}: no container with resources.limits nvidia.com/gpu"
        for c in gpu_containers:
            res = c["resources"]
            assert int(res["limits"]["nvidia.com/gpu"]) >= 1
            assert {"cpu", "memory"} <= set(res["limits"]), f"{name}: set cpu and memory limits"
            requests = res.get("requests", {})
            assert {"cpu", "memory"} <= set(requests), f"{name}: set cpu and memory requests"
            if "nvidia.com/gpu" in requests:  # Kubernetes: extended resources need request == limit
                assert str(requests["nvidia.com/gpu"]) == str(res["limits"]["nvidia.com/gpu"])

    for c in cluster_containers(spec):
        assert c.get("image"), f"{where}: container {c.get('name')} without image"
        assert env_of(c).get("RAY_USAGE_STATS_ENABLED") == "0", f"{where}: {c.get('name')} lacks RAY_USAGE_STATS_ENABLED=0"


def test_raycluster_manifest():
    found = k8s_docs("RayCluster")
    assert found, "no RayCluster under deploy/"
    for path, doc in found:
        assert doc["apiVersion"] == "ray.io/v1", f"{path}: apiVersion"


def test_rayjob_manifest():
    found = k8s_docs("RayJob")
    assert found, "no RayJob under deploy/"
    for path, doc in found:
        assert doc["apiVersion"] == "ray.io/v1", f"{path}: apiVersion"
        spec = doc["spec"]
        assert spec["entrypoint"].startswith("landscape "), f"{path}: entrypoint must start with `landscape `"
        assert spec.get("shutdownAfterJobFinishes") is True, f"{path}: free the GPUs when the job ends"
        assert isinstance(spec.get("ttlSecondsAfterFinished"), int) and spec["ttlSecondsAfterFinished"] >= 0
        assert isinstance(spec.get("rayClusterSpec"), dict), f"{path}: rayClusterSpec"


def test_no_public_exposure_in_manifests():
    for path in yaml_files():
        for doc in docs_of(path):
            if not isinstance(doc, dict):
                continue
            assert doc.get("kind") != "Ingress", f"{path}: no Ingress in front of the Jobs API"
            if doc.get("kind") == "Service":
                assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", f"{path}: Service must stay ClusterIP"


def test_one_image_everywhere():
    images = {c["image"] for _, spec in raycluster_specs() for c in cluster_containers(spec)}
    images |= {c["image"] for _, pod in head_pods() for c in pod.get("initContainers", [])}
    images.add(yaml.safe_load(RAY_UP.read_text())["docker"]["image"])
    assert len(images) == 1, f"the recipes name different images: {sorted(images)}"


# --- entrypoints and commands against the real CLI ----------------------------


def test_entrypoints_are_real_landscape_commands():
    parser = cli_parser()
    jobs = k8s_docs("RayJob")
    assert jobs
    for path, doc in jobs:
        entry = doc["spec"]["entrypoint"]
        # KubeRay's submitter pastes the entrypoint into a bash line after `ray job submit ... --`:
        # any shell operator would run the rest in the submitter pod, not on the head.
        assert not re.search(r"[;&|<>`]|\$\(", entry), f"{path}: keep the entrypoint one plain command"
        (argv,) = shell_commands(entry)
        assert argv[0] == "landscape", f"{path}: the entrypoint should be a landscape command"
        check_landscape_command(argv, parser, f"{path.name} entrypoint")
    for path, pod in head_pods():
        for init in pod.get("initContainers", []):
            argv = list(init.get("command", [])) + list(init.get("args", []))
            if argv and argv[0] == "landscape":
                check_landscape_command(argv, parser, f"{path.name} initContainer {init['name']}")


def test_readme_commands_are_real_landscape_commands():
    parser = cli_parser()
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    lines = [ln.split("#", 1)[0].strip() for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
    seen = 0
    for line in lines:
        for argv in landscape_commands(line.replace("<ID>", "JOB_ID")):
            seen += 1
            check_landscape_command(argv, parser, "deploy/README.md")
    assert seen >= 5, "deploy/README.md should show how to submit, watch and fetch a scan"


def test_rayjob_spec_files_exist_where_the_head_reads_them():
    """Spec paths are in the image (/opt/landscape) or in a mounted ConfigMap key; the scan's
    checkpoints are absolute and written by a `landscape train` init container into a volume
    that the Ray container mounts at the same path."""
    for path, doc in k8s_docs("RayJob"):
        configmaps = {d["metadata"]["name"]: d for d in docs_of(path) if isinstance(d, dict) and d.get("kind") == "ConfigMap"}
        pod = doc["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        ray_container = pod["containers"][0]
        ray_mounts = {PurePosixPath(m["mountPath"]): m["name"] for m in ray_container.get("volumeMounts", [])}

        def read_spec(spec_path: PurePosixPath, mounts: dict) -> dict:
            in_repo = image_path_to_repo(str(spec_path))
            if in_repo is not None:
                assert in_repo.is_file(), f"{path.name}: {spec_path} is not in the image (no {in_repo})"
                return yaml.safe_load(in_repo.read_text())
            vol = volumes.get(mounts.get(spec_path.parent), {})
            assert "configMap" in vol, f"{path.name}: {spec_path} is neither in the image nor in a ConfigMap mount"
            cm = configmaps.get(vol["configMap"]["name"])
            assert cm is not None, f"{path.name}: ConfigMap {vol['configMap']['name']!r} is not defined in the file"
            assert spec_path.name in cm["data"], f"{path.name}: ConfigMap has no key {spec_path.name!r}"
            return yaml.safe_load(cm["data"][spec_path.name])

        trained: dict[PurePosixPath, int] = {}  # checkpoint folder -> epochs, as the Ray container sees it
        for init in pod.get("initContainers", []):
            argv = list(init.get("command", [])) + list(init.get("args", []))
            if argv[:2] != ["landscape", "train"]:
                continue
            init_mounts = {PurePosixPath(m["mountPath"]): m["name"] for m in init.get("volumeMounts", [])}
            raw = read_spec(PurePosixPath(argv[2]), init_mounts)
            out = PurePosixPath(argv[argv.index("--out") + 1] if "--out" in argv else raw["output"])
            assert out.is_absolute(), f"{path.name}: train into an absolute folder"
            shared = [mp for mp, vol in init_mounts.items() if (mp == out or mp in out.parents) and ray_mounts.get(mp) == vol]
            assert shared, f"{path.name}: {out} is not on a volume the Ray container mounts at the same path"
            trained[out] = raw["epochs"]

        scans = [a for a in landscape_commands(doc["spec"]["entrypoint"]) if a[1] == "run"]
        assert scans, f"{path.name}: the entrypoint runs no scan"
        for argv in scans:
            raw = read_spec(PurePosixPath(argv[2]), ray_mounts)
            sl = raw["slice"]
            ckpts = [sl["checkpoint"]] if "checkpoint" in sl else list(sl.get("checkpoints", []))
            for c in map(PurePosixPath, ckpts):
                assert c.is_absolute(), f"{path.name}: checkpoint {c} is relative; the job's cwd is not fixed"
                if image_path_to_repo(str(c)) is not None:  # shipped in the image
                    continue
                assert c.parent in trained, f"{path.name}: nothing stages {c} before the scan"
                m = re.fullmatch(r"epoch_(\d+)\.pt", c.name)
                assert m and int(m.group(1)) <= trained[c.parent], f"{path.name}: training never writes {c.name}"


def test_configmap_scan_specs_are_valid():
    pytest.importorskip("pydantic")
    from jobs.spec import ScanSpec

    examples = {}
    for p in (REPO / "jobs" / "examples").glob("*.yaml"):
        raw = yaml.safe_load(p.read_text())
        if "slice" in raw:
            examples[raw["name"]] = raw
    checked = 0
    for path in yaml_files():
        for doc in docs_of(path):
            if not (isinstance(doc, dict) and doc.get("kind") == "ConfigMap"):
                continue
            for key, text in doc.get("data", {}).items():
                raw = yaml.safe_load(text)
                if not (isinstance(raw, dict) and "slice" in raw):
                    continue
                spec = ScanSpec.model_validate(raw)  # raises on any field the CLI would reject
                checked += 1
                if spec.name in examples:  # documented as a copy of the example but for absolute paths
                    ours = spec.model_dump(mode="json", exclude={"slice"})
                    theirs = ScanSpec.model_validate(examples[spec.name]).model_dump(mode="json", exclude={"slice"})
                    assert ours == theirs, f"{path.name}:{key} drifted from jobs/examples ({spec.name})"
    assert checked, "no scan spec found in a ConfigMap"


# --- ray up ----------------------------------------------------------------------


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
