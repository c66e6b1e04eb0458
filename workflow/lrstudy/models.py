"""The networks the study trains: the classic LeNet5 and, for the larger case, ResNet-18."""

from __future__ import annotations

from torch import nn

MODELS = ("lenet5", "resnet18")


class LeNet5(nn.Module):
    """LeCun et al. (1998) on 32x32 inputs, with ReLU and max pooling as in ColossalAI's example."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def resnet18(in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 adapted to 32x32 inputs: a 3x3 stride-1 stem and no max pool."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def build(name: str, in_channels: int, num_classes: int) -> nn.Module:
    if name == "lenet5":
        return LeNet5(in_channels, num_classes)
    if name == "resnet18":
        return resnet18(in_channels, num_classes)
    raise ValueError(f"model: unknown {name!r}; choose one of {', '.join(MODELS)}")
