"""One resolution step: every run's config is validated and its setting-dependent defaults are
filled in before the run starts, so config.yaml records the values the run used."""

from __future__ import annotations

import pytest
import yaml
from digits_runs import digits_config

from scns.config import Config, ConfigError
from scns.objectives.build import DISTILL_DEFAULTS, SUPERVISED_DEFAULTS
from scns.objectives.distill import DEFAULT_WEIGHTS
from scns.rundir import RunDir
from scns.train.engine import Trainer
from scns.train.validate import fill_defaults, resolve_config

SUPERVISED_UNIFORM = {"contrast.sampler": "uniform", "contrast.negatives": 64}


def test_supervised_defaults_filled_from_the_setting_table():
    config = resolve_config(Config().with_overrides(SUPERVISED_UNIFORM))
    c = config.contrast
    assert (c.weight, c.loss, c.positive) == (
        SUPERVISED_DEFAULTS["weight"],
        SUPERVISED_DEFAULTS["loss"],
        SUPERVISED_DEFAULTS["positive"],
    )
    # values the user gave are kept; resolving twice changes nothing
    given = resolve_config(Config().with_overrides({**SUPERVISED_UNIFORM, "contrast.weight": 0.25}))
    assert given.contrast.weight == 0.25
    assert resolve_config(config) == config


def test_options_that_do_not_apply_stay_none():
    # no sampler in the supervised setting: no contrastive term, nothing to fill
    config = resolve_config(Config())
    assert (config.contrast.weight, config.contrast.loss, config.contrast.positive) == (None, None, None)
    assert (config.distill.ce_weight, config.distill.kd_weight) == (None, None)


@pytest.mark.parametrize("method", list(DEFAULT_WEIGHTS))
def test_distillation_defaults_filled_per_method(method):
    config = fill_defaults(Config().with_overrides({"train.objective": "distill", "distill.method": method}))
    ce, kd, crd = DEFAULT_WEIGHTS[method]
    assert (config.distill.ce_weight, config.distill.kd_weight) == (ce, kd)
    if crd:
        c = config.contrast
        assert (c.weight, c.loss, c.positive, c.sampler) == (
            crd,
            DISTILL_DEFAULTS["loss"],
            DISTILL_DEFAULTS["positive"],
            "uniform",
        )
    else:
        assert config.contrast.weight is None


def test_logged_share_filled_only_when_a_share_is_logged():
    class_topk = {"contrast.sampler": "class_topk", "contrast.similarity": "hierarchy", "contrast.top_k": 3}
    assert fill_defaults(Config().with_overrides(class_topk)).contrast.share_top_k == 3
    sample_topk = {"contrast.sampler": "sample_topk", "contrast.similarity": "hierarchy"}
    assert fill_defaults(Config().with_overrides(sample_topk)).contrast.share_top_k is None


def test_a_run_records_the_values_it_ran_with(tmp_path):
    trainer = Trainer.create(digits_config(**{"train.epochs": 1, **SUPERVISED_UNIFORM}), tmp_path / "run")
    trainer.fit()
    saved = yaml.safe_load(RunDir(tmp_path / "run").config.read_text())["contrast"]
    assert (saved["weight"], saved["loss"], saved["positive"]) == (0.5, "infonce", "class")


def test_trainer_create_validates(tmp_path):
    # the Python entry point cannot skip the checks the CLI runs
    with pytest.raises(ConfigError, match="contrast.negatives must be > 0"):
        Trainer.create(digits_config(**{**SUPERVISED_UNIFORM, "contrast.negatives": 0}), tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_resume_of_a_run_saved_before_defaults_were_filled(tmp_path):
    run_dir = tmp_path / "run"
    Trainer.create(digits_config(**{"train.epochs": 1, **SUPERVISED_UNIFORM}), run_dir).fit()
    # rewrite config.yaml as runs wrote it before this change: the setting's defaults left null
    files = RunDir(run_dir)
    data = yaml.safe_load(files.config.read_text())
    data["contrast"].update(weight=None, loss=None, positive=None)
    files.config.write_text(yaml.safe_dump(data, sort_keys=False))
    trainer = Trainer.resume(run_dir, ["train.epochs=2"])
    assert trainer.resume_info.changes == {"train.epochs": (1, 2)}
    assert trainer.config.contrast.weight == SUPERVISED_DEFAULTS["weight"]
    trainer.release()
