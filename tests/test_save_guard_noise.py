"""SaveGuard keeps a failed save to one line: orbax's 'Event loop is closed' callbacks (one
unraisable traceback per pending write on a full disk) and its no-metrics warning are dropped while
a training runs; every other unraisable error still reaches the previous hook."""

import logging
import sys
import types

from stm_jax.training.save_guard import SaveGuard


def unraisable(error):
    return types.SimpleNamespace(
        exc_type=type(error), exc_value=error, exc_traceback=None, err_msg=None, object=None
    )


def test_closed_event_loop_noise_is_dropped_and_other_errors_are_not(tmp_path):
    seen = []
    before = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        with SaveGuard(tmp_path):
            sys.unraisablehook(unraisable(RuntimeError("Event loop is closed")))
            other = unraisable(RuntimeError("something else"))
            sys.unraisablehook(other)
        assert seen == [other]
        assert sys.unraisablehook == seen.append  # restored on exit
    finally:
        sys.unraisablehook = before


def test_the_no_metrics_warning_is_dropped_and_others_kept(tmp_path):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("absl")
    handler = Keep()
    logger.addHandler(handler)
    try:
        with SaveGuard(tmp_path):
            logger.warning("Requested `tracked_metric`; did not provide metrics.")
            logger.warning("a real warning")
    finally:
        logger.removeHandler(handler)
    assert records == ["a real warning"]
