"""`landscape train-curve`: train the bend of a curve between two checkpoints, a curve checkpoint per epoch.

In-process by default; with `--workers N` (or `--address`) data parallel on Ray
Train workers (TorchTrainer, DDP), each taking its share of every batch through
the training loop's `shard`. Either way the one training loop runs with the
curve objective (landscape/curves.py): one t ~ U[0, 1] per mini-batch, the bends
trained (and the endpoints with fix_start / fix_end false: the last epoch's are
written as w1_trained.pt / w2_trained.pt, never over the input checkpoints).
Worker 0 writes epoch_001.pt .. epoch_NNN.pt (curve checkpoints) and,
after each epoch, prints the training loss along the curve and the loss at
t = 0.5 on the training data (BatchNorm statistics re-estimated there, as a
curve scan does). `curve.json`, written last, means the run finished.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from landscape.checkpoints import curve_states, file_sha256, save_atomic, save_curve
from landscape.curves import CurveObjective, CurvePoints, init_bends, loss_at
from landscape.errors import ResultError, SpecError
from landscape.params import StateLayout
from landscape.training import train

from ..common.build import check_prepared, load_checked, prepare
from ..specs.curve import CurveTrainSpec
from ..specs.subset_rule import former_identities
from ..training.run_folder import RunFolder
from ..training.train import TrainingDiverged, check_train, diverged

RECORD = "curve.json"
_OURS = re.compile(r"^epoch_\d+\.pt(\.tmp)?$|^curve\.json(\.tmp)?$|^w[12]_trained\.pt(\.tmp)?$")
TRAINED = ("w1_trained.pt", "w2_trained.pt")  # the trained endpoints of the last epoch (fix_start / fix_end false)


def say(line: str) -> None:
    # Not print(): Ray Train workers patch print() into a logger that also echoes it (every line twice).
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass
class CurveSetup:
    """What every worker needs, checked before anything is written."""

    inputs: torch.Tensor
    targets: torch.Tensor
    factory: object
    w1: dict
    w2: dict
    endpoints: list[dict]  # [{"path", "sha256"}] as the curve checkpoints record them
    notes: list[str]
    test: tuple | None = None  # (inputs, targets) of spec.test_data


def check_curve_train(spec: CurveTrainSpec) -> CurveSetup:
    """Data fits the model; both endpoints exist, fit the model (same architecture and shapes) and differ."""
    inputs, targets, factory, notes = check_train(spec)
    model = factory()
    w1, w2 = (load_checked(p, model, False, notes) for p in spec.endpoints)
    layout = StateLayout.of(model)
    if torch.equal(layout.flatten(w1)[layout.param_mask()], layout.flatten(w2)[layout.param_mask()]):
        raise SpecError(f"endpoints: {spec.endpoints[0]} and {spec.endpoints[1]} hold the same weights; a curve joins two different models")
    ends = [{"path": str(Path(p).resolve()), "sha256": file_sha256(p)} for p in spec.endpoints]
    test = None
    if spec.test_data is not None:
        held_out = prepare(spec.test_data, spec.model)
        check_prepared(held_out, spec.loss)
        test = (held_out.inputs, held_out.targets)
    return CurveSetup(inputs, targets, factory, w1, w2, ends, notes, test)


def identity(spec: CurveTrainSpec, endpoints: list[dict]) -> str:
    """What determines the curve: the spec (not where it goes or who computes) and the endpoints' content."""
    exclude = {"output", "cluster", "endpoints"}
    exclude |= {"regularizer"} if not spec.weight_decay else set()  # no weight decay: its form changes nothing (older runs keep their identity)
    exclude |= {"test_data"} if spec.test_data is None else set()  # evaluation only, and older runs keep their identity
    defaults = spec.curve.identity_exclude()  # num_bends 1, fixed endpoints: older curves keep their identity
    excluded = {k: True for k in exclude} | ({"curve": defaults} if defaults else {})
    return spec.numbers_identity(excluded, endpoints=[e["sha256"] for e in endpoints])


def trained_files(spec: CurveTrainSpec) -> list[str]:
    """The trained endpoints' files this run writes (none when both stay fixed)."""
    return [name for name, fixed in zip(TRAINED, (spec.curve.fix_start, spec.curve.fix_end)) if not fixed]


def run_folder(out_dir: Path) -> RunFolder:
    return RunFolder(out_dir, RECORD, _OURS, "landscape train-curve")


def check_output(out_dir: Path, ident: str, overwrite: bool, former: dict[str, str] | None = None) -> bool:
    """True if the folder holds this curve's finished run; refuses folders with other files, and
    checkpoints its record does not list (a model's epoch_005.pt: perhaps this curve's own endpoint).
    `former`: identities this curve had before a change of its numbers -> why (said instead)."""
    folder = run_folder(out_dir)
    why = (former or {}).get(((folder.read() or {}) if out_dir.is_dir() else {}).get("identity"))
    other = f"a curve of this spec, but {why}" if why else "a curve of a different spec or other endpoints"
    return folder.check(lambda previous: previous.get("identity") == ident, overwrite, other, "curve checkpoints")


def garipov_factor(a: float) -> float:
    """Garipov et al.'s learning-rate factor at run fraction a: 1 up to a = 0.5, linear to 0.01 at 0.9, then 0.01."""
    return 1.0 if a <= 0.5 else 1.0 - 0.99 * (a - 0.5) / 0.4 if a <= 0.9 else 0.01


def lr_schedule(kind: str, lr: float, epochs: int, steps_per_epoch: int):
    """lr_at(step) for the training loop (None: constant); steps count from 0."""
    total_steps = epochs * steps_per_epoch
    if kind == "constant":
        return None
    if kind == "cosine":
        return lambda step: lr * 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))
    if kind == "garipov":  # theirs: set at the start of epoch e = 1..epochs from e / epochs
        return lambda step: lr * garipov_factor((step // steps_per_epoch + 1) / epochs)
    return lambda step: lr * garipov_factor(step / max(total_steps, 1))  # garipov_per_step


def resumable(out_dir: Path, ident: str, epochs: int):
    """(epoch, loop state, the checkpoint's dict, history) of the latest checkpoint of this very curve (same identity, every epoch
    before it present and its own, with the loop's state saved), or None: an interrupted run goes on from there."""
    done = None
    for epoch in range(1, epochs):
        path = out_dir / f"epoch_{epoch:03d}.pt"
        if not path.is_file():
            break
        try:
            record = torch.load(path, weights_only=True)
        except Exception:  # a torn or foreign file: start over from the last good one
            break
        if record.get("identity") != ident or record.get("epoch") != epoch or "loop_state" not in record:
            break
        done = (epoch, record["loop_state"], record, record.get("history", []))
    return done


def train_curve_worker(config: dict) -> None:
    """One worker's training (rank 0 of 1 in-process; a Ray Train worker otherwise)."""
    spec = CurveTrainSpec.model_validate(config["spec"])
    setup: CurveSetup = config["setup"]
    out_dir = Path(config["out"])
    distributed = config.get("distributed", False)
    if distributed:
        from cluster.ray_train import worker_device, worker_rank, wrap_model

        rank, world = worker_rank()
        device = worker_device()
    else:
        from landscape.problem import default_device

        rank, world, device = 0, 1, default_device()  # a GPU when this machine has one
    shape = spec.curve
    resume = config.get("resume")  # (epoch done, loop state, checkpoint dict, history) of this curve's own checkpoints
    points = make_points(spec, setup, resume[2] if resume is not None else None)
    model = points = points.to(device)
    if distributed:
        model = wrap_model(points)
    kind, k = shape.kind, shape.num_bends
    garipov_l2 = spec.regularizer == "garipov"
    objective = CurveObjective(kind, setup.w1, setup.w2, spec.loss, spec.weight_decay if garipov_l2 else 0.0, k).to(device)
    inputs, targets = setup.inputs.to(device), setup.targets.to(device)
    layout = StateLayout.of(points.bends[0])
    steps_per_epoch = math.ceil(len(inputs) / spec.batch_size)
    history: list[dict] = list(resume[3]) if resume is not None else []
    loop_state: dict = {}

    def on_epoch(epoch, _model, metrics):
        if world > 1:  # each worker saw its share: the mean over workers
            import torch.distributed as dist

            v = torch.tensor([metrics["train_loss"], metrics["train_accuracy"]], dtype=torch.float64, device=device)
            dist.all_reduce(v)
            metrics.update(train_loss=float(v[0]) / world, train_accuracy=float(v[1]) / world)
        if diverged(metrics["train_loss"], points):  # on every worker (the loss is their mean): all stop
            raise TrainingDiverged(
                f"curve training diverged in epoch {epoch} (loss {metrics['train_loss']:g} or theta NaN/inf) at lr {spec.lr:g}: "
                f"lower lr; {out_dir} keeps the epochs before it, and its {RECORD} marks the run unfinished"
            )
        if rank != 0:
            return
        bends = [cpu_state(b) for b in points.bends]
        ends = [None if m is None else cpu_state(m) for m in (points.start, points.end)]
        flat1, flat2 = (layout.flatten(e if e is not None else w) for e, w in zip(ends, (setup.w1, setup.w2)))
        theta = torch.stack([layout.flatten(b) for b in bends])  # (k, P)
        mid = loss_at(kind, 0.5, setup.factory, flat1, theta, flat2, setup.inputs, setup.targets, spec.loss)
        metrics = {**metrics, "loss_t05": mid["loss"], "accuracy_t05": mid["accuracy"], "batchnorm_t05": mid["batchnorm"]}
        test = ""
        if setup.test is not None:  # BatchNorm statistics from the training data, evaluated on the test data
            held = loss_at(kind, 0.5, setup.factory, flat1, theta, flat2, *setup.test, spec.loss,
                           bn_inputs=setup.inputs)
            metrics.update(test_loss_t05=held["loss"], test_accuracy_t05=held["accuracy"])
            test = f" | test t=0.5: loss {held['loss']:.4f} accuracy {held['accuracy']:.3f}"
        history.append(metrics)
        one = k == 1 and shape.fix_start and shape.fix_end  # today's format 1: one bend, fixed endpoints
        save_curve(out_dir / f"epoch_{epoch:03d}.pt", {
            "kind": kind, **({"theta": bends[0]} if one else {"theta": bends, "trained_endpoints": ends}),
            "endpoints": setup.endpoints, "epoch": epoch,
            "identity": config["identity"], "model": spec.model.model_dump(mode="json"), "history": history,
            "loop_state": loop_state["state"],  # the shuffling generator and the optimizer: a resume goes on from here
        })
        bn = " (BatchNorm re-estimated there)" if mid["batchnorm"] == "recompute" else ""
        say(
            f"[train-curve {spec.name}] epoch {epoch}/{spec.epochs} loss along the curve {metrics['train_loss']:.4f} "
            f"accuracy {metrics['train_accuracy']:.3f} | t=0.5: loss {mid['loss']:.4f} accuracy {mid['accuracy']:.3f}{bn}{test}"
        )

    train(
        model, inputs, targets, loss=spec.loss, epochs=spec.epochs, lr=spec.lr, momentum=spec.momentum,
        weight_decay=0.0 if garipov_l2 else spec.weight_decay, batch_size=spec.batch_size, seed=spec.seed,
        optimizer=spec.optimizer, objective=objective, on_epoch=on_epoch,
        lr_at=lr_schedule(spec.lr_schedule, spec.lr, spec.epochs, steps_per_epoch),
        snapshot=lambda epoch, state: loop_state.update(state=state),
        resume=(resume[0], resume[1]) if resume is not None else None,
        shard=(rank, world),
    )


def cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def make_points(spec: CurveTrainSpec, setup: CurveSetup, record: dict | None) -> CurvePoints:
    """The points that train: the bends (Garipov et al.'s start, or a resumed checkpoint's), and the endpoints from
    their checkpoints (or the resumed checkpoint's trained ones) where fix_start / fix_end are false."""
    shape = spec.curve
    bends = init_bends(setup.factory, setup.w1, setup.w2, shape.num_bends, shape.init)
    free = [None if fixed else setup.factory() for fixed in (shape.fix_start, shape.fix_end)]
    for m, w in zip(free, (setup.w1, setup.w2)):
        if m is not None:
            m.load_state_dict(w)
    if record is not None:
        states, ends = curve_states(record)
        for m, state in zip(bends + [m for m in free if m is not None], states + [e for e in ends if e is not None]):
            m.load_state_dict(state)
    return CurvePoints(bends, *free)


def write_trained_endpoints(spec: CurveTrainSpec, out_dir: Path, last: dict) -> list[Path]:
    """The last epoch's trained endpoints as plain state_dicts (w1_trained.pt, w2_trained.pt): models to scan or train on."""
    _, ends = curve_states(last)
    return [save_atomic(state, out_dir / name) for name, state in zip(TRAINED, ends) if state is not None]


def run_train_curve(spec: CurveTrainSpec, out: str | None = None, overwrite: bool = False, address: str | None = None,
                    workers: int | None = None, gpus_per_worker: float | None = None) -> Path:
    """Train the curve (in-process, or on Ray Train workers with `workers` / `address`); returns the folder."""
    out_dir = Path(out or spec.output or f"runs/{spec.name}").absolute()
    setup = check_curve_train(spec)  # every bad input fails here, before anything is written
    ident = identity(spec, setup.endpoints)
    if check_output(out_dir, ident, overwrite, former_identities(lambda: identity(spec, setup.endpoints))):
        print(f"curve checkpoints: {out_dir} (already trained with this spec and these endpoints; nothing to do)")
        return out_dir
    for note in setup.notes:
        say(f"note: {note}")
    config = {"spec": spec.model_dump(mode="json"), "setup": setup, "out": str(out_dir), "identity": ident}
    # A different (or unfinished) run's checkpoints must not mix with ours: those its record lists go (but the
    # epochs an interrupted run of this very curve saved, which it goes on from), and the record lists ours
    # before any is written.
    folder = run_folder(out_dir)
    previous = folder.read() if out_dir.is_dir() else None
    same = previous is not None and previous.get("identity") == ident and not RunFolder.finished(previous)
    config["resume"] = resumable(out_dir, ident, spec.epochs) if same else None
    done = config["resume"][0] if config["resume"] is not None else 0
    from cluster.provenance import resumed_provenance
    from landscape.problem import default_device

    from ..common.provenance import actor_device, provenance

    in_process = address is None and workers is None  # as train_curve_worker picks its device
    gpus = gpus_per_worker if gpus_per_worker is not None else spec.cluster.gpus_per_worker
    device = (str(default_device()) if in_process else "Ray Train workers (a GPU each where the cluster has them)"
              if gpus is None else actor_device(gpus).replace("actors", "Ray Train workers"))
    prov = provenance(checkpoints=[("endpoints", p) for p in spec.endpoints],
                      data=[("data", spec.data), ("test_data", spec.test_data)], device=device, precision="fp32", spec=spec)
    if done:  # the epochs kept were trained with what the record says: a changed library is said
        prov = resumed_provenance(previous.get("provenance"), prov, str(out_dir))
    folder.start([f"epoch_{e:03d}.pt" for e in range(1, spec.epochs + 1)] + trained_files(spec), keep=[Path(p) for p in spec.endpoints],
                 resumed=tuple(f"epoch_{e:03d}.pt" for e in range(1, done + 1)), identity=ident, provenance=prov)
    if done:
        say(f"[train-curve {spec.name}] resuming after epoch {done} (this curve's own checkpoints)")
    n = workers or spec.cluster.workers
    if address is None and workers is None:
        train_curve_worker(config)
    else:
        from cluster.ray_train import run_data_parallel
        from cluster.session import ray_session

        with ray_session(address) as ray:
            gpus = gpus_per_worker if gpus_per_worker is not None else spec.cluster.gpus_per_worker
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
            say(f"[train-curve {spec.name}] {n} Ray Train worker(s), each CPU {spec.cluster.cpus_per_worker:g} GPU {gpus:g}")
            run_data_parallel(train_curve_worker, {**config, "distributed": True}, n, spec.cluster.cpus_per_worker, gpus,
                              name=f"train-curve-{spec.name}")
    last = out_dir / f"epoch_{spec.epochs:03d}.pt"
    if not last.is_file():
        raise ResultError(f"{out_dir}: the last curve checkpoint {last.name} is missing after training; run it again")
    record = torch.load(last, weights_only=True)
    history = record.get("history", [])
    trained = write_trained_endpoints(spec, out_dir, record)
    folder.finish(identity=ident, spec=spec.model_dump(mode="json"), endpoints=setup.endpoints,  # written last
                  workers=n if (address is not None or workers is not None) else 0, history=history, notes=setup.notes)
    also = "".join(f", {p.name}" for p in trained)
    print(f"curve checkpoints: {out_dir} (epoch_001.pt .. epoch_{spec.epochs:03d}.pt{also})")
    return out_dir
