"""3D ResNet-50 (Hara, Kataoka and Satoh, CVPR 2018), the FID-VID feature network.

Parameter names match kenshohara/3D-ResNets-PyTorch (``conv1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ...; shortcut type B), so its Kinetics-400 checkpoint
``resnet-50-kinetics.pth`` that DisCo uses loads as is. The classifier ``fc`` is left
out: FID-VID uses the 2048-d pooled features.
"""

from __future__ import annotations

import torch
from torch import nn


class Bottleneck3D(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.conv3 = nn.Conv3d(channels, channels * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return self.relu(x + shortcut)


class ResNet3D(nn.Module):
    """Bottleneck 3D ResNet; ``forward`` maps clips (N, 3, T, H, W) to pooled features (N, 2048)."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self._in_channels = 64
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.num_features = 512 * Bottleneck3D.expansion

    def _make_layer(self, channels: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = channels * Bottleneck3D.expansion
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv3d(self._in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )
        stack = [Bottleneck3D(self._in_channels, channels, stride, downsample)]
        self._in_channels = out_channels
        stack += [Bottleneck3D(out_channels, channels) for _ in range(1, blocks)]
        return nn.Sequential(*stack)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(clips))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # The original pools with a fixed AvgPool3d((1, 4, 4)), which covers the whole map
        # exactly for 16 x 112 x 112 clips; a global mean is the same there and also
        # accepts other clip sizes.
        return x.mean(dim=(2, 3, 4))


def resnet3d_50() -> ResNet3D:
    return ResNet3D((3, 4, 6, 3))
