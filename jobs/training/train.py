"""`landscape train`: train a model and save a seeded checkpoint per epoch."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import torch

from landscape.checkpoints import save_state
from landscape.errors import LandscapeError
from landscape.training import train

from ..common.build import check_prepared, prepare
from ..specs import TrainSpec
from ..specs.subset_rule import SAMPLING_CHANGED, earlier_rule
from .run_folder import RunFolder

_OURS = re.compile(r"^(epoch_\d+|step_\d+(_\d+)?)\.pt(\.tmp)?$|^train\.json$")


class TrainingDiverged(LandscapeError):
    """The loss or the weights became NaN or inf: the run ends with one line, its diverged epoch unsaved."""


def diverged(loss: float, model: torch.nn.Module) -> bool:
    """The loss or a floating-point weight (or buffer) is NaN or inf."""
    return not math.isfinite(loss) or not all(bool(torch.isfinite(v).all()) for v in model.state_dict().values() if v.is_floating_point())


def _identity(spec: TrainSpec) -> dict:
    """What a finished run's train.json records of its spec: the same spec skips training (the identity dump: a spec
    whose samples the subset rule changed differs from the run it made before)."""
    return spec.model_dump(mode="json", exclude={"output"}, context={"identity": True})


def check_train(spec: TrainSpec):
    """Data, model and loss fit together (what `validate` and `train` check before writing)."""
    p = prepare(spec.data, spec.model)
    check_prepared(p, spec.loss)
    return p.inputs, p.targets, p.factory, p.notes


def check_train_spec(spec: TrainSpec) -> str:
    """`landscape validate`: data, model and loss fit together."""
    check_train(spec)
    return f"valid training spec {spec.name!r}: {spec.model.kind} for {spec.epochs} epochs"


def _folder(out_dir: Path) -> RunFolder:
    return RunFolder(out_dir, "train.json", _OURS, "landscape train")


def _check_output(out_dir: Path, spec: TrainSpec, overwrite: bool) -> bool:
    """True if the folder already holds this spec's finished run; refuses folders with other files."""
    folder = _folder(out_dir)
    with earlier_rule():
        before = _identity(spec)
    earlier = before != _identity(spec) and (folder.read() or {}).get("spec") == before
    other = f"a run of this spec, but {SAMPLING_CHANGED}" if earlier else "a run of a different spec"
    return folder.check(lambda previous: previous.get("spec") == _identity(spec), overwrite, other, "checkpoints of a run")


def step_name(step: int, total: int) -> str:
    """step_NNN.pt, zero-padded to the run's last step so that names sort in training order."""
    return f"step_{step:0{max(3, len(str(total)))}d}.pt"


def run_train(spec: TrainSpec, out: str | None = None, overwrite: bool = False) -> Path:
    """Checkpoints epoch_000.pt (the initial weights) .. epoch_NNN.pt in the output folder,
    and with save_every K also step_000.pt, step_K.pt, ... and the last step's.

    Skips training when the folder already holds a finished run of the same spec.
    """
    out_dir = Path(out or spec.output or f"runs/{spec.name}")
    if _check_output(out_dir, spec, overwrite):
        print(f"checkpoints: {out_dir} (already trained with this spec; nothing to do)")
        return out_dir
    inputs, targets, factory, notes = check_train(spec)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    model = factory()
    total_steps = spec.epochs * -(-len(inputs) // spec.batch_size)
    files = [f"epoch_{e:03d}.pt" for e in range(spec.epochs + 1)]
    if spec.save_every:
        files += [step_name(s, total_steps) for s in range(total_steps + 1)
                  if s % spec.save_every == 0 or s == total_steps]
    # An earlier (other or unfinished) run's checkpoints would mix into this run's globs: the ones its
    # record lists go; the record then lists this run's, before any is written.
    folder = _folder(out_dir)
    from ..common.provenance import provenance

    folder.start(files, spec=_identity(spec), provenance=provenance(data=[("data", spec.data)], device="cpu",
                                                                    precision="fp32", spec=spec))
    save_state(out_dir / "epoch_000.pt", model)
    history = []
    if spec.save_every:
        save_state(out_dir / step_name(0, total_steps), model)

    def check_finite(loss: float, where: str, epoch: int) -> None:
        """Before a checkpoint is saved: a NaN or inf loss or weight ends the run (nothing non-finite is saved)."""
        if not diverged(loss, model):
            return
        kept = f"epoch_000.pt .. epoch_{epoch - 1:03d}.pt" if epoch > 1 else "epoch_000.pt"
        raise TrainingDiverged(
            f"training diverged in {where} (loss {loss:g} or weights NaN/inf) at lr {spec.lr:g}: lower lr (or momentum); "
            f"{out_dir} keeps {kept}, and its train.json marks the run unfinished"
        )

    def on_step(step, metrics):
        done = step + 1  # optimizer updates so far
        if done % spec.save_every == 0 or done == total_steps:
            check_finite(metrics["loss"], f"step {done}", metrics["epoch"])
            save_state(out_dir / step_name(done, total_steps), model)

    def on_epoch(epoch, model, metrics):
        check_finite(metrics["train_loss"], f"epoch {epoch}", epoch)
        save_state(out_dir / f"epoch_{epoch:03d}.pt", model)
        history.append(metrics)
        print(
            f"[train {spec.name}] epoch {epoch}/{spec.epochs} loss {metrics['train_loss']:.4f} "
            f"accuracy {metrics['train_accuracy']:.3f}",
            file=sys.stderr,
            flush=True,
        )

    train(
        model,
        inputs,
        targets,
        loss=spec.loss,
        epochs=spec.epochs,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        batch_size=spec.batch_size,
        seed=spec.seed,
        on_step=on_step if spec.save_every else None,
        on_epoch=on_epoch,
    )
    folder.finish(history=history, notes=notes)  # written last: the run finished
    steps = f"; {step_name(0, total_steps)} .. {step_name(total_steps, total_steps)} every {spec.save_every} steps" if spec.save_every else ""
    print(f"checkpoints: {out_dir} (epoch_000.pt .. epoch_{spec.epochs:03d}.pt{steps})")
    return out_dir
