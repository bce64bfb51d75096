"""The shotfill video diffusion transformer: one model for extend, bridge and fill.

A Sora-style DiT over VAE latents, read top to bottom:

1. **In-context conditioning.** Every latent element is either *known* (a real
   frame, or a kept pixel of a fill frame) or *generated*. Mask convention, as
   everywhere in shotfill: ``generate_mask`` is **1 = generate, 0 = keep**. The
   patch embedding sees three things stacked on the channel axis::

       stream = generate_mask * noisy + (1 - generate_mask) * known   # clean where known
       known  = (1 - generate_mask) * known                             # zero where generated
       mask   = generate_mask

   so known tokens enter clean, generated tokens enter as noise, and the mask
   itself (embedded by the same linear layer) is the per-token "known" signal.
   The noisy input at known positions is never read, so a known token cannot
   depend on the sampler's noise. Extend forward, extend backward, bridge and
   fill differ only in where the mask is 1.

   A *guided* model (``guide=True``) sees a fourth input: a first guess of the
   generated latents (the ``flow`` engine's result, for the ``dit`` engine),
   clean, where the mask is 1 (zero where it is 0 and when no guess is given).
   Noise added to a guess hides what is right in it; given clean beside the
   noisy stream, the model can keep what the guess got right and mend what it
   got wrong. :meth:`ShotfillTransformer3DModel.with_guide` turns a model into a
   guided one that behaves exactly the same until it is trained to use the guess.
2. **Spacetime patches.** ``patch_size = (pt, ph, pw)`` cuts the latent into
   tokens, flattened to one sequence of ``T/pt * H/ph * W/pw`` tokens.
3. **3D rotary positions.** The head dimension is split into time, height and
   width parts (``rope_axes_dim``); each rotates by its token coordinate. Nothing
   is tied to a maximum length or size, so any length, size and aspect ratio
   runs without retraining.
4. **DiT blocks with adaLN-Zero.** The timestep modulates every block's layer
   norms (shift, scale) and gates its residual branches. As in PixArt-alpha's
   adaLN-single (and Wan), one projection of the timestep embedding is shared
   by all blocks and each block adds its own learned table; both start at zero,
   so every block starts as the identity. The timestep is one per sample: known
   tokens are told apart by the mask channels, not by a per-token timestep.
5. **Optional cross-attention** to a text embedding (``text_dim > 0``).
6. **Final layer**: adaLN-modulated norm, a linear layer to patch pixels
   (zero at init), then unpatchify back to ``(B, C, T, H, W)``.

7. **Attention over all of spacetime, or factorised** (``attention``). ``"full"`` (the default,
   and every checkpoint saved before the option existed): each block's self-attention sees all
   ``T' * H' * W'`` tokens, so its cost grows with the square of the token count.
   ``"factorised"``: the blocks alternate between *spatial* attention (each token sees the tokens
   of its own frame) and *temporal* attention (each token sees the tokens at its own position in
   every frame), as Latte and other open video DiTs do. Two blocks in a row connect every token
   to every other, the cost grows with ``N * (H' * W' + T')`` instead of ``N ** 2``, and the
   parameters are the same as a full-attention model's, one to one, so a full checkpoint
   converts by changing the config alone (:meth:`ShotfillTransformer3DModel.with_attention`).
   The rotary positions are applied per token before the tokens are grouped into windows: a
   rotary dot product depends only on the offset between two tokens, so within a frame the time
   rotation cancels and along a position's track the height and width rotations do.

The output is the flow-matching velocity ``noise - clean`` (sampled by
:mod:`shotfill.engines.dit.pipeline`, learnt with :mod:`shotfill.training.loss`).
Attention goes through ``torch.nn.functional.scaled_dot_product_attention``; the
projections are few and wide (one fused ``qkv`` linear per block) because that is what a CPU runs
fastest.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import PixArtAlphaTextProjection, TimestepEmbedding, Timesteps
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin

from ..errors import InputError

#: The ``attention`` choices of :class:`ShotfillTransformer3DModel`.
ATTENTION_CHOICES = ("full", "factorised")

#: Size presets. ``tiny`` is for tests, ``small`` is the shipped CPU model
#: (about 7M parameters: trains on a 2-core CPU in a couple of hours), ``large``
#: is for GPU training (about 120M parameters). Every preset uses 64-wide
#: attention heads, split 16/24/24 between time, height and width rotations
#: (32-wide, 8/12/12, for ``tiny``).
SIZE_PRESETS: dict[str, dict] = {
    "tiny": {
        "in_channels": 16,
        "patch_size": (1, 2, 2),
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 2,
        "mlp_ratio": 2.0,
        "rope_axes_dim": (8, 12, 12),
    },
    "small": {
        "in_channels": 16,
        "patch_size": (1, 2, 2),
        "hidden_size": 256,
        "num_layers": 8,
        "num_heads": 4,
        "mlp_ratio": 4.0,
        "rope_axes_dim": (16, 24, 24),
    },
    "large": {
        "in_channels": 16,
        "patch_size": (1, 2, 2),
        "hidden_size": 768,
        "num_layers": 16,
        "num_heads": 12,
        "mlp_ratio": 4.0,
        "rope_axes_dim": (16, 24, 24),
    },
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift``, with ``shift, scale`` of shape (B, D) over (B, N, D)."""
    return torch.addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1))


def apply_rotary(x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate ``x`` (..., N, head_dim) by ``(cos, signed_sin)`` from :class:`RotaryPosEmbed3D`.

    The "rotate half" layout: ``x * cos + [-x2, x1] * sin`` with ``x = [x1, x2]``, written as
    ``x * cos + roll(x) * signed_sin`` (the sign folded into the sine) to make it two passes.
    """
    cos, signed_sin = rotary
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)


class RotaryPosEmbed3D(nn.Module):
    """Axial rotary positions over the (time, height, width) token grid.

    ``axes_dim`` splits the head dimension between the three axes; each part
    rotates by its integer token coordinate at ``theta``-spaced frequencies.
    The angles are computed for the grid at hand, so there is no maximum size.
    Returns ``(cos, signed_sin)``, each (N, head_dim), in the rotate-half layout with the
    sine's first half negated (see :func:`apply_rotary`).
    """

    def __init__(self, axes_dim: tuple[int, int, int], theta: float = 10000.0):
        super().__init__()
        self.axes_dim = tuple(axes_dim)
        self.theta = theta

    def forward(
        self, grid: tuple[int, int, int], device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        angles = []
        for axis, (size, dim) in enumerate(zip(grid, self.axes_dim)):
            inv_freq = self.theta ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
            axis_angles = torch.outer(torch.arange(size, device=device, dtype=torch.float32), inv_freq)
            view = [1, 1, 1, dim // 2]
            view[axis] = size
            # (size, dim/2) -> broadcast over the grid: (T', H', W', dim/2)
            angles.append(axis_angles.view(view).expand(*grid, dim // 2))
        angles = torch.cat(angles, dim=-1).flatten(0, 2)  # (N, head_dim/2)
        cos, sin = torch.cat((angles, angles), dim=-1).cos(), angles.sin()
        return cos.to(dtype), torch.cat((-sin, sin), dim=-1).to(dtype)  # 2 x (N, head_dim)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, QK RMS-norm and rotary positions.

    ``window`` is what each token attends to: ``"full"`` all tokens, ``"spatial"`` the tokens of
    its own frame, ``"temporal"`` the tokens at its own (height, width) position in every frame.
    The windows are batched for one ``scaled_dot_product_attention`` call (reshapes, no loop).
    """

    def __init__(self, dim: int, num_heads: int, eps: float, window: str = "full"):
        super().__init__()
        if window not in ("full", "spatial", "temporal"):
            raise InputError(f"attention window '{window}' is not one of full, spatial, temporal")
        self.window = window
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.norm_q = nn.RMSNorm(self.head_dim, eps=eps)
        self.norm_k = nn.RMSNorm(self.head_dim, eps=eps)
        self.to_out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int, int]
    ) -> torch.Tensor:
        """``x`` (B, N, D) with N = T' * H' * W' in (time, height, width) order; ``rotary`` in the
        layout of this attention's windows (see :func:`rotary_for_windows`)."""
        if self.window != "full":
            return self._windowed(x, rotary, grid)
        batch, tokens, dim = x.shape
        # (B, N, 3D) -> (B, N, 3, heads, head_dim) -> (3, B, heads, N, head_dim)
        qkv = self.to_qkv(x).view(batch, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = apply_rotary(self.norm_q(q), rotary)
        k = apply_rotary(self.norm_k(k), rotary)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, head_dim)
        out = out.transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, D)
        return self.to_out(out)

    def _windowed(
        self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int, int]
    ) -> torch.Tensor:
        batch, tokens, dim = x.shape
        frames, places = grid[0], grid[1] * grid[2]
        # (B, N, 3D) -> (B, N, 3, heads, head_dim)
        qkv = self.to_qkv(x).view(batch, tokens, 3, self.num_heads, self.head_dim)
        # q and k normalised and rotated together, in token order: (B, N, 2, heads, head_dim)
        weight = torch.stack((self.norm_q.weight, self.norm_k.weight)).unsqueeze(1)  # (2, 1, head_dim)
        qk = apply_rotary(F.rms_norm(qkv[:, :, :2], (self.head_dim,), eps=self.norm_q.eps) * weight, rotary)
        qk = qk.view(batch, frames, places, 2, self.num_heads, self.head_dim)
        v = qkv[:, :, 2].view(batch, frames, places, self.num_heads, self.head_dim)
        if self.window == "spatial":
            # one window per frame: (2, B, T', heads, H'W', head_dim) and (B, T', heads, H'W', head_dim)
            qk, v = qk.permute(3, 0, 1, 4, 2, 5), v.permute(0, 1, 3, 2, 4)
        else:
            # one window per position: (2, B, H'W', heads, T', head_dim) and (B, H'W', heads, T', head_dim)
            qk, v = qk.permute(3, 0, 2, 4, 1, 5), v.permute(0, 2, 3, 1, 4)
        q, k = qk.unbind(0)
        # (B * windows, heads, window, head_dim)
        out = F.scaled_dot_product_attention(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1))
        out = out.unflatten(0, (batch, -1))  # (B, windows, heads, window, head_dim)
        if self.window == "spatial":
            out = out.transpose(2, 3)  # (B, T', H'W', heads, head_dim)
        else:
            out = out.permute(0, 3, 1, 2, 4)  # (B, T', H'W', heads, head_dim)
        return self.to_out(out.reshape(batch, tokens, dim))  # (B, N, D)


def rotary_for_windows(
    rotary: tuple[torch.Tensor, torch.Tensor], grid: tuple[int, int, int], window: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, signed_sin)``, each (N, head_dim) in token order, laid out for ``window``'s queries:
    unchanged for ``"full"`` (queries (B, heads, N, head_dim)); (N, 1, 1, head_dim) for the windowed
    attentions, which rotate q and k together in token order, (B, N, 2, heads, head_dim), before
    grouping them into windows."""
    if window == "full":
        return rotary
    return tuple(part.view(math.prod(grid), 1, 1, -1) for part in rotary)


class CrossAttention(nn.Module):
    """Multi-head attention from the video tokens to the (projected) text tokens."""

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.norm_q = nn.RMSNorm(self.head_dim, eps=eps)
        self.norm_k = nn.RMSNorm(self.head_dim, eps=eps)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        # (B, N, D) -> (B, heads, N, head_dim)
        q = self.to_q(x).view(batch, tokens, self.num_heads, self.head_dim).transpose(1, 2)
        # (B, L, 2D) -> (2, B, heads, L, head_dim)
        kv = self.to_kv(context).view(batch, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        out = F.scaled_dot_product_attention(self.norm_q(q), self.norm_k(k), v)  # (B, heads, N, head_dim)
        out = out.transpose(1, 2).reshape(batch, tokens, dim)  # (B, N, D)
        return self.to_out(out)


class FeedForward(nn.Module):
    """Two linear layers with a GELU between them (the exact, erf GELU: several times faster on CPU than tanh)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ShotfillTransformerBlock(nn.Module):
    """A DiT block: adaLN-Zero self-attention, optional cross-attention, adaLN-Zero MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, cross_attention: bool, eps: float,
                 window: str = "full"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.attn = SelfAttention(dim, num_heads, eps, window)
        if cross_attention:
            self.norm_cross = nn.LayerNorm(dim, eps=eps)
            self.cross_attn = CrossAttention(dim, num_heads, eps)
        else:
            self.norm_cross = self.cross_attn = None
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))
        # this block's own (shift, scale, gate) x (attention, mlp), added to the shared modulation
        self.scale_shift_table = nn.Parameter(torch.zeros(1, 6, dim))

    def forward(
        self,
        x: torch.Tensor,
        modulation: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        context: torch.Tensor | None,
        grid: tuple[int, int, int],
    ) -> torch.Tensor:
        # (B, 6, D) -> six (B, D)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (self.scale_shift_table + modulation).unbind(1)
        x = torch.addcmul(x, gate_msa.unsqueeze(1), self.attn(modulate(self.norm1(x), shift_msa, scale_msa), rotary, grid))
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm_cross(x), context)
        return torch.addcmul(x, gate_mlp.unsqueeze(1), self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp)))


class ShotfillTransformer3DModel(ModelMixin, ConfigMixin):
    r"""
    The shotfill video DiT: predicts the flow-matching velocity of the generated latents, given
    the known ones in context.

    Args:
        in_channels (`int`, defaults to 16):
            Latent channels of the VAE.
        patch_size (`tuple[int, int, int]`, defaults to `(1, 2, 2)`):
            Spacetime patch (time, height, width) in latent elements.
        hidden_size (`int`, defaults to 256):
            Width of the transformer.
        num_layers (`int`, defaults to 8):
            Number of DiT blocks.
        num_heads (`int`, defaults to 4):
            Attention heads; `hidden_size / num_heads` is the head width.
        mlp_ratio (`float`, defaults to 4.0):
            MLP hidden width as a multiple of `hidden_size`.
        text_dim (`int`, defaults to 0):
            Width of the text embedding to cross-attend to; 0 builds a model without text conditioning.
        rope_axes_dim (`tuple[int, int, int]`, defaults to `(16, 24, 24)`):
            How the head width is split between time, height and width rotary positions (even
            numbers that sum to the head width).
        rope_theta (`float`, defaults to 10000.0):
            Base of the rotary frequencies.
        freq_dim (`int`, defaults to 256):
            Width of the sinusoidal timestep features.
        eps (`float`, defaults to 1e-6):
            Epsilon of the normalisation layers.
        guide (`bool`, defaults to `False`):
            Take a clean first guess of the generated latents as a fourth input (`guide_latents`).
        attention (`str`, defaults to `"full"`):
            `"full"`: every block attends over all tokens. `"factorised"`: the blocks alternate,
            spatial (within each frame) first, then temporal (across frames at each position).
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["ShotfillTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        hidden_size: int = 256,
        num_layers: int = 8,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        text_dim: int = 0,
        rope_axes_dim: tuple[int, int, int] = (16, 24, 24),
        rope_theta: float = 10000.0,
        freq_dim: int = 256,
        eps: float = 1e-6,
        guide: bool = False,
        attention: str = "full",
    ):
        super().__init__()
        if attention not in ATTENTION_CHOICES:
            raise InputError(f"attention '{attention}' is not one of {', '.join(ATTENTION_CHOICES)}")
        if hidden_size % num_heads:
            raise InputError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        head_dim = hidden_size // num_heads
        if len(rope_axes_dim) != 3 or sum(rope_axes_dim) != head_dim or any(d % 2 for d in rope_axes_dim):
            raise InputError(
                f"rope_axes_dim {tuple(rope_axes_dim)} must be three even numbers summing to the head width {head_dim}"
            )
        patch_volume = math.prod(patch_size)

        # 1. Patch embedding of (stream, known, mask) and rotary positions
        self.patch_embed = nn.Linear(((3 if guide else 2) * in_channels + 1) * patch_volume, hidden_size)
        self.rope = RotaryPosEmbed3D(rope_axes_dim, rope_theta)

        # 2. Condition embeddings: timestep -> (B, D), shared adaLN projection -> (B, 6, D); text -> (B, L, D)
        self.time_proj = Timesteps(freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedder = TimestepEmbedding(freq_dim, hidden_size)
        self.block_modulation = nn.Linear(hidden_size, 6 * hidden_size)
        self.text_embedder = PixArtAlphaTextProjection(text_dim, hidden_size, act_fn="gelu_tanh") if text_dim else None

        # 3. Transformer blocks
        windows = ["full"] * num_layers if attention == "full" else [
            "spatial" if index % 2 == 0 else "temporal" for index in range(num_layers)]
        self.blocks = nn.ModuleList(
            [
                ShotfillTransformerBlock(hidden_size, num_heads, mlp_ratio, cross_attention=text_dim > 0, eps=eps,
                                         window=window)
                for window in windows
            ]
        )

        # 4. Final layer: modulated norm and projection to patch values
        self.norm_out = nn.LayerNorm(hidden_size, eps=eps, elementwise_affine=False)
        self.out_modulation = nn.Linear(hidden_size, 2 * hidden_size)
        self.proj_out = nn.Linear(hidden_size, in_channels * patch_volume)

        self.gradient_checkpointing = False
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier-uniform linear layers, then adaLN-Zero: modulations and output start at zero (as in DiT)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.time_embedder.linear_1.weight, std=0.02)
        nn.init.normal_(self.time_embedder.linear_2.weight, std=0.02)
        for zero_init in (self.block_modulation, self.out_modulation, self.proj_out):
            nn.init.zeros_(zero_init.weight)
            nn.init.zeros_(zero_init.bias)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ShotfillTransformer3DModel":
        """A new, randomly initialised model of a :data:`SIZE_PRESETS` size; ``overrides`` change any argument."""
        if name not in SIZE_PRESETS:
            raise InputError(f"unknown model size '{name}' (choose from: {', '.join(SIZE_PRESETS)})")
        return cls(**{**SIZE_PRESETS[name], **overrides})

    def with_guide(self) -> "ShotfillTransformer3DModel":
        """A guided copy of this model (``guide=True``) that computes exactly what this one does.

        The patch embedding's weights for the guess start at zero, so training teaches the model
        to use the guess from where this one stands. The copy is float32. A guided model is
        returned as it is.
        """
        if self.config.guide:
            return self
        guided = self._reconfigured(guide=True)
        state = self.state_dict()
        weight = state["patch_embed.weight"]  # (D, (2C+1) * patch volume), flattened channel-major per patch
        volume = math.prod(self.config.patch_size)
        state["patch_embed.weight"] = torch.cat(
            [weight, weight.new_zeros(weight.shape[0], self.config.in_channels * volume)], dim=1)
        guided.load_state_dict(state)
        return guided

    def with_attention(self, attention: str) -> "ShotfillTransformer3DModel":
        """A copy of this model with ``attention`` (see :data:`ATTENTION_CHOICES`) and the same weights.

        The parameters do not depend on the attention, so they map one to one; what the copy
        computes differs, so a converted model is fine-tuned before use. The copy is float32. A
        model that already has ``attention`` is returned as it is.
        """
        if self.config.attention == attention:
            return self
        converted = self._reconfigured(attention=attention)   # an unknown attention is refused there
        converted.load_state_dict(self.state_dict())
        return converted

    def _reconfigured(self, **changes) -> "ShotfillTransformer3DModel":
        """A new model of this one's config with ``changes``, float32 (for training), on its device;
        its weights are the caller's to load."""
        config = {key: value for key, value in self.config.items() if not key.startswith("_")}
        return type(self)(**{**config, **changes}).to(self.device)

    def forward(
        self,
        hidden_states: torch.Tensor,
        known_latents: torch.Tensor,
        generate_mask: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        return_dict: bool = True,
        guide_latents: torch.Tensor | None = None,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """
        Args:
            hidden_states (`torch.Tensor` of shape `(B, C, T, H, W)`):
                Noisy latents; only read where `generate_mask` is 1.
            known_latents (`torch.Tensor` of shape `(B, C, T, H, W)`):
                Clean latents; only read where `generate_mask` is 0.
            generate_mask (`torch.Tensor` of shape `(B, 1, T, H, W)`):
                1 = generate, 0 = keep.
            timestep (`torch.Tensor` of shape `(B,)`):
                Flow-matching time in scheduler units: `sigma * 1000`.
            encoder_hidden_states (`torch.Tensor` of shape `(B, L, text_dim)`, *optional*):
                Text embedding; required when the model has `text_dim > 0`, refused otherwise.
            return_dict (`bool`, defaults to `True`):
                Return a `Transformer2DModelOutput` instead of a tuple.
            guide_latents (`torch.Tensor` of shape `(B, C, T, H, W)`, *optional*):
                A guided model's clean first guess; only read where `generate_mask` is 1. Zeros
                (no guess) when not given; refused by a model without `guide`.

        Returns:
            The velocity `noise - clean`, shape `(B, C, T, H, W)`, as `.sample` of a
            `Transformer2DModelOutput` (or the first element of a tuple).
        """
        batch, channels, frames, height, width = hidden_states.shape
        pt, ph, pw = self.config.patch_size
        self._check_inputs(hidden_states, known_latents, generate_mask, timestep, encoder_hidden_states)
        if guide_latents is not None and (not self.config.guide or guide_latents.shape != hidden_states.shape):
            raise InputError("guide_latents: only for a guided model (guide=True), shaped like hidden_states")
        grid = (frames // pt, height // ph, width // pw)

        # 1. In-context input and patch embedding
        keep = 1 - generate_mask
        stream = generate_mask * hidden_states + keep * known_latents
        inputs = [stream, keep * known_latents, generate_mask]  # (B, 2C+1, T, H, W)
        if self.config.guide:
            inputs.append(torch.zeros_like(stream) if guide_latents is None else generate_mask * guide_latents)
        x = torch.cat(inputs, dim=1)
        # (B, Cin, T, H, W) -> (B, Cin, T', pt, H', ph, W', pw) -> (B, T', H', W', Cin, pt, ph, pw)
        x = x.view(batch, -1, grid[0], pt, grid[1], ph, grid[2], pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
        x = self.patch_embed(x.reshape(batch, math.prod(grid), -1))  # (B, N, D)
        rotary = self.rope(grid, x.device, x.dtype)  # 2 x (N, head_dim)
        # each attention window's layout of the rotary positions, made once for all blocks
        rotaries = {window: rotary_for_windows(rotary, grid, window)
                    for window in {block.attn.window for block in self.blocks}}

        # 2. Conditions
        temb = self.time_embedder(self.time_proj(timestep).to(x.dtype))  # (B, D)
        block_modulation = self.block_modulation(F.silu(temb)).unflatten(1, (6, -1))  # (B, 6, D)
        context = None if self.text_embedder is None else self.text_embedder(encoder_hidden_states)  # (B, L, D)

        # 3. Transformer blocks
        for block in self.blocks:
            rotary = rotaries[block.attn.window]
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, block_modulation, rotary, context, grid)
            else:
                x = block(x, block_modulation, rotary, context, grid)

        # 4. Final layer and unpatchify
        shift, scale = self.out_modulation(F.silu(temb)).chunk(2, dim=1)  # 2 x (B, D)
        x = self.proj_out(modulate(self.norm_out(x), shift, scale))  # (B, N, C * pt * ph * pw)
        # (B, N, C*pt*ph*pw) -> (B, T', H', W', C, pt, ph, pw) -> (B, C, T', pt, H', ph, W', pw)
        x = x.view(batch, *grid, channels, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        output = x.reshape(batch, channels, frames, height, width)  # (B, C, T, H, W)

        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)

    def _check_inputs(
        self,
        hidden_states: torch.Tensor,
        known_latents: torch.Tensor,
        generate_mask: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
    ) -> None:
        if hidden_states.ndim != 5 or hidden_states.shape[1] != self.config.in_channels:
            raise InputError(
                f"hidden_states must be (B, {self.config.in_channels}, T, H, W), got {tuple(hidden_states.shape)}"
            )
        batch, _, frames, height, width = hidden_states.shape
        if known_latents.shape != hidden_states.shape:
            raise InputError(
                f"known_latents shape {tuple(known_latents.shape)} differs from hidden_states "
                f"{tuple(hidden_states.shape)}"
            )
        if generate_mask.shape != (batch, 1, frames, height, width):
            raise InputError(
                f"generate_mask must be {(batch, 1, frames, height, width)}, got {tuple(generate_mask.shape)}"
            )
        if timestep.shape != (batch,):
            raise InputError(f"timestep must be ({batch},), got {tuple(timestep.shape)}")
        for name, size, patch in zip(("frames", "height", "width"), (frames, height, width), self.config.patch_size):
            if size % patch:
                raise InputError(f"latent {name} {size} is not a multiple of the patch size {patch}")
        if self.text_embedder is None and encoder_hidden_states is not None:
            raise InputError("encoder_hidden_states given, but this model has no text conditioning (text_dim=0)")
        if self.text_embedder is not None:
            expected = (batch, self.config.text_dim)
            if encoder_hidden_states is None or encoder_hidden_states.ndim != 3 or (
                encoder_hidden_states.shape[0], encoder_hidden_states.shape[2]
            ) != expected:
                got = None if encoder_hidden_states is None else tuple(encoder_hidden_states.shape)
                raise InputError(f"encoder_hidden_states must be ({batch}, L, {self.config.text_dim}), got {got}")
