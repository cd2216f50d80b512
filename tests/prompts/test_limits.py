"""A template cannot take the machine (issue 14, item 3): time and output limits, and a
one-line TemplateError naming the file for each way a render can run away."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.config import load_settings
from promptlab.errors import ConfigError, TemplateError
from promptlab.registry import Registry
from promptlab.template import RenderLimits, Template

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
RUNAWAY = {
    "nested-loops": NESTED,
    "loops-over-a-list": "{% set x = range(1000)|list %}{% for a in x %}{% for b in x %}"
                         "{% for c in x %}{% endfor %}{% endfor %}{% endfor %}",
    "repeat": '{{ "a" * 3000000000 }}',
    "repeat-list": "{{ [1, 2] * 3000000000 }}",
    "doubling": "{% set ns = namespace(x='a') %}{% for i in range(64) %}"
                "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "recursive-macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
    "center": '{{ "a"|center(3000000000) }}',
    "ljust": '{{ "a".ljust(3000000000) }}',
    "percent-width": '{{ "%*d" % (3000000000, 1) }}',
    "format-filter": '{{ "%03000000000d"|format(1) }}',
    "format-method": '{{ "{:>3000000000}".format(1) }}',
    "power": "{{ 10 ** 100000000 }}",
    "big-range": "{{ range(10000000)|list|length }}",
    "much-output": "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    # Issue 15, item 2: each built text or list past the limit before it was checked.
    "sum-of-lists": "{{ ([[1]*1000000]*40)|sum(start=[])|length }}",
    "sum-of-many-lists": "{{ ([[1]*100000]*2000)|sum(start=[])|length }}",
    "lipsum": "{{ lipsum(100000) }}",
    "lipsum-more": "{{ lipsum(1000000) }}",
    "join-separator": '{{ range(1000)|join("x"*1000000) }}',
    "join-items": '{{ (["a"*1000000]*1000)|join }}',
    "join-method": '{{ "x".join(["a"*1000000]*1000) }}',
    "replace-method": '{{ ("a"*1000000).replace("a","b"*1000) }}',
    "replace-filter": '{{ ("a"*1000000)|replace("a","b"*1000) }}',
    "format-width-argument": '{{ "{:{}}".format("a","999999999") }}',
    "format-map-width": '{{ "{a:>{w}}".format_map({"a": 1, "w": 999999999}) }}',
    "expandtabs": '{{ ("\t"*100000).expandtabs(100000) }}',
    "indent-lines": '{{ ("a\n"*1000000)|indent(1000) }}',
    "indent-string": '{{ ("a\n"*100000)|indent("x"*100000) }}',
    "wordwrap": '{{ ("a "*1000000)|wordwrap(1, wrapstring="x"*1000) }}',
    "plus-doubling": "{% set ns = namespace(x='a') %}{% for i in range(64) %}"
                     "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}",
    "plus-lists": "{% set a = [1]*1500000 %}{{ (a + a)|length }}",
    "nested-list-output": "{{ [[1]*1000000]*1000 }}",
    "nested-list-tojson": "{{ ([[1]*1000000]*1000)|tojson }}",
    "nested-list-concat": "{{ 'a' ~ ([[1]*1000000]*1000) }}",
    "nested-list-percent": '{{ "%s" % ([[1]*1000000]*1000,) }}',
    "bytes-repeat": '{{ "a".encode() * 3000000000 }}',
}
FAST = RenderLimits(timeout_s=0.3, max_chars=1_000_000)


def render(source: str, limits: RenderLimits = FAST, name: str = "t.txt"):  # type: ignore[no-untyped-def]
    return Template.from_bytes(source.encode(), f"prompts/x/{name}").render_messages({}, limits)


@pytest.mark.parametrize("name", sorted(RUNAWAY))
def test_runaway_templates_are_one_line_errors_naming_the_file(name: str) -> None:
    start = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        render(RUNAWAY[name], name=f"{name}.txt")
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert message.startswith(f"prompts/x/{name}.txt: ")
    assert "\n" not in message


CHECKED_FIRST = ["sum-of-lists", "sum-of-many-lists", "lipsum", "lipsum-more", "join-separator",
                 "join-items", "join-method", "replace-method", "replace-filter",
                 "format-width-argument", "format-map-width", "expandtabs", "indent-lines",
                 "indent-string", "wordwrap", "plus-doubling", "plus-lists", "bytes-repeat",
                 "nested-list-output",
                 "nested-list-tojson", "nested-list-concat", "nested-list-percent"]


@pytest.mark.parametrize("name", CHECKED_FIRST)
def test_sizes_are_checked_before_the_text_is_built(name: str) -> None:
    # Refused by the size check, not the clock, with little memory taken: the text or
    # list was measured before it was built (each of these used to take seconds to
    # minutes, or hundreds of MB to GBs, first).
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match=r"characters, more than render_max_chars "
                                                r"\(2,000,000\)"):
            render(RUNAWAY[name], RenderLimits(timeout_s=60, max_chars=2_000_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_time_limit_message_names_the_setting() -> None:
    with pytest.raises(TemplateError, match=r"longer than render_timeout_s \(0.3 s\)"):
        render(NESTED)


def test_size_limit_message_names_the_setting() -> None:
    with pytest.raises(TemplateError, match=r"3,000,000,000 characters, more than "
                                            r"render_max_chars \(1,000,000\)"):
        render(RUNAWAY["repeat"])


def test_memory_error_is_a_template_error() -> None:
    # Limits raised past what the machine has: the allocation itself fails.
    huge = RenderLimits(timeout_s=5, max_chars=10**15)
    with pytest.raises(TemplateError, match="ran out of memory"):
        render('{{ "a" * 10**14 }}', huge)


def test_ordinary_templates_are_untouched() -> None:
    source = (
        "{% macro item(x) %}<{{ x }}>{% endmacro %}"
        "{% for i in range(3) %}{{ item(i) }}{{ loop.length }}{% else %}none{% endfor %}"
        "{% for k, v in {'a': 1}.items() %} {{ k }}={{ v }}{% endfor %}"
        "{% for x in [] %}x{% else %} empty{% endfor %}"
        " {{ 'ab' * 3 }} {{ '%5d' % 3 }} {{ '{:>4}'.format(7) }} {{ 'x'|center(5) }}|"
        " {{ 2 ** 10 }} {{ 'a' ~ 'b' }}"
        "{% for n in [[1, [2]]] recursive %}{% for m in n %}{{ m }}{% endfor %}{% endfor %}"
    )
    assert render(source)[0]["content"] == (
        "<0>3<1>3<2>3 a=1 empty ababab     3    7   x  | 1024 ab1[2]")


def test_ordinary_uses_of_the_checked_filters_and_methods() -> None:
    source = (
        "{{ [[1], [2]]|sum(start=[]) }} {{ [1, 2]|sum }} {{ [{'n': 2}]|sum(attribute='n') }}"
        " {{ ['a', 'b']|join(',') }} {{ [{'n': 'x'}]|join(attribute='n') }}"
        " {{ 'aXb'.replace('X', '--') }} {{ 'aXbX'|replace('X', '-', 1) }}"
        " {{ '{:>4}'.format(7) }} {{ '{:{}}'.format('a', 3) }}| {{ '{}'.format(10000000) }}"
        " {{ '{a}'.format_map({'a': 1}) }} {{ 'a\nb'|indent(2) }} {{ 'a\nb'|indent('> ') }}"
        " {{ [1, 2] + [3] }} {{ 'a' + 'b' }} {{ 1 + 2 }} {{ 'x-'.join('ab') }}"
        " {{ lipsum(1, False, 5, 6)|length > 0 }} {{ {'a': [1]}|tojson }}"
        " {{ 'a b c'|wordwrap(3) }} {{ '%s-%d' % ('a', 3) }} {{ 'a\tb'.expandtabs(4) }}"
        " {{ [1, [2, 'x']] }}"
    )
    assert render(source)[0]["content"] == (
        "[1, 2] 3 2 a,b x a--b a-bX    7 a  | 10000000 1 a\n  b a\n> b [1, 2, 3] ab 3 a"
        "x-b True {\"a\": [1]} a b\nc a-3 a   b [1, [2, 'x']]")


def test_sum_of_strings_is_refused_as_python_does() -> None:
    from promptlab.errors import RenderError

    with pytest.raises(RenderError, match="can't sum strings"):
        render("{{ ['a', 'b']|sum(start='') }}")


def test_limits_come_from_the_project_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text("render_timeout_s = 0.25\nrender_max_chars = 500\n")
    folder = tmp_path / "prompts" / "loop"
    folder.mkdir(parents=True)
    (folder / "v1.txt").write_text(NESTED)
    (tmp_path / "prompts" / "big").mkdir()
    (tmp_path / "prompts" / "big" / "v1.txt").write_text("{{ 'x' * 600 }}")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.render_timeout_s, settings.render_max_chars) == (0.25, 500)
    assert Registry().limits == RenderLimits(0.25, 500)

    start = time.monotonic()
    result = CliRunner().invoke(main, ["render", "loop"])
    assert time.monotonic() - start < 5
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path}/prompts/loop/v1.txt: rendering took longer than render_timeout_s "
        "(0.25 s); simplify the template or raise the limit in the project settings "
        "(render_timeout_s, render_max_chars)\n")
    result = CliRunner().invoke(main, ["render", "big"])
    assert result.exit_code == 2
    assert "600 characters, more than render_max_chars (500)" in result.stderr
    result = CliRunner().invoke(main, ["diff", "big", "v1", "v1", "--rendered"])
    assert result.exit_code == 2
    assert "render_max_chars (500)" in result.stderr


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert (settings.render_timeout_s, settings.render_max_chars) == (2.0, 2_000_000)
    assert Registry(tmp_path).limits == RenderLimits(2.0, 2_000_000)


@pytest.mark.parametrize("line", ["render_timeout_s = 0", "render_timeout_s = -1",
                                  "render_max_chars = 0", "render_max_chars = true",
                                  "render_timeout_s = inf", 'render_max_chars = "1MB"'])
def test_bad_limit_settings_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        line: str) -> None:
    (tmp_path / "promptlab.toml").write_text(line + "\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="render_"):
        load_settings()
