"""The runner: every cell through the provider, scored, logged — concurrently and safely.

    result = run_experiment(load_experiment("code-review-ab"), RunOptions(limit=10))

- Concurrency: `concurrency` worker threads (daemon threads, so an abandoned call can
  never keep the process alive).
- Retries: a retryable provider error (rate limit, overload, timeout, dropped
  connection) is retried up to `max_retries` times, waiting `backoff_s * 2**attempt`
  seconds with jitter (capped at `max_backoff_s`), or what the server's Retry-After says.
- Deadlines: every attempt gets at most `timeout_s` of wall-clock time, and a cell's
  whole retry sequence at most `(max_retries + 1) * timeout_s + max_retries *
  max_backoff_s`; past either the cell is logged as a timeout error.
- Every finished call is logged as an ordinary entry — a failed one with `status: error`
  — carrying `run_id`, `experiment`, `variant`, `item_id`, `unit_id`, `repeat`, `scores`
  and the prompt stamp. The run goes on after errors (a response with unusable fields, a
  prompt that cannot be rendered within the template limits), but stops early once more
  than `max_error_rate` of the finished cells failed, or as soon as a cell could not be
  logged. At the end `RunResult.failed` says whether the run failed as a whole: more
  than `max_error_rate` of its cells failed (however few), nothing succeeded, a cell
  could not be logged, or a scorer failed on every cell it scored.
- Ctrl-C (KeyboardInterrupt in the calling thread) stops taking new cells, lets the calls
  in flight finish and be logged, and returns; a second Ctrl-C returns at once.
  `resume=True` then skips every cell already logged successfully.
- Identical requests are answered from the response cache unless `cache=False`.

The runner never prints: progress goes to the `reporter` the caller passes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from promptlab.errors import (
    ExperimentError,
    LogError,
    PromptlabError,
    ProviderError,
    ScorerError,
)
from promptlab.experiments.cache import ResponseCache, cache_key
from promptlab.experiments.logged import done_keys, latest_run, logged_cells
from promptlab.experiments.plan import Cell, plan_cells
from promptlab.experiments.results import (
    Progress,
    Reporter,
    RunOptions,
    RunResult,
    VariantSummary,
    new_run_id,
)
from promptlab.experiments.retry import Interrupted, RetryPolicy, call_with_retries
from promptlab.experiments.scorers import (
    LlmJudge,
    ScoreInput,
    Scorer,
    ScorerRuntime,
    build_scorers,
    overall,
)
from promptlab.experiments.spec import MAX_CONCURRENCY, MAX_SECONDS, Experiment, provider_spec
from promptlab.providers import create_provider
from promptlab.providers.base import Provider, ProviderSpec, Request, Response

_TICK_S = 0.1
_BATCH_S = 0.01


def run_experiment(experiment: Experiment, options: RunOptions | None = None, *,
                   logger: Any = None, reporter: Reporter | None = None) -> RunResult:
    """Run `experiment` (see the module docstring) and return what happened."""
    options = options or RunOptions()
    if options.limit is not None and options.limit < 1:
        raise ExperimentError(f"--limit must be ≥ 1, got {options.limit}")
    if options.concurrency is not None and not 1 <= options.concurrency <= MAX_CONCURRENCY:
        raise ExperimentError(f"--concurrency must be 1 to {MAX_CONCURRENCY}, "
                              f"got {options.concurrency}")
    if options.timeout_s is not None and not 0 < options.timeout_s <= MAX_SECONDS:  # also NaN
        raise ExperimentError(f"--timeout must be a number of seconds > 0 and ≤ {MAX_SECONDS:g}, "
                              f"got {options.timeout_s!r}")
    if options.max_retries is not None and not 0 <= options.max_retries <= 100:
        raise ExperimentError(f"--max-retries must be 0 to 100, got {options.max_retries}")
    if experiment.provider is None and not options.dry_run:
        raise ExperimentError(f"{experiment.path.name}: no [provider] table; add one "
                              "(type = \"openai\" | \"anthropic\" | \"command\" | \"python\" | "
                              "\"echo\")")
    items = experiment.load_items(options.limit)
    cells = plan_cells(experiment, items)
    versions = {v: experiment.prompt_for(v).version.name for v in experiment.active_variants}
    log_dir = experiment.settings.log_dir
    run_id = options.run_id
    todo = cells
    # The run's summary shows the primary metric, else the first scorer.
    shown = experiment.metrics.primary or next((s.name for s in experiment.scorers), None)
    result = RunResult(experiment=experiment.name, run_id="", design=experiment.dataset.design,
                       primary=shown, planned=len(cells), dry_run=options.dry_run)
    for variant in experiment.active_variants:
        result.variants[variant] = VariantSummary(variant, versions[variant])
    for cell in cells:
        result.variants[cell.variant].planned += 1
    if options.resume:
        logged = logged_cells(log_dir, experiment.name)
        done = done_keys(logged, versions)
        todo = [c for c in cells if c.key not in done]
        run_id = run_id or latest_run(logged)
        result.skipped = len(cells) - len(todo)
        for cell in cells:
            if cell.key in done:
                result.variants[cell.variant].skipped += 1
    result.run_id = run_id or new_run_id()
    if options.dry_run:
        _check_setup(experiment)
        unrenderable = [c.error for c in todo if c.error is not None]
        if unrenderable:
            result.errors = len(unrenderable)
            result.first_errors = unrenderable[:3]
            result.failed = (f"{len(unrenderable)} of {len(todo)} cells cannot be rendered "
                             "within the template limits")
        return result
    runner = _Runner(experiment, options, result, logger=logger, reporter=reporter or Reporter())
    return runner.run(todo)


class _Runner:
    def __init__(self, experiment: Experiment, options: RunOptions, result: RunResult, *,
                 logger: Any, reporter: Reporter):
        self.experiment = experiment
        self.options = options
        self.result = result
        self.reporter = reporter
        run = experiment.run
        self.concurrency = options.concurrency or run.concurrency
        self.timeout_s = options.timeout_s or run.timeout_s
        self.max_retries = run.max_retries if options.max_retries is None else options.max_retries
        self.stop = threading.Event()
        self.retry = RetryPolicy(
            max_retries=self.max_retries, backoff_s=run.backoff_s,
            max_backoff_s=run.max_backoff_s, max_retry_after_s=run.max_retry_after_s,
            deadline_s=(self.max_retries + 1) * self.timeout_s
            + self.max_retries * run.max_backoff_s)
        if logger is None:
            from promptlab.logs.logger import Logger

            _check_log_dir(experiment.settings.log_dir)
            # strict: a cell that cannot be written raises here and stops the run.
            logger = Logger(experiment.settings.log_dir, strict=True)
        self.logger = logger
        self.redact = _cache_redactor(experiment, logger)
        self.provider = create_provider(experiment.provider)  # type: ignore[arg-type]
        self.judges: dict[int, Provider] = {}
        self.scoring = threading.local()  # the cell being scored, for judge call entries
        self.judge_lock = threading.Lock()
        self.cache: ResponseCache | None = None
        try:
            runtime = ScorerRuntime(base_dir=experiment.base_dir,
                                    registry=_registry(experiment),
                                    complete=self._judge_complete,
                                    make_provider_spec=self._judge_spec)
            self.scorers: list[Scorer] = build_scorers(experiment.scorers, runtime)
            if options.cache and run.cache and self.provider.cacheable:
                self.cache = ResponseCache(experiment.settings.log_dir / "cache.db",
                                           redact=self.redact)
        except BaseException:
            self.provider.close()
            raise

    # -- the loop ----------------------------------------------------------------------------

    def run(self, todo: list[Cell]) -> RunResult:
        result = self.result
        started = time.perf_counter()
        self.reporter.start(result, len(todo), self.concurrency, self.provider.type)
        work: queue.SimpleQueue[Cell | None] = queue.SimpleQueue()
        for cell in todo:
            work.put(cell)
        outcomes: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        workers = min(self.concurrency, max(1, len(todo)))
        for _ in range(workers):
            work.put(None)
        self.in_flight = 0
        self.flight_lock = threading.Lock()
        threads = [threading.Thread(target=self._worker, args=(work, outcomes), daemon=True,
                                    name=f"promptlab-runner-{i}") for i in range(workers)]
        for thread in threads:
            thread.start()
        alive = workers
        last_update = 0.0
        interrupts = 0
        pending: list[tuple[str, Any]] = []
        try:
            while alive:
                try:
                    if not pending:
                        with contextlib.suppress(queue.Empty):
                            pending.append(outcomes.get(timeout=_TICK_S))
                        while True:  # take everything that is ready: one wake-up, many cells
                            try:
                                pending.append(outcomes.get_nowait())
                            except queue.Empty:
                                break
                    busy = bool(pending)
                    while pending:
                        kind, payload = pending.pop(0)
                        if kind == "exit":
                            alive -= 1
                        elif kind == "cell":
                            self._record(payload)
                        elif kind == "crash":
                            self.stop.set()
                            raise payload
                    now = time.perf_counter()
                    if now - last_update >= _TICK_S:
                        last_update = now
                        self.reporter.update(self._progress(started))
                    if busy and alive:
                        time.sleep(_BATCH_S)  # let outcomes gather rather than switch per cell
                except KeyboardInterrupt:
                    interrupts += 1
                    self.stop.set()
                    if interrupts > 1:
                        self.reporter.note("Abandoning the calls still in flight.")
                        break
                    result.stopped = "interrupted"
                    result.stop_reason = "interrupted (Ctrl-C)"
                    with self.flight_lock:
                        flying = self.in_flight
                    if flying:
                        self.reporter.note(f"Stopping: waiting for {flying} call(s) in flight to "
                                           "finish and be logged (Ctrl-C again to quit now).")
        finally:
            result.elapsed_s = time.perf_counter() - started
            self.reporter.finish(self._progress(started))
            self._close()
        result.failed = _verdict(result, self.experiment.run.max_error_rate)
        return result

    def _worker(self, work: queue.SimpleQueue[Cell | None],
                outcomes: queue.SimpleQueue[tuple[str, Any]]) -> None:
        try:
            while not self.stop.is_set():
                cell = work.get()
                if cell is None:
                    break
                with self.flight_lock:
                    self.in_flight += 1
                try:
                    outcome = self._run_cell(cell)
                finally:
                    with self.flight_lock:
                        self.in_flight -= 1
                if outcome is not None:
                    outcomes.put(("cell", outcome))
        except BaseException as exc:  # a bug, not a provider error: stop the run, report it
            outcomes.put(("crash", exc))
        finally:
            outcomes.put(("exit", None))

    def _record(self, outcome: _Outcome) -> None:
        result = self.result
        result.record(outcome.variant, outcome.entry, outcome.error, outcome.cache_hit,
                      outcome.scorer_errors, outcome.scored)
        run = self.experiment.run
        if outcome.unlogged is not None:
            result.unlogged += 1
            if result.stopped is None:
                result.stopped = "log"
                result.stop_reason = f"stopped: a cell could not be logged: {outcome.unlogged}"
                self.stop.set()
                self.reporter.note(result.stop_reason.capitalize())
        if (result.stopped is None and result.done >= run.min_cells_for_error_rate
                and result.errors / result.done > run.max_error_rate):
            result.stopped = "error_rate"
            result.stop_reason = (f"stopped early: {result.errors} of {result.done} cells failed "
                                  f"({result.errors / result.done:.0%}), more than [run] "
                                  f"max_error_rate = {run.max_error_rate:g}")
            self.stop.set()
            self.reporter.note(result.stop_reason.capitalize())

    def _progress(self, started: float) -> Progress:
        r = self.result
        with self.flight_lock:
            flying = self.in_flight
        return Progress(total=r.planned - r.skipped, done=r.done, errors=r.errors,
                        cache_hits=r.cache_hits, in_flight=flying,
                        elapsed_s=time.perf_counter() - started)

    def _close(self) -> None:
        self.provider.close()
        for judge in self.judges.values():
            judge.close()
        if self.cache is not None:
            self.cache.close()

    # -- one cell ----------------------------------------------------------------------------

    def _params(self, cell: Cell) -> dict[str, Any]:
        """The prompt's config (front matter) overridden by the provider's params."""
        return {**cell.rendered.config, **self.experiment.provider.params}  # type: ignore[union-attr]

    def _run_cell(self, cell: Cell) -> _Outcome | None:
        rendered = cell.rendered
        spec = self.experiment.provider
        request = Request(messages=rendered.messages, model=spec.model or rendered.model,  # type: ignore[union-attr]
                          params=self._params(cell), repeat=cell.repeat,
                          timeout_s=self.timeout_s)
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        metadata: dict[str, Any] = {}
        cache_hit = False
        try:
            if cell.error is not None:  # the prompt could not be rendered for this item
                raise ProviderError(cell.error)
            response = None
            key = None
            if self.cache is not None:
                key = cache_key(self.provider.type, self.provider.endpoint, request)
                response = self.cache.get(key)
                cache_hit = response is not None
            if response is None:
                response, attempts = self._call(self.provider, request)
                if attempts > 1:
                    metadata["attempts"] = attempts
                response.check(f"provider {self.provider.type!r}")
                if key is not None:
                    self.cache.put(key, response, self.provider.type)  # type: ignore[union-attr]
            else:
                metadata["cache"] = "hit"
                response.check("the response cache")
        except Interrupted:
            return None
        except ProviderError as exc:
            attempts = getattr(exc, "attempts", 1)
            if attempts > 1:
                metadata["attempts"] = attempts
            return self._failed(cell, request, started_ns, str(exc),
                                (time.perf_counter() - t0) * 1000, metadata)
        latency = response.latency_ms or (time.perf_counter() - t0) * 1000
        try:
            scores, errors = self._score(cell, response, latency, metadata)
        except Interrupted:
            return None
        if errors:
            metadata["scorer_errors"] = errors
        try:
            entry = self._log(cell, request, started_ns, status="ok", response=response,
                              latency_ms=latency, scores=scores, metadata=metadata)
        except LogError as exc:
            if not _is_entry_error(exc):
                return _Outcome(cell.variant, None, error=str(exc), unlogged=str(exc))
            # A field the provider returned cannot be logged: the cell is an error that
            # names it, and the run goes on.
            metadata.pop("scorer_errors", None)
            return self._failed(cell, request, started_ns, f"unusable response: {exc}",
                                latency, metadata)
        return _Outcome(cell.variant, entry, cache_hit=cache_hit, scorer_errors=errors,
                        scored=bool(self.scorers))

    def _failed(self, cell: Cell, request: Request, started_ns: int, error: str,
                latency_ms: float, metadata: dict[str, Any]) -> _Outcome:
        """Log `cell` as an error entry (or say that it could not be logged)."""
        try:
            entry = self._log(cell, request, started_ns, status="error", error=error,
                              latency_ms=latency_ms, metadata=metadata)
        except LogError as exc:
            return _Outcome(cell.variant, None, error=error, unlogged=str(exc))
        return _Outcome(cell.variant, entry, error=error)

    def _call(self, provider: Provider, request: Request) -> tuple[Response, int]:
        return call_with_retries(provider, request, self.retry, self.stop)

    def _score(self, cell: Cell, response: Response, latency: float,
               metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        if not self.scorers:
            return {}, {}
        item = cell.item
        inp = ScoreInput(output=response.text, item_id=item.id, vars=item.vars,
                         expected=item.expected, metadata=item.metadata, variant=cell.variant,
                         latency_ms=latency, usage=response.usage(),
                         prompt=cell.rendered.text)
        scores: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for scorer in self.scorers:
            self.scoring.context = {"experiment": self.experiment.name, "variant": cell.variant,
                                    "item_id": item.id, "repeat": cell.repeat,
                                    "scorer": scorer.spec.name}
            try:
                scores[scorer.spec.name] = scorer(inp)
            except Interrupted:
                raise  # stopped while a judge waited to retry: the cell is not logged
            except (ScorerError, ProviderError) as exc:
                errors[scorer.spec.name] = str(exc)
            except PromptlabError as exc:
                errors[scorer.spec.name] = str(exc)
            if isinstance(scorer, LlmJudge):
                metadata.setdefault("judges", {})[scorer.spec.name] = scorer.judge_ref
        if len(self.scorers) > 1:
            combined = overall(scores, self.experiment.scorers)
            if combined is not None:
                scores["overall"] = combined
        return scores, errors

    def _log(self, cell: Cell, request: Request, started_ns: int, *, status: str,
             latency_ms: float, metadata: dict[str, Any], response: Response | None = None,
             error: str | None = None, scores: dict[str, Any] | None = None) -> dict[str, Any]:
        from promptlab.logs.entry import format_timestamp

        rendered = cell.rendered
        stamp = rendered.stamp
        messages = rendered.messages
        plain = len(messages) <= 2 and sum(m["role"] == "user" for m in messages) == 1 and all(
            m["role"] in ("system", "user") for m in messages)
        fields: dict[str, Any] = {
            "timestamp": format_timestamp(started_ns),
            "model": self._model(request, response),
            "provider": self.provider.type,
            "config": request.params,
            "system_prompt": rendered.system,
            "user_message": rendered.user,
            "messages": None if plain else messages,
            "latency_ms": round(latency_ms, 3),
            "tags": self.experiment.tags,
            "metadata": metadata,
            "prompt_id": stamp.get("prompt_id"),
            "prompt_version": stamp.get("prompt_version"),
            "prompt_label": stamp.get("prompt_label"),
            "prompt_sha": stamp.get("prompt_sha"),
            "prompt_commit": stamp.get("prompt_commit"),
            "prompt_dirty": stamp.get("prompt_dirty"),
            "run_id": self.result.run_id,
            "experiment": self.experiment.name,
            "variant": cell.variant,
            "unit_id": cell.item.unit_id,
            "item_id": cell.item.id,
            "repeat": cell.repeat,
            "scores": scores,
            "status": status,
            "error": error,
        }
        if response is not None:
            fields["assistant_response"] = response.text
            fields.update(response.usage())
        logger = self.logger
        dropped = getattr(logger, "dropped", 0)
        entry = logger.log(**fields)
        if getattr(logger, "dropped", 0) > dropped:  # a lenient logger warned and dropped it
            raise LogError(f"the entry was not written to {self.experiment.settings.log_dir}"
                           " (see the warning above)")
        return entry

    def _model(self, request: Request, response: Response | None) -> str | None:
        if response is not None and response.model and (
                self.provider.model_from_response or not request.model):
            return response.model
        return request.model

    # -- judges ------------------------------------------------------------------------------

    def _judge_spec(self, table: dict[str, Any], where: str) -> ProviderSpec:
        from promptlab.providers import validate_provider

        spec = provider_spec(table, self.experiment.base_dir, f"{where} provider")
        validate_provider(spec)
        return spec

    def _judge_complete(self, spec: ProviderSpec | None, rendered: Any) -> str:
        """Run a judge prompt (with retries and the cache) and log the call.

        Judge calls are logged as ordinary entries stamped with the judge prompt, tagged
        `judge` and without experiment/variant fields (so they never count as cells); their
        `metadata.judge_for` names the cell they scored.
        """
        if spec is None:
            provider, spec = self.provider, self.experiment.provider
        else:
            with self.judge_lock:
                provider = self.judges.get(id(spec))
                if provider is None:
                    provider = self.judges[id(spec)] = create_provider(spec)
        params = {**rendered.config, **spec.params}  # type: ignore[union-attr]
        request = Request(messages=rendered.messages, model=spec.model or rendered.model,  # type: ignore[union-attr]
                          params=params, timeout_s=self.timeout_s)
        key = None
        if self.cache is not None and provider.cacheable:
            key = cache_key(provider.type, provider.endpoint, request)
            hit = self.cache.get(key)
            if hit is not None:
                return hit.text
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        try:
            response, _ = call_with_retries(provider, request, self.retry, self.stop)
        except ProviderError as exc:
            self._log_judge(provider, request, rendered, started_ns, t0, None, str(exc))
            raise
        if key is not None:
            self.cache.put(key, response, provider.type)  # type: ignore[union-attr]
        self._log_judge(provider, request, rendered, started_ns, t0, response, None)
        return response.text

    def _log_judge(self, provider: Provider, request: Request, rendered: Any, started_ns: int,
                   t0: float, response: Response | None, error: str | None) -> None:
        from promptlab.logs.entry import format_timestamp

        context = getattr(self.scoring, "context", None) or {}
        stamp = {k: v for k, v in rendered.stamp.items() if k.startswith("prompt_")}
        latency = (response.latency_ms if response is not None and response.latency_ms
                   else (time.perf_counter() - t0) * 1000)
        self.logger.log(
            timestamp=format_timestamp(started_ns),
            model=(response.model if response is not None and response.model
                   and provider.model_from_response else request.model),
            provider=provider.type, config=request.params, system_prompt=rendered.system,
            user_message=rendered.user,
            assistant_response=response.text if response is not None else None,
            latency_ms=round(latency, 3), tags=[*self.experiment.tags, "judge"],
            metadata={"judge_for": context}, run_id=self.result.run_id,
            status="ok" if error is None else "error", error=error,
            **(response.usage() if response is not None else {}), **stamp)


@dataclass(frozen=True)
class _Outcome:
    variant: str
    entry: dict[str, Any] | None
    error: str | None = None
    cache_hit: bool = False
    scorer_errors: dict[str, str] | None = None
    scored: bool = False
    unlogged: str | None = None  # why the cell's entry could not be written


def _verdict(result: RunResult, max_error_rate: float) -> str | None:
    """Why the finished run failed as a whole, or None (see the module docstring)."""
    if result.unlogged:
        return result.stop_reason or f"{result.unlogged} cells could not be logged"
    if result.stopped == "error_rate":
        return result.stop_reason
    done, errors = result.done, result.errors
    if done and (errors / done > max_error_rate or errors == done):
        return (f"{errors} of {done} cells failed ({errors / done:.0%}), more than [run] "
                f"max_error_rate = {max_error_rate:g}" if errors / done > max_error_rate
                else f"all {done} cells failed")
    for name, failures in result.scorer_errors.items():
        if result.scored and failures >= result.scored:
            return (f"scorer {name!r} failed on every cell it scored ({failures} of "
                    f"{result.scored}); first: {result.first_scorer_errors[name]}")
    return None


def _is_entry_error(exc: LogError) -> bool:
    from promptlab.logs.entry import EntryError

    return isinstance(exc, EntryError)


def _check_log_dir(log_dir: Any) -> None:
    """Refuse to start calling a model when its answers cannot be logged."""
    import os

    try:
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(f"cannot create the log folder {log_dir}: {exc.strerror}; fix it or "
                       "point PROMPTLAB_LOG_DIR at a writable folder") from exc
    if not log_dir.is_dir() or not os.access(log_dir, os.W_OK | os.X_OK):
        raise LogError(f"the log folder {log_dir} is not writable; fix its permissions or "
                       "point PROMPTLAB_LOG_DIR at a writable folder")


def _cache_redactor(experiment: Experiment, logger: Any) -> Any:
    """What the response cache writes goes through the log's redaction: the built-in
    rules (unless the project turned them off) and the logger's own redactor."""
    from promptlab.logs.redact import redact_text

    builtin = experiment.settings.redact
    extra = getattr(logger, "redactor", None)

    def redact(text: str) -> str:
        if builtin:
            text = redact_text(text)
        return extra(text) if extra is not None else text

    return redact


def _check_setup(experiment: Experiment) -> None:
    """What a dry run checks besides rendering: the provider can be set up (keys,
    functions, commands) and every scorer prepared (functions imported, judge prompts
    found). Nothing is called."""
    if experiment.provider is not None:
        create_provider(experiment.provider).close()

    def no_calls(spec: Any, rendered: Any) -> str:  # pragma: no cover - never called
        raise AssertionError("a dry run makes no calls")

    def judge_spec(table: dict[str, Any], where: str) -> ProviderSpec:
        from promptlab.providers import validate_provider

        spec = provider_spec(table, experiment.base_dir, f"{where} provider")
        validate_provider(spec)
        return spec

    build_scorers(experiment.scorers, ScorerRuntime(
        base_dir=experiment.base_dir, registry=_registry(experiment), complete=no_calls,
        make_provider_spec=judge_spec))


def _registry(experiment: Experiment) -> Any:
    from promptlab.history import Registry  # stamps git provenance

    return Registry(experiment.settings.prompts_dir)



__all__ = ["Progress", "Reporter", "RunOptions", "RunResult", "VariantSummary",
           "new_run_id", "run_experiment"]
