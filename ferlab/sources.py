"""Load whatever a user points ferlab at: a Picbreeder .zip/.xml, a genome .json or a net .npz."""

from __future__ import annotations

from pathlib import Path

from ferlab.cppn import DenseNet, load_net
from ferlab.errors import FerlabError, GenomeError
from ferlab.files import not_a_file
from ferlab.genome import Genome
from ferlab.layerize import layerize
from ferlab.picbreeder import load_picbreeder, read_capped

GENOME_SUFFIXES = (".zip", ".xml", ".json")  # Picbreeder zip/XML, ferlab genome JSON
SOURCE_SUFFIXES = (*GENOME_SUFFIXES, ".npz")


def load_source(path: str | Path) -> Genome | DenseNet:
    """A Genome for .zip/.xml/.json, a DenseNet for .npz; FerlabError otherwise.

    Every reader checks sizes against ``ferlab.limits`` before it allocates.
    """
    path = Path(path)
    if why := not_a_file(path):
        raise FerlabError(f"{path}: {why}")
    suffix = path.suffix.lower()
    if suffix in (".zip", ".xml"):
        return load_picbreeder(path)
    if suffix == ".json":
        try:
            text = read_capped(path).decode("utf-8")
        except UnicodeDecodeError:
            raise GenomeError(f"{path}: not valid JSON (not UTF-8 text)") from None
        return Genome.from_json(text, source=str(path))
    if suffix == ".npz":
        return load_net(path)
    raise FerlabError(f"{path}: unknown source type {suffix!r} (expected one of {', '.join(SOURCE_SUFFIXES)})")


def load_dense(path: str | Path) -> tuple[DenseNet, Genome | None]:
    """The dense net of any source (genomes are layerized), and the genome if there was one."""
    src = load_source(path)
    if isinstance(src, Genome):
        return layerize(src).net, src
    return src, None
