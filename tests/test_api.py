"""The Python API: ``ferlab`` exports what a notebook needs, lazily, and the README's example runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ferlab
from ferlab.compile_cache import cache_env

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_every_exported_name_resolves_and_import_is_light():
    for name in ferlab.__all__:
        assert getattr(ferlab, name) is not None, name
    assert set(ferlab.__all__) <= set(dir(ferlab))
    with pytest.raises(AttributeError):
        ferlab.no_such_thing  # noqa: B018
    code = "import sys, ferlab; print(sorted(m for m in ('jax', 'flax', 'ray', 'mlflow') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.strip() == "[]"  # the heavy libraries wait until a name that needs them is used


def test_load_genome_and_load_net_read_what_they_name(tmp_path):
    from ferlab.errors import FerlabError

    net = ferlab.init_net("2;sin:2,gaussian:2", __import__("jax").random.PRNGKey(0))
    path = ferlab.write_net(tmp_path / "net.npz", net)
    assert ferlab.load_net(path).arch == net.arch
    with pytest.raises(FerlabError, match="a dense net, not a genome"):
        ferlab.load_genome(path)


def test_readme_python_example_runs(tmp_path):
    code = readme_example()
    assert 10 <= len(code.strip().splitlines()) <= 16  # about ten lines, as the README promises
    env = {**os.environ, **cache_env(), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loss, score = map(float, re.fullmatch(r"loss (\S+), fer_score (\S+)\n", done.stdout).groups())
    assert 0 <= loss < 1 and 0 <= score <= 1
    target = np.asarray(Image.open(tmp_path / "target.png"))
    best = np.asarray(Image.open(tmp_path / "best.png"))
    assert target.shape == (32, 32, 3) and best.shape == (128, 128, 3)
