"""Dense CPPNs: architecture strings, npz I/O and batched rendering."""

import jax
import numpy as np
import pytest

from ferlab.activations import cos, sin
from ferlab.cppn import Architecture, apply_groups, init_net, init_nets, load_net, stack_nets, unstack_nets
from ferlab.errors import NetError
from ferlab.files import write_net
from ferlab.render import PIXEL_BLOCK, batch_rgb, grid, padded, render, render_from

ARCH = "3;cache:2,gaussian:3,sin:1"


def test_architecture_round_trips_and_sizes():
    arch = Architecture.parse("12;cache:15,gaussian:4,identity:2,sin:1")
    assert str(arch) == "12;cache:15,gaussian:4,identity:2,sin:1"
    assert arch.width == 22
    assert arch.kernel_shapes[0] == (4, 22) and arch.kernel_shapes[-1] == (22, 3)
    assert arch.n_weights == 4 * 22 + 11 * 22 * 22 + 22 * 3


@pytest.mark.parametrize("bad", ["", "12", "x;cache:3", "3;cache", "3;swish:2", "0;cache:2"])
def test_bad_architecture_strings_are_rejected(bad):
    with pytest.raises(NetError):
        Architecture.parse(bad)


def test_sin_and_cos_match_float64_and_differentiate_to_each_other():
    z = np.concatenate([np.linspace(-1000.0, 1000.0, 400_001), np.linspace(-4.0, 4.0, 10_001)]).astype(np.float32)
    exact = z.astype(np.float64)
    np.testing.assert_allclose(sin(z), np.sin(exact), atol=3e-7, rtol=0)
    np.testing.assert_allclose(cos(z), np.cos(exact), atol=3e-7, rtol=0)
    np.testing.assert_allclose(jax.vmap(jax.grad(sin))(z[::97]), np.cos(exact[::97]), atol=3e-7, rtol=0)
    np.testing.assert_allclose(jax.vmap(jax.grad(cos))(z[::97]), -np.sin(exact[::97]), atol=3e-7, rtol=0)
    assert np.isnan(sin(np.float32(np.inf))) and np.isnan(cos(np.float32(np.nan)))


def test_grid_follows_the_shared_convention():
    g = np.asarray(grid(5))
    lin = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(g[2, :, 0], lin, atol=1e-7)  # x varies along columns
    np.testing.assert_allclose(g[:, 2, 1], lin, atol=1e-7)  # y varies along rows
    np.testing.assert_allclose(g[0, 0, 2], 1.4 * np.sqrt(2), rtol=1e-6)
    assert np.all(g[..., 3] == 1.0)


def test_a_batch_of_64_nets_renders_in_one_call_like_64_single_renders():
    nets = init_nets(ARCH, jax.random.split(jax.random.PRNGKey(0), 64))
    batch = render(nets, 32, features=True)
    assert batch.rgb.shape == (64, 32, 32, 3)
    assert batch.features.shape == (64, 3, 6, 32, 32)
    singles = [render(net, 32, features=True) for net in unstack_nets(nets)]
    np.testing.assert_allclose(np.asarray(batch.rgb), np.stack([s.rgb for s in singles]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(batch.features), np.stack([s.features for s in singles]), atol=1e-5)
    assert len({float(np.asarray(s.rgb).sum()) for s in singles}) == 64


def test_a_large_image_painted_in_pixel_blocks_is_the_same_image():
    net = init_net("4;sin:3,gaussian:2,identity:1", jax.random.PRNGKey(3))
    size = 97  # 9,409 pixels: two blocks, the second padded
    assert PIXEL_BLOCK < size * size < 2 * PIXEL_BLOCK
    hsv = net(grid(size).reshape(-1, 4), units_major=False)[0].reshape(size, size, 3)
    image = render(net, size)
    np.testing.assert_allclose(image.hsv, hsv, atol=1e-5)
    np.testing.assert_allclose(image.rgb, render(net, size, features=True).rgb, atol=1e-5)


def test_feature_maps_painted_in_pixel_blocks_are_every_unit_map_in_place():
    # 128x128 is two whole blocks: the maps are written block by block into one buffer. Each unit's
    # map must be that unit's values at every pixel, as the paper's pixels-major pass computes them.
    net = init_net(ARCH, jax.random.PRNGKey(4))
    size = 128
    assert size * size == 2 * PIXEL_BLOCK
    hsv, maps = net(grid(size).reshape(-1, 4), units_major=False)
    image = render(net, size, features=True)
    assert image.features.shape == (3, 6, size, size)  # (layers, units, S, S)
    np.testing.assert_allclose(image.features, np.asarray(maps).reshape(3, 6, size, size), atol=1e-5)
    np.testing.assert_allclose(image.hsv, np.asarray(hsv).reshape(size, size, 3), atol=1e-5)
    np.testing.assert_array_equal(image.rgb, render(net, size).rgb)  # the same bits as without maps


@pytest.mark.parametrize("arch", [ARCH, "1;sin:2,gaussian:1"])
def test_a_net_painted_from_its_first_moved_kernel_is_the_whole_render(arch):
    # Two nets; each picture moves one weight of one kernel (every kernel, input and output ones
    # included) of one of them and is painted from that kernel on, over the unmoved net's maps.
    base = init_nets(arch, jax.random.split(jax.random.PRNGKey(5), 2))
    maps = render(base, 16, features=True).features
    shapes = base.arch.kernel_shapes
    bounds = np.cumsum([0] + [a * b for a, b in shapes])
    rng = np.random.default_rng(0)
    kernel = np.repeat(np.arange(len(shapes)), 3)
    owner = np.resize([0, 1], kernel.size)
    index = bounds[kernel] + rng.integers(0, bounds[kernel + 1] - bounds[kernel])
    flat = np.asarray(base.flat())[owner]
    flat[np.arange(kernel.size), index] += rng.normal(size=kernel.size).astype(np.float32)
    moved = base.with_flat(jax.numpy.asarray(flat))
    painted = render_from(moved, kernel, maps, owner, 16)
    np.testing.assert_array_equal(painted.rgb, render(moved, 16).rgb)
    # Maps of the wrong net are not the moved net's first layers: the pictures then differ.
    wrong = np.asarray(render_from(moved, kernel, maps, 1 - owner, 16).rgb)
    assert all(not np.array_equal(w, p) for w, p in zip(wrong[kernel > 0], np.asarray(painted.rgb)[kernel > 0]))


def test_padded_batches_of_any_size_share_one_compiled_render_and_their_bits():
    nets = init_nets(ARCH, jax.random.split(jax.random.PRNGKey(6), 9))
    five, seven = padded(jax.tree.map(lambda k: k[:5], nets)), padded(jax.tree.map(lambda k: k[:7], nets))
    assert five.batch_shape == seven.batch_shape == (8,) and padded(nets).batch_shape == (16,)
    np.testing.assert_array_equal(render(five, 16).rgb[:5], render(jax.tree.map(lambda k: k[:5], nets), 16).rgb)
    compiled = render._cache_size()
    np.testing.assert_array_equal(render(seven, 16).rgb[5:7], render(nets, 16).rgb[5:7])
    assert render._cache_size() == compiled + 1  # the batch of 9, not the padded 7
    np.testing.assert_array_equal(render(five, 16).rgb[5:], np.repeat(render(five, 16).rgb[:1], 3, 0))
    pictures = batch_rgb(jax.tree.map(lambda k: k[:7], nets), 16)  # the padded render, its own nets only
    assert pictures.shape == (7, 16, 16, 3)
    np.testing.assert_array_equal(pictures, render(nets, 16).rgb[:7])


def test_the_three_activation_forms_give_the_same_bits():
    """Concatenated slices (vmap, grad), in place (the CPU loops) and one selecting pass (the
    accelerators' render) are one function, bit for bit, also where an activation a unit does not
    keep overflows (sigmoid's exp on large negative inputs)."""
    arch = Architecture.parse("1;cache:2,sin:3,gaussian:2,identity:1,sigmoid:2,tanh:1,cos:2,relu:1")
    z = jax.random.normal(jax.random.key(3), (arch.width, 257)) * 40.0
    forms = {form: np.asarray(apply_groups(arch, z, axis=0, form=form)) for form in ("concat", "in_place", "select")}
    assert np.all(np.isfinite(forms["concat"]))
    np.testing.assert_array_equal(forms["in_place"], forms["concat"])
    np.testing.assert_array_equal(forms["select"], forms["concat"])
    rows = np.asarray(apply_groups(arch, z.T, axis=-1, form="select")).T  # pixels-major, units last
    np.testing.assert_array_equal(rows, forms["concat"])
    assert not np.array_equal(forms["select"], np.asarray(z))  # the activations did apply


def test_the_accelerators_painter_paints_what_the_cpus_loops_paint(monkeypatch):
    """The vmapped painter with its selecting activations (taken off a CPU), run here on the CPU:
    the same pictures and feature maps as the CPU's loops, one net and a batch."""
    import ferlab.render as rendering

    nets = init_nets(ARCH, jax.random.split(jax.random.key(4), 3))
    loops = [render(n, 24, features=True) for n in (nets, jax.tree.map(lambda k: k[0], nets))]
    monkeypatch.setattr(rendering, "on_cpu", lambda: False)
    render.clear_cache()
    try:
        mapped = [render(n, 24, features=True) for n in (nets, jax.tree.map(lambda k: k[0], nets))]
    finally:
        render.clear_cache()
    for a, b in zip(loops, mapped):
        np.testing.assert_allclose(b.rgb, a.rgb, atol=1e-6)
        np.testing.assert_allclose(b.features, a.features, atol=1e-6)


def test_a_render_traces_only_the_painter_of_its_platform(monkeypatch):
    """The CPU's loops or the vmapped painter, chosen when traced: ``lax.platform_dependent`` traced
    both, which doubled the tracing of every render and of SGD's training step."""
    import ferlab.render as rendering

    painted = []
    real = rendering._render_one
    monkeypatch.setattr(rendering, "_render_one", lambda *a, **k: painted.append(k["in_place"]) or real(*a, **k))
    nets = init_nets("2;sin:3,gaussian:3", jax.random.split(jax.random.key(0), 2))
    rendering.render.trace(nets, 7)
    assert painted == [jax.default_backend() == "cpu"]


def test_nested_batch_axes_render_too():
    nets = init_nets(ARCH, jax.random.split(jax.random.PRNGKey(1), 6))
    nested = jax.tree.map(lambda k: k.reshape(2, 3, *k.shape[1:]), nets)
    np.testing.assert_allclose(
        np.asarray(render(nested, 8).rgb).reshape(6, 8, 8, 3), np.asarray(render(nets, 8).rgb), atol=1e-6
    )


def test_npz_round_trip(tmp_path):
    net = init_net(ARCH, jax.random.PRNGKey(2))
    write_net(tmp_path / "n.npz", net)
    again = load_net(tmp_path / "n.npz")
    assert again.arch == net.arch
    for a, b in zip(again.kernels, net.kernels):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_diverged_nets_nan_colours_are_written_black_without_a_warning():
    import io
    import warnings

    from PIL import Image

    from ferlab.files import png_bytes

    rgb = np.full((2, 2, 3), 0.5)
    rgb[0, 0] = np.nan
    rgb[1, 1] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cast of NaN warned on every diverged seed in a study's output
        pixels = np.asarray(Image.open(io.BytesIO(png_bytes(rgb))))
    assert pixels[0, 0].tolist() == [0, 0, 0] and pixels[1, 1].tolist() == [255, 255, 255]
    assert pixels[0, 1].tolist() == [128, 128, 128]


def test_npz_with_wrong_shapes_or_missing_layers_is_rejected(tmp_path):
    net = init_net(ARCH, jax.random.PRNGKey(3))
    arrays = {"arch": np.array(ARCH), **{f"layer_{i}": np.asarray(k) for i, k in enumerate(net.kernels)}}
    np.savez(tmp_path / "short.npz", **{k: v for k, v in arrays.items() if k != "layer_2"})
    with pytest.raises(NetError, match="layer_2"):
        load_net(tmp_path / "short.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "layer_1": np.zeros((6, 5), np.float32)})
    with pytest.raises(NetError, match="layer_1 has shape"):
        load_net(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(NetError, match="not a ferlab"):
        load_net(tmp_path / "junk.npz")


def test_stacking_mixed_architectures_is_an_error():
    a = init_net(ARCH, jax.random.PRNGKey(0))
    b = init_net("2;sin:3", jax.random.PRNGKey(0))
    with pytest.raises(NetError, match="different architectures"):
        stack_nets([a, b])


def test_every_matrix_product_that_paints_or_trains_asks_for_full_float32():
    """JAX's default lets a GPU multiply float32 in TF32 (10 mantissa bits), and a layerized net's cache
    units, rounded again at every layer, then paint another picture than the genome (a CPU cannot show
    it: it computes float32 either way). So every product of the painters, the feature maps, the
    sweeps' partial renders and SGD's gradient step asks for HIGHEST precision in its own jaxpr."""
    import re

    import jax.numpy as jnp

    from ferlab.cppn import forward
    from ferlab.metrics.sweeps import _sweep_pictures
    from ferlab.render import render_padded

    arch = Architecture.parse("3;sin:3,gaussian:3,identity:2")
    net = init_net(arch, jax.random.PRNGKey(0))
    nets = padded(stack_nets([net, net]))
    maps = render_padded(nets, 8, features=True).features
    n, b = arch.n_weights, 4
    loss = lambda kernels: jnp.sum(forward(arch, kernels, grid(8))[0] ** 2)
    painters = {
        "render": lambda: render(net, 8),
        "render_padded": lambda: render_padded(nets, 8, features=True),
        "render_from": lambda: render_from(
            stack_nets([net] * b), jnp.array([0, 1, 2, 1]), maps, jnp.array([0, 1, 0, 1]), 8
        ),
        "sweep": lambda: _sweep_pictures(
            nets,
            maps,
            jnp.zeros(b, jnp.int32),
            jnp.zeros((b, n)),
            jnp.arange(b) - 1,
            jnp.zeros(b, jnp.int32),
            jnp.ones(b),
            8,
        ),
        "gradient": lambda: jax.grad(loss)(net.kernels),
    }
    for name, paint in painters.items():
        text = str(jax.make_jaxpr(paint)())
        products = text.count("dot_general[")
        assert products > 0, name
        assert len(re.findall(r"precision=\(Precision\.HIGHEST, Precision\.HIGHEST\)", text)) == products, name
