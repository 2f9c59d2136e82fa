import pytest
import torch

from lanemodel.training.losses import focal_cell_loss, lane_loss, similarity_loss
from lanemodel.training.model import PRESETS, LaneNet, get_preset, gradient_bytes, parameter_count


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_output_shape(name):
    spec = get_preset(name)
    model = LaneNet(spec).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, spec.input_height, spec.input_width))
    assert out["cls"].shape == (2, spec.griding_num + 1, spec.num_rows, spec.num_lanes)
    assert "seg" not in out


def test_full_preset_is_ufld_sized_with_heavy_head():
    model = LaneNet(get_preset("full"))
    total = parameter_count(model)
    head = parameter_count(model.head)
    assert 60_000_000 < total < 62_000_000
    assert head / total > 0.75            # the all-reduce is dominated by the fully connected head
    assert gradient_bytes(model) == total * 4


def test_aux_branch_predicts_lane_mask_at_stride_8_in_training_only():
    spec = get_preset("tiny", use_aux=True)
    model = LaneNet(spec).train()
    out = model(torch.zeros(2, 3, spec.input_height, spec.input_width))
    assert out["seg"].shape == (2, spec.num_lanes + 1, spec.input_height // 8, spec.input_width // 8)
    assert "seg" not in model.eval()(torch.zeros(1, 3, spec.input_height, spec.input_width))


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of full, small, tiny"):
        get_preset("huge")


def test_local_weights_file_is_loaded(tmp_path):
    import torchvision

    resnet = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        resnet.conv1.weight.fill_(0.25)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    model = LaneNet(get_preset("tiny"), weights_path=str(path))
    assert torch.all(model.stem[0].weight == 0.25)


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_gamma_down_weights_easy_cells():
    logits = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]]]])       # (1, 3 cells, 1 row, 1 lane)
    target = torch.tensor([[[0]]])
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert torch.isclose(focal_cell_loss(logits, target, 0.0), ce)
    p = torch.softmax(logits, dim=1)[0, 0, 0, 0]
    assert torch.isclose(focal_cell_loss(logits, target, 2.0), (1 - p) ** 2 * ce)


def test_similarity_loss_is_zero_for_identical_rows_and_l1_otherwise():
    same = torch.zeros(1, 3, 4, 1)
    assert similarity_loss(same) == 0
    logits = torch.full((1, 2, 2, 1), -100.0)
    logits[0, 0, 0, 0] = 100.0   # row 0 -> cell 0
    logits[0, 1, 1, 0] = 100.0   # row 1 -> cell 1
    assert torch.isclose(similarity_loss(logits), torch.tensor(2.0))


def test_lane_loss_requires_segmentation_target_when_branch_ran():
    out = {"cls": torch.zeros(1, 3, 2, 1), "seg": torch.zeros(1, 2, 4, 4)}
    with pytest.raises(ValueError, match="no segmentation target"):
        lane_loss(out, torch.zeros(1, 2, 1, dtype=torch.long))
    total = lane_loss(out, torch.zeros(1, 2, 1, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
    assert torch.isclose(total, torch.log(torch.tensor(3.0)) * (2 / 3) ** 2 + torch.log(torch.tensor(2.0)))
