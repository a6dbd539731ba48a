"""NCE, InfoNCE and KD against plain-loop references and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scns.losses import LOSSES, InfoNCELoss, KDLoss, NCELoss


def _scores(b: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, generator=g, dtype=torch.float64) * 2 - 1, torch.rand(
        b, k, generator=g, dtype=torch.float64
    ) * 2 - 1


def _loop_nce(pos: list[float], neg: list[list[float]], t: float, z: float, n_data: int) -> float:
    """CRD's NCE written out: P = exp(s / T) / Z, Pn = 1 / N."""
    pn, total = 1.0 / n_data, 0.0
    for p_score, row in zip(pos, neg, strict=True):
        k = len(row)
        p0 = math.exp(p_score / t) / z
        total += -math.log(p0 / (p0 + k * pn))
        for s in row:
            pk = math.exp(s / t) / z
            total += -math.log(k * pn / (pk + k * pn))
    return total / len(pos)


def _loop_z(pos: list[float], neg: list[list[float]], t: float, n_data: int) -> float:
    values = [math.exp(s / t) for s in pos] + [math.exp(s / t) for row in neg for s in row]
    return sum(values) / len(values) * n_data


def test_nce_matches_loop_and_freezes_z_after_the_first_batch() -> None:
    t, n_data = 0.1, 1000
    loss = NCELoss(n_data, temperature=t)
    assert torch.isnan(loss.z)
    pos1, neg1 = _scores(4, 7, 0)
    z1 = _loop_z(pos1.tolist(), neg1.tolist(), t, n_data)
    out1 = loss(pos1, neg1)
    assert loss.z.item() == pytest.approx(z1, rel=1e-12)
    assert out1.item() == pytest.approx(_loop_nce(pos1.tolist(), neg1.tolist(), t, z1, n_data), rel=1e-10)
    pos2, neg2 = _scores(3, 5, 1)  # a later batch reuses the frozen Z (and may have another K)
    out2 = loss(pos2, neg2)
    assert loss.z.item() == pytest.approx(z1, rel=1e-12)
    assert out2.item() == pytest.approx(_loop_nce(pos2.tolist(), neg2.tolist(), t, z1, n_data), rel=1e-10)


def test_nce_running_z_is_an_ema() -> None:
    t, n_data, m = 0.2, 500, 0.9
    loss = NCELoss(n_data, temperature=t, z_mode="running", momentum=m)
    pos1, neg1 = _scores(4, 6, 2)
    pos2, neg2 = _scores(4, 6, 3)
    loss(pos1, neg1)
    out = loss(pos2, neg2)
    z = m * _loop_z(pos1.tolist(), neg1.tolist(), t, n_data) + (1 - m) * _loop_z(
        pos2.tolist(), neg2.tolist(), t, n_data
    )
    assert loss.z.item() == pytest.approx(z, rel=1e-12)
    assert out.item() == pytest.approx(_loop_nce(pos2.tolist(), neg2.tolist(), t, z, n_data), rel=1e-10)


@pytest.mark.parametrize("k", [1, 16, 4096])
def test_nce_all_equal_scores_closed_form(k: int) -> None:
    """Equal scores make every P = 1/N = Pn: loss = log(K + 1) + K log((K + 1) / K)."""
    loss = NCELoss(50_000, temperature=0.07)
    out = loss(torch.full((8,), 0.3, dtype=torch.float64), torch.full((8, k), 0.3, dtype=torch.float64))
    assert out.item() == pytest.approx(math.log(k + 1) + k * math.log((k + 1) / k), rel=1e-12)


def test_nce_gradient_and_z_is_a_constant() -> None:
    loss = NCELoss(100, temperature=0.5)
    pos, neg = _scores(3, 4, 4)
    loss(pos, neg)  # fixes Z
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (pos, neg))


def test_nce_z_survives_a_state_dict_round_trip() -> None:
    a = NCELoss(100, temperature=0.5)
    a(*_scores(3, 4, 5))
    b = NCELoss(100, temperature=0.5)
    b.load_state_dict(a.state_dict())
    pos, neg = _scores(3, 4, 6)
    assert b.z.item() == a.z.item() and b(pos, neg).item() == a(pos, neg).item()


def test_nce_loading_a_state_dict_replaces_a_fixed_z() -> None:
    """Once Z is fixed the batch estimate is skipped; a loaded log_z (set, or unset) is honoured."""
    t, n_data = 0.5, 100
    a = NCELoss(n_data, temperature=t)
    a(*_scores(3, 4, 5))
    b = NCELoss(n_data, temperature=t)
    b(*_scores(3, 4, 7))  # b fixed its own Z from another batch
    b.load_state_dict(a.state_dict())
    pos, neg = _scores(3, 4, 6)
    assert b(pos, neg).item() == a(pos, neg).item() and b.z.item() == a.z.item()
    b.load_state_dict(NCELoss(n_data, temperature=t).state_dict())  # an unset Z: estimate it again
    out = b(pos, neg)
    z = _loop_z(pos.tolist(), neg.tolist(), t, n_data)
    assert b.z.item() == pytest.approx(z, rel=1e-12)
    assert out.item() == pytest.approx(_loop_nce(pos.tolist(), neg.tolist(), t, z, n_data), rel=1e-10)


def test_nce_a_nan_first_batch_leaves_z_to_the_next_batch() -> None:
    t, n_data = 0.5, 100
    loss = NCELoss(n_data, temperature=t)
    pos, neg = _scores(3, 4, 8)
    assert torch.isnan(loss(pos, torch.full_like(neg, float("nan"))))
    assert torch.isnan(loss.z)
    loss(pos, neg)
    assert loss.z.item() == pytest.approx(_loop_z(pos.tolist(), neg.tolist(), t, n_data), rel=1e-12)


def test_nce_is_stable_at_extreme_scores() -> None:
    loss = NCELoss(50_000, temperature=0.01)
    out = loss(torch.tensor([1.0, -1.0]), torch.tensor([[-1.0, 1.0], [1.0, 1.0]]))
    assert torch.isfinite(out)


def test_infonce_matches_numpy_reference() -> None:
    t = 0.3
    pos, neg = _scores(5, 9, 7)
    logits = np.concatenate([pos.numpy()[:, None], neg.numpy()], axis=1) / t
    ref = np.mean([np.log(np.exp(row).sum()) - row[0] for row in logits])
    assert InfoNCELoss(t)(pos, neg).item() == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("k", [1, 10, 1000])
def test_infonce_all_equal_scores_closed_form(k: int) -> None:
    out = InfoNCELoss(0.07)(torch.zeros(4, dtype=torch.float64), torch.zeros(4, k, dtype=torch.float64))
    assert out.item() == pytest.approx(math.log(k + 1), rel=1e-12)


def test_kd_matches_numpy_reference() -> None:
    t = 4.0
    g = torch.Generator().manual_seed(8)
    s, te = (
        torch.randn(6, 10, generator=g, dtype=torch.float64),
        torch.randn(6, 10, generator=g, dtype=torch.float64),
    )

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    ps, pt = softmax(s.numpy() / t), softmax(te.numpy() / t)
    ref = (pt * (np.log(pt) - np.log(ps))).sum() / 6 * t * t
    assert KDLoss(t)(s, te).item() == pytest.approx(ref, rel=1e-12)


def test_kd_identical_logits_give_zero_and_only_the_student_gets_gradient() -> None:
    logits = torch.randn(3, 5, dtype=torch.float64)
    assert KDLoss()(logits, logits).item() == pytest.approx(0.0, abs=1e-12)
    s = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    te = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    KDLoss()(s, te).backward()
    assert s.grad is not None and te.grad is None


def test_registry_and_argument_errors() -> None:
    assert {"infonce", "kd", "nce"} <= set(LOSSES.names()) and LOSSES.names() == sorted(LOSSES.names())
    assert isinstance(LOSSES.build("nce", n_data=10, z_mode="running"), NCELoss)
    assert isinstance(LOSSES.build("infonce", temperature=0.1), InfoNCELoss)
    assert LOSSES.build("kd").temperature == 4.0
    with pytest.raises(ValueError, match="z_mode"):
        NCELoss(10, z_mode="last")
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)
    with pytest.raises(ValueError, match=r"pos_scores \[B\] and neg_scores \[B, K\]"):
        NCELoss(10)(torch.zeros(2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same"):
        KDLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
