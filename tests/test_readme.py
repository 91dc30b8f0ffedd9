"""The README's Python block runs as written (against the offline test site instead of
example.org)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from shoal.testweb import SiteSpec, TestWeb

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README has one Python block"
    return blocks[0]


def test_the_readme_python_block_runs(tmp_path: Path) -> None:
    with TestWeb.run_in_thread(SiteSpec(hosts=1, pages=12)) as web:
        base = web.url(0, "")
        host = base.split("//", 1)[1].split(":", 1)[0]
        code = (
            python_block()
            .replace("https://example.org/a", web.url(0, "/page/1"))
            .replace("https://example.org/b", web.url(0, "/page/2"))
            .replace("https://example.org/", web.url(0, "/"))
            .replace('"example.org"', repr(host))
        )
        assert "example.org" not in code
        ran = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("200 ")
    assert lines[-1].endswith(" pages") and int(lines[-1].split()[0]) > 1
    assert (tmp_path / "crawl.db").exists()
