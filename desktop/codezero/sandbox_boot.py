"""The sandbox's boot stub: stdlib-only source run as ``python -I -S -c BOOT <json config>``.

It starts inside the namespaces (``ns`` mode) or a new session (``plain`` mode) and

* builds the private read-only root and chroots into it (``ns`` mode, as the namespace's init);
* forks the program: rlimits, no-new-privs, capabilities dropped, then the sandbox's own uid;
* supervises it: reaps orphans (as init), reports how it ended in the status file, and watches the
  ``alive`` pipe from the host. The host holds the only write end: when the host dies, however it
  dies (SIGKILL included), the pipe reads EOF and the stub takes everything it started with it.

Kept apart from ``sandbox.py`` because it is a program of its own, not host code.
"""

BOOT = r'''# rlswarm-sandbox-boot
import json, os, sys
c = json.loads(sys.argv[1])
st = os.open(c["status"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
def report(**kw):
    os.write(st, json.dumps(kw).encode())
try:
    import ctypes, resource, threading
    libc = ctypes.CDLL(None, use_errno=True)
    linux = sys.platform.startswith("linux")
    def call(name, *args):
        if getattr(libc, name)(*args) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "%s%r: %s" % (name, args[:2], os.strerror(e)))
    def mount(src, dst, fs, flags, data=None):
        enc = lambda s: None if s is None else s.encode()
        call("mount", enc(src), enc(dst), enc(fs), ctypes.c_ulong(flags), enc(data))
    def prctl(*args):
        call("prctl", *[ctypes.c_ulong(a) for a in args])
    RO, NOSUID, NODEV, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
    def bind_ro(src, dst):  # the remount must repeat flags a user namespace locked (nodev, noexec, atime)
        mount(src, dst, None, BIND | REC)
        f = os.statvfs(dst).f_flag
        mount(None, dst, None, REMOUNT | BIND | RO | NOSUID | f & (NODEV | 8 | 1024 | 2048) | (f & 4096) << 9)
    uid, gid, root, alive = c["uid"], c["gid"], c["root"], c["alive"]
    with open(c["src"], "rb") as f:
        code = f.read()
    os.umask(0o022)
    if root:
        mount(None, "/", None, REC | PRIVATE)
        mount("tmpfs", root, "tmpfs", NOSUID | NODEV, "size=4m,mode=755")
        for p in c["ro"]:
            t = root + p
            os.makedirs(os.path.dirname(t), exist_ok=True)
            if os.path.islink(p):
                os.symlink(os.readlink(p), t)
            elif os.path.isdir(p):
                os.makedirs(t, exist_ok=True)
                bind_ro(p, t)
        for d in ("proc", "dev/shm", "tmp"):
            os.makedirs(root + "/" + d, exist_ok=True)
        bind_ro("/proc", root + "/proc")  # the new pid namespace's /proc, from unshare
        for n in ("null", "zero", "full", "random", "urandom"):
            open(root + "/dev/" + n, "w").close()
            mount("/dev/" + n, root + "/dev/" + n, None, BIND)
        for i, n in enumerate(("stdin", "stdout", "stderr")):
            os.symlink("/proc/self/fd/%d" % i, root + "/dev/" + n)
        os.symlink("/proc/self/fd", root + "/dev/fd")
        for d in ("/tmp", "/dev/shm"):
            mount("tmpfs", root + d, "tmpfs", NOSUID | NODEV, "size=%d,mode=1777" % c["tmp_bytes"])
        os.makedirs(root + "/tmp/sandbox")
        work = root + "/tmp/sandbox"
    else:
        work = c["work"]
    main = os.path.join(work, c["argv"][-1])
    with open(main, "wb") as f:
        f.write(code)
    if uid is not None:
        os.chown(work, uid, gid)
        os.chown(main, uid, gid)
    if root:
        mount(None, root, None, REMOUNT | RO | NOSUID | NODEV)
        os.chroot(root)
        work = "/tmp/sandbox"
    os.chdir(work)
    def child():
        os.close(alive)  # only the supervisor watches the host
        for name, soft, hard in c["rlimits"]:
            res = getattr(resource, name, None)
            cur = resource.getrlimit(res)[1] if res is not None else None
            hard = hard if cur in (None, resource.RLIM_INFINITY) else min(hard, cur)
            try:
                resource.setrlimit(res, (min(soft, hard), hard))
            except (ValueError, OSError, TypeError):  # macOS refuses some; Linux must not
                if linux:
                    raise
        if c["drop_caps"]:  # root of a user namespace: keep no capability across exec
            for cap in range(64):  # PR_CAPBSET_DROP; EINVAL past the last capability
                libc.prctl(*[ctypes.c_ulong(a) for a in (24, cap, 0, 0, 0)])
            prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
            call("capset", (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
        if linux:
            prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries cannot raise privileges
        if uid is not None:
            os.setgroups([]), os.setgid(gid), os.setuid(uid)
        os.execv(c["argv"][0], c["argv"])
    pid = os.fork()
    if pid == 0:
        try:
            child()
        except BaseException as e:
            report(setup_error="%s: %s" % (type(e).__name__, e))
        os._exit(125)
    if linux:  # the candidate runs under another uid or without capabilities; keep it out of /proc/<us>
        libc.prctl(ctypes.c_ulong(4), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    def host_gone():
        while True:
            try:
                if os.read(alive, 1) == b"":
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        if root:
            os._exit(137)  # the namespace's init leaving kills every process inside it
        os.killpg(0, 9)
    threading.Thread(target=host_gone, daemon=True).start()
    while True:  # as init, every orphan of the namespace is ours to reap
        p, s = os.waitpid(-1 if root else pid, 0)
        if p == pid:
            break
    if os.lseek(st, 0, os.SEEK_CUR) == 0:  # the child did not report a setup error
        report(signal=os.WTERMSIG(s)) if os.WIFSIGNALED(s) else report(exit=os.WEXITSTATUS(s))
    os._exit(0)
except BaseException as e:
    report(setup_error="%s: %s" % (type(e).__name__, e))
    os._exit(125)
'''
