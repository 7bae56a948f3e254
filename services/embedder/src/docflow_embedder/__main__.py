"""``python -m docflow_embedder``: run the embedder consumer; ``python -m docflow_embedder
rekey``: move points of the old id scheme to their current ids (``rekey.py``)."""

import sys

import uvicorn

from docflow_embedder.bootstrap import SettingsModels, bootstrap, qdrant_client
from docflow_embedder.rekey import rekey
from docflow_embedder.settings import EmbedderSettings
from docflow_shared.logs import configure_logging
from docflow_shared.serving import run


def main() -> None:
    settings = EmbedderSettings()
    if sys.argv[1:] == ["rekey"]:
        configure_logging("embedder", settings.log_level, settings.log_format)
        client = qdrant_client(settings)
        try:
            for collection, moved in rekey(client, SettingsModels(settings)).items():
                print(f"{collection}: {moved} points moved to their current ids")
        finally:
            client.close()
        return
    run("embedder", settings, bootstrap, uvicorn.run)


if __name__ == "__main__":
    main()
