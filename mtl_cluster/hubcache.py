"""Where torchvision keeps downloaded weights, found without importing torch (the launcher's preflight).

Mirrors ``torch.hub.get_dir()``: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub
(tests/test_model.py checks the two agree). Compute nodes usually share the home folder with the login
node, so a file missing here is missing in the job too.
"""
from __future__ import annotations

import os
from pathlib import Path

IMAGENET_ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
"""torchvision's ``AlexNet_Weights.IMAGENET1K_V1`` file: the seed's ``alexnet(pretrained=True)``."""


def hub_dir() -> Path:
    """torch.hub's folder, computed the way torch computes it."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(cache).expanduser() / "torch" / "hub"


def imagenet_weights() -> Path:
    """The path torchvision reads the ImageNet AlexNet weights from (and downloads them to)."""
    return hub_dir() / "checkpoints" / IMAGENET_ALEXNET_URL.rsplit("/", 1)[-1]


def missing_weights_message(path: Path) -> str:
    """One line: what is missing, and the one command that puts it there on a machine with internet."""
    return (f"backbone_weights: imagenet, but the ImageNet AlexNet weights are not in the torch cache ({path}); "
            f"on a machine with internet run: python -c \"import torchvision; "
            f"torchvision.models.alexnet(weights='IMAGENET1K_V1')\" and copy {path.name} to {path.parent} "
            f"(or set TORCH_HOME), or use backbone_weights: none")
