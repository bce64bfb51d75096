"""What every pretrained engine shares (shotfill.engines.pretrained.base): frame padding, memory modes,
out-of-memory messages. The engines themselves run end to end in test_engines_wan_vace.py and
test_engines_ltx.py with tiny models built in code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shotfill.engines.pretrained import base as pretrained
from shotfill.engines.pretrained.base import (MEMORY_MODES, apply_memory_mode, choose_memory_mode, out_of_memory_hint,
                                         pad_frames)
from shotfill.errors import InputError, OutOfMemoryError


@pytest.mark.parametrize("count, step, padded", [(9, 4, 9), (10, 4, 13), (6, 4, 9), (23, 8, 25), (25, 8, 25), (1, 8, 1)])
def test_windows_are_padded_to_the_models_frame_count_with_frames_to_generate(count, step, padded):
    frames = np.random.default_rng(0).random((count, 4, 6, 3)).astype(np.float32)
    masks = np.zeros((count, 4, 6), np.float32)
    for at_start in (False, True):
        out, out_masks, keep = pad_frames(frames, masks, step, at_start=at_start)
        assert len(out) == padded and (padded - 1) % step == 0
        assert np.array_equal(out[keep], frames) and np.array_equal(out_masks[keep], masks)
        extra = np.ones(len(out), bool)
        extra[keep] = False
        assert (out_masks[extra] == 1).all() and (out[extra] == 0).all()     # padding is generated, then dropped
        if padded > count:                                                  # extending backward pads before
            assert extra[0] == at_start and extra[-1] != at_start


def test_memory_modes_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_memory_mode("auto", {"gpu": 20}) == "cpu"
    assert choose_memory_mode("cpu", {}) == "cpu"
    with pytest.raises(InputError, match="'offload' needs a CUDA GPU"):
        choose_memory_mode("offload", {})


def test_auto_picks_the_fastest_mode_that_fits_the_free_gpu_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    needs = {"gpu": 20, "offload": 12, "group": 6, "sequential": 4}
    for free_gib, mode in ((40, "gpu"), (16, "offload"), (8, "group"), (5, "sequential"), (2, "sequential")):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda free=free_gib: (free * 2**30, 80 * 2**30))
        assert choose_memory_mode("auto", needs) == mode
    assert choose_memory_mode("group", needs) == "group"                    # asked for: taken as it is


class FakePipe:
    """Records how a mode places the pipeline (diffusers' DiffusionPipeline methods of the same names)."""

    def __init__(self):
        self.calls = []
        outer = self

        class VAE:
            def enable_tiling(self):
                outer.calls.append("vae tiling")

        self.vae = VAE()

    def to(self, device):
        self.calls.append(f"to {device}")

    def enable_model_cpu_offload(self):
        self.calls.append("model offload")

    def enable_group_offload(self, **kwargs):
        self.calls.append(("group offload", kwargs["offload_type"]))


@pytest.mark.parametrize("mode, placed", [
    ("cpu", "to cpu"), ("gpu", "to cuda"), ("offload", "model offload"),
    ("group", ("group offload", "block_level")), ("sequential", ("group offload", "leaf_level")),
])
def test_each_memory_mode_places_the_pipeline_and_tiles_the_vae(mode, placed):
    pipe = FakePipe()
    apply_memory_mode(pipe, mode)
    assert pipe.calls == ["vae tiling", placed]
    assert mode in MEMORY_MODES


def test_running_out_of_gpu_memory_names_the_next_mode():
    for mode, advice in (("gpu", "--memory offload"), ("offload", "--memory group"), ("group", "--memory sequential"),
                         ("sequential", "lower working_size or window")):
        with pytest.raises(OutOfMemoryError, match=advice) as e:
            with out_of_memory_hint("wan-vace", mode):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        assert e.value.exit_code == 2 and "resumes" in str(e.value) and f"'{mode}'" in str(e.value)
    with pytest.raises(ValueError):                                         # other errors pass through untouched
        with out_of_memory_hint("ltx", "gpu"):
            raise ValueError("not memory")
    assert pretrained.NEXT_MODE["gpu"] == "offload"


@pytest.mark.parametrize("option, value, needle", [
    ("steps", 0, "option steps"), ("window", 0, "option window"), ("overlap", 0, "option overlap"),
    ("working_size", 0, "option working_size"), ("window", 10, "4k\\+1"), ("guidance_scale", 0, "guidance_scale"),
])
def test_bad_options_are_named_not_replaced_by_defaults(option, value, needle):
    from shotfill.engines import get_engine

    pytest.importorskip("transformers", reason="the pretrained engines need the [pretrained] extra")
    with pytest.raises(InputError, match=needle):      # refused before any model is looked for
        get_engine("wan-vace", memory="cpu", **{option: value})
