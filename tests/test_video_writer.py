"""Videos without an ffmpeg on PATH: the one imageio-ffmpeg installs writes the MP4."""
import subprocess

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
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
