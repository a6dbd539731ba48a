"""SCNS negatives for pytorch-metric-learning losses (``pip install 'scns[metric-learning]'``).

PML's losses take ``loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)``: pairs
``(a1, p, a2, n)`` index anchors in ``embeddings`` and positives/negatives in ``ref_emb``. scns's
negatives live in a memory bank, not in the batch, so :class:`SCNSPairs` draws each anchor's
positive and K negatives with the scns sampler, hands their bank rows over as ``ref_emb``, and
returns the pairs that tie each anchor to its own draws::

    term = scns.ContrastiveNegatives(labels=train_labels, dim=128, class_names=names,
                                     similarity="glove", top_k=3, negatives=1024)
    pairs = SCNSPairs(term)
    loss_fn = NTXentLoss(temperature=0.07)                 # any PML pair loss
    for x, y, idx in loader:
        z = model(x)
        indices_tuple, ref_emb, ref_labels = pairs(z, y, idx)
        loss = loss_fn(z, y, indices_tuple, ref_emb, ref_labels)
        opt.zero_grad(); loss.backward(); opt.step()
        pairs.update(idx, z)                                # the bank takes the batch after the step

With NTXentLoss this is exactly scns's InfoNCE term over the same draws (tests/test_examples.py
checks it). PML pair losses score every anchor against every ref row ([B, B * (K + 1)]), so keep
B * K moderate; ``scns.ContrastiveNegatives`` itself scores only the [B, K] draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

import scns


class SCNSPairs:
    """Turns scns's bank draws into PML's ``(indices_tuple, ref_emb, ref_labels)``."""

    def __init__(self, term: scns.ContrastiveNegatives) -> None:
        self.term = term

    @torch.no_grad()
    def __call__(
        self, embeddings: Tensor, labels: Tensor, indices: Tensor, generator: torch.Generator | None = None
    ) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor], Tensor, Tensor]:
        """embeddings [B, D], labels [B], indices [B] (rows of the training set) ->
        ((a1 [B], p [B], a2 [B*K], n [B*K]), ref_emb [B + B*K, D], ref_labels [B + B*K]).

        ``ref_emb`` rows: the B positives, then anchor 0's K negatives, anchor 1's, ...
        """
        pos, neg = self.term.draw(labels, indices, generator)  # [B], [B, K]
        b, k = neg.shape
        ref_ids = torch.cat([pos, neg.reshape(-1)])
        ref_emb = self.term.bank.gather(ref_ids).to(embeddings.dtype)
        ref_labels = self.term.labels[ref_ids]
        anchors = torch.arange(b, device=embeddings.device)
        a2 = anchors.repeat_interleave(k)
        n = b + torch.arange(b * k, device=embeddings.device)
        return (anchors, anchors, a2, n), ref_emb, ref_labels

    def update(self, indices: Tensor, embeddings: Tensor) -> None:
        """After the optimizer step: the bank rows ``indices`` take a momentum step to ``embeddings``."""
        self.term.remember(indices, embeddings)
        self.term.update()


def main() -> None:
    from pytorch_metric_learning.losses import NTXentLoss

    try:
        from plain_pytorch import Indexed, Net, generated_data
    except ImportError:  # pragma: no cover
        from examples.plain_pytorch import Indexed, Net, generated_data
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    x, y, names = generated_data()
    model = Net("resnet8", len(names))
    term = scns.ContrastiveNegatives(
        labels=y, dim=128, class_names=names, similarity="glove", top_k=1, negatives=64
    )
    pairs, loss_fn = SCNSPairs(term), NTXentLoss(temperature=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(2):
        for xb, yb, idx in DataLoader(Indexed(x, y), batch_size=8, shuffle=True):
            logits, z = model(xb)
            indices_tuple, ref_emb, ref_labels = pairs(z, yb, idx)
            loss = F.cross_entropy(logits, yb) + 0.5 * loss_fn(z, yb, indices_tuple, ref_emb, ref_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            pairs.update(idx, z)
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
