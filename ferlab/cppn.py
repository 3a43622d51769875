"""The dense CPPN: a layered network of fixed width, the form every regime shares.

An architecture string ``"12;cache:15,gaussian:4,identity:2,sin:1"`` means 12
hidden layers of width 22 whose units are, in that order, 15 cache (identity
carry), 4 gaussian, 2 identity and 1 sin. Inputs are (x, y, d, bias); a final
linear layer gives (hue, saturation, brightness). There are no biases.

``DenseNet`` is a pytree (kernels are leaves, the architecture is static), so
a population, a set of seeds or a weight sweep is one DenseNet whose kernels
have a leading batch axis, and ``jax.vmap`` maps over it.

Every ``Architecture`` is checked against the depth, width and weight caps of
``ferlab.limits`` when it is made, before any kernel of it is allocated. The
``.npz`` reader checks each member's declared size, header shape and dtype
against the architecture before reading its data, so a small file cannot make
it allocate more than the architecture needs.
"""

from __future__ import annotations

import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ferlab import limits
from ferlab.activations import ACTIVATIONS, identity
from ferlab.errors import NetError

N_INPUTS = 3 + 1  # x, y, d, bias
N_OUTPUTS = 3  # hue, saturation, brightness
_ARCH_RE = re.compile(r"^\s*(\d+)\s*;\s*([a-z]+\s*:\s*\d+(\s*,\s*[a-z]+\s*:\s*\d+)*)\s*$")
MAX_ARCH_CHARS = 4096  # far above any real architecture string; keeps int() and the regex cheap


@dataclass(frozen=True)
class Architecture:
    """Depth and per-layer unit groups of a dense CPPN (hashable: usable as a jit static)."""

    n_layers: int
    groups: tuple[tuple[str, int], ...]

    def __post_init__(self):
        subject = f"architecture {str(self)[:60]!r}"
        limits.LAYERS.check(self.n_layers, subject)
        limits.WIDTH.check(self.width, subject)
        limits.WEIGHTS.check(self.n_weights, subject)

    @classmethod
    def parse(cls, text: str) -> Architecture:
        text = str(text)
        if len(text) > MAX_ARCH_CHARS:
            raise NetError(f"architecture string of {len(text)} characters (at most {MAX_ARCH_CHARS})")
        m = _ARCH_RE.match(text)
        if not m:
            raise NetError(f"bad architecture string {text!r} (expected e.g. '12;cache:15,gaussian:4')")
        groups = []
        for part in m.group(2).split(","):
            name, count = (s.strip() for s in part.split(":"))
            if name not in ACTIVATIONS:
                raise NetError(f"architecture {text!r}: unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
            groups.append((name, int(count)))
        arch = cls(int(m.group(1)), tuple(groups))
        if arch.n_layers < 1 or arch.width < 1:
            raise NetError(f"architecture {text!r} has no hidden units")
        return arch

    def __str__(self) -> str:
        return f"{self.n_layers};" + ",".join(f"{name}:{count}" for name, count in self.groups)

    @property
    def width(self) -> int:
        return sum(count for _, count in self.groups)

    @property
    def kernel_shapes(self) -> tuple[tuple[int, int], ...]:
        w = self.width
        return ((N_INPUTS, w),) + ((w, w),) * (self.n_layers - 1) + ((w, N_OUTPUTS),)

    @property
    def n_weights(self) -> int:
        w = self.width
        return N_INPUTS * w + max(self.n_layers - 1, 0) * w * w + w * N_OUTPUTS

    @property
    def kernel_offsets(self) -> tuple[int, ...]:
        """Where each kernel starts in ``DenseNet.flat()``, then ``n_weights`` (one more than kernels)."""
        offsets = [0]
        for a, b in self.kernel_shapes:
            offsets.append(offsets[-1] + a * b)
        return tuple(offsets)

    def unit_activations(self) -> tuple[str, ...]:
        """The activation of each unit of a hidden layer, in order."""
        return tuple(name for name, count in self.groups for _ in range(count))


def dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b`` in true float32 on every backend. JAX's default lets a GPU use TF32 (10 mantissa
    bits), rounding again at every layer the values a layerized net's cache units carry: its dense
    net then paints another picture than its genome (Moonlight by up to 0.49, the butterfly 0.15,
    simulated). A CPU computes float32 either way, so its pictures do not change."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def apply_groups(arch: Architecture, z: jax.Array, axis: int = -1, form: str = "concat") -> jax.Array:
    """Apply each unit group's activation to its slice of ``axis`` (the units' axis), in one of three
    forms that give the same bits:

    - ``"concat"`` (default): the groups' results concatenated, a form that stays fast under ``vmap``
      and ``grad``.
    - ``"in_place"``: only the groups with a non-identity activation are written, into ``z``'s own
      buffer. On a CPU, outside ``vmap``, that skips copying the identity and cache units (most of
      a layerized net's) and a forward pass runs about 2x faster (``bench/render.py``); under
      ``vmap`` the batched update is slower than the concatenation.
    - ``"select"``: every group's activation over the whole layer, each unit keeping its own
      (``jnp.where`` on the unit's index), so the layer is one elementwise pass with no slices or
      concatenation: on a GPU, where a layer's values cross memory once per pass, 4 groups' slices
      and their concatenation cost as much as the matmuls (skull nets rendered at 0.45x a bare
      matmul chain on an H200, one-group nets at 0.60-0.77x; with this form 0.58x). Forward only:
      an activation overflowing on a unit that does not keep it would make a gradient NaN. Writing
      the layer's product as 22 broadcast products, so that XLA might fuse it with the activations,
      was measured too and dropped: 0.28x (XLA did not fuse them).
    """
    if form == "in_place":
        start = 0
        for name, count in arch.groups:
            if ACTIVATIONS[name] is not identity:
                part = jax.lax.slice_in_dim(z, start, start + count, axis=axis)
                z = jax.lax.dynamic_update_slice_in_dim(z, ACTIVATIONS[name](part), start, axis=axis)
            start += count
        return z
    if form == "select":
        shape = [1] * z.ndim
        shape[axis] = z.shape[axis]
        unit = jnp.arange(z.shape[axis]).reshape(shape)
        out, start = z, 0
        for name, count in arch.groups:
            if ACTIVATIONS[name] is not identity:
                out = jnp.where((unit >= start) & (unit < start + count), ACTIVATIONS[name](z), out)
            start += count
        return out
    parts, start = [], 0
    for name, count in arch.groups:
        parts.append(ACTIVATIONS[name](jax.lax.slice_in_dim(z, start, start + count, axis=axis)))
        start += count
    return jnp.concatenate(parts, axis=axis)


def hidden_layers(arch: Architecture, kernels, h: jax.Array, form: str = "concat"):
    """Each hidden layer's values in turn, units-major (width, pixels), from inputs ``h`` (4, pixels)."""
    for k in kernels[:-1]:
        h = apply_groups(arch, dot(k.T, h), axis=0, form=form)
        yield h


def pixels_major(out: jax.Array) -> jax.Array:
    """Units-major outputs ``(units, pixels)`` as ``(pixels, units)``, by stacking their rows.

    ``out.T`` gives the same array, but lets XLA's CPU layout pass compute the output layer's
    product straight into the 3-wide layout, about 5x slower than the product itself (a quarter
    of a one-hot sweep's picture; ``bench/render.py``). The two products sum in different orders,
    so their last bits can differ."""
    return jnp.stack(list(out), axis=-1)


def forward(arch: Architecture, kernels, inputs: jax.Array, units_major: bool = True, form: str = "concat"):
    """``(hsv[..., 3], features[L, width, ...])`` of one net on ``inputs[..., 4]``.

    With ``units_major`` the hidden values are held as (units, pixels): each activation group is
    then a contiguous block of rows that vectorises along the pixels (a 4-unit slice of a
    22-wide row does not), which on a CPU makes a forward pass 1.5-2x faster (``bench/render.py``),
    and each unit's feature map is one contiguous row, written as it is computed. The
    pixels-major layout (the paper's) transposes its maps. ``form`` is ``apply_groups``'s
    ("in_place" not under ``vmap``, "select" not under ``grad``).
    """
    lead = inputs.shape[:-1]
    x = inputs.reshape(-1, inputs.shape[-1])
    if units_major:
        maps = list(hidden_layers(arch, kernels, x.T, form))
        out = dot(kernels[-1].T, maps[-1])
        # The painters' loops stack the rows (faster); under vmap or grad the transpose is kept: no
        # faster there (bench/sgd.py), and SGD's trajectories would change with the product's last bits.
        out = pixels_major(out) if form == "in_place" else out.T
        features = jnp.stack(maps)
    else:
        h, maps = x, []
        for k in kernels[:-1]:
            h = apply_groups(arch, dot(h, k), form=form)
            maps.append(h)
        out = dot(h, kernels[-1])
        features = jnp.stack(maps).transpose(0, 2, 1)
    return out.reshape(*lead, N_OUTPUTS), features.reshape(*features.shape[:2], *lead)


class _Kernel(nn.Module):
    """One layer's kernel, named and initialised as ``nn.Dense``'s (LeCun normal, ``kernel``)."""

    features: int

    @nn.compact
    def __call__(self, fan_in: int) -> jax.Array:
        return self.param("kernel", nn.initializers.lecun_normal(), (fan_in, self.features))


class CPPN(nn.Module):
    """Flax module of a dense CPPN; Flax's default (LeCun normal) kernel init.

    ``__call__(inputs[..., 4]) -> (hsv[..., 3], features[L, width, ...])``:
    the raw outputs and every hidden layer's activations (``forward``).
    """

    arch: Architecture

    @nn.compact
    def __call__(self, inputs):
        shapes = self.arch.kernel_shapes
        kernels = [_Kernel(b, name=f"Dense_{i}")(a) for i, (a, b) in enumerate(shapes)]
        return forward(self.arch, kernels, inputs)


@struct.dataclass
class DenseNet:
    """Architecture (static) plus kernels ``layer_0 .. layer_L``, shapes ``arch.kernel_shapes``."""

    arch: Architecture = struct.field(pytree_node=False)
    kernels: tuple[jax.Array, ...]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading axes beyond a single net's kernel shape (() for one net)."""
        return tuple(self.kernels[0].shape[:-2])

    def params(self) -> dict:
        """Flax ``{'params': ...}`` variables for ``CPPN(arch).apply``."""
        return {"params": {f"Dense_{i}": {"kernel": k} for i, k in enumerate(self.kernels)}}

    @classmethod
    def from_params(cls, arch: Architecture, variables: dict) -> DenseNet:
        p = variables["params"]
        return cls(arch, tuple(p[f"Dense_{i}"]["kernel"] for i in range(arch.n_layers + 1)))

    def __call__(self, inputs, units_major: bool = True, form: str = "concat"):
        """``(hsv, features)`` of one net (vmap for batches); ``forward`` says what the flags do."""
        return forward(self.arch, self.kernels, inputs, units_major, form)

    def flat(self) -> jax.Array:
        """All weights as one vector (per net, keeping batch axes)."""
        return jnp.concatenate([k.reshape(*self.batch_shape, -1) for k in self.kernels], axis=-1)

    def host_flat(self) -> np.ndarray:
        """``flat()`` as a numpy array, joined on the host: outside ``jit`` the concatenation would be
        compiled for every architecture it meets (the suite meets one per NEAT net)."""
        return np.concatenate([np.asarray(k).reshape(*self.batch_shape, -1) for k in self.kernels], axis=-1)

    def with_flat(self, flat: jax.Array) -> DenseNet:
        """A net of this architecture whose weights are ``flat[..., n_weights]``."""
        kernels, start = [], 0
        for a, b in self.arch.kernel_shapes:
            kernels.append(flat[..., start : start + a * b].reshape(*flat.shape[:-1], a, b))
            start += a * b
        return DenseNet(self.arch, tuple(kernels))


def init_net(arch: Architecture | str, key: jax.Array) -> DenseNet:
    """A net with Flax's default initialisation (LeCun normal kernels)."""
    arch = Architecture.parse(arch) if isinstance(arch, str) else arch
    variables = CPPN(arch).init(key, jnp.zeros((N_INPUTS,)))
    return DenseNet.from_params(arch, variables)


def init_nets(arch: Architecture | str, keys: jax.Array) -> DenseNet:
    """A batch of nets, one per key (vmapped)."""
    arch = Architecture.parse(arch) if isinstance(arch, str) else arch
    return jax.vmap(lambda k: init_net(arch, k))(keys)


def stack_nets(nets: list[DenseNet]) -> DenseNet:
    """Stack nets of one architecture along a new leading axis (numpy kernels, for ``jit`` to take)."""
    archs = {n.arch for n in nets}
    if len(archs) != 1:
        raise NetError(f"cannot stack nets of different architectures: {sorted(map(str, archs))}")
    return jax.tree.map(lambda *ks: np.stack([np.asarray(k) for k in ks]), *nets)  # on the host: see host_flat


def unstack_nets(nets: DenseNet) -> list[DenseNet]:
    n = nets.batch_shape[0]
    return [jax.tree.map(lambda k, i=i: k[i], nets) for i in range(n)]


# ---------------------------------------------------------------------- npz I/O
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)
MAX_ARCH_MEMBER_BYTES = 64 * 1024
_HEADER_SLACK = 64 * 1024  # an .npy header is at most a few KB


def load_net(path: str | Path) -> DenseNet:
    """Load the shared ``.npz`` format (``arch`` string, ``layer_i`` kernels); no pickle.

    Each member's declared size, shape and dtype are checked before its data is read.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename.removesuffix(".npy"): info for info in zf.infolist()}
            if "arch" not in members:
                raise NetError(f"{path}: no 'arch' entry")
            text = _read_member(zf, members["arch"], path, "arch", None)
            arch = Architecture.parse(str(text))
            names = [f"layer_{i}" for i in range(len(arch.kernel_shapes))]
            extra = set(members) - {"arch", *names}
            if extra:
                raise NetError(f"{path}: unexpected entries {sorted(extra)} for architecture {arch}")
            kernels = []
            for key, shape in zip(names, arch.kernel_shapes):
                if key not in members:
                    raise NetError(f"{path}: architecture {arch} needs {key}, which is missing")
                k = _read_member(zf, members[key], path, key, shape).astype(np.float32)
                if not np.all(np.isfinite(k)):
                    raise NetError(f"{path}: {key} holds non-finite weights")
                kernels.append(k)
    except NetError:
        raise
    except _NPZ_ERRORS as e:
        raise NetError(f"{path}: not a ferlab/FER .npz network ({e})") from None
    return DenseNet(arch, tuple(jnp.asarray(k) for k in kernels))  # JAX only once the whole file is good


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str, shape: tuple[int, ...] | None
) -> np.ndarray:
    """One ``.npy`` member: the ``arch`` string (``shape`` None) or a real kernel of ``shape``.

    The declared uncompressed size and the header are checked first; then exactly the
    bytes the header promises are read, so a member that unpacks to more is never expanded.
    """
    fmt = np.lib.format
    budget = MAX_ARCH_MEMBER_BYTES if shape is None else math.prod(shape) * 8 + _HEADER_SLACK
    if info.file_size > budget:
        raise NetError(
            f"{path}: {key} declares {info.file_size} bytes unpacked, more than its architecture allows ({budget})"
        )
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            header_shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            header_shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise NetError(f"{path}: {key} has unsupported .npy version {version}")
        if shape is None:
            if dtype.kind != "U" or header_shape != ():
                raise NetError(f"{path}: 'arch' is not a string")
        else:
            if dtype.hasobject or dtype.kind not in "fiu":
                raise NetError(f"{path}: {key} holds {dtype} values; weights must be real numbers")
            if tuple(header_shape) != shape:
                raise NetError(f"{path}: {key} has shape {tuple(header_shape)}, architecture needs {shape}")
        nbytes = math.prod(header_shape) * dtype.itemsize
        if nbytes > budget:
            raise NetError(f"{path}: {key} claims {nbytes} bytes, more than its architecture allows ({budget})")
        data = f.read(nbytes)
        if len(data) != nbytes or f.read(1):
            raise NetError(f"{path}: {key} is truncated or has trailing data")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(header_shape, order=order)


def net_to_npz_dict(net: DenseNet) -> dict[str, np.ndarray]:
    if net.batch_shape:
        raise NetError("save one net at a time (this one has batch axes)")
    out = {"arch": np.array(str(net.arch))}
    out.update({f"layer_{i}": np.asarray(k, dtype=np.float32) for i, k in enumerate(net.kernels)})
    return out
