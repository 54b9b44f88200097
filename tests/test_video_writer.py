"""Videos: the ffmpeg imageio-ffmpeg installs when none is on PATH; holding the last frame's plane still."""
import subprocess

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import zarr  # noqa: E402
from matplotlib import animation  # noqa: E402


def test_mp4_through_imageio_ffmpeg_when_none_on_path(tmp_path, monkeypatch):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from jobs.plot import video

    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here
    monkeypatch.setitem(matplotlib.rcParams, "animation.ffmpeg_path", "ffmpeg")
    writer, suffix, note = video.pick_writer("auto", 2)
    assert isinstance(writer, animation.FFMpegWriter) and suffix == ".mp4" and note is None
    assert matplotlib.rcParams["animation.ffmpeg_path"] == imageio_ffmpeg.get_ffmpeg_exe()
    fig, ax = plt.subplots(figsize=(3, 2))
    out = tmp_path / "v.mp4"
    with writer.saving(fig, str(out), 50):
        for i in range(3):
            ax.clear()
            ax.plot([0, 1], [0, i])
            writer.grab_frame()
    plt.close(fig)
    decoded = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(out), "-f", "null", "-"],
                             capture_output=True, text=True).stderr
    assert "frame=    3" in decoded or "frame=3" in decoded.replace(" ", ""), decoded[-400:]


def test_gif_with_a_note_when_no_ffmpeg_at_all(monkeypatch):
    from jobs.plot import video

    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    writer, suffix, note = video.pick_writer("mp4", 2)
    assert suffix == ".gif" and "ffmpeg, which is not on PATH: wrote an animated GIF instead" in note


def _gram_schmidt(w1, w2, theta):
    e1 = (w2 - w1) / np.linalg.norm(w2 - w1)
    r = theta - w1 - ((theta - w1) @ e1) * e1
    return np.stack([e1, r / np.linalg.norm(r)])


def animation_result(path, epochs=(1, 2, 3)):
    """A hand-made animation result: three bends theta_f in R^5 between the same w1, w2; each frame its own plane."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=5), rng.normal(size=5)
    thetas = [(w1 + w2) / 2 + rng.normal(size=5) * (0.5 + 0.4 * i) for i in range(len(epochs))]
    x, y = np.linspace(-0.5, 3.0, 7), np.linspace(-0.5, 2.0, 5)
    g = zarr.open_group(str(path), mode="w", zarr_format=3)
    frames, dirs, pts = [], [], []
    for e, th in zip(epochs, thetas):
        d = _gram_schmidt(w1, w2, th)
        p = np.array([[0.0, 0.0], d @ (th - w1), d @ (w2 - w1)])  # w1, theta, w2 in this frame's plane
        dirs.append(d)
        pts.append(p)
        cps = [{"label": "w1", "x": 0.0, "y": 0.0}, {"label": "w2", "x": p[2, 0], "y": p[2, 1]},
               {"label": "θ", "x": p[1, 0], "y": p[1, 1]}]
        frames.append({"epoch": e, "checkpoints": cps, "curve_info": {"kind": "bezier", "points": p.tolist()}})
    X, Y = np.meshgrid(x, y)
    loss = np.stack([0.1 + (X - 1) ** 2 + (i + 1) * Y ** 2 for i in range(len(epochs))]).astype(np.float32)
    g.create_array("loss", data=loss, dimension_names=("frame", "y", "x"))
    g.create_array("tile_done", data=np.ones((len(epochs), 1, 1), np.uint8), dimension_names=("frame", "tile_y", "tile_x"))
    g.create_array("directions", data=np.stack(dirs).astype(np.float64), dimension_names=("frame", "direction", "param"))
    g.create_array("curve_points", data=np.stack(pts), dimension_names=("frame", "point", "coord"))
    g.create_array("frame", data=np.array(epochs), dimension_names=("frame",))
    g.create_array("x", data=x, dimension_names=("x",))
    g.create_array("y", data=y, dimension_names=("y",))
    g.attrs["landscape"] = {"name": "anim", "job": "animation", "metrics": ["loss"], "tile_shape": [5, 7], "frames": frames,
                            "slice_kind": "curve_plane", "slice_info": {}, "precision": "fp32", "dims": 2, "status": "complete"}
    return g, w1, w2, thetas


def test_video_can_hold_the_last_plane_still(tmp_path, monkeypatch):
    """Frame f drawn on the last frame's plane: its bend at the coordinates an independent projection in
    parameter space gives, its distance off that plane in the title, the last frame's values."""
    from jobs.plot import video

    g, w1, w2, thetas = animation_result(tmp_path / "a.zarr")
    last = _gram_schmidt(w1, w2, thetas[2])
    ls = video.load_frame(g, 0, plane=2)
    bend = next(m for m in ls.meta["checkpoints"] if m["label"] == "θ")
    want = last @ (thetas[0] - w1)
    assert np.allclose([bend["x"], bend["y"]], want, atol=1e-12)
    assert np.allclose(ls.meta["slice_info"]["curve"]["points"][1], want, atol=1e-12)
    w2_mark = next(m for m in ls.meta["checkpoints"] if m["label"] == "w2")
    assert np.allclose([w2_mark["x"], w2_mark["y"]], last @ (w2 - w1), atol=1e-12)
    off = np.linalg.norm(thetas[0] - w1 - last.T @ want)
    assert ls.meta["bend_off_plane"] == pytest.approx(off, rel=1e-9) and off > 0.1
    assert np.array_equal(ls.loss, np.ma.masked_invalid(g["loss"][2].astype(np.float64)))
    from jobs.plot.style import title

    assert "epoch 1 on epoch 3's plane" in title(ls)
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    path, _ = video.write_video(g, tmp_path / "v", "gif", 2, 40, plane="last")
    from PIL import Image

    assert Image.open(path).n_frames == 3
    own = video.load_frame(g, 0)  # the default: its own plane
    assert np.allclose(own.meta["slice_info"]["curve"]["points"], g["curve_points"][0])
