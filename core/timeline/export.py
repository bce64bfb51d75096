"""Writing a new version's files: media references rebased for the folder it is written in, the
export formats (EDL, FCP 7 XML, FCPXML: what each cannot carry, said in a note), and every file staged,
then moved into place together.
"""
from __future__ import annotations

import itertools
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import opentimelineio as otio

from ..errors import TimelineError
from .load import _reason
from .targets import METADATA_KEY, ROLE_GENERATED, _local_path, result_target_id
from .versions import relative_or_absolute, version_path

#: Export formats by the names people use, mapped to OpenTimelineIO adapter names.
EXPORT_ALIASES = {"edl": "cmx_3600", "xml": "fcp_xml", "fcpxml": "fcpx_xml", "aaf": "AAF"}

#: The export a new version gets by default, by the suffix of the edit it came from: the input's
#: own format, so the editor can open the result where the cut came from (the .otio is always written).
INPUT_FORMAT_EXPORTS = {".edl": "cmx_3600", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml"}

#: Adapters that cannot write an ``ImageSequenceReference``, and what happens instead.
NO_IMAGE_SEQUENCES = {
    "fcp_xml": "it has no image-sequence media: each sequence is written as a reference to its first frame file",
    "fcpx_xml": "it has no image-sequence media: each sequence is written as a reference to its first frame file",
    "AAF": "it only writes clips that came from an AAF (mob ids), not image sequences",
}

#: Of those, the ones shotfill writes anyway, each sequence referenced by its first frame file.
FIRST_FRAME_EXPORTS = frozenset({"fcp_xml", "fcpx_xml"})


def _references(clip):
    for reference in clip.media_references().values():
        if isinstance(reference, otio.schema.ImageSequenceReference):
            yield reference, "target_url_base"
        elif isinstance(reference, otio.schema.ExternalReference):
            yield reference, "target_url"


def _is_relative(url: str) -> bool:
    return bool(url) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", url) and not Path(url).is_absolute() \
        and not url.startswith("/")


def mostly_relative(timeline, folder: Path) -> bool:
    """Whether most of the edit's own local media references (shotfill's aside) are relative."""
    relative = absolute = 0
    for clip in timeline.find_clips():
        if result_target_id(clip) is not None:
            continue
        for reference, attribute in _references(clip):
            url = getattr(reference, attribute)
            if _is_relative(url):
                relative += 1
            elif _local_path(url, folder) is not None:
                absolute += 1
    return relative > absolute


def reference_media(timeline, base_folder: Path, out_folder: Path, relative: bool) -> None:
    """Generated sequences referenced relative to ``out_folder`` (or absolute); other relative
    references moved from ``base_folder`` to ``out_folder``."""
    for clip in timeline.find_clips():
        ours = clip.metadata.get(METADATA_KEY)
        generated = result_target_id(clip) is not None and isinstance(ours, Mapping) \
            and ours.get("role", ROLE_GENERATED) == ROLE_GENERATED
        for reference, attribute in _references(clip):
            url = getattr(reference, attribute)
            folder_url = attribute == "target_url_base"
            if generated:
                path = Path(_local_path(url, base_folder) if url else base_folder)
                if relative:
                    new = relative_or_absolute(path, out_folder)
                    new = new + "/" if folder_url and not new.endswith("/") else new
                else:
                    new = path.as_uri() + ("/" if folder_url else "")
            elif _is_relative(url) and base_folder != out_folder:
                new = relative_or_absolute(Path(os.path.normpath(base_folder / url)), out_folder)
                new = new + "/" if folder_url and url.endswith("/") else new
            else:
                continue
            setattr(reference, attribute, new)


def export_adapter(export_format: str) -> otio.adapters.Adapter:
    name = EXPORT_ALIASES.get(export_format.lower(), export_format)
    try:
        adapter = otio.adapters.from_name(name)
    except otio.exceptions.NotSupportedError:
        installed = ", ".join(otio.adapters.available_adapter_names())
        raise TimelineError(f"export format {export_format!r}: no such OpenTimelineIO adapter is "
                            f"installed (installed: {installed})") from None
    if adapter.name == "otio_json":
        raise TimelineError(f"export format {export_format!r}: the result is always saved as .otio")
    if not adapter.has_feature("write"):
        raise TimelineError(f"export format {export_format!r}: the {adapter.name} adapter cannot write")
    return adapter


def _outputs(otio_path: Path, otio_adapter: str, export) -> list[tuple[Path, str]]:
    outputs = [(otio_path, otio_adapter)]
    if export is not None:
        outputs.append((otio_path.with_suffix(f".{export.suffixes[0]}"), export.name))
    return outputs


def write_explicit(prepare, out_path: Path, export, required: bool, edit_path: Path, notes: list) -> Path:
    try:
        adapter = otio.adapters.from_filepath(str(out_path))
    except otio.exceptions.NoKnownAdapterForExtensionError:
        raise TimelineError(
            f"{out_path}: no OpenTimelineIO adapter writes '{out_path.suffix}' files") from None
    outputs = _outputs(out_path, adapter.name, export)
    for path, _ in outputs:
        if path.resolve() == edit_path.resolve():
            raise TimelineError(f"{path}: that is the input edit; shotfill never overwrites it")
    _write_files(prepare(out_path), outputs, required, notes)
    return out_path


def write_next_version(prepare, root: Path, export, required: bool, notes: list) -> Path:
    """Write the first free ``<stem>.shotfill[.vN].otio`` (and its export) beside ``root``."""
    for version in itertools.count(1):
        otio_path = version_path(root, version)
        outputs = _outputs(otio_path, "otio_json", export)
        if any(path.exists() for path, _ in outputs):
            continue
        try:
            otio_path.open("x").close()   # claim this version against a concurrent writer
        except FileExistsError:
            continue
        except OSError as err:
            raise TimelineError(f"{otio_path}: cannot write next to the edit: {err}") from err
        try:
            _write_files(prepare(otio_path), outputs, required, notes)
        except BaseException:
            otio_path.unlink()
            raise
        return otio_path


def _for_adapter(timeline, adapter: str, path: Path, otio_name: str, notes: list):
    """The timeline as ``adapter`` can write it, and a note of what the format leaves out."""
    if adapter == "cmx_3600":
        video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
        if len(video) > 1:
            flat = timeline.clone()
            tracks = [t for t in flat.tracks if t.kind == otio.schema.TrackKind.Video]
            merged = otio.algorithms.flatten_stack(tracks)
            merged.name = tracks[0].name
            others = [t.clone() for t in flat.tracks if t.kind != otio.schema.TrackKind.Video]
            del flat.tracks[:]
            flat.tracks.append(merged)
            for track in others:
                flat.tracks.append(track)
            notes.append(f"{path.name}: an EDL holds one video track, so the {len(video)} video tracks are "
                         f"flattened onto one as the edit plays (top track first); {otio_name} keeps them apart")
            return flat
        return timeline
    if adapter in FIRST_FRAME_EXPORTS:
        out = timeline.clone()
        first = None
        for clip in out.find_clips():
            references = clip.media_references()
            changed = {}
            for key, reference in references.items():
                if isinstance(reference, otio.schema.ImageSequenceReference):
                    url = _first_frame_url(reference, path.parent)
                    if first is None or (result_target_id(clip) is not None and first[1] is None):
                        first = (url, result_target_id(clip))
                    changed[key] = otio.schema.ExternalReference(
                        target_url=url, available_range=reference.available_range)
                else:
                    changed[key] = reference.clone()
            if any(isinstance(r, otio.schema.ImageSequenceReference) for r in references.values()):
                clip.set_media_references(changed, clip.active_media_reference_key)
        if first is not None:
            notes.append(
                f"{path.name}: {'FCP 7 XML (Premiere)' if adapter == 'fcp_xml' else 'FCPXML'} holds no image "
                f"sequences, so each is referenced there by its first frame file ({first[0]}); an editing "
                f"application may read that as one still image (not checked here): import the sequence's "
                f"folder as an image sequence and relink, or use {otio_name}")
        return out
    return timeline


def _first_frame_url(reference, folder: Path) -> str:
    base = reference.target_url_base
    directory = Path(_local_path(base, folder) if base else folder)
    number = f"{reference.start_frame:0{reference.frame_zero_padding}d}"
    return (directory / f"{reference.name_prefix}{number}{reference.name_suffix}").absolute().as_uri()


def _write_files(timeline, outputs: list[tuple[Path, str]], required: bool, notes: list) -> None:
    """Write every ``(path, adapter)`` in a staging folder, then move them all into place.

    The first output (the ``.otio``) is always written; an export that is not ``required`` and
    fails is left out, with a note saying why.
    """
    for path, adapter in outputs[1:]:
        if adapter in NO_IMAGE_SEQUENCES and adapter not in FIRST_FRAME_EXPORTS:
            reason = (f"{path}: the {adapter} adapter cannot write the generated image "
                      f"sequences ({NO_IMAGE_SEQUENCES[adapter]}); use the .otio or export 'edl'")
            if required:
                raise TimelineError(reason)
            notes.append(reason)
            outputs = outputs[:1]
    folder = outputs[0][0].parent
    try:
        staging = tempfile.TemporaryDirectory(dir=folder, prefix=".shotfill-")
    except OSError as err:
        raise TimelineError(f"{folder}: cannot write there: {err}") from err
    with staging:
        staged = []
        for number, (path, adapter) in enumerate(outputs):
            temporary = Path(staging.name) / path.name
            own_notes: list[str] = []
            try:
                content = _for_adapter(timeline, adapter, path, outputs[0][0].name, own_notes) if number else timeline
                otio.adapters.write_to_file(content, str(temporary), adapter_name=adapter)
            except Exception as err:  # adapters are plugins and raise anything
                reason = f"{path}: the {adapter} adapter could not write it: {_reason(err)}"
                if number == 0 or required:
                    raise TimelineError(reason) from err
                notes.append(f"{reason}; only {outputs[0][0].name} is written")
                continue
            notes.extend(own_notes)
            staged.append((temporary, path))
        for temporary, path in staged:
            os.replace(temporary, path)

