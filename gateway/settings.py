"""Gateway configuration: one `Settings` object built at start-up and passed down.

Sources, highest priority first: keyword arguments (the CLI's flags), environment
variables with prefix `FEDGATE_` (nested fields use `__`, for example
`FEDGATE_LEASE__DEFAULT_TTL=30`; durations are in seconds), a TOML config
file, then the defaults below.
Nothing else in the gateway reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MIB = 1024 * 1024


class LeaseSettings(BaseModel):
    """How endpoint leases are granted and reaped."""

    default_ttl: float = Field(15.0, gt=0, description="Lease (seconds) when none is asked.")
    min_ttl: float = Field(1.0, gt=0, description="Shortest lease granted (seconds).")
    max_ttl: float = Field(300.0, gt=0, description="Longest lease granted (seconds).")
    reaper_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds between removals of expired endpoints and routing-view refreshes.",
    )


class RoutingSettings(BaseModel):
    """How calls are routed between domains."""

    max_depth: int = Field(8, ge=1, description="Deepest allowed nesting of cross-domain calls.")
    default_timeout: float = Field(
        30.0, gt=0, description="Deadline (seconds) when neither caller nor capability sets one."
    )
    idempotency_ttl: float = Field(
        86400.0, gt=0, description="Seconds an idempotency key and its outcome are kept."
    )


class TaskSettings(BaseModel):
    """Long-running tasks (TaskService): ownership leases and recovery after a restart."""

    instance: str = Field(
        "",
        description="This gateway instance's id, stable across its restarts; empty means one "
        "created once in <state_dir>/gateway-instance. Replicas must have distinct ids.",
    )
    lease_ttl: float = Field(
        15.0, gt=0, description="Seconds an instance holds a task it follows unless renewed."
    )
    default_timeout: float = Field(
        3600.0, gt=0, description="Deadline (s) of a submitted task whose caller sets none."
    )
    reattach_grace: float = Field(
        30.0, ge=0, description="Seconds to keep trying to reach a task's domain after a restart."
    )
    poll_interval: float = Field(
        0.5, gt=0, description="Seconds between store reads of a watcher on another replica."
    )


class ResilienceSettings(BaseModel):
    """Retries, circuit breakers and endpoint health checks."""

    retry_attempts: int = Field(
        3, ge=1, description="Attempts for idempotent capabilities (1 disables retries)."
    )
    retry_base_backoff: float = Field(0.05, ge=0, description="First retry pause cap (s).")
    retry_max_backoff: float = Field(1.0, ge=0, description="Longest retry pause (s).")
    breaker_window: int = Field(20, ge=1, description="Outcomes a breaker looks back on.")
    breaker_min_calls: int = Field(5, ge=1, description="Outcomes before a breaker may open.")
    breaker_failure_ratio: float = Field(
        0.5, gt=0, le=1, description="Failure share that opens a breaker."
    )
    breaker_cooldown: float = Field(5.0, gt=0, description="Seconds before a half-open trial.")
    eject_after: int = Field(3, ge=1, description="Consecutive failures that eject an endpoint.")
    probe_interval: float = Field(
        2.0, ge=0, description="Seconds between active health probes; 0 turns them off."
    )
    probe_timeout: float = Field(1.0, gt=0, description="Deadline of one health probe (s).")


_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class PolicySettings(BaseModel):
    """The shared policy's model, its first rules, and how replicas stay in sync.

    The rules live in the database (`fedgate policy ...`); the `*.csv` files of
    `seed_dir` only seed an empty database at first start.
    """

    model: Path = Field(_POLICIES / "model.conf", description="The Casbin model file.")
    seed_dir: Path = Field(
        _POLICIES, description="Folder whose *.csv rules seed an empty database."
    )
    poll_interval: float = Field(
        0.5, gt=0, description="Seconds between checks of the stored policy version."
    )
    notify: bool = Field(
        True, description="On PostgreSQL, LISTEN for changes other replicas commit (NOTIFY)."
    )
    cache_size: int = Field(100_000, ge=0, description="Policy decisions kept in the LRU cache.")

    @property
    def seed_files(self) -> list[Path]:
        """The seed rule files, `<seed_dir>/*.csv` in name order."""
        return sorted(self.seed_dir.glob("*.csv"))


class AuditSettings(BaseModel):
    """The audit trail: durability mode, checkpoints, keys (see docs/audit.md)."""

    mode: Literal["strict", "relaxed"] = Field(
        "strict",
        description="strict: a call is answered only after its records are committed, and "
        "refused (UNAVAILABLE) when they cannot be; relaxed: records are queued and may be "
        "lost (no fail-closed, no receipts).",
    )
    origin: str = Field(
        "fedgate.local/audit",
        description="Name of the log in its signed checkpoints; the same on every replica.",
    )
    max_batch: int = Field(1000, ge=1, description="Most records committed in one transaction.")
    renewal_summary_every: float = Field(
        60.0, gt=0, description="Seconds between the records that count lease renewals."
    )
    checkpoint_every_records: int = Field(
        1000, ge=1, description="A signed checkpoint at least every this many records."
    )
    checkpoint_every_seconds: float = Field(
        1.0, gt=0, description="A signed checkpoint at least this often while records arrive."
    )
    checkpoint_dir: Path | None = Field(
        None,
        description="Where signed checkpoints are also copied, outside the database; "
        "empty means <state_dir>/checkpoints.",
    )
    signing_key: Path | None = Field(
        None,
        description="Ed25519 checkpoint key (created 0600 at first start); empty means "
        "<state_dir>/audit-checkpoint.key.",
    )
    content_key: Path | None = Field(
        None,
        description="Secret salting content hashes of context items (shared by replicas); "
        "empty means <state_dir>/audit-content.key.",
    )

    def checkpoint_directory(self, state_dir: Path) -> Path:
        """The outside checkpoint folder in force."""
        return self.checkpoint_dir or state_dir / "checkpoints"

    def signing_key_file(self, state_dir: Path) -> Path:
        """The checkpoint signing key file in force."""
        return self.signing_key or state_dir / "audit-checkpoint.key"

    def content_key_file(self, state_dir: Path) -> Path:
        """The content-hash key file in force."""
        return self.content_key or state_dir / "audit-content.key"


class ContextSettings(BaseModel):
    """The shared context space (see docs/context.md)."""

    default_ttl: float = Field(
        86_400.0, gt=0, description="Seconds a context item lives when its writer names no TTL."
    )
    max_ttl: float = Field(30 * 86_400.0, gt=0, description="Longest TTL a writer may ask for.")
    max_value_bytes: int = Field(
        256 * 1024, gt=0, description="Largest context value (its compact JSON, bytes)."
    )
    purge_interval: float = Field(
        10.0, gt=0, description="Seconds between purges of expired items."
    )
    watch_poll_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds a Watch waits before it looks for changes again without a "
        "notification (changes made through this replica, or through another one on "
        "PostgreSQL with `notify`, wake it at once).",
    )
    notify: bool = Field(
        True, description="On PostgreSQL, LISTEN/NOTIFY wakes Watch streams of every replica."
    )


class RateSettings(BaseModel):
    """A token bucket: sustained calls per second and the burst above it."""

    per_second: float = Field(gt=0, description="Sustained calls per second.")
    burst: float = Field(ge=1, description="Calls allowed at once above the sustained rate.")


class QuotaSettings(BaseModel):
    """Rate limits on Invoke. Empty: no limits.

    In TOML: `[quotas.per_caller.support]` and `[quotas.per_pair."support->finance"]`,
    each with `per_second` and `burst`.
    """

    default_per_caller: RateSettings | None = Field(
        None, description="Limit for every caller domain without its own entry."
    )
    per_caller: dict[str, RateSettings] = Field(
        default_factory=dict, description="Limits by caller domain."
    )
    per_pair: dict[str, RateSettings] = Field(
        default_factory=dict, description='Limits by "caller->target" domain pair.'
    )

    @field_validator("per_pair")
    @classmethod
    def _check_pairs(cls, value: dict[str, RateSettings]) -> dict[str, RateSettings]:
        for key in value:
            caller, sep, target = key.partition("->")
            if not sep or not caller or not target:
                raise ValueError(f'quota pair {key!r} must look like "caller->target"')
        return value


class TlsSettings(BaseModel):
    """Mutual TLS: the gateway's certificate, the CA it trusts, and who may call.

    By default the files come from the certificates folder `<state_dir>/certs`
    (`fedgate certs init --dir .fedgate/certs`): `ca.pem`, `gateway.pem`,
    `gateway-key.pem`. `cert`, `key` and `ca` name files elsewhere (your own PKI).
    """

    insecure: bool = Field(
        False,
        description="Plaintext with self-asserted identities: local experiments only, never "
        "in production.",
    )
    certs_dir: Path | None = Field(
        None, description="Certificates folder; empty means <state_dir>/certs."
    )
    cert: Path | None = Field(
        None, description="Gateway certificate; default <certs_dir>/gateway.pem."
    )
    key: Path | None = Field(
        None, description="Its private key; default <certs_dir>/gateway-key.pem."
    )
    ca: Path | None = Field(None, description="CA certificate callers and domains must chain to.")
    trust_domain: str = Field(
        "", description="Trust domain callers must belong to; empty: the gateway certificate's."
    )


class Settings(BaseSettings):
    """Static configuration of one gateway process."""

    model_config = SettingsConfigDict(
        env_prefix="FEDGATE_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    listen: str = Field("127.0.0.1:7443", description="host:port to serve on; port 0 picks one.")
    state_dir: Path = Field(Path(".fedgate"), description="Folder for the SQLite file and keys.")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite at <state_dir>/fedgate.db.",
    )
    max_message_bytes: int = Field(
        4 * MIB, gt=0, description="Largest request or response message accepted (bytes)."
    )
    lease: LeaseSettings = LeaseSettings()
    routing: RoutingSettings = RoutingSettings()
    tasks: TaskSettings = TaskSettings()
    resilience: ResilienceSettings = ResilienceSettings()
    quotas: QuotaSettings = QuotaSettings()
    grace_period: float = Field(5.0, ge=0, description="Seconds to finish calls on shutdown.")
    policy: PolicySettings = PolicySettings()
    audit: AuditSettings = AuditSettings()
    context: ContextSettings = ContextSettings()
    tls: TlsSettings = TlsSettings()

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"listen must be host:port, got {value!r}")
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in force (SQLite in the state folder by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'fedgate.db').resolve()}"

    @property
    def certs_dir(self) -> Path:
        """The certificates folder in force (`<state_dir>/certs` by default)."""
        return self.tls.certs_dir or self.state_dir / "certs"

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Builds settings from overrides, environment, an optional TOML file and defaults."""
        _ConfigFile.path = config_file
        try:
            return cls(**overrides)
        finally:
            _ConfigFile.path = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _ConfigFile.path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_ConfigFile.path))
        return tuple(sources)


class _ConfigFile:
    # pydantic-settings builds sources from the class, so the file chosen at load
    # time travels through here for the duration of one `Settings.load` call.
    path: Path | None = None
