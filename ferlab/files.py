"""Writing results: every file appears whole or not at all (write to a temp file, then rename)."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ferlab.cppn import DenseNet, net_to_npz_dict


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def png_bytes(rgb) -> bytes:
    """An (H, W, 3) float image in [0, 1] as PNG bytes."""
    arr = np.clip(np.rint(np.asarray(rgb, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | Path, rgb) -> Path:
    return write_bytes(path, png_bytes(rgb))


def npz_bytes(net: DenseNet) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **net_to_npz_dict(net))
    return buf.getvalue()


def write_net(path: str | Path, net: DenseNet) -> Path:
    """Save a net in the shared .npz format (``arch`` string and ``layer_i`` kernels)."""
    return write_bytes(path, npz_bytes(net))
