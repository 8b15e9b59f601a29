"""The app's shell: the main window and what hangs on it.

    main_window.py    MainWindow: sidebar of pages, notices, status bar; makes its menus and tray
    actions.py        ShellActions: every command (node, pause, folders, join/host, services), one owner
    pause_actions.py  the snooze actions (an hour, until tomorrow, after this round, resume)
    menus.py          the menu bar: the actions laid out, the view's pages and appearance
    tray.py           the tray icon, its menu (the same actions), notifications; the no-tray fallback
    state_look.py     how each ProcState reads and looks (pill, tray icon, status bar): one table
"""
