"""The ferlab command: render, layerize and info on the shared genomes and nets."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from ferlab.cli import main
from ferlab.config import ConfigError
from ferlab.cppn import load_net


def test_render_writes_the_papers_image(picbreeder_dir, tmp_path):
    out = tmp_path / "skull.png"
    assert main(["render", str(picbreeder_dir / "genomes" / "skull.zip"), "--size", "256", "--out", str(out)]) == 0
    ours = np.asarray(PILImage.open(out).convert("RGB"), np.float32) / 255
    paper = np.asarray(PILImage.open(picbreeder_dir / "renders" / "skull.png").convert("RGB"), np.float32) / 255
    assert ours.shape == (256, 256, 3)
    assert np.abs(ours - paper).mean() < 0.005


def test_render_at_other_sizes_from_a_net(picbreeder_dir, tmp_path):
    out = tmp_path / "b.png"
    assert main(["render", str(picbreeder_dir / "nets" / "sgd_butterfly.npz"), "--size", "48", "--out", str(out)]) == 0
    assert PILImage.open(out).size == (48, 48)


def test_layerize_writes_the_shared_npz(picbreeder_dir, tmp_path):
    out = tmp_path / "skull.npz"
    assert main(["layerize", str(picbreeder_dir / "genomes" / "skull.zip"), "--out", str(out)]) == 0
    ours, paper = load_net(out), load_net(picbreeder_dir / "nets" / "picbreeder_skull.npz")
    assert ours.arch == paper.arch
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ours.kernels, paper.kernels))


def test_info_describes_genomes_and_nets(picbreeder_dir, capsys):
    assert main(["info", str(picbreeder_dir / "genomes" / "cppnx" / "576_Skull.xml")]) == 0
    text = capsys.readouterr().out
    assert "12;cache:15,gaussian:4,identity:2,sin:1" in text
    assert "Mouth open close" in text and "57 (57 enabled)" in text
    assert main(["info", str(picbreeder_dir / "nets" / "sgd_skull.npz")]) == 0
    assert "5478" in capsys.readouterr().out


def test_picbreeder_shortcuts_name_the_papers_and_the_cppnx_genomes(picbreeder_dir, tmp_path, capsys):
    """``picbreeder:NAME`` works wherever a source or target is named: the paper's skull and butterfly,
    and each CPPN-X genome by its file's stem; an unknown name lists the known ones."""
    out = tmp_path / "s.png"
    assert main(["render", "picbreeder:skull", "--size", "16", "--out", str(out)]) == 0
    direct = tmp_path / "d.png"
    assert main(["render", str(picbreeder_dir / "genomes" / "skull.zip"), "--size", "16", "--out", str(direct)]) == 0
    assert out.read_bytes() == direct.read_bytes()
    assert main(["info", "picbreeder:576_Skull"]) == 0
    assert "genome       576_Skull" in capsys.readouterr().out
    assert main(["info", "picbreeder:576_skull"]) == 2
    err = capsys.readouterr().err
    assert "unknown shortcut 'picbreeder:576_skull'" in err and "picbreeder:576_Skull" in err and err.count("\n") == 1
    config = tmp_path / "run.yaml"
    config.write_text("regime: given\nresolution: 8\ntarget: picbreeder:765_PlaneOnRunway\n")
    assert main(["run", str(config), "--out", str(tmp_path / "r")]) == 0


def test_layerize_refuses_a_net_and_render_checks_the_suffix(picbreeder_dir, tmp_path, capsys):
    assert main(["layerize", str(picbreeder_dir / "nets" / "sgd_skull.npz"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "already a dense net" in capsys.readouterr().err
    assert main(["render", str(picbreeder_dir / "genomes" / "skull.zip"), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "--out must name a .png file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_console_script_exits_2_with_one_line_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ferlab.cli", "render", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_into_a_closed_pipe_ends_quietly(picbreeder_dir):
    """``ferlab info X | head -1``: once the reader has gone, ferlab stops with 141 (as a shell reports
    SIGPIPE) and no traceback, here or at the interpreter's last flush."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before anything is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ferlab.cli", "info", str(picbreeder_dir / "nets" / "sgd_skull.npz")],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write)
    assert proc.returncode == 141 and proc.stderr == ""


def test_a_broken_pipe_elsewhere_is_not_taken_for_a_gone_reader(picbreeder_dir, monkeypatch):
    """A pipe or socket other than stdout breaking (a Ray or MLflow connection) is an error to show."""
    import ferlab.cli

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(ferlab.cli, "cmd_info", broken)
    with pytest.raises(BrokenPipeError):
        main(["info", str(picbreeder_dir / "nets" / "sgd_skull.npz")])


def test_without_verbose_the_start_up_notices_of_ray_and_mlflow_are_dropped(monkeypatch):
    """Ray's notice that a new local Ray turned token authentication on and MLflow's lines on
    creating its SQLite tables come from these modules' own loggers; ``_quiet`` silences them
    (and Tune's INFO lines) unless --verbose. A renamed module would make its key a no-op."""
    import logging

    import mlflow.store.db.utils as mlflow_db
    from ray._private.authentication import authentication_token_setup as ray_auth

    from ferlab import cli

    saved = {name: logging.getLogger(name).level for name in cli.QUIET_LOGGERS}
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")  # restored after the test, as _quiet sets only defaults
    monkeypatch.setenv("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        for name in cli.QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        cli._quiet(True)
        assert ray_auth.logger.isEnabledFor(logging.WARNING) and mlflow_db._logger.isEnabledFor(logging.INFO)
        cli._quiet(False)
        assert not ray_auth.logger.isEnabledFor(logging.WARNING)
        assert not mlflow_db._logger.isEnabledFor(logging.INFO)
        assert not logging.getLogger("ray.tune").isEnabledFor(logging.INFO)
        assert ray_auth.logger.name in cli.QUIET_LOGGERS and mlflow_db._logger.name in cli.QUIET_LOGGERS
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_a_store_or_output_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    """``ui --store`` and ``study --out`` naming a file (or a folder below one) are refused before any
    server, Ray or MLflow run starts (they were tracebacks: FileExistsError, NotADirectoryError)."""
    from ferlab.study.run import run_study
    from ferlab.study.spec import Phase, Study
    from ferlab.tracking import default_store

    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["ui", "--store", str(afile / "sub"), "--port", "65431"]) == 2
    assert capsys.readouterr().err.strip() == f"ferlab: error: --store '{afile}/sub' cannot be made: {afile} is a file"
    with pytest.raises(ConfigError, match="the study's output folder .* is a file, not a folder"):
        run_study(Study(name="s", phases=[Phase("p", {"regime": "sgd"})]), default_store(tmp_path / "m"), afile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
