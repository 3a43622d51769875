"""The cluster-launcher config passes Ray's own validation and sets up what a sweep on it needs;
``infra/submit`` hands the command to ``ray job submit`` with the cluster's flags."""

import os
import subprocess
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[1] / "infra"
CONFIG = INFRA / "ray-cluster.yaml"


def prepared() -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load(CONFIG.read_text()))  # fills Ray's defaults, then validates
    validate_config(config)
    return config


def test_ray_accepts_the_cluster_config():
    config = prepared()
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    assert all(t["resources"].get("GPU", 0) >= 1 for name, t in types.items() if name != config["head_node_type"])


def test_every_node_gets_python_3_11_ferlab_the_data_and_shared_storage():
    config = prepared()
    setup = "\n".join(config["setup_commands"])
    assert "python install 3.11" in setup and "venv --python 3.11" in setup
    assert "pip install" in setup and "-e ~/ferlab" in setup
    mounts = config["file_mounts"]
    assert mounts["~/data/picbreeder"] == "../shared/data/picbreeder"
    assert "FERLAB_PICBREEDER_DATA=$HOME/data/picbreeder" in setup
    assert "FERLAB_STORAGE=s3://" in setup  # Tune checkpoints where every node can reach them
    for node in config["available_node_types"].values():
        assert node["node_config"]["IamInstanceProfile"]["Name"]


def test_head_serves_mlflow_from_postgresql():
    config = prepared()
    head_setup = "\n".join(config["head_setup_commands"])
    assert "install -y -qq postgresql" in head_setup and "createdb -O mlflow mlflow" in head_setup
    assert "psycopg2" in head_setup
    head = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in head and "--backend-store-uri postgresql://" in head
    assert "--dashboard-host=127.0.0.1" in head


def test_cluster_config_marks_what_users_fill_in():
    text = CONFIG.read_text()
    assert text.count("FILL IN") >= 4


def test_submit_hands_the_command_to_ray_job_submit(tmp_path):
    """``infra/submit`` with a stand-in ``ray`` and ``hostname`` that print what they were given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ray").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    (bin_dir / "hostname").write_text("#!/bin/sh\necho 10.0.0.7 172.17.0.1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FERLAB_STORAGE": "s3://b/tune"}
    out = subprocess.run(
        [str(INFRA / "submit"), "sweep", "my spec.yaml", "--resume"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[:5] == ["job", "submit", "--address", "http://127.0.0.1:8265", "--no-wait"]
    assert out[5:8] == ["--", "bash", "-c"]
    assert out[8] == (
        'cd "$HOME/ferlab" && exec ferlab sweep my\\ spec.yaml --resume --address auto '
        "--tracking-uri http://10.0.0.7:5000 --storage s3://b/tune "
    )
    env.pop("FERLAB_STORAGE")
    missing = subprocess.run(
        [str(INFRA / "submit"), "sweep", "x.yaml"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode != 0 and "FERLAB_STORAGE is not set" in missing.stderr
