"""One exception family for the whole project, and the exit codes the CLI maps it to.

Library code raises these; only ``mtl_cluster.cli`` (``cli.common.run``) turns them into a message and an exit code.
Imports nothing internal so every module can use it.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1          # a run failed (NaN loss, crash): needs a human
EXIT_USAGE = 2           # bad input: config, flags, missing data
EXIT_BUSY = 3            # the run folder is held by another trainer: nothing was written, nothing to fix
EXIT_INTERRUPTED = 75    # EX_TEMPFAIL: checkpointed on a signal, requeue me
WORKER_DONE = "mtl-worker-done "
"""``mtl-train --worker``'s answer after each run: one stderr line, this prefix + JSON {"rc": exit code}. On
stderr after the run's own lines, so the launcher knows which last line belongs to which run."""


class MtlError(Exception):
    """Base of every error a user can fix; the message is one line naming problem and fix."""

    exit_code = EXIT_FAILED


class ConfigError(MtlError):
    """A configuration value is missing, unknown or of the wrong type.

    ``where`` (the key path, e.g. ``data.root`` or ``experiments[3].lr_rate``) and ``problem`` are kept as
    fields when the raiser knows them, so a caller re-anchors the message (file, line, YAML path) without
    parsing its text; the message is then ``where: problem``.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str = "", *, where: str | None = None, problem: str | None = None):
        super().__init__(message or f"{where}: {problem}")
        self.where, self.problem = where, problem

    def parts(self) -> tuple[str, str]:
        """(where, problem): the fields, or for a message without them ("", the message)."""
        return (self.where, self.problem) if self.where is not None and self.problem is not None \
            else ("", str(self))


class DataError(MtlError):
    """A dataset file or folder is missing or not in the expected layout."""

    exit_code = EXIT_USAGE


class CheckpointError(MtlError):
    """A checkpoint cannot be used (other config, damaged beyond fallback)."""

    exit_code = EXIT_USAGE


class Unreadable(MtlError):
    """Files or folders this user may not read (another user's runs written under a private umask)."""

    exit_code = EXIT_USAGE


class TrainingFailed(MtlError):
    """The run stopped for a reason that a restart will not fix (NaN loss...)."""

    exit_code = EXIT_FAILED


class LossNotFinite(TrainingFailed):
    """The loss became NaN or inf: lower the learning rate or check the data."""


class Stalled(TrainingFailed):
    """The checkpoint did not advance over consecutive attempts: requeueing again would loop (exit 1, not 75)."""


class Interrupted(MtlError):
    """The run saved a checkpoint after SIGUSR2/SIGTERM and should be requeued."""

    exit_code = EXIT_INTERRUPTED


class RunFolderBusy(MtlError):
    """Another trainer holds the run folder's lock (mtl_cluster.runlock): this one wrote nothing there.

    Exit 3 (EXIT_BUSY), not 75: a duplicate must not be requeued by Slurm; nor 2: the input is not at fault.
    ``holder_host``/``holder_pid`` name the holder when its lock file says who it is.
    """

    exit_code = EXIT_BUSY

    def __init__(self, message: str, *, holder_host: str | None = None, holder_pid: int | None = None):
        super().__init__(message)
        self.holder_host, self.holder_pid = holder_host, holder_pid
