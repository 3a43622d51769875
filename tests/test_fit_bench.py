"""bench/fit.py's command line: per-regime stopping levels, and bad input refused before any run."""

import pytest

from helpers import bench_module


def test_stop_levels_one_for_all_or_per_regime():
    stop_levels = bench_module("fit").stop_levels
    assert stop_levels("0.02", ["sgd", "es"]) == {"sgd": 0.02, "es": 0.02}
    assert stop_levels("sgd=0.002", ["sgd", "es"]) == {"sgd": 0.002, "es": 0.0}


@pytest.mark.parametrize("text", ["nan", "-1", "sgd=2", "sgd=x", "neat=0.1", "sgd=0.1,oops"])
def test_stop_levels_refuse_bad_values(text):
    with pytest.raises(ValueError, match="--stop-at"):
        bench_module("fit").stop_levels(text, ["sgd", "es"])


BAD = [
    ["--stop-at", "nan"],
    ["--jobs", "0"],
    ["--jobs", "4096"],
    ["--regimes", "sgd,nope"],
    ["--regimes", "neat", "--targets", "no_such_image"],
    ["--seeds", "0"],
]


@pytest.mark.parametrize("args", BAD)
def test_bad_arguments_exit_2_before_any_run(args, capsys, tmp_path):
    out = tmp_path / "fit.png"
    with pytest.raises(SystemExit) as e:
        bench_module("fit").main([*args, "--out", str(out)])
    assert e.value.code == 2
    assert "regime" not in capsys.readouterr().out  # no table was started
    assert not out.exists()
