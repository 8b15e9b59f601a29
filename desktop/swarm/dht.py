"""A hivemind DHT peer that signs what it stores with the peer's own swarm.pem key.

The RSA key that hivemind's ``RSASignatureValidator`` signs with is the libp2p identity key
itself. Every record we publish sits under the subkey ``[owner:ssh-rsa …]`` carrying that
public key, and only its holder can write there, so a reader can derive the publisher's
libp2p peer id from the subkey (:func:`publisher_peer_id`) and compare it with the peer id a
record claims. A second validator refuses any record not under such an owner subkey, so no
one can overwrite a shared key with a plain value.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import hivemind
import msgpack
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hivemind.dht.crypto import RSASignatureValidator
from hivemind.dht.routing import DHTID
from hivemind.dht.validation import DHTRecord, RecordValidatorBase
from hivemind.utils import get_dht_time
from hivemind.utils.crypto import RSAPrivateKey

from desktop.identity import IdentityError, load_identity

from .owner import MAX_SUBKEY_BYTES, publisher_peer_id
from .homes import home_key
from .records import MAX_RECORD_BYTES

# Time beyond startup_timeout for the bootstrap pings and the "identity taken" probe.
_BOOTSTRAP_GRACE_S = 10.0


class SwarmError(Exception):
    """The swarm connection failed; the message is meant for the user. ``bootstrap``: it failed
    because no initial peer would take us in."""

    def __init__(self, message: str, *, bootstrap: bool = False) -> None:
        super().__init__(message)
        self.bootstrap = bootstrap


def _identity_signing_key(private_key: rsa.RSAPrivateKey) -> RSAPrivateKey:
    """hivemind's RSAPrivateKey wrapping an existing key (its constructor always makes one)."""
    key = RSAPrivateKey.__new__(RSAPrivateKey)
    # The same state hivemind's own __setstate__ restores from a pickle: the key as PKCS#1 DER.
    key.__setstate__({"_private_key": private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())})
    return key


class SwarmRecordValidator(RecordValidatorBase):
    """What every peer of ours stores and accepts: a swarm record (``desktop.swarm.records``)
    under exactly its publisher's ``[owner:…]`` subkey, at the one key the record itself names.

    hivemind calls this on every record another peer asks us to store and on every record a peer
    returns to us, after ``RSASignatureValidator`` checked the signature. Refusing anything else
    here is what keeps junk off honest nodes: values hivemind cannot unpack, other publishers'
    records under a peer's key, extra subkeys beside the owner's, plain values over a shared key.
    Module level so it pickles where multiprocessing spawns (macOS).
    """

    def validate(self, record: DHTRecord) -> bool:
        try:
            subkey = msgpack.unpackb(record.subkey, raw=True, max_bin_len=MAX_SUBKEY_BYTES,
                                     max_str_len=0, max_array_len=0, max_map_len=0, max_ext_len=0)
            publisher = publisher_peer_id(subkey)
            if publisher is None:
                return False
            value = msgpack.unpackb(record.value, raw=True, max_bin_len=MAX_RECORD_BYTES, max_str_len=0,
                                    max_array_len=0, max_map_len=0, max_ext_len=0)
            if not isinstance(value, bytes):
                return False
            key, named = home_key(value)
            return named == publisher and DHTID.generate(source=key).to_bytes() == record.key
        except Exception:  # anything a stranger sent that we cannot read is simply not valid
            return False

    def merge_with(self, other: RecordValidatorBase) -> bool:
        return isinstance(other, SwarmRecordValidator)


class SwarmDHT:
    """One DHT peer (a forked hivemind process running the p2pd daemon) for this node."""

    def __init__(self, identity_path: str | os.PathLike, *, initial_peers: Sequence[str] = (),
                 host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 120.0,
                 request_timeout: float = 30.0):
        try:
            identity = load_identity(identity_path)
        except IdentityError as exc:
            raise SwarmError(str(exc)) from None
        self.identity_path = Path(identity_path)
        self.peer_id: str = identity.peer_id
        self.request_timeout = request_timeout
        self.validator = RSASignatureValidator(_identity_signing_key(identity.private_key))
        self.subkey: bytes = self.validator.local_public_key  # where our own records go
        self._initial_peers = [str(p) for p in initial_peers]
        self._lock = threading.Lock()  # hivemind's command pipe is not thread-safe
        self._daemons: dict[int, psutil.Process] = {}
        self._closed = False
        self._dht = None
        # hivemind's own "identity taken" check asks the network and can miss a live peer under
        # load; a lock beside the key makes the same-machine case certain.
        self._identity_lock = _claim_identity(self.identity_path, self._taken_message())
        try:
            self._dht = hivemind.DHT(
                initial_peers=self._initial_peers or None, start=False,
                identity_path=str(self.identity_path),
                host_maddrs=[f"/ip4/{host}/tcp/{int(port)}"], startup_timeout=startup_timeout,
                record_validators=[self.validator, SwarmRecordValidator()])
            self._dht.run_in_background(await_ready=False)
            self._await_ready(startup_timeout + _BOOTSTRAP_GRACE_S, startup_timeout)
            self._call(_blocking_command_pipe)
            self._call(_follow_parent)
            actual = str(self._call(_peer_id_of_node))
        except SwarmError:
            self.shutdown()
            raise
        except Exception as exc:
            self.shutdown()
            raise SwarmError(f"The swarm connection failed to start: {exc}") from None
        if actual != self.peer_id:  # would mean the signing key is not the libp2p identity
            self.shutdown()
            raise SwarmError(f"The p2p daemon runs as {actual}, not as {self.peer_id}.")

    def _await_ready(self, limit: float, startup_timeout: float) -> None:
        deadline = time.monotonic() + limit
        while True:
            self._note_daemons()
            try:
                self._dht.wait_until_ready(timeout=0.25)
                return
            except TimeoutError:
                # Either our short wait ran out, or the start failed with a timeout inside.
                if not self._dht.is_alive() or time.monotonic() >= deadline:
                    raise SwarmError(self._timeout_message(startup_timeout),
                                     bootstrap=bool(self._initial_peers)) from None
            except Exception as exc:
                message, bootstrap = self._start_failure_message(exc)
                raise SwarmError(message, bootstrap=bootstrap) from None

    def _call(self, coroutine) -> Any:
        """Run ``coroutine(dht, node)`` in the DHT process, bounded by request_timeout."""
        with self._lock:
            future = self._dht.run_coroutine(coroutine, return_future=True)
        return future.result(self.request_timeout)

    def _timeout_message(self, startup_timeout: float) -> str:
        if self._initial_peers:
            return (f"Could not join the swarm within {startup_timeout:g} s: none of the initial "
                    f"peers answered ({', '.join(self._initial_peers)}). Check the bootstrap "
                    "addresses and your network or firewall.")
        return f"The p2p daemon did not start within {startup_timeout:g} s."

    def _taken_message(self) -> str:
        return (f"Another running peer already uses this identity ({self.peer_id}). Stop the "
                "other node using this swarm.pem, or give this one its own identity file.")

    def _start_failure_message(self, exc: Exception) -> tuple[str, bool]:
        """(message for the user, whether no initial peer would take us in)."""
        text = str(exc)
        if "already taken" in text:
            return self._taken_message(), False
        if ("bootstrap failed" in text or "none of the initial_peers" in text
                or "bootstrap peers" in text):
            return (f"Could not reach any initial peer ({', '.join(self._initial_peers)}). "
                    "Check the bootstrap addresses and your network or firewall."), True
        if "failed to start in" in text:
            return f"The p2p daemon did not start in time ({text}).", False
        return f"The p2p daemon failed to start: {text}", False

    # --- processes ---------------------------------------------------------------------

    def _note_daemons(self) -> None:
        """Remember p2pd processes under the DHT process, to reap them if hivemind doesn't."""
        pid = self._dht.pid if self._dht is not None else None
        if pid is None:
            return
        try:
            for child in psutil.Process(pid).children(recursive=True):
                if child.pid not in self._daemons and "p2pd" in child.name():
                    self._daemons[child.pid] = child
        except psutil.Error:
            pass

    def _reap_daemons(self) -> None:
        alive = []
        for proc in self._daemons.values():
            try:
                if proc.is_running():  # also checks the pid was not reused
                    proc.terminate()
                    alive.append(proc)
            except psutil.Error:
                pass
        _, still = psutil.wait_procs(alive, timeout=3)
        for proc in still:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(still, timeout=3)

    def shutdown(self) -> None:
        """Stop the DHT and its daemon. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._dht is None:
                return
            self._stop_dht()
        finally:
            if self._identity_lock is not None:
                os.close(self._identity_lock)  # releases the flock
                self._identity_lock = None

    def _stop_dht(self) -> None:
        self._note_daemons()
        try:
            if self._dht.is_alive():
                with self._lock:
                    self._dht.shutdown()
            if self._dht.is_alive():
                self._dht.kill()
            self._dht.join(3)
        except Exception:
            pass  # best effort: the daemons are reaped below either way
        self._reap_daemons()

    def __enter__(self) -> "SwarmDHT":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    # --- DHT operations -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or not self._dht.is_alive():
            raise SwarmError("The swarm connection is closed (shut down, or its DHT process stopped).")

    def visible_maddrs(self) -> list[str]:
        """Full multiaddrs (with /p2p/<peer id>) that other peers can use as initial_peers."""
        self._check_open()
        addrs = [str(a) for a in self._call(_visible_maddrs)]
        suffix = f"/p2p/{self.peer_id}"
        return [a if a.endswith(suffix) else a + suffix for a in addrs]

    def store(self, key: str, subkey: bytes, value: bytes, expiration_s: float) -> bool:
        """Store ``value`` under (key, subkey) for ``expiration_s`` seconds; False if refused."""
        self._check_open()
        try:
            with self._lock:
                future = self._dht.store(key, value, get_dht_time() + expiration_s,
                                         subkey=subkey, return_future=True)
            return bool(future.result(self.request_timeout))
        except Exception as exc:
            raise SwarmError(f"DHT store failed: {type(exc).__name__}: {exc}") from None

    def get(self, key: str, timeout: float | None = None) -> dict[Any, Any]:
        """All live subkey entries under ``key`` ({} if none). Values are whatever peers
        stored, normally bytes; subkeys normally ``[owner:…]`` markers."""
        self._check_open()
        try:
            with self._lock:
                # latest=True: ask the network every time rather than trusting the local
                # cache, which would hide subkeys that arrived after our previous read.
                future = self._dht.get(key, latest=True, return_future=True)
            found = future.result(self.request_timeout if timeout is None else timeout)
        except Exception as exc:
            raise SwarmError(f"DHT get failed: {type(exc).__name__}: {exc}") from None
        if found is None or not isinstance(found.value, dict):
            return {}
        return {subkey: getattr(entry, "value", None) for subkey, entry in found.value.items()}

    def get_many(self, keys: Sequence[str], timeout: float | None = None) -> dict[str, dict[Any, Any]]:
        """``get`` for several keys in one traversal of the DHT (their lookups run together)."""
        self._check_open()
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        try:
            with self._lock:
                future = self._dht.run_coroutine(functools.partial(_get_many, keys=keys), return_future=True)
            return future.result(self.request_timeout if timeout is None else timeout)
        except Exception as exc:
            raise SwarmError(f"DHT get failed: {type(exc).__name__}: {exc}") from None


# Coroutines run inside the DHT process (module level so they pickle).

async def _get_many(_dht, node, keys: list[str]) -> dict[str, dict[Any, Any]]:
    found = await node.get_many(keys, sufficient_expiration_time=float("inf"))
    out = {}
    for key in keys:
        entry = found.get(key)
        value = getattr(entry, "value", None)
        if isinstance(value, dict):  # the node hands dictionaries back as {subkey: ValueWithExpiration}
            out[key] = {subkey: getattr(item, "value", None) for subkey, item in value.items()}
        else:
            out[key] = {}
    return out


async def _visible_maddrs(_dht, node) -> Iterable[Any]:
    return await node.get_visible_maddrs(latest=True)


async def _peer_id_of_node(_dht, node) -> str:
    return node.peer_id.to_base58()


def _claim_identity(identity_path: Path, taken_message: str) -> int | None:
    """Hold an exclusive flock on ``<key>.lock`` while this peer runs; SwarmError when another
    live process holds it. Released by the kernel when the process dies, however it dies.
    None where locks are unavailable (Windows, a read-only key directory): best effort."""
    try:
        import fcntl  # POSIX only
    except ImportError:
        return None
    try:
        fd = os.open(identity_path.with_name(identity_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SwarmError(taken_message) from None
    except OSError:
        os.close(fd)
        return None
    return fd


async def _follow_parent(_dht, _node) -> None:
    """Runs in the DHT process: if the node that forked it dies (even by SIGKILL, when no
    shutdown can run), take the p2pd daemon down and exit instead of living on as an orphan
    that still holds the peer's identity and port."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


async def _blocking_command_pipe(dht, _node) -> None:
    """Work around a hivemind 1.1.12 bug: the DHT process reads its command pipe after
    uvloop's add_reader made it non-blocking, so a command larger than the pipe buffer
    (a store of a value over ~64 KiB) fails half-read with EAGAIN and the next read
    unpickles the leftovers and kills the process. The reader callback only signals that
    data is there, so a blocking fd just makes recv() wait for the rest of the message."""
    os.set_blocking(dht._inner_pipe.fileno(), True)
