"""The test harness the sandbox runs to judge a candidate: two processes, so the verdict cannot be forged.

A candidate that shares a process with the tests can reach anything the tests hold (a pass token,
the expected values, the frames and objects of the harness) and print "passed" without passing.
So the candidate and the tests never share a process:

* the **tests process** (``TESTS_PROGRAM``, the sandbox's main program) reads the job (tests, the
  candidate's source, a one-time token) from its stdin pipe, makes itself non-dumpable (a process of
  the same uid can then neither read its memory nor open its file descriptors), and starts
* the **candidate process** (``CANDIDATE_PROGRAM``), a fresh interpreter that receives only the
  candidate's source, runs it, and then answers calls: name, arguments -> result.

The tests run in the tests process against stand-ins for the candidate's names; every call crosses
to the candidate process as plain data (``_CODEC``: JSON with tags for tuples, sets, bytes, ...;
never pickle), and results come back as plain data too, so nothing the candidate returns can run
code in the tests process. Only the tests process holds the token and the stdout the host reads:
it writes the token there after the last test passed. The candidate's own output goes to stderr.
"""

from __future__ import annotations

import json

# Shared by both programs (stdlib only): plain data to and from one JSON line.
_CODEC = r'''
import base64 as _b64, json as _json, math as _math
MAX_LINE = 16 * 2**20
MAX_ITEMS = 100_000
class Unencodable(TypeError):
    pass
def enc(x, depth=0):
    if depth > 200:
        raise Unencodable("nested too deeply")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        return x if abs(x) < 2**53 else {"$i": str(x)}
    if t is float:
        return x if _math.isfinite(x) else {"$f": repr(x)}
    if t is list:
        return [enc(v, depth + 1) for v in x]
    if t is tuple:
        return {"$t": [enc(v, depth + 1) for v in x]}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [enc(v, depth + 1) for v in x]}
    if t is dict:
        return {"$d": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
    if t is bytes or t is bytearray:
        return {"$b" if t is bytes else "$ba": _b64.b64encode(bytes(x)).decode()}
    if t is complex:
        return {"$c": [enc(x.real), enc(x.imag)]}
    if t is range:
        return {"$r": [x.start, x.stop, x.step]}
    if t.__name__ in ("dict_keys", "dict_items"):
        return {"$s": [enc(v, depth + 1) for v in x]}
    if t.__name__ == "dict_values":
        return [enc(v, depth + 1) for v in x]
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return enc(int(x), depth)
    if isinstance(x, float):
        return enc(float(x), depth)
    if isinstance(x, str):
        return str.__str__(x)
    if hasattr(x, "__next__"):  # a generator or other iterator: its items, in order
        items = []
        for v in x:
            if len(items) >= MAX_ITEMS:
                raise Unencodable("iterator longer than %d items" % MAX_ITEMS)
            items.append(enc(v, depth + 1))
        return {"$it": items}
    raise Unencodable("a %s cannot cross between processes" % t.__name__)
_TAGS = {
    "$i": int, "$f": float, "$t": lambda v: tuple(dec(i) for i in v),
    "$s": lambda v: {dec(i) for i in v}, "$fs": lambda v: frozenset(dec(i) for i in v),
    "$d": lambda v: {dec(k): dec(i) for k, i in v},
    "$b": lambda v: _b64.b64decode(v), "$ba": lambda v: bytearray(_b64.b64decode(v)),
    "$c": lambda v: complex(dec(v[0]), dec(v[1])), "$r": lambda v: range(*v),
    "$it": lambda v: iter([dec(i) for i in v]),
}
def dec(x):
    if type(x) is list:
        return [dec(v) for v in x]
    if type(x) is dict:
        if len(x) != 1:
            raise ValueError("not an encoded value")
        (tag, v), = x.items()
        return _TAGS[tag](v)
    return x
def send(f, obj):
    f.write(_json.dumps(obj, separators=(",", ":")) + "\n")
    f.flush()
def receive(f):
    line = f.readline(MAX_LINE + 1)
    if not line:
        raise EOFError("the other process is gone")
    if len(line) > MAX_LINE:
        raise ValueError("message too large")
    return _json.loads(line)
'''

# The candidate process: run the program, then answer calls. Started by the tests process with
# ``-c``; its stdin/stdout are the protocol, its stderr is the sandbox's stderr.
CANDIDATE_PROGRAM = _CODEC + r'''
import builtins, linecache, os, sys, traceback, types
proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # input() sees no data, not the protocol
os.dup2(2, 1)  # the candidate's prints go to stderr, beside its tracebacks
sys.stdin, sys.stdout = open(os.devnull), sys.stderr
sys.excepthook = traceback.print_exception  # reads linecache, unlike the default hook
job = receive(proto_in)
ns = {"__name__": "solution", "__builtins__": builtins}
try:
    # the program, then what the tests share with it (helpers of the prompt, the tests' imports),
    # in the order one module would have run them
    for name in ("solution.py", "context.py"):
        src = job["program" if name == "solution.py" else "context"]
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
        exec(compile(src, name, "exec"), ns)
except BaseException as e:  # SyntaxError, an exception, or SystemExit before any test ran
    traceback.print_exception(e)
    sys.stderr.flush()
    send(proto_out, {"loaded": False, "error": "%s: %s" % (type(e).__name__, str(e)[:500])})
    os._exit(1)
def describe(name):
    if name not in ns:
        return None
    v = ns[name]
    if isinstance(v, types.ModuleType):
        return {"module": v.__name__}
    if callable(v):
        return {"callable": True}
    try:
        return {"value": enc(v)}
    except Unencodable:
        return None
send(proto_out, {"loaded": True, "names": {n: describe(n) for n in job["names"]}})
while True:
    try:
        msg = receive(proto_in)
    except EOFError:
        os._exit(0)
    try:
        args, kwargs = dec(msg["args"]), dec(msg["kwargs"])
        result = ns[msg["call"]](*args, **kwargs)
        reply = {"result": enc(result), "args": enc(args)}
    except BaseException as e:
        if isinstance(e, SystemExit):
            os._exit(1)  # quitting inside a call is not an answer
        traceback.print_exception(e)
        reply = {"raise": type(e).__name__, "message": str(e)[:2000]}
    sys.stderr.flush()
    send(proto_out, reply)
'''

# The tests process: the sandbox's main program.
TESTS_PROGRAM = _CODEC + r'''
import ast, builtins, ctypes, linecache, os, signal, subprocess, sys, traceback
sys.excepthook = traceback.print_exception
job = _json.loads(sys.stdin.readline(64 * 2**20))
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
verdict = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # prints of the tests go to stderr; stdout carries the verdict alone
sys.stdout = sys.stderr
if sys.platform.startswith("linux"):  # PR_SET_DUMPABLE 0: /proc/<us> is no longer the candidate's to read
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
tests = job.pop("tests")
token = job.pop("token")
tree = ast.parse(tests, "tests.py")
names = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(dir(builtins)))
cand = subprocess.Popen([sys.executable, "-I", "-S", "-B", "-u", "-X", "utf8", "-c", job.pop("candidate")],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
imports = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
send(cand.stdin, {"program": job.pop("program"), "context": job.pop("context") + "\n" + imports, "names": names})
del job
def gone(what):
    rc = cand.wait()
    if rc < 0:  # the candidate was killed (cpu, memory...): end the same way, so the host can tell
        sys.stderr.write("[harness] the candidate process was killed by signal %d %s\n" % (-rc, what))
        sys.stderr.flush()
        signal.signal(-rc, signal.SIG_DFL)  # Python ignores SIGXFSZ and SIGPIPE by default
        os.kill(os.getpid(), -rc)
    raise SystemExit("[harness] the candidate process exited (code %d) %s" % (rc, what))
try:
    hello = receive(cand.stdout)
except (EOFError, ValueError):
    gone("before it finished loading")
if not hello.get("loaded"):
    raise SystemExit("[harness] the solution failed to load: " + str(hello.get("error"))[:500])
def _mutable(old, new):  # mirror in-place changes the candidate made to list/dict/set arguments
    if type(old) is list and type(new) is list:
        old[:] = new
    elif type(old) is dict and type(new) is dict:
        old.clear(); old.update(new)
    elif type(old) is set and type(new) is set:
        old.clear(); old.update(new)
class Remote:
    def __init__(self, name):
        self.__name__ = self.__qualname__ = name
    def __repr__(self):
        return "<function %s>" % self.__name__
    def __call__(self, *args, **kwargs):
        send(cand.stdin, {"call": self.__name__, "args": enc(list(args)), "kwargs": enc(kwargs)})
        try:
            reply = receive(cand.stdout)
        except (EOFError, ValueError):
            gone("during a call to %s" % self.__name__)
        if "raise" in reply:
            kind = getattr(builtins, str(reply["raise"]), None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = RuntimeError
            raise kind("(from the solution) " + str(reply.get("message", ""))[:2000])
        for old, new in zip(args, dec(reply["args"])):
            _mutable(old, new)
        return dec(reply["result"])
ns = {"__name__": "tests", "__builtins__": builtins}
for name, info in hello["names"].items():
    if not info:
        continue
    if "module" in info:
        try:
            ns[name] = __import__(info["module"])
        except ImportError:
            pass
    elif "value" in info:
        ns[name] = dec(info["value"])
    else:
        ns[name] = Remote(name)
linecache.cache["tests.py"] = (len(tests), None, tests.splitlines(True), "tests.py")
exec(compile(tree, "tests.py", "exec"), ns)
cand.stdin.close()
sys.stderr.flush()
verdict.write(token + "\n")
verdict.flush()
os._exit(0)
'''


def job_line(program: str, tests: str, token: str, context: str = "") -> str:
    """The tests process's stdin: everything it needs, on one line. ``context`` is code the tests
    share with the program and that gives nothing away (a prompt's helpers, test set-up)."""
    return json.dumps({"program": program, "tests": tests, "context": context, "token": token,
                       "candidate": CANDIDATE_PROGRAM}) + "\n"
