"""Typed, frozen settings validated once at the edge.

Sources, highest priority first: environment variables ``AITRADER__SECTION__KEY`` (nested with
``__``), the YAML file (``aitrader.yaml``), defaults. Secrets never come from the YAML file: only
from ``AITRADER__SECRETS__...`` variables or a secrets file readable by its owner alone (0600).
"""

from __future__ import annotations

import os
import stat
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from aitrader import DEFAULT_CONFIG_NAME
from aitrader.errors import ConfigError
from aitrader.features.spec import FeaturesConfig
from aitrader.frozen import Frozen
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.ops.bot_config import BotConfig, ScheduleConfig
from aitrader.ops.config import ApiConfig, NotifyConfig
from aitrader.ops.mlops_config import MlopsConfig
from aitrader.risk.config import RiskConfig
from aitrader.sentiment.config import SentimentConfig
from aitrader.strategy.config import ModesConfig, PlanConfig, RunConfig, SignalConfig
from aitrader.validation.config import TrackingConfig, TuningConfig, ValidationConfig

ENV_PREFIX = "AITRADER__"


class DownloadConfig(Frozen):
    """How exchange/Yahoo downloads page, retry and back off."""

    page_limit: int = Field(1000, ge=1, le=5000, description="candles asked per request")
    max_retries: int = Field(6, ge=0, le=50, description="retries of a transient error")
    backoff_initial: float = Field(1.0, ge=0, description="first backoff delay, seconds")
    backoff_max: float = Field(60.0, ge=0, description="longest backoff delay, seconds")
    timeout: float = Field(30.0, gt=0, description="HTTP timeout, seconds")
    flush_pages: int = Field(20, ge=1, description="pages buffered before a store write")
    flush_seconds: float = Field(5.0, ge=0, description="longest time between store writes")
    on_conflict: Literal["keep", "replace", "fail"] = Field(
        "fail", description="stored bars that differ from downloaded ones: keep, replace or fail"
    )
    allow_other_source: bool = Field(
        False, description="let a download add rows to a series that came from another source"
    )


class DataConfig(Frozen):
    """Where the store lives and how data is fetched."""

    dir: Path = Field(Path("data"), description="store root (Parquet files + DuckDB views)")
    download: DownloadConfig = DownloadConfig()


class Policy(StrEnum):
    """What a quality check does with the rows it finds."""

    REJECT = "reject"
    DROP = "drop"
    FLAG = "flag"


class QCConfig(Frozen):
    """Quality-check thresholds and a policy per check."""

    outlier_z: float = Field(
        10.0, gt=0, description="robust z-score above which a return is an outlier"
    )
    outlier_window: int = Field(
        0, ge=0, description="rolling window for the robust z (0: whole series)"
    )
    gaps: Policy = Policy.FLAG
    duplicates: Policy = Policy.DROP
    non_increasing: Policy = Policy.REJECT
    ohlc: Policy = Policy.REJECT
    non_positive: Policy = Policy.REJECT
    off_grid: Policy = Policy.REJECT
    zero_volume: Policy = Policy.FLAG
    outliers: Policy = Policy.FLAG

    @field_validator("gaps")
    @classmethod
    def _gaps_never_dropped(cls, value: Policy) -> Policy:
        if value is Policy.DROP:
            raise ValueError("gaps cannot be dropped (nothing to drop); use 'flag' or 'reject'")
        return value

    @field_validator("duplicates", "non_increasing", "ohlc", "non_positive", "off_grid")
    @classmethod
    def _store_cannot_hold(cls, value: Policy) -> Policy:
        if value is Policy.FLAG:
            raise ValueError(
                "'flag' would keep rows the store cannot hold (so import and `data qc` would "
                "disagree); use 'drop' or 'reject'"
            )
        return value


class CostsConfig(Frozen):
    """Trading costs. Realistic by default; zero must be asked for explicitly."""

    taker_fee: float = Field(
        0.001, ge=0, lt=0.05, description="fraction of notional (0.001 = 0.1 %)"
    )
    maker_fee: float = Field(0.001, ge=0, lt=0.05, description="fraction of notional")
    slippage_bps: float = Field(2.0, ge=0, lt=500, description="per fill, basis points")

    @property
    def round_trip(self) -> float:
        """Cost of entering and leaving at market, as a fraction of notional."""
        return 2 * (self.taker_fee + self.slippage_bps / 10_000)


class LoggingConfig(Frozen):
    level: str = Field("WARNING", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")


class ExchangeCredentials(Frozen):
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None


class Secrets(Frozen):
    """Exchange keys and tokens; printed and serialised only as ``**********``."""

    exchanges: dict[str, ExchangeCredentials] = Field(default_factory=dict)
    telegram_token: SecretStr | None = None
    api_token: SecretStr | None = None
    apprise_urls: list[SecretStr] = Field(default_factory=list)


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    data: DataConfig = DataConfig()
    qc: QCConfig = QCConfig()
    costs: CostsConfig = CostsConfig()
    features: FeaturesConfig = FeaturesConfig()
    labels: LabelConfig = LabelConfig()
    models: ModelConfig = ModelConfig()
    validation: ValidationConfig = ValidationConfig()
    tuning: TuningConfig = TuningConfig()
    tracking: TrackingConfig = TrackingConfig()
    signals: SignalConfig = SignalConfig()
    modes: ModesConfig = ModesConfig()
    plans: PlanConfig = PlanConfig()
    risk: RiskConfig = RiskConfig()
    run: RunConfig = RunConfig()
    logging: LoggingConfig = LoggingConfig()
    api: ApiConfig = ApiConfig()
    notify: NotifyConfig = NotifyConfig()
    bot: BotConfig = BotConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    mlops: MlopsConfig = MlopsConfig()
    sentiment: SentimentConfig = SentimentConfig()
    secrets_file: Path | None = Field(None, description="YAML file with secrets (mode 0600)")
    secrets: Secrets = Secrets()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    def redacted(self) -> dict[str, Any]:
        """JSON-safe dump with every secret masked."""
        return dict(self.model_dump(mode="json"))


def find_config(path: Path | str | None = None) -> Path | None:
    """The config file to use: explicit path, ``$AITRADER_CONFIG``, or ``./aitrader.yaml``."""
    if path is not None:
        found = Path(path).expanduser()
        if not found.is_file():
            raise ConfigError(
                f"config file {found} does not exist (create one with `aitrader init`)"
            )
        return found
    env = os.environ.get("AITRADER_CONFIG")
    if env:
        return find_config(env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of sections, got {type(loaded).__name__}"
        )
    return loaded


def load_settings(path: Path | str | None = None) -> Settings:
    """Read, merge and validate the configuration; raises ConfigError (exit code 2)."""
    config_path = find_config(path)
    values = read_yaml(config_path) if config_path else {}
    origin = str(config_path) if config_path else "configuration"
    if "secrets" in values:
        raise ConfigError(
            f"{origin}: secrets are not allowed in the config file; set them in the environment "
            "(AITRADER__SECRETS__EXCHANGES__BINANCE__API_KEY=...) "
            "or a secrets file (secrets_file, mode 0600)"
        )
    try:
        settings = Settings(**values)
        if settings.secrets_file is not None:
            file_secrets = _read_secrets_file(settings.secrets_file)
            merged = _deep_merge(
                file_secrets, settings.secrets.model_dump(exclude_none=True, exclude_defaults=True)
            )
            settings = settings.model_copy(
                update={"secrets": Secrets.model_validate(_reveal(merged))}
            )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None
    return settings


def _read_secrets_file(path: Path) -> dict[str, Any]:
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"secrets_file {path} does not exist")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secrets_file {path} has mode {mode:04o}; it must be readable by its owner only "
            f"(chmod 600 {path})"
        )
    return read_yaml(path)


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    return value


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """One line per problem: dotted key, value given (never a secret), what is allowed."""
    lines = [f"{origin}: invalid configuration"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        secret = "secret" in key or any(w in key for w in ("api_key", "password", "token"))
        given = "" if error["type"] == "missing" or secret else f" = {error.get('input')!r}"
        lines.append(f"  {key}{given}: {error['msg']}")
    return "\n".join(lines)


def template_text() -> str:
    """The commented config template written by ``aitrader init``."""
    return (resources.files("aitrader") / "templates" / DEFAULT_CONFIG_NAME).read_text()
