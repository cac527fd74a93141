"""The exporter image without Docker: the `Dockerfile`'s own steps replayed into a folder that
stands in for the container's file system, with a clean virtualenv for the base image's Python.

Every instruction is read from the `Dockerfile` itself (a new one that the replay does not know
fails the build, naming it), so the replay cannot drift from what users build. What differs from
a real `docker build`, and why:

- the base image's Python is this machine's interpreter of the same minor version, in a fresh
  virtualenv at the stand-in's ``/usr/local`` (so ``/usr/local/bin/python`` and ``pip`` are where
  the base image has them);
- ``useradd`` is a no-op stand-in (it would add a user to this machine); ``USER`` is honoured by
  running every command as ``nobody`` when the tests run as root (a non-root user either way);
- container paths in the files that name them (the entry point's ``/etc/movers``) are rewritten
  to the stand-in's, as a mount would place them.

Commands run with exactly the image's environment (``ENV``, ``PATH``, ``HOME``) plus what a test
passes, never the test process's: no checkout, virtualenv or ``PYTHONPATH`` leaks in.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ReplayError(RuntimeError):
    """The Dockerfile has an instruction or form the replay does not know, or a step failed."""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    if pending:
        raise ReplayError(f"the Dockerfile ends inside a continued line: {pending!r}")
    return out


def _dockerignore() -> list[str]:
    path = REPO / ".dockerignore"
    if not path.exists():
        return []
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _ignored(relative: str, patterns: Sequence[str]) -> bool:
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.removeprefix("**/").rstrip("/")
        if fnmatch.fnmatch(relative, pattern.rstrip("/")) or any(
            fnmatch.fnmatch(part, bare) for part in parts
        ):
            return True
    return False


def rebase_paths(text: str, root: Path, prefixes: Iterable[str]) -> str:
    """``text`` with each absolute container path that starts with one of ``prefixes`` (a whole
    path component) moved under ``root``, the stand-in for the container's ``/``."""
    for prefix in sorted(set(prefixes) - {"/"}, key=len, reverse=True):
        text = re.sub(
            rf"(?<![\w./-]){re.escape(prefix)}(?=[/\s\"':$]|$)",
            lambda m: str(root) + m.group(0),
            text,
            flags=re.M,
        )
    return text


@dataclass
class Image:
    """A replayed image: ``root`` stands in for the container's ``/``."""

    root: Path
    python: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)

    def path(self, container_path: str) -> Path:
        """Where a container path lies in the stand-in."""
        if not container_path.startswith("/"):
            container_path = f"{self.workdir.rstrip('/')}/{container_path}"
        return self.root / container_path.lstrip("/")

    def localize(self, text: str) -> str:
        """``text`` with the image's absolute paths (PATH entries, WORKDIR, mount points under
        ``/etc``) moved under the stand-in's root."""
        return rebase_paths(text, self.root, {self.workdir, "/usr/local", "/etc/movers"})

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": self.localize(DEFAULT_PATH),
            "HOME": str(self.path(self.workdir)),
            "LANG": "C.UTF-8",
            **{k: self.localize(v) for k, v in self.env.items()},
        }
        env.update(extra or {})
        return env

    def command(
        self,
        args: Sequence[str] | None = None,
        extra: Mapping[str, str] | None = None,
        entrypoint: bool = True,
    ) -> list[str]:
        """The argv that runs the image (ENTRYPOINT + ``args``, else CMD; without the entry point
        ``args`` alone) as its user with exactly its environment."""
        argv = [*(self.entrypoint if entrypoint else []), *(self.cmd if args is None else args)]
        clean = ["env", "-i", *(f"{k}={v}" for k, v in self.environment(extra).items())]
        return [*self._as_user(), *clean, *argv]

    def _as_user(self) -> list[str]:
        """``runuser -u nobody --`` when the image has a USER, the tests run as root, and nobody
        can run the interpreter (a pyenv Python under /root cannot be): else as we are."""
        if not self.user or os.geteuid() != 0:
            return []
        as_nobody = ["runuser", "-u", "nobody", "--"]
        check = subprocess.run(
            [*as_nobody, str(self.path("/usr/local/bin/python")), "-c", "pass"],
            capture_output=True, check=False,
        )  # fmt: skip
        return as_nobody if check.returncode == 0 else []

    def popen(
        self,
        args: Sequence[str] | None = None,
        extra: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
            self.command(args, extra), cwd=self.path(self.workdir), text=True, **kwargs
        )

    def run(
        self,
        args: Sequence[str],
        extra: Mapping[str, str] | None = None,
        timeout: float = 300,
        entrypoint: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(args, extra, entrypoint), cwd=self.path(self.workdir), text=True,
            capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip


def _python_for(base: str) -> str:
    match = re.match(r"python:(\d+\.\d+)", base)
    if match is None:
        raise ReplayError(f"FROM {base}: the replay knows only the python:X.Y images")
    name = f"python{match.group(1)}"
    # A system interpreter first: another user (the image's USER) can run it.
    system = [Path(d) / name for d in ("/usr/bin", "/usr/local/bin") if (Path(d) / name).exists()]
    found = str(system[0]) if system else shutil.which(name)
    if found is None:
        raise ReplayError(f"FROM {base}: no python{match.group(1)} on this machine")
    return found


def _copy(image: Image, args: str, ignore: Sequence[str]) -> None:
    words = shlex.split(args)
    if any(w.startswith("--") for w in words):
        raise ReplayError(f"COPY {args}: options are not replayed")
    *sources, dest = words
    target = image.path(dest)
    into_folder = dest.endswith("/") or len(sources) > 1
    for source in sources:
        src = REPO / source
        if not src.exists():
            raise ReplayError(f"COPY {source}: not in the build context")
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                relative = path.relative_to(REPO).as_posix()
                if path.is_dir() or _ignored(relative, ignore):
                    continue
                out = target / path.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
        else:
            out = target / src.name if into_folder else target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
            if out.parent == image.path("/usr/local/bin") and src.suffix == ".sh":
                out.write_text(image.localize(out.read_text()))


def build(folder: Path | None = None) -> Image:
    """Replay the Dockerfile; returns the image. Slow (a pip install from the registry)."""
    root = Path(tempfile.mkdtemp(prefix="movers-image-", dir=folder or "/tmp"))
    root.chmod(0o755)
    image = Image(root=root, python="")
    ignore = _dockerignore()
    shims = root.parent / f"{root.name}-shims"
    shims.mkdir()
    (shims / "useradd").write_text("#!/bin/sh\nexit 0\n")
    (shims / "useradd").chmod(0o755)
    for word, args in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            image.python = _python_for(args)
            subprocess.run([image.python, "-m", "venv", str(image.path("/usr/local"))], check=True)
        elif word == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ReplayError(f"ENV {args}: use the KEY=value form")
                image.env[key] = value
        elif word == "WORKDIR":
            image.workdir = args if args.startswith("/") else f"{image.workdir}/{args}"
            image.path(image.workdir).mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            _copy(image, args, ignore)
        elif word == "RUN":
            env = image.environment({"PATH": f"{shims}:{image.localize(DEFAULT_PATH)}"})
            step = subprocess.run(
                ["/bin/sh", "-c", args], cwd=image.path(image.workdir), env=env,
                capture_output=True, text=True, check=False, timeout=900,
            )  # fmt: skip
            if step.returncode != 0:
                raise ReplayError(f"RUN {args} failed:\n{step.stdout[-3000:]}{step.stderr[-3000:]}")
        elif word == "USER":
            image.user = args
        elif word == "EXPOSE":
            image.exposed += [int(p.split("/")[0]) for p in args.split()]
        elif word == "HEALTHCHECK":
            _, _, command = args.partition("CMD ")
            image.healthcheck = json.loads(command)
        elif word == "ENTRYPOINT":
            image.entrypoint = json.loads(args)
        elif word == "CMD":
            image.cmd = json.loads(args)
        else:
            raise ReplayError(f"{word} {args}: tests/image.py does not replay {word} yet")
    return image


def remove(image: Image) -> None:
    shutil.rmtree(image.root, ignore_errors=True)
    shutil.rmtree(image.root.parent / f"{image.root.name}-shims", ignore_errors=True)
