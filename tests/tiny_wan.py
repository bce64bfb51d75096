"""A tiny random Wan2.1-VACE pipeline in diffusers format, built in code (no hub, no download).

The components follow the shapes of diffusers' own ``tests/pipelines/wan/test_wan_vace.py``
(``get_dummy_components``) with the text side built here too: a one-layer ``UMT5EncoderModel``
from a config (the encoder the real Wan checkpoints use) and a T5 Unigram tokenizer over a
small vocabulary. The VAE keeps Wan's factors (8x spatial, 4x temporal) and the transformer
its (1, 2, 2) patch, so the engine's size and frame rules are the real model's.

:func:`save_tiny_wan_vace` writes it with ``save_pretrained``: ``model_index.json``, one folder
per component, weights as safetensors, exactly the layout of a downloaded model folder.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel
from tiny_text import tiny_tokenizer
from transformers import UMT5Config, UMT5EncoderModel

#: width of the text embeddings: the encoder's ``d_model`` and the transformer's ``text_dim``
TEXT_DIM = 32
def tiny_wan_vace_pipeline(seed: int = 0) -> WanVACEPipeline:
    """The tiny pipeline, random weights from ``seed``, on the CPU in float32."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0))
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(seed)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    return WanVACEPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                           scheduler=scheduler, transformer=transformer.eval())


def save_tiny_wan_vace(folder: str | Path, seed: int = 0) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it (safetensors) to ``folder``; returns the folder."""
    folder = Path(folder)
    tiny_wan_vace_pipeline(seed).save_pretrained(folder, safe_serialization=True)
    return folder
