"""Static checks of the deployment recipes in deploy/: no cluster, no Docker, no network.

What KubeRay needs to accept the manifests, and that the commands the manifests and deploy/README.md run are real `landscape`
subcommands with valid arguments.
"""


from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
import yaml

from .deploy_recipes import (
    DEPLOY,
    DOCKERFILE,
    RAY_UP,
    REPO,
    check_landscape_command,
    cli_parser,
    cluster_containers,
    containers,
    docs_of,
    env_of,
    head_pods,
    image_path_to_repo,
    k8s_docs,
    landscape_commands,
    ray_version_in_image,
    raycluster_specs,
    shell_commands,
    yaml_files,
)


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
        if isinstance(doc.get("apiVersion"), str):  # a Kubernetes object (Grafana provisioning's is the number 1)
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
    from jobs.specs import ScanSpec

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
