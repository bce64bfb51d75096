"""The shotfill video VAE: frames to latents and back, at any plate size.

A small convolutional KL autoencoder applied frame by frame:

- **Space is compressed 2^(levels-1) times, time not at all.** The default four
  levels compress 8x (with 16 latent channels, as in the SD3 and Flux VAEs); the
  shipped checkpoint has three levels, 4x, which learned much faster on a CPU, and
  its transformer takes 4x4 patches instead of 2x2 so the token count is the same:
  a 256 x 448 frame is 64 x 112 latents, 16 x 28 tokens. 16 channels cost the
  transformer almost nothing (only its patch embedding and output layer see them). Time is
  not compressed so that one latent frame is one picture frame: a plan's known and
  generated frames map one to one onto latent frames, known frames encode without
  being mixed with the (empty) frames to generate, and temporal coherence is left
  to the transformer, which attends across all frames.
- **A linear path beside the network** (``linear_path``). Each ``f x f`` patch of a frame
  is also projected linearly onto the latent channels (a convolution with kernel and stride
  ``f``), and each latent back onto a patch; the convolutional encoder and decoder add their
  output to it. :meth:`ShotfillVAE.init_linear_path` sets the two projections to the
  principal components of patches of the training frames and zeroes the networks'
  last layers, so training *starts* as the best linear autoencoder of its size (on real
  footage, 16 components of 4 x 4 x 3 patches reconstruct at about 38 dB) and the networks
  only learn what the linear code misses. Without it, a VAE of this size trained from
  scratch on a CPU sat near 20 dB after 500 steps.
- **Local normalisation.** The norms are per-pixel RMS norms over channels (as in
  Wan's VAE), not group norms over the whole image, so a tile of a frame sees the
  same statistics as the whole frame. That is what lets :meth:`ShotfillVAE.tiled_encode`
  and :meth:`ShotfillVAE.tiled_decode` cut 2K and 4K plates into overlapping tiles
  and blend them linearly across the overlaps without seams.
- Pictures are ``(B, 3, T, H, W)`` in [-1, 1]; latents are ``(B, C, T, H/f, W/f)``, ``f`` the
  :attr:`ShotfillVAE.spatial_compression`.
  The transformer works on *scaled* latents: :meth:`ShotfillVAE.scale_latents` and
  :meth:`ShotfillVAE.unscale_latents` apply ``scaling_factor`` and ``shift_factor``
  from the config (set them from the latent statistics of the training data).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

from ..errors import InputError


class ChannelRMSNorm(nn.Module):
    """RMS norm over the channels of each pixel of ``(N, C, H, W)``: local, so tiling does not change it."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps) * self.weight


class ResnetBlock(nn.Module):
    """norm, SiLU, 3x3 conv, twice, plus a (1x1 projected when the width changes) shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = ChannelRMSNorm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class Encoder(nn.Module):
    """``(N, 3, H, W)`` -> ``(N, 2 * latent_channels, H / 2**(levels-1), W / 2**(levels-1))`` (mean, log-variance)."""

    def __init__(self, in_channels: int, latent_channels: int, block_out_channels: tuple[int, ...], layers: int):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], 3, padding=1)
        blocks: list[nn.Module] = []
        width = block_out_channels[0]
        for level, out_width in enumerate(block_out_channels):
            for _ in range(layers):
                blocks.append(ResnetBlock(width, out_width))
                width = out_width
            if level < len(block_out_channels) - 1:
                blocks.append(nn.Conv2d(width, width, 3, stride=2, padding=1))  # downsample 2x
        blocks.append(ResnetBlock(width, width))  # middle
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = ChannelRMSNorm(width)
        self.conv_out = nn.Conv2d(width, 2 * latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(x)))))


class Upsample(nn.Module):
    """Nearest-neighbour 2x, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    """``(N, latent_channels, h, w)`` -> ``(N, 3, h * 2**(levels-1), w * 2**(levels-1))``."""

    def __init__(self, out_channels: int, latent_channels: int, block_out_channels: tuple[int, ...], layers: int):
        super().__init__()
        width = block_out_channels[-1]
        self.conv_in = nn.Conv2d(latent_channels, width, 3, padding=1)
        blocks: list[nn.Module] = [ResnetBlock(width, width)]  # middle
        for level, out_width in reversed(list(enumerate(block_out_channels))):
            for _ in range(layers):
                blocks.append(ResnetBlock(width, out_width))
                width = out_width
            if level > 0:
                blocks.append(Upsample(width))
        self.blocks = nn.Sequential(*blocks)
        self.norm_out = ChannelRMSNorm(width)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(self.blocks(self.conv_in(z)))))


@dataclasses.dataclass
class VAELoss:
    """The terms of :meth:`ShotfillVAE.training_loss`; ``loss`` is the weighted sum to minimise."""

    loss: torch.Tensor
    l1: torch.Tensor
    gradient: torch.Tensor
    kl: torch.Tensor


class ShotfillVAE(ModelMixin, ConfigMixin):
    r"""
    A per-frame convolutional KL autoencoder for video, tile-safe for plate-size frames.

    Args:
        in_channels (`int`, defaults to 3):
            Picture channels.
        latent_channels (`int`, defaults to 16):
            Latent channels.
        block_out_channels (`tuple[int, ...]`, defaults to `(32, 64, 128, 128)`):
            Width of each resolution level; each level after the first halves the size, so four
            levels compress 8x.
        layers_per_block (`int`, defaults to 1):
            Residual blocks per level in the encoder; the decoder has one more (it does the harder job).
        scaling_factor (`float`, defaults to 1.0):
            Multiplies the (shifted) latents the transformer sees, to bring them to unit variance.
        shift_factor (`float`, defaults to 0.0):
            Subtracted from the latents before scaling, to centre them.
        linear_path (`bool`, defaults to False):
            Add a linear patch projection beside the encoder and decoder (see the module docstring).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 16,
        block_out_channels: tuple[int, ...] = (32, 64, 128, 128),
        layers_per_block: int = 1,
        scaling_factor: float = 1.0,
        shift_factor: float = 0.0,
        linear_path: bool = False,
    ):
        super().__init__()
        self.encoder = Encoder(in_channels, latent_channels, tuple(block_out_channels), layers_per_block)
        self.decoder = Decoder(in_channels, latent_channels, tuple(block_out_channels), layers_per_block + 1)
        f = 2 ** (len(block_out_channels) - 1)
        self.patch_encode = nn.Conv2d(in_channels, latent_channels, f, stride=f) if linear_path else None
        self.patch_decode = nn.ConvTranspose2d(latent_channels, in_channels, f, stride=f) if linear_path else None

    @property
    def spatial_compression(self) -> int:
        """Picture pixels per latent element along height and width."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    # -- whole frames ----------------------------------------------------------
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Pictures ``(B, 3, T, H, W)`` in [-1, 1] -> the latent distribution over ``(B, C, T, H/8, W/8)``.

        ``.latent_dist.mode()`` is the mean, ``.latent_dist.sample(generator)`` a draw.
        """
        self._check_pictures(x, "x")
        posterior = DiagonalGaussianDistribution(self._per_frame(self._encode_frames, x))
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """Latents ``(B, C, T, h, w)`` -> pictures ``(B, 3, T, 8h, 8w)`` in about [-1, 1]."""
        self._check_latents(z, "z")
        sample = self._per_frame(self._decode_frames, z)
        if not return_dict:
            return (sample,)
        return DecoderOutput(sample=sample)

    # -- tiles ---------------------------------------------------------------------
    def tiled_encode(
        self, x: torch.Tensor, tile: int = 512, overlap: int = 32, halo: int = 64, return_dict: bool = True
    ) -> AutoencoderKLOutput | tuple:
        """:meth:`encode`, one frame and one ``tile`` x ``tile`` pixel tile at a time.

        Neighbouring tiles overlap by ``overlap`` pixels and are cross-faded linearly there.
        Each tile is encoded with ``halo`` more pixels of the picture around it (where the
        picture has them) and cropped back, so the convolutions near a tile's edge see the
        same neighbourhood as in the whole frame: with a halo that covers the network's
        receptive field (64 pixels does for the default widths) the result matches
        :meth:`encode` closely everywhere and shows no seams. Memory is bounded by one tile,
        so 2K and 4K plates never need the whole frame at once.
        """
        self._check_pictures(x, "x")
        self._check_tiling(tile, overlap, halo)
        f = self.spatial_compression
        encode = functools.partial(self._per_frame, self._encode_frames)
        moments = _blend_tiles(encode, x, tile, overlap, halo, numerator=1, denominator=f)
        posterior = DiagonalGaussianDistribution(moments)
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    def tiled_decode(
        self, z: torch.Tensor, tile: int = 512, overlap: int = 32, halo: int = 64, return_dict: bool = True
    ) -> DecoderOutput | tuple:
        """:meth:`decode` one frame and one tile at a time; ``tile``, ``overlap`` and ``halo`` are in output pixels.

        See :meth:`tiled_encode` for how the tiles are cut and blended.
        """
        self._check_latents(z, "z")
        self._check_tiling(tile, overlap, halo)
        f = self.spatial_compression
        decode = functools.partial(self._per_frame, self._decode_frames)
        sample = _blend_tiles(decode, z, tile // f, overlap // f, halo // f, numerator=f, denominator=1)
        if not return_dict:
            return (sample,)
        return DecoderOutput(sample=sample)

    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> ``(N, 2C, H/f, W/f)``: the latent means (plus the linear code) and log-variances."""
        moments = self.encoder(x)
        if self.patch_encode is None:
            return moments
        mean, logvar = moments.chunk(2, dim=1)
        return torch.cat([mean + self.patch_encode(x), logvar], dim=1)

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        decoded = self.decoder(z)
        return decoded if self.patch_decode is None else decoded + self.patch_decode(z)

    @torch.no_grad()
    def init_linear_path(self, pictures: torch.Tensor) -> float:
        """Set the linear path to the principal components of ``pictures``' patches.

        ``pictures`` ``(B, 3, T, H, W)`` in [-1, 1]. The encoder projection maps each patch to its
        first ``latent_channels`` principal components, the decoder projection maps them back
        (the same orthonormal basis both ways); the encoder's mean output and the decoder's output
        layer are zeroed so the whole VAE is, to start with, exactly this linear code. The
        components are not whitened: the coarse ones keep their larger variance, so the
        transformer's loss weighs the picture's structure over its finest texture (which the
        engine takes from the plate anyway); ``scaling_factor`` brings the whole to unit variance.
        Returns the fraction of the patches' variance the code keeps.
        """
        if self.patch_encode is None:
            raise InputError("init_linear_path: this VAE has no linear path (config linear_path=False)")
        self._check_pictures(pictures, "pictures")
        f, channels = self.spatial_compression, self.config.latent_channels
        frames = pictures.permute(0, 2, 1, 3, 4).flatten(0, 1).double()  # (N, 3, H, W)
        patches = F.unfold(frames, kernel_size=f, stride=f).transpose(1, 2).flatten(0, 1)  # (P, 3*f*f)
        mean = patches.mean(0)
        _, singular, components = torch.linalg.svd(patches - mean, full_matrices=False)
        basis = components[:channels]  # (C, 3*f*f), orthonormal rows in unfold's (channel, row, column) order
        self.patch_encode.weight.copy_(basis.view(channels, -1, f, f))
        self.patch_encode.bias.copy_(-(basis @ mean))
        self.patch_decode.weight.copy_(basis.view(channels, -1, f, f))
        # one bias per picture channel: the patch mean averaged over the patch's positions (natural
        # pictures are stationary, so it hardly varies with the position inside a patch)
        self.patch_decode.bias.copy_(mean.view(-1, f * f).mean(1))
        self.decoder.conv_out.weight.zero_()
        self.decoder.conv_out.bias.zero_()
        self.encoder.conv_out.weight[:channels].zero_()
        self.encoder.conv_out.bias[:channels].zero_()
        return float(singular[:channels].square().sum() / singular.square().sum())

    # -- the transformer's side ----------------------------------------------------------
    def scale_latents(self, z: torch.Tensor) -> torch.Tensor:
        """VAE latents -> the transformer's latents: ``(z - shift_factor) * scaling_factor``."""
        return (z - self.config.shift_factor) * self.config.scaling_factor

    def unscale_latents(self, z: torch.Tensor) -> torch.Tensor:
        """The transformer's latents -> VAE latents (inverse of :meth:`scale_latents`)."""
        return z / self.config.scaling_factor + self.config.shift_factor

    def latent_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A picture mask ``(B, 1, T, H, W)`` (1 = generate) -> the latent mask ``(B, 1, T, H/8, W/8)`` of 0 and 1.

        A latent element is generated when any pixel it covers is to be generated, so a kept
        latent never covers a pixel the plan asks for.
        """
        self._check_pictures(mask, "mask", channels=1)
        f = self.spatial_compression
        return F.max_pool3d((mask > 0).to(mask.dtype), kernel_size=(1, f, f))

    # -- training --------------------------------------------------------------------
    def training_loss(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        kl_weight: float = 1e-6,
        gradient_weight: float = 0.5,
    ) -> VAELoss:
        """Reconstruction loss of pictures ``(B, 3, T, H, W)`` in [-1, 1] through a sampled latent.

        ``l1`` is the mean absolute error; ``gradient`` the mean absolute error of the
        horizontal and vertical pixel differences (a cheap stand-in for a perceptual loss
        that keeps edges and fine texture sharp); ``kl`` the mean KL divergence per latent
        element to a unit Gaussian, weighted lightly (it only keeps the latents bounded).
        """
        posterior = self.encode(x).latent_dist
        reconstruction = self.decode(posterior.sample(generator)).sample
        l1 = (reconstruction - x).abs().mean()
        gradient = sum(
            (reconstruction.diff(dim=axis) - x.diff(dim=axis)).abs().mean() for axis in (-1, -2)
        ) / 2
        kl = 0.5 * (posterior.mean.square() + posterior.var - 1.0 - posterior.logvar).mean()
        return VAELoss(loss=l1 + gradient_weight * gradient + kl_weight * kl, l1=l1, gradient=gradient, kl=kl)

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _per_frame(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run a 2D network on every frame of ``(B, C, T, H, W)``."""
        batch, _, frames, _, _ = x.shape
        x = x.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B, C, T, H, W) -> (B*T, C, H, W)
        y = network(x)
        return y.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)  # (B*T, C', H', W') -> (B, C', T, H', W')

    def _check_pictures(self, x: torch.Tensor, name: str, channels: int | None = None) -> None:
        channels = self.config.in_channels if channels is None else channels
        f = self.spatial_compression
        if x.ndim != 5 or x.shape[1] != channels:
            raise InputError(f"{name} must be (B, {channels}, T, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % f or x.shape[-1] % f:
            raise InputError(f"{name}: height and width {tuple(x.shape[-2:])} must be multiples of {f}")

    def _check_latents(self, z: torch.Tensor, name: str) -> None:
        if z.ndim != 5 or z.shape[1] != self.config.latent_channels:
            raise InputError(f"{name} must be (B, {self.config.latent_channels}, T, h, w), got {tuple(z.shape)}")

    def _check_tiling(self, tile: int, overlap: int, halo: int) -> None:
        f = self.spatial_compression
        if any(n % f for n in (tile, overlap, halo)) or not 0 <= overlap < tile or halo < 0:
            raise InputError(
                f"tile {tile}, overlap {overlap} and halo {halo} must be multiples of {f} "
                "with 0 <= overlap < tile and halo >= 0"
            )


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` covering ``size``, overlapping by at least ``overlap``."""
    if size <= tile:
        return [0]
    return list(range(0, size - tile, tile - overlap)) + [size - tile]


def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> torch.Tensor:
    """Blend weights along one axis of a tile: rising over ``overlap`` at the start, falling at the end."""
    position = torch.arange(length, dtype=torch.float32) + 0.5
    weight = torch.ones(length)
    if overlap and rise:
        weight = torch.minimum(weight, position / overlap)
    if overlap and fall:
        weight = torch.minimum(weight, (length - position) / overlap)
    return weight


def _blend_tiles(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    halo: int,
    numerator: int,
    denominator: int,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping spatial tiles of each frame of ``x`` (B, C, T, H, W) and blend the outputs.

    ``fn`` scales height and width by ``numerator / denominator`` (1/8 to encode, 8 to
    decode); ``tile``, ``overlap`` and ``halo`` are in ``x``'s units. Each tile is run
    on its area grown by ``halo`` (within the picture) and its output cropped back to
    the tile; the outputs are weighted by separable linear ramps across the overlaps
    with their neighbours (full weight at the picture's own edges) and the weighted sum
    is normalised, so the blend is continuous.
    """
    frames, height, width = x.shape[-3:]

    def scaled(n: int) -> int:
        return n * numerator // denominator

    output = None
    weights = torch.zeros(scaled(height), scaled(width))
    for top in _tile_starts(height, tile, overlap):
        for left in _tile_starts(width, tile, overlap):
            bottom, right = min(top + tile, height), min(left + tile, width)
            # the tile grown by the halo, within the picture
            grown_top, grown_bottom = max(top - halo, 0), min(bottom + halo, height)
            grown_left, grown_right = max(left - halo, 0), min(right + halo, width)
            # where the tile's output goes, and where it sits in the grown tile's output
            rows, cols = slice(scaled(top), scaled(bottom)), slice(scaled(left), scaled(right))
            crop_rows = slice(scaled(top - grown_top), scaled(bottom - grown_top))
            crop_cols = slice(scaled(left - grown_left), scaled(right - grown_left))
            weight = torch.outer(
                _ramp(scaled(bottom - top), scaled(overlap), rise=top > 0, fall=bottom < height),
                _ramp(scaled(right - left), scaled(overlap), rise=left > 0, fall=right < width),
            )
            for frame in range(frames):
                grown = x[:, :, frame : frame + 1, grown_top:grown_bottom, grown_left:grown_right]
                piece = fn(grown)[..., crop_rows, crop_cols]  # (B, C', 1, scaled(bottom - top), scaled(right - left))
                if output is None:
                    output = piece.new_zeros(*piece.shape[:2], frames, scaled(height), scaled(width))
                output[:, :, frame : frame + 1, rows, cols] += piece * weight.to(piece)
            weights[rows, cols] += weight
    return output / weights.to(output)
