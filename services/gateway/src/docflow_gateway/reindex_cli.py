"""``python -m docflow_gateway reindex``: re-embed the stored chunks with another model.

Asks the gateway (``POST /v1/reindex``) and follows the operation's status
until it is over, printing each change. Exit code 0 when it completed, 1 when
it failed, 2 when it could not be asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m docflow_gateway reindex",
        description="Re-embed every stored chunk (or chosen documents') with another model; "
        "searches switch to it when it holds every chunk.",
    )
    parser.add_argument("--backend", choices=["local", "openai"], required=True)
    parser.add_argument("--model", required=True, help="e.g. text-embedding-3-small")
    parser.add_argument("--dimensions", type=int, help="shorter vectors, where the model can")
    parser.add_argument(
        "--document", action="append", dest="documents", metavar="ID", help="only this one"
    )
    parser.add_argument(
        "--gateway",
        default=os.environ.get("DOCFLOW_GATEWAY_URL", "http://127.0.0.1:8000"),
        help="the gateway's URL (DOCFLOW_GATEWAY_URL)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DOCFLOW_API_KEY"),
        help="an API key of an admin tenant, when authentication is on (DOCFLOW_API_KEY)",
    )
    parser.add_argument("--no-wait", action="store_true", help="ask, print the id, and return")
    parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to wait")
    parser.add_argument("--json", action="store_true", help="print the final status as JSON")
    return parser.parse_args(argv)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body)
    except ValueError:
        return response.text


def main(argv: Sequence[str]) -> int:
    args = _arguments(argv)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    request: dict[str, Any] = {
        "embedding": {"backend": args.backend, "model": args.model, "dimensions": args.dimensions}
    }
    if args.documents:
        request["document_ids"] = args.documents
    with httpx.Client(timeout=30, headers=headers) as http:
        try:
            answer = http.post(f"{args.gateway.rstrip('/')}/v1/reindex", json=request)
        except httpx.HTTPError as exc:
            print(f"cannot reach the gateway at {args.gateway}: {exc}", file=sys.stderr)
            return 2
        if answer.status_code != 202:
            print(f"refused ({answer.status_code}): {_problem(answer)}", file=sys.stderr)
            return 2
        accepted = answer.json()
        print(f"reindex {accepted['reindex_id']}: {accepted['status_url']}", file=sys.stderr)
        if args.no_wait:
            print(json.dumps(accepted) if args.json else accepted["reindex_id"])
            return 0
        deadline = time.monotonic() + args.timeout
        said = ""
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                response = http.get(accepted["status_url"])
            except httpx.HTTPError as exc:
                print(f"status service unreachable ({exc}); still trying", file=sys.stderr)
                response = None
            if response is not None and response.status_code == 200:
                status = response.json()
                line = f"[{status['progress']:3d}%] {status['status']}: {status['message']}"
                if line != said:
                    print(line, file=sys.stderr)
                    said = line
                if status["status"] in ("completed", "failed"):
                    break
            time.sleep(0.5)
        else:
            print("gave up waiting; the operation goes on", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(status))
    return 0 if status.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
