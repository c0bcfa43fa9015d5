"""The dataset registry: which datasets a config can name, which source of files serves each of their tasks,
in which layouts, under which data keys. The routing rule is written here once and read by the trainer's
loaders, the equal-budget epoch, the data check and the collector's sections.

Two words, two things. A *dataset* is what a config's ``dataset`` key names and a table section is made of
(``CVPR_16_ChaLearn`` is ChaLearn LAP 2016 for gender/smile/age plus FER2013 for emotion). A *source* is one
release of files (``chalearn``, ``fer2013``, ``imdb-wiki``): what ``mtl-data check --dataset`` names and
what a loader reads. Pure Python, like tasks.py: the config validator and the launcher import it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .tasks import TASKS

SYNTHETIC = "synthetic"
CHALEARN = "CVPR_16_ChaLearn"
IMDB_WIKI = "IMDB-WIKI"


@dataclass(frozen=True)
class Source:
    """One release of files: the tasks it labels, its layouts, the data keys that locate it."""

    key: str                       # mtl-data check's name (--dataset)
    release: str                   # what its authors call it
    title: str                     # a run's TaskData.dataset: the name in logs and table headers
    tasks: tuple[str, ...]
    layouts: tuple[str, ...]       # the loader's layouts (the layout key picks one where there are several)
    data_keys: str                 # the DataConfig keys that locate it, as the docs write them
    module: str                    # its loader: mtl_cluster/train/data/<module>.py, with load_task (and train_size)
    aliases: tuple[str, ...] = ()  # other spellings mtl-data check accepts (compared lower-case, alphanumerics only)
    one_file_list: bool = False    # every task reads the same images, split the same way (one count serves all)

    @property
    def description(self) -> str:
        """One line for --help and errors: ``IMDB-WIKI: gender, age (data.imdb_wiki*)``."""
        return f"{self.release}: {', '.join(self.tasks)} ({self.data_keys})"


@dataclass(frozen=True)
class Dataset:
    """What a config's ``dataset`` names: its tasks and, per task, the source that serves it."""

    name: str
    description: str
    sources: dict[str, str]        # task -> Source.key; empty for synthetic (drawn, no files)
    section: str | None = None     # the collector's section when it is not set by pretraining (IMDB-WIKI's own)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks it has labels for, in TASKS order (synthetic: all four)."""
        return tuple(t for t in TASKS if t in self.sources) if self.sources else TASKS


SOURCES: dict[str, Source] = {
    "chalearn": Source("chalearn", release="ChaLearn LAP 2016", title="ChaLearn_2016", tasks=("gender", "smile", "age"),
                       layouts=("imagefolder", "official"), data_keys="data.chalearn_*", module="chalearn",
                       aliases=("cvpr16chalearn", "chalearn2016")),
    "fer2013": Source("fer2013", release="FER2013", title="FER_2013", tasks=("emotion",), layouts=("csv", "h5"),
                      data_keys="data.fer2013", module="fer2013", aliases=("fer",)),
    "imdb-wiki": Source("imdb-wiki", release="IMDB-WIKI", title="IMDB-WIKI", tasks=("gender", "age"),
                        layouts=("aligned", "mat"), data_keys="data.imdb_wiki*", module="imdb_wiki",
                        aliases=("imdbwiki",), one_file_list=True),
}
"""Every source of files, in the order the data check reports them."""

DATASETS: dict[str, Dataset] = {
    SYNTHETIC: Dataset(SYNTHETIC, "drawn face-like images, all four tasks (default; no files needed)", {}),
    CHALEARN: Dataset(CHALEARN, "ChaLearn LAP 2016 for gender/smile/age, FER2013 for emotion",
                      {"gender": "chalearn", "smile": "chalearn", "emotion": "fer2013", "age": "chalearn"}),
    IMDB_WIKI: Dataset(IMDB_WIKI, "IMDB-WIKI for gender/age (pretraining)",
                       {"gender": "imdb-wiki", "age": "imdb-wiki"}, section="imdb_wiki"),
}
"""Every value of a config's ``dataset``. The order is part of the synthetic stand-ins' seeds: append only."""

DATASET_TASKS: dict[str, tuple[str, ...]] = {name: d.tasks for name, d in DATASETS.items()}
"""Which tasks each dataset has labels for: a section's rows share these tasks' budget."""


def source_of(dataset: str, task: str, synthetic: bool = False) -> str | None:
    """The routing rule: the Source key whose files serve ``task`` of ``dataset``; None where images are drawn
    (the synthetic dataset, or ``data.synthetic`` standing in for the files with the same tasks)."""
    if synthetic:
        return None
    return DATASETS[dataset].sources.get(task)


def source_key(name: str) -> str | None:
    """A Source key from what a user typed: ``chalearn``, ``CVPR_16_ChaLearn``, ``FER``, ``imdb-wiki``,
    ``IMDB-WIKI``... (letters and digits compared, case ignored); None if it names none."""
    squashed = "".join(c for c in name.lower() if c.isalnum())
    for source in SOURCES.values():
        if squashed in ("".join(c for c in source.key if c.isalnum()), *source.aliases):
            return source.key
    return None
