"""OpenTelemetry export: throughput from a log, and the live exporter's cost per log call.

    python benchmarks/bench_otel.py            # 100,000-entry log, 9 rounds of live cost
    python benchmarks/bench_otel.py --quick    # 20,000 entries, 5 rounds

1. Export throughput: `export_otlp` (the code behind `promptlab export otlp`) sends a
   100,000-entry log (traces of a span and two calls, standalone calls, failed calls and
   feedback; about 670 bytes per entry) as OTLP/HTTP protobuf in batches of 512 to a loopback receiver running in
   another process (it reads each request and answers 200, so the receiver does not compete
   with the exporter for the GIL). Spans per second, median of 3 runs (`--all`).
   The same log with `content=True` (texts redacted and sent) is measured too.
2. Live cost: `logger.log(...)` µs per call with and without the live exporter attached
   (interleaved rounds of 5,000 calls, medians; the exporter's threads convert and send
   in the background meanwhile), and the sink call alone (`live(entry)`: the enqueue).
   Target: < 10 µs added in the caller's thread.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_logging import SYSTEM, USER  # the same call as the logging benchmark

from promptlab.logs.logger import Logger

RESPONSE = ("BUG: the loop starts at index 1, so the first element is never added to the total "
            "and the average is too small. Fix: iterate `for x in xs: total += x`, and guard "
            "against an empty list before dividing (ZeroDivisionError).")


def _serve(port_queue: multiprocessing.Queue) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def call_fields(i: int) -> dict:
    return dict(model="gpt-4o-mini", provider="openai", system_prompt=SYSTEM, user_message=USER,
                assistant_response=RESPONSE, input_tokens=812, output_tokens=96,
                latency_ms=1234.5, config={"temperature": 0.2, "max_tokens": 800},
                prompt_id="code-review", prompt_version="v2", tags=["support"],
                metadata={"user": f"u-{i % 100}"})


def write_log(log_dir: Path, n: int) -> int:
    """About n entries: per group of 6, a trace (root span, child span, a call inside),
    a standalone call, a failed call and a feedback entry."""
    logger = Logger(log_dir)
    written = 0
    i = 0
    while written < n:
        with logger.trace("answer-question"):
            with logger.span("retrieve"):
                pass
            logger.log(**call_fields(i))
        entry = logger.log(**call_fields(i))
        logger.log(model="gpt-4o", user_message=USER, latency_ms=30000.0, status="error",
                   error="TimeoutError: no reply in 30 s")
        logger.feedback(entry["id"], helpful=True, rating=4)
        written += 6
        i += 1
    logger.close()
    return written


def export_throughput(log_dir: Path, url: str, runs: int, content: bool) -> tuple[float, int]:
    from promptlab.otel.export import export_otlp

    rates = []
    sent = 0
    for _ in range(runs):
        summary = export_otlp(log_dir, endpoint=url, all_=True, content=content)
        assert summary.ok, summary.line()
        sent = summary.sent
        rates.append(summary.sent / summary.seconds)
    return statistics.median(rates), sent


def sdk_floor(log_dir: Path, runs: int) -> float:
    """Spans/s of the SDK's own protobuf encoding alone (spans built beforehand, no HTTP):
    what any exporter built on the SDK pays per span."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from promptlab.logs.reader import read_entries
    from promptlab.otel.spans import SpanMaker, make_resource

    maker = SpanMaker(make_resource())
    spans = [maker.make(e) for e in read_entries(log_dir)]
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for i in range(0, len(spans), 512):
            encode_spans(spans[i:i + 512]).SerializePartialToString()
        rates.append(len(spans) / (time.perf_counter() - start))
    return statistics.median(rates)


def live_cost(log_dir: Path, url: str, rounds: int, per_round: int) -> dict[str, float]:
    from promptlab.otel.export import resolve_target
    from promptlab.otel.live import LiveExporter

    plain = Logger(log_dir / "plain")
    live_logger = Logger(log_dir / "live")
    live = LiveExporter(resolve_target(url))
    live_logger.add_sink(live)
    fields = call_fields(0)
    plain.log(**fields)
    live_logger.log(**fields)
    live.flush()

    def per_call(logger: Logger) -> float:
        log = logger.log
        start = time.perf_counter_ns()
        for _ in range(per_round):
            log(model="gpt-4o-mini", provider="openai", system_prompt=SYSTEM, user_message=USER,
                assistant_response=RESPONSE, input_tokens=812, output_tokens=96,
                latency_ms=1234.5, config={"temperature": 0.2, "max_tokens": 800},
                prompt_id="code-review", prompt_version="v2", tags=["support"],
                metadata={"user": "u-1"})
        return (time.perf_counter_ns() - start) / per_round / 1000

    def paced(logger: Logger) -> float:
        """Median µs of single calls spaced 0.5 ms apart, as calls between LLM replies are:
        the background threads run in the gaps, as they would while the app waits."""
        log = logger.log
        times = []
        for _ in range(per_round // 5):
            start = time.perf_counter_ns()
            log(model="gpt-4o-mini", provider="openai", system_prompt=SYSTEM, user_message=USER,
                assistant_response=RESPONSE, input_tokens=812, output_tokens=96,
                latency_ms=1234.5, config={"temperature": 0.2, "max_tokens": 800},
                prompt_id="code-review", prompt_version="v2", tags=["support"],
                metadata={"user": "u-1"})
            times.append(time.perf_counter_ns() - start)
            time.sleep(0.0005)
        return statistics.median(times) / 1000

    without, with_live, deltas, enqueue = [], [], [], []
    paced_plain, paced_live = [], []
    entry = plain.log(**fields)
    for _ in range(rounds):
        a = per_call(plain)
        b = per_call(live_logger)
        live.flush(60)
        paced_plain.append(paced(plain))
        paced_live.append(paced(live_logger))
        live.flush(60)
        without.append(a)
        with_live.append(b)
        deltas.append(b - a)
        # the sink call alone, with the drain thread idle (a full queue is never reached)
        start = time.perf_counter_ns()
        for _ in range(per_round):
            live(entry)
        enqueue.append((time.perf_counter_ns() - start) / per_round / 1000)
        live.flush(60)
    live.shutdown()
    return {"without": statistics.median(without), "with": statistics.median(with_live),
            "delta": statistics.median(deltas), "enqueue": statistics.median(enqueue),
            "paced_without": statistics.median(paced_plain),
            "paced_with": statistics.median(paced_live),
            "paced_delta": statistics.median(b - a for a, b in zip(paced_plain, paced_live, strict=True)),
            "dropped": live.dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    rounds = 5 if args.quick else 9

    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue = ctx.Queue()
    receiver = ctx.Process(target=_serve, args=(ports,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log_dir = Path(tmp) / "logs"
            t0 = time.perf_counter()
            count = write_log(log_dir, n)
            size = sum(p.stat().st_size for p in log_dir.glob("*.jsonl"))
            print(f"log: {count:,} entries, {size / count:.0f} bytes/entry "
                  f"(written in {time.perf_counter() - t0:.1f} s)")
            floor = sdk_floor(log_dir, 3)
            rate, sent = export_throughput(log_dir, url, 3, content=False)
            print(f"export, attributes only:  {rate:,.0f} spans/s  ({sent:,} spans, "
                  f"median of 3, batches of 512)")
            print(f"  SDK protobuf encoding alone, same spans: {floor:,.0f} spans/s "
                  f"(export = {rate / floor:.2f} x that floor)")
            rate, sent = export_throughput(log_dir, url, 3, content=True)
            print(f"export, with content:     {rate:,.0f} spans/s  ({sent:,} spans)")
            cost = live_cost(Path(tmp), url, rounds, 5_000)
            print(f"calls 0.5 ms apart, median µs per logger.log: {cost['paced_without']:.2f} "
                  f"without, {cost['paced_with']:.2f} with live export "
                  f"(+{cost['paced_delta']:.2f} µs; target < 10)")
            print(f"back-to-back calls, µs/call: {cost['without']:.2f} without, "
                  f"{cost['with']:.2f} with live export (+{cost['delta']:.2f} µs: the "
                  "background conversion and encoding share the GIL)")
            print(f"the sink call alone (enqueue):  {cost['enqueue']:.2f} µs/call; "
                  f"dropped: {cost['dropped']}")
    finally:
        receiver.terminate()


if __name__ == "__main__":
    main()
