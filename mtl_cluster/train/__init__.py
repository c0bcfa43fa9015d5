"""The training job: model, data, loop, checkpoints. Everything torch lives under here."""
