"""Providers, over real sockets (OpenAI and Anthropic wire formats against a local server)
and real processes (command), plus python, echo and entry-point registration."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers import create_provider, get_provider_class, provider_types
from promptlab.providers.base import ProviderSpec, Request, parse_retry_after

from .conftest import FakeLLM, Reply

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]


def openai(server: FakeLLM, **options) -> object:  # type: ignore[no-untyped-def]
    return create_provider(ProviderSpec("openai", model="gpt-test",
                                        options={"base_url": server.url + "/v1", **options}))


def anthropic(server: FakeLLM, **options) -> object:  # type: ignore[no-untyped-def]
    return create_provider(ProviderSpec("anthropic", model="claude-test",
                                        options={"base_url": server.url, **options}))


def request(**kw) -> Request:  # type: ignore[no-untyped-def]
    return Request(messages=MESSAGES, model=kw.pop("model", "gpt-test"),
                   params=kw.pop("params", {"temperature": 0.2}), **kw)


# -- openai ----------------------------------------------------------------------------------


def test_openai_round_trip(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    provider = openai(fake_llm, api_key_env="MY_KEY", headers={"X-Team": "qa"})
    response = provider.complete(request())
    assert response.text == "echo: Hi there"
    assert (response.input_tokens, response.output_tokens, response.cached_tokens,
            response.reasoning_tokens) == (12, 7, 4, 2)
    assert response.latency_ms > 0
    sent = fake_llm.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-123"
    assert sent["headers"]["X-Team"] == "qa"
    assert sent["json"] == {"temperature": 0.2, "model": "gpt-test", "messages": MESSAGES,
                            "stream": False}
    provider.close()


def test_openai_local_endpoint_needs_no_key(fake_llm: FakeLLM,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-for-openai-only")
    openai(fake_llm).complete(request())
    assert "Authorization" not in fake_llm.requests[0]["headers"]  # never leaked to localhost


def test_openai_missing_key_for_the_hosted_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ExperimentError) as info:
        create_provider(ProviderSpec("openai", model="gpt-4o-mini"))
    assert str(info.value) == ("[provider]: environment variable OPENAI_API_KEY is not set; "
                               "export OPENAI_API_KEY=… or point api_key_env at the variable "
                               "holding your key")


def test_rate_limit_is_retryable_with_retry_after(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(429, {"error": {"message": "Rate limit reached"}},
                        {"Retry-After": "7"}))
    with pytest.raises(ProviderError) as info:
        openai(fake_llm).complete(request())
    assert info.value.retryable and info.value.retry_after == 7.0
    assert str(info.value) == f"HTTP 429 from {fake_llm.url}/v1/chat/completions: Rate limit reached"


def test_server_error_is_retryable(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(500, "<html>Internal Server Error</html>"))
    with pytest.raises(ProviderError) as info:
        openai(fake_llm).complete(request())
    assert info.value.retryable and info.value.retry_after is None
    assert str(info.value).endswith("/v1/chat/completions: <html>Internal Server Error</html>")


def test_client_error_is_not_retryable(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(400, {"error": {"message": "model 'gpt-test' not found"}}))
    with pytest.raises(ProviderError) as info:
        openai(fake_llm).complete(request())
    assert not info.value.retryable
    assert "HTTP 400" in str(info.value) and "model 'gpt-test' not found" in str(info.value)


def test_malformed_json_is_a_clear_error(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(200, '{"choices": [ oops'))
    with pytest.raises(ProviderError) as info:
        openai(fake_llm).complete(request())
    assert str(info.value) == (f"invalid JSON in the response from {fake_llm.url}"
                               "/v1/chat/completions: '{\"choices\": [ oops'")
    fake_llm.then(Reply(200, {"object": "list"}))
    with pytest.raises(ProviderError, match="unexpected response from .*: no 'choices'"):
        openai(fake_llm).complete(request())
    fake_llm.then(Reply(200, {"choices": [{"message": {"content": "ok"}}], "usage": {
        "prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 500}}}))
    with pytest.raises(ProviderError, match="cached_tokens = 500 is more than usage.prompt_tokens"):
        openai(fake_llm).complete(request())
    # Completions-style or bare-string choices were logged as successful empty answers.
    for choice in ({"text": "positive"}, {"message": "positive"}):
        fake_llm.then(Reply(200, {"choices": [choice]}))
        with pytest.raises(ProviderError, match="choices\\[0\\].message is not an object"):
            openai(fake_llm).complete(request())


def test_slow_server_times_out(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(delay_s=1.0))
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        openai(fake_llm).complete(request(timeout_s=0.2))
    assert time.monotonic() - start < 0.9
    assert info.value.retryable
    assert str(info.value) == f"{fake_llm.url}/v1/chat/completions timed out after 0.2s"


def test_connection_refused_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = create_provider(ProviderSpec("openai", model="m",
                                            options={"base_url": f"http://127.0.0.1:{port}/v1"}))
    with pytest.raises(ProviderError) as info:
        provider.complete(request())
    assert info.value.retryable
    assert str(info.value).startswith(f"cannot connect to http://127.0.0.1:{port}/v1/chat/"
                                      "completions:")
    assert str(info.value).endswith("is the server running?")


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# -- anthropic -------------------------------------------------------------------------------


def test_anthropic_round_trip(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANT_KEY", "sk-ant-test")
    provider = anthropic(fake_llm, api_key_env="ANT_KEY")
    response = provider.complete(request(model="claude-test", params={"stop": "END"}))
    assert response.text == "echo: Hi there"
    # input = fresh 10 + cache reads 3 + cache writes 2; cached = cache reads
    assert (response.input_tokens, response.output_tokens, response.cached_tokens) == (15, 5, 3)
    sent = fake_llm.requests[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-ant-test"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["json"] == {"stop_sequences": ["END"], "max_tokens": 1024, "model": "claude-test",
                            "messages": [{"role": "user", "content": "Hi there"}],
                            "system": "Be brief."}


def test_anthropic_errors(fake_llm: FakeLLM) -> None:
    fake_llm.then(Reply(529, {"type": "error", "error": {"type": "overloaded_error",
                                                         "message": "Overloaded"}},
                        {"retry-after": "2"}))
    with pytest.raises(ProviderError) as info:
        anthropic(fake_llm).complete(request(model="claude-test"))
    assert info.value.retryable and info.value.retry_after == 2.0
    assert str(info.value) == f"HTTP 529 from {fake_llm.url}/v1/messages: Overloaded"
    fake_llm.then(Reply(200, "not json"))
    with pytest.raises(ProviderError, match="invalid JSON in the response"):
        anthropic(fake_llm).complete(request(model="claude-test"))


def test_missing_model_is_an_error(fake_llm: FakeLLM) -> None:
    with pytest.raises(ProviderError, match="no model: set \\[provider\\] model"):
        anthropic(fake_llm).complete(request(model=None))


# -- command ---------------------------------------------------------------------------------


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def command(argv: list[str], **options) -> object:  # type: ignore[no-untyped-def]
    return create_provider(ProviderSpec("command", options={"command": argv, **options}))


def test_command_reads_json_and_answers_text(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import json, sys
        req = json.load(sys.stdin)
        print(f"{req['model']}|{req['system']}|{req['prompt']}|{req['repeat']}")
    """)
    response = command(argv).complete(request(repeat=2))
    assert response.text == "gpt-test|Be brief.|Hi there|2"
    assert response.input_tokens is None


def test_command_json_output_with_usage_and_text_input(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import json, sys
        text = sys.stdin.read()
        print(json.dumps({"output": text.upper(), "usage": {"input_tokens": 3,
                          "output_tokens": 4}, "model": "my-local-model"}))
    """)
    response = command(argv, input="text").complete(request())
    assert response.text == "BE BRIEF.\n\nHI THERE"
    assert (response.input_tokens, response.output_tokens, response.model) == (
        3, 4, "my-local-model")


def test_command_failures(tmp_path: Path) -> None:
    argv = script(tmp_path, "import sys; print('quota exceeded', file=sys.stderr); sys.exit(75)")
    with pytest.raises(ProviderError) as info:
        command(argv).complete(request())
    assert info.value.retryable
    assert str(info.value) == f"command {sys.executable!r} exited with status 75: quota exceeded"
    argv = script(tmp_path, "import sys; sys.exit(3)")
    with pytest.raises(ProviderError) as info:
        command(argv).complete(request())
    assert not info.value.retryable
    with pytest.raises(ProviderError, match="command 'no-such-model-xyz' not found"):
        command(["no-such-model-xyz"]).complete(request())
    argv = script(tmp_path, "import time; time.sleep(5)")
    with pytest.raises(ProviderError) as info:
        command(argv).complete(request(timeout_s=0.3))
    assert info.value.retryable and "timed out after 0.3s" in str(info.value)


def test_command_string_is_split_without_a_shell() -> None:
    provider = command("echo 'a b' ; rm -rf x")  # type: ignore[arg-type]
    assert provider.argv == ["echo", "a b", ";", "rm", "-rf", "x"]  # type: ignore[attr-defined]
    assert provider.complete(request()).text == "a b ; rm -rf x"  # echo ignores stdin


# -- python and echo -------------------------------------------------------------------------


def test_python_provider_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        def answer(user, repeat):
            return f"{user} #{repeat}"

        def rich(messages):
            return {"output": "ok", "usage": {"input_tokens": 5}, "model": "fn-model"}

        def broken(text):
            raise RuntimeError("model exploded")

        def slow(text):
            import time
            time.sleep(3)
            return "late"

        def weird(text):
            return 42
    """))
    spec = ProviderSpec("python", options={"function": "model.py:answer"}, base_dir=tmp_path)
    assert create_provider(spec).complete(request(repeat=1)).text == "Hi there #1"
    rich = create_provider(spec.replace(options={"function": "model.py:rich"}))
    response = rich.complete(request())
    assert (response.text, response.input_tokens, response.model) == ("ok", 5, "fn-model")
    broken = create_provider(spec.replace(options={"function": "model.py:broken"}))
    with pytest.raises(ProviderError, match="function model.py:broken raised RuntimeError: "
                                            "model exploded"):
        broken.complete(request())
    slow = create_provider(spec.replace(options={"function": "model.py:slow"}))
    with pytest.raises(ProviderError) as info:
        slow.complete(request(timeout_s=0.2))
    assert info.value.retryable
    weird = create_provider(spec.replace(options={"function": "model.py:weird"}))
    with pytest.raises(ProviderError, match="returned int; expected a string"):
        weird.complete(request())


def test_python_provider_load_errors(tmp_path: Path) -> None:
    def load(ref: str) -> str:
        with pytest.raises(ExperimentError) as info:
            create_provider(ProviderSpec("python", options={"function": ref}, base_dir=tmp_path))
        return str(info.value)

    assert load("nope.py:f") == f"[provider]: file {tmp_path / 'nope.py'} not found"
    assert load("no_such_module_xyz:f").startswith(
        "[provider]: cannot import module 'no_such_module_xyz'")
    assert load("json:nothing") == "[provider]: json has no function 'nothing'"
    assert load("json:") == ("[provider]: function 'json:' must be 'module:function' or "
                             "'path/to/file.py:function'")


def test_echo_returns_the_prompt() -> None:
    response = create_provider(ProviderSpec("echo")).complete(request())
    assert response.text == "Be brief.\n\nHi there"
    assert response.input_tokens == 4


# -- registration ----------------------------------------------------------------------------


def test_third_party_provider_via_entry_point(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from promptlab import providers

    pkg = tmp_path / "site"
    (pkg / "acme_llm").mkdir(parents=True)
    (pkg / "acme_llm" / "__init__.py").write_text(textwrap.dedent("""
        from promptlab.providers.base import Provider, Response

        class AcmeProvider(Provider):
            type = "acme"
            keys = frozenset({"region"})

            def complete(self, request):
                return Response(text="acme:" + self.spec.option("region"))
    """))
    dist = pkg / "acme_llm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-llm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[promptlab.providers]\nacme = acme_llm:AcmeProvider\n")
    monkeypatch.syspath_prepend(str(pkg))
    providers._entry_points.cache_clear()
    try:
        assert "acme" in provider_types()
        provider = create_provider(ProviderSpec("acme", options={"region": "eu"}))
        assert provider.complete(request()).text == "acme:eu"
        with pytest.raises(ExperimentError, match="unknown key 'zone' for provider type 'acme'"):
            create_provider(ProviderSpec("acme", options={"zone": "eu"}))
    finally:
        providers._entry_points.cache_clear()
    assert get_provider_class("echo").type == "echo"


def test_a_response_nested_too_deeply_is_an_error_not_a_crash(fake_llm) -> None:
    from promptlab.errors import ProviderError
    from promptlab.providers import create_provider
    from promptlab.providers.base import ProviderSpec, Request

    fake_llm.then(Reply(body="[" * 100_000 + "]" * 100_000))
    provider = create_provider(ProviderSpec("openai", model="m",
                                            options={"base_url": f"{fake_llm.url}/v1"}))
    try:
        with pytest.raises(ProviderError, match="nested too deeply to read"):
            provider.complete(Request(messages=[{"role": "user", "content": "hi"}], model="m"))
    finally:
        provider.close()
