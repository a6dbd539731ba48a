"""Config: defaults, YAML round trip, dotted overrides and type checking."""

from __future__ import annotations

import pytest

from scns.config import Config, ConfigError


def test_yaml_round_trip_preserves_every_value(tmp_path):
    config = Config().with_overrides(
        ["optim.lr=0.1", "optim.milestones=[5, 8]", "data.dataset=cifar100", "train.name=x"]
    )
    path = tmp_path / "c.yaml"
    config.save(path)
    assert Config.load(path) == config


def test_dotted_overrides_parse_yaml_scalars():
    config = Config().with_overrides(
        ["optim.lr=1e-3", "optim.nesterov=true", "data.data_dir=null", "train.epochs=3"]
    )
    assert config.optim.lr == pytest.approx(1e-3)
    assert config.optim.nesterov is True
    assert config.data.data_dir is None
    assert config.train.epochs == 3


def test_int_given_for_float_is_accepted_and_tuple_coerced():
    config = Config().with_overrides({"optim.lr": 1, "optim.milestones": [3]})
    assert isinstance(config.optim.lr, float) and config.optim.milestones == (3,)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'"),
        ("nosection.lr=1", "unknown config key 'nosection'"),
        ("train.epochs=2.5", "'train.epochs' expects int"),
        ("optim.nesterov=3", "'optim.nesterov' expects bool"),
        ("optim=3", "is a section"),
        ("optim.lr", "must look like section.key=value"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        Config().with_overrides([override])


def test_from_dict_rejects_unknown_keys_and_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="Valid keys here"):
        Config.from_dict({"optim": {"learning_rate": 0.1}})
    with pytest.raises(ConfigError, match="not found"):
        Config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        Config.load(bad)


def test_extends_merges_sections_over_the_base(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "optim:\n  lr: 0.05\n  milestones: [150, 180, 210]\ntrain:\n  epochs: 240\n"
    )
    (tmp_path / "quick.yaml").write_text("extends: base.yaml\ntrain:\n  epochs: 3\n")
    config = Config.load(tmp_path / "quick.yaml")
    assert config.train.epochs == 3 and config.optim.lr == 0.05 and config.optim.milestones == (150, 180, 210)
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        Config.load(tmp_path / "loop.yaml")


def test_extends_a_list_merges_the_bases_in_order_then_the_file(tmp_path):
    (tmp_path / "schedule.yaml").write_text("optim:\n  lr: 0.05\n  momentum: 0.8\ntrain:\n  epochs: 240\n")
    (tmp_path / "method.yaml").write_text(
        "optim:\n  momentum: 0.9\ncontrast:\n  sampler: class_topk\n  top_k: 10\n"
    )
    (tmp_path / "preset.yaml").write_text("extends: [schedule.yaml, method.yaml]\ncontrast:\n  top_k: 5\n")
    config = Config.load(tmp_path / "preset.yaml")
    assert (config.optim.lr, config.optim.momentum, config.train.epochs) == (
        0.05,
        0.9,
        240,
    )  # later base wins
    assert (config.contrast.sampler, config.contrast.top_k) == ("class_topk", 5)  # the file wins
    (tmp_path / "bad.yaml").write_text("extends: {schedule: 1}\n")
    with pytest.raises(ConfigError, match="extends must be a file name or a list"):
        Config.load(tmp_path / "bad.yaml")
    (tmp_path / "a.yaml").write_text("extends: [schedule.yaml, b.yaml]\n")
    (tmp_path / "b.yaml").write_text("extends: [a.yaml]\n")
    with pytest.raises(ConfigError, match="cycle"):
        Config.load(tmp_path / "a.yaml")


def test_a_config_file_is_read_with_a_safe_loader(tmp_path) -> None:
    """The C loader used for speed is libyaml's *safe* one: a Python object tag is refused."""
    path = tmp_path / "evil.yaml"
    path.write_text("train: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(path)


def test_loading_a_saved_config_round_trips_every_field_type(tmp_path) -> None:
    config = Config().with_overrides(
        {
            "optim.lr": 0.2,  # float
            "train.epochs": 3,  # int
            "contrast.mixture": ["uniform:0.5", "class_topk:0.5"],  # list
            "contrast.mixture_ramp": [1, 3],  # tuple
            "contrast.similarity": None,  # optional
            "train.progress": False,  # bool
        }
    )
    config.save(tmp_path / "config.yaml")
    assert Config.load(tmp_path / "config.yaml") == config
    assert Config.load(tmp_path / "config.yaml").contrast.mixture_ramp == config.contrast.mixture_ramp
