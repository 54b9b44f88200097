"""The trajectory math (landscape/trajectory.py): PCA plane, coordinates, off-plane distances, sign rule,
the piecewise-linear path, and evaluating whole states; each checked against an independent computation."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from landscape.coefmaps import Polyline, from_json
from landscape.errors import CheckpointError, SpecError
from landscape.evaluator import Evaluator
from landscape.params import StateLayout
from landscape.problem import ScanProblem
from landscape.slices import combine
from landscape.state_eval import StateEvaluator
from landscape.trajectory import (
    SIGN_RULE,
    orient,
    path_slice,
    pca_slice,
    plane_entries,
    trajectory_plane,
)

from .independent import reference_loss, state_at


class Net(nn.Module):
    """Weights (2-D), biases and BatchNorm (1-D) and BatchNorm buffers: every kind of entry."""

    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(6, 9), nn.BatchNorm1d(9), nn.Linear(9, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


LAYOUT = StateLayout.of(Net())
MOVES = plane_entries(LAYOUT, "biasbn")  # fc1.weight, fc2.weight
PARAMS = LAYOUT.param_mask()
A = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # centered, uncorrelated with B: the principal axes are u and v
B = np.array([1.0, -0.5, -1.0, -0.5, 1.0])


def _basis(seed=0):
    """Orthonormal u, v (float64) over the 2-D weights; v's largest-magnitude entry positive."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(int(MOVES.sum()), 2, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(m)
    u, v = torch.zeros(2, LAYOUT.size, dtype=torch.float64)
    u[MOVES], v[MOVES] = q[:, 0], q[:, 1]
    if v[v.abs().argmax()] < 0:
        v = -v
    return u, v


def _origin(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(LAYOUT.size, generator=g, dtype=torch.float64)


def _planar(buffers_move=True):
    """Checkpoints o + A_i u + B_i v (fp32); buffers differ per checkpoint, biases do not."""
    u, v = _basis()
    o = _origin()
    ws = []
    for i, (a, b) in enumerate(zip(A, B)):
        w = o + a * u + b * v
        if buffers_move:
            w[~PARAMS] += 0.3 * (i + 1)  # running statistics change along the run: never the plane's business
        ws.append(w.float())
    return ws, u, v


def _plane(ws, origin=None, ignore="biasbn"):
    origin = ws[-1] if origin is None else origin
    return trajectory_plane(lambda i, out: out.copy_(ws[i]), len(ws), origin, LAYOUT, ignore)


def test_a_trajectory_in_a_known_plane_is_recovered_exactly():
    ws, u, v = _planar()
    plane = _plane(ws)
    e = plane.components
    # The components span the plane: each is u or v (the principal axes, by construction), signed by the rule.
    assert torch.allclose(e[0], u, atol=1e-6) and torch.allclose(e[1], v, atol=1e-6)
    assert plane.sign_by == ["path", "largest entry"]  # B starts and ends at 1: PC2's sign comes from its largest entry
    # Coordinates: checkpoint i sits at (A_i - A_last, B_i - B_last), origin = the last checkpoint.
    want = np.stack([A - A[-1], B - B[-1]], axis=1)
    np.testing.assert_allclose(plane.coords, want, atol=1e-5)
    assert plane.coords[-1].tolist() == [0.0, 0.0]
    # On the plane: off-plane distances vanish relative to the distance from the origin (fp32 checkpoints).
    rel = plane.off_plane_relative
    assert np.isnan(rel[-1]) and (rel[:-1] <= 1e-6).all(), rel
    np.testing.assert_allclose(plane.distance, np.hypot(*want.T), rtol=1e-6)
    np.testing.assert_allclose(plane.explained_variance_ratio, [10 / 13.5, 3.5 / 13.5], rtol=1e-6)  # fp32 checkpoints
    # Buffers never move the plane, and the plane never moves biases or BatchNorm (biasbn).
    assert (e[:, ~MOVES] == 0).all()


def _noisy(seed=2, n=7, bias_noise=0.0):
    """A curved path with off-plane noise in every parameter (biases too, if asked)."""
    g = torch.Generator().manual_seed(seed)
    u, v = _basis(seed)
    o = _origin(seed)
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    ws = []
    for ti in t:
        w = o + 3 * ti * u + torch.sin(3 * ti) * v + 0.05 * torch.randn(LAYOUT.size, generator=g, dtype=torch.float64) * MOVES
        w[PARAMS & ~MOVES] += bias_noise * torch.randn(int((PARAMS & ~MOVES).sum()), generator=g, dtype=torch.float64)
        ws.append(w.float())
    return ws


def _numpy_pca(ws, origin, moves):
    """Independent: numpy's SVD of the same matrix, centered; (ratios (k,), components (k, P), rows (n, P))."""
    rows = np.stack([(w - origin).double().numpy() * moves.numpy() for w in ws])  # fp32 differences, as stored
    centered = rows - rows.mean(0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    return s**2 / (s**2).sum(), vt, rows


@pytest.mark.parametrize("ignore", ["biasbn", "none"])
def test_off_the_plane_distances_ratios_and_components_match_numpy_svd(ignore):
    ws = _noisy(bias_noise=0.02)
    plane = _plane(ws, ignore=ignore)
    moves = plane_entries(LAYOUT, ignore)
    ratios, vt, rows = _numpy_pca(ws, ws[-1], moves)
    r = plane.explained_variance_ratio
    assert 0 < r[1] <= r[0] <= 1
    np.testing.assert_allclose(r, ratios[:2], rtol=1e-9)
    # sklearn's PCA (what Li et al.'s code calls) on the same rows agrees too.
    np.testing.assert_allclose(r, PCA(n_components=2).fit(rows).explained_variance_ratio_, rtol=1e-9)
    e = plane.components.numpy()
    for k in range(2):
        assert abs(abs(e[k] @ vt[k]) - 1) < 1e-6  # the same axis, up to sign (components are computed in fp32)
    # Off-plane distances, computed independently: the full difference over all parameters (ignored
    # biases included) minus its projection on numpy's components.
    full = np.stack([((w - ws[-1]).double() * PARAMS).numpy() for w in ws])
    resid = full - (full @ vt[:2].T) @ vt[:2]
    np.testing.assert_allclose(plane.off_plane, np.linalg.norm(resid, axis=1), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(plane.distance, np.linalg.norm(full, axis=1), rtol=1e-9)
    # Coordinates: d_i . e_k with numpy's components, signed as ours.
    signs = np.sign(np.sum(e[:2] * vt[:2], axis=1))
    np.testing.assert_allclose(plane.coords, (full @ vt[:2].T) * signs, rtol=1e-7, atol=1e-9)
    if ignore == "biasbn":
        assert (plane.ignored[:-1] > 0).all()  # the moved biases are off the plane by construction
    else:
        assert (plane.ignored == 0).all()


def test_an_origin_apart_from_the_trajectory_keeps_the_components():
    """Centered rows: the components describe the path, whatever the origin; the origin sits at (0, 0)."""
    ws = _noisy()
    last = _plane(ws)
    apart = _plane(ws, origin=ws[-1] + 0.5)  # a point off the path
    assert torch.allclose(last.components, apart.components, atol=1e-6)  # fp32 differences round differently
    np.testing.assert_allclose(last.explained_variance_ratio, apart.explained_variance_ratio, rtol=1e-6)
    assert not np.allclose(last.coords, apart.coords)


def test_the_sign_rule_gives_the_same_picture_whatever_the_solver_signs():
    ws = _noisy()
    first, second = _plane(ws), _plane(ws)
    assert torch.equal(first.components, second.components) and np.array_equal(first.coords, second.coords)
    # The path runs left to right and upward: the last checkpoint's coordinates exceed the first's.
    assert (first.coords[-1] > first.coords[0]).all() and first.sign_by == ["path", "path"]
    # Whatever signs a solver returns, the rule maps them to the same picture.
    for flip in ([1, -1], [-1, 1], [-1, -1]):
        f = np.array(flip, dtype=float)
        signs, by = orient(first.components * torch.from_numpy(f)[:, None], first.coords * f)
        np.testing.assert_array_equal(signs * f, [1.0, 1.0])
    assert "largest-magnitude entry" in SIGN_RULE


def test_a_path_that_comes_back_falls_back_to_the_largest_entry():
    comps = torch.tensor([[0.1, -0.9, 0.2], [0.5, 0.1, -0.2]], dtype=torch.float64)
    coords = np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 1.0 + 1e-9]])  # PC1 returns to its start; PC2 barely moves
    signs, by = orient(comps, coords)
    assert by == ["largest entry", "largest entry"] and signs.tolist() == [-1.0, 1.0]


def test_checkpoints_are_read_one_at_a_time_in_order():
    ws = _noisy()
    seen = []

    def read(i, out):
        seen.append(i)
        out.copy_(ws[i])

    trajectory_plane(read, len(ws), ws[-1], LAYOUT)
    assert seen == list(range(len(ws)))


@pytest.mark.parametrize("case, error, needle", [
    ("two", SpecError, "at least 3 checkpoints"),
    ("equal", SpecError, "no variance"),
    ("only biases moved", SpecError, "no variance"),
    ("collinear", SpecError, "lie on one line"),
    ("nan", CheckpointError, "NaN"),
])
def test_degenerate_trajectories_are_clear_errors(case, error, needle):
    ws = _noisy()
    if case == "two":
        ws = ws[:2]
    elif case == "equal":
        ws = [ws[0].clone() for _ in range(4)]
    elif case == "only biases moved":
        ws = [ws[0].clone() for _ in range(4)]
        for i, w in enumerate(ws):
            w[PARAMS & ~MOVES] += i
    elif case == "collinear":
        u, _ = _basis()
        ws = [(ws[0].double() + t * u).float() for t in (0.0, 1.0, 2.5, 4.0)]
    elif case == "nan":
        ws[2] = ws[2].clone()
        ws[2][0] = float("nan")
    with pytest.raises(error, match=needle):
        _plane(ws)


def test_the_pca_slice_records_what_the_plots_need():
    ws = _noisy()
    plane = _plane(ws)
    labels = [f"step_{i:03d}" for i in range(len(ws))]
    sl = pca_slice(LAYOUT, ws[-1], plane, labels, labels[-1], len(ws) - 1, "biasbn")
    info = sl.info
    assert [m["label"] for m in sl.checkpoints] == [labels[0], labels[-1]]  # first and last labelled
    assert info["x_label"] == f"PC1: {100 * plane.explained_variance_ratio[0]:.1f}%"
    assert [p["x"] for p in info["trajectory"]] == plane.coords[:, 0].tolist()
    assert info["trajectory"][-1]["off_plane_relative"] is None  # 0/0 at the origin, JSON-safe
    mid = pca_slice(LAYOUT, ws[3], _plane(ws, origin=ws[3]), labels, "origin: step_003", 3, "biasbn")
    assert [(m["label"], m["x"], m["y"]) for m in mid.checkpoints][2] == ("origin: step_003", 0.0, 0.0)
    # The slice's point at a checkpoint's coordinates is its projection: the off-plane gap is what is left.
    for i in (0, 3):
        proj = sl.point(plane.coords[i]).double()
        gap = ((ws[i].double() - proj) * PARAMS).norm().item()
        assert gap == pytest.approx(plane.off_plane[i], rel=1e-5)


def test_polyline_coefficients_hit_each_point_and_extend_the_end_segments():
    m = Polyline(4)
    c = m(np.array([[-0.5], [0.0], [1.0], [1.25], [3.0], [3.5]]))
    np.testing.assert_array_equal(c, [[1.5, -0.5, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0.75, 0.25, 0],
                                      [0, 0, 0, 1], [0, 0, -0.5, 1.5]])
    assert from_json(m.to_json(), 4) == m


def _data(n=40):
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, 6, generator=g), torch.randint(0, 4, (n,), generator=g)


def _states(k=4):
    """k different models with moved BatchNorm statistics, as state dicts."""
    x, _ = _data()
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        m = Net().train()
        m(x * (1 + seed))
        out.append({n: t.detach().clone() for n, t in m.state_dict().items()})
    return out


def test_the_path_slice_reproduces_every_checkpoint_bit_for_bit():
    states = _states()
    vecs = [LAYOUT.flatten(s) for s in states]
    sl = path_slice(LAYOUT, lambda i, out: out.copy_(vecs[i]), len(vecs), [f"c{i}" for i in range(len(vecs))])
    for k, v in enumerate(vecs):
        assert torch.equal(sl.point([float(k)]), v), k  # buffers too
    mid = sl.point([1.5]).double()
    torch.testing.assert_close(mid, (vecs[1].double() + vecs[2].double()) / 2, rtol=0, atol=1e-6)
    x, y = _data()
    ev = Evaluator(ScanProblem(Net, sl, x, y), device="cpu")
    got = ev.evaluate(np.array([[0.0], [2.0], [3.0]]))["loss"]
    for j, k in enumerate((0, 2, 3)):
        assert got[j] == pytest.approx(reference_loss(Net(), states[k], x, y)[0], rel=1e-5)


def test_the_state_evaluator_evaluates_checkpoints_and_projections():
    states = _states()
    vecs = [LAYOUT.flatten(s) for s in states]
    plane = trajectory_plane(lambda i, out: out.copy_(vecs[i]), len(vecs), vecs[-1], LAYOUT)
    sl = pca_slice(LAYOUT, vecs[-1], plane, ["a", "b", "c", "d"], "d", 3, "biasbn")
    x, y = _data()
    problem = ScanProblem(Net, sl, x, y)
    se = StateEvaluator(problem, device="cpu")
    for k, s in enumerate(states):  # the checkpoints themselves (their own BatchNorm statistics)
        want = reference_loss(Net(), s, x, y)
        got = se.evaluate(vecs[k].numpy())
        assert got["loss"] == pytest.approx(want[0], rel=1e-6) and got["accuracy"] == pytest.approx(want[1])
    # A projection is the plane's point: the same value the map's evaluator gives there, and an
    # independent float64 rebuild of the weights.
    grid_ev = Evaluator(problem, device="cpu")
    for k in range(3):
        xy = plane.coords[k]
        got = se.evaluate(combine(sl.origin, sl.directions, xy).numpy())["loss"]
        assert got == pytest.approx(float(grid_ev.evaluate(xy[None])["loss"][0]), rel=1e-6)
        dirs = [LAYOUT.unflatten(d) for d in sl.directions]
        want = reference_loss(Net(), state_at(Net(), {**states[-1]}, dirs, xy), x, y)[0]
        assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.gpu
def test_the_state_evaluator_on_cuda_matches_cpu():
    """On CUDA the evaluator replays a graph that reads the origin in place: each new state must be seen."""
    states = _states()
    vecs = [LAYOUT.flatten(s) for s in states]
    plane = trajectory_plane(lambda i, out: out.copy_(vecs[i]), len(vecs), vecs[-1], LAYOUT)
    sl = pca_slice(LAYOUT, vecs[-1], plane, ["a", "b", "c", "d"], "d", 3, "biasbn")
    x, y = _data()
    cpu, gpu = StateEvaluator(ScanProblem(Net, sl, x, y), "cpu"), StateEvaluator(ScanProblem(Net, sl, x, y), "cuda")
    for v in [*vecs, *vecs[::-1]]:
        assert gpu.evaluate(v.numpy())["loss"] == pytest.approx(cpu.evaluate(v.numpy())["loss"], rel=1e-5)
