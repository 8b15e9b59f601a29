import subprocess
import sys
import time

import pytest
import yaml

from desktop.config import CONFIG_VERSION, MAX_CONFIG_BYTES, ConfigError, dump_changes, load_config


def test_defaults_match_the_rl_swarm_training_constants():
    cfg = load_config()
    t = cfg.training
    assert (t.num_generations, t.max_new_tokens, t.epsilon, t.epsilon_high, t.beta, t.seed) == (2, 256, 0.2, 0.28, 0.0, 42)
    assert t.learning_rate == 1e-6
    assert t.temperature == 1.0
    assert cfg.profile == "local"
    assert cfg.model.dtype == "float32"


def test_user_file_overrides_only_what_it_names(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("training:\n  max_new_tokens: 32\nmodel:\n  pool: tiny\n")
    cfg = load_config(f)
    assert cfg.training.max_new_tokens == 32
    assert cfg.model.pool == "tiny"
    assert cfg.training.num_generations == 2


def test_command_line_overrides_win(tmp_path):
    cfg = load_config(None, {"model.pool": "tiny", "model.name": None})
    assert cfg.model.pool == "tiny"
    assert cfg.model.name is None


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
    assert field in str(err.value)
    assert str(f) in str(err.value)


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
    assert "training.max_new_tokens" in proc.stderr
    assert str(f) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert f.read_bytes() == before


def test_oversized_file_is_refused_without_parsing_it(tmp_path):
    f = tmp_path / "huge.yaml"
    f.write_text("# a comment line that YAML would happily skip\n" * 120_000)  # ~5.5 MB, valid YAML
    before = f.stat()
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert time.monotonic() - started < 1
    assert str(f) in str(err.value)
    assert "1 MiB limit" in str(err.value)
    assert f.stat().st_size == before.st_size
    assert f.stat().st_mtime_ns == before.st_mtime_ns
    f.write_text("training:\n  seed: 7\n" + "#" * (MAX_CONFIG_BYTES - 40) + "\n")  # just under: fine
    assert load_config(f).training.seed == 7


def test_many_errors_print_the_first_twenty_then_a_count(tmp_path):
    f = tmp_path / "typos.yaml"
    f.write_text("".join(f"setting_{i}: 1\n" for i in range(500)))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    lines = str(err.value).splitlines()
    assert len(lines) == 21
    assert all(line.startswith(f"{f}: setting_") and "unknown setting" in line for line in lines[:20])
    assert lines[-1] == f"{f}: … and 480 more errors"


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def _node(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "desktop.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.mark.slow
def test_node_refuses_a_config_yaml_that_is_a_directory(tmp_path):
    data = tmp_path / "d"
    (data / "config" / "config.yaml").mkdir(parents=True)
    proc = _node(["node", "--pool", "tiny", "--rounds", "1", "--json-events", "--data-dir", str(data)],
                 tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"{data / 'config' / 'config.yaml'}: is a directory" in proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert not (data / "identity").exists()  # the node never started
    # --config DIR: the same
    proc = _node(["node", "--config", str(tmp_path), "--data-dir", str(tmp_path / "e")], tmp_path)
    assert proc.returncode == 2
    assert f"{tmp_path}: is a directory" in proc.stderr
    assert not (tmp_path / "e" / "identity").exists()


def test_services_and_chain_status_refuse_a_config_directory(tmp_path, capsys):
    from desktop.cli import main

    data = tmp_path / "d"
    (data / "config" / "config.yaml").mkdir(parents=True)
    assert main(["chain", "status", "--data-dir", str(data)]) == 2
    assert "is a directory" in capsys.readouterr().err
    proc = _node(["services", "--data-dir", str(data)], tmp_path)
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr
    assert not (data / "chain").exists()  # nothing was started


def test_a_version_1_file_loses_only_the_keys_nothing_read(tmp_path):
    f = tmp_path / "old.yaml"
    text = "game:\n  round_source: chain\n  stages: 2\nports:\n  dht: 4001\ntraining:\n  seed: 7\n"
    f.write_text(text)
    cfg = load_config(f)  # validation refuses unknown keys: the upgrade removed them first
    assert (cfg.version, cfg.game.stages, cfg.training.seed) == (CONFIG_VERSION, 2, 7)
    assert f.read_text() == text  # reading never rewrites the file
    saved = yaml.safe_load(dump_changes(cfg))
    assert saved == {"version": CONFIG_VERSION, "game": {"stages": 2}, "training": {"seed": 7}}
    f.write_text(dump_changes(cfg))
    assert load_config(f).model_dump() == cfg.model_dump()  # the upgraded file reads back the same


@pytest.mark.parametrize("version, says", [
    (CONFIG_VERSION + 1, "newer RL Swarm Desktop"), ("two", "whole number"), (0, "whole number"), (True, "whole number"),
])
def test_a_version_this_app_cannot_read_is_refused(tmp_path, version, says):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"version": version, "training": {"seed": 1}}))
    with pytest.raises(ConfigError, match=says) as err:
        load_config(f)
    assert str(f) in str(err.value)


def test_a_removed_key_in_a_current_file_is_still_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"version: {CONFIG_VERSION}\nports:\n  dht: 4001\n")  # upgrades run only for older files
    with pytest.raises(ConfigError, match="ports.dht: unknown setting"):
        load_config(f)
