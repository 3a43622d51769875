"""Import Picbreeder genomes: the FER paper's zips and CPPN-X annotated XML.

Both formats hold ``<genome>`` with ``<nodes>`` and ``<links>``. A node's key is
its ``<marking branch= id=>`` pair, written ``branch_id``. CPPN-X files start
with ``<cppn-data/>`` and then a second root ``<data>``, so they are parsed
inside a synthetic wrapper element. A CPPN-X link's ``<weight>`` is the value its
slider was left at when the file was saved and ``<original-weight>`` the genome's
own (CPPN-X writes ``Edge::getWeight`` and ``getOriginalWeight``): the net people
evolved is the original, so that is the weight read where a link has one.
Parsing goes through defusedxml (no DTDs, no entity expansion); files and zip
members are capped in size (``limits.FILE_BYTES``) before they are read. A file
of several genomes (CPPN-X's ``<storage>`` of ``<generation>``s, from which
CPPN-X asks which to open) is refused rather than read at its first.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from ferlab import limits
from ferlab.errors import GenomeError
from ferlab.genome import Genome, Link, Node

_KINDS = {"in": "input", "hidden": "hidden", "out": "output"}
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.DOTALL)


def load_picbreeder(path: str | Path) -> Genome:
    """Read a Picbreeder genome from a ``.zip`` (one XML inside) or an ``.xml`` file."""
    path = Path(path)
    raw = _read_zip_member(path) if path.suffix.lower() == ".zip" else read_capped(path)
    return parse_picbreeder_xml(raw, source=str(path), name=path.stem)


def parse_picbreeder_xml(raw: bytes, source: str = "genome", name: str = "") -> Genome:
    """Parse Picbreeder or CPPN-X XML text into a validated Genome."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GenomeError(f"{source}: not XML (not UTF-8 text)") from None
    body = _XML_DECL.sub("", text, count=1)
    try:
        wrapper = safe_xml.fromstring(f"<ferlab-wrapper>{body}</ferlab-wrapper>")
    except DefusedXmlException as e:
        raise GenomeError(f"{source}: XML uses forbidden constructs ({type(e).__name__})") from None
    except ParseError as e:
        raise GenomeError(f"{source}: not XML ({e})") from None
    stray = [wrapper.text] + [child.tail for child in wrapper]
    if len(wrapper) == 0 or any(t and t.strip() for t in stray):
        raise GenomeError(f"{source}: not XML (text outside any element)")
    found = wrapper.findall(".//genome")
    if not found:
        raise GenomeError(f"{source}: XML has no <genome> element")
    if len(found) > 1:  # a CPPN-X <storage> of generations: which one is meant is not ours to guess
        numbers = sorted(int(n) for g in wrapper.iter("generation") if (n := g.get("number", "")).isdigit())
        series = f" (a <storage> of generations {numbers[0]}..{numbers[-1]})" if numbers else ""
        raise GenomeError(
            f"{source}: holds {len(found)} genomes{series}; ferlab reads a file of one genome: "
            "save the one you mean alone (CPPN-X saves the generation it shows)"
        )
    genome_el = found[0]
    labels = _button_labels(genome_el)
    nodes = [_parse_node(el, source) for el in genome_el.findall("./nodes/node")]
    links, seen = [], set()
    for el in genome_el.findall("./links/link"):
        link_id = _marking(el.find("marking"), "a link", source)
        if link_id in seen:  # a link's key is its whole marking: branches reuse ids, so innovations may repeat
            raise GenomeError(f"{source}: link {link_id} is defined twice")
        seen.add(link_id)
        links.append(_parse_link(el, link_id, labels, source))
    return Genome.build(nodes, links, name=name, source=source)


def read_capped(path: Path) -> bytes:
    """A genome text file's bytes: refused by its size over ``limits.FILE_BYTES`` before it is
    read, and never read past the cap (for files whose size the system does not tell)."""
    cap = limits.FILE_BYTES.value
    try:
        limits.FILE_BYTES.check(path.stat().st_size, str(path), GenomeError)
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as e:
        raise GenomeError(f"{path}: cannot read ({e.strerror})") from None
    limits.FILE_BYTES.check(len(data), str(path), GenomeError)
    return data


def _read_zip_member(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise GenomeError(f"{path}: zip must hold exactly one XML file, found {len(members)}")
            member = members[0]
            subject = f"{path}: zip member {member.filename!r}"
            limits.FILE_BYTES.check(member.file_size, subject, GenomeError)
            with zf.open(member) as f:
                data = f.read(limits.FILE_BYTES.value + 1)
            limits.FILE_BYTES.check(len(data), subject, GenomeError)
            return data
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
        raise GenomeError(f"{path}: not a zip file (or a damaged or encrypted one)") from None
    except OSError as e:
        raise GenomeError(f"{path}: cannot read ({e.strerror})") from None


def _marking(el: Element | None, what: str, source: str) -> str:
    if el is None or "id" not in el.attrib:
        raise GenomeError(f"{source}: {what} has no marking")
    return f"{el.get('branch', '')}_{el.get('id')}"


def _parse_node(el: Element, source: str) -> Node:
    node_id = _marking(el.find("marking"), "a node", source)
    kind = _KINDS.get(el.get("type", ""))
    if kind is None:
        raise GenomeError(f"{source}: node {node_id} has unknown type {el.get('type')!r}")
    act_el = el.find("activation")
    activation = (act_el.text or "").strip() if act_el is not None else ""
    activation = activation.removesuffix("(x)")
    try:
        bias = float(el.get("bias", "0") or 0)
    except ValueError:
        raise GenomeError(f"{source}: node {node_id} has a bias that is not a number ({el.get('bias')!r})") from None
    if bias != 0.0:
        raise GenomeError(f"{source}: node {node_id} has a bias ({bias}); CPPNs here have none")
    return Node(node_id, kind, activation, el.get("label", "") if kind != "hidden" else "")


def _button_labels(genome_el: Element) -> dict[str, str]:
    """CPPN-X colour-label id -> the feature name a person typed for it."""
    out = {}
    for button in genome_el.findall("./buttons/colorButton"):
        label_el, text_el = button.find("color-label"), button.find("text")
        if label_el is not None and text_el is not None and (text_el.text or "").strip():
            out[label_el.get("id", "")] = text_el.text.strip()
    return out


def _parse_link(el: Element, link_id: str, labels: dict[str, str], source: str) -> Link:
    """The link ``el``, whose marking ``link_id`` (``branch_id``) the caller has read."""
    src = _marking(el.find("source"), f"link {link_id}: source", source)
    dst = _marking(el.find("target"), f"link {link_id}: target", source)
    tag = "original-weight" if el.find("original-weight") is not None else "weight"  # CPPN-X: see above
    try:
        weight = float(el.find(tag).text)
    except (AttributeError, TypeError, ValueError):
        raise GenomeError(f"{source}: link {link_id} has no numeric {tag}") from None
    label_el = el.find("color-label")
    label = labels.get(label_el.get("id", "")) if label_el is not None else None
    bookends = el.find("bookends")
    sweep = None
    if bookends is not None:
        try:
            sweep = tuple(float(bookends.get(k)) for k in ("start", "end", "step"))
        except (TypeError, ValueError):
            raise GenomeError(f"{source}: link {link_id} has malformed bookends") from None
    enabled = el.get("enabled", "true").lower() != "false"
    try:
        innovation = int(link_id.rsplit("_", 1)[1])
    except ValueError:
        raise GenomeError(f"{source}: link {link_id} has a marking id that is not an integer") from None
    return Link(innovation, src, dst, weight, enabled, label, sweep)
