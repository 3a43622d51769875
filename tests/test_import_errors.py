"""Every bad input to the Picbreeder import gets one clear line, exit 2, and writes nothing; a cycle
is not bad input: it is read as the FER paper's renderer reads it."""

import io
import json
import zipfile

import pytest

from ferlab import picbreeder
from ferlab.cli import main
from ferlab.errors import GenomeError
from ferlab.picbreeder import parse_picbreeder_xml

NODE = '<node {attrs}><marking branch="1" id="{id}"/><activation>{act}(x)</activation></node>'
LINK = (
    '<link><marking branch="1" id="{id}"/><source branch="1" id="{s}"/>'
    '<target branch="1" id="{t}"/><weight>{w}</weight></link>'
)


def genome_xml(nodes=None, links=None) -> str:
    """A small valid ink genome: x, y, d, bias -> hidden 5 -> ink 4."""
    if nodes is None:
        nodes = [
            ('label="x" type="in"', 0, "identity"),
            ('label="y" type="in"', 1, "identity"),
            ('label="d" type="in"', 2, "identity"),
            ('label="bias" type="in"', 3, "identity"),
            ('label="ink" type="out"', 4, "gaussian"),
            ('type="hidden"', 5, "sin"),
        ]
    if links is None:
        links = [(10, 0, 5, 1.5), (11, 2, 5, -0.5), (12, 5, 4, 2.0), (13, 3, 4, 0.3)]
    node_xml = "".join(NODE.format(attrs=a, id=i, act=act) for a, i, act in nodes)
    link_xml = "".join(LINK.format(id=i, s=s, t=t, w=w) for i, s, t, w in links)
    return f'<?xml version="1.0"?><data><genome><nodes>{node_xml}</nodes><links>{link_xml}</links></genome></data>'


def test_the_small_genome_is_valid():
    genome = parse_picbreeder_xml(genome_xml().encode())
    assert len(genome.nodes) == 6 and genome.is_ink()


def without_node(label):
    base = [
        ('label="x" type="in"', 0, "identity"),
        ('label="y" type="in"', 1, "identity"),
        ('label="d" type="in"', 2, "identity"),
        ('label="bias" type="in"', 3, "identity"),
        ('label="ink" type="out"', 4, "gaussian"),
        ('type="hidden"', 5, "sin"),
    ]
    return [n for n in base if f'label="{label}"' not in n[0]]


BAD_GENOMES = {
    "no_bias_input": (
        genome_xml(nodes=without_node("bias"), links=[(10, 0, 5, 1.0), (12, 5, 4, 1.0)]),
        "no bias input",
    ),
    "no_d_input": (genome_xml(nodes=without_node("d"), links=[(10, 0, 5, 1.0), (12, 5, 4, 1.0)]), "no d input"),
    "no_output": (genome_xml(nodes=without_node("ink"), links=[(10, 0, 5, 1.0)]), "no output node"),
    "unknown_activation": (
        genome_xml(nodes=without_node("zzz")[:5] + [('type="hidden"', 5, "swish")]),
        "unknown activation 'swish'",
    ),
    "missing_node": (
        genome_xml(links=[(10, 0, 5, 1.0), (12, 5, 4, 1.0), (14, 9, 4, 1.0)]),
        "refers to missing node 1_9",
    ),
    "not_xml": ("this is { not xml", "not XML"),
}


@pytest.mark.parametrize("case", sorted(BAD_GENOMES))
def test_bad_genome_has_a_clear_message(case):
    text, message = BAD_GENOMES[case]
    with pytest.raises(GenomeError, match=message.replace("(", r"\(")):
        parse_picbreeder_xml(text.encode(), source="g.xml")


@pytest.mark.parametrize("case", sorted(BAD_GENOMES))
@pytest.mark.parametrize("command", ["render", "layerize"])
def test_cli_bad_genome_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case, command):
    text, message = BAD_GENOMES[case]
    src = tmp_path / "in" / "g.xml"
    src.parent.mkdir()
    src.write_text(text)
    out = tmp_path / "out" / ("o.png" if command == "render" else "o.npz")
    assert main([command, str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ferlab: error: ") and message in err
    assert str(src) in err
    assert not (tmp_path / "out").exists()


def test_entity_expansion_is_refused():
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<data><genome><nodes/><links/></genome></data>"
    )
    with pytest.raises(GenomeError, match="forbidden|not XML"):
        parse_picbreeder_xml(bomb.encode(), source="bomb.xml")


def zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_reads_its_one_member(tmp_path):
    (tmp_path / "g.zip").write_bytes(zip_with({"a": genome_xml().encode()}))
    assert len(picbreeder.load_picbreeder(tmp_path / "g.zip").links) == 4


def test_not_a_zip(tmp_path, capsys):
    (tmp_path / "g.zip").write_text(genome_xml())
    assert main(["render", str(tmp_path / "g.zip"), "--out", str(tmp_path / "o.png")]) == 2
    assert "not a zip file" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_zip_member_over_the_size_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("FERLAB_MAX_FILE_BYTES", "1000")
    (tmp_path / "g.zip").write_bytes(zip_with({"a": b" " * 5000}))
    with pytest.raises(GenomeError, match="5000 bytes .* over the cap of 1000 .*FERLAB_MAX_FILE_BYTES"):
        picbreeder.load_picbreeder(tmp_path / "g.zip")


def test_zip_with_several_members(tmp_path):
    (tmp_path / "g.zip").write_bytes(zip_with({"a": b"<x/>", "b": b"<y/>"}))
    with pytest.raises(GenomeError, match="exactly one XML file, found 2"):
        picbreeder.load_picbreeder(tmp_path / "g.zip")


CYCLIC = genome_xml(  # hidden 5 (sin) and 6 (gaussian) feed each other; 7 and 8 form a cycle no output reaches
    nodes=without_node("zzz")
    + [('type="hidden"', 6, "gaussian"), ('type="hidden"', 7, "sin"), ('type="hidden"', 8, "sin")],
    links=[
        (10, 0, 5, 1.5),
        (11, 6, 5, 0.7),
        (12, 5, 6, -1.2),
        (13, 1, 6, 0.9),
        (14, 5, 4, 2.0),
        (15, 7, 8, 1.0),
        (16, 8, 7, 1.0),
    ],
)


def test_a_cycle_reads_0_where_the_walk_back_from_the_output_closes_it():
    """Walking back from ink: 5, then its sources in file order (x, then 6), then 6's (5 is on the path:
    link 12 reads 0, then y). So 6 = gaussian(0.9 y), 5 = sin(1.5 x + 0.7 * 6), ink = gaussian(2 * 5),
    as the README's convention computes them; the graph and the layerized net both paint that."""
    import numpy as np

    from ferlab.layerize import layerize
    from ferlab.render import render, render_genome

    genome = parse_picbreeder_xml(CYCLIC.encode(), source="c.xml")
    assert [genome.links[k].innovation for k in genome.recurrent_links()] == [12, 15]
    lin = np.linspace(-1, 1, 16)
    x, y = np.meshgrid(lin, lin)

    def gaussian(z):
        return 2 * np.exp(-(z**2)) - 1

    ink = gaussian(2.0 * np.sin(1.5 * x + 0.7 * gaussian(0.9 * y)))
    grey = np.repeat(np.clip(np.abs(ink), 0, 1)[..., None], 3, axis=-1)
    layerized = layerize(genome)
    assert layerized.link_weights[2] is None and layerized.net.arch.n_layers == 4  # 6, 5, ink, hue and saturation
    np.testing.assert_allclose(render(layerized.net, 16).rgb, grey, atol=1e-5)
    np.testing.assert_allclose(render_genome(genome, 16)[0].rgb, grey, atol=1e-5)


def test_cli_renders_a_cyclic_genome_and_names_the_links_that_read_0(tmp_path, capsys):
    src = tmp_path / "c.xml"
    src.write_text(CYCLIC)
    assert main(["render", str(src), "--size", "8", "--out", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "12 (1_5 -> 1_6), 15 (1_7 -> 1_8)" in err and (tmp_path / "o.png").is_file()
    assert main(["info", str(src)]) == 0
    assert "recurrent    12 (1_5 -> 1_6), 15 (1_7 -> 1_8)" in capsys.readouterr().out
    assert main(["analyze", str(src), "--size", "16", "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["recurrent_links"] == [12, 15]


def test_run_study_and_sweep_name_the_links_of_a_cyclic_target_once(tmp_path, capsys, monkeypatch):
    """``ferlab run``, ``study`` and ``sweep`` on a cyclic genome (target, arch or a regime's source) say
    which of its links read 0 once, as ``render`` does, before any work; a genome without a cycle
    gets no note."""
    from ferlab import study as study_module

    src = tmp_path / "c.xml"
    src.write_text(CYCLIC)
    plain = tmp_path / "p.xml"
    plain.write_text(genome_xml())
    config = tmp_path / "run.yaml"
    config.write_text(
        f"regime: sgd\nresolution: 8\ntarget: {src}\narch: {src}\n"
        "settings: {steps: 2, steps_per_generation: 1, seeds: 1}\n"
    )
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert err.count("ferlab: note:") == 1 and "12 (1_5 -> 1_6), 15 (1_7 -> 1_8)" in err

    class Started(Exception):
        pass

    def started(*args, **kw):
        raise Started

    monkeypatch.setattr(study_module, "run_study", started)  # the note comes before any run
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"name: cyc\ntargets: [{src}, {plain}]\nphases:\n"
        "  - {name: given, role: discoverer, base: {regime: given, resolution: 8}, targets: [study]}\n"
        "  - {name: sgd, role: reproducer, same_arch: true, base: {regime: sgd, resolution: 8,"
        " settings: {steps: 2, steps_per_generation: 1}}, targets: [study], seeds: 2}\n"
    )
    with pytest.raises(Started):
        main(["study", str(spec), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    err = capsys.readouterr().err
    assert err.count("ferlab: note:") == 1 and f"{src}: links closing a cycle" in err and str(plain) not in err

    from ferlab.workers import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "run_sweep", started)
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"name: cyc\nbase: {{regime: given, resolution: 8}}\ngrid: {{target: [{plain}, {src}], seed: [0, 1]}}\n"
    )
    with pytest.raises(Started):
        main(["sweep", str(spec), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    err = capsys.readouterr().err
    assert err.count("ferlab: note:") == 1 and f"{src}: links closing a cycle" in err


def paper_forward(genome, size):
    """The FER paper's forward pass, written as it is: recurse from hue, saturation, brightness (ink
    stands for brightness, hue and saturation 0) over every link into a node in file order; a source
    still on the path reads 0 and is not remembered; a finished node's value is. RGB by the data
    README's colour formula."""
    import numpy as np
    from matplotlib.colors import hsv_to_rgb

    act = {  # the data README's functions
        "identity": lambda z: z,
        "sin": np.sin,
        "cos": np.cos,
        "sigmoid": lambda z: 2 / (1 + np.exp(-z)) - 1,
        "gaussian": lambda z: 2 * np.exp(-(z**2)) - 1,
    }
    lin = np.linspace(-1, 1, size)
    x, y = np.meshgrid(lin, lin)
    inputs = genome.inputs()
    values = {inputs["x"]: x, inputs["y"]: y, inputs["d"]: 1.4 * np.sqrt(x**2 + y**2), inputs["bias"]: np.ones_like(x)}
    activation = {n.id: n.activation for n in genome.nodes}

    def value(node, path):
        if node in values:
            return values[node]
        if node in path:
            return np.zeros_like(x)
        z = sum((l.weight * value(l.source, path + [node]) for l in genome.links if l.target == node), np.zeros_like(x))
        values[node] = act[activation[node]](z)
        return values[node]

    outputs = genome.outputs()
    if "ink" in outputs:
        h = s = np.zeros_like(x)
        v = value(outputs["ink"], [])
    else:
        h, s, v = (value(outputs[label], []) for label in ("hue", "saturation", "brightness"))
    return hsv_to_rgb(np.stack([(h + 1) % 1, np.clip(s, 0, 1), np.clip(np.abs(v), 0, 1)], axis=-1))


@pytest.mark.parametrize("outputs", ["ink", "hsv"])
@pytest.mark.parametrize("seed", range(12))
def test_random_cyclic_genomes_paint_what_the_papers_forward_pass_paints(seed, outputs):
    """Random genomes with cycles through hidden and output nodes (each has 2 to 10 links that close
    one), grey (ink) and colour (hue, saturation, brightness)."""
    import numpy as np

    from ferlab.layerize import layerize
    from ferlab.render import render

    rng = np.random.default_rng(seed)
    acts = ["sin", "gaussian", "identity", "sigmoid", "cos"]
    hidden = [('type="hidden"', 5 + i, acts[rng.integers(5)]) for i in range(6)]
    outs = [('label="ink" type="out"', 4, "gaussian")]
    if outputs == "hsv":
        outs = [
            (f'label="{label}" type="out"', i, acts[rng.integers(5)])
            for i, label in ((4, "hue"), (12, "saturation"), (13, "brightness"))
        ]
    ends = [i for _, i, _ in outs] + [5 + i for i in range(6)]
    links = [
        (100 + i, int(rng.choice([0, 1, 2, 3] + ends)), int(rng.choice(ends)), round(float(rng.normal()), 3))
        for i in range(24)
    ]
    genome = parse_picbreeder_xml(genome_xml(nodes=without_node("zzz")[:4] + outs + hidden, links=links).encode())
    assert 2 <= len(genome.recurrent_links()) <= 10
    rgb = render(layerize(genome).net, 12).rgb
    np.testing.assert_allclose(rgb, paper_forward(genome, 12), atol=1e-5)
