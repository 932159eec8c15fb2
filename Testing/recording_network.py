"""A stand-in network for inference tests: it records what the predictor feeds it and labels by brightness."""

import torch


class RecordingNetwork(torch.nn.Module):
    """Liver where the centre channel exceeds ``liver_above``, tumor where it exceeds 1.05 (never, for inputs in
    [0, 1]): what it labels shows where the predictor put its input, and ``inputs`` what it was fed."""

    def __init__(self, liver_above: float = 0.6):
        super().__init__()
        self.liver_above = liver_above
        self.inputs: list[torch.Tensor] = []

    def forward(self, inputs):
        self.inputs.append(inputs.detach().clone())
        centre = inputs[:, inputs.shape[1] // 2]
        return torch.stack([torch.full_like(centre, self.liver_above), centre, 2.0 * centre - 1.05], dim=1)
