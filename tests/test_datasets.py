"""The dataset registry (mtl_cluster/datasets.py) is the one place the routing rule is written: the trainer's
loaders, the equal-budget epoch, the data check and the collector all follow it, and no other module compares
a value with a dataset's or a source's name."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mtl_cluster.config import TrainConfig
from mtl_cluster.config import train_config_from_dict as from_dict
from mtl_cluster.datacheck.count import parts_named, parts_of
from mtl_cluster.datasets import DATASET_TASKS, DATASETS, SOURCES, SYNTHETIC, source_key, source_of
from mtl_cluster.errors import ConfigError
from mtl_cluster.tasks import TASKS

PKG = Path(__file__).resolve().parents[1] / "mtl_cluster"
NAMES = {*DATASETS, *SOURCES, *(s.title for s in SOURCES.values())}


def test_every_dataset_routes_each_of_its_tasks_to_a_source_that_labels_it() -> None:
    for dataset in DATASETS.values():
        for task, source in dataset.sources.items():
            assert source in SOURCES and task in SOURCES[source].tasks, (dataset.name, task, source)
        assert DATASET_TASKS[dataset.name] == dataset.tasks
        assert set(dataset.tasks) <= set(TASKS)
    assert DATASET_TASKS[SYNTHETIC] == TASKS


@pytest.mark.parametrize("dataset", [d for d in DATASETS if d != SYNTHETIC])
def test_synthetic_data_stands_in_for_every_source(dataset: str) -> None:
    assert all(source_of(dataset, task, synthetic=True) is None for task in DATASETS[dataset].tasks)


def test_the_data_check_reads_the_copies_the_registry_routes_to() -> None:
    """parts_of follows source_of: one ChaLearn copy per task, FER for emotion, one IMDB-WIKI copy for both tasks."""
    chalearn = from_dict({"dataset": "CVPR_16_ChaLearn", "loss_weights": [1, 1, 1, 1]})
    assert [(p.dataset, p.task) for p in parts_of(chalearn)] == \
        [("chalearn", "gender"), ("chalearn", "smile"), ("fer2013", ""), ("chalearn", "age")]
    imdb = from_dict({"dataset": "IMDB-WIKI", "loss_weights": [1, 0, 0, 1]})
    assert [p.dataset for p in parts_of(imdb)] == ["imdb-wiki"]
    assert parts_of(from_dict({"dataset": "CVPR_16_ChaLearn", "data": {"synthetic": True}})) == []
    every = parts_named(TrainConfig().data, list(SOURCES))
    assert [p.dataset for p in every] == ["chalearn"] * 3 + ["fer2013", "imdb-wiki"]


def test_a_task_the_dataset_does_not_label_is_refused_in_the_registrys_words() -> None:
    with pytest.raises(ConfigError, match="IMDB-WIKI has labels for gender and age only; set smile and emotion "
                                          "weights to 0"):
        from_dict({"dataset": "IMDB-WIKI", "loss_weights": [1, 1, 0, 1]})


def test_source_names_as_users_type_them() -> None:
    assert [source_key(n) for n in ("CVPR_16_ChaLearn", "chalearn", "FER", "fer2013", "IMDB-WIKI", "imdb_wiki")] \
        == ["chalearn", "chalearn", "fer2013", "fer2013", "imdb-wiki", "imdb-wiki"]
    assert source_key("celeba") is None


def test_no_module_but_the_registry_compares_with_a_dataset_name() -> None:
    """``x == "IMDB-WIKI"`` outside datasets.py is a second routing rule in the making."""
    hits = []
    for path in PKG.rglob("*.py"):
        if path.name == "datasets.py" and path.parent == PKG:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                consts = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                hits += [f"{path.relative_to(PKG)}:{node.lineno} {c!r}" for c in consts if c in NAMES]
    assert not hits, hits
