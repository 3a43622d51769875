"""Writing results: every file appears whole or not at all (write to a temp file, then rename).

Files get the permissions the process umask gives (as ``open`` would), not a temp
file's 0600. A path that cannot be written (a read-only folder, a parent that is a
file) is one FerlabError line. ``claim_folder`` holds an output folder for one
run, so that two runs started into one folder give one run and one refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ferlab.config import ConfigError
from ferlab.cppn import DenseNet, net_to_npz_dict
from ferlab.errors import FerlabError


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (parents created); FerlabError if it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path)
    except OSError as e:
        raise FerlabError(f"cannot write {path} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FerlabError(f"cannot write {path} ({e.strerror or e})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new hidden file beside ``path``, mode 0666 less the umask (applied by the kernel)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def claim_folder(out: str | Path, marker: str, text: str) -> Iterator[Path]:
    """Hold folder ``out`` for one job whose identity is ``text``, kept in ``out/marker``.

    The folder is created if need be and locked (``flock`` on the folder itself: no
    lock file; the kernel releases it when the process ends, even if it is killed).
    Refused with FerlabError, before anything is written: ``out`` is a file or cannot
    be written, another live process holds it, or ``marker`` holds a different text.
    Otherwise ``marker`` is written (if absent) and the folder is held until the
    ``with`` block ends; a folder whose ``marker`` holds the same text is resumed.
    A job that fails before writing anything but the marker (out of memory as it
    starts, say) leaves no trace: the marker and a folder this call made are removed,
    so the folder does not hold a run that never ran against a corrected config.
    """
    out = Path(out)
    check_claim(out, marker, text)
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise FerlabError(f"cannot create or open the output folder {str(out)!r} ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FerlabError(f"{out} is in use by another running job; wait for it or choose another --out") from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise FerlabError(f"cannot write into the output folder {str(out)!r} (permission denied)")
        check_claim(out, marker, text)  # again, now that no one else can write it
        wrote = not (out / marker).is_file()
        if wrote:
            write_text(out / marker, text)
        try:
            yield out
        except BaseException:
            if wrote and [p.name for p in out.iterdir()] == [marker]:
                (out / marker).unlink()
                if made:
                    with contextlib.suppress(OSError):
                        out.rmdir()
            raise
    finally:
        os.close(fd)


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (no such file, a folder, a device or pipe), or None."""
    path = Path(path)
    if path.is_file():
        return None
    if path.is_dir():
        return "is a folder, not a file"
    return "not a regular file" if path.exists() else "no such file"


def check_writable_folder(path: str | Path, what: str) -> None:
    """Refuse (ConfigError), writing nothing, a ``path`` that cannot be or become a folder this
    process writes in: a file, or below a file or a folder it cannot write."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a file, not a folder")
    have = path.absolute()
    while not have.exists():
        have = have.parent
    if not have.is_dir():
        raise ConfigError(f"{what} {str(path)!r} cannot be made: {have} is a file")
    if not os.access(have, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} cannot be written: {have} is not writable")


def check_claim(out: Path, marker: str, text: str) -> None:
    """Refuse ``out`` (ConfigError) if it cannot be a folder this process writes in
    (``check_writable_folder``) or ``out/marker`` holds something other than ``text``; reads only,
    writes nothing."""
    check_writable_folder(out, "--out")
    previous = out / marker
    try:
        same = not previous.is_file() or previous.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {previous} ({getattr(e, 'strerror', None) or e})") from None
    if not same:
        raise ConfigError(f"{out} holds a different run ({previous} differs); choose another --out")


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def png_bytes(rgb) -> bytes:
    """An (H, W, 3) float image in [0, 1] as PNG bytes; a NaN colour (a diverged net's) is black."""
    arr = np.nan_to_num(np.asarray(rgb, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
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
