"""Install mtl_cluster and its console scripts. Ranges, not pins: torch must stay satisfiable by the
locally cached 2.14.1 / torchvision 0.29.1 on the group's machines (a wider range downloads gigabytes)."""
from setuptools import find_packages, setup

setup(
    name="mtl_cluster",
    version="0.1.0",
    description="Run and compare a multitask-vs-single-task AlexNet study on a SLURM cluster",
    packages=find_packages(include=["mtl_cluster", "mtl_cluster.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1,<=2.14.1",
        "torchvision>=0.16,<=0.29.1",
        "numpy>=1.24",
        "pandas>=2.0",
        "rich>=13.0",
        "pyyaml>=6.0",
        "submitit>=1.5",
        "scipy>=1.10",
        "h5py>=3.8",
        "pillow>=9.0",
        "matplotlib>=3.7",
    ],
    # statsmodels: a second reference for the McNemar test (tests/test_stats.py); ruff and mypy: the lint
    # and type gate of scripts/test.sh (ranges: a new release's new rules must not fail CI unannounced)
    extras_require={"test": ["pytest>=7.4", "hypothesis>=6.0", "statsmodels>=0.14", "ruff>=0.17,<0.18",
                             "mypy>=2.4,<2.5", "tensorboard>=2.14"],
                    "tensorboard": ["tensorboard>=2.14"]},
    entry_points={"console_scripts": [
        "mtl-train=mtl_cluster.cli.train:entry_train",
        "mtl-collect=mtl_cluster.cli.collect:entry_collect",
        "mtl-launch=mtl_cluster.cli.launch:entry_launch",
        "mtl-status=mtl_cluster.cli.status:entry_status",
        "mtl-data=mtl_cluster.cli.data:entry_data",
    ]},
)
