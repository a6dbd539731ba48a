"""Write ``src/scns/data/digits.npz``: scikit-learn's bundled 8x8 digits and scns's fixed split.

The package ships this small array file so the offline default dataset needs no scikit-learn at
run time. Run once (with scikit-learn installed) from the repository root::

    python tools/make_digits_npz.py            # writes src/scns/data/digits.npz, prints its checksum

The file holds ``pixels`` (uint8 [1797, 8, 8], values 0..16), ``target`` (uint8 [1797]) and ``train`` /
``test`` (int16 sample ids of the 1,437 / 360 stratified split, ``train_test_split(test_size=360,
stratify=target, random_state=0)``, sorted). ``scns.data.digits.ARRAYS_SHA256`` is the sha256 of the
arrays (see ``arrays_sha256``); tests/data/test_datasets.py rebuilds them from scikit-learn and
checks both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TEST_SIZE = 360
SPLIT_SEED = 0
OUT = Path(__file__).resolve().parents[1] / "src" / "scns" / "data" / "digits.npz"


def digits_arrays() -> dict[str, np.ndarray]:
    """The arrays the package ships, computed from scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    pixels = bunch.images
    if not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 16:
        raise SystemExit(
            "scikit-learn's digits are no longer integers in 0..16; the packed format needs them"
        )
    target = bunch.target
    train, test = train_test_split(
        np.arange(len(target)), test_size=TEST_SIZE, stratify=target, random_state=SPLIT_SEED
    )
    return {
        "pixels": pixels.astype(np.uint8),
        "target": target.astype(np.uint8),
        "train": np.sort(train).astype(np.int16),
        "test": np.sort(test).astype(np.int16),
    }


def main() -> int:
    sys.path.insert(0, str(OUT.parents[2]))
    from scns.data.digits import arrays_sha256

    arrays = digits_arrays()
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); ARRAYS_SHA256 = {arrays_sha256(arrays)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
