"""Classical optical-flow engine: extrapolate, interpolate, propagate.

No weights, no torch: OpenCV's DIS optical flow (medium preset) on 8-bit grey
copies at a reduced size (long side at most ``flow_max_side``), displacement
fields upsampled to the plate, full-resolution pixels moved by backward warping.
It is the reference every generative engine must beat, and the engine that
always works.

extend (forward; backward is the mirror image, time reversed)
    The motion of the last known frames is measured (flow between consecutive
    context frames, followed back along each pixel's path, per-pixel median,
    median-filtered) and continued at constant velocity from the last known
    frame. Each new frame is that frame warped backward: the field ``D`` with
    ``D(y) = -s v(y + D(y))`` (solved by a few fixed-point steps) tells where
    the pixel now at ``y`` started, ``s`` being the distance travelled. The
    velocity decays with a half-life of ``velocity_half_life`` frames, so a
    long extension eases to a stop instead of stretching the flow's errors
    further every frame (``s`` tends to ``half_life / ln 2`` frames of
    travel). Content entering the picture is the edge replicated.

bridge
    Flow both ways between A's last known frame and B's first, and a per-pixel
    confidence in each vector (forward-backward consistency times photometric
    agreement). Their mean over the vectors that land inside the other frame
    is the bridge's confidence: below ``bridge_min_confidence`` (unrelated
    shots, a cut, too much motion) the whole bridge is a dissolve. Otherwise
    unreliable vectors are replaced by the reliable flow around them (trusted
    when they carry content out of the picture, not otherwise), and each new
    frame at time ``t`` pulls A forward by ``t`` and B backward by ``1 - t``
    and blends them, weighted by ``1 - t`` and ``t`` times each side's
    confidence; per pixel, the result fades to the dissolve where neither side
    is confident. The result's ``info`` reports the confidence and the fallback taken.

fill
    Flow between consecutive frames is estimated on grey copies whose holes are
    pre-filled by Telea inpainting (so the content to remove does not drag the
    flow), then completed inside each hole from the flow around it. Each hole
    pixel is tracked frame by frame in both directions, and takes its value
    from the nearest frame where its track is consistent (forward-backward)
    and lands on a known pixel (mask 0); both directions are averaged when
    they succeed at the same distance. What no track reaches within
    ``fill_max_distance`` frames is inpainted spatially (Telea). The seam is
    softened over ``feather`` pixels inside the hole only.

confidence
    The result's ``confidence`` (float32 ``(T, H, W)``,
    0..1) says how far the engine trusts each pixel of its own picture: 1 on
    known pixels; for an extension, how well the motion model foretold the
    last known frame where the pixel was carried from (a held-out hindcast,
    :meth:`FlowEngine._hindcast`; 0 where the edge is replicated); for a
    bridge, how far each pixel is the motion-compensated blend rather than
    the dissolve it fades to (0 where the whole bridge is a dissolve); for a
    fill, 1 where a track reached a known pixel, 0 where the pixel was
    inpainted. Model engines weigh their change to this engine's result by
    ``1 - confidence`` (:mod:`shotfill.engines.dit.engine`, ``output="correction"``).
"""
from __future__ import annotations

from typing import ClassVar, Iterator, Optional

import cv2
import numpy as np

from ...errors import InputError
from ...plan import FramePlan, TaskKind
from . import _cv
from ..base import CancelFn, Engine, EngineResult, ProgressFn, check_cancel, no_progress

#: photometric residual (grey, 0..1) at which a flow vector's confidence has fallen to 1/e
PHOTOMETRIC_SCALE = 0.05
#: the same for an extension's hindcast of its last known frame (stricter: chosen by a sweep of the
#: dit engine's correction on the quality harness's 7 shots, scales 0.009 to 0.07; 0.013-0.025 were best)
HINDCAST_SCALE = 0.02
#: a bridge flow vector with less trust than this is replaced by the flow around it
RELIABLE = 0.5
#: fixed-point steps when inverting a motion field into a backward-warp field
INVERSION_STEPS = 4
#: a fill source pixel counts as known when its sampled mask is below this
KNOWN_MASK = 1e-3
_KERNEL = np.ones((3, 3), np.uint8)


class FlowEngine(Engine):
    """Optical-flow extrapolation, interpolation and propagation (OpenCV DIS).

    Args:
        flow_max_side: long side, in pixels, of the copies flow is estimated on.
        velocity_half_life: frames after which an extension's velocity has halved.
        bridge_min_confidence: mean flow confidence (0..1) below which a bridge is a dissolve.
        fill_max_distance: how many frames away a fill looks for a hole's pixels.
        feather: width in pixels of the softened seam inside a filled hole (0: none).
        inpaint_radius: Telea neighbourhood radius for what propagation cannot fill.

    :meth:`generate` returns an :class:`~shotfill.engines.base.EngineResult` whose ``info`` holds
    what the engine measured and decided (for example ``{"bridge_flow_confidence": 0.2,
    "fallback": "dissolve"}``) and whose ``confidence`` is its per-pixel trust in its result (see
    the module docstring).
    """

    name: ClassVar[str] = "flow"
    context_frames: ClassVar[int] = 4

    def __init__(self, flow_max_side: int = 960, velocity_half_life: float = 24.0,
                 bridge_min_confidence: float = 0.2, fill_max_distance: int = 16,
                 feather: int = 2, inpaint_radius: int = 5):
        _check_option("flow_max_side", flow_max_side, minimum=16, whole=True)
        _check_option("velocity_half_life", velocity_half_life, minimum=1e-3)
        _check_option("bridge_min_confidence", bridge_min_confidence, minimum=0.0, maximum=1.0)
        _check_option("fill_max_distance", fill_max_distance, minimum=1, whole=True)
        _check_option("feather", feather, minimum=0, whole=True)
        _check_option("inpaint_radius", inpaint_radius, minimum=1, whole=True)
        self.flow_max_side = flow_max_side
        self.velocity_half_life = float(velocity_half_life)
        self.bridge_min_confidence = float(bridge_min_confidence)
        self.fill_max_distance = fill_max_distance
        self.feather = feather
        self.inpaint_radius = inpaint_radius

    def describe(self) -> dict:
        return {"engine": self.name, "model": f"opencv-{cv2.__version__} DIS medium", "model_sha256": ""}

    def generate(self, plan: FramePlan, frames, masks, *, prompt: str | None = None, seed: int = 0,
                 frame_rate: float | None = None, progress: Optional[ProgressFn] = None,
                 cancel: Optional[CancelFn] = None) -> EngineResult:
        self.check_plan(plan)
        _cv.check_window(plan, frames, masks)
        progress = progress or no_progress
        out = np.array(frames, dtype=np.float32, copy=True)
        confidence = np.ones(frames.shape[:3], np.float32)
        methods: list = [None] * len(plan)
        if plan.kind is TaskKind.BRIDGE:
            info = self._bridge(plan, frames, out, confidence, progress, cancel)
            for p in plan.generate_positions:
                methods[p] = "dissolve" if info["fallback"] == "dissolve" else "interpolated"
        elif plan.kind is TaskKind.FILL:
            info = self._fill(plan, frames, masks, out, confidence, progress, cancel)
            for p in _cv.fill_targets(plan, masks):
                tracked = confidence[p][masks[p] > _cv.HOLE_THRESHOLD]
                methods[p] = ("propagated" if tracked.all() else "inpainted" if not tracked.any()
                              else "propagated+inpainted")
        else:
            info = self._extend(plan, frames, out, confidence, progress, cancel)
            for p in plan.generate_positions:
                methods[p] = "extrapolated"
        return EngineResult(frames=out, confidence=confidence, info=info, methods=methods)

    # -- extend ---------------------------------------------------------------------

    def _extend(self, plan: FramePlan, frames: np.ndarray, out: np.ndarray, trust: np.ndarray,
                progress: ProgressFn, cancel: Optional[CancelFn]) -> dict:
        context, targets = _cv.extension_layout(plan)
        height, width = frames.shape[1:3]
        size = _cv.flow_size(height, width, self.flow_max_side)
        greys = [_cv.resize(_cv.to_grey8(frames[p]), size) for p in context[-self.context_frames:]]
        pair_flows = []  # pair_flows[i]: flow from greys[i + 1] back to greys[i]
        for newer, older in zip(greys[1:], greys[:-1]):
            check_cancel(cancel)
            pair_flows.append(_cv.estimate_flow(newer, older))
        velocity = self._velocity(pair_flows, greys[-1].shape)
        hindcast = self._hindcast(greys, pair_flows, velocity)
        anchor = frames[context[-1]]
        decay = 0.5 ** (1.0 / self.velocity_half_life)
        for i, (position, steps) in enumerate(targets):
            check_cancel(cancel)
            travel = (1.0 - decay ** steps) / (1.0 - decay)  # sum of decay**j for j < steps
            pull = _invert_motion(velocity, travel)
            out[position] = _cv.warp(anchor, _cv.upsample_field(pull, height, width))
            carried = _cv.warp(hindcast, pull, border=cv2.BORDER_CONSTANT)  # 0 where the edge is replicated
            trust[position] = _cv.resize(carried, (height, width))
            progress((i + 1) / len(targets), f"{plan.kind.value}: frame {i + 1}/{len(targets)}")
        speed = float(np.median(np.sqrt(_cv.length2(velocity)))) * width / size[1]
        return {"extend_speed_px": speed, "context_frames": len(greys)}

    def _hindcast(self, greys: list[np.ndarray], pair_flows: list[np.ndarray], velocity: np.ndarray) -> np.ndarray:
        """How well the motion model foretells the last known frame: float32 ``(h, w)``, 0..1, on its grid.

        With three or more frames, the velocity measured without the last frame predicts it from
        the one before (a held-out test); with two, the measured ``velocity`` itself does (only
        a photometric check). The agreement is ``exp(-(r / HINDCAST_SCALE) ** 2)`` of the
        blurred grey residual ``r``. A single frame foretells nothing: 0.
        """
        if len(greys) < 2:
            return np.zeros(greys[-1].shape, np.float32)
        if len(greys) >= 3:
            held_out = self._velocity(pair_flows[:-1], greys[-2].shape)  # measured without the last frame
            predicted = _cv.warp(greys[-2], _invert_motion(held_out, 1.0))
        else:
            predicted = _cv.warp(greys[-2], -velocity)  # the pixel now at y was at y - v(y)
        residual = np.abs(greys[-1].astype(np.float32) - predicted.astype(np.float32)) / 255.0
        residual = cv2.GaussianBlur(residual, (0, 0), 2.0)
        return np.exp(-((residual / HINDCAST_SCALE) ** 2)).astype(np.float32)

    @staticmethod
    def _velocity(pair_flows: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """Motion per frame of each pixel of the last of the frames, ``(h, w, 2)``.

        ``pair_flows[i]`` is the flow from frame ``i + 1`` back to frame ``i``
        (``newer(x) ~ older(x + flow(x))``); ``shape`` is a frame's ``(h, w)``.
        The flow of every consecutive pair is sampled where the pixel was at
        that time (following it back), so the median over pairs is a median
        over one pixel's recent history, robust to one bad flow.
        """
        path = np.zeros(tuple(shape) + (2,), np.float32)  # from the last frame back to the current one
        samples = []
        for flow in reversed(pair_flows):
            back = _cv.warp(flow, path)  # newer(x) ~ older(x + back(x))
            samples.append(-back)
            path += back
        if not samples:  # a single known frame: nothing moves
            return path
        return cv2.medianBlur(np.median(samples, axis=0).astype(np.float32), 5)

    # -- bridge ---------------------------------------------------------------------

    def _bridge(self, plan: FramePlan, frames: np.ndarray, out: np.ndarray, trust: np.ndarray,
                progress: ProgressFn, cancel: Optional[CancelFn]) -> dict:
        a, b, targets = _cv.bridge_layout(plan)
        height, width = frames.shape[1:3]
        size = _cv.flow_size(height, width, self.flow_max_side)
        grey_a = _cv.resize(_cv.to_grey8(frames[a]), size)
        grey_b = _cv.resize(_cv.to_grey8(frames[b]), size)
        check_cancel(cancel)
        a_to_b = _cv.estimate_flow(grey_a, grey_b)
        check_cancel(cancel)
        b_to_a = _cv.estimate_flow(grey_b, grey_a)
        trust_a = _flow_confidence(a_to_b, b_to_a, grey_a, grey_b)
        trust_b = _flow_confidence(b_to_a, a_to_b, grey_b, grey_a)
        landing = _cv.landed_inside(a_to_b).sum() + _cv.landed_inside(b_to_a).sum()
        confidence = float((trust_a.sum() + trust_b.sum()) / max(landing, 1))
        use_flow = confidence >= self.bridge_min_confidence
        if use_flow:
            a_to_b, trust_a = _complete_bridge_flow(a_to_b, trust_a)
            b_to_a, trust_b = _complete_bridge_flow(b_to_a, trust_b)
        for i, (position, t) in enumerate(targets):
            check_cancel(cancel)
            blend = _cv.dissolve(frames[a], frames[b], t)
            trust[position] = 0.0  # a dissolve guesses
            if use_flow:
                pull_a = _invert_motion(a_to_b, t)
                pull_b = _invert_motion(b_to_a, 1.0 - t)
                seen_a = _cv.resize(_cv.warp(trust_a, pull_a, border=cv2.BORDER_CONSTANT), (height, width))
                seen_b = _cv.resize(_cv.warp(trust_b, pull_b, border=cv2.BORDER_CONSTANT), (height, width))
                from_a = _cv.warp(frames[a], _cv.upsample_field(pull_a, height, width))
                from_b = _cv.warp(frames[b], _cv.upsample_field(pull_b, height, width))
                weight_a = ((1.0 - t) * seen_a)[..., None]
                weight_b = (t * seen_b)[..., None]
                moved = (weight_a * from_a + weight_b * from_b) / np.maximum(weight_a + weight_b, 1e-6)
                local = np.maximum(seen_a, seen_b)[..., None]
                blend = local * moved + (1.0 - local) * blend
                trust[position] = local[..., 0]
            out[position] = blend
            progress((i + 1) / len(targets), f"bridge: frame {i + 1}/{len(targets)}")
        return {"bridge_flow_confidence": confidence, "fallback": None if use_flow else "dissolve"}

    # -- fill -----------------------------------------------------------------------

    def _fill(self, plan: FramePlan, frames: np.ndarray, masks: np.ndarray, out: np.ndarray,
              trust: np.ndarray, progress: ProgressFn, cancel: Optional[CancelFn]) -> dict:
        targets = _cv.fill_targets(plan, masks)
        if not targets:
            return {"fill_propagated_fraction": 0.0, "fill_inpainted_fraction": 0.0}
        holes = masks > _cv.HOLE_THRESHOLD
        tracks = _Tracks.estimate(frames, holes, self.flow_max_side, self.fill_max_distance,
                                  lambda fraction, message: progress(0.5 * fraction, message), cancel)
        hole_pixels = propagated = 0
        for i, position in enumerate(targets):
            check_cancel(cancel)
            picture, unreached = self._propagate(position, frames, masks, holes, tracks)
            picture = _cv.inpaint(picture, unreached, self.inpaint_radius)
            out[position] = _feather(picture, holes[position], self.feather)
            trust[position] = ~unreached  # tracked from a real frame, or inpainted
            hole_pixels += int(holes[position].sum())
            propagated += int(holes[position].sum() - unreached.sum())
            progress(0.5 + 0.5 * (i + 1) / len(targets), f"fill: frame {i + 1}/{len(targets)}")
        return {"fill_propagated_fraction": propagated / hole_pixels,
                "fill_inpainted_fraction": 1.0 - propagated / hole_pixels}

    def _propagate(self, position: int, frames: np.ndarray, masks: np.ndarray, holes: np.ndarray,
                   tracks: "_Tracks") -> tuple[np.ndarray, np.ndarray]:
        """Fill a frame's hole from the nearest frames along the flow.

        Returns the picture (hole pixels no track reached keep their original
        values) and the bool map of those unreached pixels.
        """
        hole = holes[position]
        box = _bounding_box(hole)
        y0, y1, x0, x1 = box
        todo = hole[y0:y1, x0:x1].copy()
        value = np.zeros(todo.shape + (3,), np.float32)
        directions = [tracks.follow(position, +1, box), tracks.follow(position, -1, box)]
        while directions and todo.any():
            total = np.zeros_like(value)
            count = np.zeros(todo.shape, np.float32)
            for direction in list(directions):
                step = next(direction, None)
                if step is None:
                    directions.remove(direction)
                    continue
                source, map_x, map_y, alive = step
                known = _cv.sample(masks[source], map_x, map_y, border=cv2.BORDER_CONSTANT,
                                   border_value=1.0) < KNOWN_MASK
                found = (alive & known & todo).astype(np.float32)
                total += _cv.sample(frames[source], map_x, map_y) * found[..., None]
                count += found
            reached = count > 0
            value[reached] = total[reached] / count[reached][:, None]
            todo &= ~reached
        picture = frames[position].copy()
        crop = picture[y0:y1, x0:x1]
        taken = hole[y0:y1, x0:x1] & ~todo
        crop[taken] = value[taken]
        unreached = np.zeros_like(hole)
        unreached[y0:y1, x0:x1] = todo
        return picture, unreached


class _Tracks:
    """Consecutive-frame flows of a fill window, and pixel tracks along them.

    ``forward[u]`` is the flow from frame u to u + 1 (on u's grid),
    ``backward[u]`` from u + 1 to u (on u + 1's grid); ``*_ok`` mark where a
    track may follow them (see :func:`_trusted`). All at flow size. Each
    frame's flow is estimated with its hole pre-filled (Telea, on grey) and
    then replaced, inside the hole and a ring around it, by the flow inpainted
    from outside.
    """

    def __init__(self, forward: list[np.ndarray], backward: list[np.ndarray],
                 forward_ok: list[np.ndarray], backward_ok: list[np.ndarray],
                 plate: tuple[int, int], size: tuple[int, int], max_distance: int):
        self.forward, self.backward = forward, backward
        self.forward_ok, self.backward_ok = forward_ok, backward_ok
        self.frame_count = len(forward) + 1
        self.plate = plate
        self.size = size
        self.max_distance = max_distance

    @classmethod
    def estimate(cls, frames: np.ndarray, holes: np.ndarray, max_side: int, max_distance: int,
                 progress: ProgressFn, cancel: Optional[CancelFn]) -> "_Tracks":
        """Flows both ways between every consecutive pair of ``frames`` (``holes``: bool ``(T, H, W)``)."""
        count, height, width = holes.shape
        size = _cv.flow_size(height, width, max_side)
        greys, completed = [], []
        for frame, hole in zip(frames, holes):
            check_cancel(cancel)
            small = cv2.dilate((_cv.resize(hole.astype(np.float32), size) > 0).astype(np.uint8), _KERNEL)
            grey = _cv.resize(_cv.to_grey8(frame), size)
            greys.append(cv2.inpaint(grey, small, 3, cv2.INPAINT_TELEA) if small.any() else grey)
            completed.append(cv2.dilate(small, _KERNEL, iterations=2).astype(bool))
        forward, backward, forward_ok, backward_ok = [], [], [], []
        for u in range(count - 1):
            check_cancel(cancel)
            ahead = _cv.inpaint(_cv.estimate_flow(greys[u], greys[u + 1]), completed[u], 3)
            back = _cv.inpaint(_cv.estimate_flow(greys[u + 1], greys[u]), completed[u + 1], 3)
            forward.append(ahead)
            backward.append(back)
            forward_ok.append(_trusted(ahead, back, completed[u]))
            backward_ok.append(_trusted(back, ahead, completed[u + 1]))
            progress((u + 1) / (count - 1), f"fill: flow {u + 1}/{count - 1}")
        return cls(forward, backward, forward_ok, backward_ok, (height, width), size, max_distance)

    def follow(self, start: int, direction: int, box: tuple[int, int, int, int]
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Track the plate pixels of ``box`` from frame ``start``, one frame at a time.

        Yields ``(frame, map_x, map_y, alive)``: where each pixel of the box
        is in ``frame`` (plate coordinates, for :func:`_cv.sample`) and whether
        its track is still trusted. Stops at the window's end, after
        ``max_distance`` frames, or when every track is lost.
        """
        height, width = self.plate
        h, w = self.size
        scale_x, scale_y = w / width, h / height
        y0, y1, x0, x1 = box
        # the box's plate pixels, and the flow-size pixels that cover them (plus a margin)
        plate_x, plate_y = np.meshgrid(np.arange(x0, x1, dtype=np.float32),
                                       np.arange(y0, y1, dtype=np.float32))
        fx0 = max(int(np.floor((x0 + 0.5) * scale_x - 0.5)) - 1, 0)
        fx1 = min(int(np.ceil((x1 - 0.5) * scale_x - 0.5)) + 2, w)
        fy0 = max(int(np.floor((y0 + 0.5) * scale_y - 0.5)) - 1, 0)
        fy1 = min(int(np.ceil((y1 - 0.5) * scale_y - 0.5)) + 2, h)
        small_x, small_y = np.meshgrid(np.arange(fx0, fx1, dtype=np.float32),
                                       np.arange(fy0, fy1, dtype=np.float32))
        # where each plate pixel of the box falls in the flow-size crop
        crop_x = (plate_x + 0.5) * scale_x - 0.5 - fx0
        crop_y = (plate_y + 0.5) * scale_y - 0.5 - fy0
        moved = np.zeros(small_x.shape + (2,), np.float32)
        alive = np.ones(small_x.shape, np.float32)
        frame = start
        for _ in range(self.max_distance):
            target = frame + direction
            if not 0 <= target < self.frame_count:
                return
            if direction > 0:
                field, ok = self.forward[frame], self.forward_ok[frame]
            else:
                field, ok = self.backward[target], self.backward_ok[target]
            at_x, at_y = small_x + moved[..., 0], small_y + moved[..., 1]
            alive *= _cv.sample(ok, at_x, at_y, border=cv2.BORDER_CONSTANT)
            moved += _cv.sample(field, at_x, at_y)
            alive *= _cv.inside(small_x + moved[..., 0], small_y + moved[..., 1], h, w)
            frame = target
            if not alive.any():
                return
            plate_moved = _cv.sample(moved, crop_x, crop_y)
            plate_alive = _cv.sample(alive, crop_x, crop_y) > 0.99
            yield (frame, plate_x + plate_moved[..., 0] / scale_x, plate_y + plate_moved[..., 1] / scale_y,
                   plate_alive)


# -- helpers ------------------------------------------------------------------------


def _check_option(name: str, value, *, minimum: float, maximum: float | None = None,
                  whole: bool = False) -> None:
    kind = "a whole number" if whole else "a number"
    ok_type = isinstance(value, int) if whole else isinstance(value, (int, float))
    if (not ok_type or isinstance(value, bool) or value < minimum
            or (maximum is not None and value > maximum)):
        limits = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"engine option '{name}' must be {kind} {limits}, got {value!r}")


def _invert_motion(motion: np.ndarray, travel: float) -> np.ndarray:
    """The backward-warp field of pixels that move by ``travel * motion(x)``.

    Solves ``D(y) = -travel * motion(y + D(y))`` by fixed-point steps: the
    pixel that lands on ``y`` started at ``y + D(y)``. Exact for smooth motion;
    at motion boundaries it settles on one side, which stretches the other.
    """
    pull = -travel * motion
    for _ in range(INVERSION_STEPS):
        pull = -travel * _cv.warp(motion, pull)
    return pull


def _flow_confidence(forward: np.ndarray, backward: np.ndarray, src: np.ndarray,
                     dst: np.ndarray) -> np.ndarray:
    """Per-pixel trust (0..1, float32 ``(h, w)``) in ``forward``, the flow from ``src`` to ``dst``.

    The product of forward-backward consistency, photometric agreement of
    ``src`` with ``dst`` pulled back along the flow, and the vector landing
    inside the picture.
    """
    error2, tolerance2 = _cv.forward_backward_error(forward, backward)
    consistent = np.exp(-error2 / tolerance2)
    residual = np.abs(src.astype(np.float32) - _cv.warp(dst, forward).astype(np.float32)) / 255.0
    residual = cv2.GaussianBlur(residual, (0, 0), 2.0)
    agreeing = np.exp(-((residual / PHOTOMETRIC_SCALE) ** 2))
    return (consistent * agreeing * _cv.landed_inside(forward)).astype(np.float32)


def _complete_bridge_flow(flow: np.ndarray, trust: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace a bridge flow's unreliable vectors by the reliable flow around them.

    Vectors with ``trust`` below :data:`RELIABLE` (occluded content, content
    leaving the picture, mismatches) are inpainted from the reliable ones.
    Returns the completed flow and its trust: unchanged where the vector was
    reliable, 0 where the completed vector lands on the other frame without
    having matched it, and 1 where it carries the pixel out of the picture
    (nothing can contradict it, and nothing else can show that content).
    """
    unreliable = trust < RELIABLE
    if unreliable.all() or not unreliable.any():
        return flow, trust
    completed = _cv.inpaint(flow, unreliable, 3)
    leaving = ~_cv.landed_inside(completed)
    return completed, np.where(unreliable, leaving.astype(np.float32), trust)


def _trusted(forward: np.ndarray, backward: np.ndarray, completed: np.ndarray) -> np.ndarray:
    """Float32 ``(h, w)``: 1 where a fill track may follow ``forward``.

    Measured flow must pass the forward-backward check; flow completed inside
    a hole is a guess the check cannot judge, and is followed. Either way the
    vector must land inside the picture.
    """
    error2, tolerance2 = _cv.forward_backward_error(forward, backward)
    return (((error2 < tolerance2) | completed) & _cv.landed_inside(forward)).astype(np.float32)


def _bounding_box(hole: np.ndarray) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``, end-exclusive, of the True pixels of ``hole``."""
    ys = np.flatnonzero(hole.any(axis=1))
    xs = np.flatnonzero(hole.any(axis=0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def _feather(picture: np.ndarray, hole: np.ndarray, width: int) -> np.ndarray:
    """Soften the seam of a filled hole over ``width`` pixels inside it.

    Hole pixels at distance ``d`` (1 at the edge) from the known pixels blend
    towards a slightly blurred copy of the composite with weight
    ``1 - (d - 1) / width``; pixels outside the hole are not touched.
    """
    if width == 0:
        return picture
    y0, y1, x0, x1 = _bounding_box(hole)
    margin = 2 * width + 1
    y0, x0 = max(y0 - margin, 0), max(x0 - margin, 0)
    y1, x1 = min(y1 + margin, hole.shape[0]), min(x1 + margin, hole.shape[1])
    crop, inside = picture[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    weight = np.clip(1.0 - (distance - 1.0) / width, 0.0, 1.0) * inside
    blurred = cv2.GaussianBlur(crop, (0, 0), width / 2.0)
    out = picture.copy()
    out[y0:y1, x0:x1] = crop + weight[..., None] * (blurred - crop)
    return out
