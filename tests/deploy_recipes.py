"""Readers of the deployment recipes in deploy/ for the static deploy tests: manifests, Dockerfile, commands."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
RAY_UP = DEPLOY / "ray-up.yaml"
IMAGE_SRC = PurePosixPath("/opt/landscape")  # where the Dockerfile copies the repository



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
    from jobs.cli import parser

    return parser()


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
    assert name in known, f"{where}: `landscape {name}` is no subcommand (have {sorted(known)})"
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
