"""A frozen network prepared for fast inference (a distillation teacher).

A frozen teacher never trains, so its forward can drop what training needs: autograd bookkeeping
(``torch.inference_mode``), separate BatchNorm passes (folded into the preceding convolution),
and NCHW layout (channels_last is faster for the oneDNN/cuDNN convolution kernels). Each
*mode* is a fixed recipe of these steps; ``eager`` is the plain forward (eval, no_grad), the
reference every other mode is checked against:

=====================  ===========================================================================
mode                   recipe
=====================  ===========================================================================
``eager``              eval + ``no_grad``: the network as trained (the reference)
``fused``              eval + ``inference_mode`` + conv/BN folded
``fused-cl``           ``fused`` + channels_last weights and inputs
``fused-cl-bf16``      ``fused-cl`` under bfloat16 autocast (for GPUs; on a CPU without AVX512-BF16
                       it is several times slower, so ``auto`` never picks it there)
``compiled``           ``torch.compile`` with Inductor's freezing (it folds BN and prepacks the
                       weights itself); compiles on the first call of each batch shape, about
                       5-15 s each on a 2-core CPU
``auto``               per device type: on CPU ``compiled`` for a run that calls the teacher at
                       least :data:`COMPILE_MIN_CALLS` times and has a C++ compiler, else
                       ``fused-cl``; ``fused-cl-bf16`` on CUDA
=====================  ===========================================================================

Modes other than ``fused-cl-bf16`` keep whatever autocast the caller runs under (the engine's
``train.amp``). Outputs are float tensors usable in autograd graphs (the teacher's logits feed
the KD loss and its features the trainable CRD embed head).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

#: Valid ``distill.teacher_mode`` values (``auto`` resolves per device with :func:`resolve_mode`).
TEACHER_MODES = ("auto", "eager", "fused", "fused-cl", "fused-cl-bf16", "compiled")


@dataclass(frozen=True)
class InferencePlan:
    """What a mode does: fold conv+BN, channels_last layout, bf16 autocast, torch.compile."""

    fuse: bool
    channels_last: bool
    bf16: bool
    compile: bool


PLANS: dict[str, InferencePlan] = {
    "eager": InferencePlan(fuse=False, channels_last=False, bf16=False, compile=False),
    "fused": InferencePlan(fuse=True, channels_last=False, bf16=False, compile=False),
    "fused-cl": InferencePlan(fuse=True, channels_last=True, bf16=False, compile=False),
    "fused-cl-bf16": InferencePlan(fuse=True, channels_last=True, bf16=True, compile=False),
    # Inductor's freezing folds BN and lays out the weights itself; measured no faster after our own
    # folding and channels_last (benchmarks/step.py, BENCHMARKS s. 7)
    "compiled": InferencePlan(fuse=False, channels_last=False, bf16=False, compile=True),
}

#: What ``auto`` picks per device type when compiling does not pay (measured with benchmarks/step.py;
#: CPU bf16 is never picked).
AUTO_MODE = {"cpu": "fused-cl", "cuda": "fused-cl-bf16"}

#: The fewest teacher calls for which ``auto`` compiles on CPU. Compiling costs 5-15 s per batch
#: shape (a run has two or three: training, the last partial batch, the bank prefill) and saves
#: 35-200 ms per call for resnet32 .. resnet32x4 at batch 64, so it pays after a few hundred calls;
#: the bound leaves a margin and keeps short runs (and the tests) free of compile time.
COMPILE_MIN_CALLS = 2000


def can_compile_on_cpu() -> bool:
    """Whether Inductor can build CPU kernels here (it needs a C++ compiler on PATH or in ``$CXX``)."""
    candidates = [os.environ.get("CXX", ""), "c++", "g++", "clang++"]
    return any(c and shutil.which(c) for c in candidates)


def resolve_mode(mode: str, device: torch.device | str, expected_calls: int | None = None) -> str:
    """The concrete mode ``mode`` stands for on ``device``.

    ``auto`` on CPU is ``compiled`` when ``expected_calls`` (the teacher forwards the run will make)
    reaches :data:`COMPILE_MIN_CALLS` and a C++ compiler exists, else ``AUTO_MODE[device type]``.
    """
    if mode not in TEACHER_MODES:
        raise ValueError(
            f"unknown teacher mode '{mode}'. Valid choices: {', '.join(TEACHER_MODES)} "
            "(set distill.teacher_mode or --teacher-mode)"
        )
    if mode != "auto":
        return mode
    device_type = torch.device(device).type
    if device_type == "cpu" and (expected_calls or 0) >= COMPILE_MIN_CALLS and can_compile_on_cpu():
        return "compiled"
    return AUTO_MODE.get(device_type, "fused")


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` with BN's running statistics (eval mode).

    ``w' = w * g / sqrt(var + eps)`` per output channel and ``b' = (b - mean) * g / sqrt(var + eps)
    + beta`` (``g`` = 1, ``beta`` = 0 without affine parameters). The fold is computed in float64
    and stored in the conv's dtype and device.
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    w = conv.weight.double()
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    shift = bn.bias.double() if bn.bias is not None else torch.zeros_like(scale)
    # a Conv2d's own size attributes are pairs; torch annotates them tuple[int, ...]
    Pair = tuple[int, int]
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        cast(Pair, conv.kernel_size),
        stride=cast(Pair, conv.stride),
        padding=cast("str | Pair", conv.padding),
        dilation=cast(Pair, conv.dilation),
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    fused.weight.copy_(w * scale.view(-1, 1, 1, 1))
    cast(Tensor, fused.bias).copy_((bias - bn.running_mean.double()) * scale + shift)  # bias=True
    return fused


def fold_conv_bn(model: nn.Module) -> int:
    """Fold every ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``, in place.

    The conv is replaced by :func:`fuse_conv_bn` and the BN by ``nn.Identity``. Only valid for
    inference (the model must stay in eval mode). Pre-activation blocks (BN before the conv, as
    in the WRNs) are left as they are. Returns the number of folded pairs.
    """
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.num_features == conv.out_channels
                and bn.running_mean is not None
            ):
                seq._modules[first] = fuse_conv_bn(conv, bn)
                seq._modules[second] = nn.Identity()
                folded += 1
    return folded


class FrozenNet(nn.Module):
    """A network in eval mode, without gradients, run by one of :data:`PLANS`.

    ``forward(x [B, 3, H, W]) -> (logits [B, C], features [B, F])`` as the wrapped zoo model's.
    Keeps ``feature_dim``, ``num_classes`` and ``arch`` of the wrapped network; ``mode`` is the
    concrete mode in use. ``train()`` leaves it in eval mode.
    """

    _run: Callable[[Tensor], tuple[Tensor, Tensor]]  # the (compiled) net, outside the module tree

    def __init__(
        self, net: nn.Module, mode: str, device: torch.device | str, expected_calls: int | None = None
    ) -> None:
        super().__init__()
        self.device_type = torch.device(device).type
        self.mode = resolve_mode(mode, device, expected_calls)
        self.plan = PLANS[self.mode]
        self.feature_dim = getattr(net, "feature_dim", None)
        self.num_classes = getattr(net, "num_classes", None)
        self.arch = getattr(net, "arch", type(net).__name__)
        net = net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        if self.plan.fuse:
            net = copy.deepcopy(net)
            self.folded = fold_conv_bn(net)
            net.requires_grad_(False)
        else:
            self.folded = 0
        if self.plan.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's overloads omit memory_format
        self.net = net
        # kept out of the module tree: the compiled wrapper shares the parameters of ``net``
        # one specialised graph per batch shape (dynamic=False): the teacher sees two or three shapes
        self.__dict__["_run"] = (
            torch.compile(net, dynamic=False, options={"freezing": True}) if self.plan.compile else net
        )

    def train(self, mode: bool = True) -> FrozenNet:
        super().train(False)
        return self

    def _precision(self) -> contextlib.AbstractContextManager:
        if self.plan.bf16:
            return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x float [B, 3, H, W] -> (logits [B, C], features [B, F]); no gradients flow."""
        if self.mode == "eager":
            with torch.no_grad():
                return self._run(x)
        with torch.inference_mode(), self._precision():
            if self.plan.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits, features = self._run(x)
        # inference tensors cannot be saved for backward; the copies are ordinary tensors
        return logits.clone(), features.clone()

    def extra_repr(self) -> str:
        return f"mode={self.mode}, folded={self.folded}"


def freeze_for_inference(
    model: nn.Module, device: torch.device | str, mode: str = "auto", expected_calls: int | None = None
) -> FrozenNet:
    """``model`` (a trained network on ``device``) wrapped as a :class:`FrozenNet` running ``mode``.

    ``expected_calls``: how many forwards the caller will make, for ``auto``'s compile decision.
    The original module is left untouched by the folding modes (they fold a copy); its parameters
    stop requiring gradients.
    """
    return FrozenNet(model, mode, device, expected_calls)
