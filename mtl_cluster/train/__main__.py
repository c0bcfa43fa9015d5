"""``python -m mtl_cluster.train --config run.yaml --run-dir DIR``: one run, no scheduler."""
from ..cli.train import entry_train

if __name__ == "__main__":
    entry_train()
