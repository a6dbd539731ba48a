"""Alias tables encode exactly the given probabilities."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scns.sampling.alias import build_alias, draw_alias


def _implied(accept: torch.Tensor, alias: torch.Tensor) -> torch.Tensor:
    """Probability of each column under the alias draw (closed form): [R, M]."""
    m = accept.shape[1]
    implied = accept.clone()
    implied.scatter_add_(1, alias, 1.0 - accept)
    return implied / m


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7, 10.0]), min_size=1, max_size=9),
        min_size=1,
        max_size=4,
    )
)
def test_alias_tables_reproduce_the_probabilities(rows: list[list[float]]) -> None:
    m = max(len(r) for r in rows)
    weights = torch.tensor([r + [0.0] * (m - len(r)) for r in rows], dtype=torch.float64)
    weights[:, 0] += 0.1  # every row needs some mass
    probs = weights / weights.sum(1, keepdim=True)
    accept, alias = build_alias(probs)
    torch.testing.assert_close(_implied(accept, alias), probs, rtol=0, atol=1e-12)
    assert bool((accept[probs == 0] == 0).all())


def test_draws_never_return_zero_probability_columns() -> None:
    probs = torch.tensor([[0.0, 0.7, 0.0, 0.3], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    accept, alias = build_alias(probs)
    cols = draw_alias(accept, alias, 20_000, torch.Generator().manual_seed(0))
    assert set(cols[0].tolist()) == {1, 3} and set(cols[1].tolist()) == {0}
    share = (cols[0] == 1).double().mean().item()
    assert abs(share - 0.7) < 4 * (0.7 * 0.3 / 20_000) ** 0.5  # 4 standard errors
