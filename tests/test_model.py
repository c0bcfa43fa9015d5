"""The model: heads only for active tasks, age variants, and the four ways to start the trunk."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torchvision import models

from mtl_cluster.errors import ConfigError
from mtl_cluster.train.metrics import age_class, age_estimates, age_group, task_loss
from mtl_cluster.train.model import TRUNK_FEATURES, MTL_AlexNet_model, load_backbone


def test_heads_only_for_active_tasks_and_any_image_size() -> None:
    m = MTL_AlexNet_model(("emotion",))
    assert list(m.heads) == ["emotion"]
    for size in (64, 224):
        assert m.trunk(torch.zeros(2, 3, size, size)).shape == (2, TRUNK_FEATURES)
    assert m(torch.zeros(2, 3, 64, 64), "emotion")["emotion"].shape == (2, 7)


@pytest.mark.parametrize("kind, outputs", [("age_cls_loss", {"age": 100}),
                                           ("age_100_10_cls_loss", {"age": 100, "age_group": 10}),
                                           ("age_10_cls_loss", {"age_group": 10})])
def test_age_variants(kind: str, outputs: dict) -> None:
    out = MTL_AlexNet_model(("age",), kind)(torch.zeros(3, 3, 64, 64), "age")
    assert {k: v.shape[1] for k, v in out.items()} == outputs
    ages = torch.tensor([0.4, 23.6, 100.0])
    assert float(task_loss("age", out, ages).detach()) > 0
    expected, argmax = age_estimates(out)
    assert expected.shape == argmax.shape == (3,)


def test_age_labels_to_classes_and_decades() -> None:
    ages = torch.tensor([0.0, 1.0, 23.4, 23.6, 99.0, 100.0, 130.0])
    assert age_class(ages).tolist() == [0, 0, 22, 23, 98, 99, 99]
    assert age_group(ages).tolist() == [0, 0, 2, 2, 9, 9, 9]


def test_backbone_from_a_local_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(src.state_dict(), path)
    m = MTL_AlexNet_model(("gender",))
    load_backbone(m, str(path))
    assert torch.equal(m.features[0].weight, src.features[0].weight)


def test_kaiming_trunk_keeps_the_features_apart() -> None:
    """backbone_weights: kaiming (the demo's random trunk): He-normal convolutions and zero biases, drawn from
    the torch seed, so a random trunk's features differ between images by far more than torch's default
    init lets them (which left the demo's single-task 100-class age head on its loss plateau)."""
    from mtl_cluster.train.data.synthetic import synthetic_sample
    from mtl_cluster.train.data.transforms import normalise

    px, _ = synthetic_sample(0, 64, 64, "train", (), "bold")
    x = normalise(torch.from_numpy(px.copy()).permute(0, 3, 1, 2).float())

    def trunk(spec: str) -> MTL_AlexNet_model:
        torch.manual_seed(0)
        m = MTL_AlexNet_model(("age",))
        load_backbone(m, spec)
        return m

    spread = {}
    for spec in ("none", "kaiming"):
        with torch.no_grad():
            f = trunk(spec).trunk(x)
        spread[spec] = float(f.std(0).mean())            # across images, per feature
    assert spread["kaiming"] > 20 * spread["none"], spread
    a, b = trunk("kaiming"), trunk("kaiming")
    convs = [layer for layer in a.features if isinstance(layer, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(float(c.bias.abs().max()) == 0 for c in convs)
    fan_in = convs[1].weight[0].numel()
    assert abs(float(convs[1].weight.std()) - math.sqrt(2 / fan_in)) < 0.1 * math.sqrt(2 / fan_in)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_backbone_errors_are_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    m = MTL_AlexNet_model(("gender",))
    with pytest.raises(ConfigError, match="weights are not in the torch cache .*torch_home.*alexnet-owt-7be5be79.pth"):
        load_backbone(m, "imagenet")
    with pytest.raises(ConfigError, match="no such file"):
        load_backbone(m, str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        load_backbone(m, str(bad))


@pytest.mark.parametrize("env", [{"TORCH_HOME": "th"}, {"XDG_CACHE_HOME": "xdg"}, {}])
def test_preflight_finds_the_weights_where_torch_does(tmp_path: Path, monkeypatch, env) -> None:
    """hubcache computes torch.hub's folder without importing torch; both must agree, or the preflight
    would look for the ImageNet weights in the wrong place."""
    from mtl_cluster import hubcache
    for key in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(tmp_path / value))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hubcache.hub_dir() == Path(torch.hub.get_dir())
    assert hubcache.imagenet_weights().name == Path(models.AlexNet_Weights.IMAGENET1K_V1.url).name


def test_epsilon_error_known_values() -> None:
    """ChaLearn's ε = 1 - exp(-(x - μ)² / 2σ²): 0 at the mean, 1 - e^-0.5 one σ away, towards 1 far away."""
    from mtl_cluster.train.metrics import epsilon_error
    eps = epsilon_error(torch.tensor([30.0, 33.0, 30.0, 90.0]), torch.tensor([30.0, 30.0, 27.0, 30.0]),
                        torch.tensor([3.0, 3.0, 3.0, 3.0]))
    expected = torch.tensor([0.0, 1 - math.exp(-0.5), 1 - math.exp(-0.5), 1.0])
    assert torch.allclose(eps, expected, atol=1e-6)


def test_fine_tune_never_starts_from_an_older_checkpoint_of_its_parent(tmp_path: Path) -> None:
    """A damaged newest checkpoint in the pretraining run's folder: the fine-tune refuses with the fix, and
    leaves the parent's files exactly as they were. It used to initialise silently from the checkpoint
    before (an earlier epoch's weights under the same row name; the chaos soak found it)."""
    from mtl_cluster.errors import CheckpointError
    from mtl_cluster.train.checkpoint import load_init, save_checkpoint
    folder = tmp_path / "parent" / "checkpoints"
    folder.mkdir(parents=True)
    save_checkpoint(folder, {"epoch": 1, "step": 0, "model": {"features.0.bias": torch.ones(3)}})
    newest = save_checkpoint(folder, {"epoch": 2, "step": 0, "model": {"features.0.bias": torch.zeros(3)}})
    assert torch.equal(load_init(tmp_path / "parent")["features.0.bias"], torch.zeros(3))   # the final one
    newest.write_bytes(newest.read_bytes()[:100])
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(CheckpointError, match=rf"{newest.name} is damaged .*--force"):
        load_init(tmp_path / "parent")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
