"""The search box's semantic and hybrid modes, through promptlab.semantic, with a small
deterministic embedding function (the project's [embeddings] type = "python", see
conftest.EMBEDDER)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("promptlab.semantic")


def test_semantic_and_hybrid_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   log_builder: type, embedder_source: str) -> None:
    from promptlab.config import load_settings
    from promptlab.dashboard import Dashboard
    from promptlab.semantic import embed_log

    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    (root / "embedder.py").write_text(embedder_source)
    (root / "promptlab.toml").write_text(
        'log_dir = "logs"\n[embeddings]\ntype = "python"\nfunction = "embedder.py:embed"\n')
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")
    log = log_builder(root / "logs")
    now = time.time()
    texts = ["the customer wants a refund for the broken kettle",
             "summarise the quarterly sales report", "translate this poem into French",
             "<script>alert(1)</script> refund please"]
    ids = {}
    for i, text in enumerate(texts):
        ids[text] = log.add(now - 100 + i, model="m", user_message=text, assistant_response="ok",
                input_tokens=1, output_tokens=1, status="ok")["id"]
    log.write()
    embed_log(log_dir=root / "logs")
    app = Dashboard(load_settings(root, env={}))
    try:
        assert app.semantic_modes == ["semantic", "hybrid"]
        page = app.handle("GET", "/logs", {"Host": "127.0.0.1"}).body.decode()
        assert '<option value="hybrid"' in page
        for mode in ("semantic", "hybrid"):
            response = app.handle("GET", f"/api/logs?q=customer+refund+kettle&mode={mode}",
                                  {"Host": "127.0.0.1"})
            assert response.status == 200, response.body
            rows = json.loads(response.body)["rows"]
            assert rows[0]["id"] == ids[texts[0]], mode  # the closest in meaning comes first
            found = [r["id"] for r in rows]
            assert len(found) == len(set(found))
        html = app.handle("GET", "/logs?q=refund&mode=semantic", {"Host": "127.0.0.1"}).body
        assert b"<script>alert(1)" not in html
        # The full-text index is still used after the vector store had the file.
        assert app.handle("GET", "/api/logs?q=poem", {"Host": "127.0.0.1"}).status == 200
    finally:
        app.close()
