"""The workload contract: a workload of one's own built and tried in this process before any launch, every
way it can be wrong named; micro-batches cut from any collated batch."""
import sys
import textwrap

import pytest
import torch

from lanemodel.training.contract import WorkloadError, inspect, split_batch

GOOD = """
import torch
from torch import nn


class Items(torch.utils.data.Dataset):
    def __init__(self, count=32):
        self.x = torch.randn(count, 4)
        self.y = torch.randint(0, 2, (count,))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Good:
    name = "a linear classifier"

    def model(self):
        return nn.Linear(4, 2)

    def dataset(self):
        return Items()

    def loss(self, output, target):
        return nn.functional.cross_entropy(output, target)
"""

BROKEN = {
    "lacks_loss": "class W(Good):\n    loss = None\n",
    "model_raises": "class W(Good):\n    def model(self):\n        raise RuntimeError('no weights here')\n",
    "short_data": "class W(Good):\n    def dataset(self):\n        return Items(3)\n",
    "vector_loss": "class W(Good):\n    def loss(self, output, target):\n"
                   "        return nn.functional.cross_entropy(output, target, reduction='none')\n",
    "no_gradient": "class W(Good):\n    def loss(self, output, target):\n        return torch.tensor(1.0)\n",
    "nameless": "class W(Good):\n    name = ''\n",
    "not_pairs": "class W(Good):\n    def dataset(self):\n        return [torch.zeros(4)] * 32\n",
}


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    """A directory holding the workload modules; the modules leave sys.modules after the test."""
    (tmp_path / "good.py").write_text(GOOD)
    for name, body in BROKEN.items():
        (tmp_path / f"{name}.py").write_text(GOOD + "\n\n" + textwrap.dedent(body))
    (tmp_path / "syntax.py").write_text("def broken(:\n")
    yield tmp_path
    for name in [*BROKEN, "good", "syntax"]:
        sys.modules.pop(name, None)


def test_a_workload_of_ones_own_is_built_and_described(module_dir):
    info = inspect("good:Good", str(module_dir), global_batch=8)
    assert (info.name, info.parameters, info.items) == ("a linear classifier", 4 * 2 + 2, 32)
    assert len(info.shapes_sha256) == 16


@pytest.mark.parametrize("spec, message", [
    ("nosuchmodule:W", "module 'nosuchmodule' does not import"),
    ("syntax:W", "module 'syntax' does not import"),
    ("good:Missing", "module 'good' has no attribute 'Missing'"),
    ("lacks_loss:W", "the object lacks loss()"),
    ("model_raises:W", "model() raised RuntimeError: no weights here"),
    ("short_data:W", "its data set has 3 items, fewer than one global batch of 8"),
    ("vector_loss:W", "must be a scalar tensor (the batch mean), got (2,)"),
    ("no_gradient:W", "has no gradient"),
    ("nameless:W", "has no name"),
    ("not_pairs:W", "a data set item must be (inputs, target)"),
])
def test_each_way_a_workload_is_wrong_is_named(module_dir, spec, message):
    with pytest.raises(WorkloadError) as caught:
        inspect(spec, str(module_dir), global_batch=8)
    assert str(caught.value).startswith(f"--workload {spec}: ") and message in str(caught.value)


def test_a_batch_of_nested_tensors_splits_into_micro_batches_along_the_samples():
    batch = (torch.arange(8).view(8, 1), {"cls": torch.arange(8), "seg": torch.empty(8, 0)})
    parts = split_batch(batch, 4)
    assert len(parts) == 4 and [len(part[1]["seg"]) for part in parts] == [2, 2, 2, 2]
    assert parts[3][1]["cls"].tolist() == [6, 7] and parts[3][0].tolist() == [[6], [7]]
    assert split_batch(batch, 1) == [batch]
