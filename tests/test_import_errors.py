"""Every bad input to the Picbreeder import gets one clear line, exit 2, and writes nothing."""

import io
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
    "cycle": (
        genome_xml(
            nodes=without_node("zzz") + [('type="hidden"', 6, "gaussian")],
            links=[(10, 0, 5, 1.0), (11, 5, 6, 1.0), (12, 6, 5, 1.0), (13, 6, 4, 1.0)],
        ),
        "cycle: 1_5 -> 1_6 -> 1_5",
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
