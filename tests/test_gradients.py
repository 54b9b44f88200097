"""Gradient statistics, deep_mlp, and `landscape gradients` end to end (CPU, seconds; the training on an actor of the
session's Ray)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
import zarr
from matplotlib.image import imread
from torch import nn

from cluster.store import ResultStore
from jobs.cli import main
from landscape.data import digits
from landscape.gradients import GradientRecorder, gradient_stats, median_log10_abs, probe_gradients
from landscape.models import DeepMLP, build_model
from landscape.training import train


def one_liner(model: nn.Module) -> list:
    """The source text's statistic, character for character."""
    return [(n, p.grad.view(-1)[p.grad.view(-1) != 0].abs().log10().median().item()) for n, p in model.named_parameters()]


def test_median_equals_the_source_one_liner_on_real_gradients():
    x, y = digits()
    for act, depth in (("tanh", 6), ("relu", 5), ("sigmoid", 3)):  # relu leaves exact zeros in the gradients
        torch.manual_seed(1)
        model = build_model("deep_mlp", (1, 8, 8), 10, depth=depth, width=17, activation=act)
        nn.functional.cross_entropy(model(x[:101]), y[:101]).backward()
        want = one_liner(model)
        got = [(n, gradient_stats(p.grad)[0]) for n, p in model.named_parameters()]
        assert got == want  # exactly, name by name
        assert [median_log10_abs(p.grad) for _, p in model.named_parameters()] == [v for _, v in want]


@pytest.mark.parametrize("n", [1, 2, 7, 10, 11, 1000, 1001])
def test_percentiles_and_norm_against_numpy(n):
    g = torch.Generator().manual_seed(n)
    grad = torch.randn(n, generator=g) * torch.exp(3 * torch.randn(n, generator=g))
    grad[torch.rand(n, generator=g) < 0.2] = 0.0
    grad[0] = 1.5  # at least one non-zero entry
    med, p10, p90, norm = gradient_stats(grad.reshape(1, n).t())  # a non-contiguous view as well
    logs = grad[grad != 0].abs().log10().numpy()  # torch's float32 log10 (numpy's may differ in the last bit)
    assert med == float(np.percentile(logs, 50, method="lower"))  # torch's median is the lower middle value
    assert p10 == float(np.percentile(logs, 10, method="lower"))
    assert p90 == float(np.percentile(logs, 90, method="lower"))
    assert norm == pytest.approx(float(np.linalg.norm(grad.numpy().astype(np.float64))), rel=1e-6)


def test_no_statistic_without_non_zero_entries_and_nan_propagates():
    assert all(math.isnan(v) for v in gradient_stats(None))
    med, _, _, norm = gradient_stats(torch.zeros(3, 4))
    assert math.isnan(med) and norm == 0.0
    grad = torch.tensor([1.0, float("nan"), 3.0])
    assert math.isnan(gradient_stats(grad)[0]) and math.isnan(median_log10_abs(grad))  # as torch's median does


def test_deep_mlp_structure_options_and_init_gain():
    model = build_model("deep_mlp", (1, 8, 8), 10, depth=4, width=9, activation="relu")
    assert isinstance(model, DeepMLP)
    names = [n for n, _ in model.named_parameters()]
    assert names == [f"hidden.{i}.{k}" for i in range(4) for k in ("weight", "bias")] + ["head.weight", "head.bias"]
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    for init in ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"):
        torch.manual_seed(5)
        plain = build_model("deep_mlp", (64,), 10, depth=3, width=8, activation="tanh", init=init)
        torch.manual_seed(5)
        scaled = build_model("deep_mlp", (64,), 10, depth=3, width=8, activation="tanh", init=init, init_gain=1.8)
        for (n, a), (_, b) in zip(plain.named_parameters(), scaled.named_parameters()):
            assert torch.equal(b, a * 1.8), (init, n)  # every parameter multiplied, as the source's p.data *= 1.8
    torch.manual_seed(0)
    orth = build_model("deep_mlp", (64,), 10, depth=2, width=8, activation="tanh", init="orthogonal")
    w = orth.hidden[1].weight
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5) and (orth.hidden[1].bias == 0).all()
    torch.manual_seed(0)
    kai = build_model("deep_mlp", (64,), 10, depth=2, width=4000, activation="relu", init="kaiming_normal")
    assert kai.hidden[1].weight.std().item() == pytest.approx(math.sqrt(2 / 4000), rel=0.02)  # He: gain sqrt 2 / sqrt(fan_in)


def test_recorder_hooks_match_a_plain_loop():
    """Per step: the statistics of the gradient before the step, and |dw|/|w| of the step, from a loop written here."""
    x, y = digits()
    x, y = x[:150], y[:150]
    torch.manual_seed(3)
    model = build_model("deep_mlp", (1, 8, 8), 10, depth=3, width=12, activation="tanh")
    start = {k: v.clone() for k, v in model.state_dict().items()}
    rec = GradientRecorder(model, every=2)
    train(model, x, y, epochs=2, lr=0.05, momentum=0.9, batch_size=40, seed=7, objective=rec.objective("cross_entropy"),
          on_backward=rec.on_backward, on_step=rec.on_step)
    assert [r.step for r in rec.rows] == [0, 2, 4, 6]  # 8 steps (4 per epoch), every 2nd
    ref = build_model("deep_mlp", (1, 8, 8), 10, depth=3, width=12, activation="tanh")
    ref.load_state_dict(start)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    g, step = torch.Generator().manual_seed(7), 0
    for _ in range(2):
        order = torch.randperm(150, generator=g)
        for s in range(0, 150, 40):
            idx = order[s : s + 40]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(ref(x[idx]), y[idx])
            loss.backward()
            before = [p.detach().clone() for p in ref.parameters()]
            want = [gradient_stats(p.grad) for p in ref.parameters()]
            opt.step()
            if step % 2 == 0:
                row = rec.rows[step // 2]
                np.testing.assert_allclose(row.stats[:, :4], np.array(want), rtol=1e-5)
                upd = [float((p.detach() - b).norm() / b.norm()) for p, b in zip(ref.parameters(), before)]
                np.testing.assert_allclose(row.stats[:, 4], upd, rtol=1e-4)
                assert row.loss == pytest.approx(loss.item(), rel=1e-6) and row.lr == 0.05
            step += 1


def test_probe_is_the_full_batch_gradient_whatever_the_chunk():
    x, y = digits()
    torch.manual_seed(0)
    model = build_model("deep_mlp", (1, 8, 8), 10, depth=2, width=10)
    a = probe_gradients(model, x[:500], y[:500], "cross_entropy", chunk=4096)
    b = probe_gradients(model, x[:500], y[:500], "cross_entropy", chunk=64)
    np.testing.assert_allclose(a.stats, b.stats, rtol=1e-4, atol=1e-6)
    assert a.loss == pytest.approx(b.loss, rel=1e-6) and a.accuracy == b.accuracy
    assert all(p.grad is None for p in model.parameters())  # probing leaves no gradient behind


def _spec(tmp_path, **over) -> str:
    d = {"name": "deep", "model": {"kind": "deep_mlp", "options": {"depth": 24, "width": 64, "activation": "tanh"}},
         "data": {"kind": "digits"}, "record": "step", "epochs": 0}
    d.update(over)
    path = tmp_path / f"{d['name']}.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def _trend(out) -> tuple[float, list[str]]:
    """Least-squares change of the step-0 median log10|grad| across the weight matrices, input side to output (decades)."""
    ds = xr.open_zarr(out)
    names = [str(n) for n in ds["parameter"].values]
    wm = [n for n in names if n.endswith("weight")]
    med = ds["median_log10_grad"].sel(step=0, parameter=wm).values
    slope = np.polyfit(np.arange(len(wm)), med, 1)[0]
    return slope * (len(wm) - 1), wm


@pytest.mark.usefixtures("ray_cluster")
def test_deep_tanh_vanishes_at_default_init_and_not_with_init_gain(tmp_path, capsys):
    """24 tanh layers, width 64, digits, default init: the median gradient falls by more than 3 decades from the
    output to the input side (measured: 5.4); every parameter times 1.8: by less than 1 (measured: about 0.5)."""
    default, gained = tmp_path / "default.zarr", tmp_path / "gained.zarr"
    assert main(["gradients", _spec(tmp_path), "--out", str(default)]) == 0
    opts = {"depth": 24, "width": 64, "activation": "tanh", "init_gain": 1.8}
    assert main(["gradients", _spec(tmp_path, name="gained", model={"kind": "deep_mlp", "options": opts}),
                 "--out", str(gained), "--no-plot"]) == 0
    span, wm = _trend(default)
    assert len(wm) == 25 and span > 3.0
    assert abs(_trend(gained)[0]) < 1.0
    # The result: dims (step, parameter), the names as a coordinate, one row (epochs: 0), no update taken.
    ds = xr.open_zarr(default)
    assert ds["median_log10_grad"].dims == ("step", "parameter") and ds.sizes["step"] == 1
    torch.manual_seed(0)
    model = build_model("deep_mlp", (1, 8, 8), 10, depth=24, width=64, activation="tanh")
    assert [str(n) for n in ds["parameter"].values] == [n for n, _ in model.named_parameters()]
    assert np.isnan(ds["update_ratio"].values).all() and ds["row_done"].values.all()
    # Step 0 is the first mini-batch of the seeded order (batch 64, seed 0), at the initial weights: recompute it.
    idx = torch.randperm(len(digits()[0]), generator=torch.Generator().manual_seed(0))[:64]
    x, y = digits()
    nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
    np.testing.assert_allclose(ds["median_log10_grad"].values[0], [v for _, v in one_liner(model)], rtol=1e-5)
    err = capsys.readouterr().err
    assert "last minus first weight matrix:" in err and "decades" in err
    for name in ("gradient_diagram", "gradient_lines", "gradient_profile"):
        assert imread(str(tmp_path / "default-plots" / f"{name}.png")).std() > 0.05


@pytest.mark.usefixtures("ray_cluster")
def test_record_epoch_matches_the_checkpoints_of_landscape_train(tmp_path):
    """record: epoch = the gradient of the probe samples at each epoch's weights: recomputed from `landscape train`."""
    model = {"kind": "deep_mlp", "options": {"depth": 3, "width": 16, "activation": "tanh"}}
    data = {"kind": "digits", "subset": 200}
    common = {"model": model, "data": data, "epochs": 2, "lr": 0.05, "batch_size": 32}
    out = tmp_path / "g.zarr"
    assert main(["gradients", _spec(tmp_path, name="ep", record="epoch", **common), "--out", str(out), "--no-plot"]) == 0
    tspec = tmp_path / "t.yaml"
    tspec.write_text(yaml.safe_dump({"name": "t", **common}))
    assert main(["train", str(tspec), "--out", str(tmp_path / "run")]) == 0
    ds = xr.open_zarr(out)
    assert list(ds["step"].values) == [0, 7, 14] and list(ds["epoch"].values) == [0, 1, 2]  # 200 / 32 -> 7 steps per epoch
    from landscape.subsets import take_subset

    x, y = take_subset(*digits(), 200, 0)  # the data spec's subset rule (stratified by class)
    states = [torch.load(tmp_path / "run" / f"epoch_{e:03d}.pt", weights_only=True) for e in range(3)]
    net = build_model("deep_mlp", (1, 8, 8), 10, depth=3, width=16, activation="tanh")
    for e, state in enumerate(states):
        net.load_state_dict(state)
        net.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        np.testing.assert_allclose(ds["median_log10_grad"].values[e], [v for _, v in one_liner(net)], rtol=1e-5)
        assert ds["loss"].values[e] == pytest.approx(loss.item(), rel=1e-5)
        if e:
            want = [float((state[n] - states[e - 1][n]).norm() / states[e - 1][n].norm()) for n, _ in net.named_parameters()]
            np.testing.assert_allclose(ds["update_ratio"].values[e], want, rtol=1e-5)
    assert np.isnan(ds["update_ratio"].values[0]).all()


@pytest.mark.usefixtures("ray_cluster")
def test_record_step_every_n_and_a_diverging_run(tmp_path, capsys):
    common = {"model": {"kind": "deep_mlp", "options": {"depth": 2, "width": 8, "activation": "relu", "init_gain": 3.0}},
              "data": {"kind": "digits", "subset": 120}, "epochs": 3, "batch_size": 20}
    out = tmp_path / "every.zarr"
    assert main(["gradients", _spec(tmp_path, name="every", every=4, lr=0.01, **common), "--out", str(out), "--no-plot"]) == 0
    ds = xr.open_zarr(out)
    assert list(ds["step"].values) == [0, 4, 8, 12, 16] and ds["row_done"].values.all()  # 18 steps
    assert list(ds["epoch"].values) == [0, 0, 1, 2, 2]
    assert np.all(ds["update_ratio"].values[:, ::2] > 0)  # weights move every recorded step
    out = tmp_path / "div.zarr"
    assert main(["gradients", _spec(tmp_path, name="div", lr=1e12, **common), "--out", str(out)]) == 0
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete" and meta["diverged_at_step"] is not None
    done = zarr.open_group(str(out), mode="r")["row_done"][...]
    assert done[: meta["diverged_at_step"] + 1].all() and not done[meta["diverged_at_step"] + 1 :].any()
    assert "diverged (non-finite) at step" in capsys.readouterr().err
    assert imread(str(tmp_path / "div-plots" / "gradient_lines.png")).std() > 0.05


@pytest.mark.usefixtures("ray_cluster")
def test_a_finished_result_is_kept_and_an_unfinished_one_restarts(tmp_path, capsys):
    spec = _spec(tmp_path, name="small", model={"kind": "deep_mlp", "options": {"depth": 2, "width": 8}},
                 data={"kind": "digits", "subset": 64})
    out = tmp_path / "s.zarr"
    assert main(["gradients", spec, "--out", str(out), "--no-plot"]) == 0
    first = xr.open_zarr(out)["median_log10_grad"].values
    capsys.readouterr()
    assert main(["gradients", spec, "--out", str(out), "--no-plot"]) == 0
    assert "already complete" in capsys.readouterr().err
    g = zarr.open_group(str(out), mode="r+")
    ResultStore(g, str(out)).update_meta(status="interrupted")
    assert main(["gradients", spec, "--out", str(out), "--no-plot"]) == 0
    assert "starting again" in capsys.readouterr().err
    assert np.array_equal(xr.open_zarr(out)["median_log10_grad"].values, first, equal_nan=True)
    assert ResultStore.open(str(out)).meta["status"] == "complete"


@pytest.mark.usefixtures("ray_cluster")
def test_on_an_actor_killed_once_the_rows_equal_the_in_process_training(tmp_path):
    """The training is an item of the one queue: its actor SIGKILLs itself mid-training (once), the item is trained
    again on a new actor, and every stored row equals the recorder run in this process (as `gradients` ran before)."""
    import os

    from landscape.training import train as plain_train

    marker = tmp_path / "died"
    opts = {"depth": 2, "width": 8, "activation": "tanh"}
    model = {"kind": "import", "factory": "tests.health_factories:dying_once",
             "options": {"marker": str(marker), "driver_pid": os.getpid(), "die_at": 5, **opts}}
    common = {"model": model, "data": {"kind": "digits", "subset": 90}, "epochs": 2, "batch_size": 30, "lr": 0.05}
    out = tmp_path / "g.zarr"
    assert main(["gradients", _spec(tmp_path, name="killed", every=2, **common), "--out", str(out), "--no-plot",
                 "--actors", "1"]) == 0
    meta = ResultStore.open(str(out)).meta
    assert marker.exists() and meta["actor_deaths"] == 1 and meta["retries"] == 1  # it died, and was redone
    from landscape.subsets import take_subset

    x, y = take_subset(*digits(), 90, 0)
    from landscape.factories import ModelFactory

    net = ModelFactory("import", (1, 8, 8), 10, model["options"], factory=model["factory"])()  # in this process: never dies
    rec = GradientRecorder(net, every=2)
    plain_train(net, x, y, epochs=2, lr=0.05, momentum=0.9, batch_size=30, seed=0, objective=rec.objective("cross_entropy"),
                on_backward=rec.on_backward, on_step=rec.on_step)
    ds = xr.open_zarr(out)
    assert list(ds["step"].values) == [r.step for r in rec.rows] == [0, 2, 4] and ds["row_done"].values.all()
    for k, name in enumerate(("median_log10_grad", "p10_log10_grad", "p90_log10_grad", "grad_norm", "update_ratio")):
        np.testing.assert_allclose(ds[name].values, np.stack([r.stats[:, k] for r in rec.rows]), rtol=1e-7, atol=0)
    np.testing.assert_allclose(ds["loss"].values, [r.loss for r in rec.rows], rtol=1e-7, atol=0)
    assert list(ds["lr"].values) == [0.05] * 3


def test_the_actor_says_each_epoch_as_it_trains(capsys):
    """Progress of a long training: the actor prints each epoch's line as it ends (Ray forwards an actor's output to
    the driver and the job log), the same numbers the result's summary keeps."""
    from landscape.factories import ModelFactory
    from landscape.gradient_run import GradientsProblem, GradientsRun
    from landscape.subsets import take_subset

    x, y = take_subset(*digits(), 60, 0)
    factory = ModelFactory("deep_mlp", (1, 8, 8), 10, {"depth": 2, "width": 8, "activation": "tanh"})
    problem = GradientsProblem(factory, x, y, None, "step", 1, 2, "cross_entropy", "sgd", 0.05, 0.9, 0.0, 30, 0, "gradients t")
    capsys.readouterr()
    result = GradientsRun(problem).evaluate()
    said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[gradients t] epoch")]
    assert said == [f"[gradients t] epoch {e}/2 loss {loss:.4f} accuracy {acc:.3f}" for e, loss, acc in result["epochs"]]
    assert [e for e, _, _ in result["epochs"]] == [1, 2]
