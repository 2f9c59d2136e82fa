"""--data: a TuSimple data set as the lane detector trains on it, and every way the directory can be wrong refused
before any launch, naming the input (the suite exits 4, the CLI 2)."""
import json
import subprocess
import sys

import pytest
import torch
from shared_data import REAL_LABELS, tusimple_layout
from suite_helpers import ROOT, clean_env

from lanemodel.session.errors import SessionError
from lanemodel.session.opening import check_data
from lanemodel.settings import parse_settings
from lanemodel.training.config import TrainConfig
from lanemodel.training.train import build_workload


def opts(data, **given):
    return parse_settings({"world_sizes": "1,2", "global_batch": "16", "data": str(data),
                           **{name: str(value) for name, value in given.items()}})


@pytest.fixture(scope="module")
def tusimple(tmp_path_factory):
    return tusimple_layout(tmp_path_factory.mktemp("tusimple") / "train_set", lines=40)


def test_a_tusimple_directory_is_accepted_and_its_frames_decoded_at_every_item(tusimple):
    check_data(opts(tusimple))
    workload = build_workload(TrainConfig(str(tusimple), frames="jpeg"))
    dataset = workload.dataset()
    image, (cls, seg) = dataset[0]
    spec = workload.spec
    assert len(dataset) == 40 and image.dtype == torch.uint8
    assert tuple(image.shape) == (3, spec.input_height, spec.input_width) and image.float().std() > 10
    assert cls.shape[0] > 0 and seg.numel() == 0 and "decoded and resized by every rank at every step" in \
        workload.describe_data()


def test_a_missing_image_is_named_with_how_many_are_missing(tusimple, tmp_path):
    data = tusimple_layout(tmp_path / "set", lines=40)
    labels = [json.loads(line) for line in REAL_LABELS.read_text().splitlines()[:40]]
    for label in (labels[7], labels[30]):
        (data / label["raw_file"]).unlink()
    with pytest.raises(SessionError) as caught:
        check_data(opts(data))
    assert f"2 of 40 labelled images are missing, the first {data / labels[7]['raw_file']}" in str(caught.value)
    assert "label_data_0313.json:8" in str(caught.value)


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent", "no such directory"),
    (lambda d: d, "no TuSimple label files"),
    (lambda d: (d / "label_data_x.json").write_text('{"raw_file": "a.jpg", "lanes": [[1, 2]]}\n') and d,
     "label_data_x.json:1: "),
    (lambda d: tusimple_layout(d, lines=12), "12 training frames, fewer than one global batch of 16"),
])
def test_a_directory_that_is_not_a_tusimple_set_is_refused_naming_it(tmp_path, make, message):
    data = make(tmp_path)
    with pytest.raises(SessionError) as caught:
        check_data(opts(data))
    assert str(caught.value).startswith(f"--data {data}: ") and message in str(caught.value)


def test_the_suite_refuses_a_data_set_with_a_missing_image_with_exit_4(tmp_path):
    data = tusimple_layout(tmp_path / "set", lines=20)
    first = json.loads(REAL_LABELS.read_text().splitlines()[3])["raw_file"]
    (data / first).unlink()
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
                           "--data", str(data), "--world-sizes", "1,2", "--results-dir", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=clean_env())
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"1 of 20 labelled images are missing, the first {data / first}" in proc.stderr
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.slow
def test_the_suite_trains_on_a_tusimple_data_set_and_the_report_names_it(tmp_path):
    """The real labels (200 lines) with a real 1280x720 JPEG at every raw_file path, world sizes 1 and 2."""
    data = tusimple_layout(tmp_path / "train_set")
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/", "-p", "no:cacheprovider", "-q",
                           "--data", str(data), "--world-sizes", "1,2", "--steps", "6", "--rounds", "1",
                           "--warmup-launches", "0", "--probes", "0", "--results-dir", str(tmp_path / "r"),
                           f"--benchmark-storage=file://{tmp_path / 'storage'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=clean_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / "r" / "REPORT.md").read_text()
    assert f"- data: 200 items, {data} (JPEG decoded and resized by every rank at every step)" in report
    assert not (data / ".frame_cache").exists()         # nothing decoded ahead: every step decodes its frames
