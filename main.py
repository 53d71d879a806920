"""Entry point in a checkout: `python main.py --config configs/NAME.py [--workdir DIR] [--config.key=value ...]`.

The same command as the installed `stm-jax` console script (`stm_jax/entry.py`): it parses flags and
runs the job the config names (`config.job`; every job is an importable `run(config, workdir)` listed
in `stm_jax/jobs/__init__.py`). `--config` also takes a bundled config's name (`--config segment`).
A user error (bad input or config value, missing file, unknown config field) prints one message and
exits with code 2; `--config.debug=True` (or STM_JAX_DEBUG=1) shows the traceback; `--verbosity=0`
brings back the libraries' INFO logs.
"""

from stm_jax.entry import run

if __name__ == "__main__":
    run()
