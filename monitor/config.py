"""The one settings object: every knob, read from MONITOR_* environment variables.

Nothing else in the library reads the environment; stages receive the values
they need as arguments.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from monitor.ingest.http import FetchLimits
from monitor.ingest.shards import Shard, parse_shard
from monitor.matching.embedding.encoder import DEFAULT_EMBEDDER
from monitor.store.ducklake import DuckLakeTarget, S3Access

DEFAULT_USER_AGENT = (
    "news-coverage-monitor/0.1 (+https://github.com/news-coverage-monitor; set MONITOR_USER_AGENT)"
)


_URL_BOUNDARY = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(value: str) -> list[str]:
    """Channel URLs from one comma- or space-separated string (commas inside a URL are kept)."""
    return [part.strip().rstrip(",") for part in _URL_BOUNDARY.split(value.strip()) if part.strip(" ,")]


class Settings(BaseSettings):
    """Runtime configuration. Every field can be set as ``MONITOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    db: Path = Field(Path("data/monitor.duckdb"), description="DuckDB database file.")
    feeds: Path = Field(Path("feeds.yaml"), description="Feed list (YAML).")
    topics: Path = Field(Path("topics.yaml"), description="Topic profiles (YAML).")
    alerts_file: Path | None = Field(
        None, description="JSON-lines alert sink; default: <db name>.alerts.jsonl beside the database."
    )

    alert_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Alert channels for every topic, comma-separated Apprise URLs (json://, mailto://, slack://, ...).",
    )
    alert_urls_secret: str | None = Field(
        None, description="Name of a Prefect Secret block holding more alert URLs (read by the flows only)."
    )
    alert_budget: int | None = Field(
        10, ge=0, description="Immediate alerts a day per topic and channel; the rest go into the digest."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Signs json:// webhook bodies: X-Monitor-Signature: sha256=HMAC."
    )
    alert_retry_first_s: float = Field(
        30.0, description="A failed channel is retried after this long, doubling."
    )
    alert_retry_max_s: float = Field(1800.0, description="... up to this.")
    alert_give_up_after_s: float = Field(
        3 * 86400.0, description="Undelivered alerts are given up after this."
    )
    reviewer: str | None = Field(
        None, description="Name recorded with review decisions; default: the login name."
    )

    user_agent: str = DEFAULT_USER_AGENT
    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges exempt from the private-address guard (comma-separated).",
    )
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_feed_bytes: int = 10 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    concurrency: int = 16
    per_host_concurrency: int = 2
    per_host_delay_s: float = Field(0.25, description="Minimum spacing between requests to one host.")
    obey_robots: bool = Field(True, description="Skip article pages that robots.txt disallows.")
    min_poll_interval_s: float = Field(300.0, description="Adaptive polling: shortest interval (5 min).")
    max_poll_interval_s: float = Field(86400.0, description="Adaptive polling: longest interval (24 h).")
    dead_after_failures: int = Field(10, description="Consecutive failures after which a feed is dead.")
    page_max_attempts: int = 5

    batch_size: int = Field(32, ge=1, description="Articles per fetch/extract/embed/store batch.")
    embed_batch_size: int = 32
    extract_in_worker: bool = Field(
        True,
        description="Extract articles in a worker process (free of the download thread's lock contention).",
    )
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="Encoder that embeds passages and exemplars (default all-MiniLM-L6-v2 on OpenVINO; "
        "all-MiniLM-L6-v2 is PyTorch).",
    )
    multilingual_embedder: str = Field(
        "multilingual-e5-small",
        description="Encoder for articles not in the primary languages; 'none' matches every language with the embedder.",
    )
    primary_languages: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["en"],
        description="Languages the embedder handles (comma-separated ISO codes).",
    )
    model_path: Path | None = Field(
        None, description="A local sentence-transformers model directory; default: the bundled MiniLM."
    )
    passage_words: int = 180
    passage_overlap_words: int = 30

    read_copy: bool = Field(
        True,
        description="Refresh the analysts' read copy <db>.read.duckdb after every run (monitor sql reads it).",
    )
    fts_index: bool = Field(True, description="Build the full-text (BM25) index in the read copy.")
    export_dir: Path | None = Field(
        None, description="Daily Parquet exports; default: exports/ beside the database."
    )
    db_lock_timeout_s: float = Field(
        60.0, description="How long a write waits for another process to release the database."
    )
    shard: str | None = Field(
        None,
        description="K/N: poll only the feeds in shard K of N (a stable hash of each feed's URL); "
        "unset polls every feed.",
    )

    store: Literal["duckdb", "ducklake"] = Field(
        "duckdb",
        description="Storage backend: duckdb (the file at db) or ducklake (a PostgreSQL catalog and a data "
        "path, for many workers).",
    )
    ducklake_catalog: str | None = Field(
        None,
        description="DuckLake's catalog database, a libpq connection string "
        "(host=127.0.0.1 port=5432 dbname=monitor user=monitor).",
    )
    ducklake_data: str | None = Field(
        None, description="DuckLake's data path for Parquet files: a directory, or s3://bucket/prefix."
    )
    s3_endpoint: str | None = Field(
        None,
        description="With an s3:// data path: the S3-compatible service, http(s)://host:port or host:port "
        "(HTTPS); unset: AWS S3.",
    )
    s3_key_id: str | None = Field(None, description="With an s3:// data path: the access key id.")
    s3_secret: SecretStr | None = Field(None, description="With an s3:// data path: the secret access key.")
    s3_region: str = Field("us-east-1", description="With an s3:// data path: the bucket's region.")
    s3_url_style: Literal["path", "vhost"] | None = Field(
        None,
        description="With an s3:// data path: bucket in the path or in the host name; default: path with "
        "an endpoint (MinIO and most self-hosted services), vhost on AWS.",
    )

    task_runner: Literal["threads", "dask"] = Field(
        "threads",
        description="Where extraction and embedding run: threads (this process and its extraction worker) "
        "or dask (a Dask cluster through prefect-dask; flow runs only).",
    )
    dask_address: str | None = Field(
        None,
        description="With task_runner=dask: the scheduler to use (tcp://host:8786); unset starts a local "
        "cluster for the run.",
    )
    dask_workers: int = Field(
        1,
        ge=1,
        description="Worker processes of the local Dask cluster; each loads the encoders and uses every core "
        "for inference, so 1 per 2-4 cores.",
    )
    dask_batches_in_flight: int | None = Field(
        None,
        ge=1,
        description="Batches kept on the Dask cluster at once; default: twice its workers.",
    )

    @model_validator(mode="after")
    def _check_store(self) -> Settings:
        if self.store == "ducklake" and not (self.ducklake_catalog and self.ducklake_data):
            raise ValueError("store=ducklake needs MONITOR_DUCKLAKE_CATALOG and MONITOR_DUCKLAKE_DATA")
        if (self.s3_key_id is None) != (self.s3_secret is None):
            raise ValueError("MONITOR_S3_KEY_ID and MONITOR_S3_SECRET go together")
        return self

    @property
    def s3_access(self) -> S3Access | None:
        """The object store's credentials for DuckDB, or None when none are set."""
        if self.s3_key_id is None or self.s3_secret is None:
            return None
        endpoint, use_ssl = self.s3_endpoint, True
        if endpoint is not None:
            scheme, _, rest = endpoint.partition("://")
            if rest:
                endpoint, use_ssl = rest.rstrip("/"), scheme.lower() != "http"
        url_style = self.s3_url_style or ("path" if endpoint else "vhost")
        return S3Access(
            self.s3_key_id, self.s3_secret.get_secret_value(), endpoint, self.s3_region, url_style, use_ssl
        )

    @property
    def store_target(self) -> Path | DuckLakeTarget:
        """What the storage package opens: the DuckDB file, or the DuckLake store."""
        if self.store == "ducklake" and self.ducklake_catalog and self.ducklake_data:
            return DuckLakeTarget(self.ducklake_catalog, self.ducklake_data, self.s3_access)
        return self.db

    @field_validator("shard")
    @classmethod
    def _check_shard(cls, value: str | None) -> str | None:
        return str(parse_shard(value)) if value else None

    def feed_shard(self) -> Shard:
        """The shard of the feed list this worker polls (``1/1``: all of it)."""
        return parse_shard(self.shard)

    @field_validator("alert_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        # Split at a comma (or space) only where a new scheme:// begins: an Apprise URL such as
        # mailto://...?to=a@x.org,b@x.org keeps its own commas.
        if isinstance(value, str):
            return split_urls(value)
        return value

    @field_validator("fetch_allow", "primary_languages", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def alerts_path(self) -> Path:
        """Where alerts are appended: ``alerts_file``, or beside the database."""
        return self.alerts_file or self.db.with_suffix(".alerts.jsonl")

    def routing_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`monitor.matching.routing.load_routing` these settings describe."""
        return {
            "embedder": self.embedder,
            "multilingual": self.multilingual_embedder,
            "primary_languages": self.primary_languages,
            "model_path": self.model_path,
            "batch_size": self.embed_batch_size,
        }

    def fetch_limits(self) -> FetchLimits:
        """The HTTP limits these settings describe."""
        return FetchLimits(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s,
            max_bytes=self.max_page_bytes,
            max_redirects=self.max_redirects,
            concurrency=self.concurrency,
            per_host_concurrency=self.per_host_concurrency,
            per_host_delay_s=self.per_host_delay_s,
        )
