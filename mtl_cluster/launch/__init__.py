"""The launch side: the study file to runs (study.py, grid.py), cluster profiles and sbatch parameters
(clusters.py), each run's action and the preflight (plan.py), submission and local runs (submit.py, the only
submitit importer), the submission journal and the launch records and lock (journal.py, ledger.py), squeue,
sacct, sinfo and scancel with timeouts (slurmq.py), a run's state (status.py), sacct's GPU-hours
(accounting.py) and the right-size proposal written into the study file (resize.py). May import the ground
floor, its own modules and ``datacheck`` (the preflight's dataset counts); never ``cli``, ``collect`` or ``train``
(it starts the job as a process, ``python -m mtl_cluster.train``).
"""
