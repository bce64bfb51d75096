"""shotfill train: data discovery and recipes, tiny training runs that learn and resume, export."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from shotfill import train
from shotfill.train import PRESETS, discover_footage, load_data


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"procedural": {"weight": 1.0, "shots": 2, "frames": 6},
                                "footage": [{"path": "footage/clip", "weight": 1.0}]}))
    return path


def write_sequence(folder, frames: int, size=(64, 48), prefix="frame."):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(frames):
        pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{prefix}{i:04d}.png")


def losses(path) -> list[float]:
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


def test_discover_footage_finds_sequences_and_skips_masks(tmp_path):
    write_sequence(tmp_path / "shot_a" / "frames", 3)
    write_sequence(tmp_path / "shot_a" / "masks", 3)
    write_sequence(tmp_path / "pairs", 2, prefix="I0_")
    specs = discover_footage(tmp_path)
    assert specs == [str(tmp_path / "pairs" / "I0_%04d.png"), str(tmp_path / "shot_a" / "frames" / "frame.%04d.png")]


def test_recipe_without_shared_data_trains_on_procedural_only(recipe):
    messages = []
    clips = load_data(str(recipe), PRESETS["tiny"], None, messages.append)
    assert len(clips) == 2 and all(c.name.startswith("procedural/") for c in clips)
    assert clips[0].frames.shape == (6, 48, 80, 3)
    assert any("procedural shots only" in m for m in messages)


def test_recipe_reads_footage_under_the_shared_root(recipe, tmp_path):
    write_sequence(tmp_path / "shared" / "footage" / "clip", 6, size=(96, 64))
    clips = load_data(str(recipe), PRESETS["tiny"], tmp_path / "shared", lambda m: None)
    footage = [c for c in clips if not c.name.startswith("procedural/")]
    assert len(footage) == 1 and footage[0].frames.shape == (6, 48, 64, 3)  # short side 48, multiples of 16
    assert sum(c.weight for c in clips) == pytest.approx(2.0)


def test_vae_and_dit_training_lower_the_loss_and_resume(recipe, tmp_path):
    out = tmp_path / "ckpt"
    assert train.main(["vae", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "25"]) == 0
    vae_losses = losses(out / "vae_loss.jsonl")
    assert np.mean(vae_losses[-5:]) < np.mean(vae_losses[:5])
    config = json.loads((out / "vae" / "config.json").read_text())
    assert config["scaling_factor"] != 1.0  # set from the latent statistics

    assert train.main(["dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "30"]) == 0
    dit_losses = losses(out / "transformer_loss.jsonl")
    assert np.mean(dit_losses[-5:]) < np.mean(dit_losses[:5])

    assert train.main(["dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "33",
                       "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (out / "transformer_loss.jsonl").read_text().splitlines()]
    assert steps[-4:] == [30, 31, 32, 33]
    assert json.loads((out / "transformer_state.json").read_text()) == {"step": 33}

    shipped = tmp_path / "shipped"
    assert train.main(["export", str(out), "--out", str(shipped)]) == 0
    manifest = json.loads((shipped / "manifest.json").read_text())
    assert manifest["dtype"] == "bfloat16" and set(manifest["files"]) == {
        "vae/diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == digest


def test_resume_without_a_checkpoint_is_an_input_error(recipe, tmp_path, capsys):
    assert train.main(["vae", "--data", str(recipe), "--out", str(tmp_path / "none"), "--preset", "tiny",
                       "--steps", "2", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_training_needs_an_end(recipe, tmp_path, capsys):
    assert train.main(["vae", "--data", str(recipe), "--out", str(tmp_path / "x"), "--preset", "tiny"]) == 2
    assert "--steps or --seconds" in capsys.readouterr().err
