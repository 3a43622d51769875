"""Every search regime, found from the declarations themselves.

A regime is a module of this package with a top-level ``REGIME = Regime(...)``
(``ferlab.search.api.Regime``); installed packages add more through the entry
point group ``ferlab.regimes`` (``name = "package.module"``). Names are read
without importing (a module's name is its regime's name), and a regime's module
is imported on first use, so listing regimes stays cheap and one regime's
missing dependency does not break the others.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from ferlab.config import ConfigError
from ferlab.search.api import Regime

ENTRY_POINTS = "ferlab.regimes"
_DECLARES = re.compile(r"^REGIME\s*(:[^=]*)?=", re.MULTILINE)


@cache
def regime_modules() -> dict[str, str]:
    """``{regime name: module name}``, this package's regimes first, then entry points, sorted by name."""
    package = Path(__file__).parent
    found = {}
    for info in pkgutil.iter_modules([str(package)]):
        path = package / f"{info.name}.py"
        if path.is_file() and _DECLARES.search(path.read_text(encoding="utf-8")):
            found[info.name] = f"{__package__}.{info.name}"
    for ep in entry_points(group=ENTRY_POINTS):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


def regime_names() -> tuple[str, ...]:
    return tuple(regime_modules())


def regime(name: str) -> Regime:
    """The declaration of regime ``name`` (its module imported on first use); ConfigError if unknown."""
    modules = regime_modules()
    if name not in modules:
        raise ConfigError(f"unknown regime {name!r} (known: {', '.join(modules)})")
    module_name = modules[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise ConfigError(f"regime {name!r} is not available: {e}") from None
        raise ConfigError(f"regime {name!r} is not available ({module_name} is missing)") from None
    declared = getattr(module, "REGIME", None)
    if not isinstance(declared, Regime) or declared.name != name:
        raise ConfigError(f"{module_name} must declare REGIME = Regime(name={name!r}, ...)")
    return declared
