"""What each shot of the footage has already seen: training, tuning, or nothing.

A score on a shot the model learned from, or on which a setting was chosen, says less about
new footage than a score on a shot nothing has seen. The harness labels every shot:

=============  ==============================================================================
``training``   the shipped ``dit`` checkpoint was trained on it: its folder is named by a
               footage entry of ``resources/recipe.json`` (read at run time, so the labels
               follow the recipe of the checkpoint that ships)
``tuned``      not trained on, but settings were chosen by sweeps on it (:data:`TUNED_SHOTS`:
               the quality harness's 7 shots of the README's sweeps, less the 2 in the recipe)
``untouched``  neither: the only shots whose scores stand for footage the project has never
               seen. Every shot named nowhere here (a studio's own footage, new test shots) is
               untouched.
=============  ==============================================================================

Training wins over tuned (Big Buck Bunny shot 1 and the SAM2 bedroom were in the sweeps and
in the recipe). A shot is named as the harness names it (``davis2016_car-shadow``,
``bbb_480p_30s/shot2``); a recipe entry names a folder (``footage/bbb_480p_30s`` covers every
shot of that folder's ``shots.json``).
"""
from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import InputError
from ..resources import RESOURCES

#: the recipe of the shipped dit checkpoint: its footage entries are the training shots
RECIPE = RESOURCES / "recipe.json"

#: shots the project's settings were chosen on (sweeps of the hindcast scale, the bridge's per-pixel
#: weighting, the dit sampling) that the shipped checkpoint was not trained on
TUNED_SHOTS = frozenset({
    "davis2016_blackswan",
    "davis2016_car-shadow",
    "davis2016_kite-surf",
    "propainter_bmx-trees",
    "sttn_schoolgirls",
})


class ShotLabel(str, enum.Enum):
    """What a shot has already seen (see the module docstring)."""

    TRAINING = "training"
    TUNED = "tuned"
    UNTOUCHED = "untouched"


#: what each label means, for the results file
LABEL_MEANING = {
    ShotLabel.TRAINING: "the shipped dit checkpoint was trained on it (its folder is in resources/recipe.json)",
    ShotLabel.TUNED: "not trained on, but settings were chosen by sweeps on it",
    ShotLabel.UNTOUCHED: "neither trained nor tuned on: the headline",
}

#: the labels in the order the table shows them: the headline first
LABEL_ORDER = (ShotLabel.UNTOUCHED, ShotLabel.TUNED, ShotLabel.TRAINING)


def training_folders(recipe: str | Path = RECIPE) -> frozenset[str]:
    """The footage folders a recipe trains on: every path component of its ``footage`` entries'
    ``path`` (``footage/sam2_bedroom/frames`` names ``sam2_bedroom``), less ``footage`` itself."""
    path = Path(recipe)
    try:
        entries = json.loads(path.read_text()).get("footage", [])
        parts = {part for entry in entries for part in Path(entry["path"]).parts}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"{path}: not a readable training recipe ({e})") from None
    return frozenset(parts - {"footage", "frames"})


def shot_label(shot: str, training: Iterable[str], tuned: Iterable[str] = TUNED_SHOTS) -> ShotLabel:
    """The label of ``shot`` (a harness shot name) given the training folders and the tuned shots."""
    if shot.split("/")[0] in set(training):
        return ShotLabel.TRAINING
    if shot in set(tuned):
        return ShotLabel.TUNED
    return ShotLabel.UNTOUCHED


def label_shots(shots: Iterable[str], overrides: Mapping[str, str] | None = None,
                recipe: str | Path = RECIPE) -> dict[str, ShotLabel]:
    """Every shot's label: :func:`shot_label` from the recipe and :data:`TUNED_SHOTS`, then
    ``overrides`` (shot name -> label value) where given. An override of a shot not in ``shots``
    or with an unknown label is an :class:`InputError`."""
    shots = list(shots)
    training = training_folders(recipe)
    labels = {s: shot_label(s, training) for s in shots}
    for shot, value in (overrides or {}).items():
        if shot not in labels:
            raise InputError(f"shot label for {shot!r}: no such shot in this run (shots: {', '.join(shots)})")
        try:
            labels[shot] = ShotLabel(value)
        except ValueError:
            choices = ", ".join(label.value for label in ShotLabel)
            raise InputError(f"shot label for {shot!r}: unknown label {value!r} (choose from: {choices})") from None
    return labels
