"""SCNS negatives in a plain PyTorch training loop (CIFAR-style).

    python examples/plain_pytorch.py                        # generated images, seconds on a CPU
    python examples/plain_pytorch.py --cifar10 ~/data       # CIFAR-10 (official python layout)

What scns adds to an ordinary classification loop:
1. a dataset that also returns each sample's index (its row in the memory bank),
2. an embedding head on the backbone's features,
3. one ``scns.ContrastiveNegatives`` term, added to the loss,
4. ``term.update()`` after ``optimizer.step()`` (the bank takes the batch's embeddings),
5. ``term.state_dict()`` in the checkpoint, beside the model and optimizer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

import scns


class Indexed(Dataset):
    """(x, y) tensors whose items are ``(x, y, index)``."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        return self.x[i], self.y[i], i


class Net(nn.Module):
    """A zoo backbone (``forward(x) -> (logits, features)``) plus a linear embedding head."""

    def __init__(self, arch: str, num_classes: int, dim: int = 128) -> None:
        super().__init__()
        self.backbone = scns.create_model(arch, num_classes=num_classes)
        self.head = nn.Linear(self.backbone.feature_dim, dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits, features = self.backbone(x)
        return logits, self.head(features)  # z [B, dim]; the term normalises it


def generated_data(per_class: int = 8, size: int = 32, seed: int = 0) -> tuple[Tensor, Tensor, list[str]]:
    """Four CIFAR classes as noisy colour fields: float [N, 3, size, size], int64 [N], names."""
    names = ["cat", "dog", "automobile", "truck"]
    colours = torch.tensor([[0.8, 0.5, 0.3], [0.7, 0.5, 0.4], [0.2, 0.3, 0.8], [0.3, 0.3, 0.7]])
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(len(names)).repeat_interleave(per_class)
    x = colours[y].view(-1, 3, 1, 1) + 0.2 * torch.randn(len(y), 3, size, size, generator=g)
    return x, y, names


def make_term(labels: Tensor, class_names: list[str], similarity, **options) -> scns.ContrastiveNegatives:
    """Class-level SCNS: negatives from each class's most similar class (by ``similarity``)."""
    defaults = {"dim": 128, "top_k": 1, "negatives": 256, "temperature": 0.1}
    return scns.ContrastiveNegatives(
        labels=labels,
        class_names=class_names,
        similarity=similarity,
        sampler="class_topk",
        **{**defaults, **options},
    )


def train(
    x: Tensor,
    y: Tensor,
    class_names: list[str],
    similarity="glove",
    epochs: int = 2,
    batch_size: int = 8,
    lr: float = 0.05,
    beta: float = 0.5,
    arch: str = "resnet8",
    seed: int = 0,
    resume: dict | None = None,
    device: str = "cpu",
    **term_options,
) -> dict:
    """Train ``epochs`` epochs (from a ``resume`` checkpoint when given); returns the checkpoint
    dict after the last epoch, with the per-step losses under ``"losses"``."""
    torch.manual_seed(seed)
    model = Net(arch, len(class_names)).to(device)
    term = make_term(y, class_names, similarity, **term_options).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        term.load_state_dict(resume["scns"])  # bank, sampler tables, pending update
        optimizer.load_state_dict(resume["optimizer"])
        start = resume["epoch"]
    losses = []
    for epoch in range(start, epochs):
        # everything random in an epoch comes from (seed, epoch): a resumed run repeats it exactly
        order = torch.Generator().manual_seed(seed * 10_000 + epoch)
        draws = torch.Generator(device).manual_seed(seed * 10_000 + epoch)
        loader = DataLoader(Indexed(x, y), batch_size=batch_size, shuffle=True, generator=order)
        model.train()
        term.start_epoch(epoch)
        for xb, yb, idx in loader:
            xb, yb, idx = xb.to(device), yb.to(device), idx.to(device)
            logits, z = model(xb)
            loss = F.cross_entropy(logits, yb) + beta * term(z, yb, idx, generator=draws)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            term.update()  # the batch's embeddings enter the bank after the step
            losses.append(loss.item())
        print(
            f"epoch {epoch + 1}: loss {losses[-1]:.4f}  {term.epoch_stats()['sampling_time_s']:.3f}s sampling"
        )
    return {
        "model": model.state_dict(),
        "scns": term.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epochs,
        "losses": losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar10", metavar="DATA_DIR", help="train on CIFAR-10 under DATA_DIR")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--similarity", default="glove", help="glove | wordnet | text | ... (scns similarity)"
    )
    parser.add_argument("--out", default="checkpoint.pt")
    args = parser.parse_args()
    if args.cifar10:
        from scns.data import load_dataset

        data = load_dataset("cifar10", Path(args.cifar10), "train")
        x = data.images.permute(0, 3, 1, 2).float().div(255)  # uint8 [N, H, W, 3] -> float [N, 3, H, W]
        y, names = data.labels, data.classes
    else:
        x, y, names = generated_data()
    checkpoint = train(x, y, names, similarity=args.similarity, epochs=args.epochs)
    torch.save(checkpoint, args.out)


if __name__ == "__main__":
    main()
