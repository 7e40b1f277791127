"""The typed config loader: unknown keys, bad values, overrides, serialisation."""

from typing import Literal

import pytest

from catalog.config import Config, ConfigError, apply_overrides, load_config


class Shard(Config):
    samples_per_shard: int = 10_000
    shuffle: bool = True


class Job(Config):
    dataset: str
    root: str = "./data"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    shard: Shard = Shard()


def write(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return path


def test_loads_and_serialises(tmp_path):
    cfg = load_config(Job, write(tmp_path, "dataset: demo\nshard:\n  samples_per_shard: 500\n"))
    assert cfg.shard.samples_per_shard == 500
    assert cfg.to_dict() == {
        "dataset": "demo",
        "root": "./data",
        "precision": "fp32",
        "shard": {"samples_per_shard": 500, "shuffle": True},
    }
    assert Job.model_validate(cfg.to_dict()) == cfg


def test_misspelled_key_names_file_key_and_allowed_keys(tmp_path):
    path = write(tmp_path, "dataset: demo\nshard:\n  samples_per_shrad: 500\n")
    with pytest.raises(ConfigError) as err:
        load_config(Job, path)
    msg = str(err.value)
    assert str(path) in msg
    assert "'shard.samples_per_shrad': unknown key" in msg
    assert "allowed keys: samples_per_shard, shuffle" in msg


def test_wrong_type_names_file_and_key(tmp_path):
    path = write(tmp_path, "dataset: demo\nshard:\n  samples_per_shard: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(Job, path)
    assert str(path) in str(err.value)
    assert "'shard.samples_per_shard'" in str(err.value)
    assert "'lots'" in str(err.value)


def test_bad_choice_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(Job, write(tmp_path, "dataset: demo\nprecision: fp8\n"))
    assert "'precision'" in str(err.value)
    assert "allowed values: fp32, bf16, fp16" in str(err.value)


def test_missing_required_key(tmp_path):
    with pytest.raises(ConfigError, match="'dataset': required key is missing"):
        load_config(Job, write(tmp_path, "root: /tmp\n"))


def test_set_overrides_parse_yaml_scalars(tmp_path):
    path = write(tmp_path, "dataset: demo\n")
    cfg = load_config(Job, path, ["shard.samples_per_shard=64", "shard.shuffle=false", "root=s3://b/p"])
    assert cfg.shard.samples_per_shard == 64
    assert cfg.shard.shuffle is False
    assert cfg.root == "s3://b/p"


def test_override_of_unknown_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'shard.size': unknown key"):
        load_config(Job, write(tmp_path, "dataset: demo\n"), ["shard.size=3"])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["shard.samples_per_shard"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"root": "x"}, ["root.sub=1"])


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Job, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Job, write(tmp_path, "- a\n- b\n"))
