import subprocess
import sys

import pytest

from desktop.config import ConfigError, load_config


def test_defaults_match_the_rl_swarm_training_constants():
    cfg = load_config()
    t = cfg.training
    assert (t.num_generations, t.max_new_tokens, t.epsilon, t.epsilon_high, t.beta, t.seed) == (2, 256, 0.2, 0.28, 0.0, 42)
    assert t.learning_rate == 1e-6 and t.temperature == 1.0
    assert cfg.profile == "local" and cfg.model.dtype == "float32"


def test_user_file_overrides_only_what_it_names(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("training:\n  max_new_tokens: 32\nmodel:\n  pool: tiny\n")
    cfg = load_config(f)
    assert cfg.training.max_new_tokens == 32 and cfg.model.pool == "tiny"
    assert cfg.training.num_generations == 2


def test_command_line_overrides_win(tmp_path):
    cfg = load_config(None, {"model.pool": "tiny", "model.name": None})
    assert cfg.model.pool == "tiny" and cfg.model.name is None


@pytest.mark.parametrize("text, field", [
    ("training:\n  num_generations: 1\n", "training.num_generations"),
    ("training:\n  learning_rat: 0.1\n", "training.learning_rat"),
    ("model:\n  device: gpu7\n", "model.device"),
    ("profile: mainnet\n", "profile"),
])
def test_invalid_values_name_the_field_and_the_file(tmp_path, text, field):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert field in str(err.value) and str(f) in str(err.value)


def test_broken_yaml_and_missing_file(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("training: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_cli_reports_bad_config_without_traceback(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("training:\n  max_new_tokens: -5\n")
    before = f.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "desktop.cli", "node", "--config", str(f),
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "training.max_new_tokens" in proc.stderr and str(f) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert f.read_bytes() == before
