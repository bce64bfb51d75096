"""A tiny random LTX-Video pipeline (``LTXConditionPipeline``) in diffusers format, built in code.

No hub, no download. The components follow the shapes of diffusers' own
``tests/pipelines/ltx/test_ltx_condition.py`` (``get_dummy_components``), with two changes so the
engine meets the real model's rules rather than a relaxed version of them:

- the VAE keeps LTX-Video's factors, 32x spatial (a 4x4 patch and three down-samplings) and 8x
  temporal (three down-samplings in time), and its decoder is timestep-conditioned like the 0.9.5
  VAE's, so ``decode_timestep`` and ``decode_noise_scale`` are exercised;
- the text side is built here too: a one-layer ``T5EncoderModel`` from a config (the encoder the real
  checkpoints use) and a T5 Unigram tokenizer over a small vocabulary.

:func:`save_tiny_ltx` writes it with ``save_pretrained``: ``model_index.json``, one folder per
component, weights as safetensors, exactly the layout of a downloaded model folder.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXConditionPipeline, \
    LTXVideoTransformer3DModel
from tiny_text import tiny_tokenizer
from transformers import T5Config, T5EncoderModel

#: width of the text embeddings: the encoder's ``d_model`` and the transformer's ``caption_channels``
TEXT_DIM = 32
#: channels of the VAE's latent, which the transformer (patch size 1) takes as they are
LATENT_CHANNELS = 8
def tiny_ltx_pipeline(seed: int = 0) -> LTXConditionPipeline:
    """The tiny pipeline, random weights from ``seed``, on the CPU in float32."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0))
    torch.manual_seed(seed)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=True, patch_size=4, patch_size_t=1,
        encoder_causal=True, decoder_causal=False)
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, patch_size=1, patch_size_t=1,
        num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32, num_layers=1,
        caption_channels=TEXT_DIM)
    scheduler = FlowMatchEulerDiscreteScheduler()
    return LTXConditionPipeline(scheduler=scheduler, vae=vae.eval(), text_encoder=text_encoder.eval(),
                                tokenizer=tokenizer, transformer=transformer.eval())


def save_tiny_ltx(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it (safetensors) to ``folder``; returns the folder."""
    folder = Path(folder)
    tiny_ltx_pipeline(seed).save_pretrained(folder, safe_serialization=True)
    return folder
