"""The image counts each dataset copy should have, per split: the one table ``mtl-data check`` and the
launch preflight compare a copy with, so a wrong or partial copy is caught before the first job.

Keys name a *copy layout* the loaders read (train/data/*.py), not a dataset alone: the group's aligned
ChaLearn folders and the official ChaLearn release hold different images, so each has its own numbers.
Every number says where it comes from; a layout with no published count (IMDB-WIKI trees made by a
preprocessing script) has no entry, and its counts are shown without a comparison.
Pure data, no imports beyond the standard library.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """The expected count per split of one copy layout, what is counted, and where the numbers come from."""

    counts: dict[str, int]
    counted: str
    source: str


REFERENCES: dict[str, Reference] = {
    # Kaggle's fer2013.csv (ICML 2013 representation-learning challenge): 35,887 rows; the split sizes are
    # the ones Kaggle's Usage column gives, quoted e.g. in github.com/isseu/emotion-recognition-neural-networks
    # issue 6 and by the HF dataset Aaryan333/fer2013_train_publicTest_privateTest (28.7k / 3.59k / 3.59k).
    "fer2013": Reference({"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589},
                         "rows per Usage", "Kaggle fer2013.csv (35,887 rows)"),
    # ChaLearn LAP 2016 apparent age, the official release (train/ valid/ test/ + *_gt.csv): 7,591 images
    # split 4,113 / 1,500 / 1,978, as the release's APPA-REAL README states for the same images ("The images
    # are split into 4113 train, 1500 valid and 1978 test images"); gesture.chalearn.org's 2016 challenge
    # page gives "8,000 images" in round numbers. Not checked against the challenge paper's own table.
    "chalearn_official": Reference({"train": 4_113, "valid": 1_500, "test": 1_978},
                                   "gt rows with their image", "ChaLearn LAP 2016 apparent age release"),
    # The group's aligned copies (CVPR_*_5_points/{TRAIN,VALID}/<class>/*.jpg), the folders the seed's code
    # read: counts from its own comments in data_load/CVPR_16_ChaLearn_data_loader.py at 1be65cf
    # (yiperzhou/age-estimation): "age train set images: 3707; test image: 1356", "gender train set images:
    # 4548; test image: 2250", "smile train set images: 4548, test image: 2250".
    "chalearn_age": Reference({"TRAIN": 3_707, "VALID": 1_356}, "images",
                              "the group's CVPR_AGE_5_points (seed code comments, 1be65cf)"),
    "chalearn_gender": Reference({"TRAIN": 4_548, "VALID": 2_250}, "images",
                                 "the group's CVPR_GENDER_5_points (seed code comments, 1be65cf)"),
    "chalearn_smile": Reference({"TRAIN": 4_548, "VALID": 2_250}, "images",
                                "the group's CVPR_SMILE_5_points (seed code comments, 1be65cf)"),
    # IMDB-WIKI release (data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki): "460,723 face images from 20,284
    # celebrities from IMDb and 62,328 from Wikipedia, thus 523,051 in total": the rows of imdb.mat and
    # wiki.mat before any cleaning (the loader's cleaning keeps far fewer; that number has no reference).
    "imdb.mat": Reference({"rows": 460_723}, "rows of the .mat (before cleaning)", "IMDB-WIKI release, imdb.mat"),
    "wiki.mat": Reference({"rows": 62_328}, "rows of the .mat (before cleaning)", "IMDB-WIKI release, wiki.mat"),
    # IMDB-WIKI aligned trees (imdb_wiki/{train,val,test}/<age>_<gender>_<name>.jpg) are made by a
    # preprocessing script (the seed used Age-Gender-Pred's pics/); their size depends on it: no entry.
}

PARTIAL_BELOW = 0.95
"""The launch preflight flags a split with fewer than this share of its reference count (a partial copy);
``mtl-data check`` flags any difference, a few missing files included."""
