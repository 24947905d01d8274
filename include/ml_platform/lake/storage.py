"""Where lake files live: a local folder or Azure Storage, one place that knows the difference.

A location is a local path (or `file:` URI) or an Azure URI
`abfs[s]://<container>@<account>.dfs.core.windows.net/<path>` (a Blob URL
`https://<account>.blob.core.windows.net/<container>/<path>` is accepted where files are read and
is turned into that form). Each engine keeps its own client and gets its options from here:

- Python-side files (catalog JSON, landed files, reports): fsspec through `adlfs`, as a
  `UPath` (universal_pathlib), so the same `Path`-like code runs on both;
- delta-rs: `delta_options()` (object_store's Azure keys);
- Spark: `spark_conf()` (Hadoop's ABFS connector; secrets only in-process, never on a command line).

Credentials come from settings (`ML_PLATFORM_AZURE_*`): an account key, a SAS token, a service
principal, or none of them, which means the platform's identity (managed identity, or workload
identity on AKS). `ML_PLATFORM_AZURE_EMULATOR_ENDPOINT` says the account is an emulator (Azurite)
at that Blob endpoint; the emulator-only settings (plain HTTP, Blob-only service) are set only
then. Secrets are `SecretStr` in settings and never part of an error message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_platform.config import get_settings as settings
from ml_platform.errors import ConfigError
from ml_platform.locations import AzureLocation, parse

if TYPE_CHECKING:
    from upath import UPath

    from ml_platform.config import Settings


# the Azure SDK logs every request at INFO (with its URL): Airflow's task logging would show them all
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


def get_settings() -> Settings:
    """The process settings (imported here, late: `is_remote`/`parse` stay usable without them)."""
    return settings()


def list_files(uri: str | Path, settings: Settings | None = None) -> list[str]:
    """Every file at or under `uri` (sorted), in the location's own spelling; [] when nothing is there."""
    loc = parse(uri)
    if isinstance(loc, Path):
        if loc.is_file():
            return [str(loc)]
        return sorted(str(p) for p in loc.rglob("*") if p.is_file()) if loc.is_dir() else []
    s = settings or get_settings()
    fs = upath(loc.uri, s).fs
    root = f"{loc.container}/{loc.path}".rstrip("/")
    found = fs.find(root) if fs.exists(root) else []
    scheme = "abfs" if s.azure_emulator_endpoint else "abfss"
    return sorted(AzureLocation(loc.account, *f"{p}/".split("/", 1), scheme).uri for p in found)  # type: ignore[misc]


def arrow_filesystem(uri: str | Path, settings: Settings | None = None) -> tuple[Any, str]:
    """pyarrow's own filesystem for `uri` and the path in it (Azure: `<container>/<path>`); no
    fsspec needed, so the small drift environment reads Azure too."""
    import pyarrow.fs as pafs

    loc = parse(uri)
    if isinstance(loc, Path):
        return pafs.LocalFileSystem(), str(loc)
    s = settings or get_settings()
    opts: dict[str, Any] = {"account_name": loc.account, **credentials(s)}
    if s.azure_emulator_endpoint:
        from urllib.parse import urlsplit

        host = urlsplit(s.azure_emulator_endpoint).netloc
        opts |= {
            "blob_storage_authority": host,
            "dfs_storage_authority": host,
            "blob_storage_scheme": "http",
            "dfs_storage_scheme": "http",
        }
    return pafs.AzureFileSystem(**opts), f"{loc.container}/{loc.path}".rstrip("/")


def open_binary(uri: str | Path, settings: Settings | None = None) -> Any:
    """A binary reader of the file at `uri` (a context manager)."""
    loc = parse(uri)
    return open(loc, "rb") if isinstance(loc, Path) else upath(loc.uri, settings).open("rb")


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def auth_kind(settings: Settings | None = None) -> str:
    """How the platform signs in to Azure Storage: key, sas, service_principal or identity."""
    s = settings or get_settings()
    if s.azure_storage_account_key is not None:
        return "key"
    if s.azure_storage_sas_token is not None:
        return "sas"
    if s.azure_client_secret is not None:
        return "service_principal"
    return "identity"


#: The settings that carry an Azure credential, all replaced together by `connection_env`.
CREDENTIAL_VARIABLES = (
    "ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY",
    "ML_PLATFORM_AZURE_STORAGE_SAS_TOKEN",
    "ML_PLATFORM_AZURE_CLIENT_ID",
    "ML_PLATFORM_AZURE_CLIENT_SECRET",
    "ML_PLATFORM_AZURE_TENANT_ID",
)


def connection_env(conn_type: str, login: str | None, password: str | None, extra: dict[str, Any]) -> dict[str, str]:
    """The `ML_PLATFORM_AZURE_*` credential settings an Airflow connection of the Azure provider
    (`wasb` or `adls`) stands for, in the order the provider's hooks try them: a connection string
    (its AccountKey or SharedAccessSignature), a service principal (login = client id, password =
    secret, extra `tenant_id`), a shared access key, a SAS token, the password or extra
    `account_key` as account key, else the platform's identity (extra `managed_identity_client_id`
    for a user-assigned one). Every variable of `CREDENTIAL_VARIABLES` is in the result: "" means
    unset, so a connection never mixes with credentials of the environment."""
    if conn_type not in ("wasb", "adls"):
        raise ConfigError(f"connection type {conn_type!r} does not hold Azure Storage credentials: use wasb or adls")

    def field(name: str) -> str:
        value = extra.get(name) or extra.get(f"extra__{conn_type}__{name}") or ""
        return str(value)

    key, sas, client, secret, tenant = "", "", "", "", ""
    connection_string = field("connection_string")
    if connection_string:
        parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
        key, sas = parts.get("AccountKey", ""), parts.get("SharedAccessSignature", "")
        if not (key or sas):
            raise ConfigError("the connection's connection string has neither AccountKey nor SharedAccessSignature")
    elif field("tenant_id"):
        client, secret, tenant = login or "", password or "", field("tenant_id")
        if not (client and secret):
            raise ConfigError(
                "a service principal connection (extra tenant_id) needs the client id as login "
                "and the secret as password"
            )
    elif field("shared_access_key"):
        key = field("shared_access_key")
    elif field("sas_token"):
        sas = field("sas_token").partition("?")[2] if field("sas_token").startswith("https") else field("sas_token")
    elif password or field("account_key"):
        key = password or field("account_key")
    else:
        client = field("managed_identity_client_id")
    return dict(zip(CREDENTIAL_VARIABLES, (key, sas.lstrip("?"), client, secret, tenant), strict=True))


def credentials(settings: Settings | None = None) -> dict[str, str]:
    """The configured credential under the names pyarrow and adlfs share: `account_key`,
    `sas_token`, `client_id` + `client_secret` + `tenant_id`, or for the platform's identity only
    an optional (user-assigned) `client_id`."""
    s = settings or get_settings()
    kind = auth_kind(s)
    if kind == "key":
        return {"account_key": _secret(s.azure_storage_account_key)}
    if kind == "sas":
        return {"sas_token": _secret(s.azure_storage_sas_token).lstrip("?")}
    if kind == "service_principal":
        return {
            "client_id": s.azure_client_id,
            "client_secret": _secret(s.azure_client_secret),
            "tenant_id": s.azure_tenant_id,
        }
    return {"client_id": s.azure_client_id} if s.azure_client_id else {}


#: delta-rs (object_store) names of the `credentials()` keys; for the platform's identity the
#: client id is `azure_msi_client_id`.
_DELTA_KEYS = {
    "account_key": "azure_storage_account_key",
    "sas_token": "azure_storage_sas_token",
    "client_id": "azure_client_id",
    "client_secret": "azure_client_secret",
    "tenant_id": "azure_tenant_id",
}


def delta_options(uri: str | Path, settings: Settings | None = None) -> dict[str, str]:
    """delta-rs (object_store) storage options for `uri`; empty for a local path."""
    loc = parse(uri)
    if isinstance(loc, Path):
        return {}
    s = settings or get_settings()
    keys = _DELTA_KEYS | ({"client_id": "azure_msi_client_id"} if auth_kind(s) == "identity" else {})
    opts = {"azure_storage_account_name": loc.account} | {keys[k]: v for k, v in credentials(s).items()}
    if s.azure_emulator_endpoint:
        opts |= {
            "azure_storage_endpoint": s.azure_emulator_endpoint.rstrip("/"),
            "azure_allow_http": "true",
            "azure_storage_use_emulator": "false",
        }
    return opts


def fsspec_options(account: str, settings: Settings | None = None) -> dict[str, Any]:
    """adlfs (`AzureBlobFileSystem`) arguments for `account`. Folder listings are not cached: other
    processes (Spark, the landing zone's writers) add files that a cached listing would hide."""
    return {"use_listings_cache": False, **_fsspec_auth(account, settings)}


def _fsspec_auth(account: str, settings: Settings | None = None) -> dict[str, Any]:
    s = settings or get_settings()
    kind = auth_kind(s)
    if s.azure_emulator_endpoint:
        key = _secret(s.azure_storage_account_key)
        auth = (
            f"AccountKey={key}"
            if kind == "key"
            else f"SharedAccessSignature={_secret(s.azure_storage_sas_token).lstrip('?')}"
        )
        return {
            "connection_string": f"DefaultEndpointsProtocol=http;AccountName={account};{auth};"
            f"BlobEndpoint={s.azure_emulator_endpoint.rstrip('/')};"
        }
    # the platform's identity: DefaultAzureCredential (managed or workload identity)
    return {"account_name": account, **(credentials(s) if kind != "identity" else {"anon": False})}


def upath(uri: str | Path, settings: Settings | None = None) -> Path | UPath:
    """A `Path`-like handle on `uri`: `pathlib.Path` locally, an adlfs-backed `UPath` on Azure."""
    loc = parse(uri)
    if isinstance(loc, Path):
        return loc
    from upath import UPath

    return UPath(f"az://{loc.container}/{loc.path}".rstrip("/"), **fsspec_options(loc.account, settings))


def write_text_atomic(path: Path | UPath, text: str) -> None:
    """Replace the file at `path` with `text` in one step: a local rename, or one blob upload
    (a blob is replaced whole, never seen half-written)."""
    import os

    if isinstance(path, Path) and type(path).__module__.startswith("pathlib"):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


def spark_conf(settings: Settings | None = None, *, secrets: bool = False) -> dict[str, str]:
    """Hadoop ABFS settings (as `spark.hadoop.*`) for every account the platform's locations name.

    Without `secrets` the result holds no credential (it may go on a spark-submit command line);
    with it, only the credential keys, for a session built in-process."""
    s = settings or get_settings()
    accounts = sorted(
        {loc.account for loc in map(parse, (s.lake_uri, s.landing_uri)) if isinstance(loc, AzureLocation)}
    )
    if not accounts:
        return {}
    conf: dict[str, str] = {}
    kind = auth_kind(s)
    for account in accounts:
        host = f"{account}.dfs.core.windows.net"
        if secrets:
            if kind == "key":
                conf[f"fs.azure.account.key.{host}"] = _secret(s.azure_storage_account_key)
            elif kind == "sas":
                conf[f"fs.azure.sas.fixed.token.{host}"] = _secret(s.azure_storage_sas_token).lstrip("?")
            elif kind == "service_principal":
                conf[f"fs.azure.account.oauth2.client.secret.{host}"] = _secret(s.azure_client_secret)
            continue
        if kind == "sas":
            conf[f"fs.azure.account.auth.type.{host}"] = "SAS"
        elif kind == "service_principal":
            conf |= {
                f"fs.azure.account.auth.type.{host}": "OAuth",
                f"fs.azure.account.oauth.provider.type.{host}": "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider",
                f"fs.azure.account.oauth2.client.id.{host}": s.azure_client_id,
                f"fs.azure.account.oauth2.client.endpoint.{host}": f"https://login.microsoftonline.com/{s.azure_tenant_id}/oauth2/token",
            }
        elif kind == "identity":
            conf |= {
                f"fs.azure.account.auth.type.{host}": "OAuth",
                f"fs.azure.account.oauth.provider.type.{host}": "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider",
            }
            if s.azure_client_id:
                conf[f"fs.azure.account.oauth2.client.id.{host}"] = s.azure_client_id
    if s.azure_emulator_endpoint and not secrets:
        from urllib.parse import urlsplit

        conf |= {
            "fs.azure.abfs.endpoint": urlsplit(s.azure_emulator_endpoint).netloc,
            "fs.azure.account.hns.enabled": "false",
            "fs.azure.fns.account.service.type": "BLOB",
            "fs.azure.ingress.service.type": "BLOB",
            "fs.azure.always.use.https": "false",
            "fs.azure.ssl.channel.mode": "Default_JSSE",
            "fs.azure.networking.library": "JDK_HTTP_URL_CONNECTION",
            "fs.azure.createRemoteFileSystemDuringInitialization": "true",
        }
    return {f"spark.hadoop.{k}": v for k, v in conf.items()}


def _container_client(loc: AzureLocation, s: Settings) -> Any:
    """An azure-storage-blob client of `loc`'s container that gives up after 2 quick retries."""
    from azure.storage.blob import ContainerClient, LinearRetry

    opts = fsspec_options(loc.account, s)
    quick = {
        "retry_policy": LinearRetry(backoff=0.5, random_jitter_range=0, retry_total=2),
        "connection_timeout": 5,
        "read_timeout": 15,
    }
    if "connection_string" in opts:
        return ContainerClient.from_connection_string(opts["connection_string"], loc.container, **quick)
    url = f"https://{loc.account}.blob.core.windows.net"
    kind = auth_kind(s)
    if kind == "key":
        credential: Any = {"account_name": loc.account, "account_key": opts["account_key"]}
    elif kind == "sas":
        credential = opts["sas_token"]
    elif kind == "service_principal":
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(s.azure_tenant_id, s.azure_client_id, opts["client_secret"])
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=s.azure_client_id or None)
    return ContainerClient(url, loc.container, credential=credential, **quick)


def check_location(uri: str | Path, settings: Settings | None = None, *, what: str = "lake") -> None:
    """Fail early, before any write, when `uri` cannot be used: one `ConfigError` that names the
    URI (never a secret) and what to set: a missing container, refused credentials, an
    unreachable account or endpoint."""
    loc = parse(uri)
    if isinstance(loc, Path):
        return
    s = settings or get_settings()
    hint = (
        "set ML_PLATFORM_AZURE_STORAGE_ACCOUNT_KEY, ML_PLATFORM_AZURE_STORAGE_SAS_TOKEN or "
        "ML_PLATFORM_AZURE_CLIENT_ID/_CLIENT_SECRET/_TENANT_ID (none: the managed identity)"
    )
    try:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        client = _container_client(loc, s)
        try:
            next(iter(client.list_blobs(name_starts_with=loc.path or None, results_per_page=1).by_page()), None)
        except ResourceNotFoundError:
            raise ConfigError(
                f"{what} {loc.uri}: container {loc.container!r} does not exist in account "
                f"{loc.account!r}; create it (az storage container create --name {loc.container}) "
                f"or fix the URI"
            ) from None
        except (ClientAuthenticationError, HttpResponseError) as e:
            if isinstance(e, ClientAuthenticationError) or getattr(e, "status_code", None) == 403:
                raise ConfigError(
                    f"{what} {loc.uri}: Azure refused the credentials "
                    f"({getattr(e, 'reason', None) or type(e).__name__}); {hint}"
                ) from None
            raise
    except ConfigError:
        raise
    except Exception as e:  # the SDK's errors name the cause; a secret is masked in case one does
        reason = type(e).__name__
        text = str(e).split("\n", 1)[0]
        for secret in (s.azure_storage_account_key, s.azure_storage_sas_token, s.azure_client_secret):
            if secret is not None and _secret(secret):
                text = text.replace(_secret(secret), "***")
        raise ConfigError(
            f"{what} {loc.uri}: storage account {loc.account!r} is not reachable "
            f"({reason}: {text[:200]}); check the account name"
            + (
                f" and that the emulator at {s.azure_emulator_endpoint} runs"
                if s.azure_emulator_endpoint
                else " and the network"
            )
        ) from None
