"""shotfill train: data discovery and recipes, tiny training runs that learn and resume, export."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

import torch

from shotfill.cli import main as cli_main
from shotfill.errors import InputError
from shotfill.plan import Role, TaskKind
from shotfill.training import (PRESETS, LatentClip, discover_footage, export_checkpoint, flow_prior_latents, load_data,
                               plan_of_mask, random_generate_mask, sample_latent_clips)


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


def train(*argv: str) -> int:
    """``shotfill train ARGV...``; its exit code."""
    return cli_main(["train", *argv])


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
    assert train("vae", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "25") == 0
    vae_losses = losses(out / "vae_loss.jsonl")
    assert np.mean(vae_losses[-5:]) < np.mean(vae_losses[:5])
    config = json.loads((out / "vae" / "config.json").read_text())
    assert config["scaling_factor"] != 1.0  # set from the latent statistics

    assert train("dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "30") == 0
    dit_losses = losses(out / "transformer_loss.jsonl")
    assert np.mean(dit_losses[-5:]) < np.mean(dit_losses[:5])

    assert train("dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "33",
                       "--resume") == 0
    steps = [json.loads(line)["step"] for line in (out / "transformer_loss.jsonl").read_text().splitlines()]
    assert steps[-4:] == [30, 31, 32, 33]
    assert json.loads((out / "transformer_state.json").read_text()) == {"step": 33}

    shipped = tmp_path / "shipped"
    assert train("export", str(out), "--out", str(shipped)) == 0
    manifest = json.loads((shipped / "manifest.json").read_text())
    assert manifest["dtype"] == "bfloat16" and set(manifest["files"]) == {
        "vae/diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == digest
    # the folder the dit pipeline loads: its index and the scheduler the model is trained for
    assert json.loads((shipped / "model_index.json").read_text())["_class_name"] == "ShotfillDiTPipeline"
    scheduler = json.loads((shipped / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "FlowMatchEulerDiscreteScheduler" and scheduler["num_train_timesteps"] == 1000
    assert scheduler["shift"] == 1.0  # the noise levels run as the manifest's sampling gives them

    # the schedule is saved with the checkpoint and read back by the engine
    sampled = tmp_path / "sampled"
    assert train("export", str(out), "--out", str(sampled), "--dtype", "float32", "--strength", "0.3",
                 "--steps", "3", "--samples", "2", "--output", "correction") == 0
    assert json.loads((sampled / "manifest.json").read_text())["sampling"] == {
        "strength": 0.3, "steps": 3, "samples": 2, "output": "correction"}
    from shotfill.engines.dit.engine import DiTEngine
    engine = DiTEngine(model=str(sampled))
    assert (engine.strength, engine.steps, engine.samples, engine.output.value, engine.steps_from) == (
        0.3, 3, 2, "correction", "manifest")


def test_export_writes_each_part_as_the_part_saves_itself(tmp_path):
    """The pipeline's folder holds the very bytes each model's own save_pretrained writes."""
    from shotfill.models import ShotfillTransformer3DModel, ShotfillVAE

    torch.manual_seed(0)
    ShotfillVAE(**PRESETS["tiny"].vae_config).save_pretrained(tmp_path / "ckpt" / "vae")
    ShotfillTransformer3DModel.from_preset("tiny").save_pretrained(tmp_path / "ckpt" / "transformer")
    manifest = export_checkpoint(tmp_path / "ckpt", tmp_path / "out", torch.bfloat16, strength=0.5, output="correction")
    assert manifest["sampling"] == {"strength": 0.5, "steps": 10, "samples": 1, "output": "correction"}
    for part, cls in (("vae", ShotfillVAE), ("transformer", ShotfillTransformer3DModel)):
        cls.from_pretrained(tmp_path / "ckpt" / part, torch_dtype=torch.bfloat16).save_pretrained(tmp_path / "ref" / part)
        for name in ("config.json", "diffusion_pytorch_model.safetensors"):
            assert (tmp_path / "out" / part / name).read_bytes() == (tmp_path / "ref" / part / name).read_bytes()


def test_resume_without_a_checkpoint_is_an_input_error(recipe, tmp_path, capsys):
    assert train("vae", "--data", str(recipe), "--out", str(tmp_path / "none"), "--preset", "tiny",
                       "--steps", "2", "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_training_needs_an_end(recipe, tmp_path, capsys):
    assert train("vae", "--data", str(recipe), "--out", str(tmp_path / "x"), "--preset", "tiny") == 2
    assert "--steps or --seconds" in capsys.readouterr().err


def test_plan_of_mask_names_the_plan_of_every_training_mask():
    masks = random_generate_mask((64, 6, 4, 4), torch.Generator().manual_seed(0))
    kinds = set()
    for mask in masks:
        plan = plan_of_mask(mask)
        kinds.add(plan.kind)
        assert len(plan) == 6
        for t, frame in enumerate(plan.frames):
            whole = bool(mask[0, t].all())
            if plan.kind is TaskKind.FILL:
                assert frame.role is Role.FILL
            else:
                assert (frame.role is Role.GENERATE) == whole
    assert kinds == set(TaskKind)


def test_sampled_pictures_are_the_pictures_of_the_sampled_latents():
    # latents whose every element names its frame, row and column; pictures that repeat them 4x
    frames, height, width = 10, 6, 8
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    code = np.stack([t, y, x], axis=0).astype(np.float32)  # (3, T, h, w)
    pictures = np.repeat(np.repeat(code, 4, axis=2), 4, axis=3).transpose(1, 2, 3, 0).astype(np.float16)
    clip = LatentClip(torch.from_numpy(code), 1.0, pictures)
    latents, crops = sample_latent_clips(np.random.default_rng(3), [clip], 16, 4, 3, compression=4)
    assert crops.shape == (16, 4, 12, 12, 3)
    again = torch.from_numpy(crops[:, :, ::4, ::4].transpose(0, 4, 1, 2, 3).copy())
    torch.testing.assert_close(again, latents)
    assert {bool(l[0, 0, 0, 0] > l[0, -1, 0, 0]) for l in latents} == {True, False}  # both directions
    with pytest.raises(InputError, match="without their pictures"):
        sample_latent_clips(np.random.default_rng(3), [LatentClip(clip.latents, 1.0)], 1, 4, 3, compression=4)


def test_flow_priors_replace_only_the_generated_frames_of_refinement_samples():
    from shotfill.models import ShotfillVAE

    torch.manual_seed(0)
    vae = ShotfillVAE(**PRESETS["tiny"].vae_config).eval()
    f = vae.spatial_compression
    rng = np.random.default_rng(0)
    pictures = rng.random((2, 5, 4 * f, 4 * f, 3)).astype(np.float32)
    with torch.no_grad():
        latents = torch.stack([vae.scale_latents(vae.encode(
            torch.from_numpy(p * 2 - 1).permute(3, 0, 1, 2)[None]).latent_dist.mode())[0] for p in pictures])
    mask = torch.zeros(2, 1, 5, 4, 4)
    mask[:, :, 2:4] = 1  # a bridge: frames 2 and 3 generated
    prior = flow_prior_latents(vae, latents, mask, pictures, [True, False])
    torch.testing.assert_close(prior[1], latents[1])  # not a refinement sample
    torch.testing.assert_close(prior[0, :, [0, 1, 4]], latents[0, :, [0, 1, 4]])  # known frames
    assert not torch.allclose(prior[0, :, 2:4], latents[0, :, 2:4])  # the flow guess, not the truth


def test_refinement_samples_start_from_the_dit_engines_own_first_guess(monkeypatch):
    """Training's guess is whatever :func:`shotfill.engines.working.plate_flow` makes, the engine's guess."""
    from shotfill.engines import working
    from shotfill.models import ShotfillVAE

    torch.manual_seed(0)
    vae = ShotfillVAE(**PRESETS["tiny"].vae_config).eval()
    f = vae.spatial_compression
    pictures = np.random.default_rng(0).random((1, 5, 4 * f, 4 * f, 3)).astype(np.float32)
    latents = torch.zeros(1, vae.config.latent_channels, 5, 4, 4)
    mask = torch.zeros(1, 1, 5, 4, 4)
    mask[:, :, 3:] = 1  # extend forward: frames 3 and 4 generated
    calls = []

    def grey_guess(plan, frames, masks, cancel=None):
        calls.append((plan.kind.value, masks.shape))
        return working.PlateFlow(np.full_like(frames, 0.5), {}, np.ones(masks.shape, np.float32), [None] * len(plan))

    monkeypatch.setattr(working, "plate_flow", grey_guess)
    prior = flow_prior_latents(vae, latents, mask, pictures, [True])
    assert calls == [("extend_forward", (5, 4 * f, 4 * f))]
    grey = torch.zeros(1, 3, 2, 4 * f, 4 * f)  # 0.5 is 0 in the model's [-1, 1]
    with torch.no_grad():
        expected = vae.scale_latents(vae.encode(grey).latent_dist.mode())[0]
    torch.testing.assert_close(prior[0, :, 3:], expected)


def test_dit_training_makes_a_guided_model_unless_told_not_to(recipe, tmp_path):
    import json as _json

    out = tmp_path / "ckpt"
    assert train("vae", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "2") == 0
    assert train("dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "2",
                       "--no-guide", "--refine-share", "0") == 0
    assert not _json.loads((out / "transformer" / "config.json").read_text()).get("guide", False)
    tuned = tmp_path / "tuned"
    assert train("dit", "--data", str(recipe), "--out", str(tuned), "--init", str(out), "--preset", "tiny",
                       "--steps", "2") == 0
    assert _json.loads((tuned / "transformer" / "config.json").read_text())["guide"] is True
    assert train("dit", "--data", str(recipe), "--out", str(tmp_path / "x"), "--init", str(tuned),
                       "--preset", "tiny", "--steps", "1", "--no-guide") == 2


def test_an_exported_checkpoint_exports_again_with_new_sampling_and_the_same_weights(tmp_path):
    from shotfill.models import ShotfillTransformer3DModel, ShotfillVAE

    torch.manual_seed(0)
    ShotfillVAE(**PRESETS["tiny"].vae_config).save_pretrained(tmp_path / "ckpt" / "vae")
    ShotfillTransformer3DModel.from_preset("tiny").save_pretrained(tmp_path / "ckpt" / "transformer")
    (tmp_path / "ckpt" / "transformer_state.json").write_text('{"step": 7}\n')
    first = export_checkpoint(tmp_path / "ckpt", tmp_path / "one", torch.bfloat16, strength=0.2, steps=2, samples=4,
                              output="correction")
    again = export_checkpoint(tmp_path / "one", tmp_path / "two", torch.bfloat16, strength=0.3, steps=1, samples=4,
                              output="correction")
    assert first["training_steps"] == again["training_steps"] == {"transformer": 7}
    assert again["files"] == first["files"]                      # the very same weights
    assert again["sampling"] == {"strength": 0.3, "steps": 1, "samples": 4, "output": "correction"}


def test_export_refuses_sampling_defaults_the_engine_would_refuse(tmp_path):
    for kwargs, field in (({"strength": 0.0}, "strength"), ({"samples": 0}, "samples"), ({"steps": 0}, "steps"),
                          ({"output": "blend"}, "output"), ({"strength": 1.0, "output": "correction"}, "output")):
        with pytest.raises(InputError, match=f"export: {field}"):
            export_checkpoint(tmp_path / "ckpt", tmp_path / "out", torch.float32, **kwargs)
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_export_records_the_tasks_that_keep_their_first_guess(tmp_path):
    from shotfill.models import ShotfillTransformer3DModel, ShotfillVAE

    torch.manual_seed(0)
    ShotfillVAE(**PRESETS["tiny"].vae_config).save_pretrained(tmp_path / "ckpt" / "vae")
    ShotfillTransformer3DModel.from_preset("tiny").save_pretrained(tmp_path / "ckpt" / "transformer")
    assert train("export", str(tmp_path / "ckpt"), "--out", str(tmp_path / "out"), "--strength", "0.2",
                 "--steps", "1", "--output", "correction", "--keep-guess-for", "fill") == 0
    sampling = json.loads((tmp_path / "out" / "manifest.json").read_text())["sampling"]
    assert sampling["keep_guess_for"] == ["fill"]
    from shotfill.engines.dit.engine import DiTEngine
    assert DiTEngine(model=str(tmp_path / "out")).keep_guess_for == {"fill"}
    for kinds, strength in ((("fills",), 0.2), (("fill",), 1.0)):
        with pytest.raises(InputError, match="export: --keep-guess-for"):
            export_checkpoint(tmp_path / "ckpt", tmp_path / "bad", torch.float32, strength=strength,
                              keep_guess_for=kinds)
    assert not (tmp_path / "bad").exists()


def test_dit_fine_tuning_converts_a_full_attention_model_to_factorised(recipe, tmp_path, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "ckpt"
    assert train("vae", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "1") == 0
    assert train("dit", "--data", str(recipe), "--out", str(out), "--preset", "tiny", "--steps", "1") == 0
    assert json.loads((out / "transformer" / "config.json").read_text())["attention"] == "full"
    converted = tmp_path / "factorised"
    assert train("dit", "--data", str(recipe), "--out", str(converted), "--init", str(out), "--preset", "tiny",
                 "--steps", "1", "--attention", "factorised") == 0
    assert "attention is now 'factorised'" in capsys.readouterr().out
    assert json.loads((converted / "transformer" / "config.json").read_text())["attention"] == "factorised"
    before = load_file(out / "transformer" / "diffusion_pytorch_model.safetensors")
    after = load_file(converted / "transformer" / "diffusion_pytorch_model.safetensors")
    assert before.keys() == after.keys()  # the same parameters, one to one (one step of training apart)
    assert train("dit", "--data", str(recipe), "--out", str(converted), "--resume", "--preset", "tiny",
                 "--steps", "2", "--attention", "full") == 2
    assert "convert with --init, not --resume" in capsys.readouterr().err
