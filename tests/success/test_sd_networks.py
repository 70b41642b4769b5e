"""Success-detector networks: the image tower's variants and its keypoint readout."""

import numpy as np
import pytest
import torch

from mtopt.success.networks import (
    SDNetworkConfig,
    build_sd_network,
    coordinate_channels,
    pool_views,
    spatial_soft_argmax,
)


def test_spatial_soft_argmax_by_hand():
    # channel 0: one dominant pixel at row 1, column 2 of a 3x3 map (x = +1, y = 0);
    # channel 1: uniform, so its expected position is the centre
    f = torch.zeros(1, 2, 3, 3)
    f[0, 0, 1, 2] = 50.0
    out = spatial_soft_argmax(f)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, 0.0, 0.0, 50.0, 0.0]]))
    # two equal peaks at (x, y) = (-1, -1) and (1, -1): expected (0, -1)
    g = torch.zeros(1, 1, 3, 3)
    g[0, 0, 0, 0] = g[0, 0, 0, 2] = 50.0
    torch.testing.assert_close(spatial_soft_argmax(g), torch.tensor([[0.0, -1.0, 50.0]]))


def test_coordinate_channels_hold_x_and_y():
    out = coordinate_channels(torch.zeros(2, 3, 2, 3))
    assert out.shape == (2, 5, 2, 3)
    torch.testing.assert_close(out[1, 3], torch.tensor([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]))
    torch.testing.assert_close(out[1, 4], torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"norm": "batch"},
        {"readout": "keypoints", "conv_layers": 2, "stride1_layers": 1, "coord_channels": True},
    ],
)
def test_image_tower_variants_give_one_logit_per_task_slot(options):
    cfg = SDNetworkConfig(
        kind="image", image_size=32, channels=4, width=8, task_capacity=16, **options
    )
    net = build_sd_network(cfg).eval()
    views = torch.rand(5, 3, 3, 32, 32)
    out = net(views)
    assert out.shape == (5, cfg.task_capacity)
    # the tower is shared across views and the head sees them in order: swapping views matters
    assert not torch.allclose(out, net(views.flip(1)))


def test_bad_tower_options_are_refused():
    with pytest.raises(ValueError, match="norm must be 'group' or 'batch'"):
        SDNetworkConfig(kind="image", norm="layer")
    with pytest.raises(ValueError, match="readout must be 'flatten' or 'keypoints'"):
        SDNetworkConfig(kind="image", readout="mean")
    with pytest.raises(ValueError, match="stride1_layers must be an integer >= 0"):
        SDNetworkConfig(kind="image", stride1_layers=-1)


def test_pool_views_averages_blocks_and_checks_the_stored_size():
    views = np.zeros((1, 3, 4, 4, 3), dtype=np.uint8)
    views[0, 1, :2, :2, 0] = [[10, 20], [30, 41]]  # mean 25.25 -> 25
    views[0, 2, 2:, 2:, 2] = 255
    out = pool_views(views, 2, 4)
    assert out.shape == (1, 3, 2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1, 0, 0, 0] == 25 and out[0, 2, 1, 1, 2] == 255
    assert int(out.sum()) == 25 + 255
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8, 3\)"):
        pool_views(views, 2, 8)
