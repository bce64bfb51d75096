"""The ``motion`` engine: the flow engine's motion, the shipped RIFE where it helps, extensions that hold up.

It is the :class:`~shotfill.engines.classical.flow.FlowEngine` (OpenCV DIS, weights-free) with
the shipped RIFE 4.x interpolator (:class:`~shotfill.engines.interpolate.RifeInterpolator`) for
bridges, and an extension that degrades towards a hold instead of tearing. It needs torch (the
``dit`` extra) for RIFE; the ``flow`` engine stays the zero-weights baseline and fallback. The
``dit`` engine refines this engine's result (:func:`shotfill.engines.working.plate_flow`).

bridge: a self-check chooses, per target
    First, whether the two sides are one shot at all: when A's last known frame and B's first
    look like different shots (:func:`shot_distance`, a colour-histogram distance, above
    :data:`CUT_DISTANCE`) nothing can follow one motion across the gap, and the bridge is a
    dissolve (RIFE would make a fast morph of two unrelated pictures, and trust it). Otherwise
    there are four ways to make the gap: ``rife`` (RIFE in-betweens of A's last known frame and B's first,
    motion at ``working_side``, warping at plate size), ``rife_blend`` (the same, faded per pixel
    to the dissolve by RIFE's own confidence, as the flow engine fades its bridge), ``flow`` (the
    flow engine's bridge) and ``dissolve``. Each one makes the known frames beside the gap from
    their neighbours across it (:func:`~shotfill.engines.interpolate.self_check_cases`: a span
    one frame longer than the gap, so as hard as the bridge) and is scored against the real
    frames (PSNR, no truth needed). The best one makes the bridge; a lead smaller than
    ``bridge_tie_db`` is a tie, settled in the order of :data:`TIE_ORDER` (``rife_blend``
    first, the dissolve last): on long gaps the held-out frames lie near the known ones, where
    every method is close and the check cannot tell them apart, and the faded in-between falls
    back to the dissolve wherever it is unsure, so a tie costs little. ``info["bridge"]`` says what was chosen, every method's
    self-check PSNR and why; a dissolve (chosen, or the flow engine's own fallback) is also a
    warning. Confidence: RIFE's per-pixel confidence for its in-betweens (low where the two
    warped frames disagree and the network did not resolve an occlusion), the flow engine's for
    its bridge, 0 for a dissolve.

extend: motion that fades towards a hold
    The velocity is the flow engine's (DIS flow of the last known frames, each pixel's median
    over its path; RIFE's flows foretold the frames worse, ``bench/bench_motion.py``), and so is
    the hindcast, the result's confidence: how well the velocity measured without the last known
    frame foretells it, per pixel (:meth:`FlowEngine._hindcast`). Three changes, where the flow
    engine tears:

    - **Travel fades where the motion was not steady.** Each pixel travels ``S (1 - exp(-n / S))``
      frames of its velocity by frame ``n``: at first its own motion, then easing to a stop after
      ``S`` frames of travel, ``S = hold_travel + (H - hold_travel) r ** reliability_power`` with
      ``H`` the ``velocity_half_life`` over ln 2 and ``r`` the motion's reliability, blurred over
      :data:`RELIABILITY_BLUR` of the picture: by default its *steadiness* (:func:`_steadiness`:
      how far the pixel's motion in each pair of known frames strayed from its velocity), or
      (``reliability="hindcast"``) the hindcast. Steady motion runs on and eases as the flow
      engine's does; motion that changed over the known frames stops within ``hold_travel``
      frames: a hold, not a tear. (Measured on the harness's shots, ``bench/bench_motion.py``:
      the hindcast, judged on the grey residual, also stops the steady motion of textured
      shots, and costs 8-frame extensions 0.2-0.5 dB; steadiness keeps them at the flow
      engine's level, and both hold 24-frame extensions near or above a freeze frame.)
    - **No tearing at motion boundaries.** Pixels are moved forward (splatted) and where two
      land on one spot the one whose motion differs most from the picture's median (a subject
      the camera follows, or one that moves over a still scene) stays in front, instead of the
      backward warp's fixed point copying the subject into the background it uncovers. Pixels
      that had just entered the last known frame (no match to measure their motion against)
      take the motion and the hindcast of the pixels around them.
    - **What enters the picture is made, not smeared.** Where nothing lands, the picture shows
      what was not in the last frame: at the frame's edge, the plate's own texture reflected
      about the edge (never a replicated edge); inside, what a subject uncovers, inpainted
      (Telea). Both have confidence 0, so the ``dit`` engine makes them.

    Confidence: the hindcast carried with each pixel, 0 where nothing landed.

fill
    The flow engine's (DIS propagation): RIFE's flows propagated hidden pixels worse on the
    harness's fill trials (``bench/bench_motion.py``).
"""
from __future__ import annotations

import functools
import math
from typing import ClassVar, Optional

import cv2
import numpy as np

from ..errors import InputError
from ..plan import FramePlan, TaskKind
from .base import CancelFn, EngineResult, ProgressFn, check_cancel, no_progress
from .classical import _cv
from .classical.flow import FlowEngine, _check_option, _complete_bridge_flow, _flow_confidence, _invert_motion
from .interpolate import DEFAULT_WORKING_SIDE, Inbetween, RifeInterpolator, psnr, self_check_cases

#: how a bridge can be made (the ``bridge`` option's choices beside ``auto``), and the word for each in ``methods``
BRIDGE_METHODS = {"rife": "interpolated", "rife_blend": "interpolated", "flow": "interpolated",
                  "dissolve": "dissolve"}
#: the ``bridge`` option: let the self-check choose, or always one method
BRIDGE_CHOICES = ("auto", *BRIDGE_METHODS)
#: the order self-check ties are settled in: the first of these within ``bridge_tie_db`` of the best is chosen
TIE_ORDER = ("rife_blend", "flow", "rife", "dissolve")
#: :func:`shot_distance` above which the frames either side of a gap are different shots: a bridge between
#: them is a dissolve (measured at 0.58-0.92 between different shots, the real cuts of Big Buck Bunny and the
#: pairs of ``footage/bridge_pairs.json``; at most 0.31 across 4- and 12-frame gaps inside the 10 harness shots)
CUT_DISTANCE = 0.45
#: the ``extend`` option: the fading, splatted extension, or exactly the flow engine's
EXTEND_CHOICES = ("graceful", "flow")
#: what sets how far an extension's pixels travel (the ``reliability`` option; see the module docstring)
RELIABILITY_CHOICES = ("steadiness", "hindcast")
#: an extension pixel's motion is steady when its motion in each known pair strays from its velocity by
#: less than this floor (flow-size pixels a frame) plus this share of its speed
STEADY_TOLERANCE = (0.3, 0.15)
#: the reliability is blurred over this share of the picture's long side before it sets how far pixels travel
RELIABILITY_BLUR = 1.0 / 60.0
#: a splat's z-order counts motion in steps of this many flow-size pixels a frame (finer differences are one layer)
LAYER_STEP = 0.25


@functools.lru_cache(maxsize=2)
def shared_interpolator(model: str | None, working_side: int, device: str) -> RifeInterpolator:
    """One :class:`RifeInterpolator` per model, working size and device for the process (weights read once)."""
    return RifeInterpolator(model, working_side=working_side, device=device)


class MotionEngine(FlowEngine):
    """The flow engine with RIFE bridges chosen by a self-check, and extensions that fade towards a hold.

    Args:
        bridge: ``"auto"`` (the self-check chooses per target) or one of :data:`BRIDGE_METHODS` always.
        bridge_tie_db: a self-check lead, in dB, smaller than this over ``rife_blend`` is a tie (see
            the module docstring).
        extend: ``"graceful"`` (the module docstring) or ``"flow"`` (the flow engine's extension, with this
            engine's ``velocity_half_life``: with 24, exactly the ``flow`` engine's).
        hold_travel: frames of its velocity an unreliable pixel still travels before it stops.
        reliability: what says how far an extension's motion holds: ``"steadiness"`` of each pixel's
            motion over the known frames (the hindcast with fewer than three), or ``"hindcast"``.
        reliability_power: how sharply travel falls with the reliability (``r ** reliability_power``).
        velocity_half_life: frames after which a trusted pixel's velocity has halved.
        rife_model: the RIFE model folder (the shipped ``resources/rife`` by default).
        working_side: long side, in pixels, RIFE estimates motion at.
        device: torch device RIFE runs on.
        flow_max_side, bridge_min_confidence, fill_max_distance, feather, inpaint_radius: the
            :class:`~shotfill.engines.classical.flow.FlowEngine`'s.
    """

    name: ClassVar[str] = "motion"
    context_frames: ClassVar[int] = 4

    def __init__(self, bridge: str = "auto", bridge_tie_db: float = 0.1, extend: str = "graceful",
                 hold_travel: float = 1.0, reliability: str = "steadiness", reliability_power: float = 3.0,
                 velocity_half_life: float = 8.0,
                 rife_model: str | None = None, working_side: int = DEFAULT_WORKING_SIDE, device: str = "cpu",
                 flow_max_side: int = 960, bridge_min_confidence: float = 0.2, fill_max_distance: int = 16,
                 feather: int = 2, inpaint_radius: int = 5):
        super().__init__(flow_max_side=flow_max_side, velocity_half_life=velocity_half_life,
                         bridge_min_confidence=bridge_min_confidence, fill_max_distance=fill_max_distance,
                         feather=feather, inpaint_radius=inpaint_radius)
        if bridge not in BRIDGE_CHOICES:
            raise InputError(f"engine option 'bridge' must be one of {', '.join(BRIDGE_CHOICES)}, got {bridge!r}")
        if extend not in EXTEND_CHOICES:
            raise InputError(f"engine option 'extend' must be one of {', '.join(EXTEND_CHOICES)}, got {extend!r}")
        _check_option("bridge_tie_db", bridge_tie_db, minimum=0.0)
        _check_option("hold_travel", hold_travel, minimum=0.0)
        if reliability not in RELIABILITY_CHOICES:
            raise InputError(f"engine option 'reliability' must be one of {', '.join(RELIABILITY_CHOICES)}, "
                             f"got {reliability!r}")
        _check_option("reliability_power", reliability_power, minimum=0.0)
        if hold_travel >= self.velocity_half_life / math.log(2.0):
            raise InputError(f"engine option 'hold_travel' ({hold_travel}) must be below the travel of a trusted "
                             f"pixel, velocity_half_life / ln 2 ({self.velocity_half_life / math.log(2.0):.3g})")
        self.bridge, self.bridge_tie_db, self.extend = bridge, float(bridge_tie_db), extend
        self.hold_travel, self.reliability_power = float(hold_travel), float(reliability_power)
        self.reliability = reliability
        self.rife_model, self.working_side, self.device = rife_model, working_side, device
        self.rife = shared_interpolator(None if rife_model is None else str(rife_model), working_side, device)

    def describe(self) -> dict:
        rife = self.rife.describe()
        return {"engine": self.name, "model": f"{rife['model']} + {super().describe()['model']}",
                "model_sha256": rife["model_sha256"]}

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        """The engine's result on the window (no prompt, seed or frame rate changes what it does)."""
        if plan.kind is TaskKind.FILL or (plan.kind is not TaskKind.BRIDGE and self.extend == "flow"):
            result = super().generate(plan, frames, masks, progress=progress, cancel=cancel)
            result.info = {**result.info, "engine": "flow"}
            return result
        self.check_plan(plan)
        _cv.check_window(plan, frames, masks)
        progress = progress or no_progress
        out = np.array(frames, dtype=np.float32, copy=True)
        confidence = np.ones(frames.shape[:3], np.float32)
        methods: list = [None] * len(plan)
        warnings: list = []
        if plan.kind is TaskKind.BRIDGE:
            info = self._bridge_chosen(plan, frames, out, confidence, methods, warnings, progress, cancel)
        else:
            info = self._extend_graceful(plan, frames, out, confidence, progress, cancel)
            for position in plan.generate_positions:
                methods[position] = "extrapolated"
        return EngineResult(frames=out, confidence=confidence, info=info, warnings=warnings, methods=methods)

    # -- bridge ---------------------------------------------------------------------

    def _bridge_chosen(self, plan: FramePlan, frames: np.ndarray, out: np.ndarray, trust: np.ndarray,
                       methods: list, warnings: list, progress: ProgressFn, cancel: Optional[CancelFn]) -> dict:
        a, b, targets = _cv.bridge_layout(plan)
        before = [frames[p] for p in plan.known_positions if p <= a]
        after = [frames[p] for p in plan.known_positions if p >= b]
        scores = self.bridge_self_check(before, after, b - a - 1, cancel)
        distance = shot_distance(frames[a], frames[b])
        chosen, reason = self.choose_bridge(scores, distance)
        report = {"chosen": chosen, "self_check": {k: round(v, 3) for k, v in scores.items()}, "reason": reason,
                  "shot_distance": round(distance, 4)}
        progress(0.2, f"bridge: {chosen} ({reason})")
        if chosen in ("rife", "rife_blend"):
            made = self.rife.interpolate_many(frames[a], frames[b], [t for _, t in targets])
            for i, ((position, t), inbetween) in enumerate(zip(targets, made)):
                check_cancel(cancel)
                out[position] = (inbetween.picture if chosen == "rife"
                                 else _faded(inbetween, _cv.dissolve(frames[a], frames[b], t)))
                trust[position] = inbetween.confidence
                methods[position] = BRIDGE_METHODS[chosen]
            report["confidence"] = round(float(np.mean([m.confidence.mean() for m in made])), 4)
        elif chosen == "flow":
            flow_info = self._bridge(plan, frames, out, trust, lambda f, m: progress(0.2 + 0.8 * f, m), cancel)
            report["flow"] = flow_info
            for position, _ in targets:
                methods[position] = "dissolve" if flow_info["fallback"] == "dissolve" else "interpolated"
            if flow_info["fallback"] == "dissolve":
                reason = (f"the flow engine's bridge, chosen by the self-check, fell back to a dissolve (mean flow "
                          f"confidence {flow_info['bridge_flow_confidence']:.2f})")
                report["reason"] = reason
        else:
            for position, t in targets:
                out[position] = _cv.dissolve(frames[a], frames[b], t)
                trust[position] = 0.0
                methods[position] = "dissolve"
        if all(methods[p] == "dissolve" for p, _ in targets):
            warnings.append(f"bridge: fell back to a dissolve ({reason}); no motion is followed across the gap")
        progress(1.0, "bridge: done")
        return {"bridge": report}

    def choose_bridge(self, scores: dict, distance: float = 0.0) -> tuple[str, str]:
        """``(method, reason)`` for a bridge whose self-check gave ``scores`` (method: PSNR dB) between
        frames :func:`shot_distance` ``distance`` apart."""
        if self.bridge != "auto":
            return self.bridge, f"the engine option bridge={self.bridge}"
        if distance > CUT_DISTANCE:
            return "dissolve", (f"the frames either side of the gap look like different shots (colour distance "
                                f"{distance:.2f}, above {CUT_DISTANCE:g})")
        best = max(scores, key=scores.get)
        chosen = next(m for m in TIE_ORDER if scores[m] > scores[best] - self.bridge_tie_db or m == best)
        if chosen != best:
            return chosen, (f"self-check: {best} leads {chosen} by only {scores[best] - scores[chosen]:.2f} dB "
                            f"(a tie below {self.bridge_tie_db:g} dB, settled in the order {', '.join(TIE_ORDER)})")
        runner_score, runner = max((v, k) for k, v in scores.items() if k != best)
        return best, (f"self-check: {best} {scores[best]:.2f} dB on the known frames beside the gap, "
                      f"{scores[best] - runner_score:.2f} dB above {runner}")

    def bridge_self_check(self, before, after, gap: int, cancel: Optional[CancelFn] = None) -> dict:
        """Each method's PSNR (dB, pooled) on the known frames beside a gap of ``gap`` frames, made
        from their neighbours across it (:func:`~shotfill.engines.interpolate.self_check_cases`)."""
        cases = self_check_cases(before, after, gap)
        made: dict[str, list] = {method: [] for method in BRIDGE_METHODS}
        for case in cases:
            check_cancel(cancel)
            inbetween = self.rife.interpolate(case.a, case.b, case.t)
            dissolve = _cv.dissolve(case.a, case.b, case.t)
            made["rife"].append(inbetween.picture)
            made["rife_blend"].append(_faded(inbetween, dissolve))
            made["flow"].append(self._flow_inbetween(case.a, case.b, case.t))
            made["dissolve"].append(dissolve)
        truth = np.stack([case.truth for case in cases])
        return {method: psnr(np.stack(pictures), truth) for method, pictures in made.items()}

    def _flow_inbetween(self, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
        """The flow engine's bridge frame at ``t`` between ``a`` and ``b`` (what :meth:`FlowEngine._bridge`
        makes there: the same steps for one frame, tested to match)."""
        height, width = a.shape[:2]
        size = _cv.flow_size(height, width, self.flow_max_side)
        grey_a = _cv.resize(_cv.to_grey8(a), size)
        grey_b = _cv.resize(_cv.to_grey8(b), size)
        a_to_b = _cv.estimate_flow(grey_a, grey_b)
        b_to_a = _cv.estimate_flow(grey_b, grey_a)
        trust_a = _flow_confidence(a_to_b, b_to_a, grey_a, grey_b)
        trust_b = _flow_confidence(b_to_a, a_to_b, grey_b, grey_a)
        landing = _cv.landed_inside(a_to_b).sum() + _cv.landed_inside(b_to_a).sum()
        blend = _cv.dissolve(a, b, t)
        if float((trust_a.sum() + trust_b.sum()) / max(landing, 1)) < self.bridge_min_confidence:
            return blend
        a_to_b, trust_a = _complete_bridge_flow(a_to_b, trust_a)
        b_to_a, trust_b = _complete_bridge_flow(b_to_a, trust_b)
        pull_a = _invert_motion(a_to_b, t)
        pull_b = _invert_motion(b_to_a, 1.0 - t)
        seen_a = _cv.resize(_cv.warp(trust_a, pull_a, border=cv2.BORDER_CONSTANT), (height, width))
        seen_b = _cv.resize(_cv.warp(trust_b, pull_b, border=cv2.BORDER_CONSTANT), (height, width))
        from_a = _cv.warp(a, _cv.upsample_field(pull_a, height, width))
        from_b = _cv.warp(b, _cv.upsample_field(pull_b, height, width))
        weight_a = ((1.0 - t) * seen_a)[..., None]
        weight_b = (t * seen_b)[..., None]
        moved = (weight_a * from_a + weight_b * from_b) / np.maximum(weight_a + weight_b, 1e-6)
        local = np.maximum(seen_a, seen_b)[..., None]
        return local * moved + (1.0 - local) * blend

    # -- extend ---------------------------------------------------------------------

    def _extend_graceful(self, plan: FramePlan, frames: np.ndarray, out: np.ndarray, trust: np.ndarray,
                         progress: ProgressFn, cancel: Optional[CancelFn]) -> dict:
        context, targets = _cv.extension_layout(plan)
        height, width = frames.shape[1:3]
        size = _cv.flow_size(height, width, self.flow_max_side)
        used = context[-self.context_frames:]
        greys = [_cv.resize(_cv.to_grey8(frames[p]), size) for p in used]
        pair_flows = []  # pair_flows[i]: flow from frame used[i + 1] back to used[i]
        for i in range(len(used) - 1):
            check_cancel(cancel)
            pair_flows.append(self._pair_flow(frames[used[i + 1]], frames[used[i]], greys[i + 1], greys[i]))
        velocity = self._velocity(pair_flows, size)
        hindcast = self._hindcast(greys, pair_flows, velocity)
        velocity, hindcast = _complete_unseen(velocity, hindcast)
        if self.reliability == "steadiness" and len(pair_flows) >= 2:
            judged = _steadiness(pair_flows, velocity)
        else:
            judged = hindcast
        reliability = np.clip(cv2.GaussianBlur(judged, (0, 0), RELIABILITY_BLUR * max(size)), 0.0, 1.0)
        trusted_travel = self.velocity_half_life / math.log(2.0)
        span = self.hold_travel + (trusted_travel - self.hold_travel) * reliability ** self.reliability_power
        layer = _layers(velocity)
        anchor = frames[context[-1]]
        made = {}  # steps -> share of the picture made (nothing landed there)
        for i, (position, steps) in enumerate(targets):
            check_cancel(cancel)
            travel = span * (1.0 - np.exp(-steps / span))  # (h, w): frames of its velocity each pixel has moved
            pull, empty = _splat_pull(velocity * travel[..., None], layer)
            out[position], trust[position], made[steps] = self._picture(anchor, pull, empty, hindcast)
            progress((i + 1) / len(targets), f"{plan.kind.value}: frame {i + 1}/{len(targets)}")
        speed = float(np.median(np.sqrt(_cv.length2(velocity)))) * width / size[1]
        farthest = max(steps for _, steps in targets)
        return {"extend_speed_px": speed, "context_frames": len(greys),
                "extend": {"hindcast": round(float(hindcast.mean()), 4),
                           "reliability": round(float(reliability.mean()), 4),
                           "travel_frames": round(float(np.median(span * (1.0 - np.exp(-farthest / span)))), 3),
                           "made_share_farthest": round(made[farthest], 4)}}

    def _pair_flow(self, newer: np.ndarray, older: np.ndarray, newer_grey: np.ndarray,
                   older_grey: np.ndarray) -> np.ndarray:
        """The flow from a context frame back to the one before it, at flow size: DIS, as the flow engine's
        (RIFE's flows, :meth:`RifeInterpolator.flow`, foretold the next frame worse: ``bench/bench_motion.py``)."""
        return _cv.estimate_flow(newer_grey, older_grey)

    def _picture(self, anchor: np.ndarray, pull: np.ndarray, empty: np.ndarray,
                 hindcast: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """A new frame from the anchor pulled along ``pull`` (flow size), what was ``empty`` made, and its trust.

        Empty pixels take the pull of the nearest pixel something landed on: beyond the edge they
        read the anchor reflected about it; inside the picture (what a subject uncovers) they are
        inpainted. Returns ``(picture, confidence, share of the picture made)``, at plate size.
        """
        height, width = anchor.shape[:2]
        h, w = empty.shape
        if empty.all():  # everything left the picture: nothing of it is known, hold the last frame
            return anchor.copy(), np.zeros((height, width), np.float32), 1.0
        if empty.any():  # the pull of the nearest landed pixel
            _, labels = cv2.distanceTransformWithLabels(empty.astype(np.uint8), cv2.DIST_L2, 3,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
            landed = ~empty
            lookup = np.zeros((labels.max() + 1, 2), np.float32)
            lookup[labels[landed]] = pull[landed]
            pull = np.where(empty[..., None], lookup[labels], pull)
        grid_x, grid_y = _cv.pixel_grid(h, w)
        inside = _cv.inside(grid_x + pull[..., 0], grid_y + pull[..., 1], h, w)
        field = _cv.upsample_field(pull, height, width)
        plate_x, plate_y = _cv.pixel_grid(height, width)
        picture = _cv.sample(anchor, plate_x + field[..., 0], plate_y + field[..., 1], border=cv2.BORDER_REFLECT_101)
        uncovered = _cv.resize((empty & inside).astype(np.float32), (height, width)) > 0.5
        if uncovered.any():
            picture = _cv.inpaint(picture, uncovered, self.inpaint_radius)
        carried = _cv.warp(hindcast, pull, border=cv2.BORDER_CONSTANT) * ~empty
        confidence = np.clip(_cv.resize(carried.astype(np.float32), (height, width)), 0.0, 1.0)
        return picture, confidence.astype(np.float32), float(empty.mean())


def shot_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How unlike two pictures' colours are: the Bhattacharyya distance (0 same, 1 disjoint) of their
    hue-saturation-value histograms (12 x 4 x 4 bins). Motion barely moves it; a cut does."""
    histograms = []
    for picture in (a, b):
        hsv = cv2.cvtColor(np.clip(picture, 0.0, 1.0).astype(np.float32), cv2.COLOR_RGB2HSV)
        histogram = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 360, 0, 1, 0, 1])
        histograms.append(cv2.normalize(histogram, histogram).flatten())
    return float(cv2.compareHist(histograms[0], histograms[1], cv2.HISTCMP_BHATTACHARYYA))


def _complete_unseen(velocity: np.ndarray, hindcast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Velocity and hindcast where the last known frame shows what the frame before did not, from around it.

    A pixel that has just entered the picture (one frame back it was outside: by its own
    velocity, or by the picture's median one, the camera's) had no match to measure its motion
    against, and the hindcast could not check it: both are taken from the measured pixels
    around it (Telea), so the picture's leading edge moves with the rest instead of holding.
    """
    h, w = hindcast.shape
    median = np.median(velocity.reshape(-1, 2), axis=0)
    unseen = ~_cv.landed_inside(-velocity) | ~_cv.landed_inside(np.broadcast_to(-median, velocity.shape))
    unseen = cv2.dilate(unseen.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if not unseen.any() or unseen.all():
        return velocity, hindcast
    velocity = _cv.inpaint(velocity, unseen, 3)
    hindcast = _cv.inpaint(hindcast[..., None], unseen, 3)[..., 0]
    return velocity, np.clip(hindcast, 0.0, 1.0).astype(np.float32)


def _steadiness(pair_flows: list[np.ndarray], velocity: np.ndarray) -> np.ndarray:
    """How steady each pixel's motion has been over the known frames: float32 ``(h, w)``, 0..1.

    Each pixel is followed back through the pairs (as :meth:`FlowEngine._velocity` does); the
    mean distance ``d`` of its motion in each pair from its velocity (their median), against
    :data:`STEADY_TOLERANCE` (a floor plus a share of its speed), gives ``exp(-(d / tolerance)**2)``.
    (The mean, not the median: a camera shaking back and forth is steady by the median.)
    """
    path = np.zeros(velocity.shape, np.float32)  # from the last frame back to the current one
    spreads = []
    for flow in reversed(pair_flows):
        back = _cv.warp(flow, path)  # newer(x) ~ older(x + back(x)): this pair's motion is -back
        spreads.append(np.sqrt(_cv.length2(-back - velocity)))
        path += back
    floor, share = STEADY_TOLERANCE
    tolerance = floor + share * np.sqrt(_cv.length2(velocity))
    return np.exp(-np.square(np.mean(spreads, axis=0) / tolerance)).astype(np.float32)


def _layers(velocity: np.ndarray) -> np.ndarray:
    """Int64 ``(h, w)``: which pixels stay in front when splatted pixels collide (higher in front).

    How far each pixel's velocity is from the picture's median, in steps of :data:`LAYER_STEP`:
    the median is the scene the camera sees moving, a pixel far from it a subject over it.
    """
    median = np.median(velocity.reshape(-1, 2), axis=0)
    return np.floor(np.sqrt(_cv.length2(velocity - median)) / LAYER_STEP).astype(np.int64)


def _splat_pull(displacement: np.ndarray, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The backward-warp field of pixels moved by ``displacement`` (forward splatting), and where nothing landed.

    Each pixel lands at ``x + displacement(x)`` and covers the four pixels around that point;
    where several cover one pixel the highest ``layer`` wins, then the nearest, then the later
    in raster order. Returns ``(pull, empty)``: ``pull`` float32 ``(h, w, 2)`` (the pixel at
    ``y`` came from ``y + pull(y)``, exact at the landing point and carried to the pixels it
    covers) and ``empty`` bool ``(h, w)``.
    """
    h, w = layer.shape
    xs, ys = _cv.pixel_grid(h, w)
    land_x = (xs + displacement[..., 0]).ravel()
    land_y = (ys + displacement[..., 1]).ravel()
    left, top = np.floor(land_x).astype(np.int64), np.floor(land_y).astype(np.int64)
    source = np.arange(h * w, dtype=np.int64)
    best = np.full(h * w, -1, np.int64)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = left + dx, top + dy
            ok = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
            nearness = np.round((2.0 - np.abs(land_x - cx) - np.abs(land_y - cy)) * 255.0).astype(np.int64)
            # one sortable key: layer, then nearness (9 bits), then the source pixel (32 bits)
            key = (layer.ravel() << 41) | (nearness << 32) | source
            np.maximum.at(best, (cy * w + cx)[ok], key[ok])
    empty = best < 0
    winner = best[~empty] & 0xFFFFFFFF
    pull = np.zeros((h * w, 2), np.float32)
    flat = displacement.reshape(-1, 2)
    pull[~empty] = -flat[winner]
    return pull.reshape(h, w, 2), empty.reshape(h, w)


def _faded(inbetween: Inbetween, dissolve: np.ndarray) -> np.ndarray:
    """The in-between where RIFE trusts it, fading per pixel to the dissolve where it does not."""
    weight = inbetween.confidence[..., None]
    return (weight * inbetween.picture + (1.0 - weight) * dissolve).astype(np.float32)
