#!/usr/bin/env bash
# Wall and CPU time of both test tiers, with the machine's load before and after each.
# Run from the repository root: bash benchmarks/test_times.sh
set -uo pipefail
uptime
/usr/bin/time -f "pytest -m 'not slow': %e s wall, %U s user, %S s system" \
    python -m pytest -m "not slow" -q -p no:cacheprovider
uptime
/usr/bin/time -f "python -m pytest: %e s wall, %U s user, %S s system" \
    python -m pytest -q -p no:cacheprovider
uptime
