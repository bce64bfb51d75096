"""The RIFE 4.x IFNet (shotfill.models.ifnet), its shipped weights, the interpolator and its bench."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from shotfill.engines.interpolate import SHIPPED_MODEL, RifeInterpolator, psnr, self_check_cases
from shotfill.errors import EngineUnavailableError, InputError
from shotfill.models.ifnet import IFNet, backward_warp

REPO = Path(__file__).resolve().parents[1]
TINY = {"block_widths": (8, 8, 8, 8, 8), "res_convs": 1, "block_features": 8, "encoder_width": 4,
        "encoder_features": 4}


def _load_script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rife() -> RifeInterpolator:
    return RifeInterpolator()


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture in [0, 1], float32."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 2.0)
    return ((texture - texture.min()) / (texture.max() - texture.min())).astype(np.float32)


def _pan(x: int, texture: np.ndarray, size=(72, 100)) -> np.ndarray:
    return np.ascontiguousarray(texture[10:10 + size[0], x:x + size[1]])


# -- the network --------------------------------------------------------------------------


def test_a_tiny_network_builds_and_gives_shapes():
    torch.manual_seed(0)
    net = IFNet(**TINY).eval()
    img0, img1 = torch.rand(2, 3, 64, 128), torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        out = net(img0, img1, torch.tensor([0.25, 0.75]))
    assert out.sample.shape == (2, 3, 64, 128) and out.flow.shape == (2, 4, 64, 128)
    assert out.mask.shape == (2, 1, 64, 128) and 0 < out.mask.min() and out.mask.max() < 1
    sample, flow, mask = net(img0, img1, 0.5, return_dict=False)
    assert (sample.shape, flow.shape, mask.shape) == ((2, 3, 64, 128), (2, 4, 64, 128), (2, 1, 64, 128))


def test_the_network_refuses_sizes_it_cannot_take():
    net = IFNet(**TINY)
    with pytest.raises(InputError, match="multiple of 64"):
        net(torch.rand(1, 3, 64, 100), torch.rand(1, 3, 64, 100))
    with pytest.raises(InputError, match="one scale per block"):
        net(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), scale_list=(8, 4, 2, 1))
    assert IFNet.size_multiple((32, 16, 8, 4, 2)) == 128


def test_backward_warp_moves_by_whole_pixels_and_keeps_values():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 5] = 7.0  # above 1: not clipped
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # out(x) = image(x + 2)
    out = backward_warp(image, flow)
    assert out[0, 0, 3, 3].item() == pytest.approx(7.0, abs=1e-5)


# -- the conversion script ------------------------------------------------------------------


def _rife_names(blocks: int = 5, res_convs: int = 8) -> list[str]:
    """The tensor names of RIFE 4.x's flownet.pkl, written the way RIFE's own modules name them."""
    names = []
    for i in range(blocks):
        for j in range(2):
            names += [f"block{i}.conv0.{j}.0.weight", f"block{i}.conv0.{j}.0.bias"]
        for k in range(res_convs):
            names += [f"block{i}.convblock.{k}.beta", f"block{i}.convblock.{k}.conv.weight",
                      f"block{i}.convblock.{k}.conv.bias"]
        names += [f"block{i}.lastconv.0.weight", f"block{i}.lastconv.0.bias"]
    names += [f"encode.cnn{c}.{p}" for c in range(4) for p in ("weight", "bias")]
    names += ["teacher.conv0.0.0.weight", "teacher.convblock.3.beta", "teacher.lastconv.0.bias",
              "caltime.0.weight", "caltime.8.bias"]  # training-only: dropped
    return names


def test_the_conversion_maps_every_rife_name_onto_the_model():
    convert = _load_script(REPO / "resources" / "rife" / "convert.py", "rife_convert")
    expected = IFNet().state_dict()
    names = _rife_names()
    assert len([n for n in names if convert.convert_key(n) is not None]) == len(expected) == 158
    rife = {name: expected[convert.convert_key(name)] if convert.convert_key(name) else torch.zeros(1)
            for name in names}
    converted = convert.convert_state_dict(rife, expected)
    assert set(converted) == set(expected)
    assert convert.convert_key("block3.convblock.7.conv.weight") == "blocks.3.res.7.conv.weight"
    assert convert.convert_key("encode.cnn3.bias") == "encoder.up.bias"

    with pytest.raises(convert.ConversionError, match="unknown tensor"):
        convert.convert_state_dict({**rife, "block9.extra.weight": torch.zeros(1)}, expected)
    with pytest.raises(convert.ConversionError, match="missing"):
        convert.convert_state_dict({k: v for k, v in rife.items() if k != "encode.cnn0.bias"}, expected)
    with pytest.raises(convert.ConversionError, match="shape"):
        convert.convert_state_dict({**rife, "encode.cnn0.bias": torch.zeros(3)}, expected)


# -- the shipped weights -------------------------------------------------------------------------


def test_the_shipped_files_match_their_manifest(rife):
    manifest = json.loads((SHIPPED_MODEL / "manifest.json").read_text())
    assert set(manifest["files"]) == {"ifnet.safetensors", "config.json", "LICENSE"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((SHIPPED_MODEL / name).read_bytes()).hexdigest() == digest, name
    assert manifest["source"]["sha256"] == "1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44"
    assert manifest["licence"] == "MIT" and "Huang" in (SHIPPED_MODEL / "LICENSE").read_text()
    assert rife.describe() == {"model": "rife-4.x-ifnet", "model_sha256": manifest["files"]["ifnet.safetensors"]}
    assert not list(SHIPPED_MODEL.glob("*.pkl")) and not list(SHIPPED_MODEL.glob("*.bin"))


def test_the_resources_stay_under_60_mb():
    total = sum(p.stat().st_size for p in (REPO / "resources").rglob("*") if p.is_file())
    assert total <= 60 * 1024 * 1024, total


@pytest.mark.parametrize("victim", ["ifnet.safetensors", "config.json"])
def test_a_tampered_file_is_refused(tmp_path, victim):
    folder = tmp_path / "rife"
    shutil.copytree(SHIPPED_MODEL, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = bytearray((folder / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / victim).write_bytes(bytes(data))
    with pytest.raises(EngineUnavailableError, match=f"{victim}: sha256 does not match manifest.json"):
        RifeInterpolator(folder)


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(EngineUnavailableError, match="no manifest.json"):
        RifeInterpolator(tmp_path)


# -- the interpolator ------------------------------------------------------------------------------


def test_odd_sizes_come_back_at_their_size(rife):
    texture = _texture(80, 120)
    a, b = _pan(0, texture, (37, 53)), _pan(4, texture, (37, 53))
    made = rife.interpolate(a, b, 0.5)
    assert made.picture.shape == (37, 53, 3) and made.picture.dtype == np.float32
    assert made.confidence.shape == (37, 53) and 0.0 <= made.confidence.min() <= made.confidence.max() <= 1.0


def test_t_0_and_t_1_give_the_end_frames(rife):
    texture = _texture(100, 140)
    a, b = _pan(0, texture), _pan(6, texture)
    start, end = rife.interpolate_many(a, b, [0.0, 1.0])
    assert psnr(start.picture, a) > 40 and psnr(end.picture, b) > 40
    assert psnr(start.picture, a) > psnr(start.picture, b) + 15


def test_a_pan_is_interpolated_far_better_than_a_dissolve(rife):
    texture = _texture(100, 160)
    a, truth, b = _pan(20, texture), _pan(28, texture), _pan(36, texture)  # 8 px a step
    made = rife.interpolate(a, b, 0.5)
    inner = np.s_[:, 12:-12]  # the columns that enter the picture have no truth in a or b
    dissolve = 0.5 * (a + b)
    assert psnr(made.picture[inner], truth[inner]) > psnr(dissolve[inner], truth[inner]) + 15
    assert made.confidence[inner].mean() > 0.8


def test_the_flow_between_two_frames_follows_a_pan(rife):
    texture = _texture(100, 160)
    a, b = _pan(20, texture), _pan(26, texture)  # b's content lies 6 px left of a's: a(x) = b(x - 6)
    field = rife.flow(a, b)
    assert field.shape == (72, 100, 2) and field.dtype == np.float32
    inner = field[8:-8, 12:-12]
    assert np.median(inner[..., 0]) == pytest.approx(-6.0, abs=0.4)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.4)
    half = rife.flow(a, b, size=(36, 50))  # at another size, in that size's pixels
    assert half.shape == (36, 50, 2) and np.median(half[4:-4, 6:-6, 0]) == pytest.approx(-3.0, abs=0.3)
    from shotfill.engines.classical import _cv

    pulled = _cv.warp(b, field)  # the field pulls b onto a's grid
    assert psnr(pulled[8:-8, 12:-12], a[8:-8, 12:-12]) > psnr(b[8:-8, 12:-12], a[8:-8, 12:-12]) + 10


def test_values_above_1_survive_the_warp(rife):
    texture = _texture(100, 160)
    a, b = _pan(20, texture), _pan(28, texture)
    a[30:40, 50:60], b[30:40, 42:52] = 6.0, 6.0  # a highlight moving with the pan
    made = rife.interpolate(a, b, 0.5).picture
    assert made.max() > 5.5 and np.isfinite(made).all()


def test_the_working_side_scales_the_motion_estimate_not_the_result():
    rife = RifeInterpolator(working_side=64)
    assert rife.working_size(72, 100) == (46, 64)
    texture = _texture(100, 160)
    a, truth, b = _pan(20, texture), _pan(24, texture), _pan(28, texture)
    made = rife.interpolate(a, b, 0.5).picture
    assert made.shape == a.shape
    inner = np.s_[:, 8:-8]
    assert psnr(made[inner], truth[inner]) > psnr(0.5 * (a + b)[inner], truth[inner]) + 8


def test_bad_input_is_refused(rife):
    a = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(InputError, match="t must be"):
        rife.interpolate(a, a, 1.5)
    with pytest.raises(InputError, match="differ in size"):
        rife.interpolate(a, np.zeros((16, 17, 3), np.float32), 0.5)
    with pytest.raises(InputError, match="float32"):
        rife.interpolate(a.astype(np.float64), a, 0.5)
    with pytest.raises(InputError, match="working_side"):
        RifeInterpolator(working_side=8)


def test_the_self_check_holds_out_the_frames_beside_the_gap():
    frames = [np.full((4, 4, 3), v, np.float32) for v in range(6)]
    cases = self_check_cases(frames[:2], frames[2:4], gap=3)
    assert [(c.side, c.t) for c in cases] == [("a", 0.2), ("b", 0.8)]
    assert cases[0].truth is frames[1] and cases[0].a is frames[0] and cases[0].b is frames[2]
    assert cases[1].truth is frames[2] and cases[1].a is frames[1] and cases[1].b is frames[3]
    assert [c.side for c in self_check_cases(frames[:1], frames[2:4], gap=3)] == ["b"]
    with pytest.raises(InputError, match="two known frames"):
        self_check_cases(frames[:1], frames[2:3], gap=3)


def test_the_self_check_tells_a_pan_from_unrelated_pictures(rife):
    texture = _texture(100, 200)
    pan = [_pan(20 + 4 * k, texture) for k in range(8)]  # known 0, 1 | gap 2..5 | known 6, 7
    check = rife.self_check(pan[:2], pan[6:], gap=4)
    assert check.margin > 6 and len(check.cases) == 2
    unrelated = [_texture(72, 100, seed) for seed in range(4)]
    other = rife.self_check(unrelated[:2], unrelated[2:], gap=4)
    assert other.psnr < check.psnr - 10
    assert json.dumps(other.to_dict())


# -- the bench -------------------------------------------------------------------------------------


def test_the_bench_runs_on_a_synthetic_pan(tmp_path):
    bench = _load_script(REPO / "bench" / "bench_rife_bridge.py", "bench_rife_bridge")
    out = tmp_path / "rife.json"
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["model"]["model_sha256"] == json.loads(
        (SHIPPED_MODEL / "manifest.json").read_text())["files"]["ifnet.safetensors"]
    (trial,) = results["trials"]
    assert trial["n"] == 4 and set(trial["psnr"]) == {"rife", "flow", "baseline"}
    assert trial["psnr"]["rife"] > trial["psnr"]["baseline"] + 5
    assert {"rife", "flow_psnr", "dissolve_psnr"} <= set(trial["self_check"])
    assert results["summary"]["bridge N=4"]["shots"] == 1
