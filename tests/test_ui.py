"""``ferlab ui``: bad or taken ports are one line and exit 2; the link comes once the server answers;
stopping the command stops the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from ferlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("port", ["70000", "0", "-1", "65536", "http"])
def test_invalid_port_is_one_line_and_nothing_written(tmp_path, capsys, port):
    assert main(["ui", "--store", str(tmp_path / "mlruns"), "--port", port]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port" in err and "Traceback" not in err
    assert not (tmp_path / "mlruns").exists()


def test_taken_port_is_one_line_and_nothing_written(tmp_path, capsys):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        started = time.monotonic()
        assert main(["ui", "--store", str(tmp_path / "mlruns"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert time.monotonic() - started < 5 and not (tmp_path / "mlruns").exists()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow  # an MLflow server start: 10-60 s on 2 loaded cores
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_link_only_once_the_server_answers_and_a_signal_stops_the_server(tmp_path, sig):
    from ferlab.tracking import default_store, experiment

    store = default_store(tmp_path / "mlruns")
    exp_id = experiment(store, "demo")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferlab.cli", "ui", "--store", str(tmp_path / "mlruns"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        link = f"http://127.0.0.1:{port}/#/experiments/{exp_id}/runs?workflowType=machine_learning"  # not GenAI
        assert lines[1].strip() == f"demo: {link}", lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            assert reply.status == 200  # already answering when the link was printed
        server = psutil.Process(proc.pid).children(recursive=True)
        assert server and listening(port)
        proc.send_signal(sig)
        assert proc.wait(30) == 128 + sig
        _, alive = psutil.wait_procs(server, timeout=10)
        assert not alive and not listening(port)
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_study_names_the_ui_command_that_opens_the_store_its_runs_went_to(tmp_path):
    """The embedded default: ``ferlab ui``; runs sent to another folder's mlflow.db: ``ferlab ui --store``
    that folder (plain ``ferlab ui`` would open ./mlruns, which holds none of them); any other store:
    MLflow's own command on its URI; a server: its address."""
    from ferlab.cli import _ui_hint
    from ferlab.tracking import Store, default_store, resolve_store

    assert _ui_hint(default_store(tmp_path / "mlruns"), None).startswith("ferlab ui   (or: mlflow ui")
    elsewhere = tmp_path / "my runs"
    hint = _ui_hint(resolve_store(f"sqlite:///{elsewhere}/mlflow.db"), f"sqlite:///{elsewhere}/mlflow.db")
    assert hint.startswith(f"ferlab ui --store '{elsewhere}'   (or: mlflow ui --backend-store-uri sqlite:///")
    other = f"sqlite:///{tmp_path}/runs.db"
    assert _ui_hint(resolve_store(other), other) == f"mlflow ui --backend-store-uri {other}"
    assert _ui_hint(Store("http://127.0.0.1:5999"), "http://127.0.0.1:5999") == "http://127.0.0.1:5999"


def test_a_store_folder_without_a_store_is_one_line_and_nothing_written(tmp_path, capsys):
    """A mistyped ``--store`` was made and served as an empty store (no runs, no word why); a folder
    with no mlflow.db is refused before any server starts, and nothing is made."""
    missing = tmp_path / "mlrnus"
    assert main(["ui", "--store", str(missing), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--store '{missing}' holds no MLflow store (no mlflow.db)" in err
    assert not missing.exists()
    (tmp_path / "empty").mkdir()
    assert main(["ui", "--store", str(tmp_path / "empty"), "--port", str(free_port())]) == 2
    assert "holds no MLflow store" in capsys.readouterr().err
    assert list((tmp_path / "empty").iterdir()) == []
