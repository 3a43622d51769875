"""The cluster-launcher config passes Ray's own validation and starts the tracking server on the head."""

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[1] / "infra" / "ray-cluster.yaml"


def test_ray_accepts_the_cluster_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load(CONFIG.read_text()))  # fills Ray's defaults, then validates
    validate_config(config)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    assert all(t["resources"].get("GPU", 0) >= 1 for name, t in types.items() if name != config["head_node_type"])
    head = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in head and "--backend-store-uri sqlite:" in head
    assert any("pip install" in c and "ferlab" in c for c in config["setup_commands"])


def test_cluster_config_marks_what_users_fill_in():
    text = CONFIG.read_text()
    assert text.count("FILL IN") >= 4
