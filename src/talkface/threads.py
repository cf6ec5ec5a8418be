"""numpy's BLAS on one thread in a process that runs talkface.

talkface's matrix products are small (a few frames by a few hundred columns). OpenBLAS runs some of them on
its second thread, which then spins waiting for the next one: on 2 cores a live Session at 512 px took 28.9 ms
of CPU per frame with it and 15 ms without, at the same frame rate (the spinning thread's core is simply
burnt, and it is the core another session, or the rest of a voice agent, would use). The `talkface` command
sets OPENBLAS_NUM_THREADS=1 before numpy loads (cli.run); a program that imports talkface as a library gets
the same through single_thread_blas(), which every Engine (so every Session and offline job) calls.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

# A thread count the user chose for BLAS: talkface leaves it as it is.
USER_SETTINGS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_NUM_THREADS")

_lock = threading.Lock()
_done = False


def single_thread_blas() -> None:
    """Limit the BLAS libraries loaded in this process (numpy's OpenBLAS, or MKL, BLIS) to one thread, once
    per process, unless one of USER_SETTINGS is set in the environment. It changes the whole process: a
    program that wants more BLAS threads for its own work sets OPENBLAS_NUM_THREADS (or another of
    USER_SETTINGS) itself."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        if any(os.environ.get(name) for name in USER_SETTINGS):
            return
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1, user_api="blas")
        except Exception as e:  # a BLAS threadpoolctl cannot drive: talkface works, with more CPU
            log.debug("BLAS threads not limited: %s", e)
