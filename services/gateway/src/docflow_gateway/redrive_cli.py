"""``python -m docflow_gateway redrive``: start again the documents a service gave up on.

Once the cause is fixed (Qdrant back, a key replaced, a bug fixed), asks the
gateway (``POST /v1/deadletters/redrive``) for a new attempt of each of the
tenant's dead-lettered documents, and prints what it did. Exit code 0 when
the gateway answered, 2 when it could not be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m docflow_gateway redrive",
        description="A new attempt of each dead-lettered document of the tenant (all, or "
        "those the filters choose).",
    )
    parser.add_argument("--document", action="append", dest="documents", metavar="ID")
    parser.add_argument("--service", choices=["extractor", "embedder"])
    parser.add_argument("--error-contains", metavar="TEXT")
    parser.add_argument("--since", metavar="ISO-8601", help="dead-lettered at or after")
    parser.add_argument("--dry-run", action="store_true", help="say what would be started")
    parser.add_argument(
        "--gateway",
        default=os.environ.get("DOCFLOW_GATEWAY_URL", "http://127.0.0.1:8000"),
        help="the gateway's URL (DOCFLOW_GATEWAY_URL)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("DOCFLOW_API_KEY"), help="(DOCFLOW_API_KEY)"
    )
    parser.add_argument("--json", action="store_true", help="print the gateway's answer as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = _arguments(argv)
    request: dict[str, Any] = {"dry_run": args.dry_run}
    for name, value in (
        ("document_ids", args.documents),
        ("service", args.service),
        ("error_contains", args.error_contains),
        ("since", args.since),
    ):
        if value:
            request[name] = value
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    try:
        answer = httpx.post(
            f"{args.gateway.rstrip('/')}/v1/deadletters/redrive",
            json=request,
            headers=headers,
            timeout=120,
        )
    except httpx.HTTPError as exc:
        print(f"cannot reach the gateway at {args.gateway}: {exc}", file=sys.stderr)
        return 2
    if answer.status_code != 200:
        print(f"refused ({answer.status_code}): {answer.text}", file=sys.stderr)
        return 2
    result = answer.json()
    if args.json:
        print(json.dumps(result))
        return 0
    verb = "would retry" if args.dry_run else "retried"
    print(f"{result['dead_letters']} dead letters; {verb} {len(result['retried'])} documents")
    for doc in result["retried"]:
        attempt = f" (attempt {doc['attempt']})" if doc["attempt"] else ""
        print(f"  {verb} {doc['id']}{attempt}: {doc['status_url']}")
    for doc in result["skipped"]:
        print(f"  skipped {doc['id']}: {doc['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
