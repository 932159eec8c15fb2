"""The ResUNet: output shapes, residual units, skip connections at every level, the cost of the defaults."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from LiverResUNetLib.model.resunet import ResidualUnit, ResUNet, build_network, default_architecture
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

TINY = dict(base_width=4, depth=3, max_width=16)


@pytest.mark.parametrize("in_channels, stem_stride, depth, size", [
    (1, 1, 2, 8), (3, 1, 3, 16), (3, 2, 3, 32), (5, 2, 4, 48),
])
def test_logits_have_the_input_size_and_three_classes(in_channels, stem_stride, depth, size):
    torch.manual_seed(0)
    network = ResUNet(in_channels, base_width=4, depth=depth, stem_stride=stem_stride).eval()
    with torch.no_grad():
        logits = network(torch.rand(2, in_channels, size, size))
    assert logits.shape == (2, 3, size, size)
    assert torch.isfinite(logits).all()


def test_an_input_the_levels_cannot_halve_is_refused_with_the_size_it_needs():
    network = ResUNet(1, stem_stride=2, **TINY)
    assert network.size_multiple == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        network(torch.rand(1, 1, 36, 36))


def test_residual_unit_is_pre_activation_with_identity_or_projection_shortcut():
    same = ResidualUnit(8, 8)
    assert isinstance(same.shortcut, torch.nn.Identity)
    wider = ResidualUnit(8, 16)
    assert wider.shortcut.kernel_size == (1, 1) and wider.shortcut.out_channels == 16
    strided = ResidualUnit(8, 16, stride=2)
    assert strided.shortcut.stride == (2, 2)
    assert strided(torch.rand(1, 8, 12, 12)).shape == (1, 16, 6, 6)
    # Pre-activation: normalisation comes before each convolution.
    names = [name for name, _ in same.named_children()]
    assert names.index("norm1") < names.index("conv1") < names.index("norm2") < names.index("conv2")


def test_identity_unit_with_zeroed_convolutions_passes_its_input_through():
    unit = ResidualUnit(4, 4).eval()
    for convolution in (unit.conv1, unit.conv2):
        torch.nn.init.zeros_(convolution.weight)
    x = torch.rand(1, 4, 8, 8)
    assert torch.equal(unit(x), x)


def test_every_level_has_a_skip_connection_that_reaches_the_output():
    """Zeroing the skip of any level changes the logits: each encoder level feeds the decoder."""
    torch.manual_seed(1)
    network = ResUNet(1, base_width=4, depth=4, stem_stride=1).eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        reference = network(x)
        for level in range(len(network.decoder)):
            handle = network.encoder[level].register_forward_hook(lambda module, args, output: output * 0)
            try:
                changed = network(x)
            finally:
                handle.remove()
            assert not torch.allclose(changed, reference), f"level {level} skip has no effect"
    assert len(network.decoder) == len(network.upsample) == 3


def test_widths_double_per_level_up_to_the_cap():
    network = ResUNet(3, base_width=8, depth=5, max_width=32)
    assert [unit.conv2.out_channels for unit in network.encoder] == [8, 16, 32, 32, 32]


def test_gradients_reach_the_first_convolution():
    network = ResUNet(3, **TINY)
    loss = network(torch.rand(2, 3, 16, 16)).logsumexp(1).mean()
    loss.backward()
    assert network.stem.weight.grad is not None and network.stem.weight.grad.abs().sum() > 0


def test_build_network_follows_the_architecture_dict():
    network = build_network(default_architecture())
    assert isinstance(network, ResUNet)
    assert network.stem.in_channels == PreprocessingParams().channels == 5
    assert network.head.out_channels == 3
    assert len(network.encoder) == default_architecture()["depth"]
    assert PreprocessingParams().input_size % network.size_multiple == 0


def test_unknown_architectures_and_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown architecture 'SwinUNETR'"):
        build_network({**default_architecture(), "name": "SwinUNETR"})
    with pytest.raises(TypeError):
        build_network({**default_architecture(), "dropout": 0.5})
    with pytest.raises(ValueError, match="depth"):
        ResUNet(1, depth=1)
    with pytest.raises(ValueError, match="stem_stride"):
        ResUNet(1, stem_stride=4)


def test_default_network_costs_at_most_2_gflop_per_slice():
    """The CPU target (a 512 x 512 x 129 CT in 10 s on 2 cores) rests on this budget; see benchmarks/."""
    network = build_network(default_architecture()).eval()
    params = PreprocessingParams()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(torch.rand(1, params.channels, params.input_size, params.input_size))
    assert 0.2e9 < counter.get_total_flops() <= 2.0e9  # the default (widths 8-128): 0.43 GFLOP
    assert sum(parameter.numel() for parameter in network.parameters()) < 5_000_000
