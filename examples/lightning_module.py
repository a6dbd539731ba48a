"""SCNS negatives in a PyTorch Lightning module (``pip install 'scns[lightning]'``).

    python examples/lightning_module.py                     # generated images, CPU

The term is a submodule, so Lightning's checkpoints carry its memory bank and sampler tables;
the bank update runs in ``on_train_batch_end``, which Lightning calls after the optimizer step.
Under a DDP strategy every rank calls it and the ranks' rows are gathered, so the banks agree.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

import scns

try:  # run as a script or imported from the examples folder
    from plain_pytorch import Indexed, generated_data
except ImportError:  # pragma: no cover
    from examples.plain_pytorch import Indexed, generated_data


class SCNSClassifier(L.LightningModule):
    """Cross-entropy + ``beta`` x a contrastive term with SCNS negatives.

    Args:
        labels: int64 [N] training labels (the bank has one row per training sample).
        class_names: C names; ``similarity``: a source name or a [C, C] tensor.
        term_options: any ``ContrastiveNegatives`` option (``top_k``, ``negatives``, ...).
    """

    def __init__(
        self,
        labels: Tensor,
        class_names: list[str],
        similarity="glove",
        arch: str = "resnet8",
        dim: int = 128,
        beta: float = 0.5,
        lr: float = 0.05,
        **term_options,
    ) -> None:
        super().__init__()
        self.backbone = scns.create_model(arch, num_classes=len(class_names))
        self.head = nn.Linear(self.backbone.feature_dim, dim)
        options = {"top_k": 1, "negatives": 256, "sampler": "class_topk", **term_options}
        self.scns = scns.ContrastiveNegatives(
            labels=labels, dim=dim, class_names=class_names, similarity=similarity, **options
        )
        self.beta, self.lr = beta, lr

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logits, features = self.backbone(x)
        return logits, self.head(features)

    def on_train_epoch_start(self) -> None:
        self.scns.start_epoch(self.current_epoch)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, idx = batch
        logits, z = self(x)
        ce = F.cross_entropy(logits, y)
        contrast = self.scns(z, y, idx)
        self.log_dict({"ce": ce, "contrast": contrast, **self.scns.last_stats}, prog_bar=False)
        return ce + self.beta * contrast

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.scns.update()  # after the optimizer step

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def main() -> None:
    x, y, names = generated_data()
    module = SCNSClassifier(y, names, similarity="glove")
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False)
    trainer.fit(module, DataLoader(Indexed(x, y), batch_size=8, shuffle=True))


if __name__ == "__main__":
    main()
