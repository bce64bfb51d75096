"""The job spec: versioned, validated, errors name the field."""
import json

import pytest

from shotfill.errors import JobSpecError
from shotfill.job import JOB_VERSION, MAX_SEED, EditSpec, JobSpec
from shotfill.plan import TaskKind


def _extend(**over):
    d = {"task": "extend_forward", "source": {"path": "sh010.####.exr"}, "frames": 8,
         "output": {"dir": "/tmp/out"}}
    d.update(over)
    return d


def test_round_trip_and_defaults(tmp_path):
    spec = JobSpec.from_dict(_extend(seed=3, prompt="dusk"))
    assert spec.task is TaskKind.EXTEND_FORWARD
    assert spec.engine == "dit" and spec.output.compression == "zip" and spec.output.padding == 4
    path = spec.save(tmp_path / "job.json")
    again = JobSpec.load(path)
    assert again == spec
    assert json.loads(path.read_text())["version"] == JOB_VERSION


def test_id_is_stable_and_depends_on_content():
    a, b = JobSpec.from_dict(_extend()), JobSpec.from_dict(_extend())
    assert a.id == b.id
    assert JobSpec.from_dict(_extend(seed=1)).id != a.id
    assert JobSpec.from_dict(_extend(job_id="shot-7")).id == "shot-7"
    # the preview switch does not change which frames a job makes
    assert JobSpec.from_dict(_extend(output={"dir": "/tmp/out", "preview": False})).id == a.id


@pytest.mark.parametrize("patch, field", [
    ({"frames": 0}, "frames"),
    ({"frames": "8"}, "frames"),
    ({"task": "zoom"}, "task"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**31}, "seed"),                  # more than the EXR header's int keeps
    ({"context": 0}, "context"),
    ({"output": {"dir": "x", "compression": "jpeg"}}, "output.compression"),
    ({"output": {"dir": "x", "padding": 0}}, "output.padding"),
    ({"output": {"dir": "x", "name": "a/b"}}, "output.name"),
    ({"output": {}}, "output.dir"),
    ({"source": {"path": ""}}, "source.path"),
    ({"source": {"path": "a", "frame_range": [5, 1]}}, "source.frame_range"),
    ({"source": {"path": "a", "fps": 24}}, "source.fps"),
    ({"colour": "x"}, "colour"),
    ({"version": 99}, "version"),
])
def test_errors_name_the_field(patch, field):
    with pytest.raises(JobSpecError) as e:
        JobSpec.from_dict(_extend(**patch))
    assert e.value.field == field
    assert field in str(e.value)


def test_task_requirements():
    with pytest.raises(JobSpecError, match="source_b"):
        JobSpec.from_dict(_extend(task="bridge"))
    with pytest.raises(JobSpecError, match="mask"):
        JobSpec.from_dict(_extend(task="fill"))
    with pytest.raises(JobSpecError, match="frames"):
        JobSpec.from_dict({"task": "extend_forward", "source": "a", "output": "o"})
    with pytest.raises(JobSpecError, match="either an edit target or sources"):
        JobSpec.from_dict(_extend(edit={"path": "e.otio", "target": "V1.gap1"}))


def test_edit_job_needs_no_task():
    spec = JobSpec.from_dict({"edit": {"path": "e.otio", "target": "V1.gap1"}, "output": "o"})
    assert spec.task is None and spec.edit.write_mode == "track"
    with pytest.raises(JobSpecError, match="edit.write_mode"):
        JobSpec.from_dict({"edit": {"path": "e.otio", "target": "t", "write_mode": "overwrite"}, "output": "o"})


def test_bad_files(tmp_path):
    p = tmp_path / "job.json"
    p.write_text("{not json")
    with pytest.raises(JobSpecError, match="not valid JSON: line 1"):
        JobSpec.load(p)
    with pytest.raises(JobSpecError, match="cannot read"):
        JobSpec.load(tmp_path / "missing.json")


def test_seeds_are_what_a_header_keeps():
    assert MAX_SEED == 2**31 - 1 and JobSpec.from_dict(_extend(seed=MAX_SEED)).seed == MAX_SEED
    built = JobSpec(output=JobSpec.from_dict(_extend()).output, task=TaskKind.EXTEND_FORWARD,
                    source=JobSpec.from_dict(_extend()).source, frames=8, seed=2**31)
    with pytest.raises(JobSpecError, match=r"'seed': must be a whole number 0\.\.2147483647"):
        built.validate()


def test_an_edit_target_takes_a_source_colour_space():
    spec = JobSpec.from_dict({"edit": {"path": "e.otio", "target": "V1.gap1", "colourspace": "acescg"},
                              "output": "o"})
    assert spec.edit.colourspace == "acescg" and JobSpec.from_dict(spec.to_dict()) == spec
    plain = JobSpec.from_dict({"edit": {"path": "e.otio", "target": "V1.gap1"}, "output": "o"})
    assert "colourspace" not in plain.to_dict()["edit"] and plain.id != spec.id
    assert EditSpec("e.otio", "V1.gap1").to_dict() == {"path": "e.otio", "target": "V1.gap1", "rate": None,
                                                       "write_mode": "track", "export": None,
                                                       "write_timeline": True}
    with pytest.raises(JobSpecError, match="edit.colourspace"):
        JobSpec.from_dict({"edit": {"path": "e.otio", "target": "t", "colourspace": 3}, "output": "o"})


def test_what_to_do_with_another_jobs_frames_is_not_part_of_the_job_id():
    plain = JobSpec.from_dict(_extend())
    assert plain.output.if_exists == "refuse" and "if_exists" not in plain.to_dict()["output"]
    for choice in ("overwrite", "version"):
        spec = JobSpec.from_dict(_extend(output={"dir": "/tmp/out", "if_exists": choice}))
        assert spec.output.if_exists == choice and spec.id == plain.id      # a re-run with it resumes
        assert JobSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(JobSpecError, match=r"output.if_exists': must be one of refuse, overwrite, version"):
        JobSpec.from_dict(_extend(output={"dir": "/tmp/out", "if_exists": "replace"}))


def test_a_start_frame_numbers_the_output_and_is_part_of_the_job_id():
    plain = JobSpec.from_dict(_extend())
    spec = JobSpec.from_dict(_extend(output={"dir": "/tmp/out", "start_frame": 1001}))
    assert spec.output.start_frame == 1001 and spec.id != plain.id and JobSpec.from_dict(spec.to_dict()) == spec
    for bad in (-1, 1.5, "1001", True):
        with pytest.raises(JobSpecError, match="output.start_frame"):
            JobSpec.from_dict(_extend(output={"dir": "/tmp/out", "start_frame": bad}))
