"""BENCHMARKS.md and its plots from the JSON results in bench/results/.

``make bench`` runs every benchmark and then this. Each section reads one
result file; a benchmark that was not run is said to be missing, not
guessed. The plots go to docs/bench/ (PNG, matplotlib without a display).

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from harness import RESULTS, ROOT, machine

SUMMARY = ROOT / "BENCHMARKS.md"
PLOTS = ROOT / "docs" / "bench"

Result = dict[str, Any]


def load(name: str) -> Result | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def mark(met: bool | None) -> str:
    return {True: "met", False: "not met", None: "no goal"}[met]


class Report:
    """The Markdown being written: a goal table filled as sections are added."""

    def __init__(self) -> None:
        self.goals: list[tuple[str, str, str, bool | None]] = []
        self.sections: list[str] = []

    def goal(self, what: str, goal: str, figure: str, met: bool | None) -> None:
        self.goals.append((what, goal, figure, met))

    def section(self, title: str, *lines: str) -> None:
        self.sections.append("\n".join([f"## {title}", "", *lines, ""]))

    def missing(self, title: str, name: str) -> None:
        self.section(title, f"Not run: bench/results/{name}.json is missing.")
        self.goal(title, "—", "not run", None)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def plot(name: str, draw: Callable[[Any], None]) -> str:
    """Draw one figure into docs/bench/<name>.png; the Markdown that shows it."""
    PLOTS.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=110)
    draw(axes)
    figure.tight_layout()
    figure.savefig(PLOTS / f"{name}.png")
    plt.close(figure)
    return f"![{name}](docs/bench/{name}.png)"


# -- sections ------------------------------------------------------------------


def upload_latency(report: Report) -> None:
    result = load("upload_latency")
    if result is None:
        report.missing("Upload latency", "upload_latency")
        return
    results = result["results"]
    goal = result["goal_at_16_clients"]
    rows = []
    for setting, ways in results.items():
        workers = setting.rsplit("_", 1)[1]
        for way, levels in ways.items():
            for clients, f in levels.items():
                rows.append(
                    [
                        workers,
                        way.replace("_", " "),
                        clients,
                        f["p50_ms"],
                        f["p99_ms"],
                        f["requests_per_s"],
                        f.get("cpu_ms_per_upload", ""),
                        f.get("gateway_cpu_ms_per_upload", ""),
                        f["unexpected_answers"],
                    ]
                )
    default = results["gateway_workers_1"]
    best = min(
        (r for r in results.values() if "16" in r["independent"]),
        key=lambda r: r["independent"]["16"]["p99_ms"],
    )
    independent, closed = default["independent"].get("16"), default["back_to_back"].get("16")
    two = results.get("gateway_workers_2", {}).get("independent", {}).get("16")
    for way, workers, figures in (
        ("independent clients", 1, independent),
        ("independent clients", 2, two),
        ("back to back", 1, closed),
    ):
        if figures is None:
            continue
        report.goal(
            f"Upload latency, 16 {way}, 1 MB PDF ({workers} gateway worker"
            f"{'s' if workers > 1 else ''})",
            f"p50 ≤ {goal['p50_ms']} ms, p99 ≤ {goal['p99_ms']} ms",
            f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"{figures['requests_per_s']} req/s",
            figures["p50_ms"] <= goal["p50_ms"] and figures["p99_ms"] <= goal["p99_ms"],
        )

    def draw(axes: Any) -> None:
        for setting, ways in results.items():
            workers = setting.rsplit("_", 1)[1]
            for way, style in (("back_to_back", "o-"), ("independent", "s--")):
                levels = ways[way]
                xs = [int(n) for n in levels]
                for q, alpha in (("p50_ms", 0.45), ("p99_ms", 1.0)):
                    axes.plot(
                        xs,
                        [levels[n][q] for n in levels],
                        style,
                        alpha=alpha,
                        label=f"{q[:3]}, {way.replace('_', ' ')}, {workers} worker(s)",
                    )
        for q in ("p50_ms", "p99_ms"):
            axes.axhline(goal[q], color="grey", linewidth=0.8, linestyle=":")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks([int(n) for n in default["back_to_back"]])
        axes.set_xticklabels(list(default["back_to_back"]))
        axes.set_xlabel("concurrent clients (dotted: the goal's 20 and 100 ms)")
        axes.set_ylabel("ms")
        axes.set_title("POST /v1/documents, 1 MB PDF, acks=all")
        axes.legend(fontsize=6, ncol=2)

    report.section(
        "Upload latency",
        f"`POST /v1/documents` of a {result['pdf_bytes'] / 1e6:.2f} MB PDF; every 202 is "
        "sent after Kafka acknowledged the event (acks=all). Back to back: each client "
        "uploads again when answered (the gateway's capacity; latency is then queueing, "
        "16 clients at R uploads/s wait 16/R s). Independent clients: at random moments, "
        f"{result['independent_clients_offer_uploads_per_s']:g} uploads/s offered in all "
        "at 16 and 64 clients; one client alone offers what one of 16 does. Medians of "
        f"{result['rounds']} rounds, the gateway with 1 and 2 worker processes in turns. "
        "CPU per upload is the gateway's and the broker's.",
        "",
        *table(
            [
                "workers",
                "clients",
                "n",
                "p50 ms",
                "p99 ms",
                "req/s",
                "CPU ms/upload",
                "of it gateway",
                "not 202",
            ],
            rows,
        ),
        "",
        f"For a 20 ms median, 16 back-to-back clients would need "
        f"{result['uploads_per_s_for_20ms_at_16_back_to_back']:g} uploads/s, "
        f"{result['uploads_per_s_for_20ms_at_16_back_to_back'] / 1000:.1f} GB/s of PDFs; "
        f"this machine's gateway takes {result['capacity_uploads_per_s']} uploads/s. "
        f"With independent clients, the lowest p99 at 16 was "
        f"{best['independent']['16']['p99_ms']} ms.",
        "",
        plot("upload_latency", draw),
    )


def stage_figures(report: Report) -> None:
    lines: list[str] = []
    extractor = load("extractor_sandbox")
    if extractor:
        report.goal(
            "Extractor vs bare pypdf (pages/s)",
            f"≥ {extractor['goal_ratio']}",
            f"{extractor['ratio']} ({extractor['extractor_pages_per_s']} vs "
            f"{extractor['bare_pypdf_pages_per_s']} pages/s)",
            extractor["ratio"] >= extractor["goal_ratio"],
        )
        lines.append(
            f"- **Extractor vs bare pypdf**: {extractor['extractor_pages_per_s']} pages/s "
            f"against {extractor['bare_pypdf_pages_per_s']} on {extractor['pdfs']} PDFs "
            f"({extractor['pages_per_round']} pages a round): ratio {extractor['ratio']}."
        )
    embedder = load("embedder")
    if embedder:
        ratio = embedder["ratio_service_to_model_alone"]
        report.goal(
            "Embedder service vs the model in-process (chunks/s)",
            f"≥ {embedder['goal_ratio']}",
            f"{ratio} ({embedder['chunks_per_s']['service']} vs "
            f"{embedder['chunks_per_s']['model_alone']} chunks/s)",
            ratio >= embedder["goal_ratio"],
        )
        small = embedder["small_documents_s"]
        lines.append(
            f"- **Embedder vs the model alone**: {embedder['chunks_per_s']['service']} chunks/s "
            f"against {embedder['chunks_per_s']['model_alone']} ({embedder['chunks']} chunks): "
            f"ratio {ratio}. {embedder['small_documents']} one-chunk documents: "
            + ", ".join(f"{k.replace('_', ' ')} {v} s" for k, v in small.items())
            + f". Reindexing: ratio {embedder['ratio_reindex_to_model_alone']} of the model."
        )
    projection = load("status_projection")
    if projection:
        sqlite = projection["projection_events_per_s"]["sqlite"]["batched"]
        goal = projection["goal_sqlite_events_per_s"]
        report.goal(
            "Status projection on SQLite (events/s)",
            f"≥ {goal}",
            f"{sqlite}",
            sqlite >= goal,
        )
        polling = projection["under_load_sqlite"]["one_process"]["independent_readers"]
        p99_goal = projection.get("goal_sqlite_get_p99_ms")
        if p99_goal is not None:
            report.goal(
                "Status GET under load on SQLite (p99)",
                f"≤ {p99_goal} ms",
                f"{polling['p99_ms']} ms at {polling['requests_per_s']} req/s",
                polling["p99_ms"] <= p99_goal,
            )
        lines.append(
            "- **Status projection**: "
            + "; ".join(
                f"{db} {v['batched']} events/s batched, {v['one_per_event']} one per event"
                for db, v in projection["projection_events_per_s"].items()
            )
            + f". GET p99 {polling['p99_ms']} ms while documents flow."
        )
    pipelining = load("pipelining")
    if pipelining:
        ratio = pipelining["ratio_to_slowest_stage"]
        report.goal(
            "Large-document pipelining (upload→completed ÷ slowest stage alone)",
            f"≤ {pipelining['goal_ratio']}",
            f"{ratio} ({pipelining['upload_to_completed_s']} s for {pipelining['pages']} pages)",
            ratio <= pipelining["goal_ratio"],
        )
        timeline = pipelining["timelines"][0]
        lines.append(
            f"- **Pipelining** ({pipelining['document']}, {pipelining['pages']} pages, "
            f"{pipelining['chunks']} chunks): {pipelining['upload_to_completed_s']} s through "
            f"the system against extraction {pipelining['extraction_alone_s']} s and embedding "
            f"{pipelining['embedding_alone_s']} s alone; after upload the first batch left "
            f"the extractor at {timeline['first_batch_sent_s']} s, extraction ended at "
            f"{timeline['extraction_ended_s']} s and the first chunks were embedded at "
            f"{timeline['first_chunks_embedded_s']} s."
        )
    fallback = load("pdf_fallback")
    if fallback:
        damaged = {k: v for k, v in fallback["by_damage"].items() if k != "intact"}
        lines.append(
            "- **Damaged PDFs** (files with text, of "
            f"{fallback['pdfs']}): "
            + "; ".join(
                f"{damage.replace('_', ' ')}: pypdf {v['pypdf_text']}, extractor "
                f"{v['extractor_text']}"
                for damage, v in damaged.items()
            )
            + "."
        )
    if not lines:
        report.missing("Stage figures", "extractor_sandbox")
        return
    report.section("Stage figures", *lines)


def efficiency(report: Report) -> None:
    result = load("efficiency")
    if result is None:
        report.missing("Pipeline efficiency and scaling", "efficiency")
        return
    configurations = result["configurations"]
    goal = result["goal_efficiency"]
    one = result["efficiency"].get("system_1x1")
    if one is not None:
        report.goal(
            "Pipeline efficiency: 1 extractor + 1 embedder ÷ the single-process floor",
            f"≥ {goal}",
            f"{one} ({configurations['system_1x1']['documents_per_min']} vs "
            f"{configurations['floor']['documents_per_min']} documents/min)",
            one >= goal,
        )
    for name, ratio in result["scaling"].items():
        report.goal(
            f"Scaling: {name.removeprefix('system_')} replicas ÷ 1x1 (throughput)",
            "—",
            f"{ratio}",
            None,
        )
    rows = [
        [
            name,
            c["documents_per_min"],
            c["pages_per_s"],
            c["chunks_per_s"],
            c["cpu_s_per_document"],
            c["cores_busy"],
            result["efficiency"].get(name, ""),
            result["scaling"].get(name, ""),
        ]
        for name, c in configurations.items()
    ]
    work = result["work_per_run"]

    def draw(axes: Any) -> None:
        names = list(configurations)
        axes.bar(names, [configurations[n]["documents_per_min"] for n in names], color="#4c72b0")
        axes.set_ylabel("documents/min")
        axes.set_title(f"{work['documents']} documents a run, medians of {result['rounds']} rounds")
        axes.tick_params(axis="x", labelsize=7)

    report.section(
        "Pipeline efficiency and scaling",
        f"The corpus' PDFs and Markdown files {work['copies_of_the_corpus']} times "
        f"({work['documents']} documents, "
        f"{work['pages']} pages, {work['chunks']} chunks a run; {work['completed']} completed, "
        f"{work['failed']} failed as expected) through the running system, against the floor: "
        "the same extraction, chunking, embedding and Qdrant writes in one process without "
        "Kafka, the chunk batches of several documents in one model call as the embedder "
        f"does. Qdrant: {result['qdrant']['how']}. Configurations in turns, medians of "
        f"{result['rounds']} rounds; nothing lost: {result['nothing_lost']}. `system_AxB`: "
        "A extractors and B embedders; `-1t`: each embedder with one OpenBLAS thread.",
        "",
        *table(
            [
                "configuration",
                "docs/min",
                "pages/s",
                "chunks/s",
                "CPU-s/doc",
                "cores busy",
                "÷ floor",
                "÷ 1x1",
            ],
            rows,
        ),
        "",
        result["statement"],
        "",
        plot("efficiency", draw),
    )


def architectures(report: Report) -> None:
    result = load("architectures")
    if result is None:
        report.missing("The architectures docflow replaces", "architectures")
        return
    medians = result["medians"]
    keys = [
        ("upload_p50_ms", "upload p50 ms"),
        ("upload_p99_ms", "upload p99 ms"),
        ("busy_upload_p50_ms", "upload while busy p50 ms"),
        ("busy_upload_p99_ms", "while busy p99 ms"),
        ("time_to_completed_p50_s", "to completed p50 s"),
        ("time_to_completed_p99_s", "to completed p99 s"),
        ("docs_per_min", "docs/min"),
        ("cpu_s", "CPU s"),
    ]
    rows = [[name, *(m.get(key, "") for key, _ in keys)] for name, m in medians.items()]
    for name, ratios in result["ratio_to_docflow"].items():
        report.goal(
            f"docflow vs {name.replace('_', ' ')}: throughput (docs/min)",
            "—",
            f"docflow {medians['docflow']['docs_per_min']}, {name.replace('_', ' ')} "
            f"{medians[name]['docs_per_min']} ({ratios['docs_per_min']}× of docflow)",
            None,
        )
    documents = result["documents"]
    problems = {k: v for k, v in result["problems"].items() if v}

    def draw(axes: Any) -> None:
        names = list(medians)
        width = 0.38
        xs = range(len(names))
        axes.bar(
            [x - width / 2 for x in xs],
            [medians[n]["time_to_completed_p50_s"] for n in names],
            width,
            label="to completed, p50",
        )
        axes.bar(
            [x + width / 2 for x in xs],
            [medians[n]["time_to_completed_p99_s"] for n in names],
            width,
            label="to completed, p99",
        )
        axes.set_xticks(list(xs))
        axes.set_xticklabels(names)
        axes.set_ylabel("s")
        axes.set_title(f"{documents['uploads']} uploads at once from {result['clients']} clients")
        axes.legend(fontsize=7)

    report.section(
        "The architectures docflow replaces",
        f"{documents['set']}: {documents['uploads']} uploads from {result['clients']} clients "
        f"at once ({documents['pages']} pages, {documents['chunks']} chunks), through docflow, "
        "Celery on Redis, and one FastAPI process with BackgroundTasks, each built on the same "
        "extraction and embedding code (bench/baselines/), alone on the machine in turns; "
        f"medians of {result['rounds']} rounds. OpenBLAS: {result['openblas_threads']}.",
        "",
        *table(["architecture", *(label for _, label in keys)], rows),
        "",
        "Problems seen: " + (json.dumps(problems) if problems else "none") + ".",
        "",
        plot("architectures", draw),
    )


def engines(report: Report) -> None:
    result = load("engines")
    title = "Embedding engines"
    if result is None:
        report.missing(title, "engines")
        return
    runs = result["engines"]
    # The service's default (results before it was recorded: OpenVINO f32).
    default = result.get("service_default", "openvino_f32")
    best = max((n for n in runs if n != "numpy"), key=lambda n: runs[n]["chunks_per_s"])
    measured_at = result.get("load_average_1min")
    report.goal(
        f"Embedding engine ÷ numpy (chunks/s, the service's default: {default})",
        "≥ 5, same vectors",
        f"{runs[default]['speedup_vs_numpy']} ({runs[default]['chunks_per_s']} vs "
        f"{runs['numpy']['chunks_per_s']} chunks/s, lowest cosine "
        f"{runs[default]['cosine_to_numpy_min']}; fastest: {best} "
        f"{runs[best]['speedup_vs_numpy']}×, lowest cosine {runs[best]['cosine_to_numpy_min']}"
        + (f"; load average {measured_at['min']}–{measured_at['max']}" if measured_at else "")
        + ")",
        runs[default]["speedup_vs_numpy"] >= 5 and runs[default]["cosine_to_numpy_min"] >= 0.99999,
    )
    report.section(
        title,
        f"all-MiniLM-L6-v2 on {result['chunks']} chunks of {result['document']}, batch "
        f"{result['batch_size']}, {result['threads']} threads, each engine in turn "
        f"({result['rounds']} rounds, medians): the numpy transformer, and LangChain4j's "
        "ONNX export on ONNX Runtime and OpenVINO (bfloat16 "
        + ("available" if result["bf16_available"] else "not available on this CPU")
        + ", float16 "
        + (
            ("available" if result["f16_available"] else "not available on this CPU")
            if "f16_available" in result
            else "not measured"
        )
        + "). Cosines are each chunk's vector against numpy's; 0.99999 is the bar for "
        f"the same vectors (same model id). The service's default: {default}."
        + (
            f" Load average while measuring: {measured_at['min']}–{measured_at['max']}."
            if measured_at
            else ""
        ),
        "",
        *table(
            ["engine", "chunks/s", "× numpy", "lowest cosine", "median cosine"],
            [
                [
                    name,
                    run["chunks_per_s"],
                    run["speedup_vs_numpy"],
                    run["cosine_to_numpy_min"],
                    run["cosine_to_numpy_median"],
                ]
                for name, run in runs.items()
            ],
        ),
    )


def vector_store(report: Report) -> None:
    result = load("vector_store")
    title = "Embedded vector store"
    if result is None:
        report.missing(title, "vector_store")
        return
    runs = {(r["engine"], r["points"]): r for r in result["runs"]}
    largest = max(points for _, points in runs)
    edge = runs.get(("edge", largest))
    local = runs.get(("local", largest))
    if edge is not None:
        versus = f"; local mode p99 {local['search']['p99_ms']} ms" if local else ""
        search = edge["search"]
        cpu = f" (CPU per search p99 {search['cpu_p99_ms']} ms)" if "cpu_p99_ms" in search else ""
        report.goal(
            f"Embedded store search p99 at {largest:,} chunks (Qdrant Edge)",
            "≤ 20 ms",
            f"p99 {search['p99_ms']} ms, p50 {search['p50_ms']} ms{cpu}{versus}",
            search["p99_ms"] <= 20,
        )
    hammered = [r for r in result["runs"] if "concurrency" in r]
    for run in hammered:
        c = run["concurrency"]
        if run["engine"] == "edge":
            report.goal(
                "Embedded store: 2 writers + 2 searchers at once, no global lock (Qdrant Edge)",
                "no errors, exact counts",
                f"{c['error_count']} errors, counts exact: {c['count_as_expected']}, "
                f"{c['points_written_per_s']} points/s written",
                c["error_count"] == 0 and c["count_as_expected"],
            )

    def ms(figures: dict[str, Any] | None) -> str:
        if not figures:
            return "—"
        wall = f"{figures['p50_ms']} / {figures['p99_ms']}"
        if "cpu_p50_ms" in figures:
            wall += f" (CPU {figures['cpu_p50_ms']} / {figures['cpu_p99_ms']})"
        return wall

    report.section(
        title,
        f"Qdrant Edge (qdrant-edge-py, in process) against qdrant-client's local mode, "
        f"both through the embedder's adapter; {result['dimension']} dimensions, "
        f"{result['vectors']}. Searches: the tenant's 10 nearest. Local mode on disk commits "
        "one SQLite transaction per point; the largest size is filled in memory for it "
        "(its searches are the same code). Edge indexes (HNSW) after writes in a thread of "
        "the adapter; before that it searches by brute force.",
        "",
        *table(
            [
                "engine",
                "points",
                "storage",
                "upsert points/s",
                "index build s",
                "search p50 / p99 ms (CPU)",
                "before index p50 / p99 ms (CPU)",
                "recall@10",
                "reopen + first search s",
                "peak RSS MiB",
            ],
            [
                [
                    r["engine"],
                    f"{r['points']:,}",
                    r.get("storage", "disk"),
                    r["upsert_points_per_s"],
                    r.get("index_s", "—"),
                    ms(r["search"]),
                    ms(r.get("search_before_index")),
                    r["recall_at_10"],
                    r.get("reopen_and_first_search_s", "—"),
                    r["peak_rss_mib"],
                ]
                for r in result["runs"]
            ],
        ),
        "",
        "Two writer threads (documents of 16 chunks written, counted and every other one "
        "deleted) and two search threads at once, on the smallest store; local mode through "
        "the adapter's global lock (without it, it corrupts itself), Edge without one:",
        "",
        *table(
            ["engine", "s", "points written/s", "search p50 / p99 ms", "errors", "counts exact"],
            [
                [
                    r["engine"],
                    r["concurrency"]["seconds"],
                    r["concurrency"]["points_written_per_s"],
                    ms(r["concurrency"]["search_under_writes"]),
                    r["concurrency"]["error_count"],
                    r["concurrency"]["count_as_expected"],
                ]
                for r in hammered
            ],
        ),
    )


def search_modes(report: Report) -> None:
    result = load("search_modes")
    title = "Search latency by mode"
    if result is None:
        report.missing(title, "search_modes")
        return
    stores = {result["store"]: result["sizes"], "qdrant local mode": result.get("local_mode", {})}
    sizes = result["sizes"]
    smallest = sizes[min(sizes, key=int)]
    report.goal(
        f"Search p50 end to end, hybrid vs dense, at {smallest['chunks']} chunks "
        f"({result['store']})",
        "—",
        f"{smallest['hybrid']['end_to_end']['p50_ms']} vs "
        f"{smallest['dense']['end_to_end']['p50_ms']} ms",
        None,
    )
    rows = [
        [
            store,
            run["chunks"],
            mode,
            run[mode]["end_to_end"]["p50_ms"],
            run[mode]["end_to_end"]["p99_ms"],
            run[mode]["store"]["p50_ms"],
            run[mode]["store"]["p99_ms"],
        ]
        for store, runs in stores.items()
        for run in runs.values()
        for mode in ("dense", "keyword", "hybrid")
    ]
    report.section(
        title,
        f"{result['queries']} queries (ten words of a chunk each), limit {result['limit']} "
        f"([bench/search_modes.py](bench/search_modes.py)); the chunks are "
        f"{result['document']}'s {result['distinct_chunks']}, repeated under new document ids "
        "up to each size. End to end is the embedder's search path (the query embedded by "
        "OpenVINO for dense and hybrid, then the store); store is the vector store's part "
        "alone. Edge is searched once its index is built (as the service's optimizer thread "
        "does after writes); local mode scores sparse vectors in Python, point by point.",
        "",
        *table(
            ["store", "chunks", "mode", "p50 ms", "p99 ms", "store p50 ms", "store p99 ms"], rows
        ),
    )


def ocr_engines(report: Report) -> None:
    result = load("ocr_engines")
    if not result:
        report.missing("OCR engines", "ocr_engines")
        return
    rows = [
        [
            e["engine"],
            e["dpi"],
            e.get("linn_recall", "—"),
            "yes" if e.get("c02_22_sentence_found") else "no",
            e.get("pages_per_s", "—"),
            e.get("cpu_s_per_page", "—"),
            e.get("peak_rss_mib", "—"),
            e.get("load_s", "—"),
        ]
        for e in result["engines"]
    ]
    extractor = result["extractor"]
    report.goal(
        "OCR word recall on linn.pdf (the extractor's chunks)",
        "≥ 0.9",
        f"{extractor['linn_recall_in_chunks']} at {extractor['pages_per_s']} pages/s",
        extractor["linn_recall_in_chunks"] >= 0.9,
    )
    report.section(
        "OCR engines",
        "The two scans of tests/corpus/scanned/ (one page each) read by each engine in a "
        f"process of its own with one thread, {result['rounds']} rounds "
        "([bench/ocr_engines.py](bench/ocr_engines.py)). Recall: the share of linn.txt's "
        "distinct words of 4+ letters found in the OCR text of linn.pdf; the sentence: "
        "c02-22.pdf's README sentence, whitespace folded. Pages/s depend on the machine's "
        "load; CPU s/page much less. The extractor uses Tesseract at 300 dpi.",
        "",
        *table(
            [
                "engine",
                "dpi",
                "linn recall",
                "c02-22 sentence",
                "pages/s",
                "CPU s/page",
                "peak MiB",
                "model load s",
            ],
            rows,
        ),
        "",
        f"The extractor's sandboxed worker (render, Tesseract, chunking): "
        f"{extractor['pages_per_s']} pages/s, recall in the chunks "
        f"{extractor['linn_recall_in_chunks']}.",
    )


def retrieval_quality(report: Report) -> None:
    result = load("retrieval_quality")
    title = "Retrieval quality (BEIR)"
    if result is None:
        report.missing(title, "retrieval_quality")
        return
    published = result.get("published", {})
    baselines = [
        [
            f"published: {name}",
            fig["ndcg_at_10"] or "—",
            fig["recall_at_10"] or "—",
            "—",
            "—",
            fig["source"],
        ]
        for name, fig in published.items()
    ]
    header = ["search", "nDCG@10", "recall@10", "p50 ms", "p99 ms", "note"]
    what = (
        f"Retrieval quality on {result['collection']} (BEIR): hybrid nDCG@10 against the "
        "published BM25 and all-MiniLM-L6-v2"
    )
    if not result["measured"]:
        report.goal(what, "beats both", "not measured", None)
        report.section(title, f"Not measured: {result['why']}.", "", *table(header, baselines))
        return
    modes = result["modes"]
    rows = [
        [name, m["ndcg_at_10"], m["recall_at_10"], m["p50_ms"], m["p99_ms"], m.get("how", "")]
        if m["measured"]
        else [name, "—", "—", "—", "—", m["why"]]
        for name, m in modes.items()
    ]
    hybrid = modes.get("hybrid", {})
    bars = [fig["ndcg_at_10"] for fig in published.values() if fig["ndcg_at_10"] is not None]
    if hybrid.get("measured"):
        report.goal(
            what,
            "beats both",
            f"{hybrid['ndcg_at_10']} vs {', '.join(map(str, bars))}",
            bool(bars) and all(hybrid["ndcg_at_10"] > bar for bar in bars),
        )
    else:
        measured = {n: m["ndcg_at_10"] for n, m in modes.items() if m["measured"]}
        report.goal(what, "beats both", f"hybrid not measured; {measured}", None)
    ingest = result["ingestion"]
    about = result.get("machine", {})
    other = [
        [split, *(fig.get(m, {}).get("ndcg_at_10", "—") for m in MODES_SHOWN)]
        for split, fig in result.get("other_splits", {}).items()
    ]
    report.section(
        title,
        f"The test split of {result['collection']} ({result['documents']} documents, "
        f"{result['queries']} queries"
        + (", a subset" if result.get("subset") else "")
        + ") uploaded as Markdown files through the gateway and searched through "
        "`/v1/search` ([bench/retrieval_quality.py](bench/retrieval_quality.py)): "
        f"{result['chunks_per_query']} chunks per query, each document ranked by its best "
        "chunk, scored by trec_eval (ir-measures). Latency is one client's round trip, "
        f"queries one after the other. Ingestion: {ingest['documents']} documents "
        f"({ingest['completed']} completed, {ingest['failed']} failed, {ingest['chunks']} "
        f"chunks) in {ingest['seconds']} s, {ingest['documents_per_min']} documents/min"
        + (f" (commit {about['commit']}, {about['date']})." if about.get("commit") else "."),
        "",
        *table(header, rows + baselines),
        *(["", f"Installed from: {installed(result)}."] if installed(result) else []),
        *(["", f"For comparison: {result['reference']}."] if result.get("reference") else []),
        *(
            [
                "",
                "nDCG@10 on the other splits, same documents (for tuning; the goal is on test):",
                "",
                *table(["split", *MODES_SHOWN], other),
            ]
            if other
            else []
        ),
    )


MODES_SHOWN = ("dense", "keyword", "hybrid")


def installed(result: Result) -> str:
    """How the collection was installed, from its ``.verified`` mark: BEIR's zip (its
    MD5) or the git source (repository, commit, path and the SHA-256 of each file)."""
    mark = result.get("collection_verified") or result.get("collection_zip_md5") or ""
    lines = mark.strip().splitlines()
    if not lines:
        return ""
    if not lines[0].startswith("git "):
        return f"BEIR's zip, MD5 {lines[0]}"
    _, repository, commit, path = lines[0].split(" ", 3)
    sums = [line.split(" ", 2) for line in lines[1:] if line.startswith("sha256 ")]
    digests = ", ".join(f"{name} `{digest[:16]}…`" for _, digest, name in sums)
    return f"rebuilt from {path} of {repository} at {commit[:12]} (SHA-256: {digests})"


def eta_accuracy(report: Report) -> None:
    result = load("eta_accuracy")
    title = "Estimated completion (ETA) accuracy"
    if result is None:
        report.missing(title, "eta_accuracy")
        return
    absolute, relative = result["abs_error_s"], result["relative_error"]
    report.goal(
        "ETA error, short documents sent at once (median, of every estimate shown)",
        "—",
        f"{absolute['median']} s (p90 {absolute['p90']} s); relative to the time left: "
        f"{relative['median']} (p90 {relative['p90']})",
        None,
    )
    report.section(
        title,
        f"{result['documents']} short Markdown documents (one chunk each) sent at once "
        "through the running system ([bench/eta_accuracy.py](bench/eta_accuracy.py)); the "
        f"tenant's listing read every {result['reading_every_s']} s until all were finished, "
        "each `estimated_completion_at` shown compared with the document's `completed_at`. "
        "Relative error: the error over the time that was left when it was read.",
        "",
        *table(
            ["measure", "value"],
            [
                ["documents completed", result["completed"]],
                ["drained in (s)", result["drain_s"]],
                ["readings of unfinished documents", result["readings_of_unfinished"]],
                ["share with an estimate", result["share_with_estimate"]],
                ["abs. error median / p90 (s)", f"{absolute['median']} / {absolute['p90']}"],
                ["relative error median / p90", f"{relative['median']} / {relative['p90']}"],
                [
                    "each document's first estimate: abs. error median / p90 (s)",
                    f"{result['first_estimate_abs_error_s']['median']} / "
                    f"{result['first_estimate_abs_error_s']['p90']}",
                ],
                [
                    "estimated ÷ actual time left, median: first / second half of the drain",
                    f"{result['estimated_over_actual_time_left_median']['first_half']} / "
                    f"{result['estimated_over_actual_time_left_median']['second_half']}",
                ],
                ["largest queue position seen", result["queue_position_max"]],
            ],
        ),
    )


def webhook_latency(report: Report) -> None:
    result = load("webhook_latency")
    if not result:
        report.missing("Webhook delivery latency", "webhook_latency")
        return
    latency = result["latency"]
    completed = latency["completed"]["from_change_s"]
    report.goal(
        "Webhook delivery, status change → receiver (completed, p50 / p99 s)",
        "—",
        f"{completed['p50']} / {completed['p99']}",
        None,
    )
    rows = [
        [
            kind,
            measure.removesuffix("_s").replace("_", " "),
            *(p[k] for k in ("count", "p50", "p90", "p99", "max")),
        ]
        for kind, measures in sorted(latency.items())
        for measure, p in measures.items()
    ]
    report.section(
        "Webhook delivery latency",
        f"{result['documents']} short text documents uploaded {result['per_request']} a request "
        "through the system as `make run` runs it, one endpoint on this machine for "
        "`completed` and `progress`, verifying every signature "
        "([bench/webhook_latency.py](bench/webhook_latency.py)). From the change: from the "
        "status's `updated_at` (the event that changed it) to the receiver, the status "
        "service's projection included; from the snapshot: from the status topic's record "
        "(the dispatcher's own share). Seconds.",
        "",
        *table(["event", "from", "deliveries", "p50", "p90", "p99", "max"], rows),
        "",
        f"{result['deliveries']} deliveries, {result['unverified']} failing verification, "
        f"{result.get('duplicates', 0)} received twice, "
        f"{result['not_delivered']} not delivered; the last completion "
        f"{result['seconds_to_last_completion']} s after the first upload.",
    )


def chunks(report: Report) -> None:
    result = load("chunks")
    title = "Chunks: how full, whole words, speed"
    if not result:
        report.missing(title, "chunks")
        return
    runs = result["chunkings"]
    before, after = runs["before"], runs["after"]
    report.goal(
        "Median tokens per chunk, short documents (budget 200)",
        "filled (up from 123)",
        f"{after['short_documents']['median']} (before: {before['short_documents']['median']})",
        after["short_documents"]["median"] > before["short_documents"]["median"],
    )
    report.goal(
        "Chunk boundaries inside a word (corpus)",
        "0",
        f"{after['boundaries_inside_a_word']} (before: {before['boundaries_inside_a_word']})",
        after["boundaries_inside_a_word"] == 0,
    )
    rows = [
        [name, label, *(run[which][k] for k in ("chunks", "p10", "p25", "median", "p75", "p90"))]
        for which, label in (("short_documents", "short"), ("all", "all"))
        for name, run in runs.items()
    ]
    report.section(
        title,
        f"The {result['documents']} corpus files with text (no OCR) cut by the chunker "
        f"before issue 24's rules (commit {result['before_commit']}, loaded from git) and by "
        f"this tree's, in the same run ([bench/chunks.py](bench/chunks.py)); tokens of the "
        f"local model, budget {result['budget_tokens']}, overlap {result['overlap_tokens']}. "
        f"Short documents: the {result['short_documents']} files whose {result['short_rule']}.",
        "",
        *table(["chunker", "documents", "chunks", "p10", "p25", "median", "p75", "p90"], rows),
        "",
        f"Boundaries inside a word: {before['boundaries_inside_a_word']} before, "
        f"{after['boundaries_inside_a_word']} after. Chunks carrying a title from the text: "
        f"{after['chunks_with_a_title_from_the_text']}, a heading path: "
        f"{after['chunks_with_a_heading_path']} (the others get the file's name as title in "
        "the extractor). Cutting every page (reading excluded), medians of "
        f"{result['rounds']} rounds: {before['seconds_all']} s before, "
        f"{after['seconds_all']} s after (ratio {result['speed_ratio_after_vs_before']}); "
        f"GeoTopo alone {before.get('seconds_long_pdf')} s and {after.get('seconds_long_pdf')} s.",
    )


def ocr_throughput(report: Report) -> None:
    result = load("ocr_throughput")
    if not result:
        report.missing("OCR on and off, and the OCR stage", "ocr_throughput")
        return
    on, off = result["text_pdfs"]["ocr_on"], result["text_pdfs"]["ocr_off"]
    ratio = result["ocr_on_over_off"]
    report.goal(
        "Text PDFs through the system, OCR on ÷ off (docs/min)",
        "≥ 0.95 (not slower)",
        f"{ratio} ({on['documents_per_min']} vs {off['documents_per_min']} documents/min)",
        ratio >= 0.95 and not result["mismatches"],
    )
    rows = [
        [
            name,
            f["documents_per_min"],
            f["pages_per_s"],
            f["chunks_per_s"],
            f["cpu_s_per_document"],
            f["cores_busy"],
            f["others_cores_busy"],
        ]
        for name, f in (("OCR on (default)", on), ("OCR off", off))
    ]
    scan_rows = [
        [
            consumers,
            s["runs"],
            s["seconds"],
            s["ocr_pages_per_s"],
            "yes" if s["all_completed"] else "no",
            "; ".join(
                ", ".join(f"{name} {int(n)}" for name, n in ranges.items())
                for ranges in s["ranges_by_consumer"]
            ),
        ]
        for consumers, s in result["scan"].items()
    ]
    one, two = result["scan"].get("1"), result["scan"].get("2")
    scaling = (
        f" Two OCR consumers: {round(two['ocr_pages_per_s'] / one['ocr_pages_per_s'], 2)}× "
        "the pages/s of one."
        if one and two
        else ""
    )
    report.section(
        "OCR on and off, and the OCR stage",
        f"The corpus' PDFs with a text layer ({result['documents']} documents, "
        f"{result['pages']} pages a run: tests/corpus/pdf/ without its picture-only files and "
        "the 117-page one, "
        f"{result['copies']} times) through the system with 1 extractor and 1 embedder, "
        "as bench/efficiency.py runs it, with OCR on (the default, the OCR consumer "
        "running) and off (`DOCFLOW_OCR_LANGUAGES=''`), in turns; medians of "
        f"{result['rounds']} rounds ([bench/ocr_throughput.py](bench/ocr_throughput.py)). "
        f"Qdrant: {result['qdrant']}. Documents ending otherwise than the single-process "
        f"floor: {len(result['mismatches'])}.",
        "",
        *table(
            [
                "configuration",
                "docs/min",
                "pages/s",
                "chunks/s",
                "CPU-s/doc",
                "cores busy",
                "others' cores busy",
            ],
            rows,
        ),
        "",
        f"OCR on ÷ off: {ratio}.",
        "",
        f"A scan of {result['scan_pages']} pages (the corpus' two scans in turn) in ranges of "
        f"{result['range_pages']} pages, uploaded alone, from upload to completed, "
        "with 1 and 2 OCR consumers:",
        "",
        *table(
            ["OCR consumers", "runs", "seconds", "OCR pages/s", "completed", "ranges read by"],
            scan_rows,
        ),
        "",
        f"Medians.{scaling}",
    )


def splice(existing: str, report: Report) -> str:
    """``existing`` (BENCHMARKS.md) with each of ``report``'s sections put in place of
    the one of the same title, and its goal rows in place of the rows of that
    section's goals (those that begin with the title, up to its parenthesis)."""
    lines = existing.split("\n")
    for written in report.sections:
        title = written.split("\n", 1)[0]
        start = lines.index(title)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), None)
        stop = len(lines) if end is None else end
        lines[start:stop] = written.split("\n")
        prefix = f"| {title.removeprefix('## ').split(' (')[0]}"
        old = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        rows = [
            "| " + " | ".join([what, goal, figure, mark(met)]) + " |"
            for what, goal, figure, met in report.goals
        ]
        if old:
            lines[old[0] : old[-1] + 1] = rows
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        help="write only this section (a function's name, e.g. retrieval_quality) and its "
        "goal rows into the BENCHMARKS.md there is, leaving the rest as it is",
    )
    args = parser.parse_args()
    report = Report()
    for section in (
        upload_latency,
        efficiency,
        architectures,
        stage_figures,
        engines,
        ocr_engines,
        retrieval_quality,
        eta_accuracy,
        webhook_latency,
        vector_store,
        chunks,
        ocr_throughput,
        search_modes,
    ):
        if not args.only or section.__name__ == args.only:
            section(report)
    if args.only:
        SUMMARY.write_text(splice(SUMMARY.read_text(), report))
        return
    about = machine()
    text = [
        "# docflow benchmarks",
        "",
        "Written by `make bench` (bench/report.py) from the JSON results in bench/results/; "
        "every comparison is measured in one run, in turns, and reported as medians and "
        "ratios. Run it again on your machine: the figures below are this machine's.",
        "",
        f"**Machine:** {about['cpus']} × {about['cpu_model']}, {about['memory_gib']} GiB, "
        f"{about['system']}; Python {about['python']}; {about['java']}; "
        f"commit {about['commit']}; {about['date']}.",
        "",
        "## Goals",
        "",
        *table(
            ["measure", "goal", "figure", "verdict"],
            [[what, goal, figure, mark(met)] for what, goal, figure, met in report.goals],
        ),
        "",
        *report.sections,
    ]
    SUMMARY.write_text("\n".join(text))
    print(f"wrote {SUMMARY.relative_to(ROOT)} and {PLOTS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
