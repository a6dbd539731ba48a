"""The decisive experiment's protocol: the pilot never reads the test split, every cell is valid."""

from __future__ import annotations

from pathlib import Path

from scns.train.grid import cell_config
from scns.train.protocols import PAPER_LITE_ARMS, PILOT_ARMS, decisive, paper_lite
from scns.train.validate import validate_config


def test_teacher_and_pilot_hold_out_the_same_images_and_evaluate_on_them() -> None:
    cells = decisive()
    teacher, pilot = cells[0], cells[1:]
    assert [c.method for c in pilot] == list(PILOT_ARMS)
    for cell in cells:
        config = cell_config(cell, Path("/tmp/runs"), {"data.data_dir": "/data"})
        validate_config(config, check_teacher=False)
        assert (config.data.val_size, config.data.val_seed, config.data.eval_split) == (5000, 0, "val")
    assert all(c.depends_on == teacher.name for c in pilot)


def test_paper_lite_runs_every_arm_for_three_seeds_on_the_full_data() -> None:
    cells = paper_lite()
    students = cells[1:]
    assert len(students) == 3 * (1 + len(PAPER_LITE_ARMS))
    for cell in cells:
        config = cell_config(cell, Path("/tmp/runs"), {"data.data_dir": "/data"})
        validate_config(config, check_teacher=False)
        assert config.data.val_size == 0 and config.data.eval_split == "test"
        assert config.train.epochs == 240
