"""``python -m docflow_extractor``: run the extractor consumer."""

import uvicorn

from docflow_extractor.bootstrap import bootstrap
from docflow_extractor.settings import ExtractorSettings
from docflow_shared.serving import run


def main() -> None:
    run("extractor", ExtractorSettings(), bootstrap, uvicorn.run)


if __name__ == "__main__":
    main()
