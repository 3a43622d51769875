"""Hybrid NEAT: the differentiable painter paints as NEAT's does, training lowers the loss,
Lamarckian runs inherit trained weights and Baldwinian ones do not."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ferlab.config import ConfigError
from ferlab.search.neat import init_state, neat_step
from ferlab.search.neat_config import NEATConfig
from ferlab.render import grid
from ferlab.search import neat_sgd
from ferlab.search.neat_genome import paint, take, topological_order
from ferlab.search.neat_sgd import NeatSGDConfig, make_neat_sgd, paint_trainable, train_genomes
from ferlab.search.runs import load_run_config
from ferlab.search.targets import load_target

SMALL = {
    "population_size": 16,
    "max_nodes": 12,
    "max_links": 24,
    "max_species": 4,
    "target_species": 2,
    "add_node_rate": 0.8,
    "add_link_rate": 0.8,
}
SIZE = 8


def evolved(picbreeder_dir, generations=4):
    cfg = NEATConfig(**SMALL)
    target = jnp.asarray(load_target("picbreeder:skull", SIZE))
    state = init_state(jax.random.PRNGKey(1), cfg)
    for _ in range(generations):
        state, _ = neat_step(state, target, cfg, SIZE)
    return state.pop, target, cfg


def test_the_trainable_painter_and_its_gradient_multiply_in_full_float32():
    """As the dense painters (tests/test_rendering.py): no TF32 on a GPU, forward or backward."""
    import re

    pop = init_state(jax.random.PRNGKey(1), NEATConfig(**SMALL)).pop
    loss = lambda w: jnp.sum(paint_trainable(take(pop, 0).replace(link_w=w), SIZE, False))
    text = str(jax.make_jaxpr(jax.grad(loss))(take(pop, 0).link_w))
    products = text.count("dot_general[")
    assert products >= 2 and len(re.findall(r"precision=\(Precision\.HIGHEST, Precision\.HIGHEST\)", text)) == products


def test_trainable_painter_paints_as_neat(picbreeder_dir):
    pop, _, cfg = evolved(picbreeder_dir)
    assert int(jnp.max(pop.n_nodes())) > 7  # some genomes have hidden nodes
    rgb = np.asarray(paint(pop, SIZE, cfg.ink)[0])
    one = jax.jit(lambda i: paint_trainable(take(pop, i), SIZE, cfg.ink))  # compiled once, called per genome
    for i in range(pop.node_key.shape[0]):
        np.testing.assert_allclose(np.asarray(one(i)), rgb[i], atol=1e-5)


def test_hand_written_gradient_equals_autodiff_of_the_visiting_loop(picbreeder_dir):
    pop, target, cfg = evolved(picbreeder_dir, generations=8)
    inputs, colours = grid(SIZE).reshape(-1, 4).T, target.reshape(-1, 3)

    def loss(values_of, w, g, x):
        order, count = topological_order(g)
        n = g.max_nodes
        weights = jnp.zeros((n, n)).at[g.link_dst, g.link_src].add(jnp.where(g.live_links(), w, 0.0))
        values = values_of(weights, x, order, count, g.node_act)
        return jnp.mean((jnp.tanh(values[4:7].T) - colours) ** 2)

    def grads(values_of):
        return jax.jit(jax.vmap(jax.grad(lambda w, g: loss(values_of, w, g, inputs))))(pop.link_w, pop)

    autodiff = lambda *a: neat_sgd._forward(*a)[0]  # the same loop, differentiated by JAX
    hand, auto = grads(neat_sgd.node_values), grads(autodiff)
    assert float(jnp.max(jnp.abs(auto))) > 1e-3  # the gradients are not all zero
    np.testing.assert_allclose(np.asarray(hand), np.asarray(auto), atol=1e-6)
    one = take(pop, int(jnp.argmax(pop.n_nodes())))
    d_inputs = [jax.grad(lambda x: loss(f, one.link_w, one, x))(inputs) for f in (neat_sgd.node_values, autodiff)]
    np.testing.assert_allclose(np.asarray(d_inputs[0]), np.asarray(d_inputs[1]), atol=1e-6)


def test_training_lowers_each_genomes_loss(picbreeder_dir):
    pop, target, cfg = evolved(picbreeder_dir)
    settings = NeatSGDConfig(neat=cfg, train_steps=15, learning_rate=0.05, train_batch=4)
    before = np.mean((np.asarray(paint(pop, SIZE, cfg.ink)[0]) - np.asarray(target)) ** 2, axis=(1, 2, 3))
    trained, after = jax.jit(lambda p: train_genomes(p, target, settings))(pop)
    painted = np.mean((np.asarray(paint(trained, SIZE, cfg.ink)[0]) - np.asarray(target)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(painted, after, atol=1e-5)
    assert np.all(after <= before + 1e-6) and np.mean(after) < 0.9 * np.mean(before)
    off = ~np.asarray(pop.live_links())
    np.testing.assert_array_equal(np.asarray(trained.link_w)[off], np.asarray(pop.link_w)[off])


# the Baldwinian case (15 s, a second compiled step) is slow; the default run keeps the default, Lamarckian
@pytest.mark.parametrize("lamarckian", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_lamarckian_inherits_baldwinian_only_scores(picbreeder_dir, lamarckian):
    config = load_run_config(
        {
            "regime": "neat_sgd",
            "target": "picbreeder:skull",
            "resolution": SIZE,
            "generations": 2,
            "settings": {"train_steps": 5, "learning_rate": 0.05, "lamarckian": lamarckian, "neat": SMALL},
        }
    )
    search = make_neat_sgd(config, config.settings)
    state = search.init(jax.random.PRNGKey(0))
    new, stats = search.step(state)
    _, plain_stats = neat_step(state.neat, search.neat.target, config.settings.neat, SIZE)
    assert float(stats["evaluations"]) == float(plain_stats["evaluations"]) + 16 * 5
    assert float(stats["loss"]) < float(plain_stats["loss"])  # trained genomes are scored
    trained, _ = train_genomes(state.neat.pop, search.neat.target, config.settings)

    def copies(pop):  # genomes of the next generation equal to one of ``pop`` (elites are copied unchanged)
        w, new_w = np.asarray(pop.link_w), np.asarray(new.neat.pop.link_w)
        return sum(any(np.allclose(row, other, atol=1e-6) for other in w) for row in new_w)

    # Lamarckian elites carry their trained weights; Baldwinian ones their own
    assert (copies(trained) > 0, copies(state.neat.pop) > 0) == (lamarckian, not lamarckian)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        NeatSGDConfig(neat=NEATConfig(fitness="novelty"))
    with pytest.raises(ValueError):
        NeatSGDConfig(train_batch=7)
    with pytest.raises(ConfigError):
        load_run_config({"regime": "neat_sgd", "resolution": 8})


def test_pixel_minibatches_lower_the_full_grid_loss(picbreeder_dir):
    """``train_pixels``: each step sees a random subset of pixels, yet the loss on every pixel falls."""
    pop, target, cfg = evolved(picbreeder_dir)
    settings = NeatSGDConfig(neat=cfg, train_steps=15, learning_rate=0.05, train_batch=4, train_pixels=16)
    before = np.mean((np.asarray(paint(pop, SIZE, cfg.ink)[0]) - np.asarray(target)) ** 2, axis=(1, 2, 3))
    trained, after = jax.jit(lambda p, k: train_genomes(p, target, settings, k))(pop, jax.random.PRNGKey(3))
    painted = np.mean((np.asarray(paint(trained, SIZE, cfg.ink)[0]) - np.asarray(target)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(painted, after, atol=1e-5)  # the reported loss is the full grid's
    assert np.mean(after) < 0.9 * np.mean(before)
    full, _ = train_genomes(pop, target, NeatSGDConfig(neat=cfg, train_steps=15, learning_rate=0.05, train_batch=4))
    assert not np.allclose(np.asarray(trained.link_w), np.asarray(full.link_w))  # the minibatches did differ
    with pytest.raises(ValueError, match="train_pixels"):
        NeatSGDConfig(neat=cfg, train_batch=4, train_pixels=0)


def test_learning_rate_decays_geometrically_to_its_final_value(picbreeder_dir):
    settings = NeatSGDConfig(learning_rate=0.04, final_learning_rate=0.01, decay_generations=100)
    rates = [float(settings.rate(jnp.float32(g))) for g in (0, 50, 100, 400)]
    np.testing.assert_allclose(rates, [0.04, 0.02, 0.01, 0.01], rtol=1e-5)
    assert float(NeatSGDConfig(learning_rate=0.04).rate(jnp.float32(400))) == pytest.approx(0.04)
    # training at a generation past the decay is training at the final rate
    pop, target, cfg = evolved(picbreeder_dir)
    settings = dataclasses.replace(settings, neat=cfg)
    late, _ = train_genomes(pop, target, settings, generation=300)
    plain, _ = train_genomes(pop, target, NeatSGDConfig(neat=cfg, learning_rate=0.01))
    np.testing.assert_allclose(np.asarray(late.link_w), np.asarray(plain.link_w), atol=1e-6)
    early, _ = train_genomes(pop, target, settings, generation=0)
    assert not np.allclose(np.asarray(early.link_w), np.asarray(plain.link_w), atol=1e-4)
    with pytest.raises(ValueError, match="final_learning_rate"):
        NeatSGDConfig(final_learning_rate=0.0)
    with pytest.raises(ValueError, match="decay_generations"):
        NeatSGDConfig(decay_generations=0)


def test_runs_of_other_images_share_one_compiled_step(picbreeder_dir):
    """The targets are arguments of the compiled generation, not constants in it: a run of another
    image reuses the compiled step (and a fresh process loads it from the compile cache) instead
    of compiling it again, about 15 s for the main job's settings."""

    def run(target: str):
        config = load_run_config(
            {
                "regime": "neat_sgd",
                "target": target,
                "resolution": SIZE,
                "generations": 1,
                "settings": {"train_steps": 3, "train_batch": 4, "neat": SMALL},
            }
        )
        search = make_neat_sgd(config, config.settings)
        return search.step(search.init(jax.random.PRNGKey(0)))[1]

    skull = run("picbreeder:skull")
    compiled = neat_sgd.hybrid_step._cache_size()
    butterfly = run("picbreeder:butterfly")
    assert neat_sgd.hybrid_step._cache_size() == compiled
    assert float(skull["loss"]) != float(butterfly["loss"])  # each run scored on its own image


def test_the_training_stream_is_apart_from_neats():
    """fold_in(k, i) is split(k, n)[i] under JAX's partitionable threefry: the training key (folded at
    neat.STREAMS) must be none of the keys a NEAT generation splits (its parents' draw used to be)."""
    from ferlab.search.neat import STREAMS

    key = jax.random.PRNGKey(7)
    generation = [np.asarray(jax.random.key_data(k)) for k in jax.random.split(key, STREAMS)]
    assert np.array_equal(np.asarray(jax.random.key_data(jax.random.fold_in(key, 1))), generation[1])
    train = np.asarray(jax.random.key_data(jax.random.fold_in(key, STREAMS)))
    assert not any(np.array_equal(train, k) for k in generation)
