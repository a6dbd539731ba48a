"""Batched crop/flip/normalise against NumPy references and seeded statistical checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scns.data import get_spec
from scns.data.augment import BatchTransform, crop_flip, normalize, random_crop_flip, sample_crop_flip


def _reference_crop_flip(
    x: np.ndarray, pad: int, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray
) -> np.ndarray:
    """Per-image loop over [B, H, W, C]: zero-pad, slice the window, mirror left-right if flipped."""
    b, h, w, _ = x.shape
    out = np.empty_like(x)
    for i in range(b):
        padded = np.pad(x[i], ((pad, pad), (pad, pad), (0, 0)))
        window = padded[dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = window[:, ::-1] if flip[i] else window
    return out


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_crop_flip_uint8_matches_loop_reference(pad: int) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (12, 7, 9, 3), dtype=torch.uint8, generator=gen)  # non-square on purpose
    dy = torch.randint(0, 2 * pad + 1, (12,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (12,), generator=gen)
    flip = torch.arange(12) % 3 == 0
    out = crop_flip(x, pad, dy, dx, flip)
    assert out.shape == x.shape and out.dtype == torch.uint8
    expected = _reference_crop_flip(x.numpy(), pad, dy.numpy(), dx.numpy(), flip.numpy())
    np.testing.assert_array_equal(out.numpy(), expected)


def test_crop_flip_float_nchw_matches_reference() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 3, 8, 8, generator=gen)
    dy, dx, flip = (
        torch.tensor([0, 8, 4, 2, 5, 8]),
        torch.tensor([8, 0, 4, 7, 1, 8]),
        torch.tensor([1, 0, 1, 0, 1, 1]).bool(),
    )
    out = crop_flip(x, 4, dy, dx, flip)
    assert out.shape == x.shape
    expected = _reference_crop_flip(x.permute(0, 2, 3, 1).numpy(), 4, dy.numpy(), dx.numpy(), flip.numpy())
    np.testing.assert_array_equal(out.permute(0, 2, 3, 1).numpy(), expected)


def test_centre_offset_and_flip_is_exact_mirror() -> None:
    x = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    centre = torch.full((4,), 4)
    assert torch.equal(crop_flip(x, 4, centre, centre, torch.zeros(4, dtype=torch.bool)), x)
    assert torch.equal(crop_flip(x, 4, centre, centre, torch.ones(4, dtype=torch.bool)), x.flip(2))


def test_extreme_offsets_shift_in_zeros() -> None:
    x = torch.full((1, 8, 8, 3), 200, dtype=torch.uint8)
    out = crop_flip(x, 2, torch.tensor([0]), torch.tensor([4]), torch.tensor([False]))
    # dy = 0: the top 2 rows come from the padding; dx = 2 * pad: the right 2 columns do
    assert (out[0, :2] == 0).all() and (out[0, :, 6:] == 0).all() and (out[0, 2:, :6] == 200).all()


def test_random_crop_flip_is_crop_flip_of_drawn_parameters() -> None:
    x = torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8)
    out = random_crop_flip(x, 4, torch.Generator().manual_seed(5))
    dy, dx, flip = sample_crop_flip(16, 4, torch.Generator().manual_seed(5))
    assert torch.equal(out, crop_flip(x, 4, dy, dx, flip))


def test_offsets_within_bounds_and_uniform() -> None:
    # 20,000 draws: each of the 9 offsets has frequency 1/9 +- 0.0022 (1 sd); tolerance 0.015 (~7 sd)
    dy, dx, _ = sample_crop_flip(20_000, 4, torch.Generator().manual_seed(0))
    for offsets in (dy, dx):
        assert offsets.min() == 0 and offsets.max() == 8
        freq = torch.bincount(offsets, minlength=9).double() / offsets.numel()
        assert torch.allclose(freq, torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.015)


def test_offsets_read_back_from_position_coded_images() -> None:
    """Each output is the window of the padded image at one offset in [0, 2 * pad], maybe mirrored."""
    b, h, w, pad = 64, 16, 16, 4
    rows = torch.arange(1, h + 1).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(1, w + 1).view(1, 1, w).expand(b, h, w)
    x = torch.stack([rows, cols, torch.ones_like(rows)], dim=-1).to(torch.uint8)  # pixel = (row+1, col+1, 1)
    out = random_crop_flip(x, pad, torch.Generator().manual_seed(3)).long()
    o_row = torch.arange(h).view(h, 1).expand(h, w)
    o_col = torch.arange(w).view(1, w).expand(h, w)
    for i in range(b):
        inside = out[i, :, :, 2] == 1
        assert inside.any() and (out[i][~inside] == 0).all()  # outside the image: zero padding only
        # inside pixel at output (o, j) holds original row dy + o - pad (+1), col dx + j' - pad (+1)
        dy = (out[i, :, :, 0] - 1 - o_row + pad)[inside].unique()
        dx_plain = (out[i, :, :, 1] - 1 - o_col + pad)[inside].unique()
        dx_flip = (out[i, :, :, 1] - 1 - (w - 1 - o_col) + pad)[inside].unique()
        assert dy.numel() == 1 and 0 <= dy.item() <= 2 * pad
        dx = dx_plain if dx_plain.numel() == 1 else dx_flip
        assert dx.numel() == 1 and 0 <= dx.item() <= 2 * pad


def test_flip_rate_is_one_half() -> None:
    # 20,000 Bernoulli(1/2) draws: sd 0.0035; tolerance 0.02 (~5.7 sd)
    _, _, flip = sample_crop_flip(20_000, 4, torch.Generator().manual_seed(123))
    assert abs(flip.double().mean().item() - 0.5) < 0.02


def test_normalize_closed_form_and_layout() -> None:
    x = torch.randint(0, 256, (5, 6, 7, 3), dtype=torch.uint8)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = normalize(x, mean, std)
    assert out.shape == (5, 3, 6, 7) and out.dtype == torch.float32 and out.is_contiguous()
    ref = (
        x.permute(0, 3, 1, 2).double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    ) / torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=0)
    cl = normalize(x, mean, std, channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(cl, out)


def test_normalize_rejects_float_input() -> None:
    with pytest.raises(ValueError, match=r"uint8 \[B, H, W, C\]"):
        normalize(torch.zeros(2, 3, 4, 4), (0.5,) * 3, (0.5,) * 3)


def test_batch_transform_train_and_eval() -> None:
    spec = get_spec("cifar10")
    x = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    evaluate = BatchTransform.from_spec(spec, train=False)
    torch.testing.assert_close(evaluate(x), normalize(x, spec.mean, spec.std))
    train = BatchTransform.from_spec(spec, train=True)
    assert train.pad == 4
    out = train(x, torch.Generator().manual_seed(9))
    dy, dx, flip = sample_crop_flip(8, 4, torch.Generator().manual_seed(9))
    torch.testing.assert_close(out, normalize(crop_flip(x, 4, dy, dx, flip), spec.mean, spec.std))
    assert BatchTransform.from_spec(get_spec("tiny_imagenet"), train=True).pad == 8


def test_batch_transform_rejects_bad_stats() -> None:
    with pytest.raises(ValueError, match="std > 0"):
        BatchTransform((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))


def test_crops_without_flip_never_mirror_and_keep_the_same_crops() -> None:
    from scns.data.augment import random_crop_flip, sample_crop_flip

    x = torch.randint(0, 255, (16, 8, 8, 3), dtype=torch.uint8)
    flipped = random_crop_flip(x, 2, torch.Generator().manual_seed(3))
    plain = random_crop_flip(x, 2, torch.Generator().manual_seed(3), flip=False)
    _, _, mirror = sample_crop_flip(16, 2, torch.Generator().manual_seed(3), x.device)
    assert mirror.any() and (~mirror).any()
    # where the draw said "mirror", the flip=False crop is the flipped crop mirrored back
    assert torch.equal(plain[~mirror], flipped[~mirror])
    assert torch.equal(plain[mirror], flipped[mirror].flip(2))


def test_digits_are_not_mirrored() -> None:
    from scns.data import BatchTransform, get_spec

    assert get_spec("digits").hflip is False and get_spec("cifar10").hflip is True
    assert BatchTransform.from_spec(get_spec("digits"), train=True).flip is False
