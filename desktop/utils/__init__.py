"""The ground floor: imported by every other package, imports none of them.

    paths.py          where things live on disk (data, config, logs, resources; the frozen bundle's too)
    fsutil.py         atomic owner-only writes, bounded reads, process locks
    logs.py           rotating log files with secrets redacted; log records as events
    frozen.py         the installed bundle: one executable as app, node, services and sandbox interpreter
    runtime.py        where children run: natively, or inside WSL on Windows
    proc_stop.py      SIGTERM -> grace -> SIGKILL, for one process or a group
    parent_watch.py   children stop when the app dies; a 'stop' line on stdin where signals cannot reach
    recursion_cap.py  keeps py_ecc's recursion limit from turning a RecursionError into a segfault
    absent_scipy.py   answers the imports of scipy that the bundle leaves out
    updates.py        the release feed: checked daily, sha256-checked downloads, never auto-installed
"""
