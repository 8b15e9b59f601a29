"""`rl-swarm node`: put a peer together from its config and run it headless.

Never prompts. SIGTERM/SIGINT stop at the next safe point (the last checkpoint is kept) and exit 0;
SIGUSR1 finishes the current round first. Errors become one clear message, an ``error`` event and
a non-zero exit code; the traceback goes to the log file only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
from dataclasses import dataclass

import psutil

from desktop.codezero.judges import make_judge
from desktop.codezero.problems import ProblemSourceError, load_problems
from desktop.codezero.refs import ProblemResolver
from desktop.codezero.sandbox import SandboxLimits
from desktop.config import Config, apply_pool_defaults
from desktop.events import EventSink
from desktop.events.history import HistoryFile, history_file
from desktop.events.status import STATUS_FILE, StatusFile
from desktop.events.text import WARNING, describe
from desktop.identity import IdentityError, load_or_create_identity
from desktop.dashboard.serve import open_dashboard
from desktop.dashboard.view import LogFeed, PeerView
from desktop.machine import pause_control
from desktop.machine.pause_control import control_path
from desktop.machine.probe import POOLS, choose_pool, probe_gpus
from desktop.node.connections import connect
from desktop.node.difficulty import DifficultyTuner
from desktop.node.hf_push import make_pusher
from desktop.node.memory_guard import check
from desktop.node.pause import Governor, PauseGate
from desktop.node.proposer_role import run_proposer
from desktop.node.stop import StopControl
from desktop.node.skill import held_out
from desktop.utils.logs import FILE_ONLY, send_records_as_events
from desktop.utils.parent_watch import watch_parent
from desktop.node.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, NodeError  # noqa: F401 (re-exported)
from desktop.utils.paths import AppPaths

log = logging.getLogger("desktop.node")


@dataclass
class ModelChoice:
    name: str
    pool: str
    reason: str
    explicit: bool  # the user named this model or pool: never swap it for another


def choose_model(config: Config) -> ModelChoice:
    if config.model.name:
        return ModelChoice(config.model.name, "custom", "model named in config", True)
    if config.model.pool == "tiny":
        return ModelChoice(f"tiny:{config.model.tiny_size}", "tiny", "tiny pool chosen", True)
    if config.model.pool in ("small", "large"):
        return ModelChoice(POOLS[config.model.pool][0], config.model.pool, "pool chosen", True)
    pool, reason = choose_pool(probe_gpus())
    return ModelChoice(POOLS[pool][0], pool, reason, False)


def _load_model(config: Config, paths: AppPaths, sink: EventSink, device: str):
    from desktop.node.models import ModelLoadError, load_model  # torch, transformers: see _build_node

    choice = choose_model(config)
    log.info("model %s (%s: %s) on %s", choice.name, choice.pool, choice.reason, device)

    def progress(info: dict) -> None:
        sink.emit("download", **info)

    try:
        estimate = _check_memory(config, choice.name, device)
        model, tokenizer = load_model(choice.name, device=device, dtype=config.model.dtype,
                                      cache_dir=paths.models, progress=progress)
        return choice.name, model, tokenizer, estimate
    except (MemoryError, ModelLoadError) as exc:  # MemoryError: refused before loading, with advice
        if choice.explicit:
            raise NodeError(str(exc), EXIT_BAD_INPUT if isinstance(exc, MemoryError) else EXIT_FAILURE) from None
        # pool "auto": a peer that cannot reach the hub, or cannot hold its model, still joins offline
        fallback = f"tiny:{config.model.tiny_size}"
        sink.emit("warning", message=f"{exc} — using the offline model {fallback} instead")
        model, tokenizer = load_model(fallback, device=device, dtype=config.model.dtype,
                                      cache_dir=paths.models, progress=progress)
        return fallback, model, tokenizer, None


def _check_memory(config: Config, name: str, device: str):
    """desktop.node.memory_guard before loading: MemoryError when the model cannot fit."""
    import torch  # see _build_node

    from desktop.node.models import resolve_dtype

    dtype_bytes = torch.empty(0, dtype=resolve_dtype(config.model.dtype, device)).element_size()
    if device.startswith("cuda"):
        free_mb, resident_mb = torch.cuda.mem_get_info(torch.device(device))[0] / 2**20, 0.0
    else:  # CPU, and MPS's unified memory
        free_mb, resident_mb = psutil.virtual_memory().available / 2**20, psutil.Process().memory_info().rss / 2**20
    est = check(config, name, free_mb=free_mb, resident_mb=resident_mb, dtype_bytes=dtype_bytes)
    if est is not None:
        log.info("memory for %s: %s; %.0f MB free", name, est.describe(), free_mb)
    return est


def _install_signals(stop) -> None:
    def on_stop(signum, frame):
        stop.stop(reason=signal.Signals(signum).name.lower())

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda s, f: stop.finish_round())


def run_node(config: Config, paths: AppPaths, *, rounds: int | None, json_events: bool,
             identity_path=None, publish_bootnode: bool = False, control_stdin: bool = False,
             config_file=None) -> int:
    stop = StopControl()
    # whoever reads our events (the app) is gone: stop at the next safe point
    sink = EventSink(sys.stdout if json_events else None, on_broken=lambda: stop.stop(reason="app-exited"))
    if json_events:
        send_records_as_events(sink.emit)
    else:
        sink.subscribe(_print_progress)
    sink.subscribe(StatusFile(paths.data / STATUS_FILE))  # what `rl-swarm swarm-status` reads
    sink.subscribe(HistoryFile(history_file(paths.data)))  # what the dashboards load at launch
    dashboard = _open_dashboard(config, paths, sink, stop, records_are_events=json_events)
    try:
        return _run_node(config, paths, sink, stop, rounds=rounds, identity_path=identity_path,
                         publish_bootnode=publish_bootnode, control_stdin=control_stdin, config_file=config_file)
    finally:
        if dashboard is not None:
            dashboard.stop()


def _open_dashboard(config: Config, paths: AppPaths, sink: EventSink, stop, records_are_events: bool):
    """This node's web page (desktop.dashboard), fed by its events and log records (which arrive
    as events already with --json-events)."""
    view = PeerView("this peer", paths.data)

    def control(_label: str, action: str, when: str = "now", until: float | None = None) -> str:
        path = control_path(paths.data)
        if action == "pause":
            pause_control.pause(path, when, until)
            return "pausing after this round" if when == "after-round" else "pausing at the next safe point"
        if action == "resume":
            pause_control.resume(path)
            return "resuming"
        if action == "stop":
            stop.stop(reason="dashboard")
            return "stopping at the next safe point"
        stop.finish_round(reason="dashboard")
        return "finishing this round, then stopping"

    dashboard = open_dashboard(config.dashboard, paths.data, {"this peer": view}, control,
                               warn=lambda message: sink.emit("warning", message=message))
    if dashboard is not None:
        sink.subscribe(view)
        if not records_are_events:
            logging.getLogger().addHandler(LogFeed(view))
    return dashboard


def _run_node(config: Config, paths: AppPaths, sink: EventSink, stop, *, rounds: int | None, identity_path,
              publish_bootnode: bool, control_stdin: bool, config_file) -> int:
    stop_round = 0
    try:
        identity_file = identity_path or config.identity_path or paths.identity
        try:
            identity, created = load_or_create_identity(identity_file)
        except IdentityError as exc:
            raise NodeError(str(exc), EXIT_BAD_INPUT) from None
        log.info("identity %s (%s) %s", identity.peer_id, identity.name, "created" if created else "loaded")

        _install_signals(stop)
        if control_stdin:
            stop.follow(sys.stdin, on_unknown=lambda c: log.warning("unknown command on stdin: %r", c))

        watch_parent(lambda: stop.stop(reason="app-exited"))
        if config.role == "proposer":
            last = run_proposer(config, paths, identity, sink, stop, rounds=rounds)
            stop_round = -1 if last is None else last
            sink.emit("node_stopped", reason=stop.reason, round=stop_round, exit_code=EXIT_OK)
            return EXIT_OK
        node, conns, estimate = _build_node(config, paths, identity, sink, stop, publish_bootnode)
        try:
            _govern(node, config, paths, sink, stop, config_file)
            resumed = node.resume()
            sink.emit("node_started", peer_id=identity.peer_id, name=identity.name, model=node.model_name,
                      device=str(node.trainer.device), round=0 if resumed is None else resumed + 1,
                      role=config.role,
                      memory_estimate_mb=round(estimate.total_mb, 1) if estimate is not None else None)
            node.run(rounds)
        finally:
            conns.close()  # the DHT daemon must not outlive the node; last submissions flushed
        stop_round = node.last_completed if node.last_completed is not None else -1
        sink.emit("node_stopped", reason=stop.reason, round=stop_round, exit_code=EXIT_OK)
        return EXIT_OK
    # Each failure reaches stderr once: the print below. The log record goes to the file only and
    # the progress printer skips "error" events (they are this same message).
    except NodeError as exc:
        log.error("%s", exc, extra=FILE_ONLY)
        print(f"rl-swarm node: {exc}", file=sys.stderr, flush=True)
        sink.emit("error", message=str(exc))
        sink.emit("node_stopped", reason="error", round=stop_round, exit_code=exc.exit_code)
        return exc.exit_code
    except Exception as exc:  # a bug or an environment problem: log it all, tell the user briefly
        log.exception("node failed", extra=FILE_ONLY)
        message = f"{type(exc).__name__}: {exc}"
        print(f"rl-swarm node: failed: {message} (details in the log file)", file=sys.stderr, flush=True)
        sink.emit("error", message=message)
        sink.emit("node_stopped", reason="error", round=stop_round, exit_code=EXIT_FAILURE)
        return EXIT_FAILURE


def _govern(node, config: Config, paths: AppPaths, sink: EventSink, stop, config_file=None) -> None:
    """The pause gate and its governor (desktop.node.pause): user pauses, idle, battery,
    schedule, memory; decided once before the first round, then every few seconds."""

    node.gate = PauseGate(sink, stop.now, keep_alive=getattr(node.peers.comms, "keep_alive", None))
    Governor(config.resources, node.gate, control_path(paths.data), config_file=config_file).start()


def _apply_threads(torch, threads: int | None) -> int:
    """resources.threads: torch's compute threads and the judge's workers (None: the cores)."""
    cores = os.cpu_count() or 1
    if threads is None:
        return min(4, cores)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(max(1, threads // 2))
    except RuntimeError:  # only settable before torch's first parallel work (a second node in-process)
        pass
    return max(1, min(4, threads))


def peer_stream(seed: int, peer_id: str) -> tuple[str, int]:
    """(problem stream seed, torch seed) of one peer: from the training seed AND the peer id, so
    two peers never draw the same problems or sample the same completions."""
    stream = f"{seed}:{peer_id}"
    return stream, int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big")


def _build_node(config: Config, paths: AppPaths, identity, sink: EventSink, stop, publish_bootnode: bool):
    # torch and transformers: loaded by a node that really starts, never by the command line
    # (desktop.cli imports this module in every process, the app's included)
    import torch

    from desktop.node.checkpoint import CheckpointStore
    from desktop.node.grpo import GRPOSettings, GRPOTrainer
    from desktop.node.models import ModelLoadError, pick_device
    from desktop.node.runner import Game, Node, Peers

    workers = _apply_threads(torch, config.resources.threads)
    stream, torch_seed = peer_stream(config.training.seed, identity.peer_id)
    torch.manual_seed(torch_seed)
    try:
        device = pick_device(config.model.device)
    except ModelLoadError as exc:  # a device this machine does not have: the user's setting
        raise NodeError(str(exc), EXIT_BAD_INPUT) from None
    model_name, model, tokenizer, estimate = _load_model(config, paths, sink, device)

    pool = "tiny" if model_name.startswith("tiny:") else choose_model(config).pool
    changed = apply_pool_defaults(config, pool)
    if changed:
        log.info("%s pool defaults: %s", pool, ", ".join(changed))
    try:
        spec = config.problems.source
        if spec == "generated":  # levels up to the configured ceiling
            spec = "generated:" + ",".join(str(lv) for lv in range(config.problems.max_difficulty + 1))
        problems = load_problems(spec, seed=stream, cache_dir=str(paths.data / "datasets"),
                                 generated_pool=config.problems.pool_size)
    except ProblemSourceError as exc:
        raise NodeError(str(exc), EXIT_BAD_INPUT) from None
    judge = _make_judge(config, device, make_judge)
    trainer = GRPOTrainer(model, tokenizer, GRPOSettings.from_config(config.training), device=device)

    full_pool = problems.pool  # others' references may name any problem of the set
    tests, problems = held_out(problems, config.evaluation.problems if config.evaluation.every else 0)

    pusher = make_pusher(config, identity, model_name, trainer, sink)
    conns = connect(config, paths, identity, model_name, sink, stop, publish_bootnode=publish_bootnode)

    resolver = ProblemResolver(pool=full_pool, proposer_lookup=getattr(conns.proposals, "lookup", None))
    difficulty = None
    if config.problems.adaptive and not problems.pool:  # generated problems: this peer's own level
        difficulty = DifficultyTuner(max_level=config.problems.max_difficulty, target=config.problems.target_pass_rate)
    game = Game(problems, judge, stages=config.game.stages, local_groups=config.swarm.local_groups,
                external_groups=config.swarm.external_groups, resolver=resolver, difficulty=difficulty,
                held_out=tests, skill_every=config.evaluation.every)
    peers = Peers(conns.comms, conns.round_source, conns.proposals)
    node = Node(trainer=trainer, model_name=model_name, game=game, sink=sink,
                checkpoints=CheckpointStore(paths.checkpoints), peers=peers, stop=stop,
                after_round=[conns.chain.after_round if conns.chain else None, pusher], workers=workers,
                rng_seed=stream)
    return node, conns, estimate


def _make_judge(config: Config, device: str, make_judge):
    if config.judge.kind == "lm":
        from desktop.node.models import ModelLoadError, load_model  # see _build_node

        if not config.judge.model:
            raise NodeError("judge.kind is 'lm' but judge.model is not set", EXIT_BAD_INPUT)
        try:
            judge_model, judge_tok = load_model(config.judge.model, device=device, dtype=config.model.dtype,
                                                cache_dir=None, progress=None)
        except ModelLoadError as exc:
            raise NodeError(f"judge model: {exc}") from None
        judge_model.eval().requires_grad_(False)  # frozen
        return make_judge("lm", model=judge_model, tokenizer=judge_tok)
    timeout = config.judge.timeout_seconds
    return make_judge("execution", limits=SandboxLimits(cpu_seconds=max(1, int(timeout)), wall_seconds=timeout * 2))


_PRINTED = frozenset({"node_started", "round_finished", "paused", "resumed", "warning", "node_stopped"})  # "error": run_node prints it


def _print_progress(event: dict) -> None:
    """Without --json-events: one readable line per interesting event on stderr."""
    if event["type"] not in _PRINTED:
        return
    level, line = describe(event)
    if level >= WARNING:
        line = f"{logging.getLevelName(level).lower()}: {line}"
    print(line, file=sys.stderr, flush=True)
