"""The CPPN genome: a NEAT graph of nodes and innovation-numbered links.

A genome is what Picbreeder and NEAT evolve. Nodes are inputs (labels x, y,
d, bias), hidden units, and outputs (hue, saturation, brightness, or a single
ink). Links carry an innovation number, a weight, an enabled flag and, for the
hand-annotated CPPN-X genomes, the label a person gave the link and the range
over which they swept it.

JSON form (``Genome.to_json`` / ``Genome.from_json``), round-trips exactly::

    {"format": "ferlab.genome/1", "name": "576_Skull",
     "nodes": [{"id": "534_2", "kind": "input", "activation": "identity", "label": "x"}, ...],
     "links": [{"innovation": 31, "source": "542_103", "target": "576_30",
                "weight": -0.445, "enabled": true,
                "label": "Mouth open close", "sweep": [-3.0, 3.0, 0.1]}, ...]}

``label`` and ``sweep`` are omitted when absent. Weights are written with
Python's shortest round-trip float repr, so a load gives the same bits.

Reading is strict: ``enabled`` must be a JSON boolean (``"false"`` is refused,
not read as true), weights and sweep bounds finite real numbers, innovations
integers, names and labels strings. Node and link counts are capped
(``ferlab.limits``) before anything is built, and validation is linear in the
size of the genome.

Cycles. Picbreeder genomes may hold a link that closes a cycle. The FER paper
renders them by walking back from the outputs and reading 0 from a node still
on the walk's path; ``recurrent_links`` finds those links the same way, and a
forward pass (``forward_links``: rendering, layerizing) leaves them out.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from ferlab import limits
from ferlab.activations import GENOME_ACTIVATIONS
from ferlab.errors import GenomeError

FORMAT = "ferlab.genome/1"
INPUT_LABELS = ("x", "y", "d", "bias")
HSV_LABELS = ("hue", "saturation", "brightness")
INK_LABEL = "ink"
NODE_KINDS = ("input", "hidden", "output")


@dataclass(frozen=True)
class Node:
    """A CPPN unit. ``label`` names inputs and outputs; hidden nodes have ''."""

    id: str
    kind: str
    activation: str
    label: str = ""


@dataclass(frozen=True)
class Link:
    """A weighted connection. ``sweep`` is (start, end, step) of a CPPN-X bookend."""

    innovation: int
    source: str
    target: str
    weight: float
    enabled: bool = True
    label: str | None = None
    sweep: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Genome:
    """A validated CPPN graph: construct with ``Genome.build`` to get the checks."""

    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    name: str = ""

    @classmethod
    def build(cls, nodes, links, name: str = "", source: str = "genome") -> Genome:
        """Make a genome and validate it; ``source`` names it in error messages."""
        genome = cls(tuple(nodes), tuple(links), name)
        genome.validate(source)
        return genome

    # ----------------------------------------------------------------- queries
    def node(self, node_id: str) -> Node:
        return self._by_id()[node_id]

    def _by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    def inputs(self) -> dict[str, str]:
        """Input label -> node id."""
        return {n.label: n.id for n in self.nodes if n.kind == "input"}

    def outputs(self) -> dict[str, str]:
        """Output label -> node id."""
        return {n.label: n.id for n in self.nodes if n.kind == "output"}

    def recurrent_links(self) -> tuple[int, ...]:
        """Indices of the enabled links that close a cycle, found as the FER paper's renderer finds them:
        a depth-first walk back from the outputs (hue, saturation, brightness or ink, in that order)
        along each node's incoming links in file order; a link whose source is still on the walk's
        path reads 0 there. Cycles no output reaches are broken the same way from each remaining
        node in order, so the other links are acyclic. Linear in the genome's size."""
        incoming: dict[str, list[int]] = {n.id: [] for n in self.nodes}
        for k, link in enumerate(self.links):
            if link.enabled:
                incoming[link.target].append(k)
        outputs = self.outputs()
        roots = [outputs[label] for label in (*HSV_LABELS, INK_LABEL) if label in outputs]
        state = dict.fromkeys(incoming, 0)  # 0 not reached, 1 on the walk's path, 2 done
        back = []
        for root in roots + [n.id for n in self.nodes]:
            if state[root]:
                continue
            state[root] = 1
            stack = [(root, iter(incoming[root]))]
            while stack:
                node, rest = stack[-1]
                k = next(rest, None)
                if k is None:
                    stack.pop()
                    state[node] = 2
                elif state[source := self.links[k].source] == 1:
                    back.append(k)
                elif state[source] == 0:
                    state[source] = 1
                    stack.append((source, iter(incoming[source])))
        return tuple(sorted(back))

    def forward_links(self) -> tuple[tuple[int, Link], ...]:
        """``(index, link)`` of each link a forward pass uses: enabled and not recurrent."""
        recurrent = set(self.recurrent_links())
        return tuple((k, link) for k, link in enumerate(self.links) if link.enabled and k not in recurrent)

    def is_ink(self) -> bool:
        return INK_LABEL in self.outputs()

    # -------------------------------------------------------------- validation
    def validate(self, source: str = "genome") -> None:
        """Raise GenomeError naming ``source`` and the first problem found (time linear in its size)."""
        limits.GENOME_NODES.check(len(self.nodes), source)
        limits.GENOME_LINKS.check(len(self.links), source)
        by_id: dict[str, Node] = {}
        for n in self.nodes:
            if n.id in by_id:
                raise GenomeError(f"{source}: node {n.id} is defined twice")
            by_id[n.id] = n
        for n in self.nodes:
            if n.kind not in NODE_KINDS:
                raise GenomeError(f"{source}: node {n.id} has unknown kind {n.kind!r}")
            if n.activation not in GENOME_ACTIVATIONS:
                raise GenomeError(
                    f"{source}: node {n.id} has unknown activation {n.activation!r} "
                    f"(known: {', '.join(GENOME_ACTIVATIONS)})"
                )
        named: dict[tuple[str, str], int] = {}
        for n in self.nodes:
            if n.kind != "hidden":
                named[(n.kind, n.label)] = named.get((n.kind, n.label), 0) + 1
        for (kind, label), count in named.items():
            known = INPUT_LABELS if kind == "input" else (*HSV_LABELS, INK_LABEL)
            if label not in known:  # it would be read as a hidden unit or dropped, not as what it says
                raise GenomeError(f"{source}: {kind} node labelled {label!r} (an {kind} is one of {', '.join(known)})")
            if count > 1:
                raise GenomeError(f"{source}: {count} {kind} nodes are labelled {label!r}")
        inputs = self.inputs()
        missing = [label for label in INPUT_LABELS if label not in inputs]
        if missing:
            raise GenomeError(f"{source}: genome has no {'/'.join(missing)} input node")
        outputs = self.outputs()
        if INK_LABEL not in outputs and not all(label in outputs for label in HSV_LABELS):
            raise GenomeError(f"{source}: genome has no output node (needs 'ink' or 'hue', 'saturation', 'brightness')")
        if INK_LABEL in outputs and any(label in outputs for label in HSV_LABELS):
            raise GenomeError(f"{source}: genome has both an 'ink' output and hue/saturation/brightness ones")
        for link in self.links:
            for end in (link.source, link.target):
                if end not in by_id:
                    raise GenomeError(
                        f"{source}: link {link.innovation} ({link.source} -> {link.target}) "
                        f"refers to missing node {end}"
                    )
            if by_id[link.target].kind == "input":
                raise GenomeError(f"{source}: link {link.innovation} points into input node {link.target}")
            if not _finite(link.weight) or (link.sweep is not None and not all(map(_finite, link.sweep))):
                raise GenomeError(f"{source}: link {link.innovation} has a non-finite weight or sweep")

    # ------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        def link_dict(link: Link) -> dict:
            d = {
                "innovation": link.innovation,
                "source": link.source,
                "target": link.target,
                "weight": link.weight,
                "enabled": link.enabled,
            }
            if link.label is not None:
                d["label"] = link.label
            if link.sweep is not None:
                d["sweep"] = list(link.sweep)
            return d

        return {
            "format": FORMAT,
            "name": self.name,
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "links": [link_dict(link) for link in self.links],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict, source: str = "genome") -> Genome:
        """A validated genome from its JSON form; GenomeError naming the first wrongly typed field."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GenomeError(f'{source}: not a ferlab genome (expected "format": "{FORMAT}")')
        read = _Reader(source)
        raw_nodes = read.items(data, "nodes", limits.GENOME_NODES)
        raw_links = read.items(data, "links", limits.GENOME_LINKS)
        nodes = [
            Node(
                id=read.node_id(n, "id", f"nodes[{i}]"),
                kind=read.text(n, "kind", f"nodes[{i}]"),
                activation=read.text(n, "activation", f"nodes[{i}]"),
                label=read.text(n, "label", f"nodes[{i}]", default=""),
            )
            for i, n in enumerate(raw_nodes)
        ]
        links = [
            Link(
                innovation=read.integer(l, "innovation", f"links[{i}]"),
                source=read.node_id(l, "source", f"links[{i}]"),
                target=read.node_id(l, "target", f"links[{i}]"),
                weight=read.number(l, "weight", f"links[{i}]"),
                enabled=read.flag(l, "enabled", f"links[{i}]", default=True),
                label=read.text(l, "label", f"links[{i}]", default=None),
                sweep=read.sweep(l, f"links[{i}]"),
            )
            for i, l in enumerate(raw_links)
        ]
        name = data.get("name", "")
        if not isinstance(name, str):
            raise GenomeError(f'{source}: "name" must be a string, got {_show(name)}')
        return cls.build(nodes, links, name=name, source=source)

    @classmethod
    def from_json(cls, text: str, source: str = "genome") -> Genome:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenomeError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
        except ValueError as e:  # an integer past Python's 4300-digit limit on reading one
            raise GenomeError(f"{source}: not valid JSON ({str(e).split(':')[0]})") from None
        return cls.from_dict(data, source)


_MISSING = object()


class _Reader:
    """Strict field access for genome JSON: each wrong type is one GenomeError naming the field."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, key: str, expected: str, value) -> GenomeError:
        return GenomeError(f"{self.source}: {where}.{key} must be {expected}, got {_show(value)}")

    def get(self, obj, key: str, where: str, default=_MISSING):
        if not isinstance(obj, dict):
            raise GenomeError(f"{self.source}: {where} must be an object, got {_show(obj)}")
        if key in obj:
            return obj[key]
        if default is _MISSING:
            raise GenomeError(f'{self.source}: {where} has no "{key}"')
        return default

    def items(self, data: dict, key: str, cap: limits.Cap) -> list:
        value = data.get(key)
        if not isinstance(value, list):
            raise GenomeError(f'{self.source}: "{key}" must be a list, got {_show(value)}')
        cap.check(len(value), self.source)
        return value

    def text(self, obj, key: str, where: str, default=_MISSING):
        value = self.get(obj, key, where, default)
        if value is not default and not isinstance(value, str):
            raise self.fail(where, key, "a string", value)
        return value

    def node_id(self, obj, key: str, where: str) -> str:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(where, key, "a string or an integer", value)
        return str(value)

    def integer(self, obj, key: str, where: str) -> int:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, key, "an integer", value)
        return value

    def number(self, obj, key: str, where: str) -> float:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise self.fail(where, key, "a finite number", value)
        return float(value)

    def flag(self, obj, key: str, where: str, default=_MISSING) -> bool:
        value = self.get(obj, key, where, default)
        if not isinstance(value, bool):
            raise self.fail(where, key, "true or false", value)
        return value

    def sweep(self, obj, where: str):
        value = self.get(obj, "sweep", where, None)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(where, "sweep", "[start, end, step]", value)
        return tuple(self.number(dict(enumerate(value)), i, f"{where}.sweep") for i in range(3))


def _finite(value) -> bool:
    """A real number (not bool) that is finite, also for integers too large for a float."""
    try:
        return math.isfinite(value)
    except (OverflowError, TypeError):
        return False


def _show(value) -> str:
    text = json.dumps(value) if isinstance(value, (str, bool, int, float)) or value is None else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def to_hsv(genome: Genome) -> Genome:
    """Give an ink genome explicit hue and saturation outputs, as the FER paper does.

    The ink node becomes ``brightness``; two identity outputs ``hue`` and
    ``saturation`` are fed from it by weight-0 links, so they are 0 everywhere
    and sit one layer after it when the genome is layerized.
    """
    if not genome.is_ink():
        return genome
    ink = genome.outputs()[INK_LABEL]
    taken = {n.id for n in genome.nodes}
    hue, sat = _fresh_id("hue", taken), _fresh_id("saturation", taken)
    top = max((link.innovation for link in genome.links), default=0)
    nodes = [dataclasses.replace(n, label="brightness") if n.id == ink else n for n in genome.nodes]
    nodes += [Node(hue, "output", "identity", "hue"), Node(sat, "output", "identity", "saturation")]
    links = list(genome.links) + [Link(top + 1, ink, hue, 0.0), Link(top + 2, ink, sat, 0.0)]
    return Genome(tuple(nodes), tuple(links), genome.name)


def _fresh_id(base: str, taken: set[str]) -> str:
    candidate, k = base, 0
    while candidate in taken:
        k += 1
        candidate = f"{base}_{k}"
    return candidate
