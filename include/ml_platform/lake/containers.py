"""Create Blob containers if missing (the Azurite set-up of `scripts/azurite.sh start NAME...`).

AZURE_STORAGE_CONNECTION_STRING=... python -m ml_platform.lake.containers lake landing mlflow
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def ensure_containers(connection_string: str, names: Sequence[str]) -> list[str]:
    """Create each container of `names` that does not exist yet; the ones created."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    created = []
    for name in names:
        try:
            service.create_container(name)
            created.append(name)
        except ResourceExistsError:
            pass
    return created


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    if not names or not conn:
        print(
            "usage: AZURE_STORAGE_CONNECTION_STRING=... python -m ml_platform.lake.containers NAME...", file=sys.stderr
        )
        return 2
    ensure_containers(conn, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
