"""fakesnow in server mode, for the Snowflake catalog tests.

    with SnowflakeStack() as stack:                  # cached venv → `fakesnow -s -p PORT`
        out = stack.run({"url": stack.url("analytics", "mart"), "ddl": [...], "calls": [...]})
        with stack.catalog(stack.url("analytics", "mart"), ["MART"], setup=[...]) as catalog:
            catalog.table("MART", "ORDERS")          # a live call, answered in the fakesnow venv

fakesnow 0.12.1 needs snowflake-connector-python 4.x, which goes with snowflake-sqlalchemy 1.11
and SQLAlchemy 2.0, while pipebot's own venv has SQLAlchemy 2.1 (and a 5.x connector cannot
log in to fakesnow's server). So fakesnow, the real connector and the real dialect live in their
own venv (``.cache/venvs/fakesnow-<hash of snowflake-constraints.txt>``, built once under a file
lock like the Airflow harness), and pipebot's catalog code runs there too, from the work tree:
`run` starts ``snowflake_runner.py`` in that venv, which drives `Catalog` and the warehouse tools
against the server and prints JSON. pipebot's SQLAlchemy range (>=2.0.40) includes 2.0.
"""

from __future__ import annotations

import hashlib
import json
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.errors import SourceError
from bot.facts import Column, Table
from bot.tools import Check
from integrations import errors
from tests.stack.airflow_stack import REPO_ROOT, StackError, _tail, ensure_venv, free_port

CONSTRAINTS = Path(__file__).resolve().parent / "snowflake-constraints.txt"
RUNNER = Path(__file__).resolve().parent / "snowflake_runner.py"


def venv_dir() -> Path:
    digest = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:10]
    return REPO_ROOT / ".cache" / "venvs" / f"fakesnow-{digest}"


class SnowflakeStack:
    """One fakesnow server on a free port, in-memory databases, stopped on exit."""

    def __init__(self) -> None:
        self.venv = venv_dir()
        self.port = free_port()
        self.python = self.venv / "bin" / "python"
        self._home = Path(tempfile.mkdtemp(prefix="pipebot-fakesnow-"))
        self.log = self._home / "fakesnow.log"  # its tail goes into every StackError
        self.venv_s: float | None = None
        self.venv_built = False
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, schema: str | None = None, **query: str) -> str:
        """A pipebot warehouse URL for this server (account ``fakesnow``, plain HTTP)."""
        path = f"{database}/{schema}" if schema else database
        params = {"host": "127.0.0.1", "port": str(self.port), "protocol": "http", **query}
        return f"snowflake://fake:snow@fakesnow/{path}?" + "&".join(
            f"{k}={v}" for k, v in params.items()
        )

    def start(self, *, timeout: float = 60.0) -> None:
        started = time.monotonic()
        self.venv_built = not (self.venv / ".pipebot-ready").exists()
        ensure_venv(self.venv, ("--requirement", str(CONSTRAINTS)))
        self.venv_s = time.monotonic() - started
        self._process = subprocess.Popen(
            [str(self.venv / "bin" / "fakesnow"), "-s", "-p", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # fakesnow makes a stage directory per server in TMPDIR: ours goes with stop().
            env={"PATH": "/usr/bin:/bin", "HOME": str(self._home), "TMPDIR": str(self._home)},
            start_new_session=True,
        )
        serving = threading.Event()
        threading.Thread(
            target=_copy_output, args=(self._process, self.log, serving), daemon=True
        ).start()
        # uvicorn says so once its socket listens; the copier also wakes us when fakesnow exits.
        if serving.wait(timeout) and self._process.poll() is None:
            return
        if self._process.poll() is not None:
            raise StackError(f"fakesnow exited ({self._process.returncode}):\n{_tail(self.log)}")
        self.stop()
        raise StackError(f"fakesnow did not answer within {timeout:g} s:\n{_tail(self.log)}")

    def run(
        self, job: dict[str, Any], *, timeout: float = 120.0, runner: Path = RUNNER
    ) -> dict[str, Any]:
        """Run one `snowflake_runner` (or `runner`) job in the fakesnow venv and return its
        JSON answer."""
        done = subprocess.run(
            [str(self.python), str(runner)],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"snowflake runner failed ({done.returncode}):\n{done.stderr[-4000:]}")
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    def catalog(
        self, url: str, schemas: Sequence[str], *, setup: Sequence[str] = (), timeout: float = 60.0
    ) -> RemoteCatalog:
        """A live `Catalog` on this server in the fakesnow venv, behind a `WarehouseCatalog`
        in this one (the playbooks' imports do not fit that venv)."""
        return RemoteCatalog(self, url, schemas, setup, timeout)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> SnowflakeStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _copy_output(process: subprocess.Popen[bytes], log: Path, serving: threading.Event) -> None:
    """fakesnow's output into `log` (its tail goes into errors); `serving` is set when uvicorn
    listens, or when the output ends (the process exited)."""
    assert process.stdout is not None
    with log.open("wb") as out:
        for line in process.stdout:
            out.write(line)
            out.flush()
            if b"Uvicorn running on" in line:
                serving.set()
    serving.set()


class RemoteCatalog:
    """pipebot's Snowflake `Catalog`, running in the fakesnow venv (``snowflake_runner.py``
    serving), called one JSON line per call: the playbooks and tools of this venv read live
    fakesnow answers through the real connector and dialect. Failures come back as the same
    error classes with the same reasons and suggestions."""

    system = "warehouse"
    dialect = "snowflake"

    def __init__(
        self,
        stack: SnowflakeStack,
        url: str,
        schemas: Sequence[str],
        setup: Sequence[str],
        timeout: float,
    ) -> None:
        self._timeout = timeout
        # A file, not a pipe: nobody reads stderr while the runner works, and a full pipe
        # would stop it.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by close()
        self._process = subprocess.Popen(
            [str(stack.python), str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        )
        job = {"url": url, "schemas": list(schemas), "setup": list(setup), "serve": True}
        hello = self._exchange(job)
        self.where: str = hello["where"]
        self.row_cap: int = hello["row_cap"]
        self._last_altered_means: str = hello["last_altered_means"]

    @property
    def last_altered_means(self) -> str:
        return self._last_altered_means

    def schemas(self) -> list[str]:
        return list(self._call("schemas"))

    def tables(self, schema: str | None = None) -> list[Table]:
        return [_table(t) for t in self._call("tables", *([schema] if schema else []))]

    def table(self, schema: str, name: str) -> Table:
        return _table(self._call("table", schema, name))

    def check(self) -> Check:
        found = self._call("check")
        return Check(
            system=self.system,
            ok=found["ok"],
            detail=found["detail"],
            target=self.where,
            version=found["version"],
        )

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # the runner ends with its input
            try:
                process.wait(timeout=self._timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._stderr.close()

    def __enter__(self) -> RemoteCatalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, *call: Any) -> Any:
        answer = self._exchange(list(call))
        if "error" in answer:
            raise _error(answer)
        return answer["value"]

    def _exchange(self, message: Any) -> Any:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], self._timeout)
        line = process.stdout.readline() if ready else ""
        if not line:
            process.kill()
            process.wait(timeout=10)
            self._stderr.seek(0)
            stderr = self._stderr.read()
            asked = message[0] if isinstance(message, list) else "the job"
            raise StackError(f"snowflake runner gave no answer to {asked}:\n{stderr[-4000:]}")
        return json.loads(line)


def _table(found: dict[str, Any]) -> Table:
    altered = found["last_altered"]
    return Table(
        database=found["database"],
        schema=found["schema"],
        name=found["name"],
        kind=found["kind"],
        columns=tuple(Column(*c) for c in found["columns"]),
        row_count=found["row_count"],
        last_altered=datetime.fromisoformat(altered) if altered else None,
        size_bytes=found["size_bytes"],
        comment=found["comment"],
    )


def _error(answer: dict[str, Any]) -> SourceError:
    kind = getattr(errors, answer["error"], None)
    reason = answer["reason"]
    if kind is errors.UpstreamNotFound:
        return errors.UpstreamNotFound("warehouse", reason, suggestions=answer["suggestions"])
    if isinstance(kind, type) and issubclass(kind, errors.UpstreamError):
        return kind("warehouse", reason, status=answer["status"])
    return errors.UpstreamError("warehouse", f"{answer['error']}: {reason}")
