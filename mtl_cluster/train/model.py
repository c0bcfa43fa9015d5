"""MTL_AlexNet_model: torchvision's AlexNet trunk shared by one small head per active task.

A task with loss weight 0 gets no head at all, so a single-task run costs one task.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models

from ..errors import CheckpointError, ConfigError
from ..hubcache import missing_weights_message
from ..tasks import AGE_CLASSES, AGE_GROUPS, AGE_HEADS, NUM_CLASSES

TRUNK_FEATURES = 256 * 6 * 6  # 9216, whatever the input size, thanks to the adaptive pooling


def head_outputs(task: str, age_loss_type: str) -> dict[str, int]:
    """The linear outputs a task's head needs: one entry per cross-entropy it is trained with."""
    if task != "age":
        return {task: NUM_CLASSES[task]}
    sizes = {"age": AGE_CLASSES, "age_group": AGE_GROUPS}
    return {name: sizes[name] for name in AGE_HEADS[age_loss_type]}


def _hidden() -> nn.Sequential:
    return nn.Sequential(nn.Linear(TRUNK_FEATURES, 256), nn.ReLU(inplace=True), nn.Dropout(0.5))


class Head(nn.Module):
    """Linear(9216,256) - ReLU - Dropout(0.5) - Linear(n) per output, as in the seed.

    The first output uses ``hidden``; a second one (the 10 age groups beside the 100 classes) gets a
    hidden layer of its own, the shape of the seed's age-group head.
    """

    def __init__(self, outputs: dict[str, int]):
        super().__init__()
        names = list(outputs)
        self.hidden = _hidden()
        self.own = nn.ModuleDict({name: _hidden() for name in names[1:]})
        self.out = nn.ModuleDict({name: nn.Linear(256, n) for name, n in outputs.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.hidden(x)
        return {name: layer(self.own[name](x) if name in self.own else h) for name, layer in self.out.items()}


class MTL_AlexNet_model(nn.Module):  # the seed's class name (not PascalCase), kept so old users recognise it
    """Shared AlexNet ``features`` trunk and a head per active task."""

    def __init__(self, tasks: tuple[str, ...], age_loss_type: str = "age_cls_loss"):
        super().__init__()
        self.tasks = tasks
        alexnet = models.alexnet(weights=None)
        self.features = alexnet.features
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.heads = nn.ModuleDict({t: Head(head_outputs(t, age_loss_type)) for t in tasks})

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward(self, x: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
        """Logits of one task's head(s) for a batch of that task's images."""
        return self.heads[task](self.trunk(x))


def load_backbone(model: MTL_AlexNet_model, spec: str) -> None:
    """Initialise the trunk: ``none`` (torch's default random init), ``kaiming`` (random, He-scaled),
    ``imagenet`` (torchvision weights, offline) or a .pth path.

    Why ``kaiming``: torchvision's AlexNet keeps torch's default init, whose weights shrink the signal at
    every layer; after five convolutions a random trunk's features vary across images by about 1% of their
    mean, so a many-class head (age's 100) sits on a loss plateau for hundreds of steps. He-normal weights
    (fan_in, ReLU gain, zero biases, as torchvision initialises VGG and ResNet) keep the features' spread of
    order one. The seed always started from ImageNet; this is the from-scratch stand-in for the demo.
    """
    if spec == "none":
        return
    if spec == "kaiming":
        for layer in model.features:
            if isinstance(layer, nn.Conv2d) and layer.bias is not None:
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        return
    if spec == "imagenet":
        file = Path(torch.hub.get_dir()) / "checkpoints" / Path(models.AlexNet_Weights.IMAGENET1K_V1.url).name
        if not file.exists():
            raise ConfigError(missing_weights_message(file))
        state = torch.load(file, map_location="cpu", weights_only=True)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"backbone_weights: no such file {path}; give a torchvision AlexNet state_dict "
                              f"(.pth), imagenet or none")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
            raise ConfigError(f"backbone_weights: cannot read {path} as a state_dict ({type(exc).__name__})") \
                from None
    trunk = {k[len("features."):]: v for k, v in state.items() if str(k).startswith("features.")} \
        if isinstance(state, dict) else {}
    if not trunk:
        raise ConfigError(f"backbone_weights: {spec} holds no 'features.*' tensors of an AlexNet")
    try:
        model.features.load_state_dict(trunk)
    except RuntimeError as exc:   # other shapes or missing layers
        raise ConfigError(f"backbone_weights: {spec} is not an AlexNet trunk "
                          f"({str(exc).strip().splitlines()[0][:160]})") from None


def load_init_state(model: MTL_AlexNet_model, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the trunk and every head whose shape matches from another run's model state.

    Returns the names of the heads that were initialised (the rest stay random).
    """
    own = model.state_dict()
    copied = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("features.") for k in copied):
        raise CheckpointError("init checkpoint holds no AlexNet trunk (features.*) of matching shape")
    model.load_state_dict(copied, strict=False)
    heads = sorted({k.split(".")[1] for k in copied if k.startswith("heads.")})
    return [h for h in heads if all(k in copied for k in own if k.startswith(f"heads.{h}."))]
