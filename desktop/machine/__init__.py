"""This machine: what it has, whether its owner is using it, and when the node may work.

    probe.py          CPU, RAM, GPUs and their VRAM, disk; the model pool the hardware picks
    idle.py           seconds since the owner's last input, and battery, on each OS (None: unknown)
    pause_control.py  the user's pause, kept in <data dir>/control.json (app, CLI and node agree)
    work_window.py    when the node may work: one pure decide(settings, inputs, clock)
"""
