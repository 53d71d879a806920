#!/usr/bin/env bash
# Wall and CPU time of both test tiers, with the machine's load before and after each.
# Run from the repository root: bash benchmarks/test_times.sh
# Both runs are cold: each starts with an empty compilation cache of its own (tests/conftest.py),
# unless STM_TEST_JAX_CACHE names a kept one, so it is unset here.
set -uo pipefail
unset STM_TEST_JAX_CACHE
uptime
/usr/bin/time -f "pytest -m 'not slow': %e s wall, %U s user, %S s system" \
    python -m pytest -m "not slow" -q -p no:cacheprovider
uptime
/usr/bin/time -f "python -m pytest: %e s wall, %U s user, %S s system" \
    python -m pytest -q -p no:cacheprovider
uptime
