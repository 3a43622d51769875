"""Checkpoints of a run: its state pytree, the generation reached and the history so far.

One msgpack file (Flax serialization, no pickle) written atomically, restored
into the structure of a template state (``search.init(key)``).
"""

from __future__ import annotations

import json
from pathlib import Path

from flax import serialization

from ferlab.errors import FerlabError
from ferlab.files import write_bytes


def save_checkpoint(path: str | Path, state, generation: int, history: list[dict]) -> Path:
    payload = {"state": serialization.to_state_dict(state), "generation": generation, "history": json.dumps(history)}
    return write_bytes(path, serialization.msgpack_serialize(payload))


def load_checkpoint(path: str | Path, template):
    """``(state, generation, history)`` from ``path``, shaped like ``template``."""
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
        state = serialization.from_state_dict(template, payload["state"])
        return state, int(payload["generation"]), json.loads(payload["history"])
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise FerlabError(f"{path}: not a usable checkpoint for this run ({e})") from None
