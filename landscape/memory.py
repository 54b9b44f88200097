"""Does a data set fit the device it will sit on? Checked before anything is written.

Every actor keeps the full-batch data on its device for its whole life, and the
driver holds it once more (and puts it into Ray's object store). So the data
may take at most DATA_FRACTION of the free memory; the rest is for the model,
the activations of a pass and that second copy.
"""

from __future__ import annotations

import torch

from .errors import DataError

DATA_FRACTION = 0.5


def meminfo_available(path: str = "/proc/meminfo") -> int | None:
    """MemAvailable in bytes (what the kernel says can be allocated without swapping); None if unknown."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_memory(device: torch.device | None = None) -> tuple[int | None, str]:
    """(free bytes, what they are) on `device` (default: CUDA when present, else the CPU)."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"GPU {torch.cuda.get_device_name(device)} (torch.cuda.mem_get_info)"
    return meminfo_available(), "CPU memory (MemAvailable in /proc/meminfo)"


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def check_data_memory(samples: int, sample_shape: tuple[int, ...], what: str, bytes_per_value: int = 4,
                      device: torch.device | None = None) -> None:
    """DataError if `samples` of `sample_shape` (float32 by default) exceed DATA_FRACTION of the free memory."""
    values = samples
    for d in sample_shape:
        values *= int(d)
    need = values * bytes_per_value
    free, where = free_memory(device)
    if free is None or need <= DATA_FRACTION * free:
        return
    fit = max(1, int(samples * DATA_FRACTION * free / max(need, 1)))
    raise DataError(
        f"{what}: {samples:,} samples of {tuple(int(d) for d in sample_shape)} take {human(need)} on the device, "
        f"more than {DATA_FRACTION:.0%} of the {human(free)} free in {where}; every actor holds the whole data set "
        f"there, so take a subset (data.subset: {fit:,} or fewer, or data.subset_fraction) or run where there is more "
        "memory (data_chunk only bounds the activations of each pass, not the data)"
    )
