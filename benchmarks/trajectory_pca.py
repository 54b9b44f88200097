"""Scale of a trajectory's PCA: n checkpoints of a ResNet-18-sized model (11.7 M parameters) on CPU.

Writes n synthetic state_dicts (ResNet-18's entry names and shapes; a random walk with a
drift, each entry its own tensor as a real checkpoint has) into a temporary folder, then
measures in fresh child processes, so that each peak RSS is that process's own:
  (a) read: each checkpoint read and flattened (torch.load + StateLayout.flatten), nothing kept:
      the floor any method pays;
  (b) pca: landscape.trajectory.trajectory_plane as a scan runs it (checkpoints read one at a
      time into one preallocated (n, P) float32 matrix, the n x n Gram matrix in float64 over
      column blocks, the two components, coordinates and off-plane distances);
and prints a table: wall time per phase, peak RSS, and the ratios pca/read (time) and
peak / the checkpoints' own memory (n x P x 4 bytes). The folder is deleted afterwards.

Memory: needs about n x P x 4 bytes (8.8 GB for 200 x 11.7 M) plus the page cache's share;
check `free -g` first. Files are read right after being written, so mostly from the page cache.

    python benchmarks/trajectory_pca.py --checkpoints 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landscape.checkpoints import read_checkpoint, state_dict_of  # noqa: E402
from landscape.params import Entry, StateLayout  # noqa: E402
from landscape.trajectory import pca_plane, plane_entries, read_rows  # noqa: E402


def resnet18_entries() -> list[Entry]:
    """ResNet-18's (ImageNet, 1000 classes) float state: names, shapes, parameter or buffer."""
    out: list[Entry] = []

    def conv(name, cout, cin, k):
        out.append(Entry(f"{name}.weight", (cout, cin, k, k), True))

    def bn(name, c):
        out.extend([Entry(f"{name}.weight", (c,), True), Entry(f"{name}.bias", (c,), True),
                    Entry(f"{name}.running_mean", (c,), False), Entry(f"{name}.running_var", (c,), False)])

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for layer, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            stride_in = cin if block == 0 else cout
            conv(f"{p}.conv1", cout, stride_in, 3)
            bn(f"{p}.bn1", cout)
            conv(f"{p}.conv2", cout, cout, 3)
            bn(f"{p}.bn2", cout)
            if block == 0 and stride_in != cout:
                conv(f"{p}.downsample.0", cout, stride_in, 1)
                bn(f"{p}.downsample.1", cout)
        cin = cout
    out.extend([Entry("fc.weight", (1000, 512), True), Entry("fc.bias", (1000,), True)])
    return out


def write_run(folder: Path, n: int, layout: StateLayout, seed: int = 0) -> None:
    """A random walk with a drift: w_{i+1} = w_i + 0.01 drift + 0.002 noise (each file's tensors separate)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(layout.size, generator=g) * 0.05
    drift = torch.randn(layout.size, generator=g)
    for i in range(n):
        torch.save({k: v.clone() for k, v in layout.unflatten(w).items()}, folder / f"step_{i:04d}.pt")
        w += 0.01 * drift + 0.002 * torch.randn(layout.size, generator=g)


def child(mode: str, folder: Path, threads: int) -> dict:
    torch.set_num_threads(threads)
    layout = StateLayout(tuple(resnet18_entries()))
    paths = sorted(folder.glob("step_*.pt"))

    def read(i: int, out: torch.Tensor | None = None) -> torch.Tensor:
        return layout.flatten(state_dict_of(read_checkpoint(paths[i]), paths[i]), out=out)  # (P,)

    t0 = time.perf_counter()
    out: dict = {"mode": mode, "n": len(paths), "params": layout.size}
    if mode == "read":
        row = torch.empty(layout.size)
        for i in range(len(paths)):
            read(i, row)
        out["wall_s"] = time.perf_counter() - t0
    else:
        # trajectory_plane's two steps, timed apart
        origin = read(len(paths) - 1)
        labels = [p.stem for p in paths]
        rows, ignored = read_rows(read, len(paths), origin, plane_entries(layout, "biasbn"), layout.param_mask(), labels)
        out["read_s"] = time.perf_counter() - t0
        plane = pca_plane(rows, ignored, labels)
        out["wall_s"] = time.perf_counter() - t0
        out["pca_s"] = out["wall_s"] - out["read_s"]
        out["explained_variance_ratio"] = plane.explained_variance_ratio.tolist()
        out["max_off_plane_relative"] = float(max(r for r in plane.off_plane_relative if r == r))
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dir", help="parent of the temporary folder (default: the system's temp dir)")
    ap.add_argument("--child", choices=["read", "pca"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.folder), args.threads)))
        return
    layout = StateLayout(tuple(resnet18_entries()))
    n, p = args.checkpoints, layout.size
    folder = Path(tempfile.mkdtemp(prefix="trajectory-pca-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        write_run(folder, n, layout)
        write_s = time.perf_counter() - t0
        rows = {}
        for mode in ("pca", "read"):
            cmd = [sys.executable, __file__, "--child", mode, "--folder", str(folder), "--threads", str(args.threads)]
            rows[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    own_gb = n * p * 4 / 1e9
    pca, read = rows["pca"], rows["read"]
    print(f"# trajectory PCA, {dt.date.today()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, fp32 checkpoints, float64 Gram")
    print(f"{n} checkpoints x {p:,} parameters (ResNet-18 layout), {own_gb:.2f} GB of float32 state; written in {write_s:.0f} s")
    print("| pass | wall s | of which reading s | Gram + components s | peak RSS GB | peak / checkpoints' memory |")
    print("|---|---|---|---|---|---|")
    print(f"| (a) read + flatten only | {read['wall_s']:.1f} | {read['wall_s']:.1f} | - | {read['peak_rss_gb']:.2f} | "
          f"{read['peak_rss_gb'] / own_gb:.2f} |")
    print(f"| (b) trajectory PCA | {pca['wall_s']:.1f} | {pca['read_s']:.1f} | {pca['pca_s']:.1f} | {pca['peak_rss_gb']:.2f} | "
          f"{pca['peak_rss_gb'] / own_gb:.2f} |")
    print(f"ratio pca / read (time): {pca['wall_s'] / read['wall_s']:.2f}")
    print(f"explained variance ratio {pca['explained_variance_ratio']}, largest off-plane / distance "
          f"{pca['max_off_plane_relative']:.3f}")


if __name__ == "__main__":
    main()
