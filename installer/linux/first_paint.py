"""Cold start of the installed executable to its window's first paint (offscreen, empty data dir):
the median of three runs, as "0.84 s".   python first_paint.py EXECUTABLE"""

import os
import statistics
import subprocess
import sys
import tempfile
import time


def once(exe: str) -> float:
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_DISABLE_SANDBOX="1",
                   RL_SWARM_GUI_QUIT_AFTER_PAINT="1")
        began = time.perf_counter()
        proc = subprocess.Popen([exe, "gui", "--data-dir", data], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)
        for line in proc.stdout:
            if line.strip() == "painted":
                took = time.perf_counter() - began
                break
        else:
            raise SystemExit(f"first_paint: {exe} never painted (exit {proc.wait()})")
        proc.wait(30)
        return took


if __name__ == "__main__":
    runs = [once(sys.argv[1]) for _ in range(3)]
    print(f"{statistics.median(runs):.2f} s (median of 3: {', '.join(f'{r:.2f}' for r in runs)})")
