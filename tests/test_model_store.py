"""The pretrained-model store: manifest, verification, download (faked hub), and `shotfill models`.

Every test builds a tiny diffusers-style folder in tmp_path; nothing touches the network.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from shotfill import cli
from shotfill.engines.pretrained import store as model_store
from shotfill.errors import EngineUnavailableError
from shotfill.engines.pretrained.store import HubUnreachableError, ModelCheckError

#: the module that checks folders (the package's ``verify`` attribute is the function of that name)
store_verify = importlib.import_module("shotfill.engines.pretrained.store.verification")

SHARD_2 = "transformer/diffusion_pytorch_model-00002-of-00002.safetensors"
MODEL_INDEX = {
    "_class_name": "WanVACEPipeline",
    "_diffusers_version": "0.42.1",
    "scheduler": ["diffusers", "UniPCMultistepScheduler"],
    "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanVACETransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLWan"],
}


def make_model(folder: Path) -> Path:
    """A tiny diffusers-style folder: a scheduler, a tokenizer, a two-shard transformer and a VAE."""
    g = torch.Generator().manual_seed(0)
    (folder / "scheduler").mkdir(parents=True)
    (folder / "tokenizer").mkdir()
    (folder / "transformer").mkdir()
    (folder / "vae").mkdir()
    (folder / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    (folder / "scheduler" / "scheduler_config.json").write_text('{"_class_name": "UniPCMultistepScheduler"}')
    (folder / "tokenizer" / "tokenizer_config.json").write_text('{"model_max_length": 512}')
    (folder / "transformer" / "config.json").write_text('{"num_layers": 2}')
    weight_map = {}
    for i, names in enumerate((["blocks.0.weight"], ["blocks.1.weight", "proj_out.weight"]), start=1):
        shard = f"diffusion_pytorch_model-{i:05d}-of-00002.safetensors"
        save_file({n: torch.randn(8, 8, generator=g) for n in names}, str(folder / "transformer" / shard))
        weight_map.update({n: shard for n in names})
    (folder / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 768}, "weight_map": weight_map}))
    (folder / "vae" / "config.json").write_text('{"base_dim": 4}')
    save_file({"decoder.weight": torch.randn(4, 4, generator=g)},
              str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    return folder


def write_manifest(path: Path, entries: dict) -> Path:
    path.write_text(json.dumps({"version": 1, "models": entries}, indent=2))
    return path


def record(folder: Path, **kw) -> dict:
    args = {"name": "tiny-vace", "engine": "wan-vace", "licence": "Apache-2.0", "repo_id": "someone/tiny-vace",
            "revision": "0123456789abcdef0123456789abcdef01234567"}
    args.update(kw)
    return model_store.record_entry(folder, **args)


@pytest.fixture
def models_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "models"
    monkeypatch.setenv("SHOTFILL_MODELS", str(home))
    return home


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, Path]:
    """A tiny model folder and a manifest that pins every file of it."""
    folder = make_model(tmp_path / "tiny")
    manifest = write_manifest(tmp_path / "models.json", {"tiny-vace": record(folder)})
    return folder, manifest


def models(*argv) -> int:
    """`shotfill models ARGV` through the command line's own entry point (message on stderr, exit code)."""
    return cli.main(["models", *map(str, argv)])


def flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------
# the shipped manifest
# ---------------------------------------------------------------------------
def test_shipped_manifest_has_both_families_and_honest_fields():
    entries = model_store.load_manifest()
    assert {e.engine for e in entries.values()} == {"wan-vace", "ltx"}
    assert {"wan2.1-vace-1.3b", "wan2.1-vace-14b"} <= set(entries)
    raw = json.loads(model_store.MANIFEST.read_text())["models"]
    for name, entry in entries.items():
        assert entry.repo_id and "/" in entry.repo_id
        assert "revision" in raw[name]                       # the field is there, even where unknown (null)
        assert entry.pipeline == {"wan-vace": "WanVACEPipeline", "ltx": "LTXConditionPipeline"}[entry.engine]
        weights = [rel for rel in entry.files if rel.endswith(".safetensors")]
        assert weights and any(entry.files[rel]["sha256"] for rel in weights)
        assert not entry.files_pinned or "model_index.json" in entry.files
    vace = entries["wan2.1-vace-1.3b"]
    assert vace.native_frame_rate == 16 and vace.max_frames == 81
    assert vace.files["vae/diffusion_pytorch_model.safetensors"]["size"] == 507591892


def test_list_shows_every_entry_not_present(models_home, capsys):
    rows = model_store.list_models()
    assert {r["engine"] for r in rows} == {"wan-vace", "ltx"}
    assert not any(r["present"] for r in rows)
    assert all(Path(r["path"]).parent == models_home for r in rows)

    assert models("list") == 0
    out = capsys.readouterr().out
    assert "wan-vace" in out and "ltx" in out and "not downloaded" in out and "GPU memory" in out
    assert models("list", "--json") == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {r["name"] for r in rows}


def test_sha256_matches_the_shipped_dit_checksums(repo_root):
    """Our chunked hashing against checksums written independently (train.export_checkpoint)."""
    dit = repo_root / "resources" / "dit"
    for rel, sha in json.loads((dit / "manifest.json").read_text())["files"].items():
        assert model_store.sha256_file(dit / rel) == sha


# ---------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------
def test_verify_a_complete_pinned_folder(tiny):
    folder, manifest = tiny
    seen = []
    model = model_store.verify(folder, manifest=manifest, progress=lambda f, m: seen.append(f))
    assert model.entry.name == "tiny-vace" and model.path == folder.resolve()
    assert set(model.files) == {"model_index.json", "scheduler/scheduler_config.json",
                                "tokenizer/tokenizer_config.json", "transformer/config.json",
                                "transformer/diffusion_pytorch_model-00001-of-00002.safetensors", SHARD_2,
                                "transformer/diffusion_pytorch_model.safetensors.index.json",
                                "vae/config.json", "vae/diffusion_pytorch_model.safetensors"}
    assert {spec["source"] for spec in model.files.values()} == {"manifest"}
    assert seen == sorted(seen) and seen[-1] == 1.0
    expected = hashlib.sha256(json.dumps({r: s["sha256"] for r, s in sorted(model.files.items())},
                                         sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert model.checksum == expected


def test_a_flipped_byte_is_refused_naming_the_file(tiny, capsys):
    folder, manifest = tiny
    flip_byte(folder / SHARD_2)
    with pytest.raises(ModelCheckError, match="checksum mismatch") as e:
        model_store.verify(folder, manifest=manifest)
    assert SHARD_2 in str(e.value) and e.value.exit_code == 2
    assert models("verify", folder, "--manifest", manifest) == 2
    err = capsys.readouterr().err
    assert SHARD_2 in err and "from the manifest" in err


def test_engines_rehash_only_what_changed_since_the_last_check(tiny, monkeypatch):
    import os

    folder, manifest = tiny
    model_store.verify(folder, manifest=manifest)                      # a full check stamps the folder
    assert (folder / model_store.VERIFIED_STAMP).is_file()
    hashed = []
    real = model_store.sha256_file
    monkeypatch.setattr(store_verify, "sha256_file", lambda path: hashed.append(path.name) or real(path))
    stamped = (folder / model_store.VERIFIED_STAMP).stat().st_mtime_ns
    model_store.open_model(folder, engine="wan-vace", manifest=manifest)
    assert (folder / model_store.VERIFIED_STAMP).stat().st_mtime_ns == stamped      # nothing new to record
    weights = lambda: sorted(name for name in hashed if name.endswith(".safetensors"))  # noqa: E731
    assert weights() == []                                             # nothing changed: no weight re-read
    model_store.verify(folder, manifest=manifest)                      # `shotfill models verify` always re-reads
    assert len(weights()) == 3
    hashed.clear()
    before = (folder / SHARD_2).stat()
    flip_byte(folder / SHARD_2)                                        # changed: re-read and refused
    with pytest.raises(ModelCheckError, match="checksum mismatch"):
        model_store.open_model(folder, engine="wan-vace", manifest=manifest)
    assert weights() == [Path(SHARD_2).name]
    os.utime(folder / SHARD_2, ns=(before.st_atime_ns, before.st_mtime_ns))   # even with its old time,
    with pytest.raises(ModelCheckError, match="checksum mismatch"):           # a full verify finds it
        model_store.verify(folder, manifest=manifest)


def test_a_missing_shard_is_named(tiny, capsys):
    folder, manifest = tiny
    (folder / SHARD_2).unlink()
    assert models("verify", folder, "--manifest", manifest) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and SHARD_2 in err


def test_a_size_mismatch_is_named(tiny):
    folder, manifest = tiny
    with open(folder / "vae" / "config.json", "a") as f:
        f.write(" ")
    with pytest.raises(ModelCheckError, match=r"wrong size: vae/config.json \(\d+ bytes, expected \d+\)"):
        model_store.verify(folder, manifest=manifest)


def test_pickle_weights_are_refused_whatever_else_is_right(tiny):
    folder, manifest = tiny
    torch.save({"w": torch.zeros(2)}, folder / "transformer" / "pytorch_model.bin")
    with pytest.raises(ModelCheckError, match=r"pickle-based.*transformer/pytorch_model\.bin.*safetensors only"):
        model_store.verify(folder, manifest=manifest)


def test_an_extra_weight_file_is_not_part_of_the_model(tiny):
    folder, manifest = tiny
    shutil.copy(folder / SHARD_2, folder / "vae" / "extra.safetensors")
    with pytest.raises(ModelCheckError, match="vae/extra.safetensors not part of model 'tiny-vace'"):
        model_store.verify(folder, manifest=manifest)


def test_unknown_name_lists_the_known_ones(tiny, models_home, capsys):
    _, manifest = tiny
    with pytest.raises(ModelCheckError, match=r"unknown model 'nope' \(known: tiny-vace\)"):
        model_store.model_path("nope", manifest)
    assert models("path", "nope", "--manifest", manifest) == 2
    assert "known: tiny-vace" in capsys.readouterr().err
    with pytest.raises(ModelCheckError, match="neither a model folder nor a model name.*tiny-vace"):
        model_store.verify("nope", manifest=manifest)


def test_path_prints_the_folder_present_or_not(tiny, models_home, capsys):
    folder, manifest = tiny
    assert models("path", "tiny-vace", "--manifest", manifest) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(models_home / "tiny-vace") and "not downloaded yet" in err
    shutil.copytree(folder, models_home / "tiny-vace")
    assert models("path", "tiny-vace", "--manifest", manifest) == 0
    assert capsys.readouterr().err == ""


def test_verify_by_name_in_the_models_dir(tiny, models_home, capsys):
    folder, manifest = tiny
    with pytest.raises(ModelCheckError, match="not present.*shotfill models download tiny-vace"):
        model_store.verify("tiny-vace", manifest=manifest)
    shutil.copytree(folder, models_home / "tiny-vace")
    assert models("verify", "tiny-vace", "--manifest", manifest) == 0
    out = capsys.readouterr().out
    assert f"OK  {SHARD_2}" in out and "(manifest)" in out and "verified" in out


def test_a_folder_is_matched_to_its_entry_or_refused_as_ambiguous(tmp_path):
    folder = make_model(tmp_path / "tiny")
    pinned = record(folder)
    # two entries with the same model_index.json (a model and its fine-tune, say)
    manifest = write_manifest(tmp_path / "m.json", {"a": pinned, "b": dict(pinned, engine="ltx")})
    with pytest.raises(ModelCheckError, match=r"cannot tell which model.*a, b.*--name NAME"):
        model_store.verify(folder, manifest=manifest)
    assert model_store.verify(folder, name="b", manifest=manifest).entry.name == "b"
    assert model_store.verify(folder, engine="wan-vace", manifest=manifest).entry.name == "a"
    with pytest.raises(ModelCheckError, match="is a ltx model, not wan-vace"):
        model_store.verify(folder, name="b", engine="wan-vace", manifest=manifest)
    # only the one that fits: b is missing a file
    b_files = {rel: spec for rel, spec in pinned["files"].items() if rel != "vae/config.json"}
    b_files["vae/other.json"] = {"size": 2, "sha256": "0" * 64}
    fits_a = write_manifest(tmp_path / "n.json", {"a": pinned, "b": dict(pinned, files=b_files)})
    assert model_store.verify(folder, manifest=fits_a).entry.name == "a"
    (folder / "vae" / "config.json").unlink()
    with pytest.raises(ModelCheckError, match=r"not a complete, checksum-matching model of this manifest: "
                                              r"as a: incomplete model 'a': missing vae/config.json; "
                                              r"as b: incomplete model 'b': missing vae/other.json"):
        model_store.verify(folder, manifest=fits_a)
    # a model_index.json that matches no pinned entry
    (folder / "model_index.json").write_text(json.dumps(dict(MODEL_INDEX, _diffusers_version="0.1")))
    with pytest.raises(ModelCheckError, match=r"no model in this manifest fits its model_index.json"):
        model_store.verify(folder, manifest=manifest)


def test_verify_a_folder_against_the_shipped_manifest_says_what_is_wrong(tmp_path, capsys):
    assert models("verify", tmp_path) == 2
    assert "no model_index.json: not a model folder in diffusers format" in capsys.readouterr().err
    folder = make_model(tmp_path / "tiny")                # a WanVACEPipeline, but not a real release
    assert models("verify", folder) == 2
    err = capsys.readouterr().err
    assert "as wan2.1-vace-1.3b: incomplete model 'wan2.1-vace-1.3b': missing text_encoder/config.json" in err
    assert "as wan2.1-vace-14b: incomplete" in err and "as ltx" not in err      # not an LTX pipeline


def test_manifest_errors_name_the_field(tmp_path, tiny):
    folder, _ = tiny
    good = record(folder)
    bad_sha = dict(good, files=dict(good["files"], **{SHARD_2: {"size": 1, "sha256": "abc"}}))
    with pytest.raises(ModelCheckError, match=f"model 'x': file '{SHARD_2}': sha256 must be 64"):
        model_store.load_manifest(write_manifest(tmp_path / "a.json", {"x": bad_sha}))
    escape = dict(good, files={"../outside.safetensors": {"size": None, "sha256": None}})
    with pytest.raises(ModelCheckError, match="not a path inside the model folder"):
        model_store.load_manifest(write_manifest(tmp_path / "b.json", {"x": escape}))
    with pytest.raises(ModelCheckError, match="field 'engine'"):
        model_store.load_manifest(write_manifest(tmp_path / "c.json", {"x": dict(good, engine="")}))
    with pytest.raises(ModelCheckError, match="manifest not found"):
        model_store.load_manifest(tmp_path / "none.json")


# ---------------------------------------------------------------------------
# entries that do not pin everything
# ---------------------------------------------------------------------------
def unpinned_entry(**files) -> dict:
    return {"engine": "wan-vace", "pipeline": "WanVACEPipeline", "repo_id": "someone/tiny-vace",
            "revision": None, "licence": "Apache-2.0", "files_pinned": False, "files": files}


def test_unpinned_completeness_comes_from_model_index(tmp_path):
    folder = make_model(tmp_path / "tiny")
    manifest = write_manifest(tmp_path / "m.json", {"tiny-vace": unpinned_entry()})
    (folder / "vae" / "config.json").unlink()
    with pytest.raises(ModelCheckError, match=r"missing vae/config.json \(component 'vae', AutoencoderKLWan\)"):
        model_store.verify(folder, manifest=manifest)
    make_model(tmp_path / "again")
    (tmp_path / "again" / SHARD_2).unlink()
    with pytest.raises(ModelCheckError, match=f"missing {SHARD_2}"):
        model_store.verify(tmp_path / "again", manifest=manifest)


def test_unpinned_without_a_download_record_has_no_checksums(tmp_path):
    folder = make_model(tmp_path / "tiny")
    shard_1 = "transformer/diffusion_pytorch_model-00001-of-00002.safetensors"
    pin = {shard_1: {"size": None, "sha256": model_store.sha256_file(folder / shard_1)}}
    manifest = write_manifest(tmp_path / "m.json", {"tiny-vace": unpinned_entry(**pin)})
    with pytest.raises(ModelCheckError, match=r"no checksum for .*vae/diffusion_pytorch_model.safetensors.*"
                                              r"no \.shotfill-download\.json.*shotfill models download tiny-vace"):
        model_store.verify(folder, manifest=manifest)


# ---------------------------------------------------------------------------
# download (the hub is faked; nothing touches the network)
# ---------------------------------------------------------------------------
@dataclass
class FakeLfs:
    size: int
    sha256: str


@dataclass
class FakeSibling:
    rfilename: str
    size: int
    blob_id: str | None
    lfs: FakeLfs | None


class FakeHub:
    """HfApi.model_info and snapshot_download over a local folder."""

    def __init__(self, source: Path, sha: str = "f" * 40):
        self.source, self.sha, self.calls = source, sha, []
        self.siblings = []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            rel, data = path.relative_to(source).as_posix(), path.read_bytes()
            if rel.endswith(".safetensors"):
                lfs = FakeLfs(len(data), hashlib.sha256(data).hexdigest())
                self.siblings.append(FakeSibling(rel, len(data), None, lfs))
            else:
                blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
                self.siblings.append(FakeSibling(rel, len(data), blob, None))
        for rel in ("big-single-file.safetensors", "media/preview.json"):   # not the pipeline's
            self.siblings.append(FakeSibling(rel, 1, "0" * 40, None))

    def model_info(self, repo_id, *, revision=None, files_metadata=False):
        self.calls.append(("model_info", repo_id, revision))
        return type("Info", (), {"sha": self.sha, "siblings": self.siblings})()

    def snapshot_download(self, repo_id, *, revision, allow_patterns, local_dir):
        self.calls.append(("snapshot_download", repo_id, revision, sorted(allow_patterns)))
        for sibling in self.siblings:
            if any(fnmatch(sibling.rfilename, p) for p in allow_patterns):
                (Path(local_dir) / sibling.rfilename).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.source / sibling.rfilename, Path(local_dir) / sibling.rfilename)
        return str(local_dir)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub = FakeHub(make_model(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", hub.model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    return hub


def test_download_records_hub_checked_sums_then_verifies(tmp_path, models_home, fake_hub, capsys):
    manifest = write_manifest(tmp_path / "m.json", {"tiny-vace": unpinned_entry()})
    assert models("download", "tiny-vace", "--manifest", manifest) == 0
    folder = models_home / "tiny-vace"
    rec = json.loads((folder / model_store.DOWNLOAD_RECORD).read_text())
    assert rec["name"] == "tiny-vace" and rec["revision"] == fake_hub.sha and rec["checked_against_hub"]
    assert set(rec["files"]) == set(model_store.component_files(fake_hub.source))
    assert not (folder / "big-single-file.safetensors").exists() and not (folder / "media").exists()
    assert [c[0] for c in fake_hub.calls] == ["model_info", "snapshot_download", "snapshot_download"]
    assert fake_hub.calls[1][3] == ["model_index.json"]                 # the index first, to find the components
    assert fake_hub.calls[2][2] == fake_hub.sha                         # downloads the resolved commit
    out = capsys.readouterr().out
    assert f"OK  {SHARD_2}" in out and "(download record)" in out
    # the record now names the folder's entry, and its checksums catch a change
    assert model_store.verify(folder, manifest=manifest).files[SHARD_2]["source"] == "download record"
    flip_byte(folder / SHARD_2)
    with pytest.raises(ModelCheckError, match=f"{SHARD_2}.*from the download record"):
        model_store.verify("tiny-vace", manifest=manifest)


def test_download_of_a_pinned_entry_fetches_exactly_its_files(tmp_path, models_home, fake_hub):
    manifest = write_manifest(tmp_path / "m.json", {"tiny-vace": record(fake_hub.source)})
    model = model_store.download("tiny-vace", manifest=manifest)
    assert {spec["source"] for spec in model.files.values()} == {"manifest"}
    assert fake_hub.calls[1][3] == sorted(model.files)


def test_download_refuses_a_file_that_differs_from_the_hub(tmp_path, models_home, fake_hub):
    manifest = write_manifest(tmp_path / "m.json", {"tiny-vace": unpinned_entry()})
    next(s for s in fake_hub.siblings if s.rfilename == SHARD_2).lfs.sha256 = "1" * 64
    with pytest.raises(ModelCheckError, match=f"{SHARD_2}: sha256 .* differs from the hub's"):
        model_store.download("tiny-vace", manifest=manifest)
    assert not (models_home / "tiny-vace" / model_store.DOWNLOAD_RECORD).exists()


def test_download_offline_says_so_and_writes_nothing(tiny, models_home, monkeypatch, capsys):
    _, manifest = tiny
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models("download", "tiny-vace", "--manifest", manifest) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Hugging Face Hub: this machine is offline" in err
    assert f"copy the folder to {models_home / 'tiny-vace'}" in err and "shotfill models verify tiny-vace" in err
    assert not models_home.exists()


def test_download_without_network_says_so(tiny, models_home, monkeypatch):
    import httpx2
    import huggingface_hub
    from huggingface_hub import constants

    def no_network(*args, **kwargs):
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    _, manifest = tiny
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_network)
    with pytest.raises(HubUnreachableError, match="offline \\(ConnectError\\)") as e:
        model_store.download("tiny-vace", manifest=manifest)
    assert e.value.exit_code == 2 and not models_home.exists()


# ---------------------------------------------------------------------------
# what engines call, and pinning
# ---------------------------------------------------------------------------
def test_open_model_finds_the_present_one_or_says_what_to_download(tiny, models_home):
    folder, manifest = tiny
    with pytest.raises(EngineUnavailableError, match=f"no wan-vace model is present in {models_home}: "
                                                     r"shotfill models download tiny-vace \(0.0 GB\)"):
        model_store.open_model(None, engine="wan-vace", manifest=manifest)
    with pytest.raises(EngineUnavailableError, match="has no ltx model"):
        model_store.open_model(None, engine="ltx", manifest=manifest)
    shutil.copytree(folder, models_home / "tiny-vace")
    assert model_store.open_model(None, engine="wan-vace", manifest=manifest).entry.name == "tiny-vace"
    assert model_store.open_model(folder, engine="wan-vace", manifest=manifest).path == folder.resolve()
    with pytest.raises(ModelCheckError, match="is a wan-vace model, not ltx"):
        model_store.open_model("tiny-vace", engine="ltx", manifest=manifest)


def test_record_cli_pins_a_folder_that_then_verifies(tmp_path, capsys):
    folder = make_model(tmp_path / "tiny")
    manifest = tmp_path / "studio.json"
    assert models("record", folder, "--manifest", manifest, "--name", "ours", "--engine", "wan-vace",
                  "--licence", "proprietary", "--frame-rate", 24, "--gpu-gpu", 12.5) == 0
    entry = model_store.load_manifest(manifest)["ours"]
    assert entry.pipeline == "WanVACEPipeline" and entry.files_pinned and entry.native_frame_rate == 24
    assert entry.gpu_memory_gib["gpu"] == 12.5 and entry.size_bytes == sum(
        (folder / rel).stat().st_size for rel in entry.files)
    assert models("record", folder, "--manifest", manifest, "--name", "ours", "--engine", "wan-vace",
                  "--licence", "proprietary") == 2
    assert "already has a model 'ours'" in capsys.readouterr().err
    assert models("verify", folder, "--manifest", manifest) == 0
    assert "model 'ours' verified" in capsys.readouterr().out
