"""train-curve's test metrics per epoch and its history plot, against a plain evaluation of the saved curve."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from jobs.common.build import load_data, model_factory  # noqa: E402
from jobs.curves.train import run_train_curve  # noqa: E402
from jobs.plot.curves import history_figure, plot_history  # noqa: E402
from jobs.specs import CurveTrainSpec, DigitsData  # noqa: E402
from jobs.specs.parts import ModelSpec  # noqa: E402

from .conftest import CURVE_DATA, CURVE_MODEL, curve_spec_dict  # noqa: E402
from .independent import reference_loss  # noqa: E402
from .test_curves import formula  # noqa: E402

TEST = {"kind": "digits", "split": "test", "subset": 150}


def test_test_metrics_per_epoch_and_the_history_plot(digits_minima, tmp_path, capsys):
    d = curve_spec_dict(digits_minima, epochs=2, batch_size=128, test_data=TEST)
    out = run_train_curve(CurveTrainSpec.model_validate(d), out=str(tmp_path / "run"))
    assert "test t=0.5: loss" in capsys.readouterr().err
    history = json.loads((out / "curve.json").read_text())["history"]
    x, y = load_data(DigitsData.model_validate(TEST))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), *load_data(DigitsData.model_validate(CURVE_DATA)))
    w1, w2 = (torch.load(p, weights_only=True) for p in digits_minima)
    for h in history:  # the MLP has no BatchNorm: a plain loop at phi(0.5) on the test data
        theta = torch.load(out / f"epoch_{h['epoch']:03d}.pt", weights_only=True)["theta"]
        loss, acc = reference_loss(factory(), formula("bezier", 0.5, w1, theta, w2), x, y)
        assert h["test_loss_t05"] == pytest.approx(loss, rel=1e-5) and h["test_accuracy_t05"] == pytest.approx(acc)
    fig = history_figure(history, "digits-curve")
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in fig.axes[0].lines}
    assert lines["at t = 0.5, test data"] == [h["test_loss_t05"] for h in history]
    assert lines["along the curve (training batches)"] == [h["train_loss"] for h in history]
    path = plot_history(out, "digits-curve")
    assert path == tmp_path / "run-plots" / "history.png" and path.stat().st_size > 0


def test_a_bend_initialised_off_the_line_starts_at_the_models_own_initialization(digits_minima, tmp_path):
    from landscape.training import train as train_loop

    d = curve_spec_dict(digits_minima, epochs=1, batch_size=600, lr=0.01, curve={"kind": "bezier", "init": "random"})
    out = run_train_curve(CurveTrainSpec.model_validate(d), out=str(tmp_path / "random"))
    theta = torch.load(out / "epoch_001.pt", weights_only=True)["theta"]
    x, y = load_data(DigitsData.model_validate(CURVE_DATA))
    factory = model_factory(ModelSpec.model_validate(CURVE_MODEL), x, y)
    start = factory().state_dict()  # the seeded initialization, far from (w1 + w2)/2
    w1, w2 = (torch.load(p, weights_only=True) for p in digits_minima)
    # one full-batch step from the start: the same as the objective's own loop from that start
    from landscape.curves import CurveObjective

    model = factory()
    train_loop(model, x, y, epochs=1, lr=0.01, momentum=0.9, batch_size=600, seed=0,
               objective=CurveObjective("bezier", w1, w2))
    for k in theta:
        torch.testing.assert_close(theta[k], model.state_dict()[k], rtol=0, atol=1e-6)
    mid = {k: (w1[k] + w2[k]) / 2 for k in w1}
    assert max(float((start[k] - mid[k]).abs().max()) for k in start) > 0.1  # it really is off the line


def test_an_interrupted_curve_run_resumes_from_its_own_checkpoints_to_the_same_curve(digits_minima, tmp_path, capsys):
    d = curve_spec_dict(digits_minima, epochs=3, batch_size=200, lr=0.05, weight_decay=1e-3, lr_schedule="garipov")
    spec = CurveTrainSpec.model_validate(d)
    whole = run_train_curve(spec, out=str(tmp_path / "whole"))
    cut = run_train_curve(spec, out=str(tmp_path / "cut"))
    (cut / "epoch_003.pt").unlink()  # killed during epoch 3: no last checkpoint, the record still unfinished
    record = json.loads((cut / "curve.json").read_text())
    (cut / "curve.json").write_text(json.dumps({k: record[k] for k in ("identity", "files")} | {"finished": False}))
    before = (cut / "epoch_001.pt").stat().st_mtime_ns
    capsys.readouterr()
    run_train_curve(spec, out=str(cut))
    assert "resuming after epoch 2" in capsys.readouterr().err
    assert (cut / "epoch_001.pt").stat().st_mtime_ns == before  # kept, not retrained
    a, b = (torch.load(p / "epoch_003.pt", weights_only=True) for p in (whole, cut))
    for k in a["theta"]:
        assert torch.equal(a["theta"][k], b["theta"][k]), k  # bit for bit: generator, momentum and lr restored
    assert json.loads((cut / "curve.json").read_text())["history"] == json.loads((whole / "curve.json").read_text())["history"]
