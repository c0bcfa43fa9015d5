"""mtl_cluster: run and compare a multitask-vs-single-task AlexNet study on a SLURM cluster."""

__version__ = "0.1.0"
