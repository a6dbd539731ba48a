"""``scns.rundir.file_slug``: option strings made safe as file names."""

from __future__ import annotations

import pytest

from scns.rundir import file_slug


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("supervised-digits:size=16-resnet8-2ep", "supervised-digits-size-16-resnet8-2ep"),
        ("folder:size=96,val=0.2", "folder-size-96-val-0.2"),
        ("SCNS: uniform + class_topk (bank)", "SCNS--uniform---class_topk--bank"),
        ("a/b\\c", "a-b-c"),
        ("café", "caf"),
    ],
)
def test_file_slug_keeps_letters_digits_dots_underscores_and_dashes_the_rest(
    text: str, expected: str
) -> None:
    assert file_slug(text) == expected
