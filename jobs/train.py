"""`landscape train`: train a model and save a seeded checkpoint per epoch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from landscape.checkpoints import save_state
from landscape.errors import ResultError
from landscape.training import train

from .build import load_data, model_factory
from .spec import TrainSpec


def _identity(spec: TrainSpec) -> dict:
    return spec.model_dump(mode="json", exclude={"output"})


def run_train(spec: TrainSpec, out: str | None = None, overwrite: bool = False) -> Path:
    """Checkpoints epoch_000.pt (the initial weights) .. epoch_NNN.pt in the output folder.

    Skips training when the folder already holds a finished run of the same spec.
    """
    out_dir = Path(out or spec.output or f"runs/{spec.name}")
    record = out_dir / "train.json"
    if record.exists() and not overwrite:
        previous = json.loads(record.read_text())
        if previous.get("spec") == _identity(spec):
            print(f"checkpoints: {out_dir} (already trained with this spec; nothing to do)")
            return out_dir
        raise ResultError(f"{out_dir} holds a run of a different spec; choose another --out or pass --overwrite")
    inputs, targets = load_data(spec.data)
    model = model_factory(spec.model, inputs, targets)()
    save_state(out_dir / "epoch_000.pt", model)
    history = []

    def on_epoch(epoch, model, metrics):
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
        on_epoch=on_epoch,
    )
    # Written last: its presence means the run finished.
    record.write_text(json.dumps({"spec": _identity(spec), "history": history}, indent=1))
    print(f"checkpoints: {out_dir} (epoch_000.pt .. epoch_{spec.epochs:03d}.pt)")
    return out_dir
