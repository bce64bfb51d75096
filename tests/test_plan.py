"""The frame plan: one type for extend forward/backward, bridge and fill."""
import pytest

from shotfill.errors import InputError, JobSpecError
from shotfill.plan import FramePlan, Role, TaskKind


def test_extend_forward_continues_numbering():
    # source 0..39, extend by 8 with 4 context frames:
    #   [36 37 38 39][40 41 42 43 44 45 46 47]
    #    known        generate
    plan = FramePlan.extend(range(40), 8, context=4)
    assert plan.kind is TaskKind.EXTEND_FORWARD
    assert [plan.frames[p].source_frame for p in plan.known_positions] == [36, 37, 38, 39]
    assert plan.output_frames == list(range(40, 48))
    assert plan.summary() == "extend_forward K4 G8"


def test_extend_backward_numbers_before_first():
    plan = FramePlan.extend(range(1001, 1041), 3, backward=True, context=2)
    assert [f.role for f in plan.frames] == [Role.GENERATE] * 3 + [Role.KNOWN] * 2
    assert plan.output_frames == [998, 999, 1000]
    assert [plan.frames[p].source_frame for p in plan.known_positions] == [1001, 1002]


def test_bridge_window_and_numbering():
    plan = FramePlan.bridge(range(10), range(100, 120), 5, context=3)
    roles = [f.role for f in plan.frames]
    assert roles == [Role.KNOWN] * 3 + [Role.GENERATE] * 5 + [Role.KNOWN] * 3
    assert [plan.frames[p].source for p in plan.known_positions] == ["a"] * 3 + ["b"] * 3
    assert [plan.frames[p].source_frame for p in plan.known_positions] == [7, 8, 9, 100, 101, 102]
    assert plan.output_frames == [10, 11, 12, 13, 14]
    assert FramePlan.bridge([5], [9], 2, first_output_frame=1001).output_frames == [1001, 1002]


def test_fill_keeps_frame_numbers():
    plan = FramePlan.fill([4, 5, 6])
    assert plan.fill_positions == [0, 1, 2]
    assert plan.output_frames == [4, 5, 6]
    assert plan.generate_positions == []


def test_short_clip_uses_what_exists():
    plan = FramePlan.extend([7, 8], 2, context=8)
    assert len(plan.known_positions) == 2


@pytest.mark.parametrize("frames", [0, -1, 2.5, True])
def test_bad_counts_are_named(frames):
    with pytest.raises(InputError, match="frames"):
        FramePlan.extend(range(10), frames)


def test_empty_source_is_an_error():
    with pytest.raises(InputError, match="no frames"):
        FramePlan.fill([])


def test_round_trip_dict():
    plan = FramePlan.bridge(range(10), range(20), 4, context=2)
    assert FramePlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(JobSpecError, match="plan.kind"):
        FramePlan.from_dict({"kind": "zoom", "frames": []})
