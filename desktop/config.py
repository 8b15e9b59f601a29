"""Node configuration: pydantic models loaded from YAML over the defaults in ``resources/``.

Errors name the field and the file so a user can fix them without reading a traceback.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from desktop.machine.work_window import parse_hhmm
from desktop.utils.fsutil import FileTooLarge, read_bounded, write_private
from desktop.utils.paths import resource_path


DEFAULTS_FILE = resource_path("config", "default.yaml")
CONFIG_VERSION = 2  # the layout of config.yaml this code reads; older files pass through upgrade()


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the user."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    pool: Literal["auto", "tiny", "small", "large"] = "auto"
    name: str | None = None
    tiny_size: Literal["tiny", "tiny-m"] = "tiny"
    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda", "mps") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("must be auto, cpu, cuda, cuda:N or mps")


class TrainingConfig(_Section):
    num_generations: int = Field(2, ge=2, le=64)
    max_new_tokens: int = Field(256, ge=1, le=8192)
    epsilon: float = Field(0.2, gt=0, lt=1)
    epsilon_high: float = Field(0.28, gt=0, lt=1)
    beta: float = Field(0.0, ge=0)
    learning_rate: float = Field(1e-6, gt=0, lt=1)
    temperature: float = Field(1.0, gt=0, le=10)
    seed: int = 42
    problems_per_round: int | None = Field(None, ge=1, le=8)  # older name of swarm.local_groups
    gradient_checkpointing: bool = False
    num_iterations: int = Field(1, ge=1, le=16)
    minibatch_size: int | None = Field(None, ge=1, le=4096)
    micro_batch_tokens: int = Field(4096, ge=64, le=1_048_576)
    # how other peers' completions are learned from (desktop.node.offpolicy): positive,
    # behaviour, behaviour-positive or as-own; the GUI never imports the node, so spelled out here
    external_samples: Literal["positive", "behaviour", "behaviour-positive", "as-own"] = "positive"


class GameConfig(_Section):
    stages: int = Field(1, ge=1, le=16)
    num_transplant_trees: int | None = Field(None, ge=0, le=64)  # rl-swarm's name of swarm.external_groups


class ProblemsConfig(_Section):
    source: str = "generated"
    max_difficulty: int = Field(4, ge=0, le=4)  # codezero's LEVELS - 1, spelled out: the GUI never imports codezero
    adaptive: bool = True  # generated problems: move between levels to keep the pass rate near target
    pool_size: int | None = Field(None, ge=1, le=1_000_000)  # generated: this many problems per level, revisited
    target_pass_rate: float = Field(0.5, gt=0, lt=1)


class DashboardConfig(_Section):
    """The web dashboard of a headless node (desktop.dashboard): 127.0.0.1 unless set otherwise."""

    enabled: bool = True
    bind: str = "127.0.0.1"   # another address lets other machines reach it (a warning says so)
    port: int = Field(8787, ge=0, le=65535)


class EvaluationConfig(_Section):
    """Skill on held-out problems (desktop.node.skill): the same set for every peer, never trained on."""

    every: int = Field(10, ge=0, le=100_000)   # rounds between evaluations (0: never)
    problems: int = Field(16, ge=1, le=256)    # held-out problems, answered greedily


class SwarmConfig(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)
    initial_peers: list[str] = []
    startup_timeout: float = Field(120, gt=0, le=3600)
    gather_timeout: float = Field(30, gt=0, le=3600)
    gather_grace: float = Field(1.0, ge=0, le=600)
    sample_peers: int = Field(8, ge=1, le=256)
    local_groups: int = Field(1, ge=1, le=8)
    external_groups: int = Field(2, ge=0, le=64)
    expected_peers: int | None = Field(None, ge=0, le=1024)
    round_window: int = Field(2, ge=0, le=100)
    backoff_start: float = Field(5, gt=0)
    backoff_max: float = Field(900, gt=0)


class ChainConfig(_Section):
    enabled: bool = True               # use the profile's chain when it can be found
    services_file: str | None = None   # local profile: default <data dir>/chain/services.json
    org_id: str | None = None          # default: the login server's signed-in account
    submit_every: int = Field(1, ge=1, le=100_000)  # rounds between reward/winner submissions
    rpc_url: str | None = None         # testnet profile: override the public RPC
    login_url: str | None = None       # testnet profile: where writes go


class JudgeConfig(_Section):
    kind: Literal["execution", "lm"] = "execution"
    model: str | None = None
    timeout_seconds: float = Field(5, gt=0, le=120)


class PortsConfig(_Section):
    login: int = Field(3000, ge=1, le=65535)
    rpc: int = Field(8545, ge=1, le=65535)


class HfConfig(_Section):
    push: bool = False
    token_env: str = "HF_TOKEN"
    user: str | None = None
    endpoint: str | None = None


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_bytes: int = Field(5_000_000, ge=10_000)
    backups: int = Field(3, ge=0, le=100)


class ResourcesConfig(_Section):
    """How hard and when the node works (desktop.machine.work_window decides; the node's governor obeys)."""

    threads: int | None = Field(None, ge=1, le=256)   # torch threads and judge workers; None: all cores
    only_when_idle: bool = False
    idle_minutes: float = Field(5, ge=0.1, le=1440)
    pause_on_battery: bool = True
    schedule: bool = False                            # run only inside the weekly window below
    run_from: str = "00:00"
    run_until: str = "00:00"                          # equal to run_from: the whole day
    run_days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = \
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    memory_limit_mb: int | None = Field(None, ge=256, le=16_777_216)  # the node's own RSS cap
    min_free_percent: float = Field(5.0, ge=0, le=90)  # pause when the system has less available

    @field_validator("run_from", "run_until")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value


class HostingConfig(_Section):
    """Local profile: this machine's swarm opened to others (`rl-swarm services` then also runs what
    `rl-swarm host` runs: the chain proxy with its join desk and a bootnode; desktop.services.host)."""

    enabled: bool = False
    name: str = Field("swarm", min_length=1, max_length=64)
    bind: str = "0.0.0.0"              # the interface others reach
    advertise: str | None = None       # the address invites name (behind NAT: the router's public one)
    port: int = Field(8546, ge=1, le=65535)       # chain proxy and join desk
    dht_port: int = Field(4001, ge=1, le=65535)   # bootnode


class UpdatesConfig(_Section):
    check: bool = True             # look for a newer release at most once a day (desktop.utils.updates)
    feed_url: str | None = None    # the release feed; none set: no check is made


class Config(_Section):
    """Every setting. ``training.problems_per_round`` and ``game.num_transplant_trees`` are older
    names: when set, they are read as ``swarm.local_groups`` and ``swarm.external_groups``."""

    version: int = Field(CONFIG_VERSION, ge=CONFIG_VERSION, le=CONFIG_VERSION)  # set by upgrade(), never by hand
    profile: Literal["local", "testnet", "swarm"] = "local"  # swarm: one joined with an invite (joining.py)
    role: Literal["solver", "proposer"] = "solver"
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    game: GameConfig = GameConfig()
    swarm: SwarmConfig = SwarmConfig()
    chain: ChainConfig = ChainConfig()
    problems: ProblemsConfig = ProblemsConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    dashboard: DashboardConfig = DashboardConfig()
    judge: JudgeConfig = JudgeConfig()
    identity_path: str | None = None
    ports: PortsConfig = PortsConfig()
    hf: HfConfig = HfConfig()
    logging: LoggingConfig = LoggingConfig()
    updates: UpdatesConfig = UpdatesConfig()
    resources: ResourcesConfig = ResourcesConfig()
    hosting: HostingConfig = HostingConfig()
    _user_keys: set[str] = PrivateAttr(default_factory=set)  # dotted keys the user's file or flags set

    @model_validator(mode="after")
    def _older_names(self) -> "Config":
        if self.training.problems_per_round is not None:
            self.swarm.local_groups = self.training.problems_per_round
        if self.game.num_transplant_trees is not None:
            self.swarm.external_groups = self.game.num_transplant_trees
        return self


MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few hundred bytes; YAML parsing is slow
MAX_ERRORS_SHOWN = 20  # a file full of mistakes: the first few say enough
# libyaml's parser (same safe constructors) when installed: ~10x faster on a big file
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict:
    if path.is_dir():  # Windows says "permission denied" for a directory: say what it is
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:  # bounded: a huge file (or a pipe that never ends) is refused without reading it all
        raw = read_bounded(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except FileTooLarge:
        raise ConfigError(f"{path}: config file is larger than the {MAX_CONFIG_BYTES >> 20} MiB limit "
                          f"for a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _explain(exc: ValidationError, source: str) -> ConfigError:
    errors = exc.errors()
    lines = []
    for err in errors[:MAX_ERRORS_SHOWN]:
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {field}: {msg}")
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"{source}: … and {len(errors) - MAX_ERRORS_SHOWN} more errors")
    return ConfigError("\n".join(lines))


def _dotted(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in data.items():
        name = f"{prefix}{key}"
        keys |= _dotted(value, name + ".") if isinstance(value, dict) and value else {name}
    return keys


def _drop_unread_keys(data: dict) -> None:
    """1 -> 2: ``game.round_source`` and ``ports.dht`` were never read (rounds come from the chain,
    the swarm's clock or a local counter; the DHT port is ``swarm.port``)."""
    for section, key in (("game", "round_source"), ("ports", "dht")):
        if isinstance(data.get(section), dict):
            data[section].pop(key, None)
            if not data[section]:
                del data[section]


# step that turns version N-1 into N, in order; a file without ``version`` is version 1
_UPGRADES: dict[int, Callable[[dict], None]] = {2: _drop_unread_keys}


def upgrade(data: dict, source: str) -> dict:
    """A user's settings as read from an older file, rewritten for ``CONFIG_VERSION``: keys that
    were renamed or removed are handled here, so validation (which refuses unknown keys) sees only
    today's layout. The file itself changes only when the user next saves."""
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{source}: version: must be a whole number from 1 to {CONFIG_VERSION}")
    if version > CONFIG_VERSION:
        raise ConfigError(f"{source}: written by a newer RL Swarm Desktop (settings version {version}; "
                          f"this one reads up to {CONFIG_VERSION}): update the app, or remove the file")
    data = copy.deepcopy(data)
    for step in range(version + 1, CONFIG_VERSION + 1):
        _UPGRADES[step](data)
    data["version"] = CONFIG_VERSION
    return data


def field_bounds(section: type[BaseModel], name: str) -> tuple[float | None, float | None]:
    """The (low, high) limits pydantic enforces on ``section.name``, for a widget's range: the GUI
    then cannot offer a value the config would refuse. An exclusive limit is returned as is."""
    low = high = None
    for rule in section.model_fields[name].metadata:
        low = next((getattr(rule, a) for a in ("ge", "gt") if getattr(rule, a, None) is not None), low)
        high = next((getattr(rule, a) for a in ("le", "lt") if getattr(rule, a, None) is not None), high)
    return low, high


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the user's file (if any), then command-line overrides (dotted keys)."""
    data = _read_yaml(DEFAULTS_FILE)
    source = str(DEFAULTS_FILE)
    user: set[str] = set()
    if path is not None:
        path = Path(path)
        mine = upgrade(_read_yaml(path), str(path))
        user = _dotted(mine) - {"version"}
        data = _merge(data, mine)
        source = str(path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, source) from None
    config._user_keys = user | {k for k, v in (overrides or {}).items() if v is not None}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(config, dotted, value, f"command line ({dotted})")
    return config


def _set(config: Config, dotted: str, value: Any, source: str) -> None:
    """Set one dotted setting, validated; a bad value names ``source``."""
    *parents, leaf = dotted.split(".")
    target = config
    for part in parents:
        target = getattr(target, part)
    try:
        setattr(target, leaf, value)
    except ValidationError as exc:
        raise _explain(exc, source) from None


def apply_pool_defaults(config: Config, pool: str) -> list[str]:
    """The model pool's own defaults (``resources/config/pool-<pool>.yaml``) for every setting the
    user did not choose: a tiny CPU model learns with other settings than a 1.5B one. Returns the
    dotted keys it set."""
    path = resource_path("config", f"pool-{pool}.yaml")
    if not path.is_file():
        return []
    changed, pool_data = [], _read_yaml(path)
    for dotted in sorted(_dotted(pool_data)):
        if dotted in config._user_keys:
            continue
        value = pool_data
        for part in dotted.split("."):
            value = value[part]
        _set(config, dotted, value, str(path))
        changed.append(dotted)
    return changed


def dump_changes(config: Config) -> str:
    """The settings of ``config`` that differ from the shipped defaults, as YAML: a file that
    holds only what the user chose, so later defaults (and a pool's own) still reach them."""
    defaults = Config.model_validate(_read_yaml(DEFAULTS_FILE)).model_dump(mode="json")

    def diff(mine: dict, base: dict) -> dict:
        out = {}
        for key, value in mine.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                nested = diff(value, base[key])
                if nested:
                    out[key] = nested
            elif base.get(key, object()) != value:
                out[key] = value
        return out

    changes = {"version": CONFIG_VERSION, **diff(config.model_dump(mode="json"), defaults)}
    header = "# RL Swarm Desktop settings: only what differs from resources/config/default.yaml\n"
    return header + yaml.safe_dump(changes, sort_keys=False)


def save_config(config: Config, path: str | Path) -> None:
    """Write the settings that differ from the defaults to ``path``, atomically (a reader, the
    node's governor included, never sees half a file)."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, dump_changes(config).encode("utf-8"))


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
