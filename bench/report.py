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
    best = max((n for n in runs if n != "numpy"), key=lambda n: runs[n]["chunks_per_s"])
    report.goal(
        "Embedding engine ÷ numpy (chunks/s, the service's engine: OpenVINO f32)",
        "≥ 5",
        f"{runs['openvino_f32']['speedup_vs_numpy']} ({runs['openvino_f32']['chunks_per_s']} vs "
        f"{runs['numpy']['chunks_per_s']} chunks/s; fastest: {best} "
        f"{runs[best]['speedup_vs_numpy']}×)",
        runs["openvino_f32"]["speedup_vs_numpy"] >= 5,
    )
    report.section(
        title,
        f"all-MiniLM-L6-v2 on {result['chunks']} chunks of {result['document']}, batch "
        f"{result['batch_size']}, {result['threads']} threads, each engine in turn "
        f"({result['rounds']} rounds, medians): the numpy transformer, and LangChain4j's "
        "ONNX export on ONNX Runtime and OpenVINO (bfloat16 "
        + ("available" if result["bf16_available"] else "not available on this CPU")
        + "). Cosines are each chunk's vector against numpy's; 0.99999 is the bar for "
        "the same vectors (same model id).",
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


def search_modes(report: Report) -> None:
    result = load("search_modes")
    title = "Search latency by mode"
    if result is None:
        report.missing(title, "search_modes")
        return
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
            run["chunks"],
            mode,
            run[mode]["end_to_end"]["p50_ms"],
            run[mode]["end_to_end"]["p99_ms"],
            run[mode]["store"]["p50_ms"],
            run[mode]["store"]["p99_ms"],
        ]
        for run in sizes.values()
        for mode in ("dense", "keyword", "hybrid")
    ]
    report.section(
        title,
        f"{result['queries']} queries (ten words of a chunk each), limit {result['limit']}, "
        f"on {result['store']} ([bench/search_modes.py](bench/search_modes.py)); the chunks "
        f"are {result['document']}'s {result['distinct_chunks']}, repeated under new "
        "document ids up to each size. End to end is the embedder's search path (the "
        "query embedded by OpenVINO for dense and hybrid, then Qdrant); store is Qdrant's "
        "part alone. Keyword search needs no model call; local mode scores sparse vectors "
        "in Python, point by point.",
        "",
        *table(["chunks", "mode", "p50 ms", "p99 ms", "store p50 ms", "store p99 ms"], rows),
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


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    report = Report()
    for section in (
        upload_latency,
        efficiency,
        architectures,
        stage_figures,
        engines,
        ocr_engines,
        search_modes,
    ):
        section(report)
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
