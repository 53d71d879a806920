"""Entry point: `python main.py --config configs/NAME.py [--workdir DIR] [--config.key=value ...]`.

Only parses flags and dispatches to the job the config names (`config.job`); every job is an importable
function `run(config, workdir)` listed in `stm_jax/jobs.py`. A user error (bad input or config value,
missing file, unknown config field) prints one message and exits with code 2; `--config.debug=True`
(or STM_JAX_DEBUG=1) shows the traceback; `--verbosity=0` brings back the libraries' INFO logs.
"""

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file with get_config()."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (created if missing).")
flags.mark_flags_as_required(["config"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from stm_jax.cli import loaded_config
    from stm_jax.jobs import run_job

    run_job(loaded_config(_CONFIG.value), _WORKDIR.value)


if __name__ == "__main__":
    from stm_jax.cli import run_cli

    run_cli(main)
