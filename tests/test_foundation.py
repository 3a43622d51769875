"""Genome import, layerization and rendering against the FER paper's reference data."""

import numpy as np
import pytest
from PIL import Image as PILImage

from ferlab.cppn import load_net
from ferlab.genome import Genome
from ferlab.layerize import layerize
from ferlab.picbreeder import load_picbreeder
from ferlab.render import render, render_genome

PAPER_ARCHS = {
    "skull.zip": "12;cache:15,gaussian:4,identity:2,sin:1",
    "butterfly.zip": "16;cache:17,gaussian:4,sigmoid:1,sin:1",
    "cppnx/576_Skull.xml": "12;cache:15,gaussian:4,identity:2,sin:1",
    "cppnx/4376_ButterflyColor.xml": "16;cache:17,gaussian:4,sigmoid:1,sin:1",
    "cppnx/1009_ButterflyGreyscale.xml": "12;cache:14,gaussian:4,identity:2",
    "cppnx/121_ShortSDCoif.xml": "8;cache:8,cos:2,gaussian:2,identity:2,sigmoid:1,sin:1",
    "cppnx/542_GhostFaceSpooky.xml": "7;cache:7,gaussian:2,identity:2,sin:1",
    "cppnx/745_LetterG.xml": "10;cache:13,gaussian:4,identity:2,sin:1",
    "cppnx/765_PlaneOnRunway.xml": "17;cache:17,gaussian:5,identity:2",
    "cppnx/409_Moonlight.xml": "33;cache:27,gaussian:3,identity:2,sigmoid:2,sin:3",
}


def read_png(path):
    return np.asarray(PILImage.open(path).convert("RGB"), dtype=np.float32) / 255.0


@pytest.mark.parametrize("name", sorted(PAPER_ARCHS))
def test_layerized_architecture_is_the_papers(picbreeder_dir, name):
    genome = load_picbreeder(picbreeder_dir / "genomes" / name)
    assert str(layerize(genome).net.arch) == PAPER_ARCHS[name]


@pytest.mark.parametrize("name", sorted(PAPER_ARCHS))
def test_graph_and_dense_renders_agree(picbreeder_dir, name):
    genome = load_picbreeder(picbreeder_dir / "genomes" / name)
    graph, _ = render_genome(genome, 256)
    dense = render(layerize(genome).net, 256)
    assert float(np.abs(np.asarray(graph.rgb) - np.asarray(dense.rgb)).mean()) < 1e-4


@pytest.mark.parametrize("target", ["skull", "butterfly"])
def test_layerization_reproduces_the_shared_npz(picbreeder_dir, target):
    ours = layerize(load_picbreeder(picbreeder_dir / "genomes" / f"{target}.zip")).net
    paper = load_net(picbreeder_dir / "nets" / f"picbreeder_{target}.npz")
    assert ours.arch == paper.arch
    for a, b in zip(ours.kernels, paper.kernels):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.parametrize("target", ["skull", "butterfly"])
def test_genome_renders_match_the_papers_png(picbreeder_dir, target):
    graph, _ = render_genome(load_picbreeder(picbreeder_dir / "genomes" / f"{target}.zip"), 256)
    mae = np.abs(np.asarray(graph.rgb) - read_png(picbreeder_dir / "renders" / f"{target}.png")).mean(axis=(0, 1))
    assert mae.max() < 0.005, mae


@pytest.mark.parametrize(
    "net_name,png",
    [
        ("picbreeder_skull", "skull"),
        ("sgd_skull", "skull_sgd"),
        ("picbreeder_butterfly", "butterfly"),
        ("sgd_butterfly", "butterfly_sgd"),
    ],
)
def test_shared_nets_render_to_their_pngs(picbreeder_dir, net_name, png):
    image = render(load_net(picbreeder_dir / "nets" / f"{net_name}.npz"), 256)
    mae = np.abs(np.asarray(image.rgb) - read_png(picbreeder_dir / "renders" / f"{png}.png")).mean(axis=(0, 1))
    assert mae.max() < 0.005, mae


def test_link_weights_point_at_the_links_dense_entries(picbreeder_dir):
    genome = load_picbreeder(picbreeder_dir / "genomes" / "cppnx" / "576_Skull.xml")
    lay = layerize(genome)
    placed = [(k, where) for k, where in enumerate(lay.link_weights) if where is not None]
    assert len(placed) == sum(link.enabled for link in genome.links)
    for k, (layer, row, col) in placed:
        assert float(lay.net.kernels[layer][row, col]) == pytest.approx(genome.links[k].weight, abs=1e-6)


@pytest.mark.parametrize("name", sorted(PAPER_ARCHS))
def test_genome_json_round_trips_exactly(picbreeder_dir, name):
    genome = load_picbreeder(picbreeder_dir / "genomes" / name)
    again = Genome.from_json(genome.to_json())
    assert again == genome
    assert again.to_json() == genome.to_json()


def test_cppnx_links_carry_human_labels_and_sweeps(picbreeder_dir):
    genome = load_picbreeder(picbreeder_dir / "genomes" / "cppnx" / "576_Skull.xml")
    labels = {link.label for link in genome.links}
    assert "Mouth open close" in labels
    assert all(link.sweep is not None and link.sweep[0] < link.sweep[1] for link in genome.links)


def test_a_cppnx_link_is_read_at_its_original_weight_not_where_its_slider_was_left(picbreeder_dir):
    """CPPN-X saves a link's slider value as ``<weight>`` and the genome's own as ``<original-weight>``:
    a file saved with a slider moved still holds the net people evolved, and that is what is read.
    A link with no ``<original-weight>`` (Picbreeder's own format) is read at its ``<weight>``."""
    import re

    from ferlab.errors import GenomeError
    from ferlab.picbreeder import parse_picbreeder_xml

    text = (picbreeder_dir / "genomes" / "cppnx" / "542_GhostFaceSpooky.xml").read_text()
    first = re.search(r"<weight>([^<]*)</weight>", text)
    moved = text[: first.start(1)] + "2.5" + text[first.end(1) :]
    genome = parse_picbreeder_xml(text.encode())
    kept = parse_picbreeder_xml(moved.encode())
    assert float(first.group(1)) != 2.5
    assert [link.weight for link in kept.links] == [link.weight for link in genome.links]
    np.testing.assert_array_equal(
        np.asarray(render_genome(kept, 32)[0].rgb), np.asarray(render_genome(genome, 32)[0].rgb)
    )
    plain = parse_picbreeder_xml(re.sub(r"\s*<original-weight>[^<]*</original-weight>", "", moved).encode())
    assert sorted(link.weight for link in plain.links) != sorted(link.weight for link in genome.links)
    assert 2.5 in [link.weight for link in plain.links]
    broken = re.sub(r"<original-weight>[^<]*</original-weight>", "<original-weight>x</original-weight>", text, count=1)
    with pytest.raises(GenomeError, match="no numeric original-weight"):
        parse_picbreeder_xml(broken.encode())
