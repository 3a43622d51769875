"""Hostile and careless input: each class gets exit 2, one stderr line, no traceback, nothing written.

Bombs (small files that claim huge sizes) run in a subprocess under a 1 GB address-space
limit and a 10 s CPU-time limit, so a regression fails the test instead of the machine.
"""

import fcntl
import io
import itertools
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from ferlab.cli import main

REPO = Path(__file__).resolve().parents[1]
GB = 1 << 30
CPU_SECONDS = 10
SMALL = "2;sin:3,gaussian:3"


# ----------------------------------------------------------------- helpers
def genome(links=None, **node_extra) -> dict:
    """A small valid ink genome in JSON form: x, y, d, bias -> hidden h -> ink."""
    nodes = [{"id": name, "kind": "input", "activation": "identity", "label": name} for name in ("x", "y", "d", "bias")]
    nodes += [
        {"id": "h", "kind": "hidden", "activation": "sin", "label": ""},
        {"id": "ink", "kind": "output", "activation": "gaussian", "label": "ink"},
    ]
    if links is None:
        links = [
            {"innovation": 1, "source": "x", "target": "h", "weight": 1.5, "enabled": True},
            {"innovation": 2, "source": "d", "target": "h", "weight": -0.5, "enabled": True},
            {"innovation": 3, "source": "h", "target": "ink", "weight": 2.0, "enabled": True},
        ]
    return {"format": "ferlab.genome/1", "name": "g", "nodes": nodes, "links": links}


def npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_header(shape, dtype="<f4") -> bytes:
    """Just the .npy header of an array of ``shape`` (the data need not follow)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def small_net_members(arch=SMALL, dtype=np.float32) -> dict[str, bytes]:
    from ferlab.cppn import Architecture

    shapes = Architecture.parse(arch).kernel_shapes
    members = {"arch.npy": npy(np.array(arch))}
    members.update({f"layer_{i}.npy": npy(np.full(s, 0.5, dtype)) for i, s in enumerate(shapes)})
    return members


def png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A greyscale PNG whose header says ``width`` x ``height`` (the pixel data may be short)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = rows if rows is not None else b"\x00" * (width + 1) * min(height, 4)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def grey_png(folder: Path) -> Path:
    """``folder/t.png``: an 8x8 mid-grey target."""
    path = folder / "t.png"
    path.write_bytes(png(8, 8, rows=b"\x00" + b"\x80" * 8))
    return path


def run_config(target: str, **extra) -> dict:
    return {
        "regime": "sgd",
        "resolution": 8,
        "target": target,
        "arch": SMALL,
        "checkpoint_every": 0,
        "settings": {"steps": 2, "steps_per_generation": 1},
        **extra,
    }


def one_line_error(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and err.startswith("ferlab: error: "), err[-3000:]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# sets the limits in the child, then becomes the command (no preexec_fn: the runner uses threads)
LIMITED = (
    "import os, resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({GB}, {GB}))\n"
    f"resource.setrlimit(resource.RLIMIT_CPU, ({CPU_SECONDS}, {CPU_SECONDS}))\n"
    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])\n"
)


def cli(args: list[str], cwd: Path, env: dict | None = None, code: str | None = None):
    """``ferlab ARGS`` in a fresh process under 1 GB of address space and 10 s of CPU."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", **(env or {})}
    full_env.pop("PYTHONWARNINGS", None)
    command = ["-c", code, *args] if code else ["-m", "ferlab.cli", *args]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, *command],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stderr, time.monotonic() - start


# --------------------------------------------- bombs, each in a limited process
def make_bombs(root: Path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """Case name -> (ferlab arguments, words the error line must hold); inputs under ``root/in``."""
    src = root / "in"
    src.mkdir()
    (src / "arch.npz").write_bytes(npz({"arch.npy": npy(np.array("1000000000;sin:1"))}))
    members = small_net_members()
    # layer_0 claims 20000 x 20000 float32 (1.6 GB) and holds 16 MB of zeros, deflated to ~16 KB
    members["layer_0.npy"] = npy_header((20000, 20000)) + bytes(16 << 20)
    (src / "zipbomb.npz").write_bytes(npz(members))
    members = small_net_members()
    members["layer_1.npy"] = npy_header((1 << 20, 1 << 20))  # 4 TB, no data at all
    (src / "header4tb.npz").write_bytes(npz(members))
    (src / "bomb.png").write_bytes(png(30000, 30000))
    (src / "png.yaml").write_text(yaml.safe_dump(run_config(str(src / "bomb.png"))))
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    (src / "alias.yaml").write_text("regime: sgd\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + levels)
    # 1,500 deep (a chain) by 1,500 wide (nodes fed by x, all carried to the output): 3.4e9 dense weights
    deep = genome(links=[])
    deep["nodes"] += [{"id": f"c{i}", "kind": "hidden", "activation": "sin", "label": ""} for i in range(1500)]
    deep["nodes"] += [{"id": f"w{i}", "kind": "hidden", "activation": "sin", "label": ""} for i in range(1500)]
    chain = ["x"] + [f"c{i}" for i in range(1500)] + ["ink"]
    links = list(itertools.pairwise(chain))
    links += [("y", f"w{i}") for i in range(1500)] + [(f"w{i}", "ink") for i in range(1500)]
    deep["links"] = [
        {"innovation": k, "source": a, "target": b, "weight": 0.5, "enabled": True} for k, (a, b) in enumerate(links)
    ]
    (src / "deepwide.json").write_text(json.dumps(deep))
    # a 30,000-node chain (under the node cap): validation must be linear to finish in time
    chain_genome = genome(links=[])
    chain_genome["nodes"] += [
        {"id": f"c{i}", "kind": "hidden", "activation": "sin", "label": ""} for i in range(30_000)
    ]
    chain = ["x"] + [f"c{i}" for i in range(30_000)] + ["ink"]
    chain_genome["links"] = [
        {"innovation": k, "source": a, "target": b, "weight": 0.5, "enabled": True}
        for k, (a, b) in enumerate(itertools.pairwise(chain))
    ]
    (src / "chain.json").write_text(json.dumps(chain_genome, separators=(",", ":")))
    out = str(root / "out")
    return {
        "arch_string_bomb": (
            ["render", str(src / "arch.npz"), "--out", f"{out}/o.png"],
            ("1000000000 hidden layers", "FERLAB_MAX_LAYERS"),
        ),
        "npz_zip_bomb": (["render", str(src / "zipbomb.npz"), "--out", f"{out}/o.png"], ("layer_0",)),
        "npz_4tb_header": (["info", str(src / "header4tb.npz")], ("layer_1",)),
        "png_decompression_bomb": (["run", str(src / "png.yaml"), "--out", out], ("bomb.png", "pixels")),
        "yaml_alias_bomb": (["run", str(src / "alias.yaml"), "--out", out], ("FERLAB_MAX_YAML_NODES",)),
        "deep_wide_genome": (
            ["layerize", str(src / "deepwide.json"), "--out", f"{out}/o.npz"],
            ("hidden layers", "over the cap of 1024", "FERLAB_MAX_LAYERS"),
        ),
        "long_chain_genome": (
            ["render", str(src / "chain.json"), "--out", f"{out}/o.png"],
            ("hidden layers", "FERLAB_MAX_LAYERS"),
        ),
    }


# One process imports ferlab and its libraries once, then forks a child per case: the child is a
# fresh process (own exit code, stderr, limits) that runs ``ferlab.cli.main`` as ``ferlab`` does.
FORKING_RUNNER = f"""
import json, os, resource, sys, time, traceback
import ferlab.cli, ferlab.sources, ferlab.search.runs, ferlab.search.sgd
out = {{}}
for name, (argv, cwd) in json.loads(sys.argv[1]).items():
    err = os.path.join(cwd, os.pardir, name + ".stderr")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(cwd)
            resource.setrlimit(resource.RLIMIT_AS, ({GB}, {GB}))
            resource.setrlimit(resource.RLIMIT_CPU, ({CPU_SECONDS}, {CPU_SECONDS}))
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            code = ferlab.cli.main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    out[name] = [os.waitstatus_to_exitcode(status), open(err).read(), time.monotonic() - start]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bomb_results(tmp_path_factory):
    """Every bomb run once, each in a forked child with its own empty working folder and limits."""
    root = tmp_path_factory.mktemp("bombs")
    cases = make_bombs(root)
    jobs = {}
    for name, (argv, _) in cases.items():
        (root / "cwd" / name).mkdir(parents=True)
        jobs[name] = (argv, str(root / "cwd" / name))
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, "-c", FORKING_RUNNER, json.dumps(jobs)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {
        name: (*values, files_under(root / "cwd" / name))
        for name, values in json.loads(proc.stdout.strip().splitlines()[-1]).items()
    }
    return root, cases, results


BOMBS = (
    "arch_string_bomb",
    "npz_zip_bomb",
    "npz_4tb_header",
    "png_decompression_bomb",
    "yaml_alias_bomb",
    "deep_wide_genome",
    "long_chain_genome",
)


@pytest.mark.parametrize("name", BOMBS)
def test_bomb_is_one_line_exit_2_within_bounds(bomb_results, name):
    root, cases, results = bomb_results
    rc, err, wall, written = results[name]
    assert rc == 2, (rc, err[-3000:])
    one_line_error(err, *cases[name][1])
    assert wall < 60  # a backstop: the child's CPU time is capped at 10 s
    assert not (root / "out").exists() and written == set()


# ------------------------------------------------------- 1. concurrent runs
def test_a_run_into_a_folder_held_by_a_live_run_is_refused(tmp_path, capsys):
    """A live run holds its --out folder (a lock the kernel drops when it dies); a second is refused."""
    target = grey_png(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(run_config(str(target))))
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a run that is still working holds
    try:
        assert main(["run", str(config), "--out", str(out)]) == 2
    finally:
        os.close(fd)
    one_line_error(capsys.readouterr().err, "in use")
    assert files_under(out) == set()


@pytest.mark.slow
def test_two_runs_started_into_one_folder_give_one_run_and_one_refusal(tmp_path):
    target = grey_png(tmp_path)
    configs = []
    for seed in (1, 2):
        configs.append(tmp_path / f"c{seed}.yaml")
        configs[-1].write_text(
            yaml.safe_dump(run_config(str(target), seed=seed, settings={"steps": 30, "steps_per_generation": 1}))
        )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ferlab.cli", "run", str(c), "--out", str(out)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _, _ in results) == [0, 2], results
    winner = next(i for i, (rc, _, _) in enumerate(results) if rc == 0)
    loser = results[1 - winner]
    assert loser[2].count("\n") == 1 and "Traceback" not in loser[2]
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == winner + 1


# --------------------------------------------------- 2, 3. genome JSON types
@pytest.mark.parametrize(
    "field,value,words",
    [
        ("enabled", "false", "links[0].enabled must be true or false"),
        ("enabled", 0, "links[0].enabled must be true or false"),
        ("weight", "1.5", "links[0].weight must be a finite number"),
        ("weight", True, "links[0].weight must be a finite number"),
        ("weight", float("nan"), "links[0].weight must be a finite number"),
        ("weight", float("inf"), "links[0].weight must be a finite number"),
        ("weight", 10**400, "links[0].weight must be a finite number"),
        ("innovation", 1.5, "links[0].innovation must be an integer"),
        ("label", 3, "links[0].label must be a string"),
        ("sweep", [0, 1], "links[0].sweep must be [start, end, step]"),
        ("sweep", [0, "inf", 1], "links[0].sweep.1 must be a finite number"),
    ],
)
@pytest.mark.parametrize("command", ["render", "layerize"])
def test_genome_json_with_a_wrong_type_is_refused(tmp_path, capsys, command, field, value, words):
    data = genome()
    data["links"][0][field] = value
    src = tmp_path / "g.json"
    src.write_text(json.dumps(data))
    out = tmp_path / "out" / ("o.png" if command == "render" else "o.npz")
    assert main([command, str(src), "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, str(src), words)
    assert not (tmp_path / "out").exists()


def _xml_genome(weight="0.5", link_id="9", bias=None) -> str:
    """A five-node Picbreeder XML genome with one link, its fields as given."""
    attrs = "" if bias is None else f' bias="{bias}"'
    nodes = "".join(
        f'<node label="{label}" type="{kind}"{attrs}><marking branch="1" id="{i}"/>'
        f"<activation>{act}(x)</activation></node>"
        for i, (label, kind, act) in enumerate(
            [
                ("x", "in", "identity"),
                ("y", "in", "identity"),
                ("d", "in", "identity"),
                ("bias", "in", "identity"),
                ("ink", "out", "gaussian"),
            ]
        )
    )
    link = (
        f'<link><marking branch="1" id="{link_id}"/><source branch="1" id="0"/><target branch="1" id="4"/>'
        f"<weight>{weight}</weight></link>"
    )
    return f"<data><genome><nodes>{nodes}</nodes><links>{link}</links></genome></data>"


def test_nan_weights_in_picbreeder_xml_are_refused(tmp_path, capsys):
    src = tmp_path / "g.xml"
    src.write_text(_xml_genome(weight="nan"))
    assert main(["layerize", str(src), "--out", str(tmp_path / "o.npz")]) == 2
    one_line_error(capsys.readouterr().err, "non-finite weight")
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize(
    "fields, words",
    [({"link_id": "abc"}, "marking id that is not an integer"), ({"bias": "lots"}, "bias that is not a number")],
)
def test_picbreeder_xml_with_a_malformed_marking_or_bias_is_one_line(tmp_path, capsys, fields, words):
    src = tmp_path / "g.xml"
    src.write_text(_xml_genome(**fields))
    assert main(["info", str(src)]) == 2
    one_line_error(capsys.readouterr().err, words)


def test_a_file_of_several_genomes_is_refused_not_read_at_its_first(tmp_path, capsys):
    """CPPN-X keeps a lineage as a <storage> of <generation>s, each a <genome>, and asks which to open:
    the first is the ancestor, not the picture meant, so ferlab names what the file holds and stops."""
    one = _xml_genome().removeprefix("<data>").removesuffix("</data>")
    generations = "".join(f'<generation number="{n}" size="1">{one}</generation>' for n in (3, 4, 7))
    src = tmp_path / "series.xml"
    src.write_text(f'<data version="1.0"><storage maximum="7" minimum="3" name="s">{generations}</storage></data>')
    assert main(["render", str(src), "--out", str(tmp_path / "o.png")]) == 2
    one_line_error(capsys.readouterr().err, "holds 3 genomes (a <storage> of generations 3..7)", "save the one")
    assert not (tmp_path / "o.png").exists()
    (tmp_path / "one.xml").write_text(f"<data>{one}</data>")
    assert main(["render", str(tmp_path / "one.xml"), "--out", str(tmp_path / "o.png")]) == 0


def test_a_link_defined_twice_is_refused_but_ids_that_branches_share_are_not(tmp_path, capsys):
    """Two links of one marking would be summed, doubling a weight nobody evolved; the same id under
    two branches names two links (Picbreeder numbers links per branch)."""
    text = _xml_genome()
    link = text[text.index("<link>") : text.index("</link>") + len("</link>")]
    src = tmp_path / "twice.xml"
    src.write_text(text.replace(link, link + link))
    assert main(["info", str(src)]) == 2
    one_line_error(capsys.readouterr().err, "link 1_9 is defined twice")
    other = link.replace('<marking branch="1"', '<marking branch="2"').replace('id="0"/><target', 'id="1"/><target')
    (tmp_path / "branches.xml").write_text(text.replace(link, link + other))
    assert main(["info", str(tmp_path / "branches.xml")]) == 0
    assert "links        2 (2 enabled)" in capsys.readouterr().out


def _with_node(node: dict) -> dict:
    g = genome()
    g["nodes"].append(node)
    return g


@pytest.mark.parametrize(
    "data, words",
    [
        (_with_node({"id": "z", "kind": "input", "activation": "identity", "label": "z"}), "input node labelled 'z'"),
        (
            _with_node({"id": "x2", "kind": "input", "activation": "identity", "label": "x"}),
            "2 input nodes are labelled 'x'",
        ),
        (
            _with_node({"id": "a", "kind": "output", "activation": "sin", "label": "alpha"}),
            "output node labelled 'alpha'",
        ),
        (
            _with_node({"id": "i2", "kind": "output", "activation": "sin", "label": "ink"}),
            "2 output nodes are labelled 'ink'",
        ),
        (
            _with_node({"id": "hue", "kind": "output", "activation": "sin", "label": "hue"}),
            "both an 'ink' output and hue",
        ),
    ],
)
def test_an_input_or_output_that_is_not_exactly_one_of_the_cppns_is_refused(tmp_path, capsys, data, words):
    """An extra, unknown or repeated input or output would be read as something it is not (a hidden
    unit, or one of two nodes of one name) or dropped: one line instead of a quietly different picture."""
    src = tmp_path / "g.json"
    src.write_text(json.dumps(data))
    assert main(["render", str(src), "--out", str(tmp_path / "o.png")]) == 2
    one_line_error(capsys.readouterr().err, words)
    assert not (tmp_path / "o.png").exists()


def test_genome_node_cap_is_checked_before_nodes_are_built(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FERLAB_MAX_GENOME_NODES", "5")
    src = tmp_path / "g.json"
    src.write_text(json.dumps(genome()))
    assert main(["info", str(src)]) == 2
    one_line_error(capsys.readouterr().err, "6 genome nodes, over the cap of 5", "FERLAB_MAX_GENOME_NODES")


def test_genome_file_over_the_byte_cap_is_refused_unread(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FERLAB_MAX_FILE_BYTES", "100")
    src = tmp_path / "g.json"
    src.write_text(json.dumps(genome()))
    assert main(["info", str(src)]) == 2
    one_line_error(capsys.readouterr().err, "over the cap of 100", "FERLAB_MAX_FILE_BYTES")


def test_genome_validation_is_linear():
    """A 40,000-node chain validates in well under a second (the old check was quadratic: minutes)."""
    from ferlab.genome import Genome

    data = genome(links=[])
    data["nodes"] += [{"id": f"c{i}", "kind": "hidden", "activation": "sin", "label": ""} for i in range(40_000)]
    chain = ["x"] + [f"c{i}" for i in range(40_000)] + ["ink"]
    data["links"] = [
        {"innovation": k, "source": a, "target": b, "weight": 1.0, "enabled": True}
        for k, (a, b) in enumerate(itertools.pairwise(chain))
    ]
    result = {}
    worker = threading.Thread(target=lambda: result.update(g=Genome.from_dict(data)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert "g" in result and len(result["g"].nodes) == 40_006


# ------------------------------------------------------- 4. config numbers
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_es_std_is_refused(tmp_path, capsys, value):
    target = grey_png(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"regime: es\nresolution: 8\ntarget: {target}\narch: '{SMALL}'\ngenerations: 2\n"
        f"settings: {{population_size: 4, std: {value}}}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "settings.std", "finite")
    assert not out.exists()


def test_non_finite_numbers_are_refused_inside_free_form_settings():
    from typing import Any

    from ferlab.config import ConfigError, convert

    with pytest.raises(ConfigError, match=r"params.a\[1\]: expected a finite number"):
        convert(dict[str, Any], {"a": [1.0, math.inf]}, "params")
    with pytest.raises(ConfigError, match="out of range"):
        convert(int, 1 << 70, "seed")


# ---------------------------------------------------------------- 6. bombs (in-process parts)
@pytest.mark.parametrize(
    "arch,cap",
    [
        ("1000000000;sin:1", "FERLAB_MAX_LAYERS"),
        ("2;sin:100000", "FERLAB_MAX_WIDTH"),
        ("1000;sin:1000", "FERLAB_MAX_WEIGHTS"),
        ("9" * 5000 + ";sin:1", "characters"),
    ],
)
def test_architecture_caps_are_decided_before_allocation(arch, cap):
    from ferlab.cppn import Architecture
    from ferlab.errors import FerlabError

    with pytest.raises(FerlabError, match=cap):
        Architecture.parse(arch)


def test_caps_can_be_raised(monkeypatch):
    from ferlab.cppn import Architecture

    monkeypatch.setenv("FERLAB_MAX_WIDTH", "100000")
    monkeypatch.setenv("FERLAB_MAX_WEIGHTS", "10000000")
    assert Architecture.parse("1;sin:100000").width == 100000
    monkeypatch.setenv("FERLAB_MAX_WIDTH", "many")
    with pytest.raises(Exception, match="FERLAB_MAX_WIDTH must be a positive integer"):
        Architecture.parse("1;sin:2")


# ------------------------------------------------------------- 8. tracebacks
def bad_npz_cases(folder: Path) -> dict[str, tuple[Path, str]]:
    cases = {}
    (folder / "npy.npz").write_bytes(npy(np.zeros((3, 3), np.float32)))
    cases["npy_renamed_npz"] = (folder / "npy.npz", "not a ferlab/FER .npz network")
    whole = npz(small_net_members())
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    cases["truncated"] = (folder / "truncated.npz", "not a ferlab/FER .npz network")
    members = small_net_members()
    members["layer_1.npy"] = npy_header((1 << 20, 1 << 20))
    (folder / "4tb.npz").write_bytes(npz(members))
    cases["header_claims_4tb"] = (folder / "4tb.npz", "layer_1 has shape (1048576, 1048576)")
    (folder / "complex.npz").write_bytes(npz(small_net_members(dtype=np.complex64)))
    cases["complex_weights"] = (folder / "complex.npz", "complex64 values; weights must be real")
    members = small_net_members()
    members["layer_0.npy"] = members["layer_0.npy"][:-8]
    (folder / "short.npz").write_bytes(npz(members))
    cases["short_member"] = (folder / "short.npz", "layer_0 is truncated")
    members = small_net_members()
    members["arch.npy"] = npy(np.array([1, 2]))
    (folder / "arch.npz").write_bytes(npz(members))
    cases["arch_not_a_string"] = (folder / "arch.npz", "'arch' is not a string")
    return cases


@pytest.mark.parametrize(
    "case",
    ["npy_renamed_npz", "truncated", "header_claims_4tb", "complex_weights", "short_member", "arch_not_a_string"],
)
def test_bad_npz_is_one_line(tmp_path, capsys, case):
    path, words = bad_npz_cases(tmp_path)[case]
    out = tmp_path / "out" / "o.png"
    assert main(["render", str(path), "--size", "4", "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, str(path), words)
    assert not (tmp_path / "out").exists()


def test_a_good_npz_still_loads(tmp_path):
    from ferlab.cppn import load_net

    (tmp_path / "n.npz").write_bytes(npz(small_net_members()))
    net = load_net(tmp_path / "n.npz")
    assert str(net.arch) == SMALL and float(net.kernels[0][0, 0]) == 0.5


def test_png_bomb_as_a_target_is_one_line(tmp_path, capsys):
    (tmp_path / "bomb.png").write_bytes(png(30000, 30000))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(run_config(str(tmp_path / "bomb.png"))))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    one_line_error(capsys.readouterr().err, "bomb.png", "pixels")
    assert not (tmp_path / "out").exists()


def test_png_pixel_cap_is_settable(tmp_path, monkeypatch):
    from ferlab.config import ConfigError
    from ferlab.search.targets import load_image

    (tmp_path / "t.png").write_bytes(png(20, 10, rows=(b"\x00" + b"\x80" * 20) * 10))
    monkeypatch.setenv("FERLAB_MAX_IMAGE_PIXELS", "199")
    with pytest.raises(ConfigError, match=r"\(20x10\): 200 pixels, over the cap of 199 .*FERLAB_MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "t.png", 4)
    monkeypatch.setenv("FERLAB_MAX_IMAGE_PIXELS", "200")
    assert load_image(tmp_path / "t.png", 4).shape == (4, 4, 3)


@pytest.mark.parametrize("command", ["render", "layerize", "run"])
def test_out_naming_a_file_is_one_line(tmp_path, capsys, command):
    src, args = _command_input(tmp_path, command)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    out = taken / "o.png" if command == "render" else taken / "o.npz" if command == "layerize" else taken
    assert main([command, str(src), "--out", str(out), *args]) == 2
    one_line_error(capsys.readouterr().err, str(taken))
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("command", ["render", "layerize", "run"])
def test_out_in_a_read_only_folder_is_one_line(tmp_path, capsys, command):
    src, args = _command_input(tmp_path, command)
    root = os.geteuid() == 0  # root writes into a mode-0555 folder; /proc refuses new files even to root
    locked = Path("/proc/self") if root else tmp_path / "locked"
    out = locked / "o.png" if command == "render" else locked / "o.npz" if command == "layerize" else locked / "run"
    if not root:
        locked.mkdir()
        locked.chmod(0o555)
    try:
        assert main([command, str(src), "--out", str(out), *args]) == 2
    finally:
        if not root:
            locked.chmod(0o755)
    one_line_error(capsys.readouterr().err, str(locked))
    if not root:
        assert files_under(locked) == set()


def _command_input(tmp_path: Path, command: str) -> tuple[Path, list[str]]:
    if command == "run":
        target = grey_png(tmp_path)
        src = tmp_path / "c.yaml"
        src.write_text(yaml.safe_dump(run_config(str(target))))
        return src, []
    src = tmp_path / "g.json"
    src.write_text(json.dumps(genome()))
    return src, ["--size", "4"] if command == "render" else []


# ----------------------------------------------------------- 9. smaller ones
def test_output_files_follow_the_umask(tmp_path):
    from ferlab.files import write_text

    old = os.umask(0o027)
    try:
        path = write_text(tmp_path / "a" / "f.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    assert files_under(tmp_path / "a") == {"f.txt"}


def test_warnings_do_not_add_stderr_lines(tmp_path):
    code = (
        "import sys, warnings, ferlab.cli as c\n"
        "def bad(args):\n"
        "    warnings.warn('library noise')\n"
        "    raise c.FerlabError('bad input')\n"
        "c.cmd_info = bad\n"
        "sys.exit(c.main(sys.argv[1:]))\n"
    )
    rc, err, _ = cli(["info", "x.json"], tmp_path, code=code)
    assert rc == 2
    one_line_error(err, "bad input")


# ------------------------------------------------------------- YAML numbers
def test_yaml_exponent_numbers_are_floats_everywhere(tmp_path):
    from ferlab.config import apply_overrides, load_yaml, parse_yaml

    (tmp_path / "c.yaml").write_text("a: 1e-5\nb: 1E5\nc: -2e-3\nd: 1.0e5\ne: '1e-5'\nf: 1e\n")
    assert load_yaml(tmp_path / "c.yaml") == {"a": 1e-5, "b": 1e5, "c": -2e-3, "d": 1e5, "e": "1e-5", "f": "1e"}
    assert apply_overrides({}, ["settings.learning_rate=1e-5"]) == {"settings": {"learning_rate": 1e-5}}
    assert parse_yaml("[1e-05, 3, true, 0x10]") == [1e-5, 3, True, 16]
    assert isinstance(parse_yaml("1e5"), float)


def test_yaml_float_survives_a_run_config(tmp_path):
    from ferlab.search.runs import load_run_config

    target = grey_png(tmp_path)
    config = load_run_config(run_config(str(target)), ["settings.learning_rate=1e-5"])
    assert config.settings.learning_rate == 1e-5


def test_yaml_aliases_within_the_cap_still_work_and_self_reference_is_refused():
    from ferlab.config import ConfigError, parse_yaml

    assert parse_yaml("a: &x {k: 1}\nb: *x\n") == {"a": {"k": 1}, "b": {"k": 1}}
    with pytest.raises(ConfigError, match="contains it"):
        parse_yaml("&a [*a]", "r.yaml")


# ----------------------------------------------------------------- studies refused before any work
def _study(tmp_path: Path, name: str, base: dict) -> Path:
    spec = {"name": name, "phases": [{"name": "given_nets", "base": base}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    "name, base, words",
    [
        ("it's", {"regime": "given", "settings": {"source": "picbreeder:skull"}}, ("name", "letters")),
        ("ok", {"regime": "given", "resolution": "big"}, ("study.yaml", "phase given_nets", "resolution")),
    ],
    ids=["quote in the name", "bad phase base"],
)
def test_a_refused_study_names_its_file_and_phase_and_writes_nothing(
    picbreeder_dir, tmp_path, capsys, monkeypatch, name, base, words
):
    path = _study(tmp_path, name, base)
    monkeypatch.chdir(tmp_path)
    assert main(["study", str(path)]) == 2
    one_line_error(capsys.readouterr().err, *words)
    assert files_under(tmp_path) == {"study.yaml"}  # no ./mlruns, no results/


GIVEN = {"regime": "given", "settings": {"source": "picbreeder:skull"}}


def _study_spec(tmp_path: Path, **extra) -> Path:
    profiles = {"quick": {"set": {"resolution": 8}, "phases": {"a": {"keep": 2}}}}
    spec = {"name": "s", "phases": [{"name": "a", "base": GIVEN}], "profiles": profiles, **extra}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    "extra, words",
    [
        ({"profiles": ["quick"]}, ("study.yaml.profiles", "expected a mapping", "list")),
        ({"profiles": "quick"}, ("study.yaml.profiles", "expected a mapping", "str")),
        ({"profiles": 3}, ("study.yaml.profiles", "expected a mapping", "int")),
        ({"profiles": {1: {}}}, ("no profile 'quick'", "known: 1")),
        ({"phases": "abc"}, ("study.yaml.phases", "expected a list", "str")),
        ({"phases": ["abc"]}, ("study.yaml.phases[0]", "expected a mapping", "str")),
        ({"phases": [{"base": GIVEN}]}, ("study.yaml.phases[0]", "missing required key 'name'")),
        ({"phases": [{"name": 3, "base": GIVEN}]}, ("study.yaml.phases[0].name", "expected a string", "int")),
        ({"phases": [{"name": [1], "base": GIVEN}]}, ("study.yaml.phases[0].name", "expected a string", "list")),
    ],
    ids=["profiles list", "profiles str", "profiles int", "profile key int", "phases str", "phase str",
         "phase without name", "phase name int", "phase name list"],
)  # fmt: skip
def test_a_study_of_the_wrong_shape_with_a_profile_is_one_line(tmp_path, capsys, monkeypatch, extra, words):
    path = _study_spec(tmp_path, **extra)
    monkeypatch.chdir(tmp_path)
    assert main(["study", str(path), "--profile", "quick"]) == 2
    one_line_error(capsys.readouterr().err, *words)
    assert files_under(tmp_path) == {"study.yaml"}


@pytest.mark.parametrize(
    "phase, words",
    [
        ({"grid": {"resolution": []}}, "grid.resolution has no values"),
        ({"grid": {"settings.source": []}}, "grid.settings.source has no values"),
        ({"cpus": -1}, "cpus must be a positive number, got -1"),
        ({"cpus": 0}, "cpus must be a positive number, got 0"),
        ({"max_failures": -5}, "max_failures must be at least 0, got -5"),
        ({"max_failures": -1}, "max_failures must be at least 0, got -1"),
        ({"seeds": 100_000_000}, "seeds must be 1 to 10,000, got 100000000"),
        ({"seeds": 0}, "seeds must be 1 to 10,000, got 0"),
    ],
)
def test_a_study_phase_out_of_bounds_is_refused_as_it_loads(tmp_path, phase, words):
    from ferlab.config import ConfigError
    from ferlab.study import load_study

    path = _study_spec(tmp_path, phases=[{"name": "a", "base": GIVEN, **phase}])
    for profile in (None, "quick"):
        with pytest.raises(ConfigError) as err:
            load_study(path, profile)  # before check_study expands a single run, or Ray starts
        assert "\n" not in str(err.value) and "phase a: " in str(err.value) and words in str(err.value)


def test_study_phase_bounds_keep_their_edges(tmp_path):
    from ferlab.study import load_study

    path = _study_spec(tmp_path, phases=[{"name": "a", "base": GIVEN, "seeds": 10_000, "cpus": 0.5, "max_failures": 0}])
    (phase,) = load_study(path, "quick").phases
    assert (phase.seeds, phase.cpus, phase.max_failures) == (10_000, 0.5, 0)


def _sweep_spec(tmp_path: Path, sample: dict) -> Path:
    target = grey_png(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": run_config(str(target)), "sample": sample}))
    return path


@pytest.mark.parametrize(
    "sample, words",
    [
        ({"resolution": {"uniform": []}}, "sample.resolution.uniform: expected [lower, upper], got 0 values"),
        ({"resolution": {"randint": [1, 2, 3, 4]}}, "sample.resolution.randint: expected [lower, upper], got 4"),
        ({"resolution": {"randint": [8.5, 64]}}, "sample.resolution.randint: expected two integers"),
        ({"settings.learning_rate": {"uniform": [True, 2]}}, "uniform: expected two numbers"),
        ({"settings.learning_rate": {"uniform": [0.1, 0.01]}}, "lower must be below upper"),
        ({"settings.learning_rate": {"loguniform": [0, 0.1]}}, "lower must be above 0"),
        ({"target": {"choice": []}}, "sample.target.choice has no values"),
        ({"resolution": {"randint": [8, 100_000]}}, "sample.resolution = 99999"),  # the upper end, excluded
        ({"resolution": {"uniform": [8, 64]}}, "resolution: expected an integer, got 8.0"),  # uniform draws floats
        ({"target": {"choice": ["t.png", "missing.png"]}}, "sample.target = 'missing.png'"),  # every choice
    ],
)
def test_sweep_samples_are_checked_whole_as_the_spec_loads(tmp_path, monkeypatch, sample, words):
    from ferlab.config import ConfigError
    from ferlab.workers.sweep import load_sweep

    monkeypatch.chdir(tmp_path)
    path = _sweep_spec(tmp_path, sample)
    with pytest.raises(ConfigError) as err:
        load_sweep(path)  # before Ray starts or a trial draws a value
    assert "\n" not in str(err.value) and str(err.value).startswith(str(path)) and words in str(err.value)


def test_sweep_sample_ranges_that_fit_load(tmp_path, monkeypatch):
    from ferlab.workers.sweep import load_sweep

    monkeypatch.chdir(tmp_path)
    sample = {
        "resolution": {"randint": [8, 4097]},  # draws at most 4096, the largest resolution
        "settings.learning_rate": {"loguniform": [1e-4, 0.1]},
        "target": {"choice": ["t.png"]},
    }
    assert load_sweep(_sweep_spec(tmp_path, sample)).sample == sample


@pytest.mark.parametrize("dist", [{"uniform": []}, {"choice": []}])
def test_a_sweep_sample_without_values_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, dist):
    monkeypatch.chdir(tmp_path)
    path = _sweep_spec(tmp_path, {"resolution": dist})
    assert main(["sweep", str(path)]) == 2
    one_line_error(capsys.readouterr().err, "sweep.yaml", "sample.resolution")
    assert files_under(tmp_path) == {"sweep.yaml", "t.png"}


def test_resume_over_a_sweep_whose_driver_died_as_it_started_is_one_line(tmp_path, capsys, monkeypatch):
    """A driver killed as it started leaves tuner.pkl and no experiment state: nothing to resume, said
    in one line (Tune's ValueError traceback before)."""
    monkeypatch.chdir(tmp_path)
    path = _sweep_spec(tmp_path, {})
    left = tmp_path / "tune" / "s"  # the spec's name
    left.mkdir(parents=True)
    (left / "tuner.pkl").write_bytes(b"junk")
    assert main(["sweep", str(path), "--resume", "--storage", str(tmp_path / "tune")]) == 2
    one_line_error(capsys.readouterr().err, "--resume: no unfinished sweep")


# ---------------------------------------------- integers past Python's 4300-digit limit
HUGE = "1" * 5000


def test_a_genome_json_integer_past_the_digit_limit_is_one_line(tmp_path, capsys):
    src = tmp_path / "g.json"
    src.write_text(json.dumps(genome()).replace('"innovation": 1,', f'"innovation": {HUGE},', 1))
    assert HUGE in src.read_text()
    assert main(["info", str(src)]) == 2
    one_line_error(capsys.readouterr().err, str(src), "not valid JSON", "4300 digits")


def test_a_yaml_integer_past_the_digit_limit_is_one_line(tmp_path, capsys):
    target = grey_png(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(run_config(str(target))) + f"seed: {HUGE}\n")
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "c.yaml: not valid YAML", "4300 digits")
    config.write_text(yaml.safe_dump(run_config(str(target))))
    assert main(["run", str(config), "--set", f"seed={HUGE}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    one_line_error(err, "--set 'seed=111", "5005 characters", "not valid YAML", "4300 digits")
    assert len(err) < 300  # the value is not echoed whole
    assert not out.exists()


def test_a_yaml_value_its_constructor_refuses_is_one_line():
    from ferlab.config import ConfigError, parse_yaml

    with pytest.raises(ConfigError, match=r"^r.yaml: not valid YAML \(month must be in 1..12\)$"):
        parse_yaml("when: 2024-13-01", "r.yaml")


# ---------------------------------------------------------- 9. what a config asks for
@pytest.mark.parametrize(
    "regime, settings, cap",
    [
        ("es", {"population_size": 1 << 30}, "FERLAB_MAX_POPULATION"),
        ("sgd", {"seeds": 1 << 21, "steps": 1, "steps_per_generation": 1}, "FERLAB_MAX_POPULATION"),
        ("sgd", {"steps": 10**12, "steps_per_generation": 10**6}, "FERLAB_MAX_LOSS_HISTORY"),
        ("neat", {"population_size": 1 << 21}, "FERLAB_MAX_POPULATION"),
        ("neat", {"generations": 10**9}, "FERLAB_MAX_GENERATIONS"),
        ("neat", {"max_links": 10**9}, "FERLAB_MAX_GENOME_LINKS"),
        ("novelty", {"meta_population": 1 << 12, "es": {"population_size": 1 << 10}}, "FERLAB_MAX_POPULATION"),
        ("map_elites", {"batch_size": 1 << 21}, "FERLAB_MAX_POPULATION"),
        ("novelty", {"novelty": {"capacity": 10**9}}, "FERLAB_MAX_POPULATION"),
    ],
)
def test_a_run_asking_for_too_much_is_one_line_before_anything_is_built(tmp_path, capsys, regime, settings, cap):
    """A slip of a few digits gets one line naming the cap (an XLA out-of-memory traceback before)."""
    target = grey_png(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**run_config(str(target)), "regime": regime, "settings": settings}))
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out)]) == 2
    one_line_error(capsys.readouterr().err, "c.yaml: settings", f"raise it with {cap}=N")
    assert not out.exists()


def test_a_run_longer_than_the_generation_cap_is_refused_and_the_cap_can_be_raised(tmp_path, monkeypatch):
    from ferlab.config import ConfigError
    from ferlab.search.runs import load_run_config

    target = grey_png(tmp_path)
    data = run_config(str(target), regime="es", generations=20_000_000, settings={"population_size": 4})
    with pytest.raises(ConfigError, match="generations: 20000000 generations, over the cap of 10000000"):
        load_run_config(data)
    monkeypatch.setenv("FERLAB_MAX_GENERATIONS", "20000000")
    assert load_run_config(data).n_generations == 20_000_000
    monkeypatch.setenv("FERLAB_MAX_POPULATION", "8")
    with pytest.raises(ConfigError, match="population_size: 16 nets"):
        load_run_config({**data, "settings": {"population_size": 16}})


@pytest.mark.parametrize(
    "regime, settings, words",
    [
        ("novelty", {"novelty": {"descriptor_size": 100_000}}, "descriptor_size must be at most 4096"),
        ("map_elites", {"descriptor_size": 100_000, "bins": 1}, "descriptor_size must be at most 4096"),
        ("es", {"fitness_resolution": 5000}, "fitness_resolution must be in [2, 4096]"),
    ],
)
def test_a_picture_side_past_the_largest_is_refused(tmp_path, regime, settings, words):
    """A descriptor rendered at 100,000 x 100,000 was an XLA traceback."""
    from ferlab.config import ConfigError
    from ferlab.search.runs import load_run_config

    target = grey_png(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_run_config({**run_config(str(target)), "regime": regime, "settings": settings})
    assert words in str(err.value)


def test_suite_settings_are_bounded():
    from ferlab.errors import FerlabError
    from ferlab.metrics.suite import MetricsConfig

    for bad in ({"size": 5000}, {"directions": 1 << 20}, {"max_weights": 1 << 20}, {"chunk": 1 << 20}):
        with pytest.raises(FerlabError, match="at most (4096|65536)"):
            MetricsConfig.from_dict(bad)
    assert MetricsConfig.from_dict({"size": 4096, "directions": 1 << 16}).directions == 1 << 16


def test_every_cap_is_in_the_readme():
    from ferlab import limits

    readme = (REPO / "README.md").read_text()
    rows = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `FERLAB_MAX_")}
    assert rows == {cap.env for cap in limits.ALL}


def _sgd_sweep(tmp_path: Path, **spec) -> Path:
    target = grey_png(tmp_path)
    base = {**run_config(str(target)), "settings": {"steps": 300, "steps_per_generation": 1}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "base": base, "metric": "loss", "mode": "min", **spec}))
    return path


def test_asha_runs_to_the_longest_run_of_the_sweep(tmp_path):
    """ASHA stops a trial at max_t. Left unset, it was the base's ``generations`` or 100: an SGD sweep
    (300 steps, one a generation, no ``generations`` key) had every trial cut at 100 of 300."""
    from ferlab.workers.sweep import load_sweep

    spec = load_sweep(_sgd_sweep(tmp_path, asha={"grace_period": 10}, grid={"settings.steps": [300, 500]}))
    assert spec.asha.max_t == 500
    spec = load_sweep(_sgd_sweep(tmp_path, asha={"grace_period": 10, "max_t": 50}))
    assert spec.asha.max_t == 50  # a given horizon stays


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"asha": {"grace_period": 400}}, "asha.grace_period (400) exceeds the longest run (300)"),
        ({"asha": {"grace_period": 20, "max_t": 10}}, "need 1 <= grace_period <= max_t, got 20 and 10"),
        ({"asha": {"reduction_factor": 1}}, "reduction_factor must be above 1"),
        ({"resources": {"cpus": 0}}, "cpus must be positive"),
        ({"resources": {"gpus": 1.5}}, "gpus above 1 must be whole"),
        ({"grid": {"seed": list(range(200))}, "num_samples": 100}, "20000 trials, over the cap of 10000"),
    ],
)
def test_a_sweep_that_cannot_run_as_asked_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, spec, words):
    """Each of these reached Ray Tune before: an assertion traceback (ASHA), a Ray error, or a driver
    building millions of trials."""
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(_sgd_sweep(tmp_path, **spec))]) == 2
    one_line_error(capsys.readouterr().err, "sweep.yaml", words)
    assert files_under(tmp_path) == {"sweep.yaml", "t.png"}


def test_a_trial_bigger_than_the_local_ray_is_refused_not_left_pending(tmp_path, capsys, monkeypatch):
    """Ray Tune leaves a trial that no node can hold pending for ever (it printed a warning a minute)."""
    monkeypatch.chdir(tmp_path)
    spec = _sgd_sweep(tmp_path, resources={"cpus": 4096})
    assert main(["sweep", str(spec), "--store", "ml", "--storage", "tune"]) == 2  # the error caught, as a FerlabError
    err = capsys.readouterr().err  # (Ray's logger may also report an earlier test's closed stream here)
    assert err.strip().splitlines()[-1].startswith("ferlab: error: a trial needs 4096 CPU on one node (the largest")
    assert files_under(tmp_path) == {"sweep.yaml", "t.png"}


def test_a_study_phase_bigger_than_the_local_ray_is_refused_before_any_phase_runs(
    picbreeder_dir, tmp_path, capsys, monkeypatch
):
    spec = {"name": "s", "phases": [{"name": "a", "base": GIVEN}, {"name": "b", "base": GIVEN, "cpus": 4096}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    assert main(["study", str(path)]) == 2  # the error caught, as a FerlabError
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("ferlab: error: phase b: a trial needs 4096 CPU on one node")
    assert files_under(tmp_path) == {"study.yaml"}


def test_work_a_cluster_cannot_hold_yet_is_a_warning_there_and_refused_on_a_local_ray(monkeypatch, capsys):
    """On a cluster the autoscaler may still add the node (infra/ray-cluster.yaml starts with none)."""
    import ray

    from ferlab.config import ConfigError
    from ferlab.workers.cluster import check_fits

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}}, {"Alive": False, "Resources": {"CPU": 64.0}}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    check_fits({"CPU": 4, "GPU": 1}, "a trial", None)
    with pytest.raises(ConfigError, match=r"^a trial needs 8 CPU on one node \(the largest has 4\)$"):
        check_fits({"CPU": 8, "GPU": 0}, "a trial", None)
    with pytest.raises(ConfigError, match=r"^islands: 2 islands need 2 GPU in all \(the Ray has 1\)$"):
        check_fits({"CPU": 1, "GPU": 1}, "islands: 2 islands", None, count=2)
    check_fits({"CPU": 8, "GPU": 0}, "a trial", "10.0.0.1:6379")
    assert capsys.readouterr().err == (
        "ferlab: warning: a trial needs 8 CPU on one node (the largest has 4); it waits until the cluster has them\n"
    )


def test_a_run_this_machine_cannot_hold_is_one_line_not_a_jax_traceback(tmp_path, capsys, monkeypatch):
    """Within the caps (raised here) a population can still be past this machine's memory: XLA's
    RESOURCE_EXHAUSTED becomes one line and exit 1 (a JAX traceback before)."""
    monkeypatch.setenv("FERLAB_MAX_POPULATION", str(1 << 30))
    target = grey_png(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**run_config(str(target)), "regime": "es", "generations": 2,
                                      "settings": {"population_size": 1 << 30}}))  # fmt: skip
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().split("\n")[-1].split("\r")[-1].strip()  # after the progress bar's last redraw
    assert last.startswith("ferlab: error: out of memory (RESOURCE_EXHAUSTED") and "ask for less" in last
    assert not (tmp_path / "out").exists()  # no config.yaml left to refuse the corrected run below
    smaller = yaml.safe_load(config.read_text())
    smaller["settings"]["population_size"] = 4
    config.write_text(yaml.safe_dump(smaller))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    monkeypatch.setenv("FERLAB_MAX_POPULATION", str(1 << 31))  # past what JAX can index: refused as set
    assert main(["run", str(config), "--out", str(tmp_path / "out2")]) == 2
    one_line_error(capsys.readouterr().err, "FERLAB_MAX_POPULATION must be at most 2147483647 (JAX indexes")
